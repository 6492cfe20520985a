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
- :func:`make_selective_scorer` rates a fitted
  :class:`~sdm_sklearn.SDMClassifier` by its selective quality, for model
  selection with :class:`~sklearn.model_selection.GridSearchCV` or
  :func:`~sklearn.model_selection.cross_validate`.

All functions but the scorer work with any selective predictor: they only
need labels, the predictions and either an admission mask or a confidence
score. Labels must be defined (no NaN or None), finite and of one kind that
can be compared (e.g. all integers or all strings); anything else raises a
ValueError rather than giving a wrong count.
"""

import numbers
from numbers import Real

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.utils import assert_all_finite, check_consistent_length
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import column_or_1d

from ._model import admitted_column
from ._selective import step_area, uncertainty_of
from ._validation import (
    ALPHA,
    MARGINAL,
    check_inputs,
    check_label_values,
    check_mask,
    check_predictions,
    sorted_label_union,
)

__all__ = [
    "coverage_at_accuracy",
    "format_selective_report",
    "make_selective_scorer",
    "risk_coverage_auc",
    "risk_coverage_curve",
    "selective_report",
]

# Column of the selective report -> format specification used for display.
_REPORT_FORMATS = {
    "class_accuracy": ".3f",
    "class_admitted": "d",
    "class_fraction": ".2f",
    "prediction_accuracy": ".3f",
    "prediction_admitted": "d",
    "prediction_fraction": ".2f",
}


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


def _selective_counts(y_true, y_pred, admitted, labels):
    """Per-label counts of a selective classifier, each followed by its total.

    Returns
    -------
    n_correct, n_true, class_admitted, prediction_admitted : ndarray
        Each of shape (n_labels + 1,). Per label of ``labels``: the admitted
        correct predictions, the points of that true label, the admitted
        points of that true label and the admitted points predicted as that
        label; the last entry is the corresponding count over all points
        (the ``"marginal"`` row).
    """
    true_admitted = y_true[admitted]
    pred_admitted = y_pred[admitted]
    correct_labels = true_admitted[true_admitted == pred_admitted]
    return (
        _count_by_label(correct_labels, labels),
        _count_by_label(y_true, labels),
        _count_by_label(true_admitted, labels),
        _count_by_label(pred_admitted, labels),
    )


def _rejection_columns(reasons, y_true, admitted, labels):
    """The ``rejected_<reason>`` columns of :func:`selective_report`.

    ``reasons`` holds one string per point (e.g. the ``reason`` column of
    ``predict_uncertainty``); ``"admitted"`` must mark exactly the admitted
    points, so that the counts explain the same admission as the table.
    """
    dtype = getattr(reasons, "dtype", None)
    order = (list(dtype.categories) if isinstance(dtype, pd.CategoricalDtype)
             else None)
    reasons = column_or_1d(np.asarray(reasons, dtype=object))
    check_label_values(reasons, "reasons")
    if not all(isinstance(reason, str) for reason in reasons.tolist()):
        raise ValueError(
            "reasons must hold strings (e.g. the 'reason' column of "
            "predict_uncertainty)."
        )
    said_admitted = reasons == "admitted"
    if said_admitted.any() and (said_admitted != admitted).any():
        raise ValueError(
            f"reasons and admitted disagree at {(said_admitted != admitted).sum()} "
            "positions: 'admitted' must mark exactly the admitted points (pass "
            "the reasons of the same admission, e.g. admitted_column() of the "
            "model's conservative setting)."
        )
    if order is None:
        order = sorted(set(reasons.tolist()))
    rejected_true, rejected_reasons = y_true[~admitted], reasons[~admitted]
    return {
        f"rejected_{reason}": _count_by_label(
            rejected_true[rejected_reasons == reason], labels
        )
        for reason in order if reason != "admitted"
    }


def selective_report(y_true, y_pred, admitted, *, labels=None, reasons=None):
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

    reasons : array-like of shape (n_samples,), default=None
        Why each point was rejected, one string per point: the ``reason``
        column of :meth:`~sdm_sklearn.SDMClassifier.predict_uncertainty`, or
        any codes of another selective predictor. ``"admitted"``, where it
        appears, must mark exactly the admitted points. The report then
        gains one column ``rejected_<reason>`` per other value (in the
        order of the categories of a categorical, sorted otherwise).

    Returns
    -------
    report : pandas.DataFrame of shape (n_labels + 1, 6 + n_reasons)
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

        With ``reasons``, ``rejected_<reason>`` counts the rejected points
        of the row's true label with that reason (all of them in the
        ``"marginal"`` row).

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
    y_true, y_pred = check_inputs(y_true, y_pred, admitted)
    admitted = check_mask(admitted, "admitted")
    check_label_values(y_true, "y_true")
    pred_admitted = y_pred[admitted]
    check_label_values(
        pred_admitted, "y_pred",
        where=" at admitted positions (rejected ones may hold any marker)",
    )
    # Computed even when labels are given, to reject a mix of label kinds.
    data_labels = sorted_label_union(y_true=y_true, y_pred=pred_admitted)
    if labels is None:
        labels = data_labels
    else:
        labels = column_or_1d(labels, dtype=object)
        check_label_values(labels, "labels")
        # A row label of another kind than the data would stay empty.
        sorted_label_union(y_true=y_true, y_pred=pred_admitted, labels=labels)
        labels = labels.tolist()
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must not contain duplicates; got {labels}.")
    if MARGINAL in labels:
        raise ValueError(
            f"The label {MARGINAL!r} is reserved for the last row of the "
            "report and cannot be used as a class label."
        )

    rejected = {}
    if reasons is not None:
        check_consistent_length(y_true, reasons)
        rejected = _rejection_columns(reasons, y_true, admitted, labels)
    n_correct, n_true, class_admitted, prediction_admitted = _selective_counts(
        y_true, y_pred, admitted, labels
    )
    index = pd.Index([*labels, MARGINAL], dtype=object, name="label")
    return pd.DataFrame(
        {
            "class_accuracy": _ratio(n_correct, class_admitted),
            "class_admitted": class_admitted,
            "class_fraction": _ratio(class_admitted, n_true),
            "prediction_accuracy": _ratio(n_correct, prediction_admitted),
            "prediction_admitted": prediction_admitted,
            "prediction_fraction": prediction_admitted / len(y_true),
            **rejected,
        },
        index=index,
    )


def format_selective_report(report, *, title=None):
    """Render a selective report as compact fixed-width text.

    One line is written per row of the report, and a last line counts the
    rejections by reason when the report has ``rejected_*`` columns
    (``reasons`` of :func:`selective_report`). Accuracies are shown with three
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
    counts = [
        f"{report.loc[MARGINAL, name]} {name.removeprefix('rejected_')}"
        for name in report.columns if name.startswith("rejected_")
    ]
    if counts:
        lines.append("rejected: " + ", ".join(counts))
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
    y_true, y_pred = check_predictions(y_true, y_pred, confidence)
    confidence = column_or_1d(confidence, dtype=np.float64)
    assert_all_finite(confidence, input_name="confidence")
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
        Confidence of each prediction; higher means more confident. Must be
        finite.

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
        Confidence of each prediction; higher means more confident. Must be
        finite.

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
    return step_area(curve["coverage"].to_numpy(), curve["risk"].to_numpy())


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
        Confidence of each prediction; higher means more confident. Must be
        finite.

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


