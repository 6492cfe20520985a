"""Labels, the rejection marker and row identifiers, as users give them.

The rules that keep a rejection from ever reading like a class live here:
the marker is a single value that is not a class, and the array
``predict_selective`` returns has a dtype that holds every class and the
marker exactly (an object array when no common dtype does).
"""

import numbers

import numpy as np
from sklearn.utils.validation import _num_samples


def plain_value(value):
    """A numpy scalar as the Python value it holds (other values unchanged)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and np.ndim(value) == 0 else value


def check_class_counts(classes, counts):
    """Two classes at least, each large enough for both splits."""
    if len(classes) < 2:
        raise ValueError(
            "SDMClassifier needs samples of at least 2 classes in the data, "
            f"but the data contain only one class: {plain_value(classes[0])!r}."
        )
    too_small = [plain_value(label) for label in classes[counts < 2]]
    if too_small:
        raise ValueError(
            "Every class needs at least 2 samples, one for the support split "
            "and one for the calibration split; these classes have only one: "
            f"{too_small!r}."
        )


def check_no_missing_labels(y):
    """Raise when labels hold NaN or None (a missing label is not a class)."""
    import pandas as pd

    if np.any(pd.isna(y)):
        raise ValueError("y contains missing labels (NaN or None).")


def resolve_rejection_label(rejection_label, classes):
    """The marker for rejected inputs: a single value, never one of the classes.

    Parameters
    ----------
    rejection_label : object
        The parameter. None: -1 for numeric classes (one less than the
        smallest class if -1 is a class) and "rejected" otherwise, with
        underscores appended while it equals a class.
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    marker : object
    """
    if rejection_label is None:
        numeric = classes.dtype.kind in "iuf"
        if not numeric:
            rejection_label = "rejected"
            while np.any(classes == np.asarray(rejection_label, dtype=object)):
                rejection_label += "_"
        elif -1 in classes:
            # a Python number: classes.min() - 1 would wrap around in int8
            rejection_label = plain_value(classes.min()) - 1
        else:
            rejection_label = -1
    if not isinstance(rejection_label, (str, bytes, numbers.Number, np.generic)) \
            or np.ndim(rejection_label) != 0:
        raise ValueError(
            "rejection_label must be a single value (a number or a string); "
            f"got {rejection_label!r}."
        )
    if isinstance(rejection_label, numbers.Number) and np.isnan(rejection_label):
        raise ValueError(
            "rejection_label must not be NaN: rejected rows could then not be "
            "found with `predictions == clf.rejection_label_`."
        )
    if np.any(classes == np.asarray(rejection_label, dtype=object)):
        raise ValueError(
            f"rejection_label={rejection_label!r} is one of the classes (or "
            "equal to one); choose a value that is not a label."
        )
    return rejection_label


def selective_dtype(classes, marker):
    """A dtype holding every class and the marker exactly, else object.

    A common dtype of the same kind as the classes is used when both the
    classes and the marker survive the cast unchanged (integers of any
    width count as one kind, so int8 classes with the marker -129 give
    int16); otherwise, e.g. for a numeric marker with string classes, the
    result is an object array, in which the marker stays a number.
    """
    if isinstance(marker, (int, float)) and not isinstance(marker, bool):
        # a Python number: the smallest dtype holding it, so that int8
        # classes with the marker -2 stay int8
        marker_dtype = np.min_scalar_type(marker)
    else:
        marker_dtype = np.asarray(marker).dtype
    try:
        common = np.result_type(classes.dtype, marker_dtype)
    except TypeError:
        return np.dtype(object)
    same_kind = common.kind == classes.dtype.kind or (
        common.kind in "iu" and classes.dtype.kind in "iu"
    )
    if not same_kind or common.kind not in "biufUS":
        return np.dtype(object)
    with np.errstate(all="ignore"):
        classes_kept = np.array_equal(classes.astype(common), classes)
        marker_kept = np.asarray(marker).astype(common) == marker
    return common if classes_kept and bool(marker_kept) else np.dtype(object)


def selective_labels(predictions, admitted, marker, classes):
    """The prediction where admitted, the marker elsewhere.

    Parameters
    ----------
    predictions : ndarray of shape (n_samples,)
        Predicted labels.
    admitted : ndarray of shape (n_samples,), bool
    marker : object
        Output of :func:`resolve_rejection_label`.
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    out = np.empty(len(admitted), dtype=selective_dtype(classes, marker))
    out[:] = marker
    out[admitted] = predictions[admitted]
    return out


def as_ids(ids, n_samples):
    """Identifiers as given: one scalar per row, mixed kinds kept (object).

    Parameters
    ----------
    ids : array-like of shape (n_samples,)
    n_samples : int
        Number of rows they identify.

    Returns
    -------
    ids : ndarray of shape (n_samples,)
    """
    values = ids.to_numpy() if hasattr(ids, "to_numpy") else ids
    try:
        array = np.asarray(values)
    except ValueError as error:
        raise ValueError(
            "ids must be a 1-D sequence of scalar identifiers, one per row; "
            f"got {type(ids).__name__}: {error}"
        ) from error
    if array.ndim != 1:
        raise ValueError(
            "ids must be a 1-D sequence of scalar identifiers, one per row; "
            f"got an array of shape {array.shape}."
        )
    if not isinstance(values, np.ndarray) and len({type(v) for v in values}) > 1:
        # numpy would cast mixed kinds to one (ints to strings or floats)
        array = np.empty(len(array), dtype=object)
        array[:] = list(values)
    if len(array) != n_samples:
        raise ValueError(
            f"ids has {len(array)} values, but there are {n_samples} rows."
        )
    return array


def input_index(X):
    """The index of a DataFrame input, else None."""
    return X.index if hasattr(X, "iloc") and hasattr(X, "index") else None


def row_labels(X, positions):
    """Index values of a DataFrame input at row positions, else the positions."""
    index = input_index(X)
    return positions if index is None else index.to_numpy()[positions]


def default_ids(X, first=0):
    """Identifiers of input rows: a DataFrame's index, else ``first, first+1, ...``."""
    index = input_index(X)
    if index is not None:
        return index.to_numpy()
    return np.arange(first, first + _num_samples(X))
