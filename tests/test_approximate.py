"""The approximate backends (FAISS cells, pynndescent) against exact search.

pynndescent compiles its kernels on first use (90 s on a cold cache here),
so the module builds one graph per session and reuses it, and the tests that
build a graph are marked slow (CI runs them; ``python -m pytest -m slow``).
The FAISS backend builds small sets in milliseconds; its tests skip when
faiss is not installed, the pynndescent ones when pynndescent is not.
"""

import importlib.util
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from test_similarity import brute_force_search

from sdm_sklearn import SDMClassifier
from sdm_sklearn._exact import ExactSupport
from sdm_sklearn._faiss import FaissSupport, train_cells
from sdm_sklearn._nndescent import NNDescentSupport
from sdm_sklearn._search import (
    APPROXIMATE_BACKENDS,
    TRAINING_PROBES,
    keeps_training_index,
    resolve_search,
    support_factory,
    training_factory,
)


@pytest.fixture
def pynndescent():
    return pytest.importorskip("pynndescent")


@pytest.fixture
def faiss():
    return pytest.importorskip("faiss")


def clustered_support(n_support, n_dims, n_classes, seed):
    """Support vectors in class clusters, with 10% wrongly predicted points."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_support)
    centers = rng.normal(scale=1.5, size=(n_classes, n_dims))
    vectors = (centers[labels] + rng.normal(size=(n_support, n_dims))).astype(
        np.float32
    )
    predictions = labels.copy()
    flip = rng.random(n_support) < 0.1
    predictions[flip] = rng.integers(0, n_classes, flip.sum())
    good = np.where(predictions == labels, predictions, -1)
    return vectors, good, predictions


@pytest.fixture(scope="module")
def support_pair():
    pytest.importorskip("pynndescent")
    vectors, good, predictions = clustered_support(3000, 16, 4, seed=0)
    return (
        vectors, good, predictions,
        ExactSupport(vectors, good),
        NNDescentSupport(vectors, good, random_state=0),
    )


@pytest.mark.slow
def test_approximate_q_and_nearest_agree_with_exact(support_pair):
    vectors, _, predictions, exact, approximate = support_pair
    queries, own = vectors[:500], predictions[:500]
    self_indices = np.arange(500)
    q_exact, nearest_exact, d_exact = exact.search(
        queries, own, 1000, self_indices=self_indices
    )
    q_approx, nearest_approx, d_approx = approximate.search(
        queries, own, 1000, self_indices=self_indices
    )
    assert np.all(nearest_approx != self_indices)
    assert np.mean(nearest_approx == nearest_exact) >= 0.98
    assert np.mean(q_approx == q_exact) >= 0.9
    # an approximate list can only miss points: d_nearest never shrinks
    assert np.all(d_approx >= d_exact - 1e-6)


@pytest.mark.slow
def test_approximate_grows_k_for_long_runs(pynndescent):
    rng = np.random.default_rng(2)
    good = np.repeat([0, 1], 1000)  # every point correctly predicted
    vectors = (rng.normal(size=(2000, 8)) + 20.0 * good[:, None]).astype(np.float32)
    exact = ExactSupport(vectors, good)
    approximate = NNDescentSupport(vectors, good, random_state=0)
    # queries inside their class cluster: runs far longer than the first list
    queries = vectors[:20]
    q_exact, _, _ = exact.search(queries, good[:20], 5000)
    q_approx, _, _ = approximate.search(queries, good[:20], 5000)
    assert np.all(q_exact > NNDescentSupport.INITIAL_K)
    assert np.all(q_approx > NNDescentSupport.INITIAL_K)
    assert np.mean(q_approx == q_exact) >= 0.9


@pytest.mark.slow
def test_nearest_lists_agree(support_pair):
    vectors, _, _, exact, approximate = support_pair
    queries = vectors[:50] + 0.01
    exact_indices, exact_distances = exact.nearest(queries, 5)
    approx_indices, approx_distances = approximate.nearest(queries, 5)
    assert np.all(np.diff(exact_distances, axis=1) >= 0)
    assert np.mean(exact_indices == approx_indices) >= 0.95
    brute = np.sqrt(((queries[:, None, :] - vectors[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.sort(brute, axis=1)[:, :5], exact_distances,
                               rtol=1e-5)


@pytest.mark.slow
def test_add_makes_new_points_findable(support_pair):
    vectors, good, predictions, _, _ = support_pair
    approximate = NNDescentSupport(vectors[:1000], good[:1000], random_state=1)
    far = vectors[:5] + 100.0
    extended = approximate.with_points(far, np.full(5, -1))
    assert approximate.n_support == 1000  # the old set is unchanged
    _, nearest, d_nearest = extended.search(far, predictions[:5], 100)
    assert_array_equal(nearest, np.arange(1000, 1005))
    assert_array_equal(d_nearest, np.zeros(5))


@pytest.mark.slow
def test_same_seed_same_graph(support_pair):
    vectors, good, predictions, _, approximate = support_pair
    again = NNDescentSupport(vectors, good, random_state=0)
    first = approximate.search(vectors[:200], predictions[:200], 100)
    second = again.search(vectors[:200], predictions[:200], 100)
    for a, b in zip(first, second, strict=True):
        assert_array_equal(a, b)


def _installed(monkeypatch, *present):
    """Make ``find_spec`` report exactly ``present`` of the optional backends."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name in ("faiss", "pynndescent"):
            return object() if name in present else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


