"""sample_weight: where weights go, where they do not, and what equals what.

Weights enter the base model's fit (when it takes them), the adaptor's loss
and the balanced loss that chooses the epoch; not the split, q, d or the
region (see SDMClassifier.fit). The common checks that equate integer
weights with repeated rows are expected to fail (test_common.py).
"""

import warnings

import numpy as np
import pytest
from label_kinds import LABEL_KINDS, as_labels
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sdm_sklearn import SDMClassifier
from sdm_sklearn._activation import sdm_loss, sdm_loss_gradient

FAST = dict(n_iterations=2, n_epochs=6, alpha=0.8, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=400, n_features=6, n_informative=4,
                               random_state=0)


def _outputs(clf, X):
    return (clf.predict_proba(X), clf.predict_uncertainty(X).to_numpy(),
            clf.calibration_loss_)


@pytest.mark.parametrize("estimator", [None, LogisticRegression()])
def test_weights_of_one_change_nothing(data, estimator):
    X, y = data
    plain = SDMClassifier(estimator, **FAST).fit(X, y)
    ones = SDMClassifier(estimator, **FAST).fit(X, y, sample_weight=np.ones(len(y)))
    for left, right in zip(_outputs(plain, X), _outputs(ones, X), strict=True):
        assert_array_equal(left, right)


def test_weights_move_the_model(data):
    X, y = data
    one = {**FAST, "n_iterations": 1}
    plain = SDMClassifier(**one).fit(X, y)
    weighted = SDMClassifier(**one).fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    # the same split (weights never enter it), another adaptor
    assert_array_equal(plain.support_ids_, weighted.support_ids_)
    assert not np.array_equal(plain.predict_proba(X), weighted.predict_proba(X))
    # up-weighting class 1 raises its predicted share
    assert (weighted.predict(X) == 1).mean() >= (plain.predict(X) == 1).mean()


def test_integer_weight_is_copies_in_the_losses():
    rng = np.random.default_rng(0)
    n = 30
    z = rng.normal(size=(n, 3))
    y = rng.integers(0, 3, size=n)
    q = rng.integers(0, 5, size=n).astype(float)
    d = rng.random(n)
    k = rng.integers(0, 4, size=n)
    k[:3] = [1, 2, 3]  # at least some weight in every draw
    copies = np.repeat(np.arange(n), k)
    # training loss: weights of mean 1 over the n points, as fit normalizes
    weights = k * (n / k.sum())
    weighted = sdm_loss_gradient(z, y, q, d, weights)
    repeated = sdm_loss_gradient(z[copies], y[copies], q[copies], d[copies])
    summed = np.zeros_like(weighted)
    np.add.at(summed, copies, repeated)
    assert_allclose(weighted, summed, rtol=1e-12, atol=1e-15)
    # the balanced loss that chooses the epoch, and the plain mean
    for balanced in (True, False):
        assert sdm_loss(z, y, q, d, class_balanced=balanced,
                        sample_weight=k.astype(float)) == pytest.approx(
            sdm_loss(z[copies], y[copies], q[copies], d[copies],
                     class_balanced=balanced), rel=1e-12)


class WeightRecorder(ClassifierMixin, BaseEstimator):
    """Logistic regression that logs the weights of every fit."""

    log = []

    def fit(self, X, y, sample_weight=None):
        WeightRecorder.log.append(None if sample_weight is None
                                  else np.asarray(sample_weight).copy())
        self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


def test_base_model_gets_the_support_weights(data):
    X, y = data
    weights = np.arange(1, len(y) + 1, dtype=float)
    WeightRecorder.log = []
    clf = SDMClassifier(WeightRecorder(), n_iterations=1, n_epochs=3,
                        alpha=0.8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "does not take" warning
        clf.fit(X, y, sample_weight=weights)
    # 5 cross-fitting folds and the fit on the whole support split
    assert len(WeightRecorder.log) == 6
    support_weights = weights[clf.support_ids_]
    assert_array_equal(np.sort(WeightRecorder.log[-1]), np.sort(support_weights))
    folds = np.sort(np.concatenate(WeightRecorder.log[:5]))
    # every support row is in 4 of the 5 training folds
    assert_array_equal(folds, np.sort(np.repeat(support_weights, 4)))


def test_a_base_model_without_weights_warns(data):
    X, y = data
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.warns(UserWarning, match="Pipeline.fit does not take sample_weight"):
        SDMClassifier(pipeline, **FAST).fit(X, y, sample_weight=np.ones(len(y)))
    frozen = FrozenEstimator(LogisticRegression().fit(X, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        SDMClassifier(frozen, **FAST).fit(X, y, sample_weight=np.ones(len(y)))


@pytest.mark.parametrize("weights, match", [
    (-np.ones(400), "Negative values"),
    (np.ones(399), "sample_weight.shape"),
    (np.full(400, np.nan), "NaN"),
    (np.zeros(400), "non-zero"),
    (np.r_[np.zeros(399), 1.0], "0 on every point of a support split"),
])
def test_bad_weights_are_refused_and_leave_nothing_fitted(data, weights, match):
    X, y = data
    clf = SDMClassifier(**FAST)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y, sample_weight=weights)
    assert not hasattr(clf, "classes_")


def test_weights_are_keyword_only(data):
    X, y = data
    with pytest.raises(TypeError):
        SDMClassifier(**FAST).fit(X, y, np.ones(len(y)))


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_label_kind(kind):
    X, y = make_classification(n_samples=300, random_state=1)
    labels = as_labels(y, kind)
    clf = SDMClassifier(n_iterations=1, n_epochs=4, alpha=0.8, random_state=0)
    clf.fit(X, labels, sample_weight=np.where(y == 1, 2.0, 1.0))
    assert set(clf.predict(X).tolist()) <= set(np.asarray(labels).tolist())


def test_metadata_routing_brings_the_weights_to_fit(data):
    import sklearn

    X, y = data
    weights = np.where(y == 1, 5.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        sdm = SDMClassifier(**FAST).set_fit_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             sdm)
        pipe.fit(X, y, sample_weight=weights)
    scaled = StandardScaler().fit_transform(X)
    direct = SDMClassifier(**FAST).fit(scaled, y, sample_weight=weights)
    assert_array_equal(pipe[-1].predict_proba(scaled), direct.predict_proba(scaled))
