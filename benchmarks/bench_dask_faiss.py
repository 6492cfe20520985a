"""search="dask-faiss" on a local cluster: agreement with exact search, speed.

The data of ``bench_scale.py`` (384-d embedding-like ``sphere_clusters``
mapped into the 128-d search space of a default ``SDMClassifier``, 10 %
mispredicted; ``_common.search_space_problem``), support sets of
``--n-support`` points (the issue's measurement: 10^6). On one
``distributed.LocalCluster`` of 2 worker processes with one thread each:

* ``dask (exact)``: ``DaskSupport``, exact sharded search (``search="dask"``);
* ``dask-faiss``: ``DaskFaissSupport``, FAISS cells in every shard
  (``search="dask-faiss"``, the fitted model's 56 probes);

and the same ``dask-faiss`` on a second such cluster whose workers start
without distributed's ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``), under which every large array a
worker allocates is a fresh mapping, first touched page by page; and in
this process, as a control, ``FaissSupport`` (``search="faiss"``)
with ``n_jobs=1`` and ``n_jobs=2``, one BLAS thread a block. The first
``N_SAMPLE`` queries are searched by all; the exact sharded answers are
the reference of q agreement (they equal ``ExactSupport``'s bit for bit),
and ``DaskFaissSupport``'s answers are checked to equal ``FaissSupport``'s
bit for bit. Throughput: each contender's searches timed interleaved in
every repeat (the exact one on the sample only: it is about 30 times
slower); queries/s ratios are medians of per-repeat ratios.

Run ``nice -n 10 python benchmarks/bench_dask_faiss.py [--quick | --full]``
(``--n-support 1000000`` for the issue's size; ``--n-queries`` the
approximate contenders' queries per search).
"""

import contextlib
import os
import time
import warnings

import dask
import numpy as np
from _common import (
    interleaved_times,
    markdown_table,
    print_header,
    search_space_problem,
    size_parser,
    verdict,
)
from bench_scale import (
    ERROR_RATE,
    INTRINSIC_DIMS,
    MAX_SIMILARITY,
    N_CLASSES,
    N_FEATURES,
    N_SAMPLE,
    SPREAD,
    TARGET_Q_AGREEMENT,
    agreement,
)

from sdm_sklearn._blas import single_threaded_blas
from sdm_sklearn._dask_faiss import DaskFaissSupport
from sdm_sklearn._dask_support import DaskSupport
from sdm_sklearn._faiss import FaissSupport

MODES = {
    "quick": {"n_support": 30_000, "n_queries": 4_096, "repeats": 2},
    "default": {"n_support": 300_000, "n_queries": 8_192, "repeats": 3},
    "full": {"n_support": 1_000_000, "n_queries": 8_192, "repeats": 3},
}
SEED = 0  # random_state of the cells


def _answers(answers):
    return dict(zip(("q", "nearest", "d_nearest"), answers, strict=True))


