"""Metrics for selective classification.

A selective classifier either predicts a label or abstains. The functions in
this module summarise such predictors:

- :func:`selective_report` tabulates, per label, the accuracy and the amount of
  admitted (non-rejected) predictions, conditioned both on the true label and
  on the predicted label, as in Schmaltz, "Similarity-Distance-Magnitude
  Activations" (arXiv:2509.12760). :func:`format_selective_report` renders that
  table as compact text.
- :func:`risk_coverage_curve`, :func:`risk_coverage_auc` and
  :func:`coverage_at_accuracy` describe every selective predictor obtained by
  thresholding a confidence score.

All functions work with any selective predictor: they only need labels, the
predictions and either an admission mask or a confidence score.
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import column_or_1d

__all__ = [
    "coverage_at_accuracy",
    "format_selective_report",
    "risk_coverage_auc",
    "risk_coverage_curve",
    "selective_report",
]

_MARGINAL = "marginal"

# Column of the selective report -> format specification used for display.
_REPORT_FORMATS = {
    "class_accuracy": ".3f",
    "class_admitted": "d",
    "class_fraction": ".2f",
    "prediction_accuracy": ".3f",
    "prediction_admitted": "d",
    "prediction_fraction": ".2f",
}


def _check_inputs(y_true, y_pred, values):
    """Validate the three per-sample arrays shared by the metrics.

    ``y_pred`` is kept as an object array so that a rejection marker of
    another type (e.g. ``None`` or ``"reject"`` among integer labels) does not
    coerce the labels themselves.

    Returns
    -------
    y_true, y_pred, values : ndarray of shape (n_samples,)
    """
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred, dtype=object)
    values = column_or_1d(values)
    check_consistent_length(y_true, y_pred, values)
    if y_true.shape[0] == 0:
        raise ValueError(
            "Found empty input: 0 samples were given, while a minimum of 1 is required."
        )
    return y_true, y_pred, values


def _sorted_label_union(*label_arrays):
    """Sorted list of the distinct labels in ``label_arrays``."""
    labels = set()
    for array in label_arrays:
        labels.update(array.tolist())
    try:
        return sorted(labels)
    except TypeError as exc:
        raise ValueError(
            "Mix of label input types: y_true and y_pred must contain labels "
            "of a single kind (e.g. all integers or all strings)."
        ) from exc


def _check_admitted(admitted):
    """Convert a bool or 0/1 integer array to a bool mask."""
    if admitted.dtype.kind == "b":
        return admitted
    if admitted.dtype.kind not in "iu":
        raise ValueError(
            "admitted must be a boolean mask of bool or 0/1 integer values; "
            f"got an array of dtype {admitted.dtype}."
        )
    unexpected = np.setdiff1d(admitted, [0, 1])
    if unexpected.size:
        raise ValueError(
            "admitted must be a boolean mask of bool or 0/1 integer values; "
            f"got the integer values {unexpected.tolist()}."
        )
    return admitted.astype(bool)


def _count_by_label(values, labels):
    """Occurrences of each of ``labels`` in ``values``, then ``len(values)``.

    The appended total is the count of the ``"marginal"`` row of the report.
    """
    counts = pd.Series(values).value_counts().reindex(labels, fill_value=0)
    return np.append(counts.to_numpy(dtype=np.int64), len(values))


def _ratio(numerator, denominator):
    """Elementwise ``numerator / denominator``, NaN where the denominator is 0."""
    out = np.full(len(numerator), np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def selective_report(y_true, y_pred, admitted, *, labels=None):
    """Build the per-label table of a selective classifier.

    For every label, the table reports the accuracy and the amount of admitted
    (i.e. non-rejected) predictions, both among the points whose *true* label
    is that label (``class_*`` columns) and among the admitted points whose
    *predicted* label is that label (``prediction_*`` columns). A last row,
    ``"marginal"``, describes all admitted points.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (integers or strings).

    y_pred : array-like of shape (n_samples,)
        Predicted labels. Values at rejected positions are ignored, so they
        may hold a rejection marker of any type.

    admitted : array-like of shape (n_samples,)
        Boolean mask, True where the prediction is admitted and False where
        the classifier abstains. Integer arrays of 0s and 1s are accepted.

    labels : array-like of shape (n_labels,), default=None
        Labels that index the rows, in this order. By default, the sorted
        union of the labels of ``y_true`` and of ``y_pred`` at admitted
        positions. The ``"marginal"`` row always describes all admitted
        points, including those whose labels are not listed.

    Returns
    -------
    report : pandas.DataFrame of shape (n_labels + 1, 6)
        Indexed by label (an object index named ``"label"``) followed by
        ``"marginal"``, with columns:

        - ``class_accuracy``: accuracy among the admitted points whose true
          label is the row's label (NaN if there are none).
        - ``class_admitted``: number of those points.
        - ``class_fraction``: ``class_admitted`` divided by the number of
          points whose true label is the row's label (NaN if there are none).
        - ``prediction_accuracy``: accuracy among the admitted points whose
          predicted label is the row's label (NaN if there are none).
        - ``prediction_admitted``: number of those points.
        - ``prediction_fraction``: ``prediction_admitted`` divided by the
          total number of points.

        In the ``"marginal"`` row, both the ``class_*`` and the
        ``prediction_*`` columns give the accuracy among all admitted points,
        their number, and their fraction of all points.

    See Also
    --------
    format_selective_report : Render the report as text.

    Examples
    --------
    >>> import numpy as np
    >>> from sdm_sklearn.metrics import selective_report
    >>> y_true = ["cat", "cat", "cat", "dog", "dog"]
    >>> y_pred = np.array(["cat", "dog", "?", "dog", "?"])
    >>> report = selective_report(y_true, y_pred, admitted=y_pred != "?")
    >>> report[["class_accuracy", "class_admitted", "class_fraction"]]
    ... # doctest: +NORMALIZE_WHITESPACE
              class_accuracy  class_admitted  class_fraction
    label
    cat             0.500000               2        0.666667
    dog             1.000000               1        0.500000
    marginal        0.666667               3        0.600000
    >>> report["prediction_admitted"].tolist()
    [1, 2, 3]
    """
    y_true, y_pred, admitted = _check_inputs(y_true, y_pred, admitted)
    admitted = _check_admitted(admitted)
    true_admitted = y_true[admitted]
    pred_admitted = y_pred[admitted]
    # Computed even when labels are given, to reject a mix of label kinds.
    data_labels = _sorted_label_union(y_true, pred_admitted)
    if labels is None:
        labels = data_labels
    else:
        labels = column_or_1d(labels, dtype=object).tolist()
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must not contain duplicates; got {labels}.")
    if _MARGINAL in labels:
        raise ValueError(
            f"The label {_MARGINAL!r} is reserved for the last row of the "
            "report and cannot be used as a class label."
        )

    correct_labels = true_admitted[true_admitted == pred_admitted]
    n_correct = _count_by_label(correct_labels, labels)
    n_true = _count_by_label(y_true, labels)
    class_admitted = _count_by_label(true_admitted, labels)
    prediction_admitted = _count_by_label(pred_admitted, labels)
    index = pd.Index([*labels, _MARGINAL], dtype=object, name="label")
    return pd.DataFrame(
        {
            "class_accuracy": _ratio(n_correct, class_admitted),
            "class_admitted": class_admitted,
            "class_fraction": _ratio(class_admitted, n_true),
            "prediction_accuracy": _ratio(n_correct, prediction_admitted),
            "prediction_admitted": prediction_admitted,
            "prediction_fraction": prediction_admitted / len(y_true),
        },
        index=index,
    )


def format_selective_report(report, *, title=None):
    """Render a selective report as compact fixed-width text.

    One line is written per row of the report. Accuracies are shown with three
    decimals, fractions with two, counts as integers and missing values
    (NaN) as ``-``.

    Parameters
    ----------
    report : pandas.DataFrame
        Output of :func:`selective_report`.

    title : str, default=None
        Optional line written above the table.

    Returns
    -------
    text : str
        The table, without a trailing newline.

    See Also
    --------
    selective_report : Build the report.

    Examples
    --------
    >>> from sdm_sklearn.metrics import format_selective_report, selective_report
    >>> y_true = [0, 0, 0, 1, 1]
    >>> y_pred = [0, 1, None, 1, None]
    >>> admitted = [True, True, False, True, False]
    >>> report = selective_report(y_true, y_pred, admitted)
    >>> print(format_selective_report(report, title="Validation"))
    Validation
                  class           prediction
    label       acc  n  frac      acc  n  frac
    0         0.500  2  0.67    1.000  1  0.20
    1         1.000  1  0.50    0.500  2  0.40
    marginal  0.667  3  0.60    0.667  3  0.60
    """
    missing = [name for name in _REPORT_FORMATS if name not in report.columns]
    if missing:
        raise ValueError(
            f"report is missing the columns {missing}; expected the output of "
            "selective_report."
        )
    columns = [[str(label) for label in report.index]]
    for name, spec in _REPORT_FORMATS.items():
        columns.append(
            ["-" if pd.isna(value) else format(value, spec) for value in report[name]]
        )
    header = ["label", "acc", "n", "frac", "acc", "n", "frac"]
    widths = [
        max(len(head), *(len(cell) for cell in column))
        for head, column in zip(header, columns, strict=True)
    ]
    sep, gap = "  ", "    "

    def layout(label, class_part, prediction_part):
        return f"{label.ljust(widths[0])}{sep}{class_part}{gap}{prediction_part}"

    def render(cells):
        padded = [
            cell.rjust(width)
            for cell, width in zip(cells[1:], widths[1:], strict=True)
        ]
        return layout(cells[0], sep.join(padded[:3]), sep.join(padded[3:]))

    class_width = sum(widths[1:4]) + 2 * len(sep)
    prediction_width = sum(widths[4:]) + 2 * len(sep)
    lines = [] if title is None else [str(title)]
    lines.append(
        layout("", "class".center(class_width), "prediction".center(prediction_width))
    )
    lines.append(render(header))
    lines.extend(render(row) for row in zip(*columns, strict=True))
    return "\n".join(line.rstrip() for line in lines)


def _risk_coverage_counts(y_true, y_pred, confidence):
    """Admission counts for each distinct confidence threshold.

    Returns
    -------
    thresholds : ndarray of shape (n_thresholds,)
        Distinct confidence values, in decreasing order.

    n_admitted : ndarray of shape (n_thresholds,)
        Number of points with confidence at least the threshold.

    n_errors : ndarray of shape (n_thresholds,)
        Number of wrong predictions among them.

    n_samples : int
        Total number of points.
    """
    y_true, y_pred, confidence = _check_inputs(y_true, y_pred, confidence)
    _sorted_label_union(y_true, y_pred)  # rejects a mix of label kinds
    confidence = confidence.astype(np.float64)
    if np.isnan(confidence).any():
        raise ValueError("Input confidence contains NaN.")
    order = np.argsort(confidence)[::-1]
    sorted_confidence = confidence[order]
    cumulative_errors = np.cumsum(y_true[order] != y_pred[order])
    # Last position of each run of tied confidences: ties are admitted together.
    last = np.flatnonzero(np.append(np.diff(sorted_confidence) != 0, True))
    return sorted_confidence[last], last + 1, cumulative_errors[last], len(order)


def risk_coverage_curve(y_true, y_pred, confidence):
    """Compute the risk-coverage curve of a confidence score.

    For each distinct value ``t`` of ``confidence``, the points with
    ``confidence >= t`` are admitted. The coverage is the fraction of admitted
    points and the risk is the error rate among them. Points with tied
    confidence are always admitted together.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.

    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    confidence : array-like of shape (n_samples,)
        Confidence of each prediction; higher means more confident. Must not
        contain NaN.

    Returns
    -------
    curve : pandas.DataFrame of shape (n_thresholds, 4)
        One row per distinct confidence value, by decreasing threshold (hence
        increasing coverage), with columns:

        - ``threshold``: the confidence value ``t``.
        - ``coverage``: fraction of points with ``confidence >= t``.
        - ``risk``: error rate among those points.
        - ``n_admitted``: number of those points.

    See Also
    --------
    risk_coverage_auc : Area under this curve.
    coverage_at_accuracy : Largest coverage reaching a target accuracy.

    Examples
    --------
    >>> from sdm_sklearn.metrics import risk_coverage_curve
    >>> y_true = [0, 1, 1, 0]
    >>> y_pred = [0, 1, 0, 0]
    >>> confidence = [0.9, 0.8, 0.8, 0.3]
    >>> risk_coverage_curve(y_true, y_pred, confidence)
       threshold  coverage      risk  n_admitted
    0        0.9      0.25  0.000000           1
    1        0.8      0.75  0.333333           3
    2        0.3      1.00  0.250000           4
    """
    thresholds, n_admitted, n_errors, n_samples = _risk_coverage_counts(
        y_true, y_pred, confidence
    )
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "coverage": n_admitted / n_samples,
            "risk": n_errors / n_admitted,
            "n_admitted": n_admitted,
        }
    )


def risk_coverage_auc(y_true, y_pred, confidence):
    r"""Compute the area under the risk-coverage curve (AURC).

    With the rows of :func:`risk_coverage_curve` numbered
    :math:`k = 1, \ldots, K` by increasing coverage :math:`c_k` and with risk
    :math:`r_k`, the step-wise area is

    .. math::

        \mathrm{AURC} = \sum_{k=1}^{K} r_k \, (c_k - c_{k-1}),
        \qquad c_0 = 0.

    Equivalently, it is the mean over all points of the risk of the
    smallest set of thresholded points that admits them. Lower is better;
    the value lies in [0, 1].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.

    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    confidence : array-like of shape (n_samples,)
        Confidence of each prediction; higher means more confident. Must not
        contain NaN.

    Returns
    -------
    aurc : float
        Area under the risk-coverage curve.

    See Also
    --------
    risk_coverage_curve : The curve itself.

    Examples
    --------
    >>> from sdm_sklearn.metrics import risk_coverage_auc
    >>> y_true = [0, 1, 1, 0]
    >>> y_pred = [0, 1, 0, 0]
    >>> confidence = [0.9, 0.8, 0.8, 0.3]
    >>> round(risk_coverage_auc(y_true, y_pred, confidence), 4)
    0.2292
    """
    curve = risk_coverage_curve(y_true, y_pred, confidence)
    coverage_steps = np.diff(curve["coverage"].to_numpy(), prepend=0.0)
    return float(np.dot(curve["risk"].to_numpy(), coverage_steps))


def coverage_at_accuracy(y_true, y_pred, confidence, target):
    """Largest coverage whose admitted accuracy reaches a target.

    Among the thresholds of :func:`risk_coverage_curve`, select those for
    which the accuracy among admitted points (one minus the risk) is at least
    ``target`` and return the largest of their coverages. The accuracy is not
    required to reach ``target`` at smaller coverages.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.

    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    confidence : array-like of shape (n_samples,)
        Confidence of each prediction; higher means more confident. Must not
        contain NaN.

    target : float
        Required accuracy among admitted points, in [0, 1].

    Returns
    -------
    coverage : float
        Largest such coverage, or 0.0 if no threshold reaches ``target``.

    See Also
    --------
    risk_coverage_curve : The curve searched by this function.

    Examples
    --------
    >>> from sdm_sklearn.metrics import coverage_at_accuracy
    >>> y_true = [0, 1, 1, 0]
    >>> y_pred = [0, 1, 0, 0]
    >>> confidence = [0.9, 0.8, 0.8, 0.3]
    >>> coverage_at_accuracy(y_true, y_pred, confidence, target=0.75)
    1.0
    >>> coverage_at_accuracy(y_true, y_pred, confidence, target=0.8)
    0.25
    """
    if not isinstance(target, numbers.Real) or not 0 <= target <= 1:
        raise ValueError(f"target must be a number in [0, 1]; got {target!r}.")
    _, n_admitted, n_errors, n_samples = _risk_coverage_counts(
        y_true, y_pred, confidence
    )
    # Dividing counts directly (rather than computing 1 - risk) keeps exact
    # ties such as 3 / 4 >= 0.75 exact in floating point.
    reached = (n_admitted - n_errors) / n_admitted >= target
    if not reached.any():
        return 0.0
    return float(n_admitted[reached].max() / n_samples)
