"""scikit-learn's common estimator checks on SDMClassifier."""

import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from sdm_sklearn import SDMClassifier

# The checks' tiny data sets rarely have a HIGH-RELIABILITY region; the
# warning saying so is expected.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sdm_sklearn.NoHighReliabilityRegionWarning"
)

ESTIMATORS = [
    SDMClassifier(n_iterations=1, n_epochs=5, random_state=0),
    SDMClassifier(
        estimator=StandardScaler(), n_iterations=1, n_epochs=5, random_state=0
    ),
    # The input tags follow the producer: this one accepts NaN and removes it.
    SDMClassifier(
        estimator=SimpleImputer(), n_iterations=1, n_epochs=5, random_state=0
    ),
    # A classifier as base model: its cross-fitted responses are the features.
    SDMClassifier(
        estimator=LogisticRegression(), n_iterations=1, n_epochs=5, random_state=0
    ),
]
IDS = ["raw", "scaler", "imputer", "classifier"]


# Weights are not copies: an integer weight counts a point k times in the
# losses, but k copies would also be k support points (q counts them) and k
# calibration points of the region's test, which weights deliberately are
# not (see SDMClassifier.fit). test_sample_weight.py tests what holds.
WEIGHTS_ARE_NOT_COPIES = {
    name: "an integer weight is not a repeated row in the support set or the "
    "region's test (see SDMClassifier.fit)"
    for name in ("check_sample_weight_equivalence_on_dense_data",
                 "check_sample_weight_equivalence_on_sparse_data")
}


def _expected_failed_checks(estimator):
    """The producers' tags say what they accept, not what they return.

    StandardScaler accepts NaN and returns it, SimpleImputer accepts sparse
    input and returns it sparse; SDMClassifier then rejects those features
    with a clear error. A classifier needs two support points per class.
    """
    if isinstance(estimator.estimator, StandardScaler):
        return {**WEIGHTS_ARE_NOT_COPIES,
                "check_estimators_pickle": "StandardScaler returns NaN"}
    if isinstance(estimator.estimator, SimpleImputer):
        return {**WEIGHTS_ARE_NOT_COPIES,
                "check_estimator_sparse_tag": "SimpleImputer returns sparse data"}
    if isinstance(estimator.estimator, LogisticRegression):
        return {**WEIGHTS_ARE_NOT_COPIES, "check_fit2d_1feature": (
            "its 10 samples leave a class with one support point, too few for "
            "cross-fitted responses; the error says so"
        )}
    return dict(WEIGHTS_ARE_NOT_COPIES)


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_input_tags_follow_the_producer():
    from sklearn.decomposition import TruncatedSVD
    from sklearn.utils import get_tags

    assert not get_tags(SDMClassifier()).input_tags.sparse
    assert not get_tags(SDMClassifier()).input_tags.allow_nan
    assert get_tags(SDMClassifier(TruncatedSVD())).input_tags.sparse
    assert get_tags(SDMClassifier(ESTIMATORS[2].estimator)).input_tags.allow_nan


# parametrize_with_checks does not run the two checks below.
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_dataframe_column_names_consistency(estimator):
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
