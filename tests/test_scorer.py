"""Tests for sdm_sklearn.metrics.make_selective_scorer.

Exact cases use a stub estimator whose ``predict_uncertainty`` returns fixed
columns; the expected scores are worked out by hand in the comments. The
tolerated error counts come from the binomial distribution, computed below
with ``math.comb`` (independently of scipy).
"""

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.utils._param_validation import InvalidParameterError

from sdm_sklearn import SDMClassifier
from sdm_sklearn.metrics import make_selective_scorer


class StubSDM(BaseEstimator):
    """A fitted stand-in for SDMClassifier with fixed uncertainty columns."""

    def __init__(self, classes, prediction, admitted, admitted_lower=None, *,
                 alpha=0.95, conservative=False):
        self.classes = classes
        self.prediction = prediction
        self.admitted = admitted
        self.admitted_lower = admitted_lower
        self.alpha = alpha
        self.conservative = conservative
        self.classes_ = np.asarray(classes)  # "fitted" from the start

    def fit(self, X, y):
        return self

    def predict_uncertainty(self, X):
        assert len(X) == len(self.prediction)
        lower = self.admitted if self.admitted_lower is None else self.admitted_lower
        return pd.DataFrame({
            "prediction": np.asarray(self.prediction),
            "admitted": np.asarray(self.admitted, dtype=bool),
            "admitted_lower": np.asarray(lower, dtype=bool),
        })


def _X(n_samples):
    return np.zeros((n_samples, 1))


def _tolerated(n, alpha, level=0.95):
    """Smallest t with P(Binomial(n, 1 - alpha) <= t) >= level."""
    p, cdf = 1 - alpha, 0.0
    for t in range(n + 1):
        cdf += math.comb(n, t) * p**t * (1 - p) ** (n - t)
        if cdf >= level:
            return t
    return n


def test_tolerance_table_of_the_docstring():
    # The Notes quote these counts for alpha=0.95 and confidence_level=0.95.
    assert [_tolerated(n, 0.95) for n in (1, 2, 7, 8, 16, 17, 100)] == [
        0, 1, 1, 2, 2, 3, 9
    ]


def test_admitted_share_when_every_group_keeps_alpha():
    # 10 points, 5 per class; 6 admitted, all correct: score 6 / 10.
    y = np.array(["a"] * 5 + ["b"] * 5)
    admitted = [True, True, True, False, False, True, True, True, False, False]
    stub = StubSDM(["a", "b"], y, admitted)
    assert make_selective_scorer()(stub, _X(10), y) == pytest.approx(0.6)


def test_excess_errors_by_hand():
    # 20 points, 10 per class; 10 admitted: 8 of class a (3 of them
    # predicted b) and 2 of class b (right). alpha = 0.95:
    #   class a: 8 points, 3 errors, 2 tolerated -> 1 excess
    #   class b: 2 points, 0 errors              -> 0
    #   predicted a: the 5 right a's             -> 0
    #   predicted b: 3 wrong a's + 2 right b's: 5 points, 3 errors,
    #                1 tolerated                 -> 2 excess
    # lambda = min(1 / 0.05, 20) = 20; score = (10 - 20 * 3) / 20 = -2.5.
    assert (_tolerated(8, 0.95), _tolerated(5, 0.95), _tolerated(2, 0.95)) == (
        2, 1, 1
    )
    y = np.array(["a"] * 10 + ["b"] * 10)
    prediction = np.array(["a"] * 5 + ["b"] * 3 + ["a"] * 2 + ["b"] * 10)
    admitted = np.zeros(20, dtype=bool)
    admitted[:8] = True
    admitted[10:12] = True
    stub = StubSDM(["a", "b"], prediction, admitted)
    assert make_selective_scorer()(stub, _X(20), y) == pytest.approx(-2.5)

    # The scorer's alpha overrides the estimator's: at alpha = 0.75,
    # 8 points tolerate 4 errors and 5 points tolerate 3, so no group has
    # excess errors and the score is the admitted share 10 / 20.
    assert (_tolerated(8, 0.75), _tolerated(5, 0.75)) == (4, 3)
    assert make_selective_scorer(alpha=0.75)(stub, _X(20), y) == pytest.approx(0.5)
    # ... and the estimator's alpha is used when the scorer has none.
    stub.alpha = 0.75
    assert make_selective_scorer()(stub, _X(20), y) == pytest.approx(0.5)


