"""search="dask-faiss": FAISS cells in the shards of a cluster.

The sharded set must answer as ``FaissSupport`` over the same points and
seed, bit for bit, whatever the number of shards (the cells are trained
once, every shard arranges its points in them), the other rows of a call
and the budget of the runs; with every cell probed, as exact search. A
shard's part of a search must equal an exact shard's when every cell is
probed. Pickling gives that ``FaissSupport``; a directory keeps the cells.
"""

import contextlib
import copy
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

distributed = pytest.importorskip("distributed")
pytest.importorskip("faiss")

# the random support sets and queries of the exact sharded search, and its
# check of equal answers
from test_distributed import _queries as _dask_queries  # noqa: E402
from test_distributed import _random_support, assert_same_answers  # noqa: E402

from sdm_sklearn import SDMClassifier, _dask_support  # noqa: E402
from sdm_sklearn._dask_faiss import (  # noqa: E402
    CellIndex,
    DaskFaissSupport,
    _CellShard,
)
from sdm_sklearn._dask_support import _payload, _Shard  # noqa: E402
from sdm_sklearn._exact import ExactSupport  # noqa: E402
from sdm_sklearn._faiss import FaissSupport  # noqa: E402

# the longest any wait on a cluster may take before a test fails
WAIT_SECONDS = 120
FAST = dict(n_exemplar_dims=8, n_iterations=1, n_epochs=4, learning_rate=3e-2,
            alpha=0.9, random_state=0)


def _support(n_support, n_dims, seed, *, long_runs=False, duplicates=True):
    """Those of the Dask tests; with long runs, nearly all good for class 0."""
    vectors, good = _random_support(n_support, n_dims, seed, duplicates)
    if long_runs:  # runs of hundreds of points
        rng = np.random.default_rng(seed)
        good = np.where(rng.random(n_support) < 0.97, 0, good)
    return vectors, good


def _queries(vectors, n_queries, seed):
    """Those of the Dask tests, every other one predicted 0."""
    queries, predictions = _dask_queries(vectors, n_queries, seed)
    predictions[::2] = 0
    return queries, predictions


# ------------------------------------------------------- without a cluster


@pytest.mark.slow
@pytest.mark.parametrize("heap_size", [128, 2])
def test_a_shard_probing_every_cell_answers_as_an_exact_shard(monkeypatch,
                                                             heap_size):
    # heaps of 2 overflow for most queries: the second scan of the cells
    monkeypatch.setattr(CellIndex, "HEAP_SIZE", heap_size)
    vectors, good = _support(1500, 6, seed=0, long_runs=True)
    queries, predictions = _queries(vectors, 200, seed=0)
    self_indices = np.full(len(queries), -1)
    self_indices[:50] = np.arange(50) * 3 + 1  # original indices of the shard
    centroids, n_probe = FaissSupport.cells_for(vectors, random_state=0,
                                                n_probe=10**6)
    indices = np.arange(len(vectors)) * 3 + 1
    cell_shard = _CellShard(CellIndex(vectors, good, centroids, n_probe),
                            indices)
    exact_shard = _Shard(ExactSupport(vectors, good), indices)
    payload = _payload(queries, predictions, self_indices)
    for cap, budget in ((10**6, 64), (5, 64), (10**6, 1), (3, 1)):
        got = cell_shard.search_part(payload, cap, budget, 32)
        expected = exact_shard.search_part(payload, cap, budget, 32)
        # the nearest bad point; the nearest good one where it is closer
        assert_array_equal(got[0][:, 0], expected[0][:, 0])
        assert_array_equal(got[1][:, 0], expected[1][:, 0])
        closer = expected[0][:, 1] < expected[0][:, 0]
        assert_array_equal(got[0][closer, 1], expected[0][closer, 1])
        assert_array_equal(got[1][closer, 1], expected[1][closer, 1])
        # the run: its length and its entries, whole or as its two ends
        for got_part, expected_part in zip(got[2:], expected[2:], strict=True):
            assert_array_equal(got_part, expected_part)
        if budget == 1 and cap > 2:
            assert (got[4] > 0).any()  # some runs sent as two ends
    rows = np.array([3, 60, 150])
    radii = expected[0][rows, 0] / 2
    assert_array_equal(cell_shard.second_pass(payload, rows, radii, 32),
                       exact_shard.second_pass(payload, rows, radii, 32))


