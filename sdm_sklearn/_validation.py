"""One home for the rules on inputs: targets, labels and masks.

- ``alpha`` (and every level of a ladder) is a target accuracy in
  ``(0.5, 1]``: above one half, so that a class threshold decides a single
  class. The scikit-learn face, the metrics and the command line all check
  it here.
- Labels given to the metrics and displays must be defined, finite and of
  one kind that can be compared; masks are bool or 0/1 integers
  (:func:`check_mask`); ``MARGINAL`` names the last row of a selective
  report, so no class may carry it. The public modules (metrics, plotting,
  report) check them here instead of importing each other's private names.
"""

import numbers
import warnings
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils import check_consistent_length
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import column_or_1d

ALPHA = Interval(Real, 0.5, 1, closed="right")
# The last row of a selective report: all admitted points, whatever their label.
MARGINAL = "marginal"


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


def check_inputs(y_true, y_pred, *values):
    """Validate the lengths and shapes of the per-sample arrays of the metrics.

    ``y_pred`` is kept as an object array so that a rejection marker of
    another type (e.g. ``None`` or ``"reject"`` among integer labels) does not
    coerce the labels themselves. ``values`` (masks or a confidence score)
    are only checked for their length: each caller converts them.

    Returns
    -------
    y_true, y_pred : ndarray of shape (n_samples,)
    """
    check_consistent_length(y_true, y_pred, *values)
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred, dtype=object)
    if y_true.shape[0] == 0:
        raise ValueError(
            "Found empty input: 0 samples were given, while a minimum of 1 is required."
        )
    return y_true, y_pred


def check_predictions(y_true, y_pred, *values):
    """:func:`check_inputs` where every input has a prediction.

    Both label arrays must hold defined, finite labels of one kind.
    """
    y_true, y_pred = check_inputs(y_true, y_pred, *values)
    check_label_values(y_true, "y_true")
    check_label_values(y_pred, "y_pred")
    sorted_label_union(y_true=y_true, y_pred=y_pred)  # rejects a mix of kinds
    return y_true, y_pred


def check_label_values(values, input_name, *, where=""):
    """Raise if ``values`` holds a missing (NaN, None, pd.NA) or infinite label.

    Such a label is never equal to itself, so it would be counted as an
    error, or as a class of its own, without a word.
    """
    if values.dtype.kind in "biuUS":  # these dtypes cannot hold either
        return
    invalid = pd.isna(values) | pd.Series(values).isin([np.inf, -np.inf]).to_numpy()
    if invalid.any():
        found = ", ".join(sorted({repr(value) for value in values[invalid].tolist()}))
        raise ValueError(
            f"Input {input_name} contains missing or infinite labels ({found})"
            f"{where}; every label must be a defined, finite value."
        )


def label_kind(value):
    """How a label is described in error messages."""
    if isinstance(value, str):
        return "strings"
    if isinstance(value, numbers.Number):
        return "numbers"
    return f"{type(value).__name__} objects"


def sorted_label_union(**label_arrays):
    """Sorted list of the distinct labels of the named ``label_arrays``.

    Labels that cannot be sorted together (e.g. strings and integers) can
    never be equal either: comparing them would count every pair as an
    error, so they are refused.
    """
    labels = set()
    for array in label_arrays.values():
        labels.update(array.tolist())
    try:
        return sorted(labels)
    except TypeError as exc:
        kinds = "; ".join(
            f"{name}: {' and '.join(sorted({label_kind(v) for v in array.tolist()}))}"
            for name, array in label_arrays.items()
        )
        raise ValueError(
            f"Mix of label input types ({kinds}): labels must all be of one kind "
            "that can be compared (e.g. all integers or all strings)."
        ) from exc


def check_mask(mask, input_name):
    """A boolean mask from bool values or 0/1 integers; anything else raises.

    The one rule for every mask the package takes (``admitted``, ``is_ood``,
    ``correct``): strings such as ``"False"`` or fractions such as 0.5 are
    refused rather than cast to booleans.

    Parameters
    ----------
    mask : array-like of shape (n_samples,)
    input_name : str
        The mask's name in error messages.

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool

    Raises
    ------
    ValueError
        For missing values, another dtype, or integers other than 0 and 1.
    """
    dtype = getattr(mask, "dtype", None)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "biu":
        # pandas' nullable booleans and integers, which numpy sees as floats.
        if np.asarray(pd.isna(mask)).any():
            raise ValueError(
                f"{input_name} contains missing values (pd.NA); it must be a "
                "boolean mask."
            )
        mask = np.asarray(mask, dtype=dtype.numpy_dtype)
    mask = column_or_1d(mask)
    if mask.dtype.kind == "b":
        return mask
    if mask.dtype.kind not in "iu":
        raise ValueError(
            f"{input_name} must be a boolean mask of bool or 0/1 integer values; "
            f"got an array of dtype {mask.dtype}."
        )
    unexpected = np.setdiff1d(mask, [0, 1])
    if unexpected.size:
        raise ValueError(
            f"{input_name} must be a boolean mask of bool or 0/1 integer values; "
            f"got the integer values {unexpected.tolist()}."
        )
    return mask.astype(bool)


def check_y_against_classes(y, classes, stacklevel=3):
    """``y`` as an array, checked against the estimator's classes.

    A label of another kind than ``classes`` (e.g. the string ``"1"`` for
    the class ``1``) can never be predicted, so it raises. A label of the
    same kind outside ``classes`` (an unseen class, or a typo) warns: every
    prediction for it counts as wrong, which is what a test set of an
    unseen class is meant to show. ``stacklevel`` points the warning at
    the user's call.
    """
    y = column_or_1d(y)
    check_label_values(y, "y")
    sorted_label_union(y=y, classes_=classes)
    unknown = sorted(set(y.tolist()).difference(classes.tolist()))
    if unknown:
        shown = unknown[:5] + (["..."] if len(unknown) > 5 else [])
        warnings.warn(
            f"y contains labels that are not among the estimator's classes_ "
            f"{classes.tolist()}: {shown}; every prediction for them counts "
            "as wrong.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return y