FAISS_FROM = APPROXIMATE_BACKENDS["faiss"][2]
PYNNDESCENT_FROM = APPROXIMATE_BACKENDS["approximate"][2]


@pytest.mark.parametrize("present, n_support, expected", [
    (("faiss", "pynndescent"), FAISS_FROM - 1, "exact"),
    (("faiss", "pynndescent"), FAISS_FROM, "faiss"),
    (("faiss", "pynndescent"), PYNNDESCENT_FROM, "faiss"),
    (("faiss",), FAISS_FROM, "faiss"),
    (("pynndescent",), FAISS_FROM, "exact"),
    (("pynndescent",), PYNNDESCENT_FROM - 1, "exact"),
    (("pynndescent",), PYNNDESCENT_FROM, "approximate"),
    ((), 10 * PYNNDESCENT_FROM, "exact"),
])
def test_auto_switches_at_each_backends_threshold(monkeypatch, present,
                                                  n_support, expected):
    _installed(monkeypatch, *present)
    assert FAISS_FROM < PYNNDESCENT_FROM
    assert resolve_search("auto", n_support) == expected
    assert resolve_search("exact", n_support) == "exact"


def test_factories():
    assert support_factory("exact", 0) is ExactSupport
    factory = support_factory("approximate", 3)
    assert factory.func is NNDescentSupport
    assert factory.keywords == {"random_state": 3}
    factory = support_factory("faiss", 4)
    assert factory.func is FaissSupport
    assert factory.keywords == {"random_state": 4}


def test_training_factories():
    # pynndescent's graph is not rebuilt every epoch: training searches exactly
    assert training_factory("approximate", 3) is ExactSupport
    assert training_factory("exact", 3) is ExactSupport
    factory = training_factory("faiss", 4)
    assert factory.func is FaissSupport
    assert factory.keywords == {"random_state": 4, "n_probe": TRAINING_PROBES}
    assert TRAINING_PROBES < FaissSupport.N_PROBE
    assert keeps_training_index("exact") and keeps_training_index("dask")
    assert not keeps_training_index("faiss")
    assert not keeps_training_index("approximate")


@pytest.mark.parametrize("search, present, message", [
    ("approximate", ("faiss",),
     r'needs pynndescent: pip install pynndescent .*"\.\[approximate\]"'),
    ("faiss", ("pynndescent",),
     r'needs faiss: pip install faiss-cpu .*"\.\[faiss\]"'),
])
def test_missing_backend_gives_clear_error(monkeypatch, search, present, message):
    _installed(monkeypatch, *present)
    with pytest.raises(ImportError, match=message):
        resolve_search(search, 10)


