"""Fit from a dask array whose rows stay on the cluster: the client's memory.

``SDMClassifier(search="dask").fit(X, y)`` with ``X`` a dask array keeps
the rows on the workers (``sdm_sklearn._dask_fit``): the adaptor trains on a
sample of at most ``TRAINING_ROWS`` support points, and the support set's
shards are built on the workers from ``X``'s blocks. This script measures,
on a local cluster of worker processes with one thread each, its scheduler
in a process of its own (``distributed.deploy.subprocess.SubprocessCluster``,
as a deployed scheduler is; ``--in-process-scheduler``: a
``distributed.LocalCluster``, whose scheduler runs in this process and so
counts in its memory):

- the client's peak resident memory growth during ``fit`` (a thread samples
  this process's RSS every 20 ms; growth = peak minus the RSS just before
  ``fit``), against the bytes of the support set (its float32 vectors);
- the scheduler's and the workers' resident memory after ``fit``;
- the fit's wall time, and the accuracy and admitted share of the fitted
  model on held-out rows.

The data are generated on the workers, block by block from a seed (noisy
class clusters on the unit sphere, as ``_common.sphere_clusters``), so the
task graph carries no arrays; the labels are generated in this process
from the same seeds (the user's ``y``, 8 bytes a row, made before the
measurement starts). A small fit first warms up the imports and the numba
caches, so the growth is the fit's own.

Run from the repository root::

    python benchmarks/bench_dask_fit.py              # 4 x 10^6 points of 64-d
    python benchmarks/bench_dask_fit.py --quick      # 4 x 10^5
    python benchmarks/bench_dask_fit.py --n-support 1000000

Issue 21's target: growth below 25% of the support set's bytes at 4 x 10^6
points of 64-d on 2 worker processes.
"""

import argparse
import os
import threading
import time
import warnings

import numpy as np
from _common import markdown_table, print_header

N_CLASSES = 10
SPREAD = 1.2
SEED = 0
CENTRE_SEED = 12345  # the class centres, shared by training and test rows


def block_labels(seed, k, n_rows):
    """Labels of block ``k``: the same in this process and on a worker."""
    return np.random.default_rng((seed, k, 0)).integers(N_CLASSES, size=n_rows)


