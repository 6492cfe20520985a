"""One home for the rules on targets: what an ``alpha`` is.

``alpha`` (and every level of a ladder) is a target accuracy in
``(0.5, 1]``: above one half, so that a class threshold decides a single
class. The scikit-learn face, the metrics and the command line all check
it here.
"""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

ALPHA = Interval(Real, 0.5, 1, closed="right")


def is_alpha(value):
    """Whether ``value`` is a target accuracy: a number (not a bool) in (0.5, 1].

    Parameters
    ----------
    value : object

    Returns
    -------
    valid : bool
    """
    return not isinstance(value, (bool, np.bool_)) and ALPHA.is_satisfied_by(value)


def alpha_levels(levels):
    """A ladder's levels, validated, as a tuple of floats in given order.

    Parameters
    ----------
    levels : array-like of numbers or None

    Returns
    -------
    levels : tuple of float
        Empty for None.

    Raises
    ------
    ValueError
        When ``levels`` is not a sequence of numbers, or a level is not in
        ``(0.5, 1]``.
    """
    if levels is None:
        return ()
    try:
        values = np.asarray(levels, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"alpha_levels must be a sequence of numbers in (0.5, 1]; got {levels!r}."
        ) from error
    for value in values:
        if not is_alpha(float(value)):
            raise ValueError(
                f"Every value of alpha_levels must be in (0.5, 1]; got {value}."
            )
    return tuple(float(value) for value in values)
