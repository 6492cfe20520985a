"""Regression tests for answers that were wrong without any error.

Each test here failed before its fix: a rejection that read like a class,
an off-by-one quantile at exact multiples, a row whose answer depended on
the other rows of the call, parameters changed after fit, identifiers cast
to strings, the BLAS thread setting left changed, updates racing readers,
memory that grew with the neighbours asked for, and internal errors where a
clear one was due.
"""

import threading
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from scipy.special import softmax
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_info, threadpool_limits

from sdm_sklearn import SDMClassifier
from sdm_sklearn._calibration import (
    class_probability_thresholds,
    high_reliability_region,
    minimum_region_count,
    quantile_index,
)
from sdm_sklearn._labels import resolve_rejection_label, selective_labels

FAST = dict(n_exemplar_dims=8, n_iterations=1, n_epochs=8, learning_rate=3e-2,
            alpha=0.9, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=3, n_features=5, cluster_std=2.0,
                      random_state=0)
    return X[:450], y[:450], X[450:]


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SDMClassifier(**{**FAST, **params}).fit(X, y)


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y, _ = blobs
    return _fit(X, y)


# ------------------------------------------------------- rejection markers

CLASS_SETS = {
    "int64": np.array([0, 1, 2]),
    "int8": np.array([-1, 0, 1], dtype=np.int8),
    "int8_edge": np.array([-128, -1, 5], dtype=np.int8),
    "uint8": np.array([0, 1, 255], dtype=np.uint8),
    "float": np.array([0.0, 0.5, 1.0]),
    "bool": np.array([False, True]),
    "str_digits": np.array(["0", "1", "2"]),
    "str": np.array(["cat", "dog"]),
    "object": np.array(["a", "b"], dtype=object),
}
MARKERS = [None, 0, -1, "0", "-1", "rejected", 127, -129, 1.5, True, np.int8(-1)]


@pytest.mark.parametrize("classes", CLASS_SETS.values(), ids=CLASS_SETS.keys())
@pytest.mark.parametrize("marker", MARKERS, ids=repr)
def test_rejections_never_read_like_a_class(classes, marker):
    try:
        resolved = resolve_rejection_label(marker, classes)
    except ValueError as error:
        # refused only when it equals a class
        assert "one of the classes" in str(error)
        assert np.any(classes == np.asarray(marker, dtype=object))
        return
    rng = np.random.default_rng(0)
    predictions = classes[rng.integers(0, len(classes), 40)]
    admitted = rng.random(40) < 0.5
    out = selective_labels(predictions, admitted, resolved, classes)
    is_marker = np.array([value == resolved and type(value) is not bool
                          or value is resolved for value in out.tolist()])
    if out.dtype != object:
        is_marker = out == resolved
    assert_array_equal(is_marker, ~admitted)
    # admitted rows hold their prediction, equal in value and kind
    assert_array_equal(out[admitted].astype(classes.dtype), predictions[admitted])
    assert not np.any(np.isin(out[~admitted].astype(object),
                              classes.astype(object)))
    for value in out[admitted].tolist():
        assert value in classes.tolist()


def test_string_classes_with_numeric_marker_end_to_end(blobs):
    X, y, X_test = blobs
    labels = np.array(["0", "1", "2"])[y]
    clf = _fit(X, labels, rejection_label=0)
    out = clf.predict_selective(X_test)
    admitted = clf.predict_uncertainty(X_test)["admitted"].to_numpy()
    assert out.dtype == object
    assert_array_equal(np.array([v == 0 and isinstance(v, int) for v in out]),
                       ~admitted)
    assert (~admitted).any() and admitted.any()


def test_int8_classes_keep_the_default_marker_out_of_range():
    classes = np.array([-1, 0, 1], dtype=np.int8)
    marker = resolve_rejection_label(None, classes)
    assert marker == -2
    classes = np.array([-128, -1], dtype=np.int8)
    marker = resolve_rejection_label(None, classes)
    assert marker == -129
    out = selective_labels(classes, np.array([True, False]), marker, classes)
    assert out.tolist() == [-128, -129]


