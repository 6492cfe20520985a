"""search="dask" on a local cluster against the in-process exact search.

Four contenders answer the same exact search (q, nearest point, d_nearest)
for the same queries, interleaved in every repeat:

* ``exact, n_jobs=1`` and ``exact, n_jobs=2``: ``ExactSupport.search`` in
  this process, one BLAS thread per block of queries (as the package runs);
* ``dask, 1 worker`` and ``dask, 2 workers``: ``DaskSupport.search`` on a
  ``distributed.LocalCluster`` of worker processes with one thread each, the
  support set in one shard per worker.

Reported: the scaling ratio (1 worker over 2 workers), the overhead of the
cluster at equal cores (dask over exact), the cost of a one-query call, the
bytes that travel per query and per shard (counted from the arrays each
shard task receives and returns), the tasks per search and the entries of
the good runs a shard sends (the one-pass reduction of
``sdm_sklearn._dask_support``), and the load average at the start and the
end. Every answer is checked to equal the in-process one bit for bit.

Run ``nice -n 10 python benchmarks/bench_distributed.py [--quick | --full]``
(the machine is shared; ratios are medians of per-repeat ratios);
``--n-support`` and ``--n-queries`` override the mode's sizes (issue 21's
measurement: ``--n-support 1000000 --n-queries 4096``).
"""

import os
import time
import warnings

import numpy as np
from _common import (
    blas_threads,
    interleaved_times,
    markdown_table,
    median_ratio,
    noisy_labels,
    print_header,
    size_parser,
    sphere_clusters,
)

from sdm_sklearn._dask_support import DaskSupport
from sdm_sklearn._exact import ExactSupport, good_classes

DIMS = 128
N_CLASSES = 10
ERROR_RATE = 0.1
MAX_SIMILARITY = 2048
MODES = {
    "quick": {"n_support": 20_000, "n_queries": 1_024, "repeats": 2},
    "default": {"n_support": 100_000, "n_queries": 4_096, "repeats": 5},
    "full": {"n_support": 300_000, "n_queries": 8_192, "repeats": 7},
}


class CountingSupport(DaskSupport):
    """A DaskSupport that records the arrays sent to and returned by shards."""

    def _on_shard(self, client, k, method, *args):
        future = super()._on_shard(client, k, method, *args)
        self.calls.append((method, args, future))
        return future


def traffic_per_query_shard(support, queries, predictions):
    """Bytes per query and shard of one search, its shard tasks, run entries.

    Inbound: the queries, their predictions and self indices (every shard
    reads them once); outbound: every array a shard returns.

    Returns
    -------
    per_query : float
        Bytes per (query, shard) pair.
    tasks : int
        Shard tasks of the search (a second round only where a long run
        leaves a count open).
    run_entries : float
        Good-run entries a shard sends, per (query, shard) pair.
    """
    counting = CountingSupport._from_state(support._state)
    counting.calls = []
    counting.search(queries, predictions, MAX_SIMILARITY)
    n_shards = len(counting.shards)
    sent = n_shards * (queries.nbytes + 2 * 8 * len(queries))
    entries = 0
    client = counting.shards[0].client
    results = client.gather([future for _, _, future in counting.calls])
    for (method, args, _), result in zip(counting.calls, results,
                                         strict=True):
        sent += sum(arg.nbytes for arg in args if isinstance(arg, np.ndarray))
        returned = result if isinstance(result, tuple) else (result,)
        sent += sum(array.nbytes for array in returned)
        if method == "search_part":  # (..., low run ends, high run ends)
            entries += len(returned[-2]) + len(returned[-1])
    pairs = len(queries) * n_shards
    return sent / pairs, len(counting.calls), entries / pairs


