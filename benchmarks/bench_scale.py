"""Large support sets: build time, queries per second, peak memory, agreement.

Support sets of 10^4, 10^5 and 10^6 points of 384-d embedding-like data
(unit-norm class clusters whose noise spans ``INTRINSIC_DIMS`` directions)
are searched by ``ExactSupport`` and by ``ApproximateSupport`` (pynndescent).
Every (size, backend) runs in its own subprocess, so that its peak resident
memory (``getrusage``) is its own. The first ``N_SAMPLE`` queries of every
run are compared with the exact search of the same size: share of equal q,
mean ``|q_approx - q_exact|``, and how ``d_nearest`` differs. At 10^6 points
the exact backend answers the sample queries only (for that comparison).

Run ``python benchmarks/bench_scale.py [--quick | --full]``; ``--full`` adds
the 10^6 case, whose approximate build alone takes a long time.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import (
    good_labels,
    markdown_table,
    noisy_labels,
    peak_rss_bytes,
    print_header,
    size_parser,
    sphere_clusters,
    verdict,
)

N_FEATURES = 384
N_CLASSES = 10
SPREAD = 1.5
INTRINSIC_DIMS = 48
ERROR_RATE = 0.05  # mispredicted support points and queries
MAX_SIMILARITY = 2048
N_SAMPLE = 200
QUERY_POOL = 5_000  # queries generated for every size; runs use the first ones
RECALL_K = 32
EPSILONS = (0.1, 0.2, 0.4)  # pynndescent's default search width is 0.1
MODES = {
    "quick": {"plan": [(10_000, "exact"), (10_000, "approximate")],
              "n_queries": 500, "repeats": 1},
    "default": {"plan": [(10_000, "exact"), (10_000, "approximate"),
                         (100_000, "exact"), (100_000, "approximate")],
                "n_queries": 2_000, "repeats": 3},
    "full": {"plan": [(10_000, "exact"), (10_000, "approximate"),
                      (100_000, "exact"), (100_000, "approximate"),
                      (1_000_000, "exact"), (1_000_000, "approximate")],
             "n_queries": 5_000, "repeats": 3},
}
# The exact backend answers only the sample queries from this size on.
EXACT_SAMPLE_ONLY = 1_000_000
# Targets of the issue, for the approximate backend at 10^6 points.
TARGET_SIZE = 1_000_000
TARGET_QPS = 2_000
TARGET_PEAK_BYTES = 8 * 2**30
TARGET_Q_AGREEMENT = 0.95


def make_problem(n_support, n_queries):
    """Support vectors, their good labels, queries and their predictions.

    The same support set and query pool for any ``n_queries``: the queries
    are the first ``n_queries`` of ``QUERY_POOL``.
    """
    X, y = sphere_clusters(n_support + QUERY_POOL, N_FEATURES, N_CLASSES,
                           spread=SPREAD, intrinsic_dims=INTRINSIC_DIMS,
                           seed=n_support)
    support_predictions = noisy_labels(y[:n_support], N_CLASSES, ERROR_RATE, 1)
    query_predictions = noisy_labels(y[n_support:], N_CLASSES, ERROR_RATE, 2)
    stop = n_support + n_queries
    return (X[:n_support], good_labels(y[:n_support], support_predictions),
            X[n_support:stop], query_predictions[:n_queries])


def warm_up(backend):
    """Compile pynndescent's kernels on a tiny set; seconds taken."""
    if backend != "approximate":
        return 0.0
    from sdm_sklearn._neighbors import ApproximateSupport

    start = time.perf_counter()
    support, good, queries, predictions = make_problem(500, 20)
    ApproximateSupport(support, good, random_state=0).search(
        queries, predictions, MAX_SIMILARITY
    )
    return time.perf_counter() - start


