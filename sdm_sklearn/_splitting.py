"""The stratified random split into support (D_tr) and calibration (D_ca)."""

import numpy as np

# Rows that label_counts counts at a time.
COUNT_ROWS = 2**20


def label_counts(labels):
    """``np.bincount(labels)`` of non-negative integer labels, in blocks.

    np.bincount converts labels of a smaller integer type (a fit on a
    cluster keeps one byte a row) to 8-byte integers first; counted a
    block at a time, that copy stays a block's size.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,), int

    Returns
    -------
    counts : ndarray of shape (labels.max() + 1,), int64
        Zero-length for no labels.
    """
    n_labels = int(labels.max()) + 1 if len(labels) else 0
    counts = np.zeros(n_labels, dtype=np.int64)
    for start in range(0, len(labels), COUNT_ROWS):
        counts += np.bincount(labels[start:start + COUNT_ROWS],
                              minlength=n_labels)
    return counts


def calibration_counts(class_counts, calibration_size):
    """Points of each class sent to the calibration split.

    ``clip(round(calibration_size * n_c), 1, n_c - 1)`` for class ``c`` with
    ``n_c >= 2`` points.

    Parameters
    ----------
    class_counts : ndarray of shape (n_classes,)
    calibration_size : float

    Returns
    -------
    counts : ndarray of shape (n_classes,), int
    """
    class_counts = np.asarray(class_counts)
    return np.clip(
        np.round(calibration_size * class_counts), 1, class_counts - 1
    ).astype(int)


def stratified_split(y, calibration_size, rng, dtype=np.int64):
    """Split indices class by class, each class present in both splits.

    Class ``c`` sends :func:`calibration_counts` of its points to the
    calibration split.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Encoded labels; every class has at least two points.
    calibration_size : float
        Fraction in ``(0, 1)``.
    rng : numpy.random.Generator
    dtype : integer dtype, default=int64
        Of the indices (large enough for ``n_samples - 1``): the split
        drawn is the same for any.

    Returns
    -------
    support_index, calibration_index : ndarray of int
        Sorted, disjoint, covering ``range(n_samples)``.
    """
    support, calibration = [], []
    sizes = calibration_counts(label_counts(y), calibration_size)
    for c, n_calibration in enumerate(sizes):
        members = rng.permutation(np.flatnonzero(y == c).astype(dtype))
        calibration.append(members[:n_calibration])
        support.append(members[n_calibration:])
    support, calibration = np.concatenate(support), np.concatenate(calibration)
    support.sort()  # in place: no second copy of the largest array
    calibration.sort()
    return support, calibration


def stratified_subset(labels, size, min_per_class, rng):
    """About ``size`` of the rows, each class in proportion to its count.

    Class ``c`` with ``n_c`` rows gives ``max(round(size * n_c / n),
    min(n_c, min_per_class))`` of them, drawn without replacement.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Encoded labels.
    size : int
    min_per_class : int
    rng : numpy.random.Generator
        Used only when a subset is drawn.

    Returns
    -------
    rows : ndarray of int or None
        Sorted positions; None when ``n <= size`` (every row).
    """
    if len(labels) <= size:
        return None
    counts = label_counts(labels)
    wanted = np.maximum(np.round(size * counts / len(labels)),
                        np.minimum(counts, min_per_class))
    rows = [rng.choice(np.flatnonzero(labels == c), int(k), replace=False)
            for c, k in enumerate(wanted.astype(int))]
    return np.sort(np.concatenate(rows))
