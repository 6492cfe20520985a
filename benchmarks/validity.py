"""Empirical conditional validity of the HIGH-RELIABILITY region.

For many seeds and several kinds of synthetic data, fit ``SDMClassifier`` and
two calibrated logistic regressions on one draw, then measure on a fresh
test draw of the same distribution (exchangeable) and on shifted copies of
it how often the accuracy of admitted points, per true class and per
predicted class, falls below ``alpha``.

Methods compared on the same draws:

- ``sdm``: ``predict_uncertainty(X)["admitted"]`` (SDM_HR, eq. 9).
- ``sdm_lower``: ``predict_uncertainty(X)["admitted_lower"]`` (the DKW
  variant of the method page, paper A.5).
- ``sigmoid``, ``isotonic``: ``CalibratedClassifierCV(LogisticRegression(),
  method=...)`` admitting ``max(predict_proba) >= alpha``.

Run from the repository root::

    python benchmarks/validity.py --seeds 100

The table is printed; ``benchmarks/VALIDITY.md`` holds a copy with the
reading of the columns.
"""

import argparse
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_blobs, make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning
from sdm_sklearn.metrics import selective_report

ALPHA = 0.95
# A class (true or predicted) counts only with at least this many admitted
# test points: below it one error already moves the accuracy by 0.1.
MIN_ADMITTED = 10
N_FIT = 2000
N_TEST = 2000
SDM_PARAMS = {"n_iterations": 1, "n_epochs": 20}

_CLASSIFICATION = {"n_features": 10, "n_informative": 5, "n_redundant": 2}
KINDS = {
    "separated": partial(make_classification, class_sep=2.0, **_CLASSIFICATION),
    "overlapping": partial(make_classification, class_sep=1.0, **_CLASSIFICATION),
    "imbalanced": partial(
        make_classification, class_sep=1.5, weights=[0.85], **_CLASSIFICATION
    ),
    "multiclass": partial(make_blobs, n_features=10, centers=4, cluster_std=4.0),
}

# Shifts of the test features, in units of the per-feature standard
# deviation of the fitting data.
TRANSLATION = 1.0
SCALE_FACTOR = 2.0
FAR_FRACTION = 0.2
FAR_DISTANCE = 10.0
SHIFTS = ("none", "translate", "scale", "far")


def shift_features(X_test, X_fit, shift, rng):
    """A shifted copy of the test features (labels are kept as they are).

    Parameters
    ----------
    X_test, X_fit : ndarray of shape (n_samples, n_features)
    shift : {"none", "translate", "scale", "far"}
        ``translate`` adds ``TRANSLATION`` standard deviations to every
        feature; ``scale`` stretches the test set by ``SCALE_FACTOR`` about
        the mean of the fitting data; ``far`` moves a random
        ``FAR_FRACTION`` of the test points by ``FAR_DISTANCE`` standard
        deviations per feature, with random signs.
    rng : numpy.random.Generator

    Returns
    -------
    X_shifted : ndarray of shape (n_samples, n_features)
    """
    mean, std = X_fit.mean(axis=0), X_fit.std(axis=0)
    if shift == "none":
        return X_test
    if shift == "translate":
        return X_test + TRANSLATION * std
    if shift == "scale":
        return mean + SCALE_FACTOR * (X_test - mean)
    shifted = X_test.copy()
    moved = rng.random(len(X_test)) < FAR_FRACTION
    signs = rng.choice([-1.0, 1.0], size=X_test.shape[1])
    shifted[moved] += FAR_DISTANCE * std * signs
    return shifted


