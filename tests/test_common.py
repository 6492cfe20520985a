"""scikit-learn's common estimator checks on SDMClassifier."""

import pytest
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
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# parametrize_with_checks does not run the two checks below.
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["raw", "scaler"])
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["raw", "scaler"])
def test_dataframe_column_names_consistency(estimator):
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
