"""Cross-fitting and the producer's calls.

A fitted producer (a classifier or a transformer given as ``estimator``) is
fitted on the support split only, and the three iterations of a default fit
share that split: no calibration row's features may come from a model that
saw the row, and new inputs go through the same producer as the calibration
rows. The producer is called on whole chunks when its rows are computed on
their own (:func:`~sdm_sklearn._features.is_row_wise`), in fixed padded blocks
otherwise; either way a row's features do not depend on the rest of the call.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sdm_sklearn import SDMClassifier
from sdm_sklearn._features import (
    PADDED_ROWS,
    RESPONSE_FOLDS,
    ClassifierResponses,
    is_row_wise,
)

FAST = dict(n_exemplar_dims=8, n_epochs=6, learning_rate=3e-2, alpha=0.8,
            random_state=0)


class IdClassifier(ClassifierMixin, BaseEstimator):
    """Nearest-centroid probabilities; the last column is a row id, not a feature.

    Every fit and every ``predict_proba`` call is logged in the class-level
    ``log`` with the fitted instance's serial number, so a test can tell
    which model gave which row its responses.
    """

    log = []
    serials = itertools.count()

    def fit(self, X, y):
        features, ids = X[:, :-1], X[:, -1].astype(int)
        self.classes_ = np.unique(y)
        self.centroids_ = np.array([features[y == c].mean(axis=0)
                                    for c in self.classes_])
        self.serial_ = next(IdClassifier.serials)
        self.seen_ = frozenset(ids.tolist())
        IdClassifier.log.append(("fit", self.serial_, self.seen_))
        return self

    def predict_proba(self, X):
        features, ids = X[:, :-1], X[:, -1].astype(int)
        IdClassifier.log.append(("predict", self.serial_, ids))
        scores = -((features[:, None, :] - self.centroids_) ** 2).sum(axis=2)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@pytest.fixture
def id_data():
    X, y = make_classification(n_samples=240, n_features=4, n_informative=3,
                               n_redundant=0, random_state=0)
    IdClassifier.log.clear()
    yield np.column_stack([X, np.arange(len(X))]), y
    IdClassifier.log.clear()


def _fit_quietly(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clf.fit(X, y)


@pytest.mark.parametrize("ensemble", [False, True])
def test_no_calibration_row_gets_features_from_a_model_that_saw_it(id_data,
                                                                   ensemble):
    X, y = id_data
    clf = _fit_quietly(SDMClassifier(IdClassifier(), append_features=False,
                                     n_iterations=3, ensemble=ensemble, **FAST),
                       X, y)
    fits = {serial: seen for kind, serial, seen in IdClassifier.log
            if kind == "fit"}
    # one cross-fitting for the three iterations: the folds and the full fit
    assert len(fits) == RESPONSE_FOLDS + 1
    predicted = [(serial, ids) for kind, serial, ids in IdClassifier.log
                 if kind == "predict"]
    for serial, ids in predicted:
        assert not fits[serial] & set(ids.tolist()), (
            f"model {serial} gave responses to rows it was fitted on")
    final = clf.estimator_.serial_
    support = fits[final]
    calibration = set(range(len(X))) - support
    # every calibration row got its responses from the final model, the
    # one new inputs go through; every support row from a fold model
    by_final = set(np.concatenate([ids for serial, ids in predicted
                                   if serial == final]).tolist())
    assert calibration <= by_final
    by_folds = set(np.concatenate([ids for serial, ids in predicted
                                   if serial != final]).tolist())
    assert by_folds == support
    assert set(clf.calibration_ids_.tolist()) == calibration
    assert set(clf.support_ids_.tolist()) == support
    IdClassifier.log.clear()
    clf.predict_uncertainty(X[:50])
    assert {serial for kind, serial, _ in IdClassifier.log} == {final}


def test_iterations_share_the_split_and_differ_in_the_adaptor(id_data):
    X, y = id_data
    clf = _fit_quietly(SDMClassifier(IdClassifier(), append_features=False,
                                     n_iterations=3, ensemble=True, **FAST),
                       X, y)
    model = clf._model
    assert len(model.members) == 2
    for member in model.members:
        assert member.producer is model.producer
        assert_array_equal(member.support_ids, model.support_ids)
        assert_array_equal(member.calibration.ids, model.calibration.ids)
        assert not np.array_equal(member.adaptor.params, model.adaptor.params)


def test_without_a_fitted_producer_every_iteration_draws_its_split():
    X, y = make_classification(n_samples=240, n_features=4, random_state=0)
    clf = _fit_quietly(SDMClassifier(n_iterations=3, ensemble=True, **FAST),
                       X, y)
    splits = {tuple(np.sort(m.support_ids))
              for m in (clf._model, *clf._model.members)}
    assert len(splits) == 3


# ------------------------------------------------------------ producer calls


def _counting(monkeypatch, cls, method):
    """Record the number of rows of every call of ``cls.method``."""
    calls = []
    original = getattr(cls, method)

    def counted(self, X):
        calls.append(len(X))
        return original(self, X)

    monkeypatch.setattr(cls, method, counted)
    return calls


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(n_samples=1400, n_features=6, n_informative=4,
                               random_state=1)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["colour"] = pd.Categorical(np.array(["red", "green", "blue"])[
        (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)])
    return frame.iloc[:600], y[:600], frame.iloc[600:]


@pytest.fixture(scope="module")
def boosted(tabular):
    X, y, _ = tabular
    base = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    return _fit_quietly(SDMClassifier(base, n_iterations=2, ensemble=True,
                                      **FAST), X, y)


def test_a_row_wise_producer_is_called_once_per_call(boosted, tabular,
                                                     monkeypatch):
    _, _, X_test = tabular
    assert is_row_wise(boosted._model.producer)
    calls = _counting(monkeypatch, HistGradientBoostingClassifier,
                      "predict_proba")
    boosted.predict_selective(X_test)
    # one pass for the model and its member, which share the producer
    assert calls == [len(X_test)]
    calls.clear()
    boosted.predict_uncertainty(X_test)
    assert calls == [len(X_test)]


def test_a_blas_producer_takes_fixed_padded_blocks(monkeypatch):
    X, y = make_classification(n_samples=400, n_features=5, random_state=0)
    clf = _fit_quietly(SDMClassifier(LogisticRegression(), n_iterations=1,
                                     **FAST), X, y)
    assert not is_row_wise(clf._model.producer)
    calls = _counting(monkeypatch, LogisticRegression, "predict_proba")
    X_test = np.tile(X, (3, 1))[:PADDED_ROWS + 5]
    clf.predict_proba(X_test)
    assert calls == [PADDED_ROWS, PADDED_ROWS]
    calls.clear()
    clf.predict_proba(X_test[:3])
    assert calls == [PADDED_ROWS]


@pytest.mark.parametrize("rows", [[0], [5, 3], list(range(17)),
                                  list(range(0, 800, 7))])
def test_a_rows_answer_does_not_depend_on_the_call(boosted, tabular, rows):
    _, _, X_test = tabular
    whole = boosted.predict_uncertainty(X_test)
    part = boosted.predict_uncertainty(X_test.iloc[rows])
    assert_frame_equal(part, whole.iloc[rows])


def test_row_wise_types():
    assert is_row_wise(HistGradientBoostingClassifier())
    assert is_row_wise(make_pipeline(
        make_column_transformer((OneHotEncoder(), [0]),
                                remainder="passthrough"),
        HistGradientBoostingClassifier()))
    assert not is_row_wise(LogisticRegression())
    assert not is_row_wise(make_pipeline(StandardScaler(), LogisticRegression()))

    class Subclass(HistGradientBoostingClassifier):
        pass

    # a subclass may compute differently: padded blocks for it
    assert not is_row_wise(Subclass())


def test_a_split_per_iteration_refits_the_producer_every_iteration(id_data):
    X, y = id_data
    clf = _fit_quietly(SDMClassifier(IdClassifier(), append_features=False,
                                     n_iterations=3, share_split=False,
                                     ensemble=True, **FAST), X, y)
    fits = {serial: seen for kind, serial, seen in IdClassifier.log
            if kind == "fit"}
    assert len(fits) == 3 * (RESPONSE_FOLDS + 1)
    for serial, ids in ((s, i) for kind, s, i in IdClassifier.log
                        if kind == "predict"):
        assert not fits[serial] & set(ids.tolist())
    models = (clf._model, *clf._model.members)
    assert len({id(m.producer) for m in models}) == 3
    assert len({tuple(np.sort(m.support_ids)) for m in models}) == 3


ROW_WISE_PRODUCERS = {
    "boosting, 3 classes": lambda: HistGradientBoostingClassifier(
        max_iter=15, random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(
        n_estimators=10, random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "extra trees": lambda: ExtraTreesClassifier(n_estimators=10,
                                                random_state=0),
    "tree": lambda: DecisionTreeClassifier(random_state=0),
    "scaled boosting": lambda: make_pipeline(
        StandardScaler(), HistGradientBoostingClassifier(max_iter=15,
                                                         random_state=0)),
}


@pytest.mark.parametrize("name", list(ROW_WISE_PRODUCERS))
def test_row_wise_producers_answer_a_row_alone_as_in_a_batch(name):
    # the claim behind is_row_wise, checked on the listed types: a row's
    # responses (log-probabilities, as the adaptor sees them) are the same
    # bits alone, in a short call and in a long one
    X, y = make_classification(n_samples=3000, n_features=6, n_informative=4,
                               n_classes=3, random_state=2)
    producer = ClassifierResponses(ROW_WISE_PRODUCERS[name]().fit(X[:400],
                                                                  y[:400]),
                                   "predict_proba", append_features=True,
                                   fill=np.zeros(6))
    assert is_row_wise(producer)
    whole = producer.transform(X)
    for rows in ([7], [2999], list(range(3, 40)), list(range(0, 3000, 11))):
        assert_array_equal(producer.transform(X[rows]), whole[rows])