def block_points(seed, k, n_rows, n_dims):
    """Points of block ``k``: its labels' centres plus noise, normalized."""
    centres = np.random.default_rng(CENTRE_SEED).standard_normal(
        (N_CLASSES, n_dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = np.random.default_rng((seed, k, 1)).standard_normal(
        (n_rows, n_dims), dtype=np.float32)
    points = centres[block_labels(seed, k, n_rows)] + noise * np.float32(
        SPREAD / np.sqrt(n_dims))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def lazy_data(n_rows, n_dims, chunk_rows, seed):
    """A dask array generated on the workers, and its labels here."""
    import dask.array as da

    sizes = [min(chunk_rows, n_rows - start)
             for start in range(0, n_rows, chunk_rows)]
    chunks = (tuple(sizes), (n_dims,))

    def make(block_id=None):
        k = block_id[0]
        return block_points(seed, k, sizes[k], n_dims)

    X = da.map_blocks(make, chunks=chunks, dtype=np.float32)
    y = np.concatenate([block_labels(seed, k, n) for k, n in enumerate(sizes)])
    return X, y


class RssSampler:
    """The peak resident memory of this process while it runs (a thread)."""

    def __init__(self, interval=0.02):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.start_rss = self.process.memory_info().rss
        self.peak = self.start_rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._done.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 x 10^5 support points")
    parser.add_argument("--n-support", type=int, default=None)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--calibration", type=int, default=20_000,
                        help="calibration rows (calibration_size is set so)")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--test-rows", type=int, default=20_000)
    parser.add_argument("--in-process-scheduler", action="store_true",
                        help="a LocalCluster: the scheduler in this process")
    args = parser.parse_args()
    n_support = args.n_support or (400_000 if args.quick else 4_000_000)

    import distributed

    from sdm_sklearn import SDMClassifier

    print_header("bench_dask_fit: fit from a dask array on a local cluster")
    print(f"- start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    n_rows = n_support + args.calibration
    calibration_size = args.calibration / n_rows
    if args.in_process_scheduler:
        cluster = distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True,
            dashboard_address=":0", memory_limit=0)
    else:
        from distributed.deploy.subprocess import SubprocessCluster

        cluster = SubprocessCluster(
            n_workers=args.workers, threads_per_worker=1,
            dashboard_address=":0", worker_kwargs={"memory_limit": 0})
    client = distributed.Client(cluster)
    params = dict(search="dask", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up: imports, numba caches, the cluster's first tasks
        X_small, y_small = lazy_data(20_000, args.dims, 5_000, seed=99)
        SDMClassifier(calibration_size=0.1, **params).fit(X_small, y_small)
        X, y = lazy_data(n_rows, args.dims, args.chunk_rows, SEED)
        scheduler_before = client.run_on_scheduler(_rss)
        before = _rss()
        start = time.perf_counter()
        with RssSampler() as sampler:
            clf = SDMClassifier(calibration_size=calibration_size,
                                **params).fit(X, y)
        fit_seconds = time.perf_counter() - start
    after = _rss()
    support_bytes = n_support * args.dims * 4
    growth = sampler.peak - before
    scheduler_rss = client.run_on_scheduler(_rss)
    worker_rss = client.run(_rss)

    X_test, y_test = lazy_data(args.test_rows, args.dims, args.test_rows,
                               seed=SEED + 1)
    X_test = X_test.compute()
    out = clf.predict_selective(X_test)
    admitted = out != clf.rejection_label_
    accuracy = float(np.mean(clf.predict(X_test) == y_test))
    admitted_accuracy = (float(np.mean(out[admitted] == y_test[admitted]))
                         if admitted.any() else float("nan"))

    print(f"- {args.workers} worker processes, 1 thread each; the scheduler "
          f"{'in this process' if args.in_process_scheduler else 'in its own'}"
          f"; chunks of "
          f"{args.chunk_rows:,} rows; {args.dims}-d float32; "
          f"{N_CLASSES} classes")
    print(f"- support split {len(clf.support_ids_):,} points; calibration "
          f"{len(clf.calibration_ids_):,}; fit {fit_seconds:.1f} s")
    print()
    rows = [
        ["support set (float32 vectors)", f"{support_bytes / 2**20:,.0f}", ""],
        ["client RSS just before fit", f"{before / 2**20:,.0f}", ""],
        ["client peak RSS growth during fit", f"{growth / 2**20:,.0f}",
         f"{growth / support_bytes:.1%}"],
        ["client RSS growth kept after fit", f"{(after - before) / 2**20:,.0f}",
         f"{(after - before) / support_bytes:.1%}"],
        ["scheduler RSS after fit", f"{scheduler_rss / 2**20:,.0f}", ""],
        ["scheduler RSS growth kept after fit",
         f"{(scheduler_rss - scheduler_before) / 2**20:,.0f}",
         f"{(scheduler_rss - scheduler_before) / support_bytes:.1%}"],
        *[[f"worker {k} RSS after fit", f"{rss / 2**20:,.0f}",
           f"{rss / support_bytes:.1%}"]
          for k, rss in enumerate(worker_rss.values())],
    ]
    print(markdown_table(["memory", "MiB", "of the support set"], rows))
    print()
    target = 0.25
    print(f"client peak growth {growth / support_bytes:.1%} of the support "
          f"set (target below {target:.0%}): "
          f"{'PASS' if growth < target * support_bytes else 'FAIL'}")
    print(f"held-out {args.test_rows:,} rows: accuracy {accuracy:.3f}, "
          f"admitted {admitted.mean():.3f} at {admitted_accuracy:.3f}")
    print(f"- end: load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
