"""Tests of SDMClassifier: the predict family, selection, feature producers."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.datasets import make_blobs, make_classification
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from test_similarity import brute_force_search

from sdm_sklearn import (
    NoHighReliabilityRegionWarning,
    SDMClassifier,
    SmallRegionWarning,
)
from sdm_sklearn._features import PADDED_ROWS
from sdm_sklearn._model import UNCERTAINTY_COLUMNS
from sdm_sklearn._training import resolve_epochs

# Small settings that still learn the blobs below and find a region.
FAST = dict(n_exemplar_dims=8, n_iterations=1, n_epochs=10, learning_rate=3e-2,
            alpha=0.9, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=390, centers=3, n_features=4, cluster_std=2.0,
                      random_state=0)
    # Far-away inputs: beyond every calibration distance, so d = 0.
    X_test = np.vstack([X[300:], 30.0 * X[300:320]])
    return X[:300], y[:300], X_test


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y, _ = blobs
    return SDMClassifier(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3,
                               random_state=0)
    with warnings.catch_warnings():
        # Whether a region exists does not matter here.
        warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
        clf = SDMClassifier(**FAST).fit(X[:150], y[:150])
    return clf, np.vstack([X[150:], 30.0 * X[150:160]])


def test_fitted_model_learns_and_has_a_region(blobs, fitted):
    X, y, _ = blobs
    # The settings of these tests are meant to give a working model.
    assert np.mean(fitted.predict(X) == y) > 0.9
    assert np.isfinite(fitted.min_rescaled_similarity_)
    assert np.all(fitted.class_thresholds_ >= FAST["alpha"])


def test_predict_is_argmax_of_proba_and_decision_multiclass(blobs, fitted):
    X_test = blobs[2]
    y_pred = fitted.predict(X_test)
    proba = fitted.predict_proba(X_test)
    decision = fitted.decision_function(X_test)
    assert proba.shape == decision.shape == (len(X_test), 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(y_pred, fitted.classes_[proba.argmax(axis=1)])
    assert_array_equal(y_pred, fitted.classes_[decision.argmax(axis=1)])
    assert_allclose(softmax(decision, axis=1), proba, rtol=1e-12)
    # The far-away rows have d = 0: uniform to within 1e-12.
    d = fitted.predict_uncertainty(X_test)["d"].to_numpy()
    assert np.all(d[-20:] == 0)
    assert_allclose(proba[d == 0], 1.0 / 3.0, rtol=0, atol=1e-12)


def test_predict_is_argmax_of_proba_and_decision_binary(binary):
    clf, X_test = binary
    y_pred = clf.predict(X_test)
    proba = clf.predict_proba(X_test)
    decision = clf.decision_function(X_test)
    assert decision.shape == (len(X_test),)
    assert_array_equal(y_pred, clf.classes_[proba.argmax(axis=1)])
    assert_array_equal(y_pred, clf.classes_[(decision > 0).astype(int)])
    assert_allclose(expit(decision), proba[:, 1], rtol=1e-12)
    assert np.any(clf.predict_uncertainty(X_test)["d"] == 0)


def test_proba_is_the_sdm_activation_where_d_is_positive(blobs, fitted):
    X_test = blobs[2]
    frame = fitted.predict_uncertainty(X_test)
    proba = fitted.predict_proba(X_test)
    rows = np.flatnonzero(frame["d"] > 0)
    assert len(rows) > 0
    yhat = np.searchsorted(fitted.classes_, frame["prediction"])
    assert_allclose(proba[rows, yhat[rows]], frame["sdm_probability"].iloc[rows],
                    rtol=1e-12)


def test_predict_uncertainty_columns_and_index(blobs, fitted):
    X_test = blobs[2]
    frame = fitted.predict_uncertainty(X_test)
    assert len(UNCERTAINTY_COLUMNS) == 18
    assert tuple(frame.columns) == UNCERTAINTY_COLUMNS
    assert_array_equal(frame.index, np.arange(len(X_test)))
    assert_array_equal(frame["prediction"], fitted.predict(X_test))
    # Relations of eq. 8-9 and A.5 (the method page) between the columns.
    q, p = frame["q"].to_numpy(), frame["sdm_probability"].to_numpy()
    q_prime = frame["rescaled_similarity"].to_numpy()
    assert_allclose(q_prime, np.minimum(q, (2.0 + q) ** p))
    assert_array_equal(frame["is_ood"], np.floor(q_prime) == 0)
    yhat = np.searchsorted(fitted.classes_, frame["prediction"])
    admitted = ((np.floor(q_prime) > 0)
                & (q_prime >= fitted.min_rescaled_similarity_)
                & (p >= fitted.class_thresholds_[yhat]))
    assert_array_equal(frame["admitted"], admitted)
    assert np.all(frame["d_lower"] <= frame["d"])
    assert np.all(frame["d"] <= frame["d_upper"])
    assert np.all(frame["admitted_lower"] <= frame["admitted"])


def test_predict_uncertainty_is_indexed_like_a_dataframe(blobs):
    X, y, X_test = blobs
    columns = ["a", "b", "c", "d"]
    clf = SDMClassifier(**FAST).fit(pd.DataFrame(X, columns=columns), y)
    assert_array_equal(clf.feature_names_in_, columns)
    index = pd.Index(np.arange(len(X_test)) * 3 + 100, name="row")
    frame = clf.predict_uncertainty(pd.DataFrame(X_test, columns=columns,
                                                 index=index))
    pd.testing.assert_index_equal(frame.index, index)


def test_predict_selective_integer_labels(blobs, fitted):
    X_test = blobs[2]
    assert fitted.rejection_label_ == -1
    selective = fitted.predict_selective(X_test)
    admitted = fitted.predict_uncertainty(X_test)["admitted"].to_numpy()
    assert 0 < admitted.sum() < len(admitted)
    assert np.issubdtype(selective.dtype, np.integer)
    assert_array_equal(selective[admitted], fitted.predict(X_test)[admitted])
    assert np.all(selective[~admitted] == -1)


def test_predict_selective_conservative_uses_lower_variant(blobs):
    X, y, X_test = blobs
    clf = SDMClassifier(**FAST, conservative=True).fit(X, y)
    admitted = clf.predict_uncertainty(X_test)["admitted_lower"].to_numpy()
    selective = clf.predict_selective(X_test)
    assert_array_equal(selective[admitted], clf.predict(X_test)[admitted])
    assert np.all(selective[~admitted] == -1)


@pytest.mark.parametrize(
    "labels, rejection_label, expected_marker",
    [
        ([-1, 0, 1], None, -2),
        ([3, 5, 7], None, -1),
        (["ant", "bee", "cat"], None, "rejected"),
        (["approved", "rejected", "pending"], None, "rejected_"),
        (["rejected", "rejected_", "x"], None, "rejected__"),
        ([3, 5, 7], 99, 99),
        ([3, 5, 7], "none", "none"),
        (["ant", "bee", "cat"], "?", "?"),
    ],
)
def test_predict_selective_markers(blobs, labels, rejection_label,
                                   expected_marker):
    X, y, X_test = blobs
    y_labels = np.asarray(labels)[y]
    clf = SDMClassifier(**FAST, rejection_label=rejection_label).fit(X, y_labels)
    assert clf.rejection_label_ == expected_marker
    selective = clf.predict_selective(X_test)
    admitted = clf.predict_uncertainty(X_test)["admitted"].to_numpy()
    assert 0 < admitted.sum() < len(admitted)
    assert not pd.isna(selective).any()
    assert_array_equal(selective[admitted], clf.predict(X_test)[admitted])
    assert np.all(selective[~admitted] == expected_marker)
    assert set(selective.tolist()) <= set(labels) | {expected_marker}


@pytest.mark.parametrize("labels, marker", [([3, 5, 7], 5), (["a", "b", "c"], "c")])
def test_rejection_label_that_is_a_class_raises(blobs, labels, marker):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="is one of the classes"):
        SDMClassifier(**FAST, rejection_label=marker).fit(X, np.asarray(labels)[y])


@pytest.mark.parametrize("alpha", [None, 1.0])
def test_no_region_warns_and_rejects_everything(alpha):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = rng.randint(0, 2, size=200)
    params = dict(FAST, alpha=0.95 if alpha is None else alpha)
    if alpha == 1.0:
        # Noisy but learnable labels: only alpha = 1 leaves no region.
        y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    with pytest.warns(NoHighReliabilityRegionWarning, match="No HIGH-RELIABILITY"):
        clf = SDMClassifier(**params).fit(X, y)
    assert clf.min_rescaled_similarity_ == np.inf
    assert clf.class_thresholds_.shape == (2,)
    assert np.all(clf.class_thresholds_ == np.inf)
    assert_array_equal(clf.predict_selective(X), -1)
    assert not clf.predict_uncertainty(X)[["admitted", "admitted_lower"]].any().any()
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize("alpha", [0.5, 0.3, 1.01, 0.0, -1.0])
def test_alpha_outside_the_interval_raises(blobs, alpha):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="alpha"):
        SDMClassifier(**dict(FAST, alpha=alpha)).fit(X, y)


def test_class_with_one_sample_raises(blobs):
    X, y, _ = blobs
    y = y.copy()
    y[0] = 9
    with pytest.raises(ValueError, match=r"at least 2 samples.*\[9\]"):
        SDMClassifier(**FAST).fit(X, y)


def test_one_class_raises(blobs):
    X, _, _ = blobs
    with pytest.raises(ValueError, match="at least 2 classes"):
        SDMClassifier(**FAST).fit(X, np.zeros(len(X), dtype=int))


@pytest.mark.parametrize(
    "make_estimator",
    [
        lambda X: None,
        lambda X: StandardScaler(),
        lambda X: make_pipeline(StandardScaler(), PCA(n_components=3)),
        lambda X: FrozenEstimator(PCA(n_components=3).fit(X)),
    ],
    ids=["none", "scaler", "pipeline", "frozen"],
)
def test_feature_producers(blobs, make_estimator):
    X, y, X_test = blobs
    estimator = make_estimator(X)
    clf = SDMClassifier(estimator, **FAST).fit(X, y)
    assert clf.n_features_in_ == 4
    if estimator is None:
        assert clf.estimator_ is None
    elif isinstance(estimator, FrozenEstimator):
        assert clf.estimator_ is estimator
    else:
        assert clf.estimator_ is not estimator
        assert type(clf.estimator_) is type(estimator)
    assert np.mean(clf.predict(X) == y) > 0.8
    proba = clf.predict_proba(X_test)
    assert_array_equal(clf.predict(X_test), clf.classes_[proba.argmax(axis=1)])
    assert clf.predict_uncertainty(X_test).shape == (len(X_test), 18)


class RowRecorder(TransformerMixin, BaseEstimator):
    """Drops the last column (a row id) and logs the ids it sees.

    The log is shared by every clone, as a class attribute; it holds the
    recorder itself (not its ``id``, which a later object may reuse).
    """

    log = []

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        RowRecorder.log.append((self, "fit", X[:, -1].astype(int)))
        return self

    def transform(self, X):
        RowRecorder.log.append((self, "transform", X[:, -1].astype(int)))
        return X[:, :-1]


@pytest.fixture
def recorder_log():
    RowRecorder.log.clear()
    yield RowRecorder.log
    RowRecorder.log.clear()


def test_producer_is_fitted_on_support_rows_only(blobs, recorder_log):
    X, y, _ = blobs
    X_ids = np.column_stack([X, np.arange(len(X))])
    clf = SDMClassifier(RowRecorder(), **dict(FAST, n_iterations=3)).fit(X_ids, y)
    fits = [(owner, ids) for owner, kind, ids in recorder_log if kind == "fit"]
    # one producer, fitted once: the three iterations share its split
    assert len(fits) == 1
    for owner, fitted_ids in fits:
        transformed = [ids for o, kind, ids in recorder_log
                       if o is owner and kind == "transform"]
        # fit_transform on the support rows, then transform on calibration
        # rows in fixed blocks (the last one padded with its last row): the
        # recorder is not known to be row-wise.
        assert_array_equal(transformed[0], fitted_ids)
        assert all(len(ids) == PADDED_ROWS for ids in transformed[1:])
        calibration_ids = np.unique(np.concatenate(transformed[1:]))
        assert len(np.intersect1d(fitted_ids, calibration_ids)) == 0
        assert_array_equal(np.sort(np.concatenate([fitted_ids, calibration_ids])),
                           np.arange(len(X)))
    # The kept producer belongs to the kept iteration's support set.
    kept = [ids for owner, ids in fits if owner is clf.estimator_]
    assert len(kept) == 1
    assert_array_equal(clf.support_labels_, y[np.sort(kept[0])])
    assert len(clf.support_labels_) == len(kept[0])


def test_frozen_producer_is_never_refitted(blobs, recorder_log):
    X, y, X_test = blobs
    X_ids = np.column_stack([X, np.arange(len(X))])
    frozen = FrozenEstimator(RowRecorder().fit(X_ids))
    recorder_log.clear()
    clf = SDMClassifier(frozen, **dict(FAST, n_iterations=2)).fit(X_ids, y)
    assert clf.estimator_ is frozen
    assert [kind for _, kind, _ in recorder_log if kind == "fit"] == []
    # The frozen producer transformed all rows once, in fixed blocks.
    seen = np.concatenate([ids for _, kind, ids in recorder_log])
    assert_array_equal(np.unique(seen), np.arange(len(X)))
    assert len(recorder_log) == -(-len(X) // PADDED_ROWS)


def test_producer_without_transform_or_responses_raises(blobs):
    # neither a transformer nor a classifier: a regressor
    X, y, _ = blobs
    with pytest.raises(ValueError, match="estimator"):
        SDMClassifier(LinearRegression(), **FAST).fit(X, y)


def test_in_pipeline_and_grid_search(blobs):
    X, y, X_test = blobs
    pipe = Pipeline([("scale", StandardScaler()), ("sdm", SDMClassifier(**FAST))])
    pipe.fit(X, y)
    assert pipe.predict_proba(X_test).shape == (len(X_test), 3)
    assert pipe.score(X, y) > 0.9
    search = GridSearchCV(
        SDMClassifier(**dict(FAST, n_epochs=5)), {"n_exemplar_dims": [4, 8]}, cv=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
        search.fit(X, y)
    assert search.best_params_["n_exemplar_dims"] in (4, 8)
    assert search.cv_results_["mean_test_score"].shape == (2,)
    assert search.predict(X_test).shape == (len(X_test),)


@pytest.mark.parametrize("estimator", [None, StandardScaler()])
def test_same_random_state_gives_bit_identical_outputs(blobs, estimator):
    X, y, X_test = blobs
    params = dict(FAST, n_iterations=2)
    first = clone(SDMClassifier(estimator, **params)).fit(X, y)
    second = clone(SDMClassifier(estimator, **params)).fit(X, y)
    assert first.predict_proba(X_test).tobytes() == second.predict_proba(
        X_test).tobytes()
    pd.testing.assert_frame_equal(first.predict_uncertainty(X_test),
                                  second.predict_uncertainty(X_test),
                                  check_exact=True)
    assert first.calibration_loss_.tobytes() == second.calibration_loss_.tobytes()


@pytest.mark.filterwarnings("ignore::sdm_sklearn.NoHighReliabilityRegionWarning")
def test_fitted_attributes(blobs):
    X, y, _ = blobs
    clf = SDMClassifier(**dict(FAST, n_iterations=2, n_epochs=4)).fit(X, y)
    assert_array_equal(clf.classes_, [0, 1, 2])
    # Half of every class (rounded) goes to calibration, the rest is support.
    counts = np.bincount(y)
    support_counts = counts - np.array([round(0.5 * n) for n in counts])
    assert_array_equal(np.bincount(clf.support_labels_), support_counts)
    n_support = support_counts.sum()
    assert clf.support_exemplars_.shape == (n_support, 8)
    assert clf.support_predictions_.shape == (n_support,)
    assert clf.max_similarity_ == support_counts.max()
    assert clf.class_thresholds_.shape == (3,)
    assert clf.calibration_loss_.shape == (2, 4)
    assert clf.best_iteration_ in (0, 1) and 0 <= clf.best_epoch_ < 4
    assert (clf.calibration_loss_[clf.best_iteration_, clf.best_epoch_]
            == clf.calibration_loss_.min())


@pytest.mark.parametrize("n_exemplar_dims", [3, 4, 16])
def test_search_space_matches_brute_force_in_exemplar_space(n_exemplar_dims):
    # 6 features: M = 3 < D, M = 4 < D and M = 16 > D (the thin-QR path).
    X, y = make_blobs(n_samples=240, centers=3, n_features=6, cluster_std=2.5,
                      random_state=3)
    X_test, _ = make_blobs(n_samples=80, centers=3, n_features=6,
                           cluster_std=3.5, random_state=4)
    clf = SDMClassifier(**dict(FAST, n_exemplar_dims=n_exemplar_dims)).fit(X, y)
    support = clf.support_exemplars_.astype(np.float64)
    assert support.shape == (120, n_exemplar_dims)

    # support_exemplars_ are the exemplars of the support rows of X.
    train = clf.exemplars(X).astype(np.float64)
    sq_dist = ((support[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    match = sq_dist.argmin(axis=1)
    scale = np.abs(support).max()
    assert np.sqrt(sq_dist[np.arange(120), match]).max() < 1e-5 * scale
    assert len(np.unique(match)) == 120
    assert_array_equal(y[match], clf.support_labels_)

    # q, nearest index and d_nearest from the definition, in exemplar space.
    encode = {label: index for index, label in enumerate(clf.classes_)}
    good = np.where(clf.support_predictions_ == clf.support_labels_,
                    [encode[c] for c in clf.support_predictions_], -1)
    predictions = np.array([encode[c] for c in clf.predict(X_test)])
    q, nearest, d_nearest = brute_force_search(
        support, good, clf.exemplars(X_test), predictions, clf.max_similarity_
    )
    frame = clf.predict_uncertainty(X_test)
    assert np.any(q > 0) and np.any(q == 0)
    assert_array_equal(frame["q"], q)
    assert_array_equal(frame["nearest_support_index"], nearest)
    assert_allclose(frame["d_nearest"], d_nearest, rtol=1e-4)


def test_small_region_warns_with_counts():
    # the paper's rule (confidence=None) sets no minimum count: it warns
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, size=(400, 2)), rng.normal(8, 1, size=(30, 2))])
    y = np.repeat([0, 1], [400, 30])
    # alpha = 0.9: a class is "small" below ceil(1 / 0.1) = 10 points
    with pytest.warns(SmallRegionWarning, match=r"\{1: \d\}.*= 10,"):
        clf = SDMClassifier(n_iterations=1, n_epochs=20, alpha=0.9,
                            confidence=None, random_state=0).fit(X, y)
    assert np.isfinite(clf.min_rescaled_similarity_)
    assert clf.region_class_counts_.shape == (2,)
    assert 0 < clf.region_class_counts_[1] < 10 <= clf.region_class_counts_[0]


def test_large_balanced_region_does_not_warn():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, size=(300, 2)), rng.normal(8, 1, size=(300, 2))])
    y = np.repeat([0, 1], 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallRegionWarning)
        clf = SDMClassifier(n_iterations=1, n_epochs=10, random_state=0).fit(X, y)
    assert (clf.region_class_counts_ >= 20).all()


@pytest.mark.parametrize(
    "n_samples, batch_size, expected",
    [(200, 50, 100), (2000, 50, 100), (2500, 50, 80), (5000, 50, 40),
     (20000, 50, 10), (20000, 10, 5), (5000, 500, 100)],
)
def test_auto_epochs_give_about_two_thousand_steps(n_samples, batch_size, expected):
    # calibration_size=0.5: half of the points form the support split
    assert resolve_epochs("auto", n_samples // 2, batch_size) == expected
    assert resolve_epochs(7, n_samples // 2, batch_size) == 7


def test_auto_epochs_recorded_after_fit(blobs):
    X, y, _ = blobs
    clf = SDMClassifier(n_iterations=2, random_state=0).fit(X, y)
    assert clf.n_epochs_ == 100
    assert clf.calibration_loss_.shape == (2, 100)
