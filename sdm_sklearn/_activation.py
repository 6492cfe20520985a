"""The SDM activation (eq. 6 of Schmaltz, arXiv:2509.12760), its loss and gradient.

All functions are vectorized numpy over rows; they know nothing of
scikit-learn.
"""

import numpy as np

__all__ = ["sdm_activation"]

# Score step between consecutive logit ranks where d = 0, divided by the
# number of classes (see limit_scores).
LIMIT_STEP = 1e-12


def softmax(scores):
    """Numerically stable row-wise softmax (a new array).

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_classes)

    Returns
    -------
    probabilities : ndarray of shape (n_samples, n_classes)
    """
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def sdm_scale(q, d):
    """Per-row factor ``ln(2 + q) * d`` that turns logits into SDM scores.

    Parameters
    ----------
    q : ndarray of shape (n_samples,)
        Similarity values (non-negative).
    d : ndarray of shape (n_samples,)
        Distance quantiles in ``[0, 1]``.

    Returns
    -------
    scale : ndarray of shape (n_samples,)
    """
    return np.log(2.0 + q) * d


def sdm_activation(z, q, d):
    """Similarity-Distance-Magnitude activation.

    ``SDM(z)_i = (2 + q)^(d z_i) / sum_c (2 + q)^(d z_c)``, computed as a
    stable softmax of ``ln(2 + q) * d * z``. With ``q = e - 2`` and ``d = 1``
    it is the softmax; with ``d = 0`` it is exactly uniform.

    Parameters
    ----------
    z : array-like of shape (n_samples, n_classes)
        Logits (the magnitude term).
    q : array-like of shape (n_samples,)
        Similarity: non-negative, typically a count of matching neighbours.
    d : array-like of shape (n_samples,)
        Distance quantile in ``[0, 1]``.

    Returns
    -------
    probabilities : ndarray of shape (n_samples, n_classes)
        Rows sum to one.

    Examples
    --------
    >>> import numpy as np
    >>> from sdm_sklearn import sdm_activation
    >>> z = np.array([[2.0, 0.0]])
    >>> sdm_activation(z, q=np.array([np.e - 2]), d=np.array([1.0]))
    array([[0.88079708, 0.11920292]])
    >>> sdm_activation(z, q=np.array([30.0]), d=np.array([0.0]))
    array([[0.5, 0.5]])
    """
    z = np.asarray(z, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(
            f"Expected z of shape (n_samples, n_classes), got shape {z.shape}."
        )
    if q.shape != (z.shape[0],) or d.shape != (z.shape[0],):
        raise ValueError(
            "Expected q and d of shape (n_samples,) matching z with "
            f"n_samples={z.shape[0]}, got q of shape {q.shape} and d of shape "
            f"{d.shape}."
        )
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(q))):
        raise ValueError("Input z and q must be finite (no NaN or infinity).")
    if np.any(q < 0):
        raise ValueError("Similarity q must be non-negative.")
    if np.any(~((d >= 0) & (d <= 1))):
        raise ValueError("Distance quantile d must lie in [0, 1].")
    return softmax(sdm_scale(q, d)[:, None] * z)


def limit_scores(z, q, d):
    """SDM scores ``ln(2 + q) d z``, ordered like ``z`` where ``d = 0``.

    At ``d = 0`` every score is 0 and the SDM output exactly uniform.
    ``predict_proba`` and ``decision_function`` report the limit from above
    instead: scores ``LIMIT_STEP / C`` times the centred dense rank of each
    logit among the ``C`` classes (equal logits share their rank), so within
    ``5e-13`` of the exact 0 and ordered like ``z``; their softmax is within
    ``1e-12`` of uniform
    and its argmax is ``predict``, the argmax of ``z``, everywhere. Offsets
    proportional to ``z`` itself would be lost to rounding for close logits.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes)
    q, d : ndarray of shape (n_samples,)

    Returns
    -------
    scores : ndarray of shape (n_samples, n_classes)
        ``softmax(scores)`` is the reported probability.
    """
    scores = sdm_scale(q, d)[:, None] * np.asarray(z, dtype=np.float64)
    zero = d == 0
    if np.any(zero):
        ranks = _dense_ranks(np.asarray(z)[zero])
        ranks -= ranks.mean(axis=1, keepdims=True)
        scores[zero] = LIMIT_STEP * ranks / scores.shape[1]
    return scores