def test_the_cells_are_those_of_faiss_support():
    vectors, good = _support(2000, 5, seed=1)
    centroids, n_probe = FaissSupport.cells_for(vectors, random_state=3,
                                                n_probe=7)
    faiss_support = FaissSupport(vectors, good, random_state=3, n_probe=7)
    assert_array_equal(centroids, faiss_support.centroids)
    assert n_probe == faiss_support.n_probe == 7
    empty = FaissSupport(vectors[:0], good[:0], random_state=3)
    centroids, n_probe = FaissSupport.cells_for(vectors[:0], random_state=3)
    assert_array_equal(centroids, empty.centroids)
    assert n_probe == empty.n_probe == 1


def test_training_probes_fewer_cells_and_the_model_gets_its_own_index():
    from sdm_sklearn._search import (
        TRAINING_PROBES,
        keeps_training_index,
        support_factory,
        training_factory,
    )

    assert not keeps_training_index("dask-faiss")
    fitted = support_factory("dask-faiss", 5)
    assert fitted.func is DaskFaissSupport
    assert fitted.keywords == {"random_state": 5}
    training = training_factory("dask-faiss", 5)
    assert training.func is DaskFaissSupport
    assert training.keywords == {"random_state": 5, "n_probe": TRAINING_PROBES}


def test_dask_faiss_without_a_client_is_a_clear_error():
    with contextlib.suppress(ValueError):  # no client: the error below
        distributed.get_client()
        pytest.skip("a distributed client is running in this process")
    X, y = _support(300, 4, seed=2)[0], np.arange(300) % 3
    with pytest.raises(RuntimeError, match=r'search="dask-faiss" needs a '
                       r"running dask.distributed client"):
        SDMClassifier(search="dask-faiss", **FAST).fit(X, y)


# ----------------------------------------------------------- on a cluster