def worker(n_support, backend, n_queries, repeats, out_path):
    """Measure one (size, backend) in this process; print one JSON line."""
    from sdm_sklearn._neighbors import ApproximateSupport, ExactSupport

    jit_seconds = warm_up(backend)
    if backend == "exact" and n_support >= EXACT_SAMPLE_ONLY:
        n_queries = N_SAMPLE
    support, good, queries, predictions = make_problem(n_support, n_queries)
    data_peak = peak_rss_bytes()
    start = time.perf_counter()
    if backend == "exact":
        index = ExactSupport(support, good)
    else:
        index = ApproximateSupport(support, good, random_state=0)
    build_seconds = time.perf_counter() - start
    index.search(queries[:10], predictions[:10], MAX_SIMILARITY)
    query_seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        q, nearest, d_nearest = index.search(queries, predictions, MAX_SIMILARITY)
        query_seconds.append(time.perf_counter() - start)
    record = {
        "jit_seconds": jit_seconds,
        "build_seconds": build_seconds,
        "query_seconds": float(np.median(query_seconds)),
        "n_queries": n_queries,
        "data_bytes": support.nbytes,
        "data_peak_bytes": data_peak,
        "peak_bytes": peak_rss_bytes(),
    }
    arrays = {"q": q[:N_SAMPLE], "nearest": nearest[:N_SAMPLE],
              "d_nearest": d_nearest[:N_SAMPLE], "mean_q": q.mean(),
              "p90_q": np.percentile(q, 90)}
    # Neighbour lists for recall: exact ones, and the graph's raw answers at
    # several search widths (pynndescent's ``epsilon``), timed on all queries.
    if backend == "exact":
        arrays["neighbors"], _ = index.nearest(queries[:N_SAMPLE], RECALL_K)
    else:
        for epsilon in EPSILONS:
            start = time.perf_counter()
            neighbors, _ = index.index.query(queries, k=RECALL_K, epsilon=epsilon)
            record[f"epsilon_seconds_{epsilon}"] = time.perf_counter() - start
            arrays[f"neighbors_{epsilon}"] = neighbors[:N_SAMPLE]
    np.savez(out_path, **arrays)
    print(json.dumps(record))


def run_worker(n_support, backend, n_queries, repeats, directory):
    """Run one measurement in a subprocess; its JSON record and arrays."""
    out_path = os.path.join(directory, f"{backend}_{n_support}.npz")
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               str(n_support), backend, str(n_queries), str(repeats), out_path]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    record = json.loads(completed.stdout.strip().splitlines()[-1])
    record["wall_seconds"] = time.perf_counter() - start
    with np.load(out_path) as arrays:
        record["sample"] = {name: arrays[name] for name in arrays.files}
    return record


def agreement(sample, exact):
    """q and d_nearest of a sample against the exact ones."""
    same_q = sample["q"] == exact["q"]
    gap = sample["d_nearest"] - exact["d_nearest"]
    return {
        "q_agree": float(np.mean(same_q)),
        "q_high": float(np.mean(sample["q"] > exact["q"])),
        "q_gap": float(np.mean(np.abs(sample["q"] - exact["q"]))),
        "nearest_agree": float(np.mean(sample["nearest"] == exact["nearest"])),
        "d_gap": float(np.mean(gap / exact["d_nearest"])),
        "d_gap_max": float(np.max(gap / exact["d_nearest"])),
    }


def recall_rows(records):
    """Recall and speed of the raw graph query at each search width."""
    rows = []
    for (n_support, backend), record in records.items():
        if backend != "approximate":
            continue
        exact = records[n_support, "exact"]["sample"]["neighbors"]
        for epsilon in EPSILONS:
            found = record["sample"][f"neighbors_{epsilon}"]
            recall = np.mean([len(np.intersect1d(a, b)) / RECALL_K
                              for a, b in zip(found, exact, strict=True)])
            qps = record["n_queries"] / record[f"epsilon_seconds_{epsilon}"]
            rows.append([f"{n_support:,}", epsilon, f"{recall:.3f}", f"{qps:,.0f}"])
    return rows


