"""The support set and its nearest-neighbour search.

``ExactSupport`` answers q and the nearest support point by blocked float32
BLAS products (never an N x N matrix) followed by the numba kernel in
:mod:`sdm_sklearn._similarity`. ``ApproximateSupport`` uses a pynndescent
graph for large support sets. Both take vectors in the *search space*
(see :class:`sdm_sklearn._adaptor.ExemplarAdaptor`), in which Euclidean
distances equal those between exemplar vectors.
"""

import importlib.util
from functools import partial

import numpy as np

# Bytes of inner products held at once by one exact search, per dimension of
# the search space: small blocks stay in cache between the BLAS product and
# the kernel's pass, which pays at few dimensions, while many dimensions
# favour larger products. Measured (20k queries, one BLAS thread), search
# time over GEMM time with 4 / 64 MiB blocks: 1.50 / 2.04 for 3k x 32-d,
# 1.42 / 1.36 for 20k x 128-d; 20k x 384-d took 356 / 297 ms. 128 KiB per
# dimension gives 4 MiB at 32-d, 16 MiB at 128-d and 48 MiB at 384-d.
BLOCK_BYTES_PER_DIM = 128 * 2**10
# Fewer query rows per block would turn the product into slow matrix-vector
# work; for huge support sets this row count sets the memory instead.
MIN_BLOCK_ROWS = 32


def _as_search_array(vectors):
    return np.ascontiguousarray(vectors, dtype=np.float32)


def exact_distances(queries, support_vectors, indices):
    """Float64 Euclidean distances between each query and one support row.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_dims)
    support_vectors : ndarray of shape (n_support, n_dims)
    indices : ndarray of shape (n_queries,), int
        Row of ``support_vectors`` paired with each query.

    Returns
    -------
    distances : ndarray of shape (n_queries,)
    """
    diff = np.asarray(queries, dtype=np.float64) - support_vectors[indices]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _sorted_neighbors(queries, support_vectors, candidates, n_neighbors,
                      indices=None):
    """The ``n_neighbors`` nearest of candidate rows, by exact distance.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_dims)
    support_vectors : ndarray of shape (n_support, n_dims)
    candidates : ndarray of shape (n_queries, n_candidates), int
        Rows of ``support_vectors`` to rank for each query.
    n_neighbors : int
    indices : ndarray of shape (n_support,), default=None
        Support index of every row of ``support_vectors`` (None: the row).

    Returns
    -------
    indices, distances : ndarray of shape (n_queries, n_neighbors)
        Support indices sorted by float64 distance, ties by index.
    """
    rows = np.repeat(np.arange(len(queries)), candidates.shape[1])
    distances = exact_distances(
        np.asarray(queries)[rows], support_vectors, candidates.ravel()
    ).reshape(candidates.shape)
    if indices is not None:
        candidates = indices[candidates]
    order = np.lexsort((candidates, distances), axis=1)[:, :n_neighbors]
    return (np.take_along_axis(candidates, order, axis=1),
            np.take_along_axis(distances, order, axis=1))


