"""The point predictor: plain accuracy of SDMClassifier against logistic regression.

On the in-distribution sets of the drop-in panel (``bench_dropin.py``:
digits, wine, breast cancer, synthetic tabular, embeddings-like clusters;
70/30 stratified splits), every seed fits on the same training rows:

- ``SDMClassifier()`` (no ``estimator``) under each training setting of
  ``SETTINGS`` (public parameters, and the ``n_epochs="auto"`` constants of
  :mod:`sdm_sklearn._training`, patched for the fit);
- a scaled ``LogisticRegression`` on a stratified half of the training rows
  (the size of the adaptor's support split: its peer) and on all of them.

Reported per (data, setting): plain accuracy and its gap to both logistic
regressions (means over seeds), the admitted share and the accuracy among
admitted points at ``alpha=0.9`` (marginal and worst class-conditional,
pooled over seeds; a class counts with at least ``MIN_ADMITTED`` pooled
admitted points), the per-seed differences of accuracy and admitted share
to the ``default`` setting on the same split (mean and standard error), the
fit time (median), and the epoch and iteration the fit kept. The target:
within one point of the half-data peer on every set.

``--diagnose`` adds, per setting, where the accuracy goes inside a fit,
from the test accuracy of the adaptor after every epoch of every iteration
(recorded by wrapping the adaptor's epoch): the epoch-1 (plain
cross-entropy) model, the last epoch, the best epoch in hindsight, the
epoch each iteration kept, and the kept model. It also fits counterfactuals
outside the method: "CE only", the same fit with q = e - 2 and d = 1 for the
support points in every epoch (plain cross-entropy throughout; the epoch and
iteration still chosen by the SDM calibration loss), "d = 1" (q as in the
method) and "q = e - 2" (d as in the method); and it reports the weights d
the SDM loss gives the support points (its gradient for a point is
d (SDM(z') - onehot(y)), and SDM(z') is the softmax of ln(2 + q) d z').

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py --seeds 10
    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py --seeds 5 --diagnose \
        --settings default "lr 5e-3, bs 8" "lr 3e-2"
"""

import argparse
import contextlib
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
from bench_dropin import DATASETS, load_panel_set, print_table
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import sdm_sklearn._adaptor as adaptor_module
import sdm_sklearn._training as training_module
from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning, SmallRegionWarning
from sdm_sklearn.metrics import selective_report

ALPHA = 0.9
MIN_ADMITTED = 10
REGION_WARNINGS = (NoHighReliabilityRegionWarning, SmallRegionWarning)

