"""Empirical conditional validity of the HIGH-RELIABILITY region.

For many seeds and several kinds of synthetic data, fit ``SDMClassifier`` and
two calibrated logistic regressions on one draw, then measure on a fresh
test draw of the same distribution (exchangeable) and on shifted copies of
it how often the accuracy of admitted points, per true class and per
predicted class, falls below the level it was admitted at.

Methods compared on the same draws (one SDM training per draw; the other SDM
methods are recalibrations of it, which give the same outputs as a fit):

- ``sdm``: column ``admitted`` of ``predict_uncertainty`` (SDM_HR, eq. 9)
  with the default ``confidence`` (the tested region of the method page).
- ``sdm_lower``: column ``admitted_lower`` of the same model (the DKW
  variant of the method page, paper A.5).
- ``certified``: column ``admitted`` with ``confidence=0.95``.
- ``paper``: column ``admitted`` with ``confidence=None`` (the paper's
  Alg. 1).
- ``sigmoid``, ``isotonic``: ``CalibratedClassifierCV(LogisticRegression(),
  method=...)`` admitting ``max(predict_proba) >= level``.

Every method is read at each level of ``LEVELS``: the SDM methods through
the ladder (``alpha=min(LEVELS)``, ``alpha_levels=LEVELS``, a point counts
at a level when ``assigned_alpha >= level``), the others by their threshold.

Run from the repository root::

    python benchmarks/validity.py --seeds 100

The table is printed; ``benchmarks/VALIDITY.md`` holds a copy with the
reading of the columns.
"""

import argparse
import copy
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_blobs, make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import (
    NoHighReliabilityRegionWarning,
    SmallRegionWarning,
)
from sdm_sklearn.metrics import selective_report

LEVELS = (0.95, 0.9, 0.8)
# method -> confidence of the region (the default is SDMClassifier's)
CONFIDENCES = {
    "sdm": SDMClassifier().confidence,
    "certified": 0.95,
    "paper": None,
}
# A cell (one seed and class, true or predicted) counts only with at least
# this many admitted test points.
MIN_ADMITTED = 10
# A cell fails when a one-sided exact binomial test rejects "accuracy >=
# level" at this significance: a procedure whose cells all reach the level
# fails at most this often by chance.
SIGNIFICANCE = 0.05
N_TEST = 2000
SDM_PARAMS = {"n_iterations": 1, "n_epochs": 20}