def test_small_groups_by_hand():
    # 5 admitted points of one class out of 10 (alpha = 0.95): one error
    # (accuracy 0.8) is within chance for 5 points, two are not.
    y = np.array([0] * 5 + [1] * 5)
    admitted = [True] * 5 + [False] * 5
    one_error = StubSDM([0, 1], [1, 0, 0, 0, 0, *y[5:]], admitted)
    two_errors = StubSDM([0, 1], [1, 1, 0, 0, 0, *y[5:]], admitted)
    scorer = make_selective_scorer()
    # Class 0: 5 points, 1 error, 1 tolerated. Predicted 1: 1 point, 1 error,
    # 0 tolerated -> 1 excess; lambda = min(20, 10) = 10:
    # (5 - 10 * 1) / 10 = -0.5.
    assert scorer(one_error, _X(10), y) == pytest.approx(-0.5)
    # Class 0: 5 points, 2 errors -> 1 excess. Predicted 1: 2 points,
    # 2 errors, 1 tolerated -> 1 excess: (5 - 10 * 2) / 10 = -1.5.
    assert scorer(two_errors, _X(10), y) == pytest.approx(-1.5)
    # With one error, the whole miss is in the group of one prediction;
    # at confidence_level=0.99 a single point may hold one error.
    assert _tolerated(1, 0.95, 0.99) == 1
    assert make_selective_scorer(confidence_level=0.99)(
        one_error, _X(10), y
    ) == pytest.approx(0.5)


def test_confidence_level_half_leaves_no_margin():
    # 40 admitted points of 40, 4 errors (accuracy 0.9) at alpha = 0.95:
    # the median of Binomial(40, 0.05) is 2, so 2 errors are in excess for
    # the class and 2 for the prediction group.
    y = np.array([0] * 20 + [1] * 20)
    prediction = y.copy()
    prediction[:4] = 1  # four 0s predicted as 1
    stub = StubSDM([0, 1], prediction, np.ones(40, dtype=bool))
    assert _tolerated(20, 0.95, 0.5) == 1 and _tolerated(24, 0.95, 0.5) == 1
    # class 0: 20 points, 4 errors, 1 tolerated -> 3; predicted 1: 24
    # points, 4 errors, 1 tolerated -> 3; lambda = 20:
    # (40 - 20 * 6) / 40 = -2.
    scorer = make_selective_scorer(confidence_level=0.5)
    assert scorer(stub, _X(40), y) == pytest.approx(-2.0)
    # At the default level, 4 errors in 20 and in 24 points are excess by
    # 4 - 3 = 1 each: (40 - 20 * 2) / 40 = 0.
    assert _tolerated(20, 0.95) == 3 and _tolerated(24, 0.95) == 3
    assert make_selective_scorer()(stub, _X(40), y) == pytest.approx(0.0)


def test_alpha_one_allows_no_error():
    # alpha = 1: no error tolerated and lambda = n = 4. One admitted error
    # (class 0 and predicted 1): (3 - 4 * 2) / 4 = -1.25.
    y = np.array([0, 0, 1, 1])
    stub = StubSDM([0, 1], [0, 1, 1, 1], [True, True, True, False], alpha=1.0)
    assert make_selective_scorer()(stub, _X(4), y) == pytest.approx(-1.25)
    right = StubSDM([0, 1], [0, 0, 1, 1], [True, True, True, False], alpha=1.0)
    assert make_selective_scorer()(right, _X(4), y) == pytest.approx(0.75)