@contextlib.contextmanager
def _cluster(processes):
    cluster = distributed.LocalCluster(n_workers=2, processes=processes,
                                       threads_per_worker=1,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        client.wait_for_workers(2, timeout=WAIT_SECONDS)
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def client():
    # worker threads in this process: no start-up of worker processes and
    # their kernels (the slow test below runs worker processes)
    with _cluster(processes=False) as client:
        yield client


@pytest.fixture(scope="module")
def problem():
    vectors, good = _support(3000, 8, seed=4)
    queries, predictions = _queries(vectors, 300, seed=4)
    return vectors, good, queries, predictions


def test_sharded_cells_answer_as_faiss_in_one_process(client, problem,
                                                       monkeypatch):
    vectors, good, queries, predictions = problem
    in_memory = FaissSupport(vectors, good, random_state=0, n_probe=8)
    sharded = DaskFaissSupport(vectors, good, random_state=0, n_probe=8)
    assert len(sharded.shards) == 2
    assert len(in_memory.centroids) == 55  # 8 of 55 cells probed
    for cap in (3, 10**6):
        assert_same_answers(sharded, in_memory, queries, predictions, cap)
    assert_same_answers(sharded, in_memory, vectors, good.clip(0), 50,
                        self_indices=np.arange(len(vectors)))
    # one shard: the same answers (they do not depend on the layout)
    monkeypatch.setattr(_dask_support, "MIN_SHARD_POINTS", 10**6)
    alone = DaskFaissSupport(vectors, good, random_state=0, n_probe=8)
    assert len(alone.shards) == 1
    assert_same_answers(alone, in_memory, queries, predictions, 10**6)
    # runs sent as their two ends, and counted again in a second round
    monkeypatch.setattr(_dask_support, "RUN_BUDGET", 1)
    for cap in (2, 10**6):
        assert_same_answers(sharded, in_memory, queries, predictions, cap)
    assert_array_equal(sharded.vectors, vectors)
    assert_array_equal(sharded.good_labels, good)


@pytest.mark.slow
def test_every_cell_probed_gives_the_exact_answers(client):
    # runs of hundreds of points, in every cell: each query's whole run is
    # in its probed cells, so the answers are those of exact search
    vectors, good = _support(1500, 6, seed=5, long_runs=True)
    queries, predictions = _queries(vectors, 200, seed=5)
    sharded = DaskFaissSupport(vectors, good, random_state=0, n_probe=10**6)
    exact_support = ExactSupport(vectors, good)
    for cap in (5, 10**6):
        assert_same_answers(sharded, exact_support, queries, predictions, cap)
    assert_same_answers(sharded, exact_support, vectors, good.clip(0), 10**6,
                        self_indices=np.arange(len(vectors)))


@pytest.mark.slow
def test_answers_are_deterministic_and_row_by_row(client, problem):
    vectors, good, queries, predictions = problem
    first = DaskFaissSupport(vectors, good, random_state=7, n_probe=8)
    again = DaskFaissSupport(vectors, good, random_state=7, n_probe=8)
    assert_same_answers(first, again, queries, predictions, 10**6)
    whole = first.search(queries, predictions, 10**6)
    # a row's answer does not depend on the other rows of the call
    order = np.random.default_rng(0).permutation(len(queries))
    for rows in (order, order[:1], order[:37], np.arange(5, 6)):
        part = first.search(queries[rows], predictions[rows], 10**6)
        for got, expected in zip(part, whole, strict=True):
            assert_array_equal(got, expected[rows])


@pytest.mark.slow
def test_sharded_nearest_equals_faiss_nearest(client):
    # distinct points: the k-th place is never an exact tie
    vectors, good = _support(3000, 8, seed=6, duplicates=False)
    queries, _ = _queries(vectors, 100, seed=6)
    sharded = DaskFaissSupport(vectors, good, random_state=0, n_probe=2)
    in_memory = FaissSupport(vectors, good, random_state=0, n_probe=2)
    # 2 of 55 cells hold about 110 points: 400 neighbours take every cell
    for k in (1, 5, 400):
        for got, expected in zip(sharded.nearest(queries, k),
                                 in_memory.nearest(queries, k), strict=True):
            assert got.dtype == expected.dtype
            assert_array_equal(got, expected)


@pytest.mark.slow
def test_points_added_and_pickled_answer_as_faiss(client, problem):
    vectors, good, queries, predictions = problem
    sharded = DaskFaissSupport(vectors[:2000], good[:2000], random_state=0,
                               n_probe=8)
    in_memory = FaissSupport(vectors[:2000], good[:2000], random_state=0,
                             n_probe=8)
    grown = sharded.with_points(vectors[2000:], good[2000:])
    assert type(grown) is DaskFaissSupport
    assert list(grown.sizes) == [1500, 1500]
    grown_in_memory = in_memory.with_points(vectors[2000:], good[2000:])
    assert_same_answers(grown, grown_in_memory, queries, predictions, 20)
    assert_same_answers(sharded, in_memory, queries, predictions, 20)
    restored = pickle.loads(pickle.dumps(grown))
    assert type(restored) is FaissSupport
    assert_array_equal(restored.centroids, grown_in_memory.centroids)
    assert_same_answers(restored, grown_in_memory, queries, predictions, 20)
    # copies share the shards; a task graph carries references
    assert copy.deepcopy(grown).shards == grown.shards
    by_reference = pickle.loads(pickle.dumps(grown.for_task_graph()))
    assert type(by_reference) is DaskFaissSupport
    assert [f.key for f in by_reference.shards] == [f.key for f in grown.shards]


@pytest.mark.slow
def test_pickling_too_large_a_set_names_its_size(client, problem, monkeypatch):
    vectors, good, _, _ = problem
    sharded = DaskFaissSupport(vectors, good, random_state=0)
    monkeypatch.setattr(_dask_support, "MAX_GATHER_BYTES", sharded.nbytes - 1)
    with pytest.raises(pickle.PicklingError,
                       match=r'search="dask-faiss".*3,000 points.*save\(path\)'):
        pickle.dumps(sharded)


@pytest.mark.slow
def test_a_saved_set_keeps_its_cells(client, problem, tmp_path):
    vectors, good, queries, predictions = problem
    sharded = DaskFaissSupport(vectors[:2000], good[:2000], random_state=0,
                               n_probe=8).with_points(vectors[2000:],
                                                      good[2000:])
    sharded.to_directory(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "cells.json", "cells.npy", "shard-00000-labels.npy", "shard-00000.npy",
        "shard-00001-labels.npy", "shard-00001.npy", "support.json",
    ]
    for read_on_workers in (False, True):
        loaded = DaskFaissSupport.from_directory(
            tmp_path, client, read_on_workers=read_on_workers)
        assert type(loaded) is DaskFaissSupport
        assert_same_answers(loaded, sharded, queries, predictions, 10**6)


def test_bad_calls(client, problem):
    vectors, good, _, _ = problem
    with pytest.raises(TypeError, match="random_state"):
        DaskFaissSupport(vectors, good)
    with pytest.raises(ValueError, match="search"):
        SDMClassifier(search="faiss-dask").fit(vectors[:100], good[:100] % 2)
    other = distributed.Client(client.scheduler.address, set_as_default=False)
    with other.as_current():
        sharded = DaskFaissSupport(vectors[:300], good[:300], random_state=0)
    other.close()
    with pytest.raises(RuntimeError,
                       match='search="dask-faiss".*client is closed.*'
                             'in memory \\(with FAISS'):
        sharded.search(vectors[:5], np.zeros(5, dtype=int), 10)


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SDMClassifier(**{**FAST, **params}).fit(X, y)


@pytest.mark.slow
def test_a_classifier_with_dask_faiss_equals_one_with_faiss(client, tmp_path):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(700, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=700) > 0).astype(int)
    X_test = rng.normal(size=(200, 5))
    sharded = _fit(X, y, search="dask-faiss")
    in_memory = _fit(X, y, search="faiss")
    assert sharded.search_ == "dask-faiss"
    assert type(sharded._model.index.support) is DaskFaissSupport
    expected = in_memory.predict_uncertainty(X_test)
    assert sharded.predict_uncertainty(X_test).equals(expected)
    restored = pickle.loads(pickle.dumps(sharded))
    assert type(restored._model.index.support) is FaissSupport
    assert restored.predict_uncertainty(X_test).equals(expected)
    sharded.save(tmp_path / "model")
    loaded = SDMClassifier.load(tmp_path / "model", client=client)
    assert type(loaded._model.index.support) is DaskFaissSupport
    assert loaded.predict_uncertainty(X_test).equals(expected)


@pytest.mark.slow
def test_on_worker_processes(problem, tmp_path):
    # the shards pickled to other processes, built and searched there
    vectors, good, queries, predictions = problem
    in_memory = FaissSupport(vectors, good, random_state=0, n_probe=8)
    with _cluster(processes=True) as client:
        sharded = DaskFaissSupport(vectors, good, random_state=0, n_probe=8)
        for cap in (3, 10**6):
            assert_same_answers(sharded, in_memory, queries, predictions, cap)
        sharded.to_directory(tmp_path / "support")
        loaded = DaskFaissSupport.from_directory(tmp_path / "support", client,
                                                 read_on_workers=True)
        assert_same_answers(loaded, in_memory, queries, predictions, 10**6)
        test_a_classifier_with_dask_faiss_equals_one_with_faiss(
            client, tmp_path / "classifier")
