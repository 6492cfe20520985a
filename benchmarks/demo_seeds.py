"""The demo's summary table over several seeds: is the default robust?

Usage: ``python benchmarks/demo_seeds.py [--seeds N]``. Each seed draws a new
train/test split of digits, new corruptions and a new SDMClassifier
initialization; the table gives, per estimator and test set, the mean and
the range over seeds of the admitted fraction and of the worst class- and
prediction-conditional accuracy among admitted points.
"""

import argparse
import contextlib
import io
import time

import pandas as pd

from sdm_sklearn._demo import run_demo


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.95)
    args = parser.parse_args()
    frames = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        with contextlib.redirect_stdout(io.StringIO()):
            summary = run_demo(alpha=args.alpha, random_state=seed, tables=False)
        frames.append(summary.assign(seed=seed))
    table = pd.concat(frames).reset_index()
    grouped = table.groupby(["estimator", "test set"], sort=False)
    result = pd.DataFrame({
        "admitted mean": grouped["admitted"].mean(),
        "admitted min": grouped["admitted"].min(),
        "admitted max": grouped["admitted"].max(),
        "worst class acc (min over seeds)": grouped["worst class acc"].min(),
        "worst prediction acc (min over seeds)": grouped["worst prediction acc"].min(),
        "accuracy mean": grouped["accuracy"].mean(),
        "seeds with no admission": grouped["admitted"].apply(
            lambda admitted: int((admitted == 0).sum())
        ),
    })
    print(f"alpha = {args.alpha}, seeds 0..{args.seeds - 1}, "
          f"{time.perf_counter() - start:.0f} s in all")
    print(result.to_string(float_format="{:.3f}".format, na_rep="-"))


if __name__ == "__main__":
    main()
