"""Tests for sdm_sklearn.plotting: the data drawn equals the metrics' outputs."""

import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sdm_sklearn import SDMClassifier
from sdm_sklearn.metrics import risk_coverage_auc, risk_coverage_curve
from sdm_sklearn.plotting import (
    RegionAccuracyDisplay,
    RiskCoverageDisplay,
    SDMDistributionDisplay,
)

# The fixture's small data give a region on few calibration points.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sdm_sklearn.exceptions.SmallRegionWarning"
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from label_kinds import LABEL_KINDS, as_labels  # noqa: E402
from matplotlib.cbook import STEP_LOOKUP_MAP  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=600, n_features=8, n_informative=5, n_classes=3,
        class_sep=1.5, random_state=0,
    )
    return X[:400], y[:400], X[400:], y[400:]


@pytest.fixture(scope="module")
def sdm(data):
    X_train, y_train, _, _ = data
    # These settings give a HIGH-RELIABILITY region, admitted and rejected
    # test points, out-of-distribution ones and wrong predictions.
    return SDMClassifier(
        alpha=0.85, n_iterations=1, n_epochs=20, random_state=0
    ).fit(X_train, y_train)


def test_sdm_fixture_covers_every_case(sdm, data):
    _, _, X_test, y_test = data
    frame = sdm.predict_uncertainty(X_test)
    assert np.isfinite(sdm.min_rescaled_similarity_)
    assert 0 < frame["admitted_lower"].sum() < frame["admitted"].sum()
    assert frame["is_ood"].any()
    assert (frame["prediction"] != y_test).any()


def _assert_draws_curve(display, curve):
    """The line is the curve's steps, from coverage 0 at the first risk."""
    risk = curve["risk"].to_numpy()
    assert_allclose(display.coverage, curve["coverage"])
    assert_allclose(display.risk, risk)
    assert_allclose(display.line_.get_xdata(), [0.0, *curve["coverage"]])
    assert_allclose(display.line_.get_ydata(), [risk[0], *risk])


def _drawn_area(line):
    """Area under a Line2D as matplotlib draws it (its drawstyle applied)."""
    x, y = STEP_LOOKUP_MAP[line.get_drawstyle()](line.get_xdata(), line.get_ydata())
    return np.trapezoid(y, x)


def test_risk_coverage_from_predictions_draws_the_metric():
    y_true = [0, 1, 1, 0, 2, 2]
    y_pred = [0, 1, 0, 0, 2, 1]
    confidence = [0.9, 0.8, 0.8, 0.3, 0.7, 0.2]
    display = RiskCoverageDisplay.from_predictions(
        y_true, y_pred, confidence, name="model"
    )
    curve = risk_coverage_curve(y_true, y_pred, confidence)
    _assert_draws_curve(display, curve)
    aurc = risk_coverage_auc(y_true, y_pred, confidence)
    assert display.aurc == pytest.approx(aurc)
    assert display.line_.get_label() == f"model (AURC = {aurc:.3f})"
    assert display.line_.get_drawstyle() == "steps-pre"
    assert display.admitted_marker_ is None
    assert display.ax_.get_xlabel() == "Coverage (fraction admitted)"
    assert display.figure_ is display.ax_.figure


def test_risk_coverage_axis_grows_with_overlaid_curves():
    _, ax = plt.subplots()
    y_true = [0, 1, 1, 0, 1, 0, 1, 0, 1, 1]
    good_pred = [0, 1, 1, 0, 1, 0, 1, 0, 1, 0]  # risk at most 0.1
    bad_pred = [1, 0, 0, 1, 0, 1, 0, 1, 0, 1]  # risk up to 0.9
    confidence = np.linspace(1, 0, 10)
    RiskCoverageDisplay.from_predictions(y_true, good_pred, confidence, ax=ax)
    RiskCoverageDisplay.from_predictions(y_true, bad_pred, confidence, ax=ax)
    bottom, top = ax.get_ylim()
    assert bottom == 0
    assert top >= 0.9