def _selective_score(y_true, y_pred, admitted, labels, alpha, confidence_level):
    """The score of :func:`make_selective_scorer`, from validated arrays."""
    n_correct, _, class_admitted, prediction_admitted = _selective_counts(
        y_true, y_pred, admitted, labels
    )
    # One group per true label, then one per predicted label; the last
    # entry of every count is the marginal row.
    group_admitted = np.concatenate([class_admitted[:-1], prediction_admitted[:-1]])
    group_errors = group_admitted - np.tile(n_correct[:-1], 2)
    tolerated = binom.ppf(confidence_level, group_admitted, 1.0 - alpha)
    excess = np.maximum(group_errors - tolerated, 0.0).sum()
    n_samples = len(y_true)
    cost = n_samples if alpha == 1 else min(1.0 / (1.0 - alpha), n_samples)
    return float((class_admitted[-1] - cost * excess) / n_samples)


class _SelectiveScorer:
    """The callable returned by :func:`make_selective_scorer`."""

    def __init__(self, alpha, confidence_level):
        self.alpha = alpha
        self.confidence_level = confidence_level

    def __call__(self, estimator, X, y_true):
        """Selective quality of a fitted ``estimator`` on ``X``; greater is better.

        Parameters
        ----------
        estimator : SDMClassifier
            A fitted estimator with ``predict_uncertainty``.
        X : array-like of shape (n_samples, n_features) or producer input
            Held-out inputs.
        y_true : array-like of shape (n_samples,)
            Their true labels, of the kind of ``estimator.classes_``.

        Returns
        -------
        score : float
        """
        y_true, frame, estimator = uncertainty_of(estimator, X, y_true,
                                                   "The selective scorer")
        column = admitted_column(estimator.conservative)
        admitted = check_mask(frame[column], column)
        alpha = estimator.alpha if self.alpha is None else self.alpha
        # A true label outside classes_ (it warned) is a group of its own.
        labels = sorted_label_union(y=y_true, classes_=estimator.classes_)
        return _selective_score(
            y_true, frame["prediction"].to_numpy(), admitted, labels, alpha,
            self.confidence_level,
        )

    def __repr__(self):
        return (
            f"make_selective_scorer(alpha={self.alpha!r}, "
            f"confidence_level={self.confidence_level!r})"
        )


