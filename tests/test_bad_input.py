"""Bad or odd input to SDMClassifier: a clear error or a documented result.

Every case below either raises (type and message pattern) or returns
something whose properties are checked. Fits use ``n_iterations=1,
n_epochs=3``.

================================  ==========  =================================
case                              when        outcome
================================  ==========  =================================
NaN in X                          fit         ValueError "Input X contains NaN"
inf in X                          fit         ValueError "contains infinity"
1-D X                             fit         ValueError "Expected 2D array"
3-D X                             fit         ValueError "Found array with dim 3"
0 samples                         fit         ValueError "0 sample(s)"
one class                         fit         ValueError "at least 2 classes"
class with one sample             fit         ValueError names the class
labels: object array [1, "a"]     fit         ValueError "Unknown label type"
labels: list [1, "a"]             fit         coerced by numpy to strings:
                                              classes_ == ["1", "a"]
strings in X, no producer         fit         ValueError "could not convert"
scipy.sparse csr X                fit         TypeError "dense data is
                                              required ... toarray()"
alpha=0.5                         fit         InvalidParameterError "(0.5, 1"
alpha=0.5000001                   fit         fits; thresholds >= alpha
alpha=1.0                         fit         fits; thresholds all >= 1
                                              (inf without a region)
warmup_fraction=-0.1 / 1.5        fit         InvalidParameterError "[0.0, 1.0]"
True for a number (alpha, ...)    fit,        InvalidParameterError "not a bool"
                                  recalibrate
producer raising in transform     fit         its own error propagates
producer returning NaN            fit         ValueError names the producer
float16 X                         fit         same model as float64 X of the
                                              float16 values
float32 / float64 X               both        finite probabilities, rows sum 1
X scaled by 1e30 / 1e-30          both        finite probabilities, same
                                              predictions as unscaled X
X scaled by 1e300                 both        finite probabilities, same
                                              predictions as unscaled X
NaN / inf / 1-D / 3-D / 0 rows    predict     as at fit (every predict method)
wrong number of features          predict     ValueError "X has 3 features"
strings / sparse                  predict     as at fit
entries beyond float32 range      predict     rejected row by row (q = 0, d = 0,
                                              out_of_distribution); the other
                                              rows unchanged
producer returning NaN for a row  predict     that row rejected the same way
DataFrame: renamed column         predict     ValueError "feature names
                                              should match"
DataFrame: reordered columns      predict     ValueError "same order"
ndarray after DataFrame fit       predict     UserWarning "does not have valid
                                              feature names"; predicts
DataFrame after ndarray fit       predict     UserWarning "has feature names";
                                              predicts
duplicated rows, both labels at   fit and     q (queries and support points,
one point                         predict     self-match skipped) equals brute
                                              force; q = 0 at a point holding
                                              both labels
failed fit on a fitted model      fit         previous state kept: same
                                              attributes, same predict_proba
================================  ==========  =================================
"""

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning

N_SAMPLES, N_FEATURES = 120, 4
PREDICT_METHODS = [
    "predict",
    "predict_proba",
    "decision_function",
    "predict_selective",
    "predict_uncertainty",
    "exemplars",
]


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


X, Y = _data()


def _small(**params):
    return SDMClassifier(n_iterations=1, n_epochs=3, random_state=0, **params)


def _fit(estimator, X, y):
    """Fit, ignoring the absence of a region (small data, few epochs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
        return estimator.fit(X, y)


class RaisingTransformer(TransformerMixin, BaseEstimator):
    """A feature producer whose transform always fails."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise RuntimeError("RaisingTransformer.transform failed on purpose")