def integer_support(n_support, n_classes, seed, n_dims=3):
    """Points with small integer coordinates, 20% of them mispredicted.

    Every float32 product is exact, so distance ties are real ties and the
    tie rules are exercised.
    """
    rng = np.random.default_rng(seed)
    vectors = rng.integers(-3, 4, size=(n_support, n_dims)).astype(np.float32)
    labels = rng.integers(0, n_classes, n_support)
    predictions = np.where(rng.random(n_support) < 0.2,
                           rng.integers(0, n_classes, n_support), labels)
    return vectors, np.where(predictions == labels, predictions, -1), predictions


def assert_same_answers(first, second):
    for a, b in zip(first, second, strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("max_similarity", [2, 1000])
def test_faiss_searching_every_cell_is_exact(faiss, max_similarity):
    vectors, good, predictions = integer_support(400, 3, seed=0)
    cells = FaissSupport(vectors, good, random_state=0, n_cells=12, n_probe=12)
    exact = ExactSupport(vectors, good)
    self_indices = np.where(np.arange(150) % 3 == 0, -1, np.arange(150))
    # support points (self-matches skipped or not) and points off the support
    queries = np.vstack([vectors[:150], vectors[:50] + 0.5])
    query_predictions = np.concatenate([predictions[:150], predictions[:50]])
    query_self = np.concatenate([self_indices, np.full(50, -1)])
    answers = cells.search(queries, query_predictions, max_similarity,
                           self_indices=query_self)
    assert_same_answers(answers, exact.search(
        queries, query_predictions, max_similarity, self_indices=query_self
    ))
    reference = brute_force_search(vectors, good, queries[:60],
                                   query_predictions[:60], max_similarity,
                                   self_indices=query_self[:60])
    assert_array_equal(answers[0][:60], reference[0])
    assert_array_equal(answers[1][:60], reference[1])
    np.testing.assert_allclose(answers[2][:60], reference[2], rtol=1e-12)


def test_faiss_counts_runs_longer_than_its_heap(faiss):
    rng = np.random.default_rng(2)
    good = np.repeat([0, 1], 1000)  # every point correctly predicted
    vectors = (rng.normal(size=(2000, 8)) + 20.0 * good[:, None]).astype(np.float32)
    cells = FaissSupport(vectors, good, random_state=0, n_cells=20, n_probe=20)
    queries = vectors[::100]
    q, _, _ = cells.search(queries, good[::100], 5000,
                           self_indices=np.arange(0, 2000, 100))
    assert np.all(q == 999) and 999 > FaissSupport.HEAP_SIZE
    capped, _, _ = cells.search(queries, good[::100], 200)
    assert np.all(capped == 200)


def test_faiss_class_without_good_points(faiss):
    vectors, good, predictions = integer_support(300, 3, seed=1)
    good = np.where(good == 2, -1, good)  # nobody is good for class 2
    cells = FaissSupport(vectors, good, random_state=0, n_cells=8, n_probe=8)
    queries = vectors[:40] + 0.25
    asked = np.full(40, 2)
    q, nearest, _ = cells.search(queries, asked, 100)
    assert np.all(q == 0)
    assert_same_answers((q, nearest), ExactSupport(vectors, good).search(
        queries, asked, 100)[:2])


def test_faiss_agrees_closely_with_exact_on_clusters(faiss):
    vectors, good, predictions = clustered_support(3000, 16, 4, seed=0)
    # 16 of the 55 cells (about sqrt(3000)): q agreed for 97.2% of queries
    # here, 59.8% with 8 cells
    cells = FaissSupport(vectors, good, random_state=0, n_probe=16)
    assert len(cells.centroids) == 55
    queries, own, self_indices = vectors[:500], predictions[:500], np.arange(500)
    q, nearest, d_nearest = cells.search(queries, own, 1000,
                                         self_indices=self_indices)
    q_exact, nearest_exact, d_exact = ExactSupport(vectors, good).search(
        queries, own, 1000, self_indices=self_indices
    )
    assert np.all(nearest != self_indices)
    assert np.mean(nearest == nearest_exact) >= 0.99
    assert np.mean(q == q_exact) >= 0.95
    # the cells hold real points and miss some: d_nearest never shrinks
    assert np.all(d_nearest >= d_exact - 1e-9)
    np.testing.assert_allclose(
        d_nearest, np.linalg.norm(queries - vectors[nearest], axis=1), rtol=1e-6
    )


def test_faiss_answers_do_not_depend_on_the_batch_or_threads(faiss):
    vectors, good, predictions = clustered_support(2000, 16, 4, seed=3)
    cells = FaissSupport(vectors, good, random_state=0, n_probe=6)
    queries = vectors[:700] + 0.01
    together = cells.search(queries, predictions[:700], 1000)  # one block
    # three blocks of 256 rows, one per thread
    assert_same_answers(together, cells.search(queries, predictions[:700], 1000,
                                               n_jobs=3))
    for row in (0, 45, 333, 699):
        alone = cells.search(queries[row : row + 1], predictions[row : row + 1],
                             1000)
        assert_same_answers([part[row : row + 1] for part in together], alone)
    indices, distances = cells.nearest(queries, 7)
    assert_same_answers((indices, distances), cells.nearest(queries, 7, n_jobs=3))
    assert_same_answers((indices[45:46], distances[45:46]),
                        cells.nearest(queries[45:46], 7))


def test_faiss_nearest(faiss):
    vectors, good, _ = clustered_support(1000, 8, 3, seed=4)
    queries = vectors[:60] + 0.01
    every_cell = FaissSupport(vectors, good, random_state=0, n_cells=10,
                              n_probe=10)
    assert_same_answers(every_cell.nearest(queries, 9),
                        ExactSupport(vectors, good).nearest(queries, 9))
    # probed cells holding fewer points than asked for: all cells searched
    tiny_cells = FaissSupport(vectors[:200], good[:200], random_state=0,
                              n_cells=100, n_probe=1)
    assert_same_answers(tiny_cells.nearest(queries, 30),
                        ExactSupport(vectors[:200], good[:200]).nearest(queries, 30))
    # with exact ties the same distances come back (which of the tied
    # points fills the last places is not specified, as for ExactSupport)
    vectors, good, _ = integer_support(400, 3, seed=4)
    queries = vectors[:60] + 0.125
    indices, distances = FaissSupport(vectors, good, random_state=0, n_cells=10,
                                      n_probe=10).nearest(queries, 9)
    assert_array_equal(distances, ExactSupport(vectors, good).nearest(queries, 9)[1])
    np.testing.assert_allclose(
        np.linalg.norm(queries[:, None] - vectors[indices], axis=2), distances
    )


def test_faiss_same_seed_same_answers(faiss):
    vectors, good, predictions = clustered_support(2000, 16, 4, seed=5)
    first = FaissSupport(vectors, good, random_state=7, n_probe=4)
    again = FaissSupport(vectors, good, random_state=7, n_probe=4)
    other = FaissSupport(vectors, good, random_state=8, n_probe=4)
    assert_array_equal(first.centroids, again.centroids)
    assert not np.array_equal(first.centroids, other.centroids)
    assert_same_answers(first.search(vectors[:300], predictions[:300], 100),
                        again.search(vectors[:300], predictions[:300], 100))


def test_faiss_kmeans_restores_the_omp_threads(faiss):
    vectors, _, _ = clustered_support(2000, 16, 4, seed=6)
    saved = faiss.omp_get_max_threads()
    centroids = []
    try:
        for threads in (2, 1):
            faiss.omp_set_num_threads(threads)
            centroids.append(train_cells(vectors, 30, seed=0))
            assert faiss.omp_get_max_threads() == threads
    finally:
        faiss.omp_set_num_threads(saved)
    assert_array_equal(*centroids)


def test_faiss_with_points_returns_a_new_set(faiss):
    vectors, good, predictions = clustered_support(1000, 16, 4, seed=7)
    cells = FaissSupport(vectors, good, random_state=1, n_probe=4)
    before = cells.search(vectors[:100], predictions[:100], 100)
    far = vectors[:5] + 100.0
    extended = cells.with_points(far, np.full(5, -1))
    assert cells.n_support == 1000 and extended.n_support == 1005
    assert_same_answers(cells.search(vectors[:100], predictions[:100], 100), before)
    _, nearest, d_nearest = extended.search(far, predictions[:5], 100)
    assert_array_equal(nearest, np.arange(1000, 1005))
    assert_array_equal(d_nearest, np.zeros(5))
    assert_array_equal(extended.vectors[:1000], cells.vectors)
    assert_array_equal(extended.good_labels[1000:], np.full(5, -1))


def test_faiss_pickles_and_handles_empty_queries(faiss):
    vectors, good, predictions = clustered_support(500, 8, 3, seed=8)
    cells = FaissSupport(vectors, good, random_state=0, n_probe=3)
    copy = pickle.loads(pickle.dumps(cells))
    assert_same_answers(cells.search(vectors, predictions, 50),
                        copy.search(vectors, predictions, 50))
    q, nearest, d_nearest = cells.search(vectors[:0], predictions[:0], 50)
    assert q.shape == nearest.shape == d_nearest.shape == (0,)


def test_classifier_with_faiss_search_matches_exact_closely(faiss):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(loc=c, size=(150, 5)) for c in (-2, 0, 2)])
    y = np.repeat([0, 1, 2], 150)
    settings = dict(n_iterations=1, n_epochs=3, random_state=0)
    exact = SDMClassifier(search="exact", **settings).fit(X, y)
    cells = SDMClassifier(search="faiss", **settings).fit(X, y)
    assert cells.search_ == "faiss"
    assert np.mean(exact.predict(X) == cells.predict(X)) >= 0.95
    frame = cells.predict_uncertainty(X)
    assert frame["q"].ge(0).all() and frame["d"].between(0, 1).all()