# name -> (SDMClassifier parameters, constants of sdm_sklearn._training).
# "1,000 steps": n_epochs="auto" aims at 1,000 mini-batch steps (the default
# is 2,000) and allows up to 50 epochs (of 100); "before" is the package's
# default before warmup_fraction (epoch 1 the only cross-entropy epoch).
SETTINGS = {
    "default": ({}, {}),
    "before: warm-up 0, 1,000 steps": ({"warmup_fraction": 0.0},
                                       {"AUTO_STEPS": 1000, "AUTO_MAX_EPOCHS": 50}),
    "warm-up 0 (paper)": ({"warmup_fraction": 0.0}, {}),
    "warm-up 0.5, 1,000 steps": ({}, {"AUTO_STEPS": 1000, "AUTO_MAX_EPOCHS": 50}),
    "warm-up 0.25": ({"warmup_fraction": 0.25}, {}),
    "warm-up 0.7": ({"warmup_fraction": 0.7}, {}),
    "warm-up 1 (CE)": ({"warmup_fraction": 1.0}, {}),
    "lr 1e-2": ({"learning_rate": 1e-2}, {}),
    "lr 3e-2": ({"learning_rate": 3e-2}, {}),
    "lr 1e-2, bs 16": ({"learning_rate": 1e-2, "batch_size": 16}, {}),
    "lr 2e-2, bs 16": ({"learning_rate": 2e-2, "batch_size": 16}, {}),
    "lr 3e-3, bs 8": ({"batch_size": 8}, {}),
    "lr 1e-2, bs 8": ({"learning_rate": 1e-2, "batch_size": 8}, {}),
    "lr 1e-2, J 1": ({"learning_rate": 1e-2, "n_iterations": 1}, {}),
    "lr 3e-2, bs 16": ({"learning_rate": 3e-2, "batch_size": 16}, {}),
    "lr 3e-3, bs 16": ({"batch_size": 16}, {}),
    "lr 5e-3, bs 16": ({"learning_rate": 5e-3, "batch_size": 16}, {}),
    "lr 5e-3, bs 8": ({"learning_rate": 5e-3, "batch_size": 8}, {}),
    "lr 5e-3": ({"learning_rate": 5e-3}, {}),
    "lr 2e-2": ({"learning_rate": 2e-2}, {}),
    "lr 1e-2, bs 32": ({"learning_rate": 1e-2, "batch_size": 32}, {}),
    "lr 1e-2, bs 16, J 1": ({"learning_rate": 1e-2, "batch_size": 16,
                             "n_iterations": 1}, {}),
    "lr 1e-2, bs 16, M 32": ({"learning_rate": 1e-2, "batch_size": 16,
                              "n_exemplar_dims": 32}, {}),
    "lr 1e-2, M 512": ({"learning_rate": 1e-2, "n_exemplar_dims": 512}, {}),
    "M 32": ({"n_exemplar_dims": 32}, {}),
    "global": ({"standardize": "global"}, {}),
    "3,000 steps": ({}, {"AUTO_STEPS": 3000, "AUTO_MAX_EPOCHS": 200}),
    "lr 1e-2, 3,000 steps": ({"learning_rate": 1e-2},
                             {"AUTO_STEPS": 3000, "AUTO_MAX_EPOCHS": 200}),
}
# The settings of a run without --settings (the others were measured in
# shorter runs: benchmarks/README.md).
DEFAULT_RUN = ["default", "before: warm-up 0, 1,000 steps", "warm-up 0 (paper)",
               "warm-up 0.5, 1,000 steps", "warm-up 0.7", "warm-up 1 (CE)",
               "lr 1e-2"]


@contextlib.contextmanager
def patched(module, values):
    """Set module attributes for the duration of the block."""
    saved = {name: getattr(module, name) for name in values}
    try:
        for name, value in values.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


class EpochTrace:
    """Test accuracy of every adaptor after each of its epochs.

    Wraps ``ExemplarAdaptor.train_epoch`` while active; ``curves()`` gives
    one list per adaptor (iteration), in training order.
    """

    def __init__(self, X, y_encoded):
        self.X, self.y = X, y_encoded
        self.rows = []

    @contextlib.contextmanager
    def active(self):
        original = adaptor_module.ExemplarAdaptor.train_epoch
        trace = self

        def train_epoch(adaptor, *args, **kwargs):
            original(adaptor, *args, **kwargs)
            if not hasattr(adaptor, "_trace_number"):
                adaptor._trace_number = len({row[0] for row in trace.rows})
            logits = adaptor.logits(adaptor.standardize(trace.X))
            trace.rows.append((adaptor._trace_number,
                               np.mean(logits.argmax(axis=1) == trace.y)))

        with patched(adaptor_module.ExemplarAdaptor,
                     {"train_epoch": train_epoch}):
            yield self

    def curves(self):
        numbers = sorted({row[0] for row in self.rows})
        return np.array([[acc for n, acc in self.rows if n == number]
                         for number in numbers])


# Counterfactuals outside the method: which of the support points' q and d
# are replaced by their cross-entropy values (q = e - 2, d = 1) in every epoch.
COUNTERFACTUALS = {"CE only": ("q", "d"), "d = 1": ("d",), "q = e - 2": ("q",)}


def _replacing(replaced):
    """An ``evaluate_support`` whose q and/or d are those of cross-entropy."""
    original = training_module.evaluate_support

    def evaluate_support(*args, **kwargs):
        state = original(*args, **kwargs)
        n_points = len(state.q)
        return SimpleNamespace(
            q=np.full(n_points, np.e - 2.0) if "q" in replaced else state.q,
            d=np.ones(n_points) if "d" in replaced else state.d,
        )

    return evaluate_support


