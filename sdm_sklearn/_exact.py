"""The support-set interface, the exact backend and what every backend shares.

Every backend answers the same calls on vectors of the *search space* (see
:class:`sdm_sklearn._adaptor.ExemplarAdaptor`), in which Euclidean distances
equal those between exemplar vectors:

- ``search(queries, predictions, max_similarity, self_indices=None,
  n_jobs=1)`` returns q (capped), the nearest support index and d_nearest,
  with the tie rules of :func:`sdm_sklearn._similarity.similarity_block`;
- ``nearest(queries, n_neighbors, n_jobs=1)`` returns the nearest support
  points, nearest first;
- ``with_points(vectors, good_labels)`` returns a NEW support set with the
  points appended (the old one is left as it was, so that readers holding
  it never see a half-updated set);
- ``for_task_graph()`` returns the set as it travels inside a dask task
  graph: itself for a set held in memory, references to the shards for a
  sharded one (:mod:`sdm_sklearn._dask_support`).

``ExactSupport`` answers by float32 BLAS products in blocks of a fixed number
of query rows (never an N x N matrix), followed by the numba kernel, which
decides every comparison on canonical distances (see
:mod:`sdm_sklearn._similarity`): a row's answer depends on the row and the
support set alone, never on the other rows of the call, the BLAS or the
threads; blocks spread over ``n_jobs`` threads. In a search space of at
most ``SWEEP_DIMS`` dimensions the search reads no products: it sweeps
the support points sorted along one axis
(:func:`sdm_sklearn._similarity.sweep_block`), with the same answers.

The other backends (:mod:`sdm_sklearn._faiss`, :mod:`sdm_sklearn._nndescent`,
:mod:`sdm_sklearn._dask_support`) import this module and the kernel modules
only; the rules they share live here: the search array layout
(:func:`as_search_array`), the good class of a support point
(:func:`good_classes`), canonical ranking (:func:`rank_candidates`), the
block rule (:func:`default_block_bytes`, :func:`block_rows_for`), self
positions (:func:`self_positions`) and the column range of every good class
(:func:`group_bounds`). :meth:`ExactSupport.scan_products` feeds the blocks
of inner products to a caller's kernel (the shards of the Dask backend).

numba (through :mod:`sdm_sklearn._similarity`) is imported on the first
search, not with this module: it adds a fifth to the import time of the
package, and ``import sdm_sklearn`` loads this module.
"""

import numpy as np

from ._blocks import ROW_MULTIPLE, for_each_block, padded_block, round_block_rows

# Bytes of inner products held at once by one exact search block, per
# dimension of the search space: small blocks stay in cache between the BLAS
# product and the kernel's pass, which pays at few dimensions, while many
# dimensions favour larger products. Measured (20k queries, one BLAS thread),
# search time over GEMM time with 4 / 64 MiB blocks: 1.50 / 2.04 for 3k x
# 32-d, 1.42 / 1.36 for 20k x 128-d; 20k x 384-d took 356 / 297 ms. 128 KiB
# per dimension gives 4 MiB at 32-d, 16 MiB at 128-d and 48 MiB at 384-d.
BLOCK_BYTES_PER_DIM = 128 * 2**10
# Query rows per block are fixed per support set (a multiple of 32 between
# these bounds): every call pays for at least one whole block, so the upper
# bound keeps the cost of predicting a single row small.
MAX_BLOCK_ROWS = 1024
# Memory for each of the per-candidate arrays (8 bytes a candidate: query
# row, distance, index, order) that rank the candidates of ``nearest``:
# queries are ranked in groups whose arrays fit in it.
RANKING_BYTES = 16 * 2**20
# The sweep's axis (sweep_axis) is measured on this many points, each
# against this many others, in the slab of its distance to the
# AXIS_NEIGHBORS-th nearest of them. On the 2-d search vectors of
# benchmarks/bench_cost.py's tabular fit the widest axis gave slabs of 90
# points per query, the other 24 (searches 30 % faster).
AXIS_SAMPLE = 16
AXIS_POINTS = 256
AXIS_NEIGHBORS = 8


def as_search_array(vectors):
    """Float32, C-contiguous: the layout every backend searches."""
    return np.ascontiguousarray(vectors, dtype=np.float32)


def default_block_bytes(n_dims):
    """The memory bound of one block of products for ``n_dims`` dimensions.

    ``BLOCK_BYTES_PER_DIM`` per dimension, counting at least 32.
    """
    return BLOCK_BYTES_PER_DIM * max(n_dims, 32)


