"""Large support sets: build time, queries per second, peak memory, agreement.

Part 1, search. Support sets of 10^5 and 10^6 points (and 3 x 10^4 and
3 x 10^5, for where ``search="auto"`` switches) in the package's search
space: 384-d embedding-like data (unit-norm class clusters whose noise spans
``INTRINSIC_DIMS`` directions) mapped by the exemplar adaptor of an
``SDMClassifier`` with the default ``n_exemplar_dims=128`` (so 128
dimensions, as ``min(D, M)`` gives), with ``ERROR_RATE`` of the points
mispredicted. Backends:

- ``exact``: ``ExactSupport``;
- ``faiss``: ``FaissSupport`` (FAISS k-means cells, the exact kernel over
  each query's nearest cells), what ``search="faiss"`` builds;
- ``approximate``: ``NNDescentSupport`` (pynndescent graph);
- ``faiss-ivf``: FAISS's own IVF-Flat scan of the same number of cells and
  probes, q from its top-k lists (grown like ``NNDescentSupport``'s);
- ``faiss-ivf-grouped``: the support set grouped by the class each point is
  good for; r by a FAISS IVF-Flat nearest-1 search over the other groups, q
  by counting the query's own group closer than r (top-k, grown);
- ``faiss-hnsw``: a FAISS HNSW graph, q from its top-k lists.

The last three are measured here only, to choose between designs. Every
(size, backend) runs in its own subprocess, so that its peak resident memory
(``getrusage``) is its own; queries are timed with one and two threads
(``n_jobs``, or FAISS's OpenMP threads). The first ``N_SAMPLE`` queries are
compared with the exact answers of the same size; at 10^6 points the exact
backend answers those only.

Part 2, threads: ``predict_uncertainty`` of a model fitted with
``search="exact"`` on ``NJOBS_ROWS`` rows (a support split of half of them),
with ``n_jobs=1`` and ``n_jobs=2``, interleaved, medians; the outputs must be
identical.

Run ``python benchmarks/bench_scale.py [--quick | --full] [--part ...]``
(``nice -n 10`` on a shared machine); ``--full`` adds 3 x 10^5 and 10^6.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, nullcontext

import numpy as np
import pandas as pd
from _common import (
    interleaved_times,
    markdown_table,
    median_ratio,
    peak_rss_bytes,
    print_header,
    search_space_problem,
    size_parser,
    sphere_clusters,
    verdict,
)

from sdm_sklearn import SDMClassifier
from sdm_sklearn._blas import single_threaded_blas
from sdm_sklearn._exact import ExactSupport, as_search_array, exact_distances
from sdm_sklearn._faiss import FaissSupport
from sdm_sklearn._nndescent import NNDescentSupport
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning, SmallRegionWarning

N_FEATURES = 384
N_CLASSES = 10
SPREAD = 1.5
INTRINSIC_DIMS = 48
ERROR_RATE = 0.10  # mispredicted support points and queries
MAX_SIMILARITY = 2048
N_SAMPLE = 2_000  # queries compared with exact search
QUERY_POOL = 5_000  # queries generated for every size; runs use the first ones
THREADS = (1, 2)
ALL_BACKENDS = ("exact", "faiss", "approximate", "faiss-ivf",
                "faiss-ivf-grouped", "faiss-hnsw")
AUTO_BACKENDS = ("exact", "faiss")
MODES = {
    "quick": {"plan": [(10_000, ALL_BACKENDS)], "n_queries": 2_000,
              "repeats": 1, "njobs_rows": 8_000, "njobs_queries": 4_000},
    "default": {"plan": [(30_000, AUTO_BACKENDS), (100_000, ALL_BACKENDS)],
                "n_queries": 5_000, "repeats": 3, "njobs_rows": 80_000,
                "njobs_queries": 20_000},
    "full": {"plan": [(30_000, AUTO_BACKENDS), (100_000, ALL_BACKENDS),
                      (300_000, AUTO_BACKENDS), (1_000_000, ALL_BACKENDS)],
             "n_queries": 5_000, "repeats": 3, "njobs_rows": 80_000,
             "njobs_queries": 20_000},
}
# The exact backend answers only the sample queries from this size on.
EXACT_SAMPLE_ONLY = 1_000_000
# Targets of the issue, for the faiss backend at 10^6 points.
TARGET_SIZE = 1_000_000
TARGET_QPS = 3_000
TARGET_Q_AGREEMENT = 0.97
TARGET_BUILD_SECONDS = 120
TARGET_PEAK_BYTES = 8 * 2**30
TARGET_NJOBS_SPEEDUP = 1.5
# The design variants measured here only: HNSW graph settings (M, build and
# search widths; FAISS's defaults are 32, 40 and 16) and threads of its build.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
HNSW_BUILD_THREADS = 2
REGION_WARNINGS = (NoHighReliabilityRegionWarning, SmallRegionWarning)
# Saved one .npy each, so that a worker's peak memory is not that of loading.
PROBLEM_ARRAYS = ("support", "good", "queries", "predictions")


@contextmanager
def faiss_threads(n_threads):
    """FAISS's OpenMP threads inside the block, the previous setting after."""
    import faiss

    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(saved)