class NaNTransformer(TransformerMixin, BaseEstimator):
    """A feature producer that returns NaN in its first row."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        features = np.array(X, dtype=np.float64)
        features[0, 0] = np.nan
        return features


def _with(value, row=3, column=1):
    bad = X.copy()
    bad[row, column] = value
    return bad


def _frame(X):
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])


@pytest.fixture(scope="module")
def fitted():
    """Models fitted once: on the ndarray and on a DataFrame of it."""
    return {
        "array": _fit(_small(), X, Y),
        "frame": _fit(_small(), _frame(X), Y),
    }


# ----------------------------------------------------------- fit-time cases


@dataclass(frozen=True)
class FitCase:
    """``fit(X, y)`` of ``estimator`` and what must come out."""

    id: str
    X: Any
    y: Any
    error: type | None = None
    match: str | None = None
    params: dict | None = None
    check: Any = None


def _check_labels_coerced(model):
    assert_array_equal(model.classes_, np.array(["1", "a"]))


def _check_thresholds_at_least(bound):
    def check(model):
        assert np.all(model.class_thresholds_ >= bound)

    return check


def _check_same_as(X_equivalent):
    """The model equals one fitted on ``X_equivalent``, bit for bit."""

    def check(model):
        reference = _fit(_small(), X_equivalent, Y)
        assert_array_equal(model.predict_proba(X), reference.predict_proba(X))

    return check


FIT_CASES = [
    FitCase("nan", _with(np.nan), Y, ValueError, "Input X contains NaN"),
    FitCase("inf", _with(np.inf), Y, ValueError, "Input X contains infinity"),
    FitCase("one_dimensional", X[:, 0], Y, ValueError, "Expected 2D array"),
    FitCase("three_dimensional", X.reshape(N_SAMPLES, 2, 2), Y, ValueError,
            "Found array with dim 3"),
    FitCase("empty", X[:0], Y[:0], ValueError, r"0 sample\(s\)"),
    FitCase("one_class", X, np.zeros(N_SAMPLES, dtype=int), ValueError,
            "at least 2 classes.*only one class: .*0"),
    FitCase("class_with_one_sample", X, np.r_[7, Y[1:]], ValueError,
            r"at least 2 samples.*only one: \[7\]"),
    FitCase("labels_mixed_object_array", X,
            np.array([1, "a"] * (N_SAMPLES // 2), dtype=object), ValueError,
            "Unknown label type"),
    FitCase("labels_mixed_list", X, [1, "a"] * (N_SAMPLES // 2),
            check=_check_labels_coerced),
    FitCase("strings_without_producer", np.full((N_SAMPLES, 2), "word"), Y,
            ValueError, "could not convert string to float"),
    FitCase("sparse_csr", sp.csr_matrix(X), Y, TypeError,
            r"dense data is required.*toarray\(\)"),
    FitCase("alpha_half", X, Y, InvalidParameterError,
            r"'alpha' parameter.*range \(0\.5, 1\.0\]", params={"alpha": 0.5}),
    FitCase("alpha_just_above_half", X, Y, params={"alpha": 0.5000001},
            check=_check_thresholds_at_least(0.5000001)),
    FitCase("alpha_one", X, Y, params={"alpha": 1.0},
            check=_check_thresholds_at_least(1.0)),
    FitCase("warmup_fraction_negative", X, Y, InvalidParameterError,
            r"'warmup_fraction' parameter.*range \[0\.0, 1\.0\]",
            params={"warmup_fraction": -0.1}),
    FitCase("warmup_fraction_above_one", X, Y, InvalidParameterError,
            r"'warmup_fraction' parameter.*range \[0\.0, 1\.0\]",
            params={"warmup_fraction": 1.5}),
    FitCase("producer_raises", X, Y, RuntimeError, "failed on purpose",
            params={"estimator": RaisingTransformer()}),
    FitCase("producer_returns_nan", X, Y, ValueError,
            r"feature producer NaNTransformer\(\) returned invalid features: "
            "Input contains NaN", params={"estimator": NaNTransformer()}),
    FitCase("float16", X.astype(np.float16), Y,
            check=_check_same_as(X.astype(np.float16).astype(np.float64))),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[case.id for case in FIT_CASES])
def test_fit_bad_input(case):
    estimator = _small(**(case.params or {}))
    if case.error is not None:
        with pytest.raises(case.error, match=case.match):
            _fit(estimator, case.X, case.y)
        assert not hasattr(estimator, "classes_")
    else:
        case.check(_fit(estimator, case.X, case.y))


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64], ids=lambda t: t.__name__
)
def test_float_dtypes_give_finite_probabilities(dtype):
    model = _fit(_small(), X.astype(dtype), Y)
    proba = model.predict_proba(X.astype(dtype))
    assert proba.dtype == np.float64
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


@pytest.fixture(scope="module")
def unscaled_predictions(fitted):
    return fitted["array"].predict(X)


@pytest.mark.parametrize("factor", [1e30, 1e-30, 1e300], ids=str)
def test_extreme_magnitudes_fit_and_predict(factor, unscaled_predictions):
    # Per-feature standardization makes the scale irrelevant as long as the
    # standardized features are representable.
    model = _fit(_small(), X * factor, Y)
    proba = model.predict_proba(X * factor)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(model.predict(X * factor), unscaled_predictions)
    frame = model.predict_uncertainty(X * factor)
    assert np.all(np.isfinite(frame["d_nearest"]))


# ------------------------------------------------------- predict-time cases


@dataclass(frozen=True)
class PredictCase:
    """A predict-time call on the model fitted on ``model_input``."""

    id: str
    X: Any
    error: type | None = None
    match: str | None = None
    warning: type | None = None
    model_input: str = "array"


PREDICT_CASES = [
    PredictCase("nan", _with(np.nan), ValueError, "Input X contains NaN"),
    PredictCase("inf", _with(-np.inf), ValueError, "Input X contains infinity"),
    PredictCase("one_dimensional", X[0], ValueError, "Expected 2D array"),
    PredictCase("three_dimensional", X.reshape(N_SAMPLES, 2, 2), ValueError,
                "Found array with dim 3"),
    PredictCase("empty", X[:0], ValueError, r"0 sample\(s\)"),
    PredictCase("wrong_n_features", X[:, :3], ValueError,
                "X has 3 features, but SDMClassifier is expecting 4"),
    PredictCase("strings", np.full((5, N_FEATURES), "word"), ValueError,
                "could not convert string to float"),
    PredictCase("sparse_csr", sp.csr_matrix(X), TypeError,
                r"dense data is required.*toarray\(\)"),
    PredictCase("frame_renamed_column",
                _frame(X).rename(columns={"f0": "other"}), ValueError,
                "feature names should match", model_input="frame"),
    PredictCase("frame_reordered_columns", _frame(X)[["f1", "f0", "f2", "f3"]],
                ValueError, "same order", model_input="frame"),
    PredictCase("array_after_frame_fit", X, warning=UserWarning,
                match="X does not have valid feature names",
                model_input="frame"),
    PredictCase("frame_after_array_fit", _frame(X), warning=UserWarning,
                match="X has feature names, but SDMClassifier was fitted "
                "without"),
]


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize(
    "case", PREDICT_CASES, ids=[case.id for case in PREDICT_CASES]
)
def test_predict_bad_input(case, method, fitted):
    predict = getattr(fitted[case.model_input], method)
    if case.error is not None:
        with pytest.raises(case.error, match=case.match):
            predict(case.X)
        return
    with pytest.warns(case.warning, match=case.match):
        out = predict(case.X)
    reference = getattr(fitted[case.model_input], method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = reference(np.asarray(case.X))
    # Names aside, the same numbers go in: the outputs are identical.
    assert_array_equal(np.asarray(out), np.asarray(expected))


# ------------------------------------------------------------ duplicated rows


def _brute_force_q(query_exemplars, query_predictions, support_exemplars,
                   support_good, max_similarity, self_indices=None):
    """q from its sorted definition: the run of good points, bad first on ties.

    ``support_good[j]`` is the class support point ``j`` is good for, -1 if
    none.
    """
    q = np.empty(len(query_exemplars), dtype=np.int64)
    for i, (point, label) in enumerate(
        zip(query_exemplars, query_predictions, strict=True)
    ):
        distances = np.linalg.norm(support_exemplars - point, axis=1)
        good = support_good == label
        keep = np.ones(len(distances), dtype=bool)
        if self_indices is not None:
            keep[self_indices[i]] = False
        # Sort by distance, bad points before good ones at equal distance.
        order = np.lexsort((good[keep], distances[keep]))
        run = np.cumprod(good[keep][order])
        q[i] = min(int(run.sum()), max_similarity)
    return q


@pytest.fixture(scope="module")
def duplicated():
    """Locations repeated 4 times; the first 5 carry both labels."""
    rng = np.random.default_rng(3)
    locations = rng.normal(size=(20, 3))
    location_labels = (locations[:, 0] > 0).astype(np.int64)
    X_dup = np.repeat(locations, 4, axis=0)
    y_dup = np.repeat(location_labels, 4)
    mixed = np.arange(5)
    for location in mixed:
        y_dup[4 * location : 4 * location + 2] = 1 - location_labels[location]
    unique = rng.normal(size=(60, 3))
    X_all = np.vstack([X_dup, unique])
    y_all = np.r_[y_dup, (unique[:, 0] > 0).astype(np.int64)]
    model = _fit(_small(), X_all, y_all)
    return model, locations, mixed


def test_duplicated_support_points_are_exact_ties(duplicated):
    model, _, _ = duplicated
    exemplars = model.support_exemplars_
    _, first, counts = np.unique(
        exemplars.round(4), axis=0, return_index=True, return_counts=True
    )
    # Rows that agree to 4 decimals come from one location and are identical.
    for index, count in zip(first, counts, strict=True):
        if count > 1:
            same = np.all(np.abs(exemplars - exemplars[index]) < 1e-4, axis=1)
            assert np.all(exemplars[same] == exemplars[index])


def test_duplicated_rows_q_of_queries_matches_brute_force(duplicated):
    model, locations, mixed = duplicated
    frame = model.predict_uncertainty(locations)
    class_index = np.searchsorted(model.classes_, frame["prediction"])
    support_labels = np.searchsorted(model.classes_, model.support_labels_)
    support_predictions = np.searchsorted(
        model.classes_, model.support_predictions_
    )
    support_good = np.where(
        support_predictions == support_labels, support_predictions, -1
    )
    expected = _brute_force_q(
        model.exemplars(locations), class_index, model.support_exemplars_,
        support_good, model.max_similarity_,
    )
    assert_array_equal(frame["q"].to_numpy(), expected)
    # A location whose support copies carry both labels holds a bad point at
    # the query's own distance: the pessimistic tie rule gives q = 0.
    exemplars = model.support_exemplars_
    for location in mixed:
        here = np.linalg.norm(
            exemplars - model.exemplars(locations[[location]]), axis=1
        ) < 1e-4
        if len(np.unique(model.support_labels_[here])) == 2:
            assert frame["q"].iloc[location] == 0


def test_duplicated_rows_self_match_skips_only_itself(duplicated):
    model, _, _ = duplicated
    support = model._model.index.support
    good = support.good_labels
    predictions = model._model.index.predictions
    self_indices = np.arange(support.n_support)
    q, nearest, _ = support.search(
        support.vectors, predictions, model.max_similarity_,
        self_indices=self_indices,
    )
    expected = _brute_force_q(
        model.support_exemplars_, predictions, model.support_exemplars_, good,
        model.max_similarity_, self_indices=self_indices,
    )
    assert_array_equal(q, expected)
    assert not np.any(nearest == self_indices)


# ------------------------------------------------------- failed refit is inert


def _failing_refits():
    frame = _frame(X)
    return {
        "nan_in_X": (lambda model: model.fit(_with(np.nan), Y), ValueError),
        # Fails after validate_data has recorded 5 features.
        "one_class_other_width": (
            lambda model: model.fit(np.ones((10, 5)), np.zeros(10)), ValueError,
        ),
        # Fails after validate_data has recorded feature names.
        "frame_class_with_one_sample": (
            lambda model: model.fit(frame, np.r_[7, Y[1:]]), ValueError,
        ),
        # Fails inside the first training iteration.
        "producer_raises": (
            lambda model: model.set_params(estimator=RaisingTransformer()).fit(
                X, Y
            ),
            RuntimeError,
        ),
        "invalid_parameter": (
            lambda model: model.set_params(n_epochs=0).fit(X, Y),
            InvalidParameterError,
        ),
    }


@pytest.mark.parametrize("failure", list(_failing_refits()))
def test_failed_fit_keeps_previous_state(failure):
    model = _fit(_small(), X, Y)
    before_state = dict(vars(model))
    before = model.predict_proba(X)
    refit, error = _failing_refits()[failure]
    with pytest.raises(error):
        refit(model)
    params = set(model.get_params())
    fitted_state = {k: v for k, v in vars(model).items() if k not in params}
    assert fitted_state.keys() == {
        k for k in before_state if k not in params
    }
    for name, value in fitted_state.items():
        assert value is before_state[name], name
    assert not hasattr(model, "feature_names_in_")
    assert_array_equal(model.predict_proba(X), before)


@pytest.mark.parametrize("name", ["alpha", "confidence", "warmup_fraction",
                                  "calibration_size", "n_iterations", "n_epochs",
                                  "batch_size", "learning_rate", "n_jobs"])
def test_a_bool_is_not_a_number(name):
    X, y = make_classification(60, random_state=0)
    clf = SDMClassifier(**{name: True})
    with pytest.raises(ValueError, match=f"'{name}' parameter .* must be"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


def test_recalibrate_refuses_a_bool_and_keeps_the_model():
    X, y = make_classification(300, random_state=0)
    clf = SDMClassifier(n_iterations=1, alpha=0.8, random_state=0).fit(X, y)
    before = clf.predict_uncertainty(X)
    with pytest.raises(ValueError, match="'alpha' parameter .* not a bool"):
        clf.recalibrate(True)
    assert clf.alpha == 0.8
    assert before.equals(clf.predict_uncertainty(X))


class RowNaNTransformer(TransformerMixin, BaseEstimator):
    """A feature producer that returns NaN for rows whose first input is 0."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        features = np.array(X, dtype=np.float64)
        features[features[:, 0] == 0.0] = np.nan
        return features


