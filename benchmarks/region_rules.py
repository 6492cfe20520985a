"""The region's rule on the drop-in panel: default test, certificate, Alg. 1.

Usage: ``python benchmarks/region_rules.py [--seeds N]``.

On the in-distribution test sets of the drop-in panel (``bench_dropin.py``:
digits, breast cancer, wine, synthetic tabular, embeddings-like clusters;
70/30 stratified splits, a new split per seed), one default
``SDMClassifier(alpha=0.8, alpha_levels=(0.95, 0.9, 0.8))`` is fitted per
(data set, seed) and read under three rules of the region by
``set_params(confidence=...)`` and ``recalibrate`` (the same outputs as a
fit): ``default`` (``confidence=0.5``), ``paper`` (``confidence=None``, the
paper's Alg. 1) and ``certified`` (``confidence=0.95``). A test point
counts as admitted at a level when its ``assigned_alpha`` reaches it.

Columns: ``admitted`` (mean share over seeds), ``vs paper`` (relative
change of the mean against ``paper``), ``no region`` (seeds without a
region at the level), ``worst class`` (the lowest class-conditional
accuracy of admitted points, pooled over seeds, over the classes with at
least 10 pooled admitted points), ``its n`` (that class's pooled admitted
points) and ``p below`` (the one-sided binomial tail of its correct count
at the level: small values say the class is significantly below).
"""

import argparse
import copy
import time
import warnings

import numpy as np
import pandas as pd
from bench_dropin import DATASETS, load_panel_set
from scipy.stats import binom

from sdm_sklearn import SDMClassifier

LEVELS = (0.95, 0.9, 0.8)
RULES = {"default": SDMClassifier().confidence, "paper": None, "certified": 0.95}
MIN_POOLED = 10


def run(seeds):
    records = []
    for name in DATASETS:
        for seed in range(seeds):
            X_train, y_train, tests = load_panel_set(name, seed)
            X_test, y_test = tests["in-distribution"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base = SDMClassifier(alpha=min(LEVELS), alpha_levels=LEVELS,
                                     random_state=seed).fit(X_train, y_train)
                for rule, confidence in RULES.items():
                    model = copy.deepcopy(base).set_params(confidence=confidence)
                    model.recalibrate(min(LEVELS))
                    frame = model.predict_uncertainty(X_test)
                    for level in LEVELS:
                        admitted = frame["assigned_alpha"].to_numpy() >= level
                        records.append({
                            "data": name, "seed": seed, "rule": rule,
                            "level": level, "admitted": admitted.mean(),
                            "no_region": not admitted.any(),
                            "y": y_test[admitted],
                            "correct": (frame["prediction"].to_numpy()
                                        == y_test)[admitted],
                        })
    return records


def summarize(records):
    frame = pd.DataFrame(records)
    rows = []
    for (name, level, rule), group in frame.groupby(["data", "level", "rule"],
                                                    sort=False):
        labels = np.concatenate(group["y"].to_list())
        correct = np.concatenate(group["correct"].to_list())
        cells = [(correct[labels == c].mean(), int(np.sum(labels == c)))
                 for c in np.unique(labels) if np.sum(labels == c) >= MIN_POOLED]
        accuracy, count = min(cells) if cells else (np.nan, 0)
        rows.append({"data": name, "level": level, "rule": rule,
                     "admitted": group["admitted"].mean(),
                     "no region": int(group["no_region"].sum()),
                     "worst class": accuracy, "its n": count,
                     "p below": (binom.cdf(round(accuracy * count), count, level)
                                 if count else np.nan)})
    table = pd.DataFrame(rows)
    paper = table[table["rule"] == "paper"].set_index(["data", "level"])["admitted"]
    table["vs paper"] = [
        np.nan if paper[(d, lv)] == 0 else a / paper[(d, lv)] - 1
        for d, lv, a in zip(table["data"], table["level"], table["admitted"],
                            strict=True)
    ]
    return table[["data", "level", "rule", "admitted", "vs paper", "no region",
                  "worst class", "its n", "p below"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    start = time.perf_counter()
    table = summarize(run(args.seeds))
    print(f"seeds={args.seeds}, levels={LEVELS}, rules={RULES}")
    print(table.to_string(index=False, float_format="{:.3f}".format))
    print(f"{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