def faiss_ivf(vectors):
    """An IVF-Flat index with the cells, probes and k-means of FaissSupport."""
    import faiss

    n_cells = round(math.sqrt(len(vectors)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(vectors.shape[1]),
                               vectors.shape[1], n_cells)
    index.cp.niter = FaissSupport.KMEANS_ITERATIONS
    index.cp.max_points_per_centroid = FaissSupport.SAMPLE_PER_CELL
    index.cp.seed = 0
    with faiss_threads(1):
        index.train(vectors)
        index.add(vectors)
    index.nprobe = min(FaissSupport.N_PROBE, n_cells)
    return index


class FaissIVFTopK(NNDescentSupport):
    """q from FAISS IVF-Flat top-k lists (the run of NNDescentSupport)."""

    def __init__(self, vectors, good_labels):
        self.vectors = as_search_array(vectors)
        self.good_labels = np.asarray(good_labels, dtype=np.int64)
        self.index = faiss_ivf(self.vectors)

    def _query(self, queries32, k):
        distances, neighbors = self.index.search(queries32, k)
        return neighbors, distances


class FaissHNSWTopK(NNDescentSupport):
    """q from FAISS HNSW top-k lists (the run of NNDescentSupport)."""

    def __init__(self, vectors, good_labels):
        import faiss

        self.vectors = as_search_array(vectors)
        self.good_labels = np.asarray(good_labels, dtype=np.int64)
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M)
        self.index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        with faiss_threads(HNSW_BUILD_THREADS):
            self.index.add(self.vectors)

    def _query(self, queries32, k):
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        distances, neighbors = self.index.search(queries32, k, params=params)
        return neighbors, distances