def _dense_ranks(values):
    """Row-wise dense ranks (0, 1, ...; equal values share a rank) as floats."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    steps = np.diff(ordered, axis=1) > 0
    sorted_ranks = np.concatenate(
        [np.zeros((len(values), 1)), np.cumsum(steps, axis=1)], axis=1
    )
    ranks = np.empty_like(sorted_ranks)
    np.put_along_axis(ranks, order, sorted_ranks, axis=1)
    return ranks


def sdm_loss(z, y, q, d, *, class_balanced=False, n_classes=None,
             sample_weight=None):
    """SDM loss of eq. 7: mean of ``-log_{2+q} SDM(z)_y``.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,)
        Encoded labels in ``0 .. n_classes - 1``.
    q, d : ndarray of shape (n_samples,)
    class_balanced : bool, default=False
        Average the per-class mean losses instead of all points.
    n_classes : int, default=None
        Number of classes for the balanced mean (defaults to ``z.shape[1]``);
        classes without points (or without weight) are left out of the mean.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weighted means (within each class for the balanced mean); a point
        of integer weight ``k`` counts as ``k`` copies of it.

    Returns
    -------
    loss : float
    """
    scores = sdm_scale(q, d)[:, None] * z
    top = scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores - top).sum(axis=1)) + top[:, 0]
    log_prob = scores[np.arange(len(y)), y] - log_norm
    per_point = -log_prob / np.log(2.0 + q)
    if sample_weight is not None:
        per_point = per_point * sample_weight
    if not class_balanced:
        if sample_weight is None:
            return float(per_point.mean())
        return float(per_point.sum() / np.sum(sample_weight))
    n_classes = z.shape[1] if n_classes is None else n_classes
    totals = np.bincount(y, weights=per_point, minlength=n_classes)
    counts = np.bincount(y, weights=sample_weight, minlength=n_classes)
    present = counts > 0
    return float(np.mean(totals[present] / counts[present]))


def sdm_loss_gradient(z, y, q, d, sample_weight=None):
    """Gradient of the training loss with respect to ``z``.

    ``d_n * w_n * (SDM(z_n) - onehot(y_n)) / n_samples`` per row (paper,
    A.4.1; ``w_n = 1`` without weights): the gradient of :func:`sdm_loss`
    (plain mean), each point's term scaled by its weight. The weights are
    normalized to mean 1 over the support split, so weights of 1 change
    nothing, bit for bit.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,)
        Encoded labels.
    q, d : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    grad : ndarray of shape (n_samples, n_classes)
    """
    return scaled_gradient(z, y, sdm_scale(q, d),
                           gradient_weights(d, sample_weight))


def gradient_weights(d, sample_weight=None):
    """Row factors of :func:`sdm_loss_gradient`: ``d_n w_n / n_samples``.

    Parameters
    ----------
    d : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    weights : ndarray of shape (n_samples,)
    """
    weights = d / len(d)
    if sample_weight is not None:
        weights = weights * sample_weight
    return weights


def scaled_gradient(z, y, scale, weights, out=None):
    """``weights_n (softmax(scale_n z_n) - onehot(y_n))`` per row.

    :func:`sdm_loss_gradient` with its factors given: ``scale`` from
    :func:`sdm_scale` and ``weights`` from :func:`gradient_weights`, so that
    a caller can compute them once for many mini-batches (both are
    elementwise: a row's factors do not depend on the other rows).

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,)
    scale, weights : ndarray of shape (n_samples,)
    out : ndarray of shape (n_samples, n_classes), default=None
        Written with the gradient rounded once to its dtype (None: a new
        float64 array).

    Returns
    -------
    grad : ndarray of shape (n_samples, n_classes)
    """
    grad = softmax(scale[:, None] * z)
    grad[np.arange(len(y)), y] -= 1.0
    return np.multiply(grad, weights[:, None], out=out)
