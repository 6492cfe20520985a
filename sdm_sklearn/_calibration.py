"""Calibration: distance eCDFs, rescaled similarity, Alg. 1 and the DKW band.

Conventions are those of the method page of the documentation (paper: sec.
3.1.3, eq. 8, Alg. 1 and A.5). Labels are encoded as ``0 .. n_classes - 1``.

Counts that depend on ``alpha`` (how many of ``n`` values may fall below
the ``1 - alpha`` quantile) are exact: ``alpha`` is read as the decimal
number it prints as (0.9 is 9/10), never through floating-point products
such as ``(1 - 0.9) * 10 = 0.9999999999999998``.
"""

import math
from fractions import Fraction

import numpy as np
from scipy.special import bdtr


def class_distance_values(d_nearest, y, q, n_classes):
    """Sorted ``d_nearest`` per true class, in-distribution points only.

    Parameters
    ----------
    d_nearest : ndarray of shape (n_samples,)
    y : ndarray of shape (n_samples,)
        Encoded true labels.
    q : ndarray of shape (n_samples,)
        Similarity; points with ``q == 0`` are left out.
    n_classes : int

    Returns
    -------
    values : list of ndarray
        One sorted array per class (possibly empty).
    """
    keep = q > 0
    return [np.sort(d_nearest[keep & (y == c)]) for c in range(n_classes)]


def distance_quantile(d_nearest, class_values, *, skip_empty_classes=False):
    """``d = min_c (1 - eCDF_c(d_nearest))`` with the exclusionary eCDF.

    ``eCDF_c(v)`` counts stored values strictly below ``v``; a class with no
    stored values contributes 0 (the conservative rule of the method).

    Parameters
    ----------
    d_nearest : ndarray of shape (n_samples,)
    class_values : list of ndarray
        Output of :func:`class_distance_values`.
    skip_empty_classes : bool, default=False
        Leave classes without stored values out of the minimum instead (d = 1
        when every class is empty). Training uses this for the weights of
        the support split: with the conservative rule, one class without an
        in-distribution point would give every point d = 0, hence a zero
        gradient, and training could never leave that state.

    Returns
    -------
    d : ndarray of shape (n_samples,)
    """
    d = np.ones(len(d_nearest))
    for values in class_values:
        if len(values) == 0:
            if skip_empty_classes:
                continue
            return np.zeros(len(d_nearest))
        below = np.searchsorted(values, d_nearest, side="left")
        np.minimum(d, 1.0 - below / len(values), out=d)
    return d


def rescaled_similarity(q, predicted_probability):
    """``q' = min(q, (2 + q) ** SDM(z')_yhat)`` (eq. 8).

    Parameters
    ----------
    q : ndarray of shape (n_samples,)
    predicted_probability : ndarray of shape (n_samples,)
        SDM output of the predicted class.

    Returns
    -------
    q_prime : ndarray of shape (n_samples,)
    """
    q = np.asarray(q, dtype=np.float64)
    return np.minimum(q, np.power(2.0 + q, predicted_probability))


def as_printed(value):
    """A float as the exact fraction of the decimal it prints as (0.9 is 9/10)."""
    return Fraction(repr(float(value)))


def _alpha_gap(alpha):
    """``1 - alpha`` as an exact fraction, alpha read as the decimal it prints as."""
    return 1 - as_printed(alpha)