class FaissIVFGrouped:
    """r by nearest-1 over the other groups, q by a count in the own group.

    The support set is sorted by good class, so that every group is a range
    of FAISS ids, selected with ``IDSelectorRange`` (the own group) or its
    negation (the others), in one IVF-Flat index.
    """

    INITIAL_K = 64
    GROWTH = 8
    MAX_K = 2048

    def __init__(self, vectors, good_labels):
        good_labels = np.asarray(good_labels, dtype=np.int64)
        self.order = np.argsort(good_labels, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.sorted_vectors = np.ascontiguousarray(as_search_array(vectors)[self.order])
        self.sorted_good = good_labels[self.order]
        self.index = faiss_ivf(self.sorted_vectors)

    def _ranked(self, queries32, k, selector):
        import faiss

        params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)
        distances, positions = self.index.search(queries32, k, params=params)
        return np.where(positions >= 0, distances, np.inf), positions

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
        import faiss

        queries32 = as_search_array(queries)
        n_queries = len(queries32)
        predictions = np.asarray(predictions, dtype=np.int64)
        self_positions = np.full(n_queries, -1, dtype=np.int64)
        if self_indices is not None:
            self_positions[self_indices >= 0] = self.position[
                self_indices[self_indices >= 0]]
        q = np.zeros(n_queries, dtype=np.int64)
        nearest = np.full(n_queries, -1, dtype=np.int64)
        for label in np.unique(predictions):
            rows = np.flatnonzero(predictions == label)
            lo, hi = np.searchsorted(self.sorted_good, [label, label + 1])
            own = faiss.IDSelectorRange(int(lo), int(hi))
            others = faiss.IDSelectorNot(own)
            skip = self_positions[rows, None]
            with faiss_threads(n_jobs):
                bad, bad_at = self._ranked(queries32[rows], 2, others)
                bad = np.where(bad_at == skip, np.inf, bad)
                first = np.argmin(bad, axis=1)
                radius = bad[np.arange(len(rows)), first]
                radius_at = bad_at[np.arange(len(rows)), first]
                k, pending = self.INITIAL_K, np.arange(len(rows))
                while len(pending):
                    good, good_at = self._ranked(queries32[rows[pending]], k + 1, own)
                    good = np.where(good_at == skip[pending], np.inf, good)
                    run = np.sum(good < radius[pending, None], axis=1)
                    q[rows[pending]] = np.minimum(run, max_similarity)
                    best = good_at[np.arange(len(pending)), np.argmin(good, axis=1)]
                    closer = good.min(axis=1) < radius[pending]
                    positions = np.where(closer, best, radius_at[pending])
                    nearest[rows[pending]] = np.where(
                        positions >= 0, self.order[np.maximum(positions, 0)], -1)
                    longer = (run >= k) & (run < max_similarity) & (k < self.MAX_K)
                    pending, k = pending[longer], k * self.GROWTH
        d_nearest = np.full(n_queries, np.inf)
        found = nearest >= 0
        d_nearest[found] = exact_distances(
            queries32[found], self.sorted_vectors, self.position[nearest[found]])
        return q, nearest, d_nearest


def build_backend(backend, support, good):
    if backend == "exact":
        return ExactSupport(support, good)
    if backend == "faiss":
        return FaissSupport(support, good, random_state=0)
    if backend == "approximate":
        return NNDescentSupport(support, good, random_state=0)
    variants = {"faiss-ivf": FaissIVFTopK, "faiss-ivf-grouped": FaissIVFGrouped,
                "faiss-hnsw": FaissHNSWTopK}
    return variants[backend](support, good)


def threads_of(backend):
    """Thread counts a backend is timed with (pynndescent queries on one)."""
    return (1,) if backend == "approximate" else THREADS


def timed_search(index, backend, queries, predictions, n_jobs):
    """One search with ``n_jobs`` threads; its answers and wall seconds."""
    context = faiss_threads(n_jobs) if backend.startswith("faiss-") else nullcontext()
    with context:
        start = time.perf_counter()
        answers = index.search(queries, predictions, MAX_SIMILARITY, n_jobs=n_jobs)
        return answers, time.perf_counter() - start


def warm_up(backend):
    """Compile the backend's kernels on a tiny set; seconds taken."""
    if backend == "exact":
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    support = rng.normal(size=(2_000, 8)).astype(np.float32)
    good = rng.integers(-1, 3, 2_000)
    build_backend(backend, support, good).search(
        support[:50], np.abs(good[:50]), MAX_SIMILARITY)
    return time.perf_counter() - start


def worker(problem_path, backend, n_queries, repeats, out_path):
    """Measure one (size, backend) in this process; print one JSON line.

    Everything runs with one BLAS thread, as the package's fit and predict
    methods do (threads come from ``n_jobs``).
    """
    with single_threaded_blas():
        measure_backend(problem_path, backend, n_queries, repeats, out_path)


def measure_backend(problem_path, backend, n_queries, repeats, out_path):
    jit_seconds = warm_up(backend)
    support, good, queries, predictions = (
        np.load(f"{problem_path}_{name}.npy") for name in PROBLEM_ARRAYS)
    if backend == "exact" and len(support) >= EXACT_SAMPLE_ONLY:
        n_queries = N_SAMPLE
    queries, predictions = queries[:n_queries], predictions[:n_queries]
    data_peak = peak_rss_bytes()
    start = time.perf_counter()
    index = build_backend(backend, support, good)
    build_seconds = time.perf_counter() - start
    record = {"jit_seconds": jit_seconds, "build_seconds": build_seconds,
              "n_queries": n_queries, "data_bytes": support.nbytes,
              "data_peak_bytes": data_peak}
    index.search(queries[:10], predictions[:10], MAX_SIMILARITY)  # first call
    for n_jobs in threads_of(backend):
        seconds = []
        for _ in range(repeats):
            answers, elapsed = timed_search(index, backend, queries, predictions,
                                            n_jobs)
            seconds.append(elapsed)
        record[f"seconds_{n_jobs}"] = float(np.median(seconds))
    record["peak_bytes"] = peak_rss_bytes()
    q, nearest, d_nearest = answers
    np.savez(out_path, q=q[:N_SAMPLE], nearest=nearest[:N_SAMPLE],
             d_nearest=d_nearest[:N_SAMPLE], mean_q=q.mean(),
             p90_q=np.percentile(q, 90))
    print(json.dumps(record))