def test_risk_coverage_admitted_marker():
    y_true = np.array([0, 1, 1, 0])
    y_pred = np.array([0, 1, 0, 1])
    # Two of three admitted points are right: coverage 3/4, risk 1/3.
    display = RiskCoverageDisplay.from_predictions(
        y_true, y_pred, [0.9, 0.8, 0.7, 0.1], admitted=[True, True, True, False]
    )
    assert display.admitted_coverage == pytest.approx(0.75)
    assert display.admitted_risk == pytest.approx(1 / 3)
    assert_allclose(display.admitted_marker_.get_xdata(), [0.75])
    assert_allclose(display.admitted_marker_.get_ydata(), [1 / 3])
    assert display.admitted_marker_.get_color() == display.line_.get_color()


def test_risk_coverage_empty_admitted_set_has_nan_risk():
    display = RiskCoverageDisplay.from_predictions(
        [0, 1], [0, 0], [0.9, 0.1], admitted=[False, False]
    )
    assert display.admitted_coverage == 0.0
    assert np.isnan(display.admitted_risk)
    assert "risk -" in display.admitted_marker_.get_label()


def test_risk_coverage_from_sdm_estimator(sdm, data):
    _, _, X_test, y_test = data
    display = RiskCoverageDisplay.from_estimator(sdm, X_test, y_test)
    frame = sdm.predict_uncertainty(X_test)
    prediction = frame["prediction"].to_numpy()
    curve = risk_coverage_curve(y_test, prediction, frame["sdm_probability"])
    _assert_draws_curve(display, curve)
    assert _drawn_area(display.line_) == pytest.approx(
        risk_coverage_auc(y_test, prediction, frame["sdm_probability"])
    )
    admitted = frame["admitted"].to_numpy()
    assert_allclose(display.admitted_marker_.get_xdata(), [admitted.mean()])
    assert_allclose(
        display.admitted_marker_.get_ydata(),
        [np.mean(prediction[admitted] != y_test[admitted])],
    )
    assert display.line_.get_label().startswith("SDMClassifier (AURC = ")


def test_risk_coverage_conservative_sdm_uses_the_lower_variant(sdm, data):
    X_train, y_train, X_test, y_test = data
    conservative = clone(sdm).set_params(conservative=True).fit(X_train, y_train)
    display = RiskCoverageDisplay.from_estimator(conservative, X_test, y_test)
    frame = conservative.predict_uncertainty(X_test)
    curve = risk_coverage_curve(
        y_test, frame["prediction"], frame["sdm_probability_lower"]
    )
    _assert_draws_curve(display, curve)
    assert_allclose(
        display.admitted_marker_.get_xdata(), [frame["admitted_lower"].mean()]
    )
    assert frame["admitted_lower"].sum() < frame["admitted"].sum()


def test_risk_coverage_overlays_sdm_and_any_classifier(sdm, data):
    X_train, y_train, X_test, y_test = data
    logistic = LogisticRegression().fit(X_train, y_train)
    _, ax = plt.subplots()
    sdm_display = RiskCoverageDisplay.from_estimator(sdm, X_test, y_test, ax=ax)
    logistic_display = RiskCoverageDisplay.from_estimator(
        logistic, X_test, y_test, ax=ax, name="logistic", linestyle=":"
    )
    assert sdm_display.ax_ is logistic_display.ax_ is ax
    assert len(ax.get_lines()) == 3  # two curves and the SDM marker
    proba = logistic.predict_proba(X_test)
    curve = risk_coverage_curve(
        y_test, logistic.classes_[proba.argmax(axis=1)], proba.max(axis=1)
    )
    _assert_draws_curve(logistic_display, curve)
    assert logistic_display.line_.get_linestyle() == ":"
    assert logistic_display.admitted_marker_ is None
    legend_labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("logistic (AURC") for label in legend_labels)