def tail_count(n, alpha):
    """``floor((1 - alpha) * n)``, exactly, for counts ``n``.

    Parameters
    ----------
    n : int or ndarray of int
    alpha : float

    Returns
    -------
    count : ndarray of int64 (0-d for a scalar ``n``)
    """
    gap = _alpha_gap(alpha)
    n = np.asarray(n, dtype=np.int64)
    if n.size == 0 or int(n.max()) * gap.numerator < 2**62:
        return n * gap.numerator // gap.denominator
    exact = [int(m) * gap.numerator // gap.denominator for m in n.ravel()]
    return np.array(exact, dtype=np.int64).reshape(n.shape)


def quantile_index(n, alpha):
    """Index of the ``1 - alpha`` quantile in ``n`` sorted values.

    ``min(floor((1 - alpha) n), n - 1)``, computed exactly (see
    :func:`tail_count`).
    """
    return np.minimum(tail_count(n, alpha), np.asarray(n) - 1)


def minimum_region_count(alpha):
    """Calibration points per class below which a region is called small.

    ``ceil(1 / (1 - alpha))``, exactly: the count from which the
    ``1 - alpha`` quantile is no longer the minimum of the values. 0 (never
    small) for ``alpha = 1``.
    """
    gap = _alpha_gap(alpha)
    if gap == 0:
        return 0
    return math.ceil(1 / gap)


def class_probability_thresholds(probabilities, y, selected, alpha):
    """psi: per class, the ``1 - alpha`` quantile of its own SDM output.

    Parameters
    ----------
    probabilities : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,)
        Encoded true labels.
    selected : ndarray of shape (n_samples,), bool
        Points taking part.
    alpha : float

    Returns
    -------
    psi : ndarray of shape (n_classes,)
        0 for a class with no selected point.
    """
    n_classes = probabilities.shape[1]
    psi = np.zeros(n_classes)
    for c in range(n_classes):
        values = np.sort(probabilities[selected & (y == c), c])
        if len(values):
            psi[c] = values[int(quantile_index(len(values), alpha))]
    return psi


def high_reliability_region(q_prime, probabilities, y, alpha):
    """Alg. 1: the smallest q'_min whose class thresholds all reach alpha.

    For a candidate ``t`` (a distinct q' value with ``floor(q') > 0``), class
    ``c`` passes when its points with ``q' >= t`` have a ``1 - alpha``
    quantile of ``SDM_c`` at least ``alpha``. In sorted order that quantile is
    the value at index ``k = min(floor((1 - alpha) m), m - 1)`` of the ``m``
    values, so it reaches alpha exactly when at most ``k`` of them are below
    alpha. Counting both by suffix sums tests every candidate at once.

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
        Rescaled similarity of the calibration points.
    probabilities : ndarray of shape (n_samples, n_classes)
        Their SDM outputs.
    y : ndarray of shape (n_samples,)
        Encoded true labels.
    alpha : float
        Target in ``(0.5, 1]``.

    Returns
    -------
    min_rescaled_similarity : float
        q'_min, ``inf`` when no candidate passes.
    thresholds : ndarray of shape (n_classes,)
        psi at q'_min; ``inf`` for every class when no region exists.
    """
    n_classes = probabilities.shape[1]
    candidates = np.unique(q_prime[np.floor(q_prime) > 0])
    passing = np.ones(len(candidates), dtype=bool)
    for c in range(n_classes):
        member = y == c
        q_c = np.sort(q_prime[member])
        q_low = np.sort(q_prime[member & (probabilities[:, c] < alpha)])
        n_at_least = len(q_c) - np.searchsorted(q_c, candidates, side="left")
        n_low = len(q_low) - np.searchsorted(q_low, candidates, side="left")
        passing &= (n_at_least > 0) & (n_low <= quantile_index(n_at_least, alpha))
    if not np.any(passing):
        return np.inf, np.full(n_classes, np.inf)
    q_min = float(candidates[np.argmax(passing)])
    psi = class_probability_thresholds(probabilities, y, q_prime >= q_min, alpha)
    return q_min, psi


def class_rescaled_values(q_prime, y, n_classes):
    """Sorted q' of the calibration points per true class (all of them).

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
    y : ndarray of shape (n_samples,)
    n_classes : int

    Returns
    -------
    values : list of ndarray
    """
    return [np.sort(q_prime[y == c]) for c in range(n_classes)]


def effective_sample_size(q_prime, class_values):
    """``n_min(x) = min_c`` number of class-c calibration q' below ``q'(x)``.

    Each class count is capped at ``n_c - 1`` (the reference's convention)
    and floored at 0.

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
    class_values : list of ndarray
        Output of :func:`class_rescaled_values`.

    Returns
    -------
    n_min : ndarray of shape (n_samples,), int64
    """
    n_min = np.full(len(q_prime), np.iinfo(np.int64).max, dtype=np.int64)
    for values in class_values:
        below = np.searchsorted(values, q_prime, side="left")
        np.minimum(n_min, np.clip(below, 0, max(len(values) - 1, 0)), out=n_min)
    return n_min


def dkw_epsilon(n_min, alpha):
    """DKW band half-width ``sqrt(ln(2 / (1 - alpha)) / (2 n_min))``.

    1 where ``n_min == 0``; capped at 1 (which already makes the lower
    distance 0). ``alpha = 1`` gives 1 everywhere.

    Parameters
    ----------
    n_min : ndarray of shape (n_samples,)
    alpha : float

    Returns
    -------
    eps : ndarray of shape (n_samples,)
    """
    n_min = np.asarray(n_min, dtype=np.float64)
    if alpha >= 1.0:
        return np.ones_like(n_min)
    log_term = math.log(2.0 / (1.0 - alpha))
    with np.errstate(divide="ignore"):
        eps = np.sqrt(log_term / (2.0 * n_min))
    return np.minimum(eps, 1.0)


def admit(q_prime, predicted_probability, predictions, min_rescaled_similarity,
          thresholds):
    """The selection rule of eq. 9.

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
    predicted_probability : ndarray of shape (n_samples,)
        SDM output of the predicted class.
    predictions : ndarray of shape (n_samples,)
        Encoded predicted class.
    min_rescaled_similarity : float
        q'_min (``inf``: nothing is admitted).
    thresholds : ndarray of shape (n_classes,)
        psi.

    Returns
    -------
    admitted : ndarray of shape (n_samples,), bool
    """
    return (
        (np.floor(q_prime) > 0)
        & (q_prime >= min_rescaled_similarity)
        & (predicted_probability >= thresholds[predictions])
    )



# Where the certified sequence of thresholds starts (see certified_thresholds):
# at the largest q' whose region holds this fraction of every predicted
# class's in-distribution calibration points.
CERTIFIED_START_FRACTION = 0.5


def zero_error_count(alpha, confidence):
    """The fewest points a cell needs to certify ``alpha`` with no error.

    ``ceil(ln(1 - confidence) / ln(alpha))``: with fewer, even a cell whose
    every point is right has a binomial p-value above ``1 - confidence``
    (59 at 0.95 / 0.95, 29 at 0.9 / 0.95).

    Parameters
    ----------
    alpha : float
        In ``(0.5, 1]``.
    confidence : float
        In ``(0, 1)``.

    Returns
    -------
    count : int or float
        ``inf`` for ``alpha = 1`` (no count suffices).
    """
    if alpha >= 1.0:
        return math.inf
    count = math.log1p(-confidence) / math.log(alpha)
    # a count that is a whole number up to rounding needs no extra point
    return max(1, math.ceil(count - 1e-9))


def _cells_pass(n, n_wrong, alpha, confidence):
    """Exact one-sided binomial tests of "accuracy below alpha".

    A cell of ``n`` points with ``n_wrong`` errors passes when
    ``P(Binomial(n, 1 - alpha) <= n_wrong) <= 1 - confidence``; an empty
    cell never passes.
    """
    n = np.asarray(n, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        p_value = bdtr(np.asarray(n_wrong, dtype=np.int64), n, 1.0 - alpha)
    return (n > 0) & (p_value <= 1.0 - confidence)


def _certified_start(predicted, ends, n_classes):
    """Index into ``ends`` of the first candidate of the sequence: the first
    that holds ``CERTIFIED_START_FRACTION`` of every predicted class."""
    start_ok = np.ones(len(ends), dtype=bool)
    for c in range(n_classes):
        n_predicted = np.cumsum(predicted == c)[ends]
        start_ok &= n_predicted >= CERTIFIED_START_FRACTION * n_predicted[-1]
    return int(np.argmax(start_ok))  # it holds at the last candidate


def certified_thresholds(q_prime, probabilities, y, levels, confidence):
    """q'_min of the certified region at every level (see the method page).

    At level ``a`` the candidate regions are ``R_a(t) = {floor(q') > 0,
    q' >= t, SDM(z')_yhat >= a}`` for the distinct calibration values ``t``
    of q'. ``R_a(t)`` passes when, for every class ``c``, the calibration
    points of true class ``c`` in it and those predicted ``c`` both reject
    "accuracy below a" in an exact binomial test at level ``1 -
    confidence`` (an intersection-union test). The candidates are tested in
    a fixed sequence of decreasing ``t`` from a start chosen without labels
    or levels: the largest ``t`` whose ``{floor(q') > 0, q' >= t}`` holds
    ``CERTIFIED_START_FRACTION`` of every predicted class's in-distribution
    points. The level's own threshold is the last candidate passing before
    the first failure (none when the start fails). Every candidate from
    the start down to it passed, so raising it to the largest own
    threshold of a lower level keeps it certified; that makes the regions
    nested: a point admitted at a level is admitted at every lower one.

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
        Rescaled similarity of the calibration points.
    probabilities : ndarray of shape (n_samples, n_classes)
        Their SDM outputs.
    y : ndarray of shape (n_samples,)
        Encoded true labels.
    levels : sequence of float
        Targets in ``(0.5, 1]``.
    confidence : float
        In ``(0, 1)``.

    Returns
    -------
    thresholds : ndarray of shape (n_levels,)
        q'_min per level, in the order of ``levels``; ``inf`` where no
        region exists.
    """
    levels = np.asarray(levels, dtype=np.float64)
    n_classes = probabilities.shape[1]
    predictions = np.argmax(probabilities, axis=1)
    p_hat = probabilities[np.arange(len(y)), predictions]
    inside = np.flatnonzero(np.floor(q_prime) > 0)
    own = np.full(len(levels), np.inf)
    if len(inside):
        order = inside[np.argsort(-q_prime[inside], kind="stable")]
        q_sorted = q_prime[order]
        # the region of a candidate t is the prefix of `order` ending at
        # the last point with q' == t
        ends = np.flatnonzero(np.r_[q_sorted[1:] != q_sorted[:-1], True])
        predicted, true = predictions[order], y[order]
        wrong = predicted != true
        start = _certified_start(predicted, ends, n_classes)
        for k, level in enumerate(levels):
            admissible = p_hat[order] >= level
            passing = np.ones(len(ends) - start, dtype=bool)
            for c in range(n_classes):
                for member in (predicted == c, true == c):
                    member = member & admissible
                    n = np.cumsum(member)[ends[start:]]
                    n_wrong = np.cumsum(member & wrong)[ends[start:]]
                    passing &= _cells_pass(n, n_wrong, level, confidence)
            if passing[0]:
                last = len(passing) - 1 if passing.all() else np.argmin(passing) - 1
                own[k] = q_sorted[ends[start + last]]
    # nested: the largest finite own threshold of the level and those below
    thresholds = np.full(len(levels), np.inf)
    for k, level in enumerate(levels):
        if np.isfinite(own[k]):
            thresholds[k] = own[(levels <= level) & np.isfinite(own)].max()
    return thresholds


def region_ladder(q_prime, probabilities, y, levels, confidence):
    """The regions of a descending ladder of levels, nested.

    A point is admitted at a level when the region of that level or of any
    higher one admits it (see :func:`admit_at`), so that a point admitted at
    a level is admitted at every lower one.

    - ``confidence`` given: each level's certified region
      (:func:`certified_thresholds`), with the class thresholds equal to
      the level. These are nested by construction.
    - ``confidence=None``: the paper's Alg. 1 at each level, fitted top down
      on the calibration points not admitted at a higher level (the
      construction of the reference implementation).

    Parameters
    ----------
    q_prime : ndarray of shape (n_samples,)
    probabilities : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,)
        Encoded true labels.
    levels : sequence of float
        Distinct targets in ``(0.5, 1]``, in decreasing order.
    confidence : float or None

    Returns
    -------
    regions : tuple of (float, ndarray)
        ``(q'_min, psi)`` per level, in the order of ``levels``.
    """
    n_classes = probabilities.shape[1]
    if confidence is not None:
        q_mins = certified_thresholds(q_prime, probabilities, y, levels,
                                      confidence)
        return tuple(
            (float(q_min), np.full(n_classes, level if np.isfinite(q_min)
                                   else np.inf))
            for q_min, level in zip(q_mins, levels, strict=True)
        )
    predictions = np.argmax(probabilities, axis=1)
    p_hat = probabilities[np.arange(len(y)), predictions]
    admitted = np.zeros(len(y), dtype=bool)
    regions = []
    for level in levels:
        rest = ~admitted
        q_min, psi = high_reliability_region(
            q_prime[rest], probabilities[rest], y[rest], level
        )
        regions.append((q_min, psi))
        admitted |= admit(q_prime, p_hat, predictions, q_min, psi)
    return tuple(regions)


def admit_at(q_prime, predicted_probability, predictions, regions):
    """Admission by any of several regions (a level and those above it).

    Parameters
    ----------
    q_prime, predicted_probability, predictions : ndarray of shape (n_samples,)
    regions : sequence of (float, ndarray)
        ``(q'_min, psi)`` pairs.

    Returns
    -------
    admitted : ndarray of shape (n_samples,), bool
    """
    admitted = np.zeros(len(q_prime), dtype=bool)
    for q_min, thresholds in regions:
        admitted |= admit(q_prime, predicted_probability, predictions, q_min,
                          thresholds)
    return admitted


# The reasons of rejection_reasons, in code order.
REASONS = (
    "admitted",
    "out_of_distribution",
    "no_region",
    "below_region",
    "below_class_threshold",
)


def rejection_reasons(q_prime, predicted_probability, predictions, admitted,
                      min_rescaled_similarity, thresholds):
    """Why each point is rejected (codes into :data:`REASONS`).

    The first that applies: ``admitted``; ``out_of_distribution``
    (``floor(q') = 0``); ``no_region`` (no region exists at the level);
    ``below_region`` (``q' < q'_min``); ``below_class_threshold``
    (``SDM(z')_yhat < psi_yhat``).

    Parameters
    ----------
    q_prime, predicted_probability, predictions : ndarray of shape (n_samples,)
    admitted : ndarray of shape (n_samples,), bool
    min_rescaled_similarity : float
        q'_min of the level.
    thresholds : ndarray of shape (n_classes,)

    Returns
    -------
    codes : ndarray of shape (n_samples,), int8
    """
    codes = np.select(
        [
            admitted,
            np.floor(q_prime) == 0,
            np.full(len(q_prime), not np.isfinite(min_rescaled_similarity)),
            q_prime < min_rescaled_similarity,
        ],
        [0, 1, 2, 3],
        default=4,
    )
    return codes.astype(np.int8)
