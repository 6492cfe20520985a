"""Tests at the model boundary: SDMModel, the only door for predictions.

What training computed at the best epoch is what the fitted model keeps
(nothing is searched again), models are immutable (updates return new
models), and inputs stream through in chunks without changing any output.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_blobs

import sdm_sklearn._model as model_module
from sdm_sklearn import SDMClassifier
from sdm_sklearn._evaluation import evaluate_calibration, index_support
from sdm_sklearn._model import UNCERTAINTY_COLUMNS, SDMModel


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=500, centers=3, n_features=6, cluster_std=2.5,
                      random_state=3)
    return X[:400], y[:400], X[400:]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SDMClassifier(n_iterations=2, n_epochs=6, alpha=0.9,
                             random_state=0).fit(X, y)


def test_the_kept_calibration_state_is_the_best_epochs(data, fitted):
    X, y, _ = data
    model = fitted._model
    assert isinstance(model, SDMModel)
    # Searching the calibration split again, at the kept adaptor, gives back
    # exactly the record training made at the best epoch.
    calibration_rows = np.flatnonzero(np.isin(np.arange(len(y)),
                                              fitted.calibration_ids_))
    support_rows = np.flatnonzero(np.isin(np.arange(len(y)), fitted.support_ids_))
    adaptor = model.adaptor
    index, _, _ = index_support(
        adaptor, adaptor.standardize(X[support_rows]),
        np.searchsorted(fitted.classes_, y[support_rows]),
        type(model.index.support),
    )
    state, values = evaluate_calibration(
        index, adaptor, adaptor.standardize(X[calibration_rows]),
        np.searchsorted(fitted.classes_, y[calibration_rows]),
        model.max_similarity, 1,
    )
    record = model.calibration
    assert_array_equal(state.predictions, record.predictions)
    for kept, again in zip(model.distance_values, values, strict=True):
        assert_array_equal(kept, again)
    # And predicting the calibration rows gives their recorded q' and SDM.
    frame = fitted.predict_uncertainty(X[calibration_rows])
    assert_array_equal(frame["rescaled_similarity"], record.rescaled_similarity)
    rows = np.arange(len(record.labels))
    assert_array_equal(frame["sdm_probability"],
                       record.probabilities[rows, record.predictions])


def test_the_selected_epoch_has_the_lowest_loss(fitted):
    losses = fitted.calibration_loss_
    assert losses[fitted.best_iteration_, fitted.best_epoch_] == losses.min()


def test_updates_return_new_models(data, fitted):
    X, y, X_test = data
    model = fitted._model
    before = model.uncertainty(X_test)
    updated = model.with_support(X_test[:10], np.zeros(10, dtype=int),
                                 np.arange(10) + 10_000)
    assert updated is not model
    assert model.index.support.n_support == len(fitted.support_ids_)
    assert updated.index.support.n_support == model.index.support.n_support + 10
    after_old = model.uncertainty(X_test)
    for name in UNCERTAINTY_COLUMNS:
        assert_array_equal(before[name], after_old[name])
    recalibrated = model.recalibrated(0.8, None)
    assert recalibrated.alpha == 0.8 and model.alpha == 0.9


def test_chunks_do_not_change_any_output(data, fitted, monkeypatch):
    _, _, X_test = data
    model = fitted._model
    whole = model.uncertainty(X_test, alpha_levels=(0.8,))
    whole_explain = model.explain(X_test, 4)
    whole_partition = model.calibration_partition(X_test)
    monkeypatch.setattr(model_module, "CHUNK_ROWS", 7)
    chunked = model.uncertainty(X_test, alpha_levels=(0.8,))
    for name in whole:
        assert_array_equal(whole[name], chunked[name])
    for name, values in model.explain(X_test, 4).items():
        assert_array_equal(whole_explain[name], values)
    for name, values in model.calibration_partition(X_test).items():
        assert_array_equal(whole_partition[name], values)
    assert_array_equal(model.predict(X_test), fitted.predict(X_test))


def test_calibration_partition_matches_a_direct_reading(data, fitted):
    _, _, X_test = data
    model = fitted._model
    columns = model.calibration_partition(X_test[:20])
    frame = fitted.predict_uncertainty(X_test[:20])
    record = model.calibration
    for i in range(20):
        mine = columns["calibration_id"][columns["input"] == i]
        same = (record.predictions == np.searchsorted(
            fitted.classes_, frame["prediction"].iloc[i])) & (
            np.floor(record.rescaled_similarity)
            == np.floor(frame["rescaled_similarity"].iloc[i]))
        assert_array_equal(mine, record.ids[same])


def test_region_counts_and_small_classes(fitted):
    model = fitted._model
    counts = model.region_class_counts()
    assert counts.sum() == np.sum(
        model.calibration.rescaled_similarity >= model.min_rescaled_similarity
    )
    small = model.small_region_classes()
    assert all(counts[np.searchsorted(model.classes, label)] == count
               for label, count in small.items())


def test_prediction_memory_beyond_the_output_does_not_grow():
    import tracemalloc

    # wide inputs: unchunked, their float64 and float32 copies would dwarf
    # the output
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 256))
    y = np.repeat([0, 1], 200)
    X[y == 1] += 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SDMClassifier(n_iterations=1, n_epochs=2, random_state=0).fit(X, y)
    extra = {}
    for n_rows in (20_000, 80_000):
        queries = X[rng.integers(0, len(X), n_rows)]
        tracemalloc.start()
        columns = clf._model.uncertainty(queries)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        output = sum(values.nbytes for values in columns.values())
        extra[n_rows] = peak - 2 * output  # the chunks' parts and their join
        del columns
    # what is not output stays the same for four times the rows (unchunked,
    # the 60,000 extra rows of 256 float64 values alone are 123 MB)
    assert extra[80_000] < extra[20_000] + 16 * 2**20