def test_risk_coverage_sdm_predict_proba_response(sdm, data):
    _, _, X_test, y_test = data
    display = RiskCoverageDisplay.from_estimator(
        sdm, X_test, y_test, response="predict_proba"
    )
    proba = sdm.predict_proba(X_test)
    curve = risk_coverage_curve(
        y_test, sdm.classes_[proba.argmax(axis=1)], proba.max(axis=1)
    )
    _assert_draws_curve(display, curve)
    assert display.admitted_marker_ is not None


def test_risk_coverage_response_errors(sdm, data):
    X_train, y_train, X_test, y_test = data
    with pytest.raises(ValueError, match="response must be one of"):
        RiskCoverageDisplay.from_estimator(sdm, X_test, y_test, response="max")
    logistic = LogisticRegression().fit(X_train, y_train)
    with pytest.raises(ValueError, match="needs an SDMClassifier"):
        RiskCoverageDisplay.from_estimator(
            logistic, X_test, y_test, response="sdm_probability"
        )


def test_region_accuracy_from_predictions_by_hand():
    y_true = [0, 1, 1, 0, 1, 0]
    y_pred = [0, 1, 0, 1, 1, 0]
    # Region of each point: admitted, admitted, rejected, OOD, OOD, rejected.
    # An OOD point is never counted as admitted, even if the mask says so.
    display = RegionAccuracyDisplay.from_predictions(
        y_true, y_pred,
        admitted=[True, True, False, True, False, False],
        is_ood=[False, False, False, True, True, False],
        alpha=0.9, name="by hand",
    )
    assert_array_equal(display.counts, [2, 2, 2])
    assert_allclose(display.accuracy, [1.0, 0.5, 0.5])
    heights = [bar.get_height() for bar in display.bars_]
    assert_allclose(heights, [1.0, 0.5, 0.5])
    assert_allclose(display.alpha_line_.get_ydata(), [0.9, 0.9])
    assert display.ax_.get_title() == "by hand"


def test_region_accuracy_empty_region_is_nan_with_zero_bar():
    display = RegionAccuracyDisplay.from_predictions(
        [0, 1], [0, 0], admitted=[False, False], is_ood=[False, False]
    )
    assert_array_equal(display.counts, [0, 2, 0])
    assert np.isnan(display.accuracy[0]) and np.isnan(display.accuracy[2])
    assert display.bars_[0].get_height() == 0
    assert display.alpha_line_ is None


@pytest.mark.parametrize("conservative", [None, True])
def test_region_accuracy_from_sdm_estimator(sdm, data, conservative):
    _, _, X_test, y_test = data
    display = RegionAccuracyDisplay.from_estimator(
        sdm, X_test, y_test, conservative=conservative
    )
    frame = sdm.predict_uncertainty(X_test)
    admitted = frame["admitted_lower" if conservative else "admitted"].to_numpy()
    is_ood = frame["is_ood"].to_numpy()
    correct = frame["prediction"].to_numpy() == y_test
    masks = [admitted, ~admitted & ~is_ood, is_ood]
    assert_array_equal(display.counts, [mask.sum() for mask in masks])
    assert_allclose(display.accuracy, [correct[mask].mean() for mask in masks])
    assert display.counts.sum() == len(y_test)
    assert display.alpha == sdm.alpha
    expected_title = "SDMClassifier (lower)" if conservative else "SDMClassifier"
    assert display.ax_.get_title() == expected_title
    tick_labels = [tick.get_text() for tick in display.ax_.get_xticklabels()]
    assert tick_labels[0] == "HIGH-RELIABILITY"


def test_sdm_only_displays_reject_other_estimators(data):
    X_train, y_train, X_test, y_test = data
    logistic = LogisticRegression().fit(X_train, y_train)
    for display in (RegionAccuracyDisplay, SDMDistributionDisplay):
        with pytest.raises(TypeError, match="needs an SDMClassifier"):
            display.from_estimator(logistic, X_test, y_test)


