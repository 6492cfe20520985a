"""Compile the package's numba kernels into their on-disk cache.

``conftest.py`` runs this script at the start of a test session, its two
groups in two processes at once, and waits for both: the kernels then
compile on both cores of a 2-core machine instead of one after another in
the test process (and again in every Dask worker process), and every test
loads them from the cache. The calls go through the public paths with the
dtypes the package uses, so they compile the signatures the tests meet; a
signature missed here is compiled where it is first used, as without this
script. Run: ``python tests/warm_kernels.py {exact,shards}``.
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


def exact():
    """Exact search (products and the 2-d sweep), training, the monitor."""
    from sdm_sklearn import SDMClassifier
    from sdm_sklearn._exact import ExactSupport
    from sdm_sklearn.monitoring import DriftMonitor

    for n_dims in (2, 3):
        vectors, good, queries, predictions = _problem(n_dims)
        support = ExactSupport(vectors, good)
        support.search(queries, predictions, 5)
        support.search(queries, predictions, 5, self_indices=np.arange(40))
        support.nearest(queries, 3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    clf = SDMClassifier(n_iterations=1, n_epochs=2, random_state=0).fit(
        X, np.repeat([0, 1], 30))
    DriftMonitor(clf, random_state=0).update(rng.normal(size=(20, 4)))


def shards():
    """The FAISS backend's kernels and the Dask shards' kernels."""
    from sdm_sklearn._dask_support import _new_shard, _payload
    from sdm_sklearn._faiss import FaissSupport

    vectors, good, queries, predictions = _problem(3)
    faiss_support = FaissSupport(vectors, good, random_state=0)
    faiss_support.search(queries, predictions, 5)
    faiss_support.nearest(queries, 3)
    shard = _new_shard(vectors, good, np.arange(len(vectors)))
    payload = _payload(queries, predictions, np.full(len(queries), -1))
    shard.search_part(payload, 5, 64, 32)
    shard.second_pass(payload, np.arange(3), np.ones(3), 32)
    shard.nearest(queries, 3, 32)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    {"exact": exact, "shards": shards}[sys.argv[1]]()
