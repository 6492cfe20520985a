"""Compile the package's numba kernels into their on-disk cache.

``conftest.py`` starts this script when a test session starts, its two
groups in two processes at once, and waits for both before the first test:
the kernels then compile on both cores of a 2-core machine (while pytest
collects) instead of one after another in the test process, and again in
every Dask worker process; every test loads them from the cache. The calls
go through the public paths with the dtypes and memory layouts the tests
meet, read-only support arrays included (a model loaded from a memory map,
or deserialised on a Dask worker), so that the suite compiles no signature
of its own: a signature missed here is compiled where it is first used, as
without this script. The groups take about the same time on a cold cache
(about 20 s of CPU each). Run: ``python tests/warm_kernels.py {exact,shards}``.
"""

import sys
import warnings

import numpy as np


def _problem(n_dims):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, n_dims)).astype(np.float32)
    good = rng.integers(-1, 3, size=300)
    queries = rng.normal(size=(40, n_dims)).astype(np.float32)
    predictions = rng.integers(0, 3, size=40)
    return vectors, good, queries, predictions


def _read_only(support):
    """``support`` with its arrays read-only, as a memory map loads them."""
    for value in vars(support).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return support


def exact():
    """Exact search (products, the 2-d sweep, read-only arrays), training,
    the monitor, the FAISS backend (runs longer than its heap included)."""
    from sdm_sklearn import SDMClassifier
    from sdm_sklearn._exact import ExactSupport
    from sdm_sklearn._faiss import FaissSupport
    from sdm_sklearn.monitoring import DriftMonitor

    for n_dims in (2, 3):
        vectors, good, queries, predictions = _problem(n_dims)
        support = ExactSupport(vectors, good)
        support.search(queries, predictions, 5)
        support.search(queries, predictions, 5, self_indices=np.arange(40))
        support.nearest(queries, 3)
    _read_only(ExactSupport(vectors, good)).search(queries, predictions, 5)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    clf = SDMClassifier(n_iterations=1, n_epochs=2, random_state=0).fit(
        X, np.repeat([0, 1], 30))
    DriftMonitor(clf, random_state=0).update(rng.normal(size=(20, 4)))
    faiss_support = FaissSupport(vectors, good, random_state=0)
    faiss_support.search(queries, predictions, 5)
    faiss_support.nearest(queries, 3)
    # every point good for every query: runs longer than the heap
    everyone = np.zeros(len(vectors), dtype=np.int64)
    FaissSupport(vectors, everyone, random_state=0, n_cells=4, n_probe=4).search(
        queries, everyone[: len(queries)], len(vectors))


def shards():
    """The Dask shards' kernels, blocks of one row included."""
    from sdm_sklearn._dask_support import _new_shard, _payload

    vectors, good, queries, predictions = _problem(3)
    shard = _new_shard(vectors, good, np.arange(len(vectors)))
    # 33 queries in blocks of 32 rows: a block of one row has contiguous
    # columns of the per-query arrays
    payload = _payload(queries[:33], predictions[:33], np.full(33, -1))
    shard.search_part(payload, 5, 64, 32)
    shard.second_pass(payload, np.arange(3), np.ones(3), 32)
    shard.nearest(queries, 3, 32)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    {"exact": exact, "shards": shards}[sys.argv[1]]()
