"""Fit at scale: SDMClassifier's defaults against CalibratedClassifierCV.

For each size N (384-d embedding-like data, 5 classes, as bench_fit.py), one
fresh process per fit measures wall time and peak memory (max RSS) of

- ``SDMClassifier()`` with its defaults (``n_epochs="auto"``: at large
  splits, rounds of support rows and epoch selection on a calibration
  subset, the final calibration exact), and
- ``CalibratedClassifierCV(LogisticRegression())``, the peer,

interleaved in one run, and prints the ratio of the medians and the growth
exponent of the fit time (least squares on log time against log N). With
the same seeds, admitted share and accuracy among admitted points, in
distribution and shifted (test points moved by one noise norm, the mean
distance of a test point to its class centroid, along a random direction),
are printed side by side with the speed-ups switched off:

- ``--compare`` sizes add "sdm-full": full epochs, every calibration point
  scoring every epoch (the exact schedule of the method);
- ``--exact-epochs`` sizes add "sdm-exact-epochs": the rounds and the
  scoring subset kept, but every epoch scored and the per-epoch searches
  exact (training's FAISS cells and the unscored warm-up rounds off).

Run ``python benchmarks/bench_fit_scale.py --sizes 10000 30000 100000
--compare 30000 --exact-epochs 100000 --repeats 1``.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

N_CLASSES = 5
N_FEATURES = 384
SPREAD = 8.0
N_TEST = 5_000


def _data(n_samples, seed):
    from _common import sphere_clusters

    X, y = sphere_clusters(n_samples + N_TEST, N_FEATURES, N_CLASSES,
                           spread=SPREAD, seed=seed)
    rng = np.random.default_rng(seed + 1)
    direction = rng.standard_normal(N_FEATURES).astype(np.float32)
    direction /= np.linalg.norm(direction)
    X_test, y_test = X[n_samples:], y[n_samples:]
    centroids = np.stack([X_test[y_test == c].mean(axis=0) for c in range(N_CLASSES)])
    noise_norm = float(np.mean(np.linalg.norm(X_test - centroids[y_test], axis=1)))
    shifted = X_test + noise_norm * direction
    return X[:n_samples], y[:n_samples], X_test, y_test, shifted


def _quality(prediction, admitted, y):
    share = float(np.mean(admitted))
    if not admitted.any():
        return share, float("nan")
    return share, float(np.mean(prediction[admitted] == y[admitted]))


def run_one(n_samples, mode, seed, n_jobs=None):
    """Fit once in this process; print a JSON line of measurements."""
    X, y, X_test, y_test, shifted = _data(n_samples, seed)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if mode == "ccv":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression

        model = CalibratedClassifierCV(LogisticRegression()).fit(X, y)
        fit_seconds = time.perf_counter() - start

        def answer(X_):
            proba = model.predict_proba(X_)
            return model.classes_[proba.argmax(axis=1)], proba.max(axis=1) >= 0.95
    else:
        from sdm_sklearn import SDMClassifier, _training

        if mode == "sdm-full":
            _training.ROUND_ROWS = 10**12
            _training.SELECTION_ROWS = 10**12
        if mode == "sdm-exact-epochs":
            from sdm_sklearn._exact import ExactSupport

            _training.training_factory = lambda resolved, seed: ExactSupport
            _training.scored_epochs = lambda rounds, n_warmup: np.ones(
                len(rounds), dtype=bool)
        model = SDMClassifier(random_state=seed, n_jobs=n_jobs).fit(X, y)
        fit_seconds = time.perf_counter() - start

        def answer(X_):
            frame = model.predict_uncertainty(X_)
            return frame["prediction"].to_numpy(), frame["admitted"].to_numpy()
    result = {"n": n_samples, "mode": mode, "seed": seed, "fit_s": fit_seconds}
    if mode != "ccv":
        result["n_jobs"] = n_jobs if n_jobs is not None else 1
    for name, data in (("in", X_test), ("shifted", shifted)):
        prediction, admitted = answer(data)
        result[f"{name}_admitted"], result[f"{name}_acc"] = _quality(
            prediction, admitted, y_test
        )
    result["accuracy"] = float(np.mean(answer(X_test)[0] == y_test))
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result), flush=True)


def _spawn(n_samples, mode, seed, n_jobs):
    output = subprocess.run(
        [sys.executable, __file__, "--one", str(n_samples), mode, str(seed),
         str(n_jobs)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 30_000, 100_000])
    parser.add_argument("--compare", type=int, nargs="*", default=[30_000])
    parser.add_argument("--exact-epochs", type=int, nargs="*", default=[])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="SDMClassifier's n_jobs (default: its default, "
                        "one thread); the peer's BLAS uses every core")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n_jobs = None if args.one[3] == "None" else int(args.one[3])
        run_one(int(args.one[0]), args.one[1], int(args.one[2]), n_jobs)
        return
    import pandas as pd

    rows = []
    for n_samples in args.sizes:
        modes = (["sdm", "ccv"]
                 + (["sdm-full"] if n_samples in args.compare else [])
                 + (["sdm-exact-epochs"] if n_samples in args.exact_epochs else []))
        for seed in range(args.repeats):
            for mode in modes:
                rows.append(_spawn(n_samples, mode, seed, args.n_jobs))
                print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    table = frame.groupby(["n", "mode"]).median(numeric_only=True).drop(columns="seed")
    print(table.to_string(float_format="{:.3f}".format))
    times = table["fit_s"].unstack("mode")
    print("\nfit time, SDMClassifier / CalibratedClassifierCV (medians):")
    print((times["sdm"] / times["ccv"]).to_string(float_format="{:.1f}x".format))
    if len(args.sizes) > 1:
        for mode in ("sdm", "ccv"):
            slope = np.polyfit(np.log(times.index), np.log(times[mode]), 1)[0]
            print(f"growth exponent of {mode} fit time: {slope:.2f}")


if __name__ == "__main__":
    main()
