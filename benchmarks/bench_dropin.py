"""Drop-in panel: SDMClassifier over a classifier against CalibratedClassifierCV.

For every data set of the panel and every base model, one run fits, on the
same training rows of the same seed:

- ``SDMClassifier(estimator=base, response_method=..., append_features=...)``
  for each response method the base model has (``predict_proba``, and
  ``decision_function`` where it exists) with and without the raw columns;
- ``CalibratedClassifierCV(base, method="isotonic" | "sigmoid", cv=5)``,
  admitting a prediction when its top probability reaches ``alpha``;

and once per data set ``SDMClassifier()`` on the raw features (no
``estimator``) as a reference. Each is evaluated on the in-distribution test
rows and on a covariate-shifted copy of them (labels kept):

- digits: every test image translated by one pixel in a random one of the
  eight directions (:func:`sdm_sklearn.datasets.make_shifted_digits`);
- the other sets: every test point moved along the top principal direction
  of the standardized training features, by one standard deviation of the
  training points along that direction, towards a random side (per point).
  It is a drift of the measurements along the direction in which the data
  vary most, with the label kept.

Data: digits (1,797 images, 10 classes), breast cancer (569, 2), wine (178,
3), synthetic tabular (``make_classification``: 2,000 rows, 20 features,
4 classes, two clusters per class) and embeddings-like clusters (1,500
unit-norm 64-d points around 8 random centres, 5 % of the labels replaced
at random); 70/30 stratified splits. Base models: a scaled
``LogisticRegression``, ``HistGradientBoostingClassifier`` and
``RandomForestClassifier(n_jobs=1)``.

The SDM variants of one base model and seed see the same support folds, and
both calibrations the same five folds, so the base model's fit on a given
set of rows is computed once and reused (:class:`Reused`); this changes no
number, only the run time.

Reported, per (data, base, method): plain accuracy (mean over seeds), the
admitted share, and the accuracy among admitted points, marginal and worst
class- and prediction-conditional, in distribution and under shift. The
conditional accuracies pool the admitted test points of every seed; a class
counts only with at least ``MIN_ADMITTED`` pooled admitted points.

Run from the repository root (about 9 minutes on a 2-core machine)::

    OMP_NUM_THREADS=1 python benchmarks/bench_dropin.py --seeds 3
"""

import argparse
import hashlib
import time
import warnings

import numpy as np
import pandas as pd
from _common import markdown_table, noisy_labels, sphere_clusters
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_wine, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from threadpoolctl import threadpool_limits

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning, SmallRegionWarning
from sdm_sklearn.metrics import selective_report

ALPHA = 0.9
TEST_SIZE = 0.3
# A class (true or predicted) enters the worst conditional accuracy only
# with at least this many admitted test points, pooled over the seeds.
MIN_ADMITTED = 10
# The tabular shift, in standard deviations along the top principal direction.
SHIFT_SDS = 1.0
REGION_WARNINGS = (NoHighReliabilityRegionWarning, SmallRegionWarning)
# Rows of the embeddings-like set.
N_EMBEDDINGS = 1500
SHORT_METHOD = {"predict_proba": "proba", "decision_function": "decision"}


# ------------------------------------------------------------------- data


def principal_shift(X_test, X_train, rng, n_sds=SHIFT_SDS):
    """Move test points along the top principal direction of the training set.

    The direction is that of the training features standardized per column;
    every test point moves by ``n_sds`` standard deviations of the training
    points along it, to a side drawn at random per point.

    Parameters
    ----------
    X_test, X_train : ndarray of shape (n_samples, n_features)
    rng : numpy.random.Generator
    n_sds : float, default=SHIFT_SDS

    Returns
    -------
    X_shifted : ndarray of shape X_test.shape
    """
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    _, singular, rows = np.linalg.svd((X_train - mean) / std, full_matrices=False)
    spread = singular[0] / np.sqrt(len(X_train))
    sides = rng.choice([-1.0, 1.0], size=len(X_test))
    step = (n_sds * spread) * rows[0] * std
    return (X_test + sides[:, None] * step).astype(X_test.dtype)


def _tabular(X, y, seed):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=seed
    )
    shifted = principal_shift(X_test, X_train, np.random.default_rng(seed))
    tests = {"in-distribution": (X_test, y_test), "shifted": (shifted, y_test)}
    return X_train, y_train, tests


def _digits(seed):
    X_train, y_train, tests = make_shifted_digits(
        test_size=TEST_SIZE, random_state=seed
    )
    del tests["out-of-distribution"]
    return X_train, y_train, tests