@validate_params(
    {
        "alpha": [ALPHA, None],
        "confidence_level": [Interval(Real, 0.5, 1, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_selective_scorer(*, alpha=None, confidence_level=0.95):
    r"""Make a scorer that rates a fitted SDM estimator by its selective quality.

    The scorer, ``scorer(estimator, X, y)``, calls
    ``estimator.predict_uncertainty(X)`` and takes its selective answer: the
    ``admitted`` column, or ``admitted_lower`` when the estimator has
    ``conservative=True``, as
    :meth:`~sdm_sklearn.SDMClassifier.predict_selective` does. It returns
    the share of the points admitted, penalised wherever the accuracy among
    the admitted points of one true class (class-conditional) or of one
    predicted label (prediction-conditional) falls below ``alpha``, the
    promise of the HIGH-RELIABILITY region. Greater is better, as
    :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_validate` expect.

    Parameters
    ----------
    alpha : float in (0.5, 1], default=None
        Target accuracy of every class and every predicted label among the
        admitted points. None: the estimator's own ``alpha``, the target its
        region is calibrated for.

    confidence_level : float in [0.5, 1), default=0.95
        How many errors a group of admitted points may hold before it is
        penalised: up to the ``confidence_level`` quantile of the number of
        errors of a group of the same size whose accuracy is exactly
        ``alpha``. A group that meets ``alpha`` is then penalised with
        probability at most ``1 - confidence_level``; 0.5 leaves no margin
        for chance beyond the median error count at ``alpha``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float`` for a fitted
        :class:`~sdm_sklearn.SDMClassifier` (anything with
        ``predict_uncertainty``, ``classes_``, ``alpha`` and
        ``conservative``), or a :class:`~sklearn.pipeline.Pipeline` ending
        in one (its steps before the last transform ``X``). It holds no
        state, so it works with the clones of
        :class:`~sklearn.model_selection.GridSearchCV` and with any
        ``n_jobs``. Labels ``y`` of another kind than the estimator's
        ``classes_`` (e.g. strings for integer classes) raise a ValueError;
        a label outside ``classes_`` warns and forms a class group of its
        own, whose admitted points are all errors.

    See Also
    --------
    selective_report : The per-label accuracies and counts behind the score.
    sklearn.model_selection.GridSearchCV : Search parameters with
        ``scoring=make_selective_scorer()``.

    Notes
    -----
    On held-out data of :math:`n` points, :math:`A` of them admitted, form
    one group per true class (its admitted points) and one group per
    predicted label (the admitted points predicted as it). A group
    :math:`g` of :math:`n_g` points has :math:`e_g` errors; let :math:`t_g`
    be the ``confidence_level`` quantile of the binomial distribution of
    :math:`n_g` trials with error probability :math:`1 - \alpha`. The score
    is

    .. math::

        \frac{1}{n} \Bigl( A - \lambda \sum_g \max(0, e_g - t_g) \Bigr),
        \qquad \lambda = \min\Bigl( \frac{1}{1 - \alpha}, n \Bigr).

    Why this form:

    - Without excess errors the score is the admitted share (coverage), so
      of two models whose groups keep ``alpha``, the one admitting more
      scores higher.
    - At accuracy ``alpha`` a group may hold one error per
      :math:`1 / (1 - \alpha)` points, so each excess error cancels that
      many admitted points. With one group and no tolerance, :math:`m`
      points at accuracy :math:`a < \alpha` score
      :math:`m (1 + a - 2 \alpha) / (1 - \alpha)`, below the
      :math:`a m / \alpha` points of the largest subset of them that
      reaches ``alpha`` (the correct points and the errors they allow): a
      model whose admitted points miss ``alpha`` scores lower than one that
      admits fewer but correct points (any cost above :math:`1 / \alpha`
      would do; :math:`1 / (1 - \alpha)` is above it for
      :math:`\alpha > 0.5`). The score falls below 0, what admitting
      nothing gets, once the miss is large (at :math:`a < 2 \alpha - 1`
      in that case). The cap :math:`n` only acts for ``alpha`` near 1 (at
      ``alpha=1`` no error is allowed): one excess error never costs more
      than all :math:`n` points.
    - Every admitted error belongs to one class group and one prediction
      group, so it can count twice, once per conditional accuracy it
      lowers.

    Small folds make conditional accuracies noisy: with 5 admitted points of
    a class, one error gives an accuracy of 0.8, and a model that truly
    reaches ``alpha=0.95`` makes at least one such error in 23% of groups
    of 5 (:math:`1 - 0.95^5`). Penalising every shortfall would mostly rank
    models by chance. The tolerance :math:`t_g` turns the rule into a
    one-sided binomial test of "accuracy at least ``alpha``": at
    ``alpha=0.95`` and the default ``confidence_level``, a group of 1 point
    may hold no error, of 2 to 7 points one, of 8 to 16 points two, of 100
    points nine. So a small group is penalised only for a gross miss, and
    then heavily for its size; on small folds the score mostly measures the
    admitted share and cannot tell accuracies near ``alpha`` apart. False
    alarms (at most ``1 - confidence_level`` per group, with twice as many
    groups as classes) average out over folds. Prefer a few large folds
    (e.g. ``cv=3``) to many small ones.

    A fold where nothing is admitted has no group and scores 0, without
    any warning: no accuracy is divided by zero.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.model_selection import cross_val_score
    >>> from sdm_sklearn import SDMClassifier
    >>> from sdm_sklearn.metrics import make_selective_scorer
    >>> X, y = make_classification(n_samples=300, class_sep=2.0, random_state=0)
    >>> scorer = make_selective_scorer()
    >>> scorer
    make_selective_scorer(alpha=None, confidence_level=0.95)
    >>> clf = SDMClassifier(alpha=0.9, n_iterations=1, random_state=0)
    >>> scores = cross_val_score(clf, X, y, cv=3, scoring=scorer)
    >>> scores.shape
    (3,)
    """
    return _SelectiveScorer(alpha, confidence_level)