_CLASSIFICATION = {"n_features": 10, "n_informative": 5, "n_redundant": 2}
# kind -> (generator, number of fitting points)
KINDS = {
    "separated": (
        partial(make_classification, class_sep=2.0, **_CLASSIFICATION), 2000
    ),
    "overlapping": (
        partial(make_classification, class_sep=1.0, **_CLASSIFICATION), 2000
    ),
    "imbalanced": (
        partial(make_classification, class_sep=1.5, weights=[0.85],
                **_CLASSIFICATION), 2000
    ),
    "imbalanced_90": (
        partial(make_classification, class_sep=1.5, weights=[0.9],
                **_CLASSIFICATION), 2000
    ),
    "imbalanced_80": (
        partial(make_classification, class_sep=1.5, weights=[0.8],
                **_CLASSIFICATION), 2000
    ),
    "three_70_20_10": (
        partial(make_classification, class_sep=1.5, n_classes=3,
                weights=[0.7, 0.2], **_CLASSIFICATION), 2000
    ),
    "multiclass": (
        partial(make_blobs, n_features=10, centers=4, cluster_std=4.0), 2000
    ),
    # about 80 fitting rows per class
    "many_classes": (
        partial(make_classification, class_sep=2.0, n_classes=12,
                n_clusters_per_class=1, n_features=10, n_informative=6,
                n_redundant=2), 1000
    ),
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


def _no_region(model, level):
    """Whether the single region at ``level`` (no ladder) is empty."""
    single = copy.deepcopy(model).set_params(alpha_levels=None)
    return not np.isfinite(single.recalibrate(level).min_rescaled_similarity_)


def fit_selectors(X, y, seed):
    """Fit every method on one draw.

    Returns
    -------
    select : callable
        ``select(X_test)`` gives ``{(method, level): (y_pred, admitted)}``.
    no_region : dict
        ``{(method, level): bool}``, whether the SDM method finds no region
        when calibrated at that level alone.
    """
    base = SDMClassifier(alpha=max(LEVELS), random_state=seed, **SDM_PARAMS)
    with warnings.catch_warnings():
        # the table counts the seeds without a region and the small cells
        warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
        warnings.simplefilter("ignore", SmallRegionWarning)
        base.fit(X, y)
        ladders = {}
        for method, confidence in CONFIDENCES.items():
            ladder = copy.deepcopy(base).set_params(
                confidence=confidence, alpha_levels=LEVELS
            )
            ladders[method] = ladder.recalibrate(min(LEVELS))
        no_region = {
            (method, level): _no_region(ladder, level)
            for method, ladder in ladders.items()
            for level in LEVELS
        }
    no_region.update({
        ("sdm_lower", level): no_region["sdm", level] for level in LEVELS
    })
    calibrated = {
        method: CalibratedClassifierCV(
            LogisticRegression(max_iter=1000), method=method
        ).fit(X, y)
        for method in ("sigmoid", "isotonic")
    }

    def select(X_test):
        out = {}
        for method, ladder in ladders.items():
            frame = ladder.predict_uncertainty(X_test)
            prediction = frame["prediction"].to_numpy()
            assigned = frame["assigned_alpha"].to_numpy()
            for level in LEVELS:
                out[method, level] = (prediction, assigned >= level)
        lower = base.predict_uncertainty(X_test)
        out["sdm_lower", max(LEVELS)] = (
            lower["prediction"].to_numpy(), lower["admitted_lower"].to_numpy()
        )
        for method, model in calibrated.items():
            proba = model.predict_proba(X_test)
            prediction = model.classes_[np.argmax(proba, axis=1)]
            for level in LEVELS:
                out[method, level] = (prediction, proba.max(axis=1) >= level)
        return out

    return select, no_region


def conditional_cells(y_true, y_pred, admitted, classes):
    """Correct and admitted counts of the well-populated cells.

    Returns
    -------
    by_class, by_prediction : ndarray of shape (n_cells, 2)
        ``(n_correct, n_admitted)`` per true-class and per predicted-class
        cell with at least ``MIN_ADMITTED`` admitted points.
    """
    report = selective_report(y_true, y_pred, admitted, labels=classes)
    report = report.drop(index="marginal")
    cells = []
    for prefix in ("class", "prediction"):
        n = report[f"{prefix}_admitted"].to_numpy()
        n_correct = np.rint(report[f"{prefix}_accuracy"].fillna(0).to_numpy() * n)
        keep = n >= MIN_ADMITTED
        cells.append(np.column_stack([n_correct[keep], n[keep]]))
    return cells


def run(n_seeds):
    """One record per kind, seed, shift, method and level."""
    records = []
    for kind, (make, n_fit) in KINDS.items():
        for seed in range(n_seeds):
            X, y = make(n_samples=n_fit + N_TEST, random_state=seed)
            X_fit, y_fit, X_test, y_test = X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:]
            classes = np.unique(y_fit)
            select, no_region = fit_selectors(X_fit, y_fit, seed)
            rng = np.random.default_rng(seed)
            for shift in SHIFTS:
                X_shifted = shift_features(X_test, X_fit, shift, rng)
                for (method, level), (y_pred, admitted) in select(X_shifted).items():
                    by_class, by_prediction = conditional_cells(
                        y_test, y_pred, admitted, classes
                    )
                    records.append({
                        "kind": kind,
                        "shift": shift,
                        "method": method,
                        "level": level,
                        "no_region": no_region.get((method, level), np.nan),
                        "admitted": admitted.mean(),
                        "by_class": by_class,
                        "by_prediction": by_prediction,
                    })
    return pd.DataFrame(records)


def _cell_summary(cell_arrays, level, prefix):
    """Cells, share significantly below the level, share below, worst gap."""
    cells = np.concatenate(list(cell_arrays)).reshape(-1, 2)
    n_correct, n = cells[:, 0], cells[:, 1]
    accuracy = n_correct / np.maximum(n, 1)
    # P(Binomial(n, level) <= n_correct): small when the cell is below level
    failing = binom.cdf(n_correct, n, level) < SIGNIFICANCE
    short = level - accuracy[accuracy < level]
    return {
        f"{prefix}_cells": len(cells),
        f"{prefix}_fail": failing.mean() if len(cells) else np.nan,
        f"{prefix}_below": np.mean(accuracy < level) if len(cells) else np.nan,
        f"{prefix}_max_short": short.max() if len(short) else 0.0,
    }


def summarize(records):
    """The validity table: one row per kind, shift, method and level."""
    rows = []
    for (kind, shift, method, level), group in records.groupby(
        ["kind", "shift", "method", "level"], sort=False
    ):
        rows.append({
            "kind": kind,
            "shift": shift,
            "method": method,
            "level": level,
            "admitted": group["admitted"].mean(),
            "none_admitted": (group["admitted"] == 0).mean(),
            "no_region": group["no_region"].mean(),
            **_cell_summary(group["by_class"], level, "cls"),
            **_cell_summary(group["by_prediction"], level, "pred"),
        })
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=100, help="number of seeds (default: 100)"
    )
    parser.add_argument(
        "--csv", help="also write the table to this CSV file"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    # One BLAS thread: the products are small, and on a shared machine more
    # threads made the logistic regressions many times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        table = summarize(run(args.seeds))
    elapsed = time.perf_counter() - start
    print(
        f"levels={LEVELS}, confidences={CONFIDENCES}, seeds={args.seeds}, "
        f"n_test={N_TEST}, "
        f"SDMClassifier({', '.join(f'{k}={v}' for k, v in SDM_PARAMS.items())}), "
        f"cells need >= {MIN_ADMITTED} admitted, fail = binomial test at "
        f"{SIGNIFICANCE}"
    )
    if args.csv:
        table.to_csv(args.csv, index=False)
    with pd.option_context("display.width", 250, "display.max_rows", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"elapsed: {elapsed:.0f} s")


if __name__ == "__main__":
    main()