def test_more_admitted_at_alpha_beats_fewer_and_a_miss_loses():
    # 200 points, 100 per class; alpha = 0.9. The tolerance of 100 points
    # at alpha = 0.9 is 15 errors.
    assert _tolerated(100, 0.9) == 15
    y = np.repeat([0, 1], 100)
    scorer = make_selective_scorer(alpha=0.9)

    def stub(n_wrong, n_admitted):
        # Per class: the first n_wrong points predicted as the other
        # class; the first n_admitted points admitted.
        prediction, admitted = y.copy(), np.zeros(200, dtype=bool)
        for start in (0, 100):
            prediction[start:start + n_wrong] = 1 - y[start]
            admitted[start:start + n_admitted] = True
        return StubSDM([0, 1], prediction, admitted)

    fewer = scorer(stub(0, 50), _X(200), y)  # 100 admitted, all right
    more = scorer(stub(0, 80), _X(200), y)  # 160 admitted, all right
    at_alpha = scorer(stub(10, 100), _X(200), y)  # all admitted, 0.9
    missing = scorer(stub(20, 100), _X(200), y)  # all admitted, 0.8
    assert fewer == pytest.approx(0.5)
    assert more == pytest.approx(0.8)
    assert at_alpha == pytest.approx(1.0)
    # Every group: 100 points, 20 errors, 15 tolerated -> 5 excess; four
    # groups, lambda = 10: (200 - 10 * 20) / 200 = 0.
    assert missing == pytest.approx(0.0)
    assert missing < fewer < more < at_alpha


@pytest.mark.filterwarnings("error")
def test_nothing_admitted_scores_zero_without_warning():
    y = np.array(["x", "y", "y"])
    stub = StubSDM(["x", "y"], ["y", "y", "x"], [False, False, False])
    assert make_selective_scorer()(stub, _X(3), y) == 0.0


def test_conservative_estimator_uses_the_lower_column():
    y = np.array([0, 0, 1, 1])
    stub = StubSDM([0, 1], y, admitted=[True, True, True, False],
                   admitted_lower=[True, False, False, False], conservative=True)
    assert make_selective_scorer()(stub, _X(4), y) == pytest.approx(0.25)
    stub.conservative = False
    assert make_selective_scorer()(stub, _X(4), y) == pytest.approx(0.75)