def run_worker(problem_path, backend, n_queries, repeats, directory):
    """Run one measurement in a subprocess; its JSON record and arrays."""
    out_path = os.path.join(directory, f"{backend}_answers.npz")
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               problem_path, backend, str(n_queries), str(repeats), out_path]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"worker {backend} failed:\n{completed.stderr}")
    record = json.loads(completed.stdout.strip().splitlines()[-1])
    record["wall_seconds"] = time.perf_counter() - start
    with np.load(out_path) as arrays:
        record["sample"] = {name: arrays[name] for name in arrays.files}
    return record


def agreement(sample, exact):
    """q, nearest index and d_nearest of a sample against the exact ones."""
    n = min(len(sample["q"]), len(exact["q"]))
    sample = {name: sample[name][:n] for name in ("q", "nearest", "d_nearest")}
    exact = {name: exact[name][:n] for name in ("q", "nearest", "d_nearest")}
    gap = (sample["d_nearest"] - exact["d_nearest"]) / exact["d_nearest"]
    return {
        "n": n,
        "q_agree": float(np.mean(sample["q"] == exact["q"])),
        "q_high": float(np.mean(sample["q"] > exact["q"])),
        "q_low": float(np.mean(sample["q"] < exact["q"])),
        "q_gap": float(np.mean(np.abs(sample["q"] - exact["q"]))),
        "nearest_agree": float(np.mean(sample["nearest"] == exact["nearest"])),
        "d_agree": float(np.mean(sample["d_nearest"] == exact["d_nearest"])),
        "d_gap": float(np.mean(gap)),
        "d_gap_max": float(np.max(gap)),
    }


