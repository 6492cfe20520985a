"""Conformal p-values of a stream and the Simple Jumper test martingale.

Pure functions (numpy and numba) behind :mod:`sdm_sklearn.monitoring`.

**p-values.** Each new point gets a nonconformity score (larger: stranger).
Its smoothed conformal p-value is its rank among every score seen before it
(the calibration split's, then the stream's, in order) and itself,

    p_n = (#{i < n : s_i > s_n} + u_n (#{i < n : s_i = s_n} + 1)) / n

with ``u_n`` uniform on [0, 1] (ties broken at random), ``n`` counting the
calibration scores too. If the calibration points and the stream are
exchangeable, the p-values of the stream are independent and uniform on
[0, 1] (the validity of smoothed conformal transducers in the online mode:
Vovk, Gammerman and Shafer, *Algorithmic Learning in a Random World*, 2nd
ed., 2022).

**Martingale.** The Simple Jumper (Vovk, Petej, Nouretdinov, Ahlberg,
Carlsson and Gammerman, "Retrain or not retrain: conformal test martingales
for change-point detection", COPA 2021) bets with the three functions
``1 + e (p - 1/2)``, ``e`` in {-1, 0, 1}, and moves a share ``jump`` of its
capital between them before every point, so it recovers quickly when the
stream changes after a long exchangeable stretch. Each betting function
integrates to 1 over [0, 1], so the capital is a nonnegative martingale
with initial value 1 under uniform independent p-values, and by Ville's
inequality it ever reaches ``1 / delta`` with probability at most
``delta``.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def earlier_counts(ranks, n_ranks):
    """For every position, the earlier positions ranked above and equal.

    Parameters
    ----------
    ranks : ndarray of shape (n,), int64
        Dense ranks in ``[0, n_ranks)`` (equal values, equal ranks).
    n_ranks : int

    Returns
    -------
    greater, equal : ndarray of shape (n,), int64
        ``#{j < i : ranks[j] > ranks[i]}`` and ``#{j < i : ranks[j] ==
        ranks[i]}``, by a Fenwick tree over the ranks (n log n).
    """
    tree = np.zeros(n_ranks + 1, dtype=np.int64)
    greater = np.empty(len(ranks), dtype=np.int64)
    equal = np.empty(len(ranks), dtype=np.int64)
    for i in range(len(ranks)):
        position = ranks[i] + 1
        at_most = 0
        j = position
        while j > 0:
            at_most += tree[j]
            j -= j & -j
        below = 0
        j = position - 1
        while j > 0:
            below += tree[j]
            j -= j & -j
        greater[i] = i - at_most
        equal[i] = at_most - below
        j = position
        while j <= n_ranks:
            tree[j] += 1
            j += j & -j
    return greater, equal


def conformal_p_values(earlier, scores, uniforms):
    """Smoothed conformal p-values of ``scores``, in order (module docstring).

    Parameters
    ----------
    earlier : ndarray of shape (n_earlier,), sorted
        Every score before ``scores[0]``.
    scores : ndarray of shape (n,)
        New nonconformity scores, in stream order (no NaN).
    uniforms : ndarray of shape (n,)
        Uniform draws on [0, 1] for the ties.

    Returns
    -------
    p_values : ndarray of shape (n,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    left = np.searchsorted(earlier, scores, side="left")
    right = np.searchsorted(earlier, scores, side="right")
    values, ranks = np.unique(scores, return_inverse=True)
    greater, equal = earlier_counts(ranks.astype(np.int64).ravel(), len(values))
    greater = greater + (len(earlier) - right)
    equal = equal + (right - left)
    n_before = len(earlier) + np.arange(len(scores))
    return (greater + uniforms * (equal + 1)) / (n_before + 1)


@njit(cache=True)
def jumper_path(p_values, capital, log_scale, jump):
    """The Simple Jumper's capital after every p-value (module docstring).

    The capital is kept as ``capital * 10 ** log_scale``, rescaled whenever
    it leaves [1e-100, 1e100], so that long streams neither overflow nor
    underflow.

    Parameters
    ----------
    p_values : ndarray of shape (n,)
    capital : ndarray of shape (3,)
        Capital on the betting functions ``e = -1, 0, 1`` before the first
        p-value, in units of ``10 ** log_scale`` (``[1/3, 1/3, 1/3]`` and 0
        at the start of a stream).
    log_scale : float
    jump : float
        Share of the capital redistributed evenly before every p-value.

    Returns
    -------
    log10_path : ndarray of shape (n,)
        ``log10`` of the total capital after each p-value.
    capital : ndarray of shape (3,)
    log_scale : float
        The state after the last p-value.
    """
    capital = capital.copy()
    log10_path = np.empty(len(p_values))
    for i in range(len(p_values)):
        total = capital[0] + capital[1] + capital[2]
        for k in range(3):
            epsilon = k - 1.0
            capital[k] = ((1.0 - jump) * capital[k] + jump * total / 3.0) * (
                1.0 + epsilon * (p_values[i] - 0.5))
        total = capital[0] + capital[1] + capital[2]
        if total > 1e100 or total < 1e-100:
            capital /= total
            log_scale += np.log10(total)
            total = 1.0
        log10_path[i] = np.log10(total) + log_scale
    return log10_path, capital, log_scale