@pytest.mark.parametrize("marker", [[1, 2], (1,), {"a": 1}, np.array([1, 2]),
                                    float("nan"), object()])
def test_marker_must_be_a_single_value(blobs, marker):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="rejection_label"):
        _fit(X, y, rejection_label=marker)


# ---------------------------------------------------------- exact quantiles


@pytest.mark.parametrize("n, alpha, expected", [
    (10, 0.9, 1), (20, 0.9, 2), (30, 0.9, 3), (100, 0.9, 10),
    (5, 0.8, 1), (10, 0.8, 2), (15, 0.8, 3), (20, 0.95, 1), (100, 0.99, 1),
    (9, 0.9, 0), (1, 0.9, 0), (7, 1.0, 0),
])
def test_quantile_index_is_exact_at_multiples(n, alpha, expected):
    assert quantile_index(n, alpha) == expected
    assert_array_equal(quantile_index(np.array([n, n]), alpha), [expected] * 2)


@pytest.mark.parametrize("n, alpha", [(10, 0.9), (20, 0.9), (5, 0.8), (10, 0.8)])
def test_region_allows_exactly_one_in_ten_below(n, alpha):
    # n points of one class (and n of another, all right); a fraction
    # 1 - alpha of the first class lies below alpha: the region must exist.
    n_low = round((1 - alpha) * n)
    probabilities = np.full((2 * n, 2), 0.0)
    probabilities[:n, 0] = 0.97
    probabilities[:n_low, 0] = 0.6
    probabilities[n:, 1] = 0.97
    y = np.repeat([0, 1], n)
    q_prime = np.full(2 * n, 3.0)
    q_min, psi = high_reliability_region(q_prime, probabilities, y, alpha)
    assert q_min == 3.0
    assert psi[0] == 0.97 and psi[1] == 0.97
    psi_direct = class_probability_thresholds(probabilities, y,
                                              np.ones(2 * n, bool), alpha)
    assert_array_equal(psi, psi_direct)
    # one more point below alpha and the region is gone
    probabilities[n_low, 0] = 0.6
    assert high_reliability_region(q_prime, probabilities, y, alpha)[0] == np.inf


def test_minimum_region_count_is_exact():
    assert minimum_region_count(0.9) == 10
    assert minimum_region_count(0.95) == 20
    assert minimum_region_count(0.8) == 5
    assert minimum_region_count(0.99) == 100
    assert minimum_region_count(1.0) == 0


# --------------------------------------------------------- batch invariance


def _every_output(clf, X):
    frame = clf.predict_uncertainty(X)
    return {
        # str: the shortest repr of each float, exact, and NaN equal to NaN
        "uncertainty": frame.to_numpy().astype(str),
        "proba": clf.predict_proba(X),
        "decision": clf.decision_function(X),
        "selective": clf.predict_selective(X),
        "predict": clf.predict(X),
        "exemplars": clf.exemplars(X),
        "explain": clf.explain(X, n_neighbors=3).drop(columns="input").to_numpy(),
    }


@pytest.mark.parametrize("producer", [None, "pca"])
def test_a_rows_answer_never_depends_on_its_batch(blobs, producer):
    X, y, X_test = blobs
    estimator = PCA(n_components=4) if producer else None
    clf = _fit(X, y, estimator=estimator)
    rows = np.concatenate([X[:150], X_test])  # calibration rows among them
    whole = _every_output(clf, rows)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(rows))
    for sizes in ([1] * 12, [3, 7, 33, 65], [257]):
        start = 0
        for size in sizes:
            part = order[start:start + size]
            start += size
            got = _every_output(clf, rows[part])
            for name, values in got.items():
                expected = whole[name]
                if name == "explain":
                    k = 3
                    expected = expected.reshape(len(rows), k, -1)[part].reshape(
                        len(part) * k, -1)
                else:
                    expected = expected[part]
                assert_array_equal(values, expected, err_msg=name)


