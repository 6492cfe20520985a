"""SDMClassifier as a drop-in for CalibratedClassifierCV.

Any classifier as the base model (its cross-fitted responses as features),
selective predictions through a Pipeline, and recalibration without refit
(in test_silent_answers.py).
"""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_digits, make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils import get_tags

from sdm_sklearn import SDMClassifier
from sdm_sklearn._features import RESPONSE_FOLDS, ClassifierResponses

FAST = dict(n_iterations=1, n_epochs=8, alpha=0.9, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600], X[1200:], y[1200:]


def _fit(estimator, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SDMClassifier(estimator, **{**FAST, **params}).fit(X, y)


@pytest.mark.parametrize("estimator, method, width", [
    (KNeighborsClassifier(n_neighbors=10), "predict_proba", 10),
    (make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
     "predict_proba", 10),
    (LinearSVC(), "decision_function", 10),
])
def test_any_classifier_gives_its_responses_as_features(digits, estimator,
                                                       method, width):
    X, y, X_test, y_test = digits
    # 600 digits hold about 30 calibration points per class: alpha 0.8
    # has a tested region (0.9 asks more than some classes show)
    clf = _fit(estimator, X, y, n_epochs=30, alpha=0.8, append_features=False)
    assert isinstance(clf._model.producer, ClassifierResponses)
    assert clf._model.producer.method == method
    assert type(clf.estimator_) is type(estimator)
    assert clf._model.n_features == width
    assert np.mean(clf.predict(X_test) == y_test) > 0.8
    frame = clf.predict_uncertainty(X_test)
    assert frame["admitted"].any()
    assert clf.n_features_in_ == X.shape[1]


def test_appended_features_come_before_the_responses(digits):
    X, y, X_test, _ = digits
    clf = _fit(LogisticRegression(max_iter=300), X, y, append_features=True)
    assert clf._model.n_features == X.shape[1] + 10
    features = clf._model.producer.transform(X_test[:3])
    assert_array_equal(features[:, :X.shape[1]], X_test[:3])
    proba = clf.estimator_.predict_proba(X_test[:3])
    np.testing.assert_allclose(features[:, X.shape[1]:],
                               np.log(np.maximum(proba, 1e-2)))
    assert not get_tags(clf).input_tags.allow_nan


def test_binary_decision_function_is_one_column():
    X, y = make_classification(n_samples=300, random_state=0)
    clf = _fit(LinearSVC(), X, y, response_method="decision_function",
               append_features=False)
    assert clf._model.n_features == 1


def test_auto_appends_numeric_columns_only(digits):
    from sklearn.feature_extraction.text import TfidfVectorizer

    X, y, _, _ = digits
    clf = _fit(LogisticRegression(max_iter=300), X, y)
    assert clf._model.n_features == X.shape[1] + 10
    texts = [f"digit {label} sample {i}" for i, label in enumerate(y)]
    clf = _fit(make_pipeline(TfidfVectorizer(), LogisticRegression()), texts, y)
    assert clf._model.n_features == 10
    assert clf.predict(texts[:3]).shape == (3,)


@pytest.mark.parametrize("frozen", [False, True])
def test_missing_values_keep_the_feature_space(frozen):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(600, n_features=6, random_state=0)
    X_nan = X.copy()
    X_nan[::7, 2] = np.nan
    base = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    if frozen:
        base = FrozenEstimator(clone(base).fit(X[300:], y[300:]))
    clean = _fit(base, X[:300], y[:300], alpha=0.8)
    holed = _fit(base, X_nan[:300], y[:300], alpha=0.8)
    # the NaN of training does not switch the columns off
    assert clean._model.n_features == holed._model.n_features == 6 + 2
    assert np.isnan(X_nan[300:]).any()
    for clf in (clean, holed):
        # NaN at predict time, where the base model takes it
        frame = clf.predict_uncertainty(X_nan[300:])
        assert frame["admitted"].any()
        assert_array_equal(clf.predict(X_nan[300:]), frame["prediction"])
    # a missing value is the column's mean over the rows the base model
    # was fitted on (the support split; all training rows when frozen)
    rows = np.arange(300) if frozen else holed._model.support_ids
    row = 300 + np.flatnonzero(np.isnan(X_nan[300:, 2]))[0]
    features = holed._model.producer.transform(X_nan[row:row + 1])
    np.testing.assert_allclose(features[0, 2], np.nanmean(X_nan[rows, 2]))
    others = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(features[0, others], X_nan[row, others])


class FoldRecorder(ClassifierMixin, BaseEstimator):
    """Logistic regression that logs the row ids (last column) it was fit on."""

    log = []

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=300).fit(X[:, :-1], y)
        self.classes_ = self.model_.classes_
        self.n_features_in_ = X.shape[1]
        # a serial number, not id(): ids of collected clones are reused
        self.serial_ = len(FoldRecorder.log)
        FoldRecorder.log.append(("fit", self.serial_, X[:, -1].astype(int)))
        return self

    def predict_proba(self, X):
        FoldRecorder.log.append(("proba", self.serial_, X[:, -1].astype(int)))
        return self.model_.predict_proba(X[:, :-1])

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_support_responses_are_out_of_fold_and_calibration_is_unseen(digits):
    X, y, _, _ = digits
    X_ids = np.column_stack([X, np.arange(len(X))])
    FoldRecorder.log.clear()
    clf = _fit(FoldRecorder(), X_ids, y)
    fits = [(owner, rows) for kind, owner, rows in FoldRecorder.log if kind == "fit"]
    assert len(fits) == RESPONSE_FOLDS + 1
    support = np.sort(clf.support_ids_)
    calibration = clf.calibration_ids_
    for owner, rows in fits:
        # nothing fitted ever sees a calibration row
        assert not np.isin(rows, calibration).any()
        # every fold model predicts only rows it was not fitted on
        predicted = [r for kind, o, r in FoldRecorder.log
                     if kind == "proba" and o == owner]
        for rows_predicted in predicted:
            if owner != clf.estimator_.serial_:
                assert not np.isin(rows_predicted, rows).any()
    final = [rows for owner, rows in fits
             if owner == clf.estimator_.serial_]
    assert_array_equal(np.sort(final[0]), support)