class ExactSupport:
    """Support set searched exactly by blocked BLAS products.

    The vectors are kept sorted by the class they are good for (see
    :func:`sdm_sklearn._similarity.similarity_block`); indices going in and
    out are those of the original order.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims)
        Support points in the search space.
    good_labels : ndarray of shape (n_support,), int
        For each support point, the class it is good for (its prediction
        when correctly predicted) or ``-1``.
    block_bytes : int, default=None
        Memory bound for the block of inner products (exceeded only when one
        block of ``min_block_rows`` rows is larger). None:
        ``BLOCK_BYTES_PER_DIM`` times the number of dimensions (at least 32).
    min_block_rows : int, default=MIN_BLOCK_ROWS
        Fewest query rows per block.
    """

    def __init__(self, vectors, good_labels, *, block_bytes=None,
                 min_block_rows=MIN_BLOCK_ROWS):
        vectors = _as_search_array(vectors)
        if block_bytes is None:
            block_bytes = BLOCK_BYTES_PER_DIM * max(vectors.shape[1], 32)
        self.block_bytes = block_bytes
        self.min_block_rows = min_block_rows
        self._store(vectors, np.asarray(good_labels, dtype=np.int64))

    def _store(self, vectors, good_labels):
        self.order = np.argsort(good_labels, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.sorted_vectors = np.ascontiguousarray(vectors[self.order])
        self.sorted_good = good_labels[self.order]
        self.sq_norms = np.einsum("ij,ij->i", self.sorted_vectors,
                                  self.sorted_vectors)

    @property
    def n_support(self):
        return len(self.order)

    @property
    def vectors(self):
        """Support vectors in the original order (a copy)."""
        return self.sorted_vectors[self.position]

    @property
    def good_labels(self):
        """Good class of every support point, in the original order."""
        return self.sorted_good[self.position]

    def add(self, vectors, good_labels):
        """Append support points (used for updatability)."""
        self._store(
            np.concatenate([self.vectors, _as_search_array(vectors)]),
            np.concatenate([self.good_labels,
                            np.asarray(good_labels, dtype=np.int64)]),
        )

    def nearest(self, queries, n_neighbors):
        """The ``n_neighbors`` nearest support points of every query.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, n_dims)
        n_neighbors : int

        Returns
        -------
        indices, distances : ndarray of shape (n_queries, k)
            Original support indices and float64 distances, nearest first;
            ``k = min(n_neighbors, n_support)``.
        """
        queries32 = _as_search_array(queries)
        k = min(n_neighbors, self.n_support)
        rows = self._block_rows(len(queries32))
        indices = np.empty((len(queries32), k), dtype=np.int64)
        distances = np.empty((len(queries32), k))
        for start in range(0, len(queries32), rows):
            stop = min(start + rows, len(queries32))
            scores = self.sq_norms - 2.0 * (
                queries32[start:stop] @ self.sorted_vectors.T
            )
            positions = np.argpartition(scores, k - 1, axis=1)[:, :k]
            indices[start:stop], distances[start:stop] = _sorted_neighbors(
                queries[start:stop], self.sorted_vectors, positions, k, self.order
            )
        return indices, distances

    def _block_rows(self, n_queries):
        """Query rows per block: the memory bound, at least min_block_rows."""
        per_row = 4 * max(self.n_support, 1)
        rows = max(self.min_block_rows, self.block_bytes // per_row)
        return int(max(1, min(n_queries, rows)))

    def search(self, queries, predictions, max_similarity, *, self_indices=None):
        """Similarity, nearest support point and its distance for each query.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, n_dims)
        predictions : ndarray of shape (n_queries,), int
            Predicted class index of each query.
        max_similarity : int
            Cap on q.
        self_indices : ndarray of shape (n_queries,), int, default=None
            Support index of each query's self-match to skip (``-1``: none).

        Returns
        -------
        q : ndarray of shape (n_queries,), int64
        nearest : ndarray of shape (n_queries,), int64
            Index of the nearest support point (``-1`` if the support set has
            no other point). Among exact ties, a point that is not good for
            the query wins.
        d_nearest : ndarray of shape (n_queries,), float64
            Euclidean distance to it (``inf`` where ``nearest`` is -1).
        """
        # numba is imported on first use only: it adds a fifth to the import
        # time of the package
        from ._similarity import similarity_block

        queries32 = _as_search_array(queries)
        n_queries = queries32.shape[0]
        predictions = np.ascontiguousarray(predictions, dtype=np.int64)
        self_positions = np.full(n_queries, -1, dtype=np.int64)
        if self_indices is not None:
            self_indices = np.asarray(self_indices, dtype=np.int64)
            has_self = self_indices >= 0
            self_positions[has_self] = self.position[self_indices[has_self]]
        n_labels = max(int(predictions.max(initial=0)),
                       int(self.sorted_good.max(initial=0))) + 1
        group_bounds = np.searchsorted(
            self.sorted_good, np.arange(-1, n_labels + 1), side="left"
        ).astype(np.int64)
        q = np.zeros(n_queries, dtype=np.int64)
        positions = np.full(n_queries, -1, dtype=np.int64)
        rows = self._block_rows(n_queries)
        buffer = np.empty((rows, self.n_support), dtype=np.float32)
        support_t = self.sorted_vectors.T
        for start in range(0, n_queries, rows):
            stop = min(start + rows, n_queries)
            block = buffer[: stop - start]
            np.matmul(queries32[start:stop], support_t, out=block)
            similarity_block(
                block, self.sq_norms, self.order, group_bounds,
                predictions[start:stop],
                self_positions[start:stop], int(max_similarity), q[start:stop],
                positions[start:stop],
            )
        found = positions >= 0
        nearest = np.where(found, self.order[positions], -1)
        d_nearest = np.full(n_queries, np.inf)
        d_nearest[found] = exact_distances(
            queries[found], self.sorted_vectors, positions[found]
        )
        return q, nearest, d_nearest


class ApproximateSupport:
    """Support set searched through a pynndescent k-nearest-neighbour graph.

    q needs the run of good neighbours up to the first one that is not good,
    which can be long. Every query first asks for ``INITIAL_K`` neighbours;
    only the queries whose list holds no bad point yet ask again, with
    ``GROWTH`` times more, up to ``MAX_K``. A run still unbroken at ``MAX_K``
    neighbours gives ``q = MAX_K`` (then capped by ``max_similarity``): the
    reference implementation caps q at its top-k size, 2048, in the same way.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims)
        Support points in the search space.
    good_labels : ndarray of shape (n_support,), int
        See :class:`ExactSupport`.
    random_state : int
        Seed of the graph construction (built single-threaded, so that the
        same seed gives the same graph).
    """

    INITIAL_K = 64
    GROWTH = 8
    MAX_K = 2048
    # pynndescent's search effort. Measured on 30k clustered 128-d points:
    # q agreed with exact search for 76% of queries at its default 0.1, 90%
    # at 0.2 and 97% at 0.3 (0.07, 0.13 and 0.21 ms per query).
    EPSILON = 0.3

    def __init__(self, vectors, good_labels, *, random_state):
        from pynndescent import NNDescent

        self.vectors = _as_search_array(vectors)
        self.good_labels = np.ascontiguousarray(good_labels, dtype=np.int64)
        self.index = NNDescent(
            self.vectors, metric="euclidean", n_neighbors=30,
            random_state=random_state, n_jobs=1,
        )
        self.index.prepare()

    @property
    def n_support(self):
        return self.vectors.shape[0]

    def add(self, vectors, good_labels):
        """Append support points (used for updatability)."""
        vectors = _as_search_array(vectors)
        self.index.update(vectors)
        self.vectors = np.concatenate([self.vectors, vectors])
        self.good_labels = np.concatenate(
            [self.good_labels, np.asarray(good_labels, dtype=np.int64)]
        )

    def nearest(self, queries, n_neighbors):
        """Approximate nearest support points; see :meth:`ExactSupport.nearest`."""
        k = min(n_neighbors, self.n_support)
        candidates, _ = self.index.query(
            _as_search_array(queries), k=k, epsilon=self.EPSILON
        )
        return _sorted_neighbors(queries, self.vectors, candidates, k)

    def search(self, queries, predictions, max_similarity, *, self_indices=None):
        """Approximate q, nearest support point and its distance.

        Same contract as :meth:`ExactSupport.search`.
        """
        queries32 = _as_search_array(queries)
        n_queries = len(queries32)
        predictions = np.asarray(predictions, dtype=np.int64)
        if self_indices is None:
            self_indices = np.full(n_queries, -1, dtype=np.int64)
        extra = int(np.any(self_indices >= 0))
        q = np.zeros(n_queries, dtype=np.int64)
        nearest = np.full(n_queries, -1, dtype=np.int64)
        pending = np.arange(n_queries)
        k = self.INITIAL_K
        while len(pending):
            k_query = min(k + extra, self.n_support)
            neighbors, distances = self.index.query(
                queries32[pending], k=k_query, epsilon=self.EPSILON
            )
            is_self = neighbors == self_indices[pending, None]
            distances = np.where(is_self | (neighbors < 0), np.inf, distances)
            good = self.good_labels[neighbors] == predictions[pending, None]
            bad_radius = np.where(good | is_self, np.inf, distances).min(axis=1)
            run = np.sum(good & (distances < bad_radius[:, None]), axis=1)
            first = np.argmin(distances, axis=1)
            rows = np.arange(len(pending))
            nearest[pending] = np.where(
                np.isfinite(distances[rows, first]), neighbors[rows, first], -1
            )
            done = (
                np.isfinite(bad_radius)
                | (run >= max_similarity)
                | (k_query >= self.n_support)
                | (k >= self.MAX_K)
            )
            q[pending] = np.minimum(run, max_similarity)
            pending = pending[~done]
            k = min(k * self.GROWTH, self.MAX_K)
        d_nearest = np.full(n_queries, np.inf)
        found = nearest >= 0
        d_nearest[found] = exact_distances(
            queries[found], self.vectors, nearest[found]
        )
        return q, nearest, d_nearest


# Support-set size from which search="auto" uses ApproximateSupport. Measured
# (benchmarks/bench_scale.py, 384-d): approximate queries were 0.6 times as
# fast as exact ones at 10^5 support points and 1.9 times at 10^6, crossing
# near 3 x 10^5; on 128-d points one pass of 100k queries over a 100k support
# set, build included, took 154 s exact and 111 s approximate. Exact search
# stays exact, so it is kept until approximate search is clearly cheaper.
APPROXIMATE_THRESHOLD = 300_000


def make_support_factory(search, n_support, seed):
    """The constructor of the search structure for a support set.

    Parameters
    ----------
    search : {"auto", "exact", "approximate"}
    n_support : int
        Size of the support set.
    seed : int
        Seed of the approximate index.

    Returns
    -------
    factory : callable
        ``factory(vectors, good_labels)``.
    """
    wanted = search == "approximate" or (
        search == "auto" and n_support >= APPROXIMATE_THRESHOLD
    )
    if not wanted:
        return ExactSupport
    if importlib.util.find_spec("pynndescent") is None:
        if search == "approximate":
            raise ImportError(
                'search="approximate" needs pynndescent: '
                "pip install sdm_sklearn[approximate]"
            )
        return ExactSupport
    return partial(ApproximateSupport, random_state=int(seed))
