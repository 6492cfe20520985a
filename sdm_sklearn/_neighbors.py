"""The support set and its nearest-neighbour search.

``ExactSupport`` answers q and the nearest support point by blocked float32
BLAS products (never an N x N matrix) followed by the numba kernel in
:mod:`sdm_sklearn._similarity`. ``ApproximateSupport`` uses a pynndescent
graph for large support sets. Both take vectors in the *search space*
(see :class:`sdm_sklearn._adaptor.ExemplarAdaptor`), in which Euclidean
distances equal those between exemplar vectors.
"""

import numpy as np

from ._similarity import similarity_block

# Bytes of inner products held at once by one exact search.
DEFAULT_BLOCK_BYTES = 64 * 2**20


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


class ExactSupport:
    """Support set searched exactly by blocked BLAS products.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims)
        Support points in the search space.
    good_labels : ndarray of shape (n_support,), int
        For each support point, the class it is good for (its prediction
        when correctly predicted) or ``-1``.
    block_bytes : int, default=DEFAULT_BLOCK_BYTES
        Memory bound for the block of inner products.
    """

    def __init__(self, vectors, good_labels, *, block_bytes=DEFAULT_BLOCK_BYTES):
        self.vectors = _as_search_array(vectors)
        self.good_labels = np.ascontiguousarray(good_labels, dtype=np.int64)
        self.sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
        self.block_bytes = block_bytes

    @property
    def n_support(self):
        return self.vectors.shape[0]

    def add(self, vectors, good_labels):
        """Append support points (used for updatability)."""
        vectors = _as_search_array(vectors)
        self.vectors = np.concatenate([self.vectors, vectors])
        self.good_labels = np.concatenate(
            [self.good_labels, np.asarray(good_labels, dtype=np.int64)]
        )
        self.sq_norms = np.concatenate(
            [self.sq_norms, np.einsum("ij,ij->i", vectors, vectors)]
        )

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
            no other point).
        d_nearest : ndarray of shape (n_queries,), float64
            Euclidean distance to it (``inf`` where ``nearest`` is -1).
        """
        queries32 = _as_search_array(queries)
        n_queries = queries32.shape[0]
        predictions = np.ascontiguousarray(predictions, dtype=np.int64)
        if self_indices is None:
            self_indices = np.full(n_queries, -1, dtype=np.int64)
        else:
            self_indices = np.ascontiguousarray(self_indices, dtype=np.int64)
        q = np.zeros(n_queries, dtype=np.int64)
        nearest = np.full(n_queries, -1, dtype=np.int64)
        n_support = self.n_support
        rows = int(max(1, min(n_queries, self.block_bytes // (4 * max(n_support, 1)))))
        buffer = np.empty((rows, n_support), dtype=np.float32)
        support_t = self.vectors.T
        for start in range(0, n_queries, rows):
            stop = min(start + rows, n_queries)
            block = buffer[: stop - start]
            np.matmul(queries32[start:stop], support_t, out=block)
            similarity_block(
                block, self.sq_norms, self.good_labels, predictions[start:stop],
                self_indices[start:stop], int(max_similarity), q[start:stop],
                nearest[start:stop],
            )
        d_nearest = np.full(n_queries, np.inf)
        found = nearest >= 0
        d_nearest[found] = exact_distances(
            queries[found], self.vectors, nearest[found]
        )
        return q, nearest, d_nearest


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
    return ExactSupport