def block_rows_for(n_support, block_bytes):
    """Query rows per block of products against ``n_support`` points.

    As many as fit in ``block_bytes`` of float32 products, a multiple of
    ``ROW_MULTIPLE`` between ``ROW_MULTIPLE`` and ``MAX_BLOCK_ROWS``. A
    sharded set cuts its queries by the rule for all of its points, so that
    every shard meets the same blocks.

    Parameters
    ----------
    n_support : int
    block_bytes : int

    Returns
    -------
    rows : int
    """
    per_row = 4 * max(n_support, 1)
    return round_block_rows(
        min(max(block_bytes // per_row, ROW_MULTIPLE), MAX_BLOCK_ROWS)
    )


def sweep_axis(vectors):
    """The axis along which a sweep of ``vectors`` meets the fewest points.

    A query's sweep visits the points whose distance along the axis is
    within its search radius (:mod:`sdm_sklearn._similarity`). Measured on
    a fixed sample (``AXIS_SAMPLE`` points evenly spaced in the given order,
    each against ``AXIS_POINTS`` others, with the distance to the
    ``AXIS_NEIGHBORS``-th nearest of them as radius), so the axis is a
    function of the vectors alone; any axis gives the same answers.

    Parameters
    ----------
    vectors : ndarray of shape (n_points, n_dims), n_points >= 1

    Returns
    -------
    axis : int
    """
    def evenly(count):
        return vectors[:: max(1, len(vectors) // count)][:count].astype(np.float64)

    sample, points = evenly(AXIS_SAMPLE), evenly(AXIS_POINTS)
    gaps = [np.square(sample[:, axis, None] - points[:, axis])
            for axis in range(vectors.shape[1])]
    kth = min(AXIS_NEIGHBORS, len(points) - 1)
    radii = np.partition(sum(gaps), kth, axis=1)[:, kth, None]
    return int(np.argmin([np.count_nonzero(gap <= radii) for gap in gaps]))


def self_positions(position, self_indices, n_queries):
    """Sorted position of each query's self-match, ``-1`` for none.

    Parameters
    ----------
    position : ndarray of shape (n_support,), int
        Sorted position of every support index.
    self_indices : ndarray of shape (n_queries,), int, or None
        Support index of each query's self-match (``-1``, or None for all:
        none).
    n_queries : int

    Returns
    -------
    positions : ndarray of shape (n_queries,), int64
    """
    positions = np.full(n_queries, -1, dtype=np.int64)
    if self_indices is not None:
        self_indices = np.asarray(self_indices, dtype=np.int64)
        has_self = self_indices >= 0
        positions[has_self] = position[self_indices[has_self]]
    return positions


def group_bounds(sorted_good, predictions):
    """Where the points good for each class start and stop.

    Parameters
    ----------
    sorted_good : ndarray of shape (n_support,), int64
        Good classes, sorted.
    predictions : ndarray of shape (n_queries,), int64
        Predicted class of every query: the groups reach the largest.

    Returns
    -------
    bounds : ndarray of shape (n_labels + 2,), int64
        The points good for class ``c`` are ``bounds[c + 1]:bounds[c + 2]``
        of ``sorted_good``; those before ``bounds[1]`` are good for none.
    """
    n_labels = max(int(predictions.max(initial=0)),
                   int(sorted_good.max(initial=0))) + 1
    return np.searchsorted(
        sorted_good, np.arange(-1, n_labels + 1), side="left"
    ).astype(np.int64)


def good_classes(predictions, labels):
    """The class each support point is good for, ``-1`` for none.

    A support point is good for a query when it is correctly predicted and
    its prediction equals the query's: so it is good for its prediction
    when that is right, and for no query otherwise. Labels outside the
    classes (``-1``) are never good.

    Parameters
    ----------
    predictions, labels : ndarray of shape (n_support,), int
        Of any integer types (unsigned ones too).

    Returns
    -------
    good : ndarray of shape (n_support,), int64
    """
    good = np.asarray(predictions).astype(np.int64)
    good[good != labels] = -1
    return good


def exact_distances(queries, support_vectors, indices, rows=None):
    """Canonical Euclidean distances of (query, support row) pairs.

    The square roots of :func:`sdm_sklearn._similarity.squared_distance`, a
    function of the two vectors alone.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_dims)
    support_vectors : ndarray of shape (n_support, n_dims)
    indices : ndarray of shape (n_pairs,), int
        Row of ``support_vectors`` of each pair.
    rows : ndarray of shape (n_pairs,), int, default=None
        Row of ``queries`` of each pair (None: row ``i`` for pair ``i``).

    Returns
    -------
    distances : ndarray of shape (n_pairs,)
    """
    from ._similarity import pair_squared_distances

    indices = np.asarray(indices, dtype=np.int64)
    rows = (np.arange(len(indices)) if rows is None
            else np.asarray(rows, dtype=np.int64))
    sq_distances = np.empty(len(indices))
    pair_squared_distances(np.asarray(queries), rows, support_vectors, indices,
                           sq_distances)
    return np.sqrt(sq_distances)


def rank_candidates(queries, support_vectors, candidates, n_neighbors,
                    indices=None):
    """The ``n_neighbors`` nearest of candidate rows, by canonical distance.

    Queries are ranked in groups whose per-candidate arrays fit in
    ``RANKING_BYTES``, so memory stays bounded by the output.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_dims)
    support_vectors : ndarray of shape (n_support, n_dims)
    candidates : ndarray of shape (n_queries, n_candidates), int
        Rows of ``support_vectors`` to rank for each query; ``-1`` pads
        (every query has at least ``n_neighbors`` others).
    n_neighbors : int
    indices : ndarray of shape (n_support,), default=None
        Support index of every row of ``support_vectors`` (None: the row).

    Returns
    -------
    indices, distances : ndarray of shape (n_queries, n_neighbors)
        Support indices sorted by canonical distance, ties by index.
    """
    queries = np.asarray(queries)
    n_queries, n_candidates = candidates.shape
    group = max(1, RANKING_BYTES // (8 * max(n_candidates, 1)))
    out_indices = np.empty((n_queries, n_neighbors), dtype=np.int64)
    out_distances = np.empty((n_queries, n_neighbors))
    for start in range(0, n_queries, group):
        stop = min(start + group, n_queries)
        part = candidates[start:stop]
        valid = part >= 0
        rows = np.repeat(np.arange(start, stop), n_candidates)[valid.ravel()]
        distances = np.full(part.shape, np.inf)
        distances[valid] = exact_distances(queries, support_vectors,
                                           part[valid], rows=rows)
        labels = np.where(valid, part if indices is None
                          else indices[np.maximum(part, 0)], -1)
        order = np.lexsort((labels, distances), axis=1)[:, :n_neighbors]
        out_indices[start:stop] = np.take_along_axis(labels, order, axis=1)
        out_distances[start:stop] = np.take_along_axis(distances, order, axis=1)
    return out_indices, out_distances


class ExactSupport:
    """Support set searched exactly by blocked BLAS products.

    The vectors are kept sorted by the class they are good for (see
    :func:`sdm_sklearn._similarity.similarity_block`), and within each class
    along the sweep's axis in a space of at most ``SWEEP_DIMS`` dimensions;
    indices going in and out are those of the original order.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims)
        Support points in the search space.
    good_labels : ndarray of shape (n_support,), int
        For each support point, the class it is good for (see
        :func:`good_classes`).
    block_bytes : int, default=None
        Memory bound for one block of inner products (exceeded only when
        ``ROW_MULTIPLE`` rows are larger; see :func:`block_rows_for`).
        None: :func:`default_block_bytes` of the number of dimensions.
    """

    def __init__(self, vectors, good_labels, *, block_bytes=None):
        from ._similarity import SWEEP_DIMS, norm_bound

        vectors = as_search_array(vectors)
        good_labels = np.asarray(good_labels, dtype=np.int64)
        if block_bytes is None:
            block_bytes = default_block_bytes(vectors.shape[1])
        self.block_bytes = block_bytes
        # the sweep's axis; None: products
        self.sweep_axis = None
        if len(vectors) and 0 < vectors.shape[1] <= SWEEP_DIMS:
            self.sweep_axis = sweep_axis(vectors)
            self.order = np.lexsort((vectors[:, self.sweep_axis], good_labels))
        else:
            self.order = np.argsort(good_labels, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.sorted_vectors = np.ascontiguousarray(vectors[self.order])
        self.sorted_good = good_labels[self.order]
        if self.sweep_axis is not None:
            self.sweep_keys = self.sorted_vectors[:, self.sweep_axis].astype(
                np.float64)
        self.sq_norms = np.einsum("ij,ij->i", self.sorted_vectors,
                                  self.sorted_vectors)
        self.max_norm = norm_bound(self.sq_norms, vectors.shape[1])
        self.block_rows = block_rows_for(self.n_support, block_bytes)

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

    def with_points(self, vectors, good_labels):
        """A new support set with points appended (used for updatability)."""
        return type(self)(
            np.concatenate([self.vectors, as_search_array(vectors)]),
            np.concatenate([self.good_labels,
                            np.asarray(good_labels, dtype=np.int64)]),
            block_bytes=self.block_bytes,
        )

    def for_task_graph(self):
        """This set, as it travels in a task graph: itself (held in memory)."""
        return self

    def scan_products(self, queries32, process, *, n_jobs=1, block_rows=None):
        """Feed every fixed-size block of inner products to ``process``.

        Parameters
        ----------
        queries32 : ndarray of shape (n_queries, n_dims), float32
            See :func:`as_search_array`.
        process : callable
            ``process(start, size, products)`` gets the block's first row,
            its number of real rows and the ``(size, n_support)`` products
            with the sorted support vectors (a buffer reused by the thread,
            which ``process`` may overwrite); it writes only its own rows.
        n_jobs : int, default=1
            Threads.
        block_rows : int, default=None
            Query rows per block; None: this set's ``block_rows``.
        """
        rows = self.block_rows if block_rows is None else block_rows
        support_t = self.sorted_vectors.T

        def task(starts):
            buffer = np.empty((rows, self.n_support), dtype=np.float32)
            for start in starts:
                block, size = padded_block(queries32, start, rows)
                np.matmul(block, support_t, out=buffer)
                process(start, size, buffer[:size])

        for_each_block(task, len(queries32), rows, n_jobs)

    def nearest(self, queries, n_neighbors, *, n_jobs=1, block_rows=None):
        """The ``n_neighbors`` nearest support points of every query.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, n_dims)
        n_neighbors : int
        n_jobs : int, default=1
            Threads.
        block_rows : int, default=None
            As for :meth:`scan_products`.

        Returns
        -------
        indices, distances : ndarray of shape (n_queries, k)
            Original support indices and canonical distances, nearest
            first, ties by index; ``k = min(n_neighbors, n_support)``.
        """
        from ._similarity import row_bands

        queries32 = as_search_array(queries)
        k = min(n_neighbors, self.n_support)
        indices = np.empty((len(queries32), k), dtype=np.int64)
        distances = np.empty((len(queries32), k))

        def process(start, size, products):
            stop = start + size
            scores = self.sq_norms - 2.0 * products.astype(np.float64)
            bands = np.empty(size)
            row_bands(queries32[start:stop], self.max_norm, bands)
            # the canonical k nearest score at most 2 bands above the k-th
            # smallest score (sdm_sklearn._similarity): rank all of those
            positions = np.argpartition(scores, k - 1, axis=1)
            kth = np.take_along_axis(scores, positions[:, k - 1 : k], axis=1)
            width = int(np.max(np.sum(scores <= kth + 2.0 * bands[:, None],
                                      axis=1)))
            if width > k:
                positions = np.argpartition(scores, width - 1, axis=1)
            positions = positions[:, :width]
            indices[start:stop], distances[start:stop] = rank_candidates(
                queries32[start:stop], self.sorted_vectors, positions, k,
                self.order,
            )

        self.scan_products(queries32, process, n_jobs=n_jobs,
                           block_rows=block_rows)
        return indices, distances

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
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
        n_jobs : int, default=1
            Threads.

        Returns
        -------
        q : ndarray of shape (n_queries,), int64
        nearest : ndarray of shape (n_queries,), int64
            Index of the nearest support point (``-1`` if the support set has
            no other point). Among exact ties, a point that is not good for
            the query wins, then the smallest index.
        d_nearest : ndarray of shape (n_queries,), float64
            Euclidean distance to it (``inf`` where ``nearest`` is -1).
        """
        from ._similarity import similarity_block, sweep_block

        queries32 = as_search_array(queries)
        n_queries = queries32.shape[0]
        predictions = np.ascontiguousarray(predictions, dtype=np.int64)
        skipped = self_positions(self.position, self_indices, n_queries)
        bounds = group_bounds(self.sorted_good, predictions)
        q = np.zeros(n_queries, dtype=np.int64)
        nearest = np.full(n_queries, -1, dtype=np.int64)
        sq_distances = np.full(n_queries, np.inf)

        def answer(start, stop, kernel, before, between):
            """Answer the rows ``start:stop`` by ``kernel``, whose other
            inputs come ``before`` the queries and ``between`` the support
            points and their original indices."""
            positions = np.empty(stop - start, dtype=np.int64)
            kernel(*before, queries32[start:stop], self.sorted_vectors,
                   *between, self.order, bounds, predictions[start:stop],
                   skipped[start:stop], int(max_similarity), q[start:stop],
                   positions, sq_distances[start:stop])
            found = positions >= 0
            nearest[start:stop][found] = self.order[positions[found]]

        if self.sweep_axis is None:
            def process(start, size, products):
                answer(start, start + size, similarity_block,
                       (products, self.sq_norms), (self.max_norm,))

            self.scan_products(queries32, process, n_jobs=n_jobs)
        else:
            def sweep(starts):
                for start in starts:
                    answer(start, min(start + self.block_rows, n_queries),
                           sweep_block, (), (self.sweep_keys, self.sweep_axis))

            for_each_block(sweep, n_queries, self.block_rows, n_jobs)
        return q, nearest, np.sqrt(sq_distances)
