"""Interpretability by exemplar, updatability, ensembles and alpha levels."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from sdm_sklearn import SDMClassifier


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    centers = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    y = np.repeat([0, 1, 2], 120)
    X = centers[y] + rng.normal(size=(360, 2))
    X_test = centers[np.repeat([0, 1, 2], 20)] + rng.normal(size=(60, 2))
    return X, y, X_test


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    ids = np.array([f"doc-{i}" for i in range(len(y))])
    return SDMClassifier(n_iterations=1, n_epochs=10, random_state=0).fit(
        X, y, ids=ids
    )


def brute_force_neighbors(clf, X, k):
    exemplars = clf.exemplars(X).astype(np.float64)
    support = clf.support_exemplars_.astype(np.float64)
    distances = np.sqrt(((exemplars[:, None, :] - support[None]) ** 2).sum(-1))
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distances, order, axis=1)


def test_ids_follow_the_split(data, fitted):
    X, y, _ = data
    assert len(fitted.support_ids_) + len(fitted.calibration_ids_) == len(y)
    assert not set(fitted.support_ids_) & set(fitted.calibration_ids_)
    rows = np.array([int(i.split("-")[1]) for i in fitted.support_ids_])
    assert_array_equal(y[rows], fitted.support_labels_)


def test_default_ids_are_dataframe_index_or_positions(data):
    X, y, _ = data
    frame = pd.DataFrame(X, index=np.arange(len(y)) + 1000, columns=["a", "b"])
    clf = SDMClassifier(n_iterations=1, n_epochs=2, random_state=0).fit(frame, y)
    assert clf.support_ids_.min() >= 1000
    clf = SDMClassifier(n_iterations=1, n_epochs=2, random_state=0).fit(X, y)
    assert set(clf.support_ids_) | set(clf.calibration_ids_) == set(range(len(y)))


def test_explain_lists_nearest_support_points(data, fitted):
    _, _, X_test = data
    frame = fitted.explain(X_test[:4], n_neighbors=3)
    assert list(frame.columns) == [
        "input", "rank", "support_index", "support_id", "distance", "label",
        "prediction", "is_good",
    ]
    assert len(frame) == 12
    indices, distances = brute_force_neighbors(fitted, X_test[:4], 3)
    assert_array_equal(frame["support_index"].to_numpy().reshape(4, 3), indices)
    np.testing.assert_allclose(frame["distance"].to_numpy().reshape(4, 3),
                               distances, rtol=1e-4, atol=1e-5)
    support = frame["support_index"].to_numpy()
    assert_array_equal(frame["support_id"], fitted.support_ids_[support])
    assert_array_equal(frame["label"], fitted.support_labels_[support])
    predictions = np.repeat(fitted.predict(X_test[:4]), 3)
    expected_good = (fitted.support_labels_[support] == fitted.support_predictions_[
        support]) & (fitted.support_predictions_[support] == predictions)
    assert_array_equal(frame["is_good"], expected_good)
    # the nearest support point is the one predict_uncertainty names
    nearest = fitted.predict_uncertainty(X_test[:4])["nearest_support_index"]
    assert_array_equal(frame.loc[frame["rank"] == 1, "support_index"], nearest)


def test_explain_validates_n_neighbors(fitted, data):
    with pytest.raises(ValueError, match="n_neighbors"):
        fitted.explain(data[2][:2], n_neighbors=0)


def test_calibration_partition_shares_class_and_level(data, fitted):
    _, _, X_test = data
    frame = fitted.calibration_partition(X_test[:10])
    details = fitted.predict_uncertainty(X_test[:10])
    assert not frame.empty
    for position, rows in frame.groupby("input"):
        row = details.iloc[position]
        assert (rows["prediction"] == row["prediction"]).all()
        assert (np.floor(rows["rescaled_similarity"])
                == np.floor(row["rescaled_similarity"])).all()
        assert set(rows["calibration_id"]) <= set(fitted.calibration_ids_)
    assert (frame["correct"] == (frame["label"] == frame["prediction"])).all()


def test_add_support_changes_q_not_predictions(data):
    X, y, X_test = data
    clf = SDMClassifier(n_iterations=1, n_epochs=10, random_state=0).fit(X, y)
    before = clf.predict_uncertainty(X_test)
    n_support = len(clf.support_labels_)
    # exact copies of the test points labeled with an unknown class
    clf.add_support(X_test, np.full(len(X_test), "unknown", dtype=object))
    after = clf.predict_uncertainty(X_test)
    assert_array_equal(after["prediction"], before["prediction"])
    assert len(clf.support_labels_) == n_support + len(X_test)
    assert clf.support_labels_[-1] == "unknown"
    assert clf.support_exemplars_.shape[0] == n_support + len(X_test)
    # each test point now finds its bad copy at distance 0: q drops to 0
    assert_array_equal(after["q"], 0)
    np.testing.assert_allclose(after["d_nearest"], 0.0, atol=1e-6)
    assert not after["admitted"].any()


def test_add_support_with_known_labels_raises_q(data):
    X, y, X_test = data
    clf = SDMClassifier(n_iterations=1, n_epochs=10, random_state=0).fit(X, y)
    before = clf.predict_uncertainty(X_test)
    predictions = clf.predict(X_test)
    clf.add_support(X_test, predictions, ids=np.arange(len(X_test)) + 10_000)
    after = clf.predict_uncertainty(X_test)
    assert (after["q"] >= before["q"]).all()
    assert (after["q"] > before["q"]).any()
    assert clf.support_ids_[-1] == 10_000 + len(X_test) - 1


def test_ensemble_admits_only_when_all_members_agree(data):
    X, y, X_test = data
    clf = SDMClassifier(n_iterations=3, n_epochs=8, ensemble=True,
                        random_state=0).fit(X, y)
    frame = clf.predict_uncertainty(X_test)
    assert "admitted_ensemble" in frame.columns
    assert len(clf._model.members) == 2
    assert not (frame["admitted_ensemble"] & ~frame["admitted_lower"]).any()
    members = [model.uncertainty(X_test)
               for model in (clf._model, *clf._model.members)]
    expected = np.logical_and.reduce(
        [m["admitted_lower"] & (m["prediction"] == members[0]["prediction"])
         for m in members]
    )
    assert_array_equal(frame["admitted_ensemble"], expected)


@pytest.mark.parametrize("confidence", [None, 0.9])
def test_alpha_levels_form_a_nested_ladder(data, confidence):
    X, y, X_test = data
    ladder = (0.99, 0.9, 0.8, 0.7)
    clf = SDMClassifier(n_iterations=1, n_epochs=10, alpha=0.9,
                        alpha_levels=list(ladder), confidence=confidence,
                        random_state=0).fit(X, y)
    frame = clf.predict_uncertainty(X_test)
    levels = frame["assigned_alpha"].to_numpy()
    assert set(np.unique(levels)) <= {0.0, *ladder}
    # the selective answer at alpha is "assigned at least alpha"
    assert_array_equal(frame["admitted"], levels >= 0.9)
    # the top level is the region of that level alone
    top = SDMClassifier(n_iterations=1, n_epochs=10, alpha=0.99,
                        confidence=confidence, random_state=0).fit(X, y)
    assert_array_equal(top.predict_uncertainty(X_test)["admitted"], levels >= 0.99)
    # recalibrating to each level of the same ladder admits exactly the
    # points assigned at least that level, and the admitted sets are nested
    admitted = {}
    for level in ladder:
        clf.recalibrate(level)
        admitted[level] = clf.predict_uncertainty(X_test)["admitted"].to_numpy()
        assert_array_equal(admitted[level], levels >= level)
    for higher, lower in zip(ladder, ladder[1:], strict=False):
        assert not np.any(admitted[higher] & ~admitted[lower])
    assert admitted[0.7].any()


def test_alpha_levels_are_validated(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="alpha_levels"):
        SDMClassifier(alpha_levels=[0.4]).fit(X, y)