def test_n_jobs_gives_identical_models_and_outputs(blobs):
    X, y, X_test = blobs
    one = _fit(X, y, n_jobs=1)
    two = _fit(X, y, n_jobs=2)
    assert_array_equal(one.calibration_loss_, two.calibration_loss_)
    for name, values in _every_output(one, X_test).items():
        assert_array_equal(values, _every_output(two, X_test)[name], err_msg=name)
    one.set_params(n_jobs=-1)
    assert_array_equal(one.predict_uncertainty(X_test).to_numpy().astype(str),
                       two.predict_uncertainty(X_test).to_numpy().astype(str))


# ---------------------------------------------------- parameters after fit


@pytest.mark.parametrize("name, value", [
    ("alpha", 0.8), ("ensemble", True), ("rejection_label", -7),
])
def test_fitted_parameters_changed_after_fit_raise(blobs, name, value):
    X, y, X_test = blobs
    clf = _fit(X, y)
    clf.set_params(**{name: value})
    for method in ("predict", "predict_proba", "decision_function",
                   "predict_selective", "predict_uncertainty", "exemplars"):
        with pytest.raises(ValueError, match=f"{name} was changed"):
            getattr(clf, method)(X_test)
    with pytest.raises(ValueError, match=f"{name} was changed"):
        clf.explain(X_test)
    clf.set_params(**{name: FAST.get(name, SDMClassifier().get_params()[name])})
    clf.predict_selective(X_test)


def test_predict_time_parameters_take_effect(blobs):
    X, y, X_test = blobs
    clf = _fit(X, y)
    frame = clf.predict_uncertainty(X_test)
    clf.set_params(conservative=True)
    out = clf.predict_selective(X_test)
    assert_array_equal(out != clf.rejection_label_, frame["admitted_lower"])
    clf.set_params(alpha_levels=[0.8, 0.95])
    levels = clf.predict_uncertainty(X_test)["assigned_alpha"]
    fresh = _fit(X, y, conservative=True, alpha_levels=[0.8, 0.95])
    assert_array_equal(levels, fresh.predict_uncertainty(X_test)["assigned_alpha"])


def test_recalibrate_equals_fitting_at_that_alpha(blobs):
    X, y, X_test = blobs
    direct = _fit(X, y, alpha=0.8, alpha_levels=[0.95])
    other = _fit(X, y, alpha=0.95, alpha_levels=[0.95])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert other.recalibrate(0.8) is other
    assert other.get_params() == direct.get_params()
    for name in ("min_rescaled_similarity_", "class_thresholds_",
                 "region_class_counts_", "calibration_loss_"):
        assert_array_equal(getattr(other, name), getattr(direct, name))
    for name, values in _every_output(direct, X_test).items():
        assert_array_equal(values, _every_output(other, X_test)[name], err_msg=name)
    with pytest.raises(ValueError, match="alpha"):
        other.recalibrate(0.5)
    with pytest.raises(NotFittedError):
        SDMClassifier().recalibrate(0.9)


# ------------------------------------------------------------ identifiers


def test_mixed_ids_keep_their_values(blobs):
    X, y, _ = blobs
    ids = list(range(len(y) - 1)) + ["x"]
    clf = SDMClassifier(**FAST).fit(X, y, ids=ids)
    kept = np.concatenate([clf.support_ids_, clf.calibration_ids_])
    assert kept.dtype == object
    assert sorted(map(str, kept)) == sorted(map(str, ids))
    assert {type(v) for v in kept} == {int, str}