def measure_search(settings, repeats):
    """Every (size, backend) of the plan; records keyed by (size, backend)."""
    records = {}
    with tempfile.TemporaryDirectory() as directory:
        for n_support, backends in settings["plan"]:
            start = time.perf_counter()
            problem = search_space_problem(
                n_support, QUERY_POOL, n_features=N_FEATURES, n_classes=N_CLASSES,
                spread=SPREAD, intrinsic_dims=INTRINSIC_DIMS, error_rate=ERROR_RATE,
                seed=n_support,
            )
            problem_path = os.path.join(directory, "problem")
            for name in PROBLEM_ARRAYS:
                np.save(f"{problem_path}_{name}.npy", problem[name])
            del problem
            print(f"data for {n_support:,} points "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            for backend in backends:
                records[n_support, backend] = run_worker(
                    problem_path, backend, settings["n_queries"], repeats, directory)
                print(f"measured {backend} at {n_support:,} points "
                      f"({records[n_support, backend]['wall_seconds']:.0f} s)",
                      flush=True)
    return records


def qps(record, n_jobs):
    key = f"seconds_{n_jobs}"
    return record["n_queries"] / record[key] if key in record else float("nan")


def report_search(records):
    """The search tables and the 10^6 targets."""
    rows, checks = [], []
    for (n_support, backend), record in records.items():
        exact = records[n_support, "exact"]
        match = agreement(record["sample"], exact["sample"])
        rate = [qps(record, n_jobs) for n_jobs in THREADS]
        rows.append([
            f"{n_support:,}", backend, f"{record['build_seconds']:.1f}",
            f"{rate[0]:,.0f}",
            "-" if math.isnan(rate[1]) else f"{rate[1]:,.0f}",
            f"{rate[0] / qps(exact, 1):.2f}",
            f"{record['peak_bytes'] / 2**30:.2f}",
            f"{record['data_peak_bytes'] / 2**30:.2f}",
            f"{100 * match['q_agree']:.1f}%",
            f"{100 * match['q_high']:.1f}% / {100 * match['q_low']:.1f}%",
            f"{match['q_gap']:.2f}",
            f"{100 * match['nearest_agree']:.1f}%",
            f"{100 * match['d_agree']:.1f}%",
            f"{100 * match['d_gap']:.2f}% / {100 * match['d_gap_max']:.1f}%",
            f"{float(record['sample']['mean_q']):.1f} / "
            f"{float(record['sample']['p90_q']):.0f}",
        ])
        if n_support == TARGET_SIZE and backend == "faiss":
            best = np.nanmax(rate)
            checks = [
                f"- >= {TARGET_QPS:,} predictions/s: {verdict(best >= TARGET_QPS)} "
                f"({rate[0]:,.0f} with 1 thread, {rate[1]:,.0f} with 2)",
                f"- q equal to exact for >= {TARGET_Q_AGREEMENT:.0%} of "
                f"{match['n']:,} sampled queries: "
                f"{verdict(match['q_agree'] >= TARGET_Q_AGREEMENT)} "
                f"({match['q_agree']:.1%}, mean |q gap| {match['q_gap']:.2f})",
                f"- build <= {TARGET_BUILD_SECONDS / 60:.0f} min: "
                f"{verdict(record['build_seconds'] <= TARGET_BUILD_SECONDS)} "
                f"({record['build_seconds']:.0f} s)",
                f"- peak memory < {TARGET_PEAK_BYTES / 2**30:.0f} GB: "
                f"{verdict(record['peak_bytes'] < TARGET_PEAK_BYTES)} "
                f"({record['peak_bytes'] / 2**30:.2f} GB, data "
                f"{record['data_bytes'] / 2**30:.2f} GB)",
            ]
    print(markdown_table(
        ["support", "backend", "build s", "queries/s, 1 thread",
         "queries/s, 2 threads", "x exact (1 thread)", "peak GB",
         "peak GB before build", "q = exact",
         "q > / < exact", "mean abs q gap", "nearest = exact", "d_nearest = exact",
         "d_nearest gap mean / max", "q mean / p90"],
        rows,
    ))
    print()
    sample_sizes = sorted({agreement(r["sample"], records[s, "exact"]["sample"])["n"]
                           for (s, _), r in records.items()})
    print(f"Agreement over the first {', '.join(map(str, sample_sizes))} queries, "
          "against the exact backend at the same size. d_nearest gap: "
          "(approximate - exact) / exact. x exact: queries/s over the exact "
          "backend's, both with 1 thread. peak GB: peak resident memory of the "
          "measuring process, data and imports included (before build: after "
          "loading the data, before building). pynndescent queries run on one "
          "thread; faiss-hnsw builds with "
          f"{HNSW_BUILD_THREADS} threads, every other build with one.")
    if any(size >= EXACT_SAMPLE_ONLY for size, _ in records):
        print(f"From {EXACT_SAMPLE_ONLY:,} points on, the exact row's queries/s "
              f"comes from the {N_SAMPLE:,} sample queries only.")
    print()
    auto_rows = []
    for n_support in sorted({size for size, backend in records if backend == "faiss"}):
        exact, cells = records[n_support, "exact"], records[n_support, "faiss"]
        # one pass of as many queries as support points, as fit's self-search
        passes = [record["build_seconds"] + n_support / qps(record, 1)
                  for record in (exact, cells)]
        auto_rows.append([
            f"{n_support:,}", f"{qps(exact, 1):,.0f}", f"{qps(cells, 1):,.0f}",
            f"{cells['build_seconds']:.1f}", f"{passes[0]:.0f}", f"{passes[1]:.0f}",
            f"{passes[0] / passes[1]:.2f}",
        ])
    print("### Where search=\"auto\" should switch: exact against faiss, 1 thread")
    print()
    print(markdown_table(
        ["support", "exact queries/s", "faiss queries/s", "faiss build s",
         "exact pass s", "faiss pass s", "exact / faiss"],
        auto_rows,
    ))
    print()
    print("pass: build plus one search of as many queries as support points "
          "(what fit's support self-search costs per epoch).")
    print()
    if checks:
        print(f"Targets at {TARGET_SIZE:,} points (faiss backend):")
        print()
        print("\n".join(checks))
    else:
        print(f"The {TARGET_SIZE:,}-point targets need --full.")


def fit_quietly(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", REGION_WARNINGS)
        return estimator.fit(X, y)


def bench_n_jobs(n_rows, n_queries, repeats):
    """predict_uncertainty with n_jobs=1 and 2 on a model with exact search."""
    X, y = sphere_clusters(n_rows + n_queries, N_FEATURES, N_CLASSES, spread=SPREAD,
                           intrinsic_dims=INTRINSIC_DIMS, seed=1)
    start = time.perf_counter()
    model = fit_quietly(
        SDMClassifier(search="exact", n_iterations=1, n_epochs=2, random_state=0),
        X[:n_rows], y[:n_rows],
    )
    fit_seconds = time.perf_counter() - start
    queries = X[n_rows:]
    outputs = {}

    def predictor(n_jobs):
        def run():
            outputs[n_jobs] = model.set_params(n_jobs=n_jobs).predict_uncertainty(
                queries)
        return run

    times = interleaved_times({n_jobs: predictor(n_jobs) for n_jobs in THREADS},
                              repeats)
    pd.testing.assert_frame_equal(outputs[1], outputs[2])
    ratio = median_ratio(times[1], times[2])
    n_support = len(model.support_labels_)
    print(f"## Threads: predict_uncertainty, {n_queries:,} queries, "
          f"{n_support:,} support points (search=\"exact\", fit on {n_rows:,} "
          f"rows in {fit_seconds:.0f} s), median of {repeats}")
    print()
    print(markdown_table(
        ["n_jobs", "seconds", "rows / s"],
        [[n_jobs, f"{np.median(times[n_jobs]):.2f}",
          f"{n_queries / np.median(times[n_jobs]):,.0f}"] for n_jobs in THREADS],
    ))
    print()
    print(f"- outputs with n_jobs=1 and n_jobs=2: identical "
          f"(assert_frame_equal, {outputs[1].shape[1]} columns)")
    print(f"- n_jobs=2 >= {TARGET_NJOBS_SPEEDUP}x faster than n_jobs=1: "
          f"{verdict(ratio >= TARGET_NJOBS_SPEEDUP)} ({ratio:.2f}x, median of "
          "per-repeat ratios)")


def main():
    parser = size_parser(
        __doc__.splitlines()[0],
        quick="10^4 points, every backend, 2000 queries; threads on 8k rows",
        default="3x10^4 (exact, faiss) and 10^5 points (every backend), 5000 "
                "queries, 3 repeats; threads on 80k rows",
        full="adds 3x10^5 (exact, faiss) and 10^6 points (every backend)",
    )
    parser.add_argument("--part", choices=("all", "search", "threads"),
                        default="all", help="which part to run (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="only these support sizes of the mode's plan")
    parser.add_argument("--backends", nargs="+", choices=ALL_BACKENDS,
                        help="only these backends (exact is always measured)")
    args = parser.parse_args()
    settings = dict(MODES[args.mode])
    settings["plan"] = [
        (size, tuple(b for b in backends
                     if args.backends is None or b in args.backends or b == "exact"))
        for size, backends in settings["plan"]
        if args.sizes is None or size in args.sizes
    ]
    repeats = args.repeats or settings["repeats"]
    print_header(
        f"bench_scale: {N_FEATURES}-d embedding-like data in the 128-d search "
        f"space, {N_CLASSES} classes, noise in {INTRINSIC_DIMS} directions, "
        f"{ERROR_RATE:.0%} mispredicted, {settings['n_queries']} queries, median "
        f"of {repeats} (mode {args.mode})"
    )
    if args.part in ("all", "search"):
        records = measure_search(settings, repeats)
        print()
        report_search(records)
        print()
    if args.part in ("all", "threads"):
        bench_n_jobs(settings["njobs_rows"], settings["njobs_queries"], repeats)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        path, backend_name, queries_arg, repeats_arg, answers_path = sys.argv[2:]
        worker(path, backend_name, int(queries_arg), int(repeats_arg), answers_path)
    else:
        main()