LABEL_KINDS = {
    "int": lambda codes: codes * 5 + 2,
    "bool": lambda codes: codes.astype(bool),
    "str": lambda codes: np.array(["neg", "pos"])[codes],
    "object": lambda codes: np.array(["neg", "pos"], dtype=object)[codes],
    "pandas-str": lambda codes: pd.Series(np.array(["neg", "pos"])[codes],
                                          dtype="str"),
    "pandas-category": lambda codes: pd.Series(np.array(["neg", "pos"])[codes],
                                               dtype="category"),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_label_kind_gives_the_same_score(kind):
    as_labels = LABEL_KINDS[kind]
    codes_true = np.array([0, 0, 0, 1, 1, 1])
    codes_pred = np.array([0, 1, 0, 1, 1, 0])
    admitted = [True, True, True, True, False, False]
    y_true = as_labels(codes_true)
    classes = np.unique(np.asarray(y_true))
    stub = StubSDM(classes, np.asarray(as_labels(codes_pred)), admitted)
    reference = StubSDM([0, 1], codes_pred, admitted)
    expected = make_selective_scorer()(reference, _X(6), codes_true)
    assert make_selective_scorer()(stub, _X(6), y_true) == expected


def test_labels_of_another_kind_raise_and_unknown_ones_warn():
    stub = StubSDM([0, 1], [0, 1], [True, True])
    scorer = make_selective_scorer()
    with pytest.raises(ValueError, match=r"Mix of label input types \(y: strings"):
        scorer(stub, _X(2), np.array(["0", "1"]))
    with pytest.warns(UserWarning, match=r"not among the estimator's classes_"):
        # The point of the unseen class 2 is admitted and wrong: class 2
        # and predicted 1 each hold 1 point and 1 error, 0 tolerated;
        # lambda = min(20, 2) = 2: (2 - 2 * 2) / 2 = -1.
        assert scorer(stub, _X(2), np.array([0, 2])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="Input y contains missing"):
        scorer(stub, _X(2), np.array([0, np.nan]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        scorer(StubSDM([0, 1], [0, 1, 1], [True] * 3), _X(3), np.array([0, 1]))


def test_non_boolean_admitted_column_raises():
    stub = StubSDM([0, 1], [0, 1], [True, True])
    stub.predict_uncertainty = lambda X: pd.DataFrame(
        {"prediction": [0, 1], "admitted": [0.5, 1.0]}
    )
    with pytest.raises(ValueError, match="admitted must be a boolean mask"):
        make_selective_scorer()(stub, _X(2), np.array([0, 1]))


def test_pipeline_ending_in_sdm_is_scored_through_its_last_step():
    # A Pipeline is what users put in GridSearchCV: a scorer that fails on
    # it turns every score into NaN and makes best_params_ arbitrary.
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=300, n_features=6, n_informative=4,
                               class_sep=2.0, random_state=0)
    X_fit, y_fit, X_test, y_test = X[:200], y[:200], X[200:], y[200:]
    params = dict(n_iterations=1, n_epochs=5, alpha=0.8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), SDMClassifier(**params))
        pipe.fit(X_fit, y_fit)
    scorer = make_selective_scorer()
    by_hand = scorer(pipe[-1], pipe[:-1].transform(X_test), y_test)
    assert scorer(pipe, X_test, y_test) == by_hand
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            pipe, {"sdmclassifier__alpha": [0.8, 0.9]}, scoring=scorer, cv=2,
            error_score="raise",
        ).fit(X_fit, y_fit)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    with pytest.raises(TypeError, match="or a Pipeline ending in one"):
        scorer(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
               X, y)


def test_estimators_that_cannot_be_scored():
    X, y = make_classification(n_samples=40, random_state=0)
    with pytest.raises(TypeError, match="needs an SDMClassifier"):
        make_selective_scorer()(LogisticRegression().fit(X, y), X, y)
    with pytest.raises(NotFittedError):
        make_selective_scorer()(SDMClassifier(), X, y)