def fit_selectors(X, y, seed):
    """Fit every method on one draw.

    Returns
    -------
    select : callable
        ``select(X_test)`` gives ``{method: (y_pred, admitted)}``.
    no_region : bool
        Whether SDMClassifier found no HIGH-RELIABILITY region.
    """
    sdm = SDMClassifier(alpha=ALPHA, random_state=seed, **SDM_PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
        sdm.fit(X, y)
    calibrated = {
        method: CalibratedClassifierCV(
            LogisticRegression(max_iter=1000), method=method
        ).fit(X, y)
        for method in ("sigmoid", "isotonic")
    }

    def select(X_test):
        frame = sdm.predict_uncertainty(X_test)
        prediction = frame["prediction"].to_numpy()
        out = {
            "sdm": (prediction, frame["admitted"].to_numpy()),
            "sdm_lower": (prediction, frame["admitted_lower"].to_numpy()),
        }
        for method, model in calibrated.items():
            proba = model.predict_proba(X_test)
            out[method] = (
                model.classes_[np.argmax(proba, axis=1)],
                proba.max(axis=1) >= ALPHA,
            )
        return out

    return select, not np.isfinite(sdm.min_rescaled_similarity_)


def conditional_accuracies(y_true, y_pred, admitted, classes):
    """Class- and prediction-conditional accuracies of well-populated cells."""
    report = selective_report(y_true, y_pred, admitted, labels=classes)
    report = report.drop(index="marginal")
    by_class = report.loc[report["class_admitted"] >= MIN_ADMITTED, "class_accuracy"]
    by_prediction = report.loc[
        report["prediction_admitted"] >= MIN_ADMITTED, "prediction_accuracy"
    ]
    return by_class.to_numpy(float), by_prediction.to_numpy(float)


def run(n_seeds):
    """One record per kind, seed, shift and method."""
    records = []
    for kind, make in KINDS.items():
        for seed in range(n_seeds):
            X, y = make(n_samples=N_FIT + N_TEST, random_state=seed)
            X_fit, y_fit, X_test, y_test = X[:N_FIT], y[:N_FIT], X[N_FIT:], y[N_FIT:]
            classes = np.unique(y_fit)
            select, no_region = fit_selectors(X_fit, y_fit, seed)
            rng = np.random.default_rng(seed)
            for shift in SHIFTS:
                X_shifted = shift_features(X_test, X_fit, shift, rng)
                for method, (y_pred, admitted) in select(X_shifted).items():
                    by_class, by_prediction = conditional_accuracies(
                        y_test, y_pred, admitted, classes
                    )
                    records.append({
                        "kind": kind,
                        "shift": shift,
                        "method": method,
                        "no_region": no_region if method.startswith("sdm") else np.nan,
                        "admitted": admitted.mean(),
                        "by_class": by_class,
                        "by_prediction": by_prediction,
                    })
    return pd.DataFrame(records)


def _shortfalls(accuracy_arrays, prefix):
    """Cells, rate below alpha, mean and max shortfall below alpha."""
    accuracies = np.concatenate(list(accuracy_arrays))
    short = ALPHA - accuracies[accuracies < ALPHA]
    return {
        f"{prefix}_cells": len(accuracies),
        f"{prefix}_below": np.mean(accuracies < ALPHA) if len(accuracies) else np.nan,
        f"{prefix}_mean_short": short.mean() if len(short) else 0.0,
        f"{prefix}_max_short": short.max() if len(short) else 0.0,
    }


def summarize(records):
    """The validity table: one row per kind, shift and method."""
    rows = []
    for (kind, shift, method), group in records.groupby(
        ["kind", "shift", "method"], sort=False
    ):
        rows.append({
            "kind": kind,
            "shift": shift,
            "method": method,
            "admitted": group["admitted"].mean(),
            "none_admitted": (group["admitted"] == 0).mean(),
            "no_region": group["no_region"].mean(),
            **_shortfalls(group["by_class"], "cls"),
            **_shortfalls(group["by_prediction"], "pred"),
        })
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=100, help="number of seeds (default: 100)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    # One BLAS thread: the products are small, and on a shared machine more
    # threads made the logistic regressions many times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        table = summarize(run(args.seeds))
    elapsed = time.perf_counter() - start
    print(
        f"alpha={ALPHA}, seeds={args.seeds}, n_fit={N_FIT}, n_test={N_TEST}, "
        f"SDMClassifier({', '.join(f'{k}={v}' for k, v in SDM_PARAMS.items())}), "
        f"cells need >= {MIN_ADMITTED} admitted"
    )
    with pd.option_context("display.width", 250, "display.max_rows", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"elapsed: {elapsed:.0f} s")


if __name__ == "__main__":
    main()