def test_frozen_classifier_is_never_refitted(digits):
    X, y, X_test, _ = digits
    base = LogisticRegression(max_iter=300).fit(X_test, _digits_labels(X_test))
    frozen = FrozenEstimator(base)
    before = base.coef_.copy()
    clf = _fit(frozen, X, y)
    assert clf.estimator_ is frozen
    assert_array_equal(base.coef_, before)
    assert clf.predict_selective(X_test).shape == (len(X_test),)


def _digits_labels(X):
    X_all, y_all = load_digits(return_X_y=True)
    position = {row.tobytes(): label for row, label in zip(X_all, y_all,
                                                            strict=True)}
    return np.array([position[row.tobytes()] for row in X])


def test_response_method_must_exist(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="has no predict_proba"):
        _fit(LinearSVC(), X, y, response_method="predict_proba")


def test_classifier_needs_two_support_points_per_class():
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.array([0] * 8 + [1] * 2)
    with pytest.raises(ValueError, match="at least 2 support points"):
        _fit(LogisticRegression(), X, y)


@pytest.mark.parametrize("routing", [False, True])
def test_pipeline_predict_selective(digits, routing):
    X, y, X_test, _ = digits
    with sklearn.config_context(enable_metadata_routing=routing):
        sdm = SDMClassifier(**FAST)
        if routing:
            sdm.set_predict_request(selective=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline = make_pipeline(StandardScaler(), sdm).fit(X, y)
        expected = pipeline[-1].predict_selective(pipeline[0].transform(X_test))
        assert_array_equal(pipeline.predict(X_test, selective=True), expected)
        assert_array_equal(pipeline.predict(X_test),
                           pipeline[-1].predict(pipeline[0].transform(X_test)))
        assert (expected == sdm.rejection_label_).any()


def test_classifier_producer_is_cloned_not_mutated(digits):
    X, y, _, _ = digits
    base = LogisticRegression(max_iter=300)
    clf = _fit(base, X, y)
    assert not hasattr(base, "coef_")
    assert clone(clf).estimator is not clf.estimator