def _bar_heights(container):
    return np.array([patch.get_height() for patch in container])


def test_distribution_from_sdm_estimator(sdm, data):
    _, _, X_test, y_test = data
    display = SDMDistributionDisplay.from_estimator(sdm, X_test, y_test, bins=12)
    frame = sdm.predict_uncertainty(X_test)
    correct = frame["prediction"].to_numpy() == y_test
    for quantity in ("rescaled_similarity", "d"):
        values = frame[quantity].to_numpy()
        edges = np.histogram_bin_edges(values, bins=12)
        for outcome, mask in (("correct", correct), ("wrong", ~correct)):
            expected, _ = np.histogram(values[mask], bins=edges)
            assert_allclose(_bar_heights(display.patches_[quantity, outcome]),
                            expected)
    assert_allclose(
        display.threshold_line_.get_xdata(), [sdm.min_rescaled_similarity_] * 2
    )
    assert display.axes_.shape == (2,)
    assert display.axes_[0].get_xlabel() == "q' (rescaled similarity)"
    assert display.axes_[1].get_xlabel() == "d (distance quantile)"
    labels = [text.get_text() for text in display.axes_[1].get_legend().get_texts()]
    assert labels == [f"correct (n={correct.sum()})", f"wrong (n={(~correct).sum()})"]


