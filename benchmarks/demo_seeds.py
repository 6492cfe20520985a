"""The demo's summary table over several seeds: is the default robust?

Usage: ``python benchmarks/demo_seeds.py [--seeds N]``. Each seed draws a new
train/test split of digits, new corruptions and a new SDMClassifier
initialization; the table gives, per estimator and test set, the mean and
the range over seeds of the admitted fraction and of the worst class- and
prediction-conditional accuracy among admitted points.

Columns: ``admitted`` (mean fraction of the test set admitted, ``adm min`` /
``adm max`` over seeds), ``acc`` (mean accuracy among admitted points, over
the seeds that admitted any), ``worst class acc`` / ``worst pred acc`` (the
lowest class- / prediction-conditional accuracy among admitted points over
all classes and seeds), ``seeds none adm`` (seeds that admitted nothing).
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
    parser.add_argument("--alpha", type=float, default=0.9)
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
        "admitted": grouped["admitted"].mean(),
        "adm min": grouped["admitted"].min(),
        "adm max": grouped["admitted"].max(),
        "acc": grouped["accuracy"].mean(),
        "worst class acc": grouped["worst class acc"].min(),
        "worst pred acc": grouped["worst prediction acc"].min(),
        "seeds none adm": grouped["admitted"].apply(
            lambda admitted: int((admitted == 0).sum())
        ),
    })
    print(f"alpha = {args.alpha}, seeds 0..{args.seeds - 1}, "
          f"{time.perf_counter() - start:.0f} s in all")
    print(result.to_string(float_format="{:.3f}".format, na_rep="-"))


if __name__ == "__main__":
    main()
