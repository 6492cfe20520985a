"""Tests for the similarity kernel and the exact support search.

Integer coordinates make every float32 inner product exact, so that distance
ties are real ties and the kernel can be compared bit for bit with the
definition of q (paper, eq. 4; the method page of the docs), written below
as a brute force over a sort.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sdm_sklearn._exact import ExactSupport
from sdm_sklearn._similarity import norm_bound, similarity_block


def brute_force_search(support, good, queries, predictions, max_similarity,
                       self_indices=None):
    """q, nearest index and nearest distance from the definition.

    Sort the support points by distance (self-match removed); q is the length
    of the leading run of points good for the query's prediction, where a
    group of points at one distance joins the run only if all of them are
    good (a bad point tied with good ones ends the run); q is capped. The
    nearest point is the first index among the closest ones, preferring
    points that are not good for the query (so that a nearest good point
    always means q > 0).
    """
    support = np.asarray(support, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    n_queries = len(queries)
    if self_indices is None:
        self_indices = np.full(n_queries, -1)
    q = np.zeros(n_queries, dtype=np.int64)
    nearest = np.full(n_queries, -1, dtype=np.int64)
    d_nearest = np.full(n_queries, np.inf)
    for i in range(n_queries):
        candidates = np.array(
            [j for j in range(len(support)) if j != self_indices[i]], dtype=int
        )
        if len(candidates) == 0:
            continue
        sq_dist = ((support[candidates] - queries[i]) ** 2).sum(axis=1)
        closest = sq_dist.min()
        tied = candidates[sq_dist == closest]
        tied_bad = tied[good[tied] != predictions[i]]
        nearest[i] = tied_bad.min() if len(tied_bad) else tied.min()
        d_nearest[i] = np.sqrt(closest)
        run = 0
        for value in np.unique(sq_dist):
            group = candidates[sq_dist == value]
            if np.any(good[group] != predictions[i]):
                break
            run += len(group)
        q[i] = min(run, max_similarity)
    return q, nearest, d_nearest


def kernel_search(support, good, queries, predictions, max_similarity,
                  self_indices=None):
    """q and nearest index by calling the numba kernel on one block.

    The kernel wants the support columns sorted by the class they are good
    for, with the bounds of every class's range; indices are mapped back.
    """
    good = np.asarray(good, dtype=np.int64)
    order = np.argsort(good, kind="stable")
    position = np.argsort(order)
    support = np.asarray(support, dtype=np.float32)[order]
    queries = np.asarray(queries, dtype=np.float32)
    n_queries = len(queries)
    self_positions = np.full(n_queries, -1, dtype=np.int64)
    if self_indices is not None:
        has_self = np.asarray(self_indices) >= 0
        self_positions[has_self] = position[np.asarray(self_indices)[has_self]]
    n_labels = max(int(np.max(predictions)), int(good.max())) + 1
    bounds = np.searchsorted(good[order], np.arange(-1, n_labels + 1))
    q = np.zeros(n_queries, dtype=np.int64)
    nearest = np.zeros(n_queries, dtype=np.int64)
    sq_norms = np.einsum("ij,ij->i", support, support)
    similarity_block(
        queries @ support.T,
        sq_norms,
        queries,
        support,
        norm_bound(sq_norms, support.shape[1]),
        order.astype(np.int64),
        bounds.astype(np.int64),
        np.asarray(predictions, dtype=np.int64),
        self_positions,
        max_similarity,
        q,
        nearest,
        np.empty(n_queries),
    )
    return q, np.where(nearest >= 0, order[nearest], -1)


# 1-D support set around the origin (column vectors).
#   index:     0   1  2  3  4   5  6
LINE = [[1], [-1], [2], [2], [3], [-3], [4]]
LINE_GOOD = np.array([0, 0, 0, 0, 1, 0, 0])

# Each case: support, good labels, query, prediction, self index, cap, and
# the expected q, nearest index and nearest distance worked out by hand.
HAND_CASES = {
    # Distances 1,1 | 2,2 | 3 (bad), 3 | 4: the tie at 3 holds a bad point.
    "run-ended-by-tied-bad": (LINE, LINE_GOOD, [0], 0, -1, 100, 4, 0, 1.0),
    # The nearest points are good for class 0 only: q = 0 for prediction 1.
    "nearest-good-for-other-class": (LINE, LINE_GOOD, [0], 1, -1, 100, 0, 0, 1.0),
    # Cap: the run of 4 is cut at 3.
    "capped": (LINE, LINE_GOOD, [0], 0, -1, 3, 3, 0, 1.0),
    # Query at 2 is support point 2 itself; its duplicate 3 stays (distance
    # 0), then 0 and 4 at distance 1 with 4 bad: q = 1.
    "self-skipped-duplicate-kept": (LINE, LINE_GOOD, [2], 0, 2, 100, 1, 3, 0.0),
    # Same query without the skip: the two duplicates at distance 0, then the
    # tie {0, 4} holds a bad point.
    "duplicates-counted": (LINE, LINE_GOOD, [2], 0, -1, 100, 2, 2, 0.0),
    # A good and a bad point at the same place: the tie ends the run at once
    # and the bad one is reported as the nearest.
    "nearest-good-tied-with-bad": (
        [[0], [0], [5]], np.array([0, -1, 0]), [1], 0, -1, 100, 0, 1, 1.0
    ),
    # Two bad points tied, good for different things: the first index.
    "tied-bad-points-first-index": (
        [[1], [-1], [3]], np.array([1, -1, 0]), [0], 0, -1, 100, 0, 0, 1.0
    ),
    # Every support point good: q counts all of them.
    "all-good": ([[3], [1], [2]], np.array([1, 1, 1]), [0], 1, -1, 100, 3, 1, 1.0),
    # Only the self-match: nothing left.
    "only-self": ([[7]], np.array([0]), [7], 0, 0, 100, 0, -1, np.inf),
    # 2-D: four points at distance 1 (all good), then (1, 1) bad at sqrt(2).
    "2d-ring": (
        [[0, 1], [1, 0], [0, -1], [-1, 0], [1, 1], [2, 0]],
        np.array([2, 2, 2, 2, -1, 2]), [0, 0], 2, -1, 100, 4, 0, 1.0,
    ),
    # 2-D: one of the four ring points is bad: the whole ring is lost, and
    # the bad point is the nearest.
    "2d-ring-one-bad": (
        [[0, 1], [1, 0], [0, -1], [-1, 0], [1, 1], [2, 0]],
        np.array([2, 2, 0, 2, 2, 2]), [0, 0], 2, -1, 100, 0, 2, 1.0,
    ),
    # 2-D: query (3, 4) with nearest (0, 0) at exactly 5 and (6, 8) also at 5.
    "2d-pythagorean-tie": (
        [[6, 8], [0, 0], [3, 9]], np.array([1, 1, 1]), [3, 4], 1, -1, 100,
        3, 0, 5.0,
    ),
}


@pytest.mark.parametrize("case", HAND_CASES.values(), ids=HAND_CASES.keys())
def test_exact_search_hand_cases(case):
    support, good, query, pred, skip, cap, exp_q, exp_nearest, exp_dist = case
    queries = np.array([query], dtype=np.float64)
    predictions = np.array([pred])
    self_indices = np.array([skip])
    q, nearest, d_nearest = ExactSupport(support, good).search(
        queries, predictions, cap, self_indices=self_indices
    )
    assert_array_equal(q, [exp_q])
    assert_array_equal(nearest, [exp_nearest])
    assert_array_equal(d_nearest, [exp_dist])
    assert q.dtype == np.int64 and nearest.dtype == np.int64
    assert d_nearest.dtype == np.float64
    # The definition agrees with the hand values, and so does the kernel
    # called directly.
    brute = brute_force_search(support, good, queries, predictions, cap, self_indices)
    assert_array_equal(brute[0], [exp_q])
    assert_array_equal(brute[1], [exp_nearest])
    assert_array_equal(brute[2], [exp_dist])
    kernel_q, kernel_nearest = kernel_search(
        support, good, queries, predictions, cap, self_indices
    )
    assert_array_equal(kernel_q, [exp_q])
    assert_array_equal(kernel_nearest, [exp_nearest])


def _random_integer_problem(seed, n_support=60, n_queries=80, n_dims=2):
    """Integer points whose good labels mostly follow the sign of coordinate 0."""
    rng = np.random.RandomState(seed)
    support = rng.randint(-5, 6, size=(n_support, n_dims)).astype(np.float64)
    good = (support[:, 0] > 0).astype(np.int64)
    noisy = rng.rand(n_support) < 0.2
    good[noisy] = rng.randint(-1, 2, size=noisy.sum())
    queries = rng.randint(-5, 6, size=(n_queries, n_dims)).astype(np.float64)
    # Half the queries are support points whose self-match is skipped.
    self_indices = np.full(n_queries, -1)
    own = rng.choice(n_support, size=n_queries // 2, replace=False)
    queries[: n_queries // 2] = support[own]
    self_indices[: n_queries // 2] = own
    predictions = (queries[:, 0] > 0).astype(np.int64)
    flipped = rng.rand(n_queries) < 0.1
    predictions[flipped] = 1 - predictions[flipped]
    return support, good, queries, predictions, self_indices


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cap", [1, 4, 1000])
def test_exact_search_matches_brute_force_on_random_integer_points(seed, cap):
    support, good, queries, predictions, self_indices = _random_integer_problem(
        seed, n_dims=1 + seed % 3
    )
    result = ExactSupport(support, good).search(
        queries, predictions, cap, self_indices=self_indices
    )
    expected = brute_force_search(
        support, good, queries, predictions, cap, self_indices
    )
    # q and the distance first: they do not depend on how ties are broken.
    assert_array_equal(result[0], expected[0])
    assert_array_equal(result[2], expected[2])
    assert_array_equal(result[1], expected[1])
    # The random problems do exercise ties, zero runs and the cap.
    if cap == 1000:
        assert np.any(expected[0] == 0) and np.any(expected[0] > 1)


@pytest.mark.parametrize("seed", range(3))
def test_kernel_matches_brute_force_on_random_integer_points(seed):
    support, good, queries, predictions, self_indices = _random_integer_problem(seed)
    q, nearest = kernel_search(support, good, queries, predictions, 7, self_indices)
    expected = brute_force_search(support, good, queries, predictions, 7, self_indices)
    assert_array_equal(q, expected[0])
    assert_array_equal(nearest, expected[1])


def test_many_blocks_equal_one_block_on_integer_points():
    support, good, queries, predictions, self_indices = _random_integer_problem(
        10, n_support=50, n_queries=70, n_dims=3
    )
    one = ExactSupport(support, good).search(
        queries, predictions, 1000, self_indices=self_indices
    )
    # At most 32 query rows per block: 3 blocks, the last one padded; the
    # blocks also spread over two threads.
    blocked = ExactSupport(support, good, block_bytes=3 * 50 * 4)
    assert blocked.block_rows == 32
    for n_jobs in (1, 2):
        result = blocked.search(queries, predictions, 1000,
                                self_indices=self_indices, n_jobs=n_jobs)
        for a, b in zip(one, result, strict=True):
            assert_array_equal(a, b)


def test_many_blocks_equal_one_block_on_float_points():
    rng = np.random.RandomState(11)
    support = rng.normal(size=(80, 5)).astype(np.float32)
    good = rng.randint(-1, 2, size=80)
    queries = rng.normal(size=(45, 5)).astype(np.float32)
    predictions = rng.randint(0, 2, size=45)
    one = ExactSupport(support, good).search(queries, predictions, 1000)
    blocked = ExactSupport(support, good, block_bytes=2 * 80 * 4).search(
        queries, predictions, 1000, n_jobs=2
    )
    for a, b in zip(one, blocked, strict=True):
        assert_array_equal(a, b)
    expected = brute_force_search(support, good, queries, predictions, 1000)
    assert_array_equal(one[0], expected[0])
    assert_array_equal(one[1], expected[1])
    np.testing.assert_allclose(one[2], expected[2], rtol=1e-12)


def test_with_points_extends_a_new_support_set():
    support, good = np.array([[0.0], [4.0]]), np.array([0, 0])
    index = ExactSupport(support, good)
    queries, predictions = np.array([[0.5], [3.5]]), np.array([0, 0])
    assert_array_equal(index.search(queries, predictions, 100)[0], [2, 2])
    # A bad point at 2 sits between each query and the far good point.
    extended = index.with_points(np.array([[2.0]]), np.array([-1]))
    assert index.n_support == 2  # the old set is unchanged
    assert_array_equal(index.search(queries, predictions, 100)[0], [2, 2])
    assert extended.n_support == 3
    q, nearest, d_nearest = extended.search(queries, predictions, 100)
    assert_array_equal(q, [1, 1])
    assert_array_equal(nearest, [0, 1])
    assert_array_equal(d_nearest, [0.5, 0.5])


# ------------------------------------------------ canonical decisions


def _twins(n_dims, seed):
    """Float points, each twice: once good for class 0, once good for none.

    Every good point ties exactly with a bad twin, so q is 0 for every query
    and its nearest point is a bad twin: answers that the last bits of a
    BLAS product would otherwise decide, differently by row and column
    position (OpenBLAS's Haswell sgemm kernel rounds rows six apart
    differently).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(150, n_dims)).astype(np.float32)
    support = np.concatenate([base, base])
    good = np.concatenate([np.zeros(150, dtype=np.int64),
                           np.full(150, -1, dtype=np.int64)])
    shuffle = rng.permutation(300)
    support, good = support[shuffle], good[shuffle]
    queries = (base[rng.integers(0, 150, size=97)]
               + rng.normal(scale=1e-3, size=(97, n_dims))).astype(np.float32)
    return support, good, queries