def test_distribution_without_region_and_on_given_axes():
    _, axes = plt.subplots(2, 1)
    display = SDMDistributionDisplay(
        np.array([0.0, 1.5, 3.0, 3.0]), np.array([0.0, 0.2, 0.9, 1.0]),
        np.array([False, True, True, True]), min_rescaled_similarity=np.inf,
    ).plot(ax=axes, bins=3, density=True)
    assert display.threshold_line_ is None
    assert display.axes_[0] is axes[0] and display.axes_[1] is axes[1]
    assert display.axes_[0].get_ylabel() == "density"
    # One wrong point in the first of three bins of width 1: density 1.
    assert_allclose(_bar_heights(display.patches_["rescaled_similarity", "wrong"]),
                    [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="exactly 2 axes"):
        display.plot(ax=axes[:1])


def test_missing_matplotlib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    display = RiskCoverageDisplay(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        display.plot()


# --- The drawn curve and its AURC agree -------------------------------------


@pytest.mark.parametrize(
    "y_true, y_pred, confidence",
    [
        # The first prediction (confidence 0.9) is wrong: risk 1 up to
        # coverage 1/2, then 1/2; AURC = 1 * 1/2 + 1/2 * 1/2 = 0.75.
        ([0, 1], [1, 1], [0.9, 0.5]),
        ([0, 1, 1, 0, 2, 2], [0, 1, 0, 0, 2, 1], [0.9, 0.8, 0.8, 0.3, 0.7, 0.2]),
        ([1, 1, 0], [0, 1, 0], [0.5, 0.5, 0.5]),  # one threshold
    ],
)
def test_risk_coverage_drawn_area_is_the_aurc(y_true, y_pred, confidence):
    # Before: the first step (from coverage 0) was not drawn, so the first
    # case drew an area of 0.25 under a legend saying AURC = 0.750.
    display = RiskCoverageDisplay.from_predictions(y_true, y_pred, confidence)
    aurc = risk_coverage_auc(y_true, y_pred, confidence)
    assert _drawn_area(display.line_) == pytest.approx(aurc)
    assert display.line_.get_label() == f"AURC = {aurc:.3f}"


def test_risk_coverage_brief_example_area():
    display = RiskCoverageDisplay.from_predictions([0, 1], [1, 1], [0.9, 0.5])
    assert display.aurc == pytest.approx(0.75)
    assert _drawn_area(display.line_) == pytest.approx(0.75)


# --- Masks: booleans or 0/1 integers only -----------------------------------

BAD_MASKS = [
    (["False", "False"], "dtype <U5"),
    ([0.5, 0.0], "dtype float64"),
    ([2, 0], r"integer values \[2\]"),
]


@pytest.mark.parametrize("mask, match", BAD_MASKS)
def test_risk_coverage_refuses_non_boolean_admitted(mask, match):
    # Before: ["False", "False"] was drawn as "all admitted".
    with pytest.raises(ValueError, match="admitted must be a boolean mask.*" + match):
        RiskCoverageDisplay.from_predictions([0, 1], [0, 0], [0.9, 0.1],
                                             admitted=mask)


@pytest.mark.parametrize("mask, match", BAD_MASKS)
def test_region_accuracy_refuses_non_boolean_masks(mask, match):
    with pytest.raises(ValueError, match="admitted must be a boolean mask.*" + match):
        RegionAccuracyDisplay.from_predictions(
            [0, 1], [0, 0], admitted=mask, is_ood=[False, False]
        )
    with pytest.raises(ValueError, match="is_ood must be a boolean mask.*" + match):
        RegionAccuracyDisplay.from_predictions(
            [0, 1], [0, 0], admitted=[True, False], is_ood=mask
        )


@pytest.mark.parametrize("mask, match", BAD_MASKS)
def test_distribution_refuses_non_boolean_correct(mask, match):
    display = SDMDistributionDisplay(np.array([1.0, 2.0]), np.array([0.1, 0.9]),
                                     np.array(mask))
    with pytest.raises(ValueError, match="correct must be a boolean mask.*" + match):
        display.plot()


def test_displays_accept_integer_masks():
    as_int = RegionAccuracyDisplay.from_predictions(
        [0, 1, 1], [0, 1, 0], admitted=[1, 0, 1], is_ood=[0, 0, 1]
    )
    assert_array_equal(as_int.counts, [1, 1, 1])
    assert_allclose(as_int.accuracy, [1.0, 1.0, 0.0])
    marker = RiskCoverageDisplay.from_predictions(
        [0, 1, 1], [0, 1, 0], [0.9, 0.5, 0.1], admitted=[1, 0, 1]
    )
    assert marker.admitted_coverage == pytest.approx(2 / 3)
    assert marker.admitted_risk == pytest.approx(1 / 2)


def test_displays_refuse_missing_labels_and_mismatched_lengths():
    with pytest.raises(ValueError, match="Input y_true contains missing"):
        RegionAccuracyDisplay.from_predictions(
            [0, np.nan], [0, 0], admitted=[True, True], is_ood=[False, False]
        )
    with pytest.raises(ValueError, match="Input y_pred contains missing"):
        RegionAccuracyDisplay.from_predictions(
            [0, 1], [0, None], admitted=[True, False], is_ood=[False, False]
        )
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RegionAccuracyDisplay.from_predictions(
            [0, 1], [0, 1], admitted=[True, False], is_ood=[False]
        )
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RiskCoverageDisplay.from_predictions(
            [0, 1], [0, 1], [0.9, 0.1], admitted=[True]
        )


# --- Labels against the estimator's classes ---------------------------------

SDM_DISPLAYS = [RiskCoverageDisplay, RegionAccuracyDisplay, SDMDistributionDisplay]


@pytest.mark.parametrize("display", SDM_DISPLAYS)
def test_sdm_displays_refuse_labels_of_another_kind(sdm, data, display):
    # Before: string labels against integer classes gave an accuracy of 0
    # (or NaN) everywhere, and every prediction counted as wrong.
    _, _, X_test, y_test = data
    with pytest.raises(ValueError, match=r"Mix of label input types \(y: strings"):
        display.from_estimator(sdm, X_test, y_test.astype(str))


@pytest.mark.parametrize("display", SDM_DISPLAYS)
def test_sdm_displays_warn_about_unknown_labels(sdm, data, display):
    # A label of the right kind outside classes_ (an unseen class, e.g. to
    # show where its inputs fall) is drawn, every prediction wrong, with a
    # warning that names it.
    _, _, X_test, y_test = data
    y_unknown = np.where(y_test == 2, 7, y_test)
    with pytest.warns(UserWarning, match=r"not among the estimator's classes_ "
                                         r"\[0, 1, 2\]: \[7\]; every prediction"):
        display.from_estimator(sdm, X_test, y_unknown)


def test_region_accuracy_of_an_unseen_class(sdm, data):
    _, _, X_test, y_test = data
    with pytest.warns(UserWarning, match="not among the estimator's classes_"):
        display = RegionAccuracyDisplay.from_estimator(
            sdm, X_test, np.full(len(y_test), 7)
        )
    assert display.counts.sum() == len(y_test)
    assert_allclose(display.accuracy[display.counts > 0], 0.0)


def test_risk_coverage_any_classifier_refuses_labels_of_another_kind(data):
    X_train, y_train, X_test, y_test = data
    logistic = LogisticRegression().fit(X_train, y_train)
    with pytest.raises(ValueError, match="Mix of label input types"):
        RiskCoverageDisplay.from_estimator(logistic, X_test, y_test.astype(str))


# --- Every kind of label, through every display -----------------------------



@pytest.fixture(scope="module")
def binary_data():
    # These settings give a region, admitted, rejected and OOD test points
    # and wrong predictions, without a warning at fit.
    X, codes = make_classification(
        n_samples=400, n_features=6, n_informative=4, class_sep=2.0, random_state=0
    )
    return X[:266], codes[:266], X[266:], codes[266:]


def _fit_binary(binary_data, kind):
    X_train, codes_train, _, _ = binary_data
    return SDMClassifier(alpha=0.9, n_iterations=1, n_epochs=10, random_state=0).fit(
        X_train, as_labels(codes_train, kind)
    )


@pytest.fixture(scope="module")
def binary_reference(binary_data):
    return _fit_binary(binary_data, "int")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_display_with_every_label_kind(binary_data, binary_reference, kind):
    _, _, X_test, codes_test = binary_data
    reference = binary_reference
    model = _fit_binary(binary_data, kind)
    y_test = as_labels(codes_test, kind)
    y_reference = as_labels(codes_test, "int")
    frame = model.predict_uncertainty(X_test)
    assert 0 < frame["admitted"].sum() and frame["is_ood"].any()

    risk = RiskCoverageDisplay.from_estimator(model, X_test, y_test)
    expected = RiskCoverageDisplay.from_estimator(reference, X_test, y_reference)
    assert_allclose(risk.line_.get_ydata(), expected.line_.get_ydata())
    assert risk.aurc == expected.aurc
    assert risk.admitted_risk == expected.admitted_risk

    region = RegionAccuracyDisplay.from_estimator(model, X_test, y_test)
    expected = RegionAccuracyDisplay.from_estimator(reference, X_test, y_reference)
    assert_array_equal(region.counts, expected.counts)
    assert_allclose(region.accuracy, expected.accuracy)
    assert np.isfinite(region.accuracy).all()

    histograms = SDMDistributionDisplay.from_estimator(model, X_test, y_test)
    expected = SDMDistributionDisplay.from_estimator(reference, X_test, y_reference)
    assert_array_equal(histograms.correct, expected.correct)
    assert 0 < histograms.correct.sum() < len(codes_test)

    prediction = frame["prediction"]
    by_hand = RegionAccuracyDisplay.from_predictions(
        y_test, prediction, admitted=frame["admitted"], is_ood=frame["is_ood"]
    )
    assert_array_equal(by_hand.counts, region.counts)
    curve = RiskCoverageDisplay.from_predictions(
        y_test, prediction, frame["sdm_probability"], admitted=frame["admitted"]
    )
    assert_allclose(curve.line_.get_ydata(), risk.line_.get_ydata())
    plt.close("all")
