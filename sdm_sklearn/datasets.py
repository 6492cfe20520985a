"""Small shifted and out-of-distribution test sets built from scikit-learn data.

Everything here is offline: the digits images ship with scikit-learn.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = ["make_shifted_digits"]


def _translate(images, offsets):
    """Move each 8x8 image by (rows, cols) pixels, filling with zeros."""
    out = np.zeros_like(images)
    for image, target, (dr, dc) in zip(images, out, offsets, strict=True):
        rows_src = slice(max(0, -dr), 8 - max(0, dr))
        rows_dst = slice(max(0, dr), 8 - max(0, -dr))
        cols_src = slice(max(0, -dc), 8 - max(0, dc))
        cols_dst = slice(max(0, dc), 8 - max(0, -dc))
        target[rows_dst, cols_dst] = image[rows_src, cols_src]
    return out


def make_shifted_digits(*, test_size=0.3, shift_pixels=1, random_state=0):
    """Load digits with an in-distribution, a shifted and a far-OOD test set.

    The 8x8 digit images (pixel values 0-16) are split into training and
    test images. The test images appear three times:

    - ``"in-distribution"``: as they are;
    - ``"shifted"``: covariate shift, every image translated by
      ``shift_pixels`` in a random one of the eight directions (zero fill):
      still a recognizable digit to a person, but not where the training
      digits were;
    - ``"out-of-distribution"``: every image's pixels shuffled by its own
      random permutation (same pixel histogram, no digit left); labels are
      kept, but no prediction on them is meaningful.

    Parameters
    ----------
    test_size : float, default=0.3
        Fraction of images held out, stratified by class.
    shift_pixels : int, default=1
        Size of the translation of the shifted set, in pixels (0 to 7).
    random_state : int, RandomState instance or None, default=0
        Seeds the split and the corruptions.

    Returns
    -------
    X_train : ndarray of shape (n_train, 64)
        The training images, one row of 64 pixel values per image.
    y_train : ndarray of shape (n_train,)
        Their digits, 0 to 9.
    test_sets : dict of str to (ndarray, ndarray)
        ``(X, y)`` for each of the three test sets, in the order above.

    Examples
    --------
    >>> from sdm_sklearn.datasets import make_shifted_digits
    >>> X_train, y_train, test_sets = make_shifted_digits(random_state=0)
    >>> X_train.shape, list(test_sets)
    ((1257, 64), ['in-distribution', 'shifted', 'out-of-distribution'])
    """
    if not 0 <= shift_pixels < 8:
        raise ValueError(f"shift_pixels must be in [0, 7], got {shift_pixels}.")
    rng = check_random_state(random_state)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=rng
    )
    directions = np.array(
        [(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1) if (r, c) != (0, 0)]
    )
    offsets = directions[rng.randint(len(directions), size=len(X_test))]
    shifted = _translate(X_test.reshape(-1, 8, 8), offsets * shift_pixels)
    shuffled = np.array([row[rng.permutation(row.size)] for row in X_test])
    test_sets = {
        "in-distribution": (X_test, y_test),
        "shifted": (shifted.reshape(len(X_test), -1), y_test),
        "out-of-distribution": (shuffled, y_test),
    }
    return X_train, y_train, test_sets