def test_default_ids_of_added_points_are_new(blobs):
    X, y, X_test = blobs
    clf = _fit(X, y)
    clf.add_support(X_test[:5], np.zeros(5, dtype=int))
    clf.add_support(X_test[5:8], np.zeros(3, dtype=int))
    ids = np.concatenate([clf.support_ids_, clf.calibration_ids_])
    assert len(np.unique(ids)) == len(ids)
    assert_array_equal(clf.support_ids_[-8:], np.arange(len(y), len(y) + 8))


@pytest.mark.parametrize("ids", [np.zeros((450, 2)), [(1, 2)] * 450,
                                 [[1], [2, 3]] + [[4]] * 448])
def test_ids_must_be_scalars(blobs, ids):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="ids must be a 1-D sequence"):
        SDMClassifier(**FAST).fit(X, y, ids=ids)


# ------------------------------------------------------------------ threads


def _blas_threads():
    return [info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"]


def test_concurrent_predictions_restore_the_users_blas_setting(blobs, fitted):
    _, _, X_test = blobs
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(
                lambda _: fitted.predict_uncertainty(X_test).to_numpy(), range(16)
            ))
        assert _blas_threads() == before
    for result in results[1:]:
        assert_array_equal(result.astype(str), results[0].astype(str))


def test_every_method_runs_with_one_blas_thread(blobs, monkeypatch):
    X, y, X_test = blobs
    clf = _fit(X, y, ensemble=True, n_iterations=2)
    seen = []
    from sdm_sklearn import _adaptor

    original = _adaptor.ExemplarAdaptor.logits

    def recording(self, standardized):
        seen.append(_blas_threads())
        return original(self, standardized)

    monkeypatch.setattr(_adaptor.ExemplarAdaptor, "logits", recording)
    with threadpool_limits(limits=2, user_api="blas"):
        for call in (
            lambda: clf.predict(X_test), lambda: clf.predict_proba(X_test),
            lambda: clf.decision_function(X_test),
            lambda: clf.predict_uncertainty(X_test),
            lambda: clf.predict_selective(X_test),
            lambda: clf.explain(X_test[:3]),
            lambda: clf.calibration_partition(X_test[:3]),
            lambda: clf.add_support(X_test[:3], [0, 1, 2]),
        ):
            seen.clear()
            call()
            assert seen and all(threads == [1] * len(threads) for threads in seen)
            assert all(t == 2 for t in _blas_threads())


def test_add_support_is_atomic_for_readers(blobs):
    X, y, X_test = blobs
    clf = _fit(X, y)
    before = clf.predict_uncertainty(X_test).to_numpy().astype(str)
    stop = threading.Event()
    errors, results = [], []

    def read():
        while not stop.is_set():
            try:
                results.append(clf.predict_uncertainty(X_test).to_numpy().astype(str))
                clf.explain(X_test[:5], n_neighbors=3)
            except Exception as error:  # noqa: BLE001 - any error is a failure
                errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for start in range(0, 60, 6):
        clf.add_support(X_test[start:start + 6], y[start:start + 6])
    stop.set()
    for reader in readers:
        reader.join()
    assert errors == []
    assert len(clf.support_labels_) == len(clf.support_ids_)
    # every answer a reader saw is that of some support set of the sequence
    states = [before]
    replay = _fit(X, y)
    for start in range(0, 60, 6):
        replay.add_support(X_test[start:start + 6], y[start:start + 6])
        states.append(replay.predict_uncertainty(X_test).to_numpy().astype(str))
    for result in results:
        assert any(np.array_equal(result, state) for state in states)


# ------------------------------------------------------------------- memory


def test_explain_memory_is_bounded_by_its_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 128))
    y = rng.integers(0, 2, 4000)
    clf = _fit(X, y, n_exemplar_dims=128, n_epochs=2)
    n_support = len(clf.support_ids_)
    queries = X[:500]
    tracemalloc.start()
    frame = clf.explain(queries, n_neighbors=n_support)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    output = frame.memory_usage(deep=False).sum()
    assert len(frame) == 500 * n_support
    # the output itself, its pieces while the frame is built, and bounded
    # working memory (about 2 GB before the fix)
    assert peak < 3 * output + 200 * 2**20