@pytest.mark.parametrize("case", ["beyond_float32", "producer_nan"])
def test_rows_that_cannot_be_placed_are_rejected_one_by_one(case):
    X_fit, y_fit = make_classification(300, n_features=4, n_informative=3,
                                       n_redundant=0, random_state=0)
    estimator = RowNaNTransformer() if case == "producer_nan" else None
    clf = SDMClassifier(estimator, n_iterations=1, alpha=0.8,
                        random_state=0).fit(X_fit, y_fit)
    queries = X_fit[:40].copy()
    bad = np.zeros(len(queries), dtype=bool)
    bad[[0, 7, 39]] = True
    if case == "producer_nan":
        queries[bad, 0] = 0.0
    else:
        queries[0, 1], queries[7, 2], queries[39, 0] = 1e39, -1e300, 1e308
    frame = clf.predict_uncertainty(queries)
    reference = clf.predict_uncertainty(queries[~bad])
    assert frame["admitted"].to_numpy()[~bad].any()
    pd.testing.assert_frame_equal(frame[~bad].reset_index(drop=True), reference)
    rejected = frame[bad]
    assert (rejected["reason"] == "out_of_distribution").all()
    assert not rejected["admitted"].any() and not rejected["admitted_lower"].any()
    assert (rejected["q"] == 0).all() and (rejected["d"] == 0).all()
    assert np.isinf(rejected["d_nearest"]).all()
    assert (rejected["nearest_support_index"] == -1).all()
    assert (rejected["assigned_alpha"] == 0).all()
    assert_allclose(clf.predict_proba(queries)[bad], 0.5)
    selective = clf.predict_selective(queries)
    assert (selective[bad] == clf.rejection_label_).all()
    assert_array_equal(selective[~bad], clf.predict_selective(queries[~bad]))
    assert_array_equal(clf.predict(queries)[~bad], clf.predict(queries[~bad]))
