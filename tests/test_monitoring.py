"""DriftMonitor: exact p-values and martingales, batch invariance, validity
of the martingale under exchangeability, alarms under shift, bad calls."""

import numpy as np
import pytest
from label_kinds import LABEL_KINDS, fitted_on_kind
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sdm_sklearn import SDMClassifier
from sdm_sklearn._conformal import conformal_p_values, earlier_counts, jumper_path
from sdm_sklearn.monitoring import HISTORY_COLUMNS, DriftMonitor


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=1600, n_features=6, n_informative=4,
                               random_state=0)
    clf = SDMClassifier(n_iterations=1, alpha=0.9, random_state=0).fit(X[:800], y[:800])
    return clf, X[800:], y[800:]


# ------------------------------------------------------------ exact pieces


def _brute_p_values(earlier, scores, uniforms):
    seen = list(earlier)
    out = []
    for score, u in zip(scores, uniforms, strict=True):
        seen_array = np.array(seen)
        greater = np.sum(seen_array > score)
        equal = np.sum(seen_array == score)
        out.append((greater + u * (equal + 1)) / (len(seen) + 1))
        seen.append(score)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_p_values_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    # few distinct values: ties within the batch and with earlier scores
    earlier = np.sort(rng.integers(0, 6, size=rng.integers(0, 40)).astype(float))
    scores = rng.integers(0, 6, size=rng.integers(1, 60)).astype(float)
    uniforms = rng.random(len(scores))
    assert_allclose(conformal_p_values(earlier, scores, uniforms),
                    _brute_p_values(earlier, scores, uniforms), rtol=0, atol=1e-15)


def test_earlier_counts_equal_brute_force():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 7, size=200)
    greater, equal = earlier_counts(ranks, 7)
    for i, rank in enumerate(ranks):
        assert greater[i] == np.sum(ranks[:i] > rank)
        assert equal[i] == np.sum(ranks[:i] == rank)


def _brute_jumper(p_values, jump):
    capital = np.full(3, 1 / 3)
    path = []
    for p in p_values:
        total = capital.sum()
        capital = ((1 - jump) * capital + jump * total / 3) * (
            1 + np.array([-1.0, 0.0, 1.0]) * (p - 0.5))
        path.append(capital.sum())
    return np.log10(path)


def test_jumper_equals_its_definition_and_survives_long_streams():
    rng = np.random.default_rng(1)
    p_values = rng.random(300)
    path, _, _ = jumper_path(p_values, np.full(3, 1 / 3), 0.0, 0.01)
    assert_allclose(path, _brute_jumper(p_values, 0.01), rtol=1e-12, atol=1e-12)
    # 5,000 p-values of 0: the capital passes 1e100 many times over; the
    # rescaled path keeps growing by log10(1.5) per step once the jumper has
    # moved its capital to the betting function on small p-values
    path, _, _ = jumper_path(np.zeros(5000), np.full(3, 1 / 3), 0.0, 0.01)
    assert np.isfinite(path).all() and path[-1] > 500
    steps = np.diff(path[-100:])
    assert (steps > np.log10(1.48)).all() and (steps < np.log10(1.5)).all()


def test_martingale_false_alarm_rate_is_within_its_level():
    # Ville: P(sup M >= 1/delta) <= delta for uniform independent p-values
    rng = np.random.default_rng(2)
    delta, crossed = 0.05, 0
    n_streams = 2000
    for _ in range(n_streams):
        path, _, _ = jumper_path(rng.random(500), np.full(3, 1 / 3), 0.0, 0.01)
        crossed += path.max() >= np.log10(1 / delta)
    rate = crossed / n_streams
    assert rate <= delta + 3 * np.sqrt(delta * (1 - delta) / n_streams)


# -------------------------------------------------------------- the monitor


