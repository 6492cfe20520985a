"""What the metrics, displays and report share about SDM estimators.

The public modules that rate a fitted SDMClassifier (or a Pipeline ending in
one) on labelled data find the estimator that answers here, check it and
read its ``predict_uncertainty`` frame; :func:`step_area` is the area under
a risk-coverage curve, which the metrics compute and the displays draw.
"""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import check_is_fitted

from ._validation import check_y_against_classes


def final_sdm(estimator):
    """The SDM estimator that answers for ``estimator``: itself, or the last
    step of a :class:`~sklearn.pipeline.Pipeline` ending in one."""
    if isinstance(estimator, Pipeline) and len(estimator) > 0:
        final = estimator[-1]
        if hasattr(final, "predict_uncertainty"):
            check_is_fitted(estimator)
            return final
    return estimator


def sdm_and_inputs(estimator, X):
    """The SDM estimator that answers for ``estimator``, and its input.

    A :class:`~sklearn.pipeline.Pipeline` ending in an SDMClassifier answers
    through its last step, on ``X`` transformed by the steps before it.
    """
    final = final_sdm(estimator)
    if final is not estimator and len(estimator) > 1:
        X = estimator[:-1].transform(X)
    return final, X


def check_sdm_estimator(estimator, caller):
    """A fitted estimator that offers ``predict_uncertainty``."""
    if not hasattr(estimator, "predict_uncertainty"):
        raise TypeError(
            f"{caller} needs an SDMClassifier, or a Pipeline ending in one "
            f"(an estimator with predict_uncertainty); got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator)


def uncertainty_of(estimator, X, y, caller):
    """Checked labels, the ``predict_uncertainty`` frame and its estimator.

    For the callers that rate a fitted SDMClassifier (or a Pipeline ending
    in one) on labelled data (the scorer and the displays); warnings point
    at the caller's caller.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    frame : pandas.DataFrame
    sdm : SDMClassifier
        The estimator whose frame it is (the last step of a Pipeline).
    """
    sdm, X = sdm_and_inputs(estimator, X)
    check_sdm_estimator(sdm, caller)
    y = check_y_against_classes(y, sdm.classes_, stacklevel=4)
    frame = sdm.predict_uncertainty(X)
    check_consistent_length(y, frame)
    return y, frame, sdm


def step_area(coverage, risk):
    """Area under the steps of a risk-coverage curve, from coverage 0."""
    return float(np.dot(risk, np.diff(coverage, prepend=0.0)))