class SupportWeights:
    """Records the d of the support points before every epoch but the first."""

    def __init__(self):
        self.d = []

    @contextlib.contextmanager
    def active(self):
        original = training_module.evaluate_support

        def evaluate_support(*args, **kwargs):
            state = original(*args, **kwargs)
            self.d.append(np.asarray(state.d).copy())
            return state

        with patched(training_module, {"evaluate_support": evaluate_support}):
            yield self


def peers(X_train, y_train, X_test, y_test, seed):
    """Accuracy of a scaled LogisticRegression on half and on all rows."""
    half_X, _, half_y, _ = train_test_split(
        X_train, y_train, train_size=0.5, stratify=y_train, random_state=seed
    )

    def accuracy(X, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        return model.fit(X, y).score(X_test, y_test)

    return accuracy(half_X, half_y), accuracy(X_train, y_train)


def fit_setting(params, constants, X_train, y_train, seed, *, counterfactual=None,
                trace=None, weights=None):
    """Fit one SDMClassifier; the model and its fit time."""
    model = SDMClassifier(alpha=ALPHA, random_state=seed, **params)
    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(training_module, constants))
        if counterfactual is not None:
            stack.enter_context(patched(training_module, {
                "evaluate_support": _replacing(COUNTERFACTUALS[counterfactual])
            }))
        if trace is not None:
            stack.enter_context(trace.active())
        if weights is not None:
            stack.enter_context(weights.active())
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", REGION_WARNINGS)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return model, seconds


def _diagnosis(model, trace, weights):
    curves = trace.curves()
    losses = model.calibration_loss_
    kept_epochs = losses.argmin(axis=1)
    out = {
        "epoch 1": curves[:, 0].mean(),
        "last epoch": curves[:, -1].mean(),
        "best epoch (hindsight)": curves.max(axis=1).mean(),
        "kept epoch of each iteration": np.mean(
            [curves[i, e] for i, e in enumerate(kept_epochs)]
        ),
        "kept model": curves[model.best_iteration_, model.best_epoch_],
    }
    if weights is not None and weights.d:
        d = np.concatenate(weights.d)
        out["support d < 0.1"] = np.mean(d < 0.1)
        out["support median d"] = np.median(d)
    return out


def run(dataset_names, setting_names, seeds, diagnose):
    """One record per data set, seed and setting (and counterfactual)."""
    records = []
    for name in dataset_names:
        for seed in range(seeds):
            X_train, y_train, tests = load_panel_set(name, seed)
            X_test, y_test = tests["in-distribution"]
            half, full = peers(X_train, y_train, X_test, y_test, seed)
            encoded = np.searchsorted(np.unique(y_train), y_test)
            variants = [(setting, None) for setting in setting_names]
            if diagnose:
                variants += [(setting, counterfactual)
                             for counterfactual in COUNTERFACTUALS
                             for setting in setting_names]
            for setting, counterfactual in variants:
                params, constants = SETTINGS[setting]
                trace = EpochTrace(X_test, encoded) if diagnose else None
                weights = SupportWeights() if diagnose else None
                model, seconds = fit_setting(
                    params, constants, X_train, y_train, seed,
                    counterfactual=counterfactual, trace=trace, weights=weights,
                )
                frame = model.predict_uncertainty(X_test)
                record = {
                    "data": name,
                    "setting": setting + (f" ({counterfactual})"
                                          if counterfactual else ""),
                    "seed": seed, "y_true": y_test,
                    "y_pred": frame["prediction"].to_numpy(),
                    "admitted": frame["admitted"].to_numpy(),
                    "fit s": seconds, "lr half": half, "lr full": full,
                    "epoch": model.best_epoch_ + 1,
                    "iteration": model.best_iteration_ + 1,
                    "n_epochs": model.n_epochs_,
                }
                if diagnose:
                    record.update(_diagnosis(model, trace, weights))
                records.append(record)
        print(f"[bench_accuracy] {name} done", flush=True)
    return pd.DataFrame(records)


