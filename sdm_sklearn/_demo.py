"""The main job: SDMClassifier against softmax calibration under shift.

``python -m sdm_sklearn demo`` fits every estimator on the same digits
features and prints the selective table of each on an in-distribution, a
covariate-shifted and a far out-of-distribution test set.
"""

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .classifier import SDMClassifier
from .datasets import make_shifted_digits
from .exceptions import NoHighReliabilityRegionWarning
from .metrics import format_selective_report, selective_report


def _softmax_baselines(random_state):
    """Peers that admit a prediction when its top probability reaches alpha."""

    def logistic():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    baselines = {"softmax threshold": logistic()}
    for method in ("sigmoid", "isotonic", "temperature"):
        baselines[f"CalibratedClassifierCV({method})"] = CalibratedClassifierCV(
            logistic(), method=method, cv=5
        )
    return baselines


def _threshold_selector(estimator, alpha):
    def select(X):
        proba = estimator.predict_proba(X)
        prediction = estimator.classes_[np.argmax(proba, axis=1)]
        return prediction, proba.max(axis=1) >= alpha

    return select


def _sdm_selector(estimator, conservative):
    column = "admitted_lower" if conservative else "admitted"

    def select(X):
        frame = estimator.predict_uncertainty(X)
        return frame["prediction"].to_numpy(), frame[column].to_numpy()

    return select


def summary_row(report):
    """Marginal accuracy, admitted fraction and the worst conditional ones.

    Parameters
    ----------
    report : pandas.DataFrame
        Output of :func:`sdm_sklearn.metrics.selective_report`.

    Returns
    -------
    row : dict
    """
    classes = report.drop(index="marginal")
    return {
        "admitted": report.loc["marginal", "class_fraction"],
        "accuracy": report.loc["marginal", "class_accuracy"],
        "worst class acc": classes["class_accuracy"].min(),
        "worst prediction acc": classes["prediction_accuracy"].min(),
    }


def run_demo(*, alpha=0.95, random_state=0, tables=True):
    """Fit SDMClassifier and softmax-calibration peers; tabulate admissions.

    Parameters
    ----------
    alpha : float, default=0.95
        Target accuracy: SDMClassifier's alpha, and the probability threshold
        of the softmax-based peers.
    random_state : int, default=0
        Seeds the data split, the corruptions and SDMClassifier.
    tables : bool, default=True
        Print every selective table before the summary.

    Returns
    -------
    summary : pandas.DataFrame
        One row per (estimator, test set): admitted fraction, marginal
        accuracy among admitted, worst class- and prediction-conditional
        accuracy among admitted.
    """
    X_train, y_train, test_sets = make_shifted_digits(random_state=random_state)
    sdm = SDMClassifier(alpha=alpha, random_state=random_state)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("always", NoHighReliabilityRegionWarning)
        sdm.fit(X_train, y_train)
    fit_seconds = {"SDMClassifier": time.perf_counter() - start}
    selectors = {
        "SDMClassifier": _sdm_selector(sdm, conservative=False),
        "SDMClassifier(conservative)": _sdm_selector(sdm, conservative=True),
    }
    for name, estimator in _softmax_baselines(random_state).items():
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_seconds[name] = time.perf_counter() - start
        selectors[name] = _threshold_selector(estimator, alpha)

    rows = []
    for name, select in selectors.items():
        for test_name, (X, y) in test_sets.items():
            prediction, admitted = select(X)
            report = selective_report(y, prediction, admitted, labels=sdm.classes_)
            if tables:
                print(format_selective_report(report, title=f"{name} | {test_name}"))
                print()
            rows.append({"estimator": name, "test set": test_name,
                         **summary_row(report)})
    summary = pd.DataFrame(rows).set_index(["estimator", "test set"])
    print(f"alpha = {alpha}; digits (8x8 pixels as features), "
          f"{len(y_train)} training images, {len(y)} per test set")
    print("fit seconds: " + ", ".join(
        f"{name} {seconds:.2f}" for name, seconds in fit_seconds.items()))
    print(f"SDMClassifier region: q'_min = {sdm.min_rescaled_similarity_:.3g}")
    print(summary.to_string(float_format="{:.3f}".format, na_rep="-"))
    return summary