def main():
    parser = size_parser(
        __doc__.splitlines()[0],
        quick="20k support points, 1024 queries, 2 repeats",
        default="100k support points of 128-d, 4096 queries, 5 repeats",
        full="300k support points, 8192 queries, 7 repeats",
    )
    parser.add_argument("--n-support", type=int, default=None,
                        help="support points (default: the mode's)")
    parser.add_argument("--n-queries", type=int, default=None,
                        help="queries (default: the mode's)")
    args = parser.parse_args()
    mode = MODES[args.mode]
    repeats = args.repeats or mode["repeats"]
    n_support = args.n_support or mode["n_support"]
    n_queries = args.n_queries or mode["n_queries"]
    print_header("search=\"dask\" against in-process exact search")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    from distributed import Client, LocalCluster

    X, y = sphere_clusters(n_support + n_queries, DIMS, N_CLASSES, seed=0)
    predictions = noisy_labels(y, N_CLASSES, ERROR_RATE, seed=1)
    support, queries = X[:n_support], X[n_support:]
    good = good_classes(predictions[:n_support], y[:n_support])
    query_predictions = predictions[n_support:]
    exact = ExactSupport(support, good)

    clusters, sharded = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's start-up notices
        for n_workers in (1, 2):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster, set_as_default=False)
            clusters.append((cluster, client))
            with client.as_current():
                start = time.perf_counter()
                sharded[n_workers] = DaskSupport(support, good)
                sharded[n_workers].search(queries[:1], query_predictions[:1], 1)
                print(f"{n_workers} worker(s): support set sent and first "
                      f"search in {time.perf_counter() - start:.1f} s")

    def in_process(n_jobs, rows=slice(None)):
        def run():
            with blas_threads(1):
                return exact.search(queries[rows], query_predictions[rows],
                                    MAX_SIMILARITY, n_jobs=n_jobs)
        return run

    def on_cluster(n_workers, rows=slice(None)):
        def run():
            with clusters[n_workers - 1][1].as_current():
                return sharded[n_workers].search(
                    queries[rows], query_predictions[rows], MAX_SIMILARITY)
        return run

    expected = in_process(1)()
    for n_workers in (1, 2):
        for got, want in zip(on_cluster(n_workers)(), expected, strict=True):
            assert np.array_equal(got, want), "answers differ from exact search"
    print("answers of both clusters equal exact search bit for bit")
    print(f"load average before timing: {os.getloadavg()[0]:.2f}")
    print()

    contenders = {
        "exact, n_jobs=1": in_process(1),
        "exact, n_jobs=2": in_process(2),
        "dask, 1 worker": on_cluster(1),
        "dask, 2 workers": on_cluster(2),
    }
    times = interleaved_times(contenders, repeats)
    one_query = interleaved_times(
        {"exact": in_process(1, slice(0, 1)), "dask": on_cluster(2, slice(0, 1))},
        max(repeats, 5) * 4,
    )
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    print()
    rate = n_queries * n_support * DIMS * 2
    print(f"{n_queries} queries against {n_support} support points of "
          f"{DIMS}-d, median of {repeats} repeats")
    print()
    print(markdown_table(
        ["contender", "seconds", "queries/s", "effective GFLOP/s"],
        [[name, f"{np.median(values):.3f}",
          f"{n_queries / np.median(values):,.0f}",
          f"{rate / np.median(values) / 1e9:.1f}"]
         for name, values in times.items()],
    ))
    print()
    with clusters[1][1].as_current():
        per_query, tasks, run_entries = traffic_per_query_shard(
            sharded[2], queries, query_predictions)
    print(markdown_table(
        ["ratio", "median"],
        [
            ["scaling: dask 1 worker / dask 2 workers",
             f"{median_ratio(times['dask, 1 worker'], times['dask, 2 workers']):.2f}"],
            ["overhead, 1 core: dask 1 worker / exact n_jobs=1",
             f"{median_ratio(times['dask, 1 worker'], times['exact, n_jobs=1']):.2f}"],
            ["overhead, 2 cores: dask 2 workers / exact n_jobs=2",
             f"{median_ratio(times['dask, 2 workers'], times['exact, n_jobs=2']):.2f}"],
            ["in-process scaling: exact n_jobs=1 / n_jobs=2",
             f"{median_ratio(times['exact, n_jobs=1'], times['exact, n_jobs=2']):.2f}"],
        ],
    ))
    print()
    print(markdown_table(
        ["one-query call", "median ms"],
        [[name, f"{1e3 * np.median(values):.1f}"]
         for name, values in one_query.items()],
    ))
    print()
    print(f"bytes per query per shard (2 shards): {per_query:.0f} "
          f"(queries of {4 * DIMS} B); shard tasks per search: {tasks} "
          f"(2: one round); good-run entries sent per (query, shard): "
          f"{run_entries:.1f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for cluster, client in clusters:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