def _selective(group):
    y_true = np.concatenate(group["y_true"].to_list())
    y_pred = np.concatenate(group["y_pred"].to_list())
    admitted = np.concatenate(group["admitted"].to_list())
    report = selective_report(y_true, y_pred, admitted, labels=np.unique(y_true))
    cells = report.drop(index="marginal")
    by_class = cells.loc[cells["class_admitted"] >= MIN_ADMITTED, "class_accuracy"]
    return {
        "admitted": admitted.mean(),
        "acc_adm": report.loc["marginal", "class_accuracy"],
        "worst_cls": by_class.min() if len(by_class) else np.nan,
    }


def _paired(group, baseline, column):
    """Mean and standard error of the per-seed difference to the baseline."""
    difference = (group.set_index("seed")[column]
                  - baseline.set_index("seed")[column]).dropna()
    if len(difference) < 2:
        return ""
    error = difference.std(ddof=1) / np.sqrt(len(difference))
    return f"{difference.mean():+.3f} ± {error:.3f}"


def summarize(records):
    """The accuracy table, and the diagnosis table when recorded.

    ``d acc`` and ``d admitted``: per-seed differences to the ``default``
    setting on the same split (mean and standard error over seeds).
    """
    records = records.assign(
        accuracy=[np.mean(t == p) for t, p in
                  zip(records["y_true"], records["y_pred"], strict=True)],
        share=[np.mean(a) for a in records["admitted"]],
    )
    rows, diagnoses = [], []
    for (data, setting), group in records.groupby(["data", "setting"], sort=False):
        baseline = records[(records["data"] == data)
                           & (records["setting"] == "default")]
        rows.append({
            "data": data, "setting": setting,
            "accuracy": group["accuracy"].mean(),
            "gap to half": group["accuracy"].mean() - group["lr half"].mean(),
            "gap to full": group["accuracy"].mean() - group["lr full"].mean(),
            "d acc": _paired(group, baseline, "accuracy"),
            **_selective(group),
            "d admitted": _paired(group, baseline, "share"),
            "fit s": group["fit s"].median(),
            "epoch": group["epoch"].mean(),
            "iteration": group["iteration"].mean(),
            "n_epochs": group["n_epochs"].median(),
        })
        if "epoch 1" in group:
            columns = [c for c in ("epoch 1", "last epoch",
                                   "best epoch (hindsight)",
                                   "kept epoch of each iteration", "kept model",
                                   "support d < 0.1", "support median d")
                       if c in group]
            diagnoses.append({"data": data, "setting": setting,
                              **group[columns].mean().to_dict()})
    peers = (records.drop_duplicates(["data", "seed"])
             .groupby("data", sort=False)[["lr half", "lr full"]].mean()
             .reset_index())
    return pd.DataFrame(rows), pd.DataFrame(diagnoses), peers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5,
                        help="number of seeds (default: 5)")
    parser.add_argument("--data", nargs="+", choices=list(DATASETS),
                        default=list(DATASETS), help="data sets (default: all)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        default=DEFAULT_RUN,
                        help="training settings (default: DEFAULT_RUN)")
    parser.add_argument("--diagnose", action="store_true",
                        help="per-epoch accuracy and the counterfactuals")
    args = parser.parse_args()
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        records = run(args.data, args.settings, args.seeds, args.diagnose)
    table, diagnoses, peer_table = summarize(records)
    print(f"\nalpha={ALPHA}, seeds={args.seeds}; accuracy and gaps: means over "
          "seeds; admitted, acc_adm, worst_cls: pooled over seeds (cells of >= "
          f"{MIN_ADMITTED} admitted); fit s: median\n")
    print_table(table)
    print("Logistic regression (scaled) on half / all training rows:\n")
    print_table(peer_table)
    if len(diagnoses):
        print("Test accuracy inside the fits (means over seeds and iterations):\n")
        print_table(diagnoses)
    print(f"elapsed: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