def _synthetic(seed):
    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, n_redundant=4,
        n_classes=4, class_sep=1.5, random_state=seed,
    )
    return _tabular(X, y, seed)


def _embeddings(seed):
    # spread 2.0: a logistic regression reaches about 0.9 (at most about
    # 0.96: 5 % of the labels are drawn at random)
    X, y = sphere_clusters(N_EMBEDDINGS, 64, 8, spread=2.0, seed=seed)
    return _tabular(X, noisy_labels(y, 8, 0.05, seed + 1), seed)


DATASETS = {
    "digits": _digits,
    "breast_cancer": lambda seed: _tabular(*load_breast_cancer(return_X_y=True),
                                           seed),
    "wine": lambda seed: _tabular(*load_wine(return_X_y=True), seed),
    "synthetic": _synthetic,
    "embeddings": _embeddings,
}


def load_panel_set(name, seed):
    """One data set of the panel: training rows and the two test sets.

    Returns
    -------
    X_train, y_train : ndarray
    tests : dict
        ``{"in-distribution": (X, y), "shifted": (X, y)}``.
    """
    return DATASETS[name](seed)


BASES = {
    "logistic": lambda seed: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000)
    ),
    "boosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
    "forest": lambda seed: RandomForestClassifier(n_jobs=1, random_state=seed),
}


# ----------------------------------------------------------- the contenders

# Fitted base models by (rows, labels, model): see Reused.
_FITTED = {}


