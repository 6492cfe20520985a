"""The stratified random split into support (D_tr) and calibration (D_ca)."""

import numpy as np


def stratified_split(y, calibration_size, rng):
    """Split indices class by class, each class present in both splits.

    Class ``c`` with ``n_c >= 2`` points sends
    ``clip(round(calibration_size * n_c), 1, n_c - 1)`` of them to the
    calibration split.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Encoded labels; every class has at least two points.
    calibration_size : float
        Fraction in ``(0, 1)``.
    rng : numpy.random.Generator

    Returns
    -------
    support_index, calibration_index : ndarray of int
        Sorted, disjoint, covering ``range(n_samples)``.
    """
    support, calibration = [], []
    for c in range(int(y.max()) + 1):
        members = rng.permutation(np.flatnonzero(y == c))
        n_calibration = int(np.clip(round(calibration_size * len(members)), 1,
                                    len(members) - 1))
        calibration.append(members[:n_calibration])
        support.append(members[n_calibration:])
    return np.sort(np.concatenate(support)), np.sort(np.concatenate(calibration))