def _assert_tied_twins_answered_canonically(index, support, good, queries):
    predictions = np.zeros(len(queries), dtype=np.int64)
    q, nearest, d_nearest = index.search(queries, predictions, 1000)
    expected = brute_force_search(support, good, queries, predictions, 1000)
    assert_array_equal(q, 0)
    assert_array_equal(q, expected[0])
    assert_array_equal(nearest, expected[1])
    assert np.all(good[nearest] == -1)
    np.testing.assert_allclose(d_nearest, expected[2], rtol=1e-12)
    # the same rows at every position of the block, among other rows
    for shift in range(1, 13):
        rolled = np.roll(queries, shift, axis=0)
        answers = index.search(rolled, predictions, 1000)
        for got, want in zip(answers, (q, nearest, d_nearest), strict=True):
            assert_array_equal(np.roll(got, -shift), want)


@pytest.mark.parametrize("n_dims", [8, 100])
def test_exact_ties_are_pessimistic_at_every_position(n_dims):
    support, good, queries = _twins(n_dims, seed=n_dims)
    _assert_tied_twins_answered_canonically(ExactSupport(support, good),
                                            support, good, queries)


@pytest.mark.parametrize("n_dims", [8, 100])
def test_faiss_ties_are_pessimistic_at_every_position(n_dims):
    pytest.importorskip("faiss")
    from sdm_sklearn._faiss import FaissSupport

    support, good, queries = _twins(n_dims, seed=n_dims)
    # every cell probed: exact over the whole set, so the brute force holds
    cells = FaissSupport(support, good, random_state=0, n_cells=6, n_probe=6)
    _assert_tied_twins_answered_canonically(cells, support, good, queries)
    # fewer cells probed: answers still independent of the row's position
    few = FaissSupport(support, good, random_state=0, n_cells=12, n_probe=3)
    predictions = np.zeros(len(queries), dtype=np.int64)
    answers = few.search(queries, predictions, 1000)
    for shift in (1, 5, 6, 7):
        rolled = few.search(np.roll(queries, shift, axis=0), predictions, 1000)
        for got, want in zip(rolled, answers, strict=True):
            assert_array_equal(np.roll(got, -shift), want)