def test_batches_do_not_change_the_answers(data):
    clf, X, _ = data
    one = DriftMonitor(clf, random_state=3).update(X[:300])
    many = DriftMonitor(clf, random_state=3)
    for start, stop in ((0, 7), (7, 150), (150, 151), (151, 300)):
        many.update(X[start:stop])
    for name in ("rescaled_similarity", "d_nearest"):
        assert_array_equal(one.p_values_[name], many.p_values_[name])
        assert_array_equal(one.log10_martingales_[name], many.log10_martingales_[name])
    assert list(many.history_.columns) == list(HISTORY_COLUMNS)
    assert many.history_["n_seen"].tolist() == [7, 150, 151, 300]
    assert_allclose(many.history_["admitted_share_stream"].iloc[-1],
                    one.history_["admitted_share"].iloc[0])


def test_exchangeable_stream_keeps_quiet_and_shift_sets_off_the_alarm(data):
    clf, X, _ = data
    monitor = DriftMonitor(clf, alarm_level=0.01, random_state=0)
    for start in range(0, 400, 100):
        monitor.update(X[start:start + 100])
    assert not monitor.alarm_ and monitor.alarm_batch_ is None
    p_values = monitor.p_values_["d_nearest"]
    assert 0.4 < p_values.mean() < 0.6
    assert monitor.history_["ks_d_nearest"].max() < 0.2
    for start in range(400, 800, 100):
        monitor.update(X[start:start + 100] * 3.0)
    assert monitor.alarm_ and monitor.alarm_batch_ == 4
    assert 400 <= monitor.alarm_sample_ < 500
    assert monitor.history_["alarm"].tolist() == [False] * 4 + [True] * 4
    assert monitor.history_["admitted_share"].iloc[4:].max() < 0.2
    # the alarm stays on, and the crossing is where the path says
    path = np.max([monitor.log10_martingales_[name]
                   for name in ("rescaled_similarity", "d_nearest")], axis=0)
    assert path[monitor.alarm_sample_] >= monitor.log10_threshold_
    assert (path[:monitor.alarm_sample_] < monitor.log10_threshold_).all()
    assert monitor.log10_threshold_ == pytest.approx(np.log10(200))


def test_reference_is_the_calibration_split(data):
    clf, _, _ = data
    monitor = DriftMonitor(clf, random_state=0)
    calibration = clf.calibration_uncertainty_
    assert monitor.reference_["admitted_share"] == calibration["admitted"].mean()
    assert_allclose(monitor.reference_["class_frequencies"].sum(), 1.0)


def test_calibration_uncertainty_matches_predict_uncertainty(data):
    clf, _, _ = data
    from sklearn.datasets import make_classification

    X, _ = make_classification(n_samples=1600, n_features=6, n_informative=4,
                               random_state=0)
    calibration = clf.calibration_uncertainty_
    frame = clf.predict_uncertainty(X[calibration["calibration_id"].to_numpy()])
    for column in ("prediction", "sdm_probability", "rescaled_similarity",
                   "d_nearest", "admitted"):
        assert_array_equal(calibration[column].to_numpy(), frame[column].to_numpy())


def test_a_pipeline_ending_in_sdm_is_monitored_through_its_last_step(data):
    clf, X, y = data
    pipe = make_pipeline(StandardScaler(), SDMClassifier(
        n_iterations=1, alpha=0.9, random_state=0)).fit(X[:400], y[:400])
    monitor = DriftMonitor(pipe, random_state=0).update(X[400:500])
    assert len(monitor.history_) == 1 and not monitor.alarm_


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_label_kind(kind):
    clf, X_test, _ = fitted_on_kind(kind, 600, 400)
    monitor = DriftMonitor(clf, random_state=0).update(X_test)
    assert_allclose(monitor.reference_["class_frequencies"].sum(), 1.0)
    assert 0 <= monitor.history_["class_shift"].iloc[0] <= 1


def test_failed_update_changes_nothing(data):
    clf, X, _ = data
    monitor = DriftMonitor(clf, random_state=0).update(X[:50])
    before = monitor.log10_martingales_["d_nearest"].copy()
    for bad in (X[:0], X[:5, :2]):
        with pytest.raises(ValueError):
            monitor.update(bad)
    assert_array_equal(monitor.log10_martingales_["d_nearest"], before)
    assert monitor.history_["n_samples"].tolist() == [50]
    # the next batch gets the draws it would have had without the failures
    monitor.update(X[50:100])
    reference = DriftMonitor(clf, random_state=0).update(X[:100])
    assert_array_equal(monitor.p_values_["d_nearest"], reference.p_values_["d_nearest"])