class Reused(ClassifierMixin, BaseEstimator):
    """A classifier whose fit on rows it has seen before is looked up.

    The SDM variants of one seed cross-fit the base model on the same folds
    and refit it on the same support split, and both calibrations of
    CalibratedClassifierCV fit it on the same folds; this wrapper fits it
    once per set of rows. The base models are deterministic (seeded), so the outputs
    are those of fitting it anew.

    Parameters
    ----------
    estimator : classifier
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
        digest = hashlib.sha1(X.tobytes())
        digest.update(y.tobytes())
        key = (digest.hexdigest(), X.shape, X.dtype.str, repr(self.estimator))
        if key not in _FITTED:
            _FITTED[key] = clone(self.estimator).fit(X, y)
        self.estimator_ = _FITTED[key]
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        return self.estimator_.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)

    @available_if(lambda self: hasattr(self.estimator, "decision_function"))
    def decision_function(self, X):
        return self.estimator_.decision_function(X)


def _sdm_selector(model):
    def select(X):
        frame = model.predict_uncertainty(X)
        return frame["prediction"].to_numpy(), frame["admitted"].to_numpy()

    return select


def _calibrated_selector(model):
    def select(X):
        proba = model.predict_proba(X)
        return model.classes_[np.argmax(proba, axis=1)], proba.max(axis=1) >= ALPHA

    return select


def contenders(base, seed):
    """Name -> unfitted model and how it selects, for one base model.

    Returns
    -------
    contenders : dict of str to (estimator, callable)
        The callable turns the fitted estimator into ``select(X) ->
        (y_pred, admitted)``.
    """
    methods = ["predict_proba"]
    if hasattr(base, "decision_function"):
        methods.append("decision_function")
    out = {}
    for method in methods:
        for append in (False, True):
            name = f"sdm {SHORT_METHOD[method]}" + ("+X" if append else "")
            out[name] = (
                SDMClassifier(estimator=Reused(base), response_method=method,
                              append_features=append, alpha=ALPHA,
                              random_state=seed),
                _sdm_selector,
            )
    for method in ("isotonic", "sigmoid"):
        out[f"ccv {method}"] = (
            CalibratedClassifierCV(Reused(base), method=method, cv=5),
            _calibrated_selector,
        )
    return out


# -------------------------------------------------------------- the run


def run(dataset_names, base_names, seeds):
    """One record per data set, base model, method, seed and test set."""
    records = []
    for name in dataset_names:
        for seed in range(seeds):
            started = time.perf_counter()
            X_train, y_train, tests = load_panel_set(name, seed)
            runs = {("-", "sdm raw X"): (
                SDMClassifier(alpha=ALPHA, random_state=seed), _sdm_selector
            )}
            for base_name in base_names:
                for method, entry in contenders(BASES[base_name](seed),
                                                seed).items():
                    runs[(base_name, method)] = entry
            for (base_name, method), (model, selector) in runs.items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", REGION_WARNINGS)
                    model.fit(X_train, y_train)
                fit_seconds = time.perf_counter() - start
                select = selector(model)
                for test_name, (X_test, y_test) in tests.items():
                    y_pred, admitted = select(X_test)
                    records.append({
                        "data": name, "base": base_name, "method": method,
                        "seed": seed, "test": test_name, "y_true": y_test,
                        "y_pred": y_pred, "admitted": admitted,
                        "fit_seconds": fit_seconds,
                    })
            _FITTED.clear()
            print(f"[bench_dropin] {name} seed {seed}: "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    return pd.DataFrame(records)


def _pooled(group):
    """Admitted share and accuracies among admitted, pooled over seeds."""
    y_true = np.concatenate(group["y_true"].to_list())
    y_pred = np.concatenate(group["y_pred"].to_list())
    admitted = np.concatenate(group["admitted"].to_list())
    report = selective_report(y_true, y_pred, admitted,
                              labels=np.unique(y_true))
    cells = report.drop(index="marginal")
    by_class = cells.loc[cells["class_admitted"] >= MIN_ADMITTED,
                         "class_accuracy"]
    by_prediction = cells.loc[cells["prediction_admitted"] >= MIN_ADMITTED,
                              "prediction_accuracy"]
    return {
        "accuracy": np.mean([np.mean(t == p) for t, p in
                             zip(group["y_true"], group["y_pred"], strict=True)]),
        "admitted": admitted.mean(),
        "acc_adm": report.loc["marginal", "class_accuracy"],
        "worst_cls": by_class.min() if len(by_class) else np.nan,
        "worst_pred": by_prediction.min() if len(by_prediction) else np.nan,
    }


def summarize(records):
    """One row per (data, base, method): in distribution, then shifted."""
    rows = []
    keys = ["data", "base", "method"]
    for key, group in records.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        for test, prefix in (("in-distribution", "id"), ("shifted", "sh")):
            stats = _pooled(group[group["test"] == test])
            row.update({f"{prefix} {k}": v for k, v in stats.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def compare_methods(table):
    """Every method (but the raw reference) over the (data, base) pairs.

    The forest has no ``decision_function``, so the ``decision`` rows cover
    10 pairs, the others 15; ``id admitted (10 pairs)`` compares every
    method on the 10 pairs the ``decision`` rows have.
    """
    rows = table[table["base"] != "-"]
    with_decision = rows.loc[rows["method"].str.startswith("sdm decision"),
                             ["data", "base"]].drop_duplicates()
    common = rows.merge(with_decision, on=["data", "base"])
    out = []
    for method, group in rows.groupby("method", sort=False):
        shared = common[common["method"] == method]
        out.append({
            "method": method,
            "pairs": len(group),
            "id accuracy": group["id accuracy"].mean(),
            "id admitted": group["id admitted"].mean(),
            "id admitted (10 pairs)": shared["id admitted"].mean(),
            "none admitted": int((group["id admitted"] == 0).sum()),
            "id acc_adm < alpha": int((group["id acc_adm"] < ALPHA).sum()),
            "id worst < alpha": int(
                ((group["id worst_cls"] < ALPHA)
                 | (group["id worst_pred"] < ALPHA)).sum()
            ),
            "sh admitted": group["sh admitted"].mean(),
            "sh acc_adm < alpha": int((group["sh acc_adm"] < ALPHA).sum()),
            "sh worst < alpha": int(
                ((group["sh worst_cls"] < ALPHA)
                 | (group["sh worst_pred"] < ALPHA)).sum()
            ),
        })
    return pd.DataFrame(out)


def _formatted(frame):
    """Strings with three decimals (NaN as an empty cell)."""
    def cell(value):
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.3f}"
        return value

    return frame.map(cell)


def print_table(frame):
    formatted = _formatted(frame)
    print(markdown_table(list(formatted.columns), formatted.to_numpy().tolist()))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds (default: 3)")
    parser.add_argument("--data", nargs="+", choices=list(DATASETS),
                        default=list(DATASETS), help="data sets (default: all)")
    parser.add_argument("--bases", nargs="+", choices=list(BASES),
                        default=list(BASES), help="base models (default: all)")
    args = parser.parse_args()
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        records = run(args.data, args.bases, args.seeds)
    table = summarize(records)
    print(f"\nalpha={ALPHA}, seeds={args.seeds}, test size {TEST_SIZE}; "
          f"conditional cells need >= {MIN_ADMITTED} admitted points pooled "
          "over the seeds; id: in distribution, sh: shifted\n")
    print_table(table)
    print("Methods over the (data, base) pairs (counts: pairs):\n")
    print_table(compare_methods(table))
    print(f"elapsed: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