def main():
    parser = size_parser(
        __doc__.splitlines()[0],
        quick="10^4 points, both backends, 500 queries",
        default="10^4 and 10^5 points, both backends, 2000 queries, 3 repeats",
        full="adds 10^6 points (approximate build: long), 5000 queries",
    )
    args = parser.parse_args()
    settings = MODES[args.mode]
    repeats = args.repeats or settings["repeats"]
    n_queries = settings["n_queries"]
    print_header(
        f"bench_scale: {N_FEATURES}-d support sets, {N_CLASSES} classes, "
        f"noise in {INTRINSIC_DIMS} directions, {n_queries} queries, median of "
        f"{repeats} searches (mode {args.mode})"
    )
    records = {}
    with tempfile.TemporaryDirectory() as directory:
        for n_support, backend in settings["plan"]:
            records[n_support, backend] = run_worker(
                n_support, backend, n_queries, repeats, directory
            )
            print(f"measured {backend} at {n_support} points "
                  f"({records[n_support, backend]['wall_seconds']:.0f} s)",
                  flush=True)
    print()
    rows, checks = [], []
    for (n_support, backend), record in records.items():
        match = agreement(record["sample"], records[n_support, "exact"]["sample"])
        qps = record["n_queries"] / record["query_seconds"]
        rows.append([
            f"{n_support:,}", backend, f"{record['build_seconds']:.1f}",
            f"{record['jit_seconds']:.0f}", f"{qps:,.0f}",
            f"{record['peak_bytes'] / 2**30:.2f}",
            f"{record['data_bytes'] / 2**30:.2f}",
            f"{100 * match['q_agree']:.1f}%",
            f"{100 * match['q_high']:.1f}% / "
            f"{100 * (1 - match['q_agree'] - match['q_high']):.1f}%",
            f"{match['q_gap']:.2f}",
            f"{100 * match['nearest_agree']:.1f}%",
            f"{100 * match['d_gap']:.2f}% / {100 * match['d_gap_max']:.1f}%",
            f"{float(record['sample']['mean_q']):.1f} / "
            f"{float(record['sample']['p90_q']):.0f}",
        ])
        if n_support == TARGET_SIZE and backend == "approximate":
            checks = [
                f"- >= {TARGET_QPS:,} predictions/s: "
                f"{verdict(qps >= TARGET_QPS)} ({qps:,.0f})",
                f"- peak memory < {TARGET_PEAK_BYTES / 2**30:.0f} GB: "
                f"{verdict(record['peak_bytes'] < TARGET_PEAK_BYTES)} "
                f"({record['peak_bytes'] / 2**30:.2f} GB)",
                f"- q equal to exact for >= {TARGET_Q_AGREEMENT:.0%} of "
                f"{N_SAMPLE} queries: "
                f"{verdict(match['q_agree'] >= TARGET_Q_AGREEMENT)} "
                f"({match['q_agree']:.1%}, mean |q gap| {match['q_gap']:.2f})",
                f"- build time: {record['build_seconds'] / 60:.1f} min",
            ]
    print(markdown_table(
        ["support", "backend", "build s", "JIT s", "queries / s", "peak GB",
         "data GB", "q = exact", "q > / < exact", "mean abs q gap", "nearest = exact",
         "d_nearest gap mean / max", "q mean / p90"],
        rows,
    ))
    print()
    print("Agreement over the first "
          f"{N_SAMPLE} queries, against the exact backend at the same size. "
          "d_nearest gap: (approximate - exact) / exact. JIT s: compiling "
          "pynndescent on a tiny set first (once per process). peak GB: peak "
          "resident memory of the whole measuring process.")
    if any(size >= EXACT_SAMPLE_ONLY for size, _ in records):
        print(f"At {EXACT_SAMPLE_ONLY:,} points the exact row's queries/s comes "
              f"from the {N_SAMPLE} sample queries only.")
    print()
    print(f"## pynndescent alone: recall of the {RECALL_K} nearest vs its search "
          "width epsilon")
    print()
    print(markdown_table(
        ["support", "epsilon", f"recall@{RECALL_K}", "queries / s"],
        recall_rows(records),
    ))
    print()
    print("recall: share of the exact nearest found, over the sample queries. "
          "q needs every good point closer than the nearest bad one: one "
          "missed neighbour inside the run changes q.")
    print()
    if checks:
        print(f"Targets at {TARGET_SIZE:,} points (approximate backend):")
        print()
        print("\n".join(checks))
    else:
        print(f"The {TARGET_SIZE:,}-point targets need --full.")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        size, backend_name, queries_arg, repeats_arg, path = sys.argv[2:]
        worker(int(size), backend_name, int(queries_arg), int(repeats_arg), path)
    else:
        main()