@pytest.mark.parametrize(
    "params",
    [{"alpha": 0.5}, {"alpha": 1.5}, {"alpha": "0.9"}, {"confidence_level": 1.0},
     {"confidence_level": 0.4}],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        make_selective_scorer(**params)


def test_scorer_repr_and_pickle():
    scorer = make_selective_scorer(alpha=0.9, confidence_level=0.99)
    assert repr(scorer) == "make_selective_scorer(alpha=0.9, confidence_level=0.99)"
    copy = pickle.loads(pickle.dumps(scorer))
    y = np.array([0, 1])
    stub = StubSDM([0, 1], y, [True, False])
    assert copy(stub, _X(2), y) == scorer(stub, _X(2), y) == 0.5


# --- In GridSearchCV --------------------------------------------------------


class PolicyClassifier(ClassifierMixin, BaseEstimator):
    """A stand-in for SDMClassifier whose admission policy is a parameter.

    ``X[:, 0]`` holds the true class code and ``X[:, 1]`` a difficulty: 0
    (easy), 1 (medium) or 2 (hard). "wide" admits every point and is wrong
    on the hard ones; "narrow" admits the easy ones only and is wrong on
    the medium and hard ones.
    """

    def __init__(self, policy="wide"):
        self.policy = policy

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.alpha = 0.9
        self.conservative = False
        return self

    def _columns(self, X):
        codes, difficulty = X[:, 0].astype(int), X[:, 1]
        wrong = difficulty >= (2 if self.policy == "wide" else 1)
        prediction = self.classes_[np.where(wrong, 1 - codes, codes)]
        admitted = difficulty <= (2 if self.policy == "wide" else 0)
        return prediction, admitted

    def predict(self, X):
        return self._columns(X)[0]

    def predict_uncertainty(self, X):
        prediction, admitted = self._columns(X)
        return pd.DataFrame({"prediction": prediction, "admitted": admitted,
                             "admitted_lower": admitted})


def test_grid_search_picks_the_selective_winner_with_string_labels():
    # Per class, 100 points in a repeated pattern of 5 easy, 2 medium and 3
    # hard ones, so that each of the two unshuffled stratified folds holds
    # 25 easy, 10 medium and 15 hard points of each class.
    codes = np.repeat([0, 1], 100)
    difficulty = np.tile(np.repeat([0, 1, 2], [5, 2, 3]), 20)
    X = np.column_stack([codes, difficulty]).astype(float)
    y = np.array(["cat", "dog"])[codes]

    search = GridSearchCV(
        PolicyClassifier(), {"policy": ["wide", "narrow"]},
        scoring={"selective": make_selective_scorer(), "accuracy": "accuracy"},
        refit="selective", cv=StratifiedKFold(2), n_jobs=1,
    ).fit(X, y)

    results = search.cv_results_
    policies = [params["policy"] for params in results["params"]]
    selective = dict(zip(policies, results["mean_test_selective"], strict=True))
    accuracy = dict(zip(policies, results["mean_test_accuracy"], strict=True))
    # narrow: each fold of 100 points admits its 50 easy ones, all right.
    assert selective["narrow"] == pytest.approx(0.5)
    # wide admits all 100 at accuracy 0.7 < alpha = 0.9. Each of the four
    # groups (true cat, true dog, predicted cat, predicted dog) holds 50
    # points and 15 errors, of which t are tolerated; lambda = 10.
    t = _tolerated(50, 0.9)
    assert t == 9
    assert selective["wide"] == pytest.approx((100 - 10 * 4 * (15 - t)) / 100)
    assert search.best_params_ == {"policy": "narrow"}
    # Plain accuracy of predict would have picked the other policy.
    assert accuracy == pytest.approx({"wide": 0.7, "narrow": 0.5})
    assert search.best_estimator_.classes_.tolist() == ["cat", "dog"]


def test_grid_search_over_sdm_classifier_with_string_labels():
    X, codes = make_classification(
        n_samples=450, n_features=6, n_informative=4, class_sep=3.0,
        random_state=0,
    )
    y = np.array(["neg", "pos"])[codes]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    base = SDMClassifier(alpha=0.9, n_iterations=1, n_epochs=10, random_state=0)
    scorer = make_selective_scorer()
    with warnings.catch_warnings():
        # Small folds may give a small region; that is not under test here.
        warnings.simplefilter("ignore", UserWarning)
        search = GridSearchCV(
            base, {"conservative": [True, False]}, scoring=scorer, cv=cv, n_jobs=1
        ).fit(X, y)
        # The same folds, scored one by one outside the search.
        by_hand = {
            conservative: cross_val_score(
                base.set_params(conservative=conservative), X, y, cv=cv,
                scoring=scorer,
            )
            for conservative in (True, False)
        }
        validated = cross_validate(base, X, y, cv=cv, scoring={"sdm": scorer})

    results = search.cv_results_
    for index, params in enumerate(results["params"]):
        folds = [results[f"split{k}_test_score"][index] for k in range(3)]
        np.testing.assert_allclose(folds, by_hand[params["conservative"]])
    means = {c: scores.mean() for c, scores in by_hand.items()}
    assert search.best_params_["conservative"] == max(means, key=means.get)
    assert means[False] > means[True] > 0  # the lower variant admits fewer
    np.testing.assert_allclose(validated["test_sdm"], by_hand[False])
    assert search.best_estimator_.classes_.tolist() == ["neg", "pos"]
