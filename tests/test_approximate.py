"""The approximate (pynndescent) backend against exact search.

pynndescent compiles its kernels on first use (90 s on a cold cache here),
so the module builds one index per session and reuses it, and the tests that
build an index are marked slow (CI runs them; ``python -m pytest -m slow``).
"""

import importlib.util

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sdm_sklearn import SDMClassifier
from sdm_sklearn._approximate import ApproximateSupport
from sdm_sklearn._neighbors import (
    APPROXIMATE_THRESHOLD,
    ExactSupport,
    resolve_search,
    support_factory,
)

pytest.importorskip("pynndescent")


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
    vectors, good, predictions = clustered_support(3000, 16, 4, seed=0)
    return (
        vectors, good, predictions,
        ExactSupport(vectors, good),
        ApproximateSupport(vectors, good, random_state=0),
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
def test_approximate_grows_k_for_long_runs():
    rng = np.random.default_rng(2)
    good = np.repeat([0, 1], 1000)  # every point correctly predicted
    vectors = (rng.normal(size=(2000, 8)) + 20.0 * good[:, None]).astype(np.float32)
    exact = ExactSupport(vectors, good)
    approximate = ApproximateSupport(vectors, good, random_state=0)
    # queries inside their class cluster: runs far longer than the first list
    queries = vectors[:20]
    q_exact, _, _ = exact.search(queries, good[:20], 5000)
    q_approx, _, _ = approximate.search(queries, good[:20], 5000)
    assert np.all(q_exact > ApproximateSupport.INITIAL_K)
    assert np.all(q_approx > ApproximateSupport.INITIAL_K)
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
    approximate = ApproximateSupport(vectors[:1000], good[:1000], random_state=1)
    far = vectors[:5] + 100.0
    extended = approximate.with_points(far, np.full(5, -1))
    assert approximate.n_support == 1000  # the old set is unchanged
    _, nearest, d_nearest = extended.search(far, predictions[:5], 100)
    assert_array_equal(nearest, np.arange(1000, 1005))
    assert_array_equal(d_nearest, np.zeros(5))


@pytest.mark.slow
def test_same_seed_same_graph(support_pair):
    vectors, good, predictions, _, approximate = support_pair
    again = ApproximateSupport(vectors, good, random_state=0)
    first = approximate.search(vectors[:200], predictions[:200], 100)
    second = again.search(vectors[:200], predictions[:200], 100)
    for a, b in zip(first, second, strict=True):
        assert_array_equal(a, b)


def test_auto_switches_at_threshold():
    assert resolve_search("auto", APPROXIMATE_THRESHOLD - 1) == "exact"
    assert resolve_search("exact", 10 * APPROXIMATE_THRESHOLD) == "exact"
    assert resolve_search("auto", APPROXIMATE_THRESHOLD) == "approximate"
    assert support_factory("exact", 0) is ExactSupport
    factory = support_factory("approximate", 3)
    assert factory.func is ApproximateSupport
    assert factory.keywords == {"random_state": 3}


def test_missing_pynndescent_gives_clear_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *args: None if name == "pynndescent" else real_find_spec(name),
    )
    with pytest.raises(ImportError, match=r"pip install pynndescent"):
        resolve_search("approximate", 10)
    assert resolve_search("auto", 10 * APPROXIMATE_THRESHOLD) == "exact"


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