def test_bad_calls(data):
    clf, _, _ = data
    with pytest.raises(TypeError, match="DriftMonitor needs an SDMClassifier"):
        DriftMonitor(LogisticRegression())
    with pytest.raises(NotFittedError):
        DriftMonitor(SDMClassifier())
    for level in (0, 1, 1.5, True):
        with pytest.raises(InvalidParameterError, match="alarm_level"):
            DriftMonitor(clf, alarm_level=level)
    with pytest.raises(InvalidParameterError, match="jump"):
        DriftMonitor(clf, jump=0)
    with pytest.raises(ValueError, match="features"):
        DriftMonitor(clf).update(np.zeros((3, 2)))


def test_display(data):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdm_sklearn.plotting import DriftDisplay

    clf, X, _ = data
    monitor = DriftMonitor(clf, random_state=0)
    with pytest.raises(ValueError, match="at least one batch"):
        DriftDisplay.from_monitor(monitor)
    monitor.update(X[:200]).update(X[200:400] * 3.0)
    display = DriftDisplay.from_monitor(monitor)
    assert display.alarm_line_ is not None
    assert_array_equal(display.lines_["d_nearest"].get_ydata(),
                       monitor.log10_martingales_["d_nearest"])
    assert display.threshold_line_.get_ydata()[0] == monitor.log10_threshold_
    assert len(display.lines_["admitted_share"].get_xdata()) == 2
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="exactly 3 axes"):
        display.plot(ax=axes)
    plt.close("all")


@pytest.mark.slow
def test_a_frozen_model_that_saw_the_calibration_rows_sets_off_the_alarm():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.frozen import FrozenEstimator

    X, y = make_classification(4000, n_features=10, flip_y=0.05, random_state=0)
    X_fit, y_fit, X_new = X[:2000], y[:2000], X[2000:]
    forest = RandomForestClassifier(50, random_state=0)
    alarms = {}
    for name, base in (("frozen", FrozenEstimator(forest.fit(X_fit, y_fit))),
                       ("cross-fitted", RandomForestClassifier(50, random_state=0))):
        clf = SDMClassifier(base, alpha=0.9, random_state=0).fit(X_fit, y_fit)
        monitor = DriftMonitor(clf, alarm_level=0.01, random_state=0)
        for start in range(0, 1000, 100):
            monitor.update(X_new[start:start + 100])
        alarms[name] = monitor.alarm_
    assert alarms == {"frozen": True, "cross-fitted": False}


@pytest.mark.parametrize("change", ["recalibrate", "add_support", "fit"])
def test_a_changed_estimator_is_refused(data, change):
    import copy

    clf, X, y = data
    clf = copy.deepcopy(clf)
    monitor = DriftMonitor(clf, random_state=0).update(X[:50])
    if change == "recalibrate":
        clf.recalibrate(0.85)
    elif change == "add_support":
        clf.add_support(X[50:60], y[50:60])
    else:
        clf.fit(X[:400], y[:400])
    with pytest.raises(ValueError, match="has changed since this DriftMonitor"):
        monitor.update(X[60:100])
    assert monitor.history_["n_samples"].tolist() == [50]


def test_update_uncertainty_is_update_without_a_second_prediction(data):
    clf, X, _ = data
    direct = DriftMonitor(clf, random_state=5).update(X[:120])
    given = DriftMonitor(clf, random_state=5).update_uncertainty(
        clf.predict_uncertainty(X[:120]))
    for name in ("rescaled_similarity", "d_nearest"):
        assert_array_equal(direct.p_values_[name], given.p_values_[name])
    assert direct.history_.equals(given.history_)
    with pytest.raises(ValueError, match="at least one row"):
        given.update_uncertainty(clf.predict_uncertainty(X[:5]).iloc[:0])