def main():
    parser = size_parser(
        __doc__.splitlines()[0],
        quick="30k support points, 4096 queries, 2 repeats",
        default="300k support points, 8192 queries, 3 repeats",
        full="10^6 support points, 8192 queries, 3 repeats",
    )
    parser.add_argument("--n-support", type=int, default=None)
    parser.add_argument("--n-queries", type=int, default=None)
    args = parser.parse_args()
    mode = MODES[args.mode]
    repeats = args.repeats or mode["repeats"]
    n_support = args.n_support or mode["n_support"]
    n_queries = args.n_queries or mode["n_queries"]
    n_sample = min(N_SAMPLE, n_queries)
    print_header('search="dask-faiss" against exact sharded search')
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    problem = search_space_problem(
        n_support, n_queries, n_features=N_FEATURES, n_classes=N_CLASSES,
        spread=SPREAD, intrinsic_dims=INTRINSIC_DIMS, error_rate=ERROR_RATE,
        seed=n_support,
    )
    support, good = problem["support"], problem["good"]
    queries, predictions = problem["queries"], problem["predictions"]
    print(f"data: {n_support:,} support points of {support.shape[1]}-d, "
          f"{n_queries:,} queries ({time.perf_counter() - start:.0f} s)")

    clusters = {}
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    untrimmed = {key: value for key, value in environ.items()
                 if key != "MALLOC_TRIM_THRESHOLD_"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's start-up notices
        for kind, settings in (("default", environ), ("no trim", untrimmed)):
            with dask.config.set({"distributed.nanny.pre-spawn-environ":
                                  settings}):
                cluster = LocalCluster(n_workers=2, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
            clusters[kind] = cluster, Client(cluster, set_as_default=False)
    builds, backends = {}, {}
    constructors = {
        "dask (exact)": ("default", lambda: DaskSupport(support, good)),
        "dask-faiss": ("default", lambda: DaskFaissSupport(
            support, good, random_state=SEED)),
        "dask-faiss, no trim": ("no trim", lambda: DaskFaissSupport(
            support, good, random_state=SEED)),
        "faiss (in process)": (None, lambda: FaissSupport(
            support, good, random_state=SEED)),
    }
    for name, (kind, build) in constructors.items():
        start = time.perf_counter()
        current = (clusters[kind][1].as_current() if kind
                   else contextlib.nullcontext())
        with single_threaded_blas(), current:
            backends[name] = build()
            # the first search waits for the shards (and loads the kernels)
            backends[name].search(queries[:1], predictions[:1], MAX_SIMILARITY)
        builds[name] = time.perf_counter() - start
        print(f"{name}: built, first search done in {builds[name]:.1f} s",
              flush=True)

    def searching(name, rows, n_jobs=1):
        def run():
            with single_threaded_blas():
                return backends[name].search(queries[rows], predictions[rows],
                                             MAX_SIMILARITY, n_jobs=n_jobs)
        return run

    sample = slice(0, n_sample)
    exact = _answers(searching("dask (exact)", sample)())
    sharded = _answers(searching("dask-faiss", slice(None))())
    in_process = _answers(searching("faiss (in process)", slice(None))())
    untrimmed_answers = _answers(searching("dask-faiss, no trim", slice(None))())
    same = all(np.array_equal(sharded[key], in_process[key])
               and np.array_equal(untrimmed_answers[key], in_process[key])
               for key in sharded)
    print(f"dask-faiss answers (both clusters) equal FaissSupport's bit for "
          f"bit: {same}")
    assert same, "dask-faiss differs from FaissSupport"
    match = agreement({key: values[:n_sample] for key, values in sharded.items()},
                      exact)
    print(f"load average before timing: {os.getloadavg()[0]:.2f}", flush=True)

    contenders = {
        "dask (exact), 2 workers": (searching("dask (exact)", sample), n_sample),
        "dask-faiss, 2 workers": (searching("dask-faiss", slice(None)),
                                  n_queries),
        "dask-faiss, 2 workers, no malloc trim": (
            searching("dask-faiss, no trim", slice(None)), n_queries),
        "faiss in process, n_jobs=1": (
            searching("faiss (in process)", slice(None)), n_queries),
        "faiss in process, n_jobs=2": (
            searching("faiss (in process)", slice(None), 2), n_queries),
    }
    times = interleaved_times({name: run for name, (run, _) in contenders.items()},
                              repeats, warmup=0)
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    rates = {name: contenders[name][1] / times[name] for name in times}
    reference = rates["dask (exact), 2 workers"]
    print()
    print(f"{n_support:,} support points of {support.shape[1]}-d, "
          f"median of {repeats} repeats; q agreement over the first "
          f"{n_sample:,} queries against the exact sharded answers")
    print()
    build_of = {"dask (exact), 2 workers": "dask (exact)",
                "dask-faiss, 2 workers": "dask-faiss",
                "dask-faiss, 2 workers, no malloc trim": "dask-faiss, no trim",
                "faiss in process, n_jobs=1": "faiss (in process)",
                "faiss in process, n_jobs=2": "faiss (in process)"}
    print(markdown_table(
        ["contender", "build + first search s", "queries a search",
         "seconds", "queries/s", "x dask (exact)"],
        [[name, f"{builds[build_of[name]]:.1f}", f"{contenders[name][1]:,}",
          f"{np.median(times[name]):.3f}", f"{np.median(rates[name]):,.0f}",
          f"{np.median(rates[name] / reference):.1f}"]
         for name in times],
    ))
    print()
    print(markdown_table(
        ["dask-faiss against exact", "value"],
        [["q = exact", f"{match['q_agree']:.1%}"],
         ["q > / < exact", f"{match['q_high']:.1%} / {match['q_low']:.1%}"],
         ["mean abs q gap", f"{match['q_gap']:.3f}"],
         ["nearest = exact", f"{match['nearest_agree']:.1%}"],
         ["d_nearest = exact", f"{match['d_agree']:.1%}"],
         ["q mean (exact)", f"{exact['q'].mean():.1f}"],
         [f"target: q = exact for at least {TARGET_Q_AGREEMENT:.0%}",
          verdict(match["q_agree"] >= TARGET_Q_AGREEMENT)]],
    ))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for cluster, client in clusters.values():
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