# ------------------------------------------------ the sweep (few dimensions)


def _tied_float_problem(n_dims, seed):
    """Float points in few dimensions, full of exact and near ties.

    Twins (once good, once bad), triplets good for one class, points a few
    float32 steps apart, and queries that are support points (self-matches
    skipped), near copies of them or anywhere.
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(120, n_dims)).astype(np.float32)
    near = np.nextafter(base[:40], np.float32(np.inf))
    support = np.concatenate([base, base[:50], base[50:70], base[50:70], near])
    good = np.concatenate([
        rng.integers(-1, 3, size=120), np.full(50, -1),
        np.full(40, 1), rng.integers(-1, 3, size=40),
    ]).astype(np.int64)
    shuffle = rng.permutation(len(support))
    support, good = support[shuffle], good[shuffle]
    own = rng.choice(len(support), size=60, replace=False)
    queries = np.concatenate([
        support[own], base[:30],
        (base[30:60] + rng.normal(scale=1e-4, size=(30, n_dims))),
        rng.normal(size=(30, n_dims)),
    ]).astype(np.float32)
    self_indices = np.concatenate([own, np.full(90, -1)])
    predictions = rng.integers(0, 3, size=len(queries))
    return support, good, queries, predictions, self_indices


@pytest.mark.parametrize("n_dims", [1, 2])
@pytest.mark.parametrize("cap", [2, 1000])
def test_sweep_answers_as_the_products_and_the_definition(n_dims, cap):
    support, good, queries, predictions, self_indices = _tied_float_problem(
        n_dims, seed=n_dims + cap
    )
    index = ExactSupport(support, good)
    assert index.sweep_axis is not None
    result = index.search(queries, predictions, cap, self_indices=self_indices)
    # the products' kernel on the same problem
    kernel_q, kernel_nearest = kernel_search(support, good, queries,
                                             predictions, cap, self_indices)
    assert_array_equal(result[0], kernel_q)
    assert_array_equal(result[1], kernel_nearest)
    # the definition: in at most 2 dimensions numpy's float64 sum of the
    # squares is the canonical distance
    expected = brute_force_search(support, good, queries, predictions, cap,
                                  self_indices)
    for got, want in zip(result, expected, strict=True):
        assert_array_equal(got, want)
    assert np.any(expected[0] == 0) and np.any(expected[0] > 1)


def test_sweep_answers_the_same_along_every_axis(monkeypatch):
    import sdm_sklearn._exact as exact

    support, good, queries, predictions, self_indices = _tied_float_problem(
        2, seed=7
    )
    answers = []
    for axis in (0, 1):
        monkeypatch.setattr(exact, "sweep_axis", lambda vectors, axis=axis: axis)
        index = ExactSupport(support, good)
        assert index.sweep_axis == axis
        answers.append(index.search(queries, predictions, 1000,
                                    self_indices=self_indices))
    for got, want in zip(*answers, strict=True):
        assert_array_equal(got, want)


def test_sweep_in_blocks_and_threads_equals_one_block():
    support, good, queries, predictions, self_indices = _tied_float_problem(
        2, seed=3
    )
    one = ExactSupport(support, good).search(queries, predictions, 1000,
                                             self_indices=self_indices)
    blocked = ExactSupport(support, good, block_bytes=4 * len(support))
    assert blocked.block_rows == 32
    for n_jobs in (1, 2):
        result = blocked.search(queries, predictions, 1000,
                                self_indices=self_indices, n_jobs=n_jobs)
        for got, want in zip(result, one, strict=True):
            assert_array_equal(got, want)


def test_sweep_only_in_few_dimensions():
    from sdm_sklearn._similarity import SWEEP_DIMS

    rng = np.random.default_rng(0)
    for n_dims in range(1, SWEEP_DIMS + 2):
        index = ExactSupport(rng.normal(size=(20, n_dims)), np.zeros(20))
        assert (index.sweep_axis is None) == (n_dims > SWEEP_DIMS)
    assert ExactSupport(np.empty((0, 2)), np.empty(0)).sweep_axis is None


def test_nearest_is_canonical_at_every_position():
    support, good, queries = _twins(100, seed=5)
    index = ExactSupport(support, good)
    indices, distances = index.nearest(queries, 3)
    for shift in range(1, 13):
        rolled = index.nearest(np.roll(queries, shift, axis=0), 3)
        assert_array_equal(np.roll(rolled[0], -shift, axis=0), indices)
        assert_array_equal(np.roll(rolled[1], -shift, axis=0), distances)
    # twins tie: the smaller index comes first
    assert np.all(indices[:, 0] < indices[:, 1])
    assert_array_equal(distances[:, 0], distances[:, 1])


def test_faiss_nearest_is_canonical_at_every_position():
    pytest.importorskip("faiss")
    from sdm_sklearn._faiss import FaissSupport

    support, good, queries = _twins(100, seed=5)
    # 40 copies of one point: the 3 nearest of a query at it tie 40 ways,
    # more than the first heap holds
    copies = np.repeat(queries[:1], 40, axis=0)
    support = np.concatenate([support, copies])
    good = np.concatenate([good, np.zeros(40, dtype=np.int64)])
    cells = FaissSupport(support, good, random_state=0, n_cells=8, n_probe=3)
    exact = ExactSupport(support, good)
    indices, distances = cells.nearest(queries, 3)
    assert_array_equal(indices[0], [300, 301, 302])
    assert_array_equal(distances[0], 0.0)
    for shift in range(1, 13):
        rolled = cells.nearest(np.roll(queries, shift, axis=0), 3)
        assert_array_equal(np.roll(rolled[0], -shift, axis=0), indices)
        assert_array_equal(np.roll(rolled[1], -shift, axis=0), distances)
    # probing every cell, the answers are exact search's
    every = FaissSupport(support, good, random_state=0, n_cells=8, n_probe=8)
    for got, want in zip(every.nearest(queries, 3), exact.nearest(queries, 3),
                         strict=True):
        assert_array_equal(got, want)
