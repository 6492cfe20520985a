"""The pynndescent backend: a k-nearest-neighbour graph of the support set.

:class:`NNDescentSupport` (``search="approximate"``) queries a pynndescent
graph (an optional dependency, imported when the backend is built) and
answers the support-set interface of :mod:`sdm_sklearn._exact` with
approximate answers; their agreement with exact search is measured in
``benchmarks/bench_scale.py``.
"""

import copy

import numpy as np

from ._exact import as_search_array, exact_distances, rank_candidates


class NNDescentSupport:
    """Support set searched through a pynndescent k-nearest-neighbour graph.

    q needs the run of good neighbours up to the first one that is not good,
    which can be long. Every query first asks for ``INITIAL_K`` neighbours;
    only the queries whose list holds no bad point yet ask again, with
    ``GROWTH`` times more, up to ``MAX_K``. A run still unbroken at ``MAX_K``
    neighbours gives ``q = MAX_K`` (then capped by ``max_similarity``): the
    reference implementation caps q at its top-k size, 2048, in the same way.

    Parameters
    ----------
    vectors, good_labels : ndarray
        The support points in the search space and the good class of each,
        as for :class:`~sdm_sklearn._exact.ExactSupport`.
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

        self.vectors = as_search_array(vectors)
        self.good_labels = np.ascontiguousarray(good_labels, dtype=np.int64)
        self.index = NNDescent(
            self.vectors, metric="euclidean", n_neighbors=30,
            random_state=random_state, n_jobs=1,
        )
        self.index.prepare()

    @property
    def n_support(self):
        return self.vectors.shape[0]

    def with_points(self, vectors, good_labels):
        """A new support set with points appended; this one is unchanged."""
        vectors = as_search_array(vectors)
        updated = copy.copy(self)
        updated.index = copy.deepcopy(self.index)
        updated.index.update(vectors)
        updated.vectors = np.concatenate([self.vectors, vectors])
        updated.good_labels = np.concatenate(
            [self.good_labels, np.asarray(good_labels, dtype=np.int64)]
        )
        return updated

    def for_task_graph(self):
        """This set, as it travels in a task graph: itself (held in memory)."""
        return self

    def nearest(self, queries, n_neighbors, *, n_jobs=1):
        """Approximate nearest support points; see :meth:`ExactSupport.nearest
        <sdm_sklearn._exact.ExactSupport.nearest>`.

        The graph is queried on one thread (``n_jobs`` is accepted for the
        common interface).
        """
        k = min(n_neighbors, self.n_support)
        candidates, _ = self._query(as_search_array(queries), k)
        return rank_candidates(queries, self.vectors, candidates, k)

    def _query(self, queries32, k):
        """Neighbour indices (``-1``: none) and distances from the index.

        Distances only need to rank the neighbours of one query.
        """
        return self.index.query(queries32, k=k, epsilon=self.EPSILON)

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
        """Approximate q, nearest support point and its distance.

        Same contract as :meth:`ExactSupport.search
        <sdm_sklearn._exact.ExactSupport.search>` (the graph is queried on
        one thread).
        """
        queries32 = as_search_array(queries)
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
            neighbors, distances = self._query(queries32[pending], k_query)
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