def test_faiss_fit_calibrates_with_the_models_own_cells(faiss, monkeypatch):
    import sdm_sklearn._search as search

    # training probes one cell; the fitted model probes all of its cells
    monkeypatch.setattr(search, "TRAINING_PROBES", 1)
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(loc=c, size=(150, 5)) for c in (-2, 0, 2)])
    y = np.repeat([0, 1, 2], 150)
    clf = SDMClassifier(search="faiss", n_iterations=2, n_epochs=4, alpha=0.8,
                        random_state=0).fit(X, y)
    support = clf._model.index.support
    assert len(support.centroids) > 1
    assert support.n_probe == min(FaissSupport.N_PROBE, len(support.centroids))
    # the stored calibration is what the fitted model computes for those rows
    record = clf._model.calibration
    frame = clf.predict_uncertainty(X[np.asarray(clf.calibration_ids_)])
    assert_array_equal(frame["rescaled_similarity"], record.rescaled_similarity)
    assert_array_equal(frame["prediction"], clf.classes_[record.predictions])


@pytest.mark.slow
def test_classifier_with_approximate_search_matches_exact_closely():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(loc=c, size=(150, 5)) for c in (-2, 0, 2)])
    y = np.repeat([0, 1, 2], 150)
    settings = dict(n_iterations=1, n_epochs=3, random_state=0)
    exact = SDMClassifier(search="exact", **settings).fit(X, y)
    approximate = SDMClassifier(search="approximate", **settings).fit(X, y)
    # training does not depend on the backend except through q and d
    agreement = np.mean(exact.predict(X) == approximate.predict(X))
    assert agreement >= 0.95
    frame = approximate.predict_uncertainty(X)
    assert frame["q"].ge(0).all() and frame["d"].between(0, 1).all()
