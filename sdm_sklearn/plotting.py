"""Displays for selective classifiers, in scikit-learn's visualization style.

Every display follows the pattern of
:class:`sklearn.calibration.CalibrationDisplay`: compute with
``from_estimator`` (or ``from_predictions``), draw with ``plot(ax=...)``, and
find the matplotlib objects in the attributes ending with an underscore
(``ax_``, ``figure_``, the artists).

- :class:`RiskCoverageDisplay`: the risk-coverage curve of a confidence
  score, for any classifier; marks the set that an SDM estimator admits.
- :class:`RegionAccuracyDisplay`: accuracy and size of the HIGH-RELIABILITY
  region, of the rejected in-distribution inputs and of the
  out-of-distribution inputs of an :class:`~sdm_sklearn.SDMClassifier`.
- :class:`SDMDistributionDisplay`: histograms of the rescaled similarity
  q' and of the distance quantile d, for correct and wrong predictions.
- :class:`DriftDisplay`: the test martingales and batch statistics of a
  :class:`~sdm_sklearn.monitoring.DriftMonitor`.

matplotlib is an optional dependency: ``pip install matplotlib`` (or, in a
clone of sdm_sklearn, ``python -m pip install ".[plotting]"``).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._model import admitted_column
from ._selective import step_area, uncertainty_of
from ._validation import check_mask, check_predictions, check_y_against_classes
from .metrics import risk_coverage_curve, selective_report

__all__ = ["DriftDisplay", "RegionAccuracyDisplay", "RiskCoverageDisplay",
           "SDMDistributionDisplay"]

_RESPONSES = ("auto", "predict_proba", "sdm_probability", "sdm_probability_lower")


def _pyplot(caller):
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{caller} requires matplotlib. Install it with "
            "`pip install matplotlib`."
        ) from error
    return plt


def _several_axes(ax, caller, n_axes, layout, figsize):
    """``n_axes`` axes to draw on and their figure; a new figure of
    ``layout`` (rows, columns) when ``ax`` is None."""
    if ax is None:
        figure, axes = _pyplot(caller).subplots(*layout, figsize=figsize)
        return np.asarray(axes, dtype=object).ravel(), figure
    axes = np.asarray(ax, dtype=object).ravel()
    if axes.shape != (n_axes,):
        raise ValueError(f"ax must hold exactly {n_axes} axes; got {axes.shape[0]}.")
    return axes, axes[0].figure


def _single_axes(ax, caller):
    """The axes to draw on and its figure; a new figure when ``ax`` is None."""
    plt = _pyplot(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax, ax.figure


class RiskCoverageDisplay:
    """Risk-coverage curve of a confidence score.

    Admitting the points whose confidence reaches a threshold gives, for
    every threshold, a coverage (fraction admitted) and a risk (error rate
    among the admitted points). The curve joins these points; the area
    under it (AURC) summarises it, lower is better. An optional marker shows
    the coverage and risk of one admitted set, such as the HIGH-RELIABILITY
    region of an :class:`~sdm_sklearn.SDMClassifier`, which is not a plain
    threshold on one score and may lie off the curve.

    The curve is drawn as a step function: the risk of each threshold holds
    from the previous coverage (0 for the first threshold) up to its own, so
    the area under the drawn steps is the AURC of
    :func:`~sdm_sklearn.metrics.risk_coverage_auc`.

    Create it with :meth:`from_estimator` or :meth:`from_predictions`. All
    parameters are stored as attributes.

    Parameters
    ----------
    coverage : ndarray of shape (n_thresholds,)
        Coverage at each threshold, increasing.
    risk : ndarray of shape (n_thresholds,)
        Error rate among admitted points at each threshold.
    aurc : float, default=None
        Area under the curve, shown in the legend when given.
    admitted_coverage : float, default=None
        Coverage of the marked admitted set; None: no marker.
    admitted_risk : float, default=None
        Risk of the marked admitted set (NaN when it is empty).
    estimator_name : str, default=None
        Name used in the legend; None: no name.

    Attributes
    ----------
    line_ : matplotlib.lines.Line2D
        The risk-coverage curve: ``coverage`` preceded by 0 and ``risk``
        preceded by its first value, drawn with ``drawstyle="steps-pre"``.
    admitted_marker_ : matplotlib.lines.Line2D or None
        The marker of the admitted set, if any.
    ax_ : matplotlib.axes.Axes
        Axes with the curve.
    figure_ : matplotlib.figure.Figure
        Figure containing the curve.

    See Also
    --------
    sdm_sklearn.metrics.risk_coverage_curve : The curve as a table.
    sdm_sklearn.metrics.risk_coverage_auc : The area under the curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sdm_sklearn.plotting import RiskCoverageDisplay
    >>> display = RiskCoverageDisplay.from_predictions(
    ...     [0, 1, 1, 0], [0, 1, 0, 0], [0.9, 0.8, 0.8, 0.3], name="model")
    >>> display.line_.get_xdata().tolist()
    [0.0, 0.25, 0.75, 1.0]
    >>> display.line_.get_ydata().round(3).tolist()
    [0.0, 0.0, 0.333, 0.25]
    >>> display.line_.get_label()
    'model (AURC = 0.229)'
    """

    def __init__(self, coverage, risk, *, aurc=None, admitted_coverage=None,
                 admitted_risk=None, estimator_name=None):
        self.coverage = coverage
        self.risk = risk
        self.aurc = aurc
        self.admitted_coverage = admitted_coverage
        self.admitted_risk = admitted_risk
        self.estimator_name = estimator_name

    def plot(self, *, ax=None, name=None, **kwargs):
        """Draw the curve and, when set, the admitted-set marker.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        name : str, default=None
            Name for the legend; None: ``estimator_name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : RiskCoverageDisplay
            This display, with the matplotlib objects stored.
        """
        self.ax_, self.figure_ = _single_axes(ax, "RiskCoverageDisplay.plot")
        name = self.estimator_name if name is None else name
        label = name
        if self.aurc is not None:
            auc_text = f"AURC = {self.aurc:.3f}"
            label = auc_text if name is None else f"{name} ({auc_text})"
        line_kwargs = {"drawstyle": "steps-pre"} | kwargs
        if label is not None:
            line_kwargs.setdefault("label", label)
        # The first threshold's risk holds from coverage 0, as in the AURC.
        risk = np.asarray(self.risk, dtype=float)
        (self.line_,) = self.ax_.plot(
            np.concatenate([[0.0], self.coverage]),
            np.concatenate([risk[:1], risk]),
            **line_kwargs,
        )

        self.admitted_marker_ = None
        if self.admitted_coverage is not None:
            risk_text = (
                "-" if np.isnan(self.admitted_risk) else f"{self.admitted_risk:.3f}"
            )
            marker_label = (
                f"admitted: coverage {self.admitted_coverage:.2f}, risk {risk_text}"
            )
            if name is not None:
                marker_label = f"{name} {marker_label}"
            (self.admitted_marker_,) = self.ax_.plot(
                [self.admitted_coverage], [self.admitted_risk], linestyle="none",
                marker="*", markersize=14, color=self.line_.get_color(),
                markeredgecolor="black", label=marker_label,
            )
        # Risk is never negative: autoscaling stops at 0 instead of adding a
        # margin below it, and still grows with curves added later.
        self.line_.sticky_edges.y[:] = [0.0]
        self.ax_.set(xlabel="Coverage (fraction admitted)",
                     ylabel="Risk (error rate among admitted)", xlim=(0, 1.02))
        if self.ax_.get_legend_handles_labels()[1]:
            self.ax_.legend(loc="upper left")
        return self

    @classmethod
    def from_predictions(cls, y_true, y_pred, confidence, *, admitted=None,
                         name=None, ax=None, **kwargs):
        """Plot the risk-coverage curve of predictions and their confidence.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_pred : array-like of shape (n_samples,)
            Predicted labels.
        confidence : array-like of shape (n_samples,)
            Confidence of each prediction, higher is more confident.
        admitted : array-like of shape (n_samples,), default=None
            Boolean mask (bool or 0/1 integers) of an admitted set to mark on
            the curve; None: no marker.
        name : str, default=None
            Name for the legend.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : RiskCoverageDisplay
        """
        curve = risk_coverage_curve(y_true, y_pred, confidence)
        coverage, risk = curve["coverage"].to_numpy(), curve["risk"].to_numpy()
        admitted_coverage = admitted_risk = None
        if admitted is not None:
            marginal = selective_report(y_true, y_pred, admitted).loc["marginal"]
            admitted_coverage = float(marginal["class_fraction"])
            # NaN when nothing is admitted.
            admitted_risk = 1.0 - float(marginal["class_accuracy"])
        display = cls(
            coverage, risk, aurc=step_area(coverage, risk),
            admitted_coverage=admitted_coverage, admitted_risk=admitted_risk,
            estimator_name=name,
        )
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, response="auto", name=None,
                       ax=None, **kwargs):
        """Plot the risk-coverage curve of a fitted classifier.

        For an :class:`~sdm_sklearn.SDMClassifier`, the prediction is its
        ``predict`` and the admitted set (the inputs ``predict_selective``
        admits, following its ``conservative`` parameter) is marked. For any
        other classifier, the prediction is the class of largest
        ``predict_proba``, so that SDM can be compared on one axis with,
        e.g., :class:`~sklearn.calibration.CalibratedClassifierCV`.

        Parameters
        ----------
        estimator : fitted classifier
            An SDMClassifier or any classifier with ``predict_proba``.
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            True labels, of the kind of the estimator's ``classes_``:
            another kind raises a ValueError; a label outside ``classes_``
            (an unseen class) warns, and its predictions count as wrong.
        response : {"auto", "predict_proba", "sdm_probability", \
                "sdm_probability_lower"}, default="auto"
            Confidence score. "predict_proba": the largest predicted
            probability. "sdm_probability" and "sdm_probability_lower"
            (SDMClassifier only): the SDM probability of the prediction, or
            its lower (DKW) variant, from ``predict_uncertainty``. "auto":
            "sdm_probability_lower" for an SDMClassifier with
            ``conservative=True``, "sdm_probability" for another
            SDMClassifier and "predict_proba" for any other classifier.
        name : str, default=None
            Name for the legend; None: the estimator's class name.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : RiskCoverageDisplay
        """
        if response not in _RESPONSES:
            raise ValueError(
                f"response must be one of {list(_RESPONSES)}; got {response!r}."
            )
        check_is_fitted(estimator)
        y = check_y_against_classes(y, estimator.classes_)
        name = type(estimator).__name__ if name is None else name
        is_sdm = hasattr(estimator, "predict_uncertainty")
        if response.startswith("sdm_") and not is_sdm:
            raise ValueError(
                f"response={response!r} needs an SDMClassifier; use "
                f"'predict_proba' for {type(estimator).__name__}."
            )
        if response == "auto":
            if not is_sdm:
                response = "predict_proba"
            elif estimator.conservative:
                response = "sdm_probability_lower"
            else:
                response = "sdm_probability"

        admitted = None
        if response == "predict_proba":
            proba = estimator.predict_proba(X)
            y_pred = estimator.classes_[np.argmax(proba, axis=1)]
            confidence = proba.max(axis=1)
        if is_sdm:
            frame = estimator.predict_uncertainty(X)
            admitted = frame[admitted_column(estimator.conservative)].to_numpy()
            if response != "predict_proba":
                y_pred = frame["prediction"].to_numpy()
                confidence = frame[response].to_numpy()
        return cls.from_predictions(
            y, y_pred, confidence, admitted=admitted, name=name, ax=ax, **kwargs
        )


_REGIONS = ("HIGH-RELIABILITY", "rejected, in-distribution", "out-of-distribution")


class RegionAccuracyDisplay:
    """Accuracy and size of the three regions of an SDM estimator.

    Every input of an :class:`~sdm_sklearn.SDMClassifier` falls in exactly
    one region: the HIGH-RELIABILITY region (admitted), rejected but in
    distribution (``floor(q') > 0``), or out of distribution
    (``floor(q') = 0``). The bar of each region shows the accuracy of
    ``predict`` on its inputs, labelled with their number and share; a
    dashed line marks the target ``alpha``.

    Create it with :meth:`from_estimator` or :meth:`from_predictions`. All
    parameters are stored as attributes.

    Parameters
    ----------
    accuracy : ndarray of shape (3,)
        Accuracy in each region, NaN for an empty region.
    counts : ndarray of shape (3,)
        Number of inputs in each region.
    alpha : float, default=None
        Target accuracy drawn as a reference line; None: no line.
    estimator_name : str, default=None
        Name used in the title; None: no title.

    Attributes
    ----------
    regions : tuple of str
        Names of the regions, in the order of ``accuracy`` and ``counts``.
    bars_ : matplotlib.container.BarContainer
        The bars, one per region (height 0 for an empty region).
    alpha_line_ : matplotlib.lines.Line2D or None
        The reference line at ``alpha``.
    ax_ : matplotlib.axes.Axes
        Axes with the bars.
    figure_ : matplotlib.figure.Figure
        Figure containing the bars.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sdm_sklearn.plotting import RegionAccuracyDisplay
    >>> display = RegionAccuracyDisplay.from_predictions(
    ...     [0, 1, 1, 0], [0, 1, 0, 1], admitted=[True, True, False, False],
    ...     is_ood=[False, False, False, True], alpha=0.9)
    >>> display.counts.tolist(), display.accuracy.tolist()
    ([2, 1, 1], [1.0, 0.0, 0.0])
    """

    regions = _REGIONS

    def __init__(self, accuracy, counts, *, alpha=None, estimator_name=None):
        self.accuracy = accuracy
        self.counts = counts
        self.alpha = alpha
        self.estimator_name = estimator_name

    def plot(self, *, ax=None, name=None, **kwargs):
        """Draw one bar per region.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        name : str, default=None
            Title of the axes; None: ``estimator_name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.bar`.

        Returns
        -------
        display : RegionAccuracyDisplay
            This display, with the matplotlib objects stored.
        """
        self.ax_, self.figure_ = _single_axes(ax, "RegionAccuracyDisplay.plot")
        name = self.estimator_name if name is None else name
        heights = np.nan_to_num(np.asarray(self.accuracy, dtype=float), nan=0.0)
        bar_kwargs = {"color": ["tab:green", "tab:orange", "tab:gray"]} | kwargs
        self.bars_ = self.ax_.bar(
            [region.replace(", ", ",\n") for region in self.regions], heights,
            **bar_kwargs,
        )
        total = max(int(np.sum(self.counts)), 1)
        labels = [
            f"n={count} ({count / total:.0%})"
            + ("" if np.isnan(accuracy) else f"\nacc {accuracy:.3f}")
            for count, accuracy in zip(self.counts, self.accuracy, strict=True)
        ]
        # A light box keeps a label readable where the alpha line crosses it.
        self.ax_.bar_label(
            self.bars_, labels=labels, padding=2, fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
        self.alpha_line_ = None
        if self.alpha is not None:
            self.alpha_line_ = self.ax_.axhline(
                self.alpha, color="black", linestyle="--",
                label=f"alpha = {self.alpha:g}",
            )
            self.ax_.legend(loc="upper right")
        self.ax_.set(ylabel="Accuracy of predict", ylim=(0, 1.25))
        if name is not None:
            self.ax_.set_title(name)
        return self

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, admitted, is_ood, alpha=None,
                         name=None, ax=None, **kwargs):
        """Plot region accuracies from predictions and region masks.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_pred : array-like of shape (n_samples,)
            Predicted labels (every input has one).
        admitted : array-like of shape (n_samples,)
            Boolean mask (bool or 0/1 integers) of the HIGH-RELIABILITY
            region.
        is_ood : array-like of shape (n_samples,)
            Boolean mask (bool or 0/1 integers) of out-of-distribution
            inputs; takes precedence over ``admitted``.
        alpha : float, default=None
            Target accuracy drawn as a reference line.
        name : str, default=None
            Title of the axes.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.bar`.

        Returns
        -------
        display : RegionAccuracyDisplay
        """
        y_true, y_pred = check_predictions(y_true, y_pred, admitted, is_ood)
        admitted = check_mask(admitted, "admitted")
        is_ood = check_mask(is_ood, "is_ood")
        correct = y_true == y_pred
        masks = (admitted & ~is_ood, ~admitted & ~is_ood, is_ood)
        counts = np.array([int(mask.sum()) for mask in masks])
        accuracy = np.array(
            [correct[mask].mean() if mask.any() else np.nan for mask in masks]
        )
        display = cls(accuracy, counts, alpha=alpha, estimator_name=name)
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, conservative=None, name=None,
                       ax=None, **kwargs):
        """Plot region accuracies of a fitted SDMClassifier.

        Parameters
        ----------
        estimator : SDMClassifier or Pipeline
            A fitted SDMClassifier, or a Pipeline ending in one.
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            True labels, of the kind of the estimator's ``classes_``:
            another kind raises a ValueError; a label outside ``classes_``
            (an unseen class) warns, and its predictions count as wrong.
        conservative : bool, default=None
            Use the lower (DKW) variant's admitted set; None: follow the
            estimator's ``conservative`` parameter, as ``predict_selective``
            does.
        name : str, default=None
            Title of the axes; None: the estimator's class name, with
            "(lower)" for the lower variant.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None: a new figure and axes.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.bar`.

        Returns
        -------
        display : RegionAccuracyDisplay
        """
        y, frame, estimator = uncertainty_of(estimator, X, y,
                                             "RegionAccuracyDisplay")
        column = admitted_column(
            estimator.conservative if conservative is None else conservative
        )
        if name is None:
            name = type(estimator).__name__
            if column == "admitted_lower":
                name += " (lower)"
        return cls.from_predictions(
            y, frame["prediction"].to_numpy(), admitted=frame[column].to_numpy(),
            is_ood=frame["is_ood"].to_numpy(), alpha=estimator.alpha, name=name,
            ax=ax, **kwargs,
        )


class SDMDistributionDisplay:
    """Histograms of q' and d for correct and wrong predictions.

    Two panels: the rescaled similarity q' (with the lower edge q'_min of the
    HIGH-RELIABILITY region as a vertical line, when a region exists) and
    the distance quantile d, each split into correct and wrong predictions.
    Wrong predictions concentrate at small q' and d when the SDM estimator
    separates them well.

    Create it with :meth:`from_estimator`. All parameters are stored as
    attributes.

    Parameters
    ----------
    rescaled_similarity : ndarray of shape (n_samples,)
        The rescaled similarity q' of every input.
    d : ndarray of shape (n_samples,)
        Distance quantile of every input.
    correct : ndarray of shape (n_samples,)
        Boolean mask (bool or 0/1 integers) of correct predictions.
    min_rescaled_similarity : float, default=None
        The region's threshold q'_min, drawn as a vertical line; None or
        infinite: no line.
    estimator_name : str, default=None
        Name used in the titles; None: no name.

    Attributes
    ----------
    patches_ : dict
        Maps ``(quantity, outcome)`` to the histogram's
        :class:`~matplotlib.container.BarContainer`, with quantity in
        ``("rescaled_similarity", "d")`` and outcome in
        ``("correct", "wrong")``.
    threshold_line_ : matplotlib.lines.Line2D or None
        The vertical line at q'_min.
    axes_ : ndarray of shape (2,) of matplotlib.axes.Axes
        The q' panel, then the d panel.
    figure_ : matplotlib.figure.Figure
        Figure containing the panels.
    """

    def __init__(self, rescaled_similarity, d, correct, *,
                 min_rescaled_similarity=None, estimator_name=None):
        self.rescaled_similarity = rescaled_similarity
        self.d = d
        self.correct = correct
        self.min_rescaled_similarity = min_rescaled_similarity
        self.estimator_name = estimator_name

    def plot(self, *, ax=None, name=None, bins=30, density=False):
        """Draw both histograms.

        Parameters
        ----------
        ax : array-like of 2 matplotlib.axes.Axes, default=None
            Axes for the q' and the d panels; None: a new figure with two
            side-by-side axes.
        name : str, default=None
            Prefix of the panel titles; None: ``estimator_name``.
        bins : int, default=30
            Number of equal-width bins, shared by correct and wrong.
        density : bool, default=False
            Normalize each histogram to unit area (compares shapes when
            wrong predictions are few).

        Returns
        -------
        display : SDMDistributionDisplay
            This display, with the matplotlib objects stored.
        """
        self.axes_, self.figure_ = _several_axes(
            ax, "SDMDistributionDisplay.plot", 2, (1, 2), (10, 4))
        name = self.estimator_name if name is None else name
        correct = check_mask(self.correct, "correct")
        panels = {
            "rescaled_similarity": ("q' (rescaled similarity)",
                                    np.asarray(self.rescaled_similarity, float)),
            "d": ("d (distance quantile)", np.asarray(self.d, float)),
        }
        self.patches_ = {}
        for axes_, (quantity, (title, values)) in zip(
            self.axes_, panels.items(), strict=True
        ):
            edges = np.histogram_bin_edges(values, bins=bins)
            for outcome, mask, color in (
                ("correct", correct, "tab:blue"),
                ("wrong", ~correct, "tab:red"),
            ):
                _, _, patches = axes_.hist(
                    values[mask], bins=edges, density=density, alpha=0.6,
                    color=color, label=f"{outcome} (n={int(mask.sum())})",
                )
                self.patches_[quantity, outcome] = patches
            axes_.set(xlabel=title, ylabel="density" if density else "count")
            axes_.set_title(title if name is None else f"{name}: {title}")
        self.threshold_line_ = None
        threshold = self.min_rescaled_similarity
        if threshold is not None and np.isfinite(threshold):
            self.threshold_line_ = self.axes_[0].axvline(
                threshold, color="black", linestyle="--",
                label=f"q'_min = {threshold:.3g}",
            )
        for axes_ in self.axes_:
            axes_.legend()
        return self

    @classmethod
    def from_estimator(cls, estimator, X, y, *, name=None, ax=None, bins=30,
                       density=False):
        """Plot the q' and d histograms of a fitted SDMClassifier.

        Parameters
        ----------
        estimator : SDMClassifier or Pipeline
            A fitted SDMClassifier, or a Pipeline ending in one.
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            True labels, of the kind of the estimator's ``classes_``:
            another kind raises a ValueError; a label outside ``classes_``
            (an unseen class) warns, and its predictions count as wrong.
        name : str, default=None
            Prefix of the panel titles; None: the estimator's class name.
        ax : array-like of 2 matplotlib.axes.Axes, default=None
            Axes for the q' and the d panels; None: a new figure.
        bins : int, default=30
            Number of equal-width bins.
        density : bool, default=False
            Normalize each histogram to unit area.

        Returns
        -------
        display : SDMDistributionDisplay
        """
        y, frame, estimator = uncertainty_of(estimator, X, y,
                                             "SDMDistributionDisplay")
        display = cls(
            frame["rescaled_similarity"].to_numpy(), frame["d"].to_numpy(),
            frame["prediction"].to_numpy() == y,
            min_rescaled_similarity=estimator.min_rescaled_similarity_,
            estimator_name=type(estimator).__name__ if name is None else name,
        )
        return display.plot(ax=ax, bins=bins, density=density)


class DriftDisplay:
    """A drift monitor's test martingales and batch statistics over a stream.

    Three panels: ``log10`` of both test martingales after every input, with
    the alarm threshold and, once it has gone off, the input that set off
    the alarm; the admitted share of every batch against the calibration
    split's; and the Kolmogorov-Smirnov distances of q' and ``d_nearest``
    and the total variation distance of the predicted classes, per batch.

    Create it with :meth:`from_monitor`. All parameters are stored as
    attributes.

    Parameters
    ----------
    log10_martingales : dict of str to ndarray of shape (n_seen,)
        ``log10`` of each martingale after every input.
    log10_threshold : float
        ``log10`` of the alarm threshold.
    history : pandas.DataFrame
        :attr:`~sdm_sklearn.monitoring.DriftMonitor.history_`.
    reference_admitted_share : float
        The calibration split's admitted share.
    alarm_sample : int, default=None
        Stream position of the input that set off the alarm; None: no alarm.

    Attributes
    ----------
    lines_ : dict of str to matplotlib.lines.Line2D
        The martingales (by score name), ``"admitted_share"``,
        ``"ks_rescaled_similarity"``, ``"ks_d_nearest"`` and
        ``"class_shift"``.
    threshold_line_ : matplotlib.lines.Line2D
    alarm_line_ : matplotlib.lines.Line2D or None
    axes_ : ndarray of shape (3,) of matplotlib.axes.Axes
    figure_ : matplotlib.figure.Figure
    """

    def __init__(self, log10_martingales, log10_threshold, history,
                 reference_admitted_share, *, alarm_sample=None):
        self.log10_martingales = log10_martingales
        self.log10_threshold = log10_threshold
        self.history = history
        self.reference_admitted_share = reference_admitted_share
        self.alarm_sample = alarm_sample

    def plot(self, *, ax=None):
        """Draw the three panels.

        Parameters
        ----------
        ax : array-like of 3 matplotlib.axes.Axes, default=None
            Axes for the martingale, admitted-share and distance panels;
            None: a new figure with three stacked axes.

        Returns
        -------
        display : DriftDisplay
            This display, with the matplotlib objects stored.
        """
        self.axes_, self.figure_ = _several_axes(
            ax, "DriftDisplay.plot", 3, (3, 1), (8, 9))
        martingale_axes, share_axes, distance_axes = self.axes_
        self.lines_ = {}
        for name, path in self.log10_martingales.items():
            (self.lines_[name],) = martingale_axes.plot(
                np.arange(1, len(path) + 1), path, label=f"score: {name}")
        self.threshold_line_ = martingale_axes.axhline(
            self.log10_threshold, color="black", linestyle="--",
            label="alarm threshold")
        self.alarm_line_ = None
        if self.alarm_sample is not None:
            self.alarm_line_ = martingale_axes.axvline(
                self.alarm_sample + 1, color="tab:red", linestyle=":",
                label=f"alarm (after {self.alarm_sample + 1} inputs)")
        martingale_axes.set(xlabel="inputs seen", ylabel="log10 martingale",
                            title="Exchangeability test")
        batches = self.history["batch"].to_numpy()
        (self.lines_["admitted_share"],) = share_axes.plot(
            batches, self.history["admitted_share"].to_numpy(dtype=float),
            marker="o", label="batch")
        share_axes.axhline(self.reference_admitted_share, color="gray",
                           linestyle="--", label="calibration split")
        share_axes.set(xlabel="batch", ylabel="admitted share", ylim=(-0.02, 1.02),
                       title="Admitted share")
        for column, label in (
            ("ks_rescaled_similarity", "KS distance of q'"),
            ("ks_d_nearest", "KS distance of d_nearest"),
            ("class_shift", "TV distance of predicted classes"),
        ):
            (self.lines_[column],) = distance_axes.plot(
                batches, self.history[column].to_numpy(dtype=float), marker="o",
                label=label)
        distance_axes.set(xlabel="batch", ylabel="distance to calibration",
                          ylim=(-0.02, 1.02),
                          title="Batch against the calibration split")
        for axes_ in self.axes_:
            axes_.legend()
        self.figure_.tight_layout()
        return self

    @classmethod
    def from_monitor(cls, monitor, *, ax=None):
        """Plot what a :class:`~sdm_sklearn.monitoring.DriftMonitor` has seen.

        Parameters
        ----------
        monitor : DriftMonitor
            Updated at least once.
        ax : array-like of 3 matplotlib.axes.Axes, default=None
            See :meth:`plot`.

        Returns
        -------
        display : DriftDisplay
        """
        if len(monitor.history_) == 0:
            raise ValueError(
                "DriftDisplay.from_monitor needs a monitor that has seen at "
                "least one batch; call monitor.update(X) first."
            )
        display = cls(
            monitor.log10_martingales_, monitor.log10_threshold_,
            monitor.history_, monitor.reference_["admitted_share"],
            alarm_sample=monitor.alarm_sample_,
        )
        return display.plot(ax=ax)