# ------------------------------------------------------------- clear errors


def test_clear_errors_instead_of_internal_ones(blobs, fitted):
    X, y, X_test = blobs
    with pytest.raises(ValueError, match="n_neighbors must be a positive integer"):
        fitted.explain(X_test, n_neighbors=True)
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.add_support(X_test[0], [0])
    with pytest.raises(ValueError, match="ids must be a 1-D sequence"):
        fitted.add_support(X_test[:2], [0, 1], ids=[(1, 2), (3, 4)])
    with pytest.raises(ValueError, match="missing labels"):
        fitted.add_support(X_test[:2], [0.0, np.nan])
    with pytest.raises(ValueError, match="alpha_levels must be a sequence of numbers"):
        SDMClassifier(alpha_levels=["a"]).fit(X, y)
    with pytest.raises(ValueError, match="Training diverged.*learning_rate"):
        SDMClassifier(learning_rate=1e30, n_iterations=1, n_epochs=3,
                      random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="max_similarity"):
        SDMClassifier(max_similarity=2**63).fit(X, y)


def test_calibration_partition_before_fit_is_not_fitted(blobs):
    with pytest.raises(NotFittedError):
        SDMClassifier().calibration_partition(blobs[2])


# ----------------------------------------------------- defects of issue 8


def test_refit_with_producer_clears_stale_feature_names(blobs):
    X, y, _ = blobs
    frame = pd.DataFrame(X, columns=list("abcde"))
    clf = _fit(frame, y)
    assert list(clf.feature_names_in_) == list("abcde")
    clf.set_params(estimator=PCA(n_components=3)).fit(X[:, :3], y)
    assert clf.n_features_in_ == 3
    assert not hasattr(clf, "feature_names_in_")


def test_producers_on_sparse_and_nan_input_work(blobs):
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD
    from sklearn.impute import SimpleImputer

    X, y, X_test = blobs
    clf = _fit(csr_matrix(np.abs(X)), y, estimator=TruncatedSVD(3, random_state=0))
    assert clf.predict(csr_matrix(np.abs(X_test))).shape == (len(X_test),)
    holes = X.copy()
    holes[::7, 1] = np.nan
    clf = _fit(holes, y, estimator=SimpleImputer())
    assert clf.predict_selective(holes).shape == (len(y),)


def test_decision_function_is_the_sdm_score_at_zero_distance(blobs, fitted):
    _, _, X_test = blobs
    far = np.vstack([X_test + 1e3, X_test[:5]])
    frame = fitted.predict_uncertainty(far)
    assert (frame["d"].to_numpy()[:-5] == 0).all()
    scores = fitted.decision_function(far)
    exact = (np.log(2 + frame["q"].to_numpy()) * frame["d"].to_numpy())[:, None] * (
        fitted._model.adaptor.logits(
            fitted._model.adaptor.standardize(far)
        )
    )
    np.testing.assert_allclose(scores, exact, rtol=0, atol=1e-6)
    np.testing.assert_allclose(softmax(scores, axis=1), fitted.predict_proba(far),
                               rtol=1e-12, atol=1e-15)
    assert_array_equal(fitted.predict_proba(far).argmax(axis=1),
                       np.searchsorted(fitted.classes_, fitted.predict(far)))


def test_inputs_are_never_modified(blobs):
    X, y, X_test = blobs
    X_before, X_test_before = X.copy(), X_test.copy()
    clf = _fit(X, y, estimator=PCA(n_components=3))
    clf = _fit(X, y)
    clf.predict_uncertainty(X_test)
    clf.add_support(X_test[:5], y[:5])
    clf.explain(X_test[:3])
    assert_array_equal(X, X_before)
    assert_array_equal(X_test, X_test_before)
