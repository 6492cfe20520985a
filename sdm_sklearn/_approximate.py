"""Approximate search backends.

Both answer the support-set interface of :mod:`sdm_sklearn._neighbors`
(``search``, ``nearest``, ``with_points``) with approximate answers; their
agreement with exact search is measured in ``benchmarks/bench_scale.py``.

- :class:`FaissSupport` (``search="faiss"``) cuts the support set into
  k-means cells (FAISS's k-means, an optional dependency imported when the
  backend is built) and compares every query exactly with the points of
  its nearest cells, by float32 BLAS products and a numba kernel.
- :class:`ApproximateSupport` (``search="approximate"``) queries a
  pynndescent k-nearest-neighbour graph (an optional dependency).
"""

import copy
import math

import numpy as np
from numba import njit

from ._blocks import ROW_MULTIPLE, for_each_block, padded_block
from ._neighbors import as_search_array, exact_distances, rank_candidates
from ._similarity import (
    canonical_nearest,
    canonical_nearest_outside,
    count_closer,
    norm_bound,
    product_score,
    row_bands,
    score_band,
    score_limit,
    squared_distance,
)


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

    def nearest(self, queries, n_neighbors, *, n_jobs=1):
        """Approximate nearest support points; see :meth:`ExactSupport.nearest`.

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

        Same contract as :meth:`ExactSupport.search` (the graph is queried on
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


@njit(cache=True, nogil=True, inline="always")
def _offer(heap, items, size, value, item):
    """Offer ``value`` (with ``item``) to a max-heap of the smallest values.

    ``heap`` keeps the ``len(heap)`` smallest values offered so far, the
    largest at the root; ``items`` follows it. Returns the new size.
    """
    capacity = heap.shape[0]
    if size < capacity:
        child = size
        size += 1
    elif value < heap[0]:
        child = -1
    else:
        return size
    if child >= 0:  # sift the new leaf up
        while child > 0:
            parent = (child - 1) // 2
            if heap[parent] >= value:
                break
            heap[child], items[child] = heap[parent], items[parent]
            child = parent
        heap[child], items[child] = value, item
        return size
    parent = 0  # replace the root and sift it down
    while True:
        child = 2 * parent + 1
        if child >= capacity:
            break
        if child + 1 < capacity and heap[child + 1] > heap[child]:
            child += 1
        if heap[child] <= value:
            break
        heap[parent], items[parent] = heap[child], items[child]
        parent = child
    heap[parent], items[parent] = value, item
    return size


@njit(cache=True, nogil=True, inline="always")
def _merge_best(best, position, other, other_position, original):
    """The better of two (distance, position) minima (ties: original index)."""
    if other < best or (other == best and other_position >= 0 and (
            position < 0 or original[other_position] < original[position])):
        return other, other_position
    return best, position


@njit(cache=True, nogil=True, inline="always")
def _skip_self(products, row, offset):
    """Hide a self-match from a row of products (its score becomes inf)."""
    if 0 <= offset < products.shape[1]:
        products[row, offset] = -np.inf


@njit(cache=True, nogil=True)
def _scan_cell(products, queries, rows, cell_start, bounds, sq_norms, points,
               original, max_norm, predictions, self_positions, bad_distance,
               bad_position, heap, heap_items, heap_size):
    """Fold one cell into the search state of the queries that probe it.

    Parameters
    ----------
    products : ndarray of shape (>= n_rows, cell_size), float32
        Inner products of the queries ``rows`` (in order) with the cell;
        self-matches are overwritten.
    queries : ndarray of shape (>= n_rows, n_dims), float32
        Those queries, row for row.
    rows : ndarray of shape (n_rows,), int64
        Their rows in the state arrays.
    cell_start : int
        Position of the cell's first point in the sorted support set.
    bounds : ndarray of shape (n_labels + 3,), int64
        Offsets in the cell: points good for class ``c`` are at
        ``bounds[c + 1]:bounds[c + 2]``.
    sq_norms, points, original : ndarray
        Squared norms, vectors (``(n_support, n_dims)``, a transposed view
        works) and original indices of the sorted support points.
    max_norm : float
        An upper bound on the norms of ``points``.
    predictions, self_positions : ndarray of shape (n_block,), int64
        Class of every query and the position to skip (``-1``: none).
    bad_distance, bad_position : ndarray of shape (n_block,)
        Canonical squared distance to the nearest point not good for the
        query, and its position (updated; :mod:`sdm_sklearn._similarity`).
    heap, heap_items, heap_size : ndarray
        Per query, the smallest scores ``|s|^2 - 2 <u, s>`` (and positions)
        of the good points that may be closer than the bad point of the
        moment (updated; see :func:`_offer`). Every good point closer than
        the final bad one was offered.
    """
    cell_size = products.shape[1]
    cell_stop = cell_start + cell_size
    cell_norms = sq_norms[cell_start:cell_stop]
    cell_points = points[cell_start:cell_stop]
    cell_original = original[cell_start:cell_stop]
    for r in range(len(rows)):
        i = rows[r]
        start = bounds[predictions[i] + 1]
        stop = bounds[predictions[i] + 2]
        _skip_self(products, r, self_positions[i] - cell_start)
        sq_norm, band = score_band(queries, r, max_norm)
        bad, bad_j = canonical_nearest_outside(
            products, cell_norms, queries, r, cell_points, cell_original,
            start, stop, sq_norm, band,
            score_limit(bad_distance[i], sq_norm, band),
        )
        if bad_j >= 0:
            bad_j += cell_start
        bad, bad_j = _merge_best(bad_distance[i], bad_position[i], bad, bad_j,
                                 original)
        bad_distance[i], bad_position[i] = bad, bad_j
        limit = score_limit(bad, sq_norm, band)
        size = heap_size[i]
        for j in range(start, stop):
            score = product_score(products, cell_norms, r, j)
            if score <= limit and score != np.inf:
                size = _offer(heap[i], heap_items[i], size, score, cell_start + j)
        heap_size[i] = size


@njit(cache=True, nogil=True)
def _finish_heaps(queries, points, max_norm, original, bad_distance, heap,
                  heap_items, heap_size, max_similarity, counts, good_distance,
                  good_position, recount):
    """q and the nearest good point of every query from its heap.

    ``counts`` gets the heap's points canonically closer than the bad
    point, ``good_distance`` and ``good_position`` the canonically nearest
    of them (ties: original index). ``recount`` flags the queries whose
    heap is full of points that may be closer than the bad one, with fewer
    than ``max_similarity`` counted: points left out of the heap may count,
    so their cells are counted again (:func:`_count_cell`).
    """
    capacity = heap.shape[1]
    for i in range(heap.shape[0]):
        sq_norm, band = score_band(queries, i, max_norm)
        threshold = bad_distance[i] - sq_norm
        size = heap_size[i]
        lowest = np.inf
        highest = -np.inf
        for e in range(size):
            lowest = min(lowest, heap[i, e])
            highest = max(highest, heap[i, e])
        count = 0
        best, best_j = np.inf, -1
        for e in range(size):
            score, position = heap[i, e], heap_items[i, e]
            closer = score < threshold - 2.0 * band
            near_bad = not closer and score <= threshold + 2.0 * band
            near_best = score <= lowest + 2.0 * band
            if near_bad or near_best:
                distance = squared_distance(queries, i, points, position)
                closer = closer or (near_bad and distance < bad_distance[i])
                if near_best:
                    best, best_j = _merge_best(best, best_j, distance, position,
                                               original)
            count += closer
        counts[i] = count
        good_distance[i], good_position[i] = best, best_j
        recount[i] = (size == capacity and count < max_similarity
                      and highest <= threshold + 2.0 * band)


@njit(cache=True, nogil=True)
def _count_cell(products, queries, rows, cell_start, bounds, sq_norms, points,
                original, max_norm, predictions, self_positions, bad_distance,
                counts, good_distance, good_position):
    """Add the good points of one cell closer than the bad one to ``counts``.

    Same parameters as :func:`_scan_cell`; ``bad_distance`` holds the final
    bad distance of every query; the nearest good point is folded into
    ``good_distance`` and ``good_position``.
    """
    cell_stop = cell_start + products.shape[1]
    cell_norms = sq_norms[cell_start:cell_stop]
    cell_points = points[cell_start:cell_stop]
    cell_original = original[cell_start:cell_stop]
    for r in range(len(rows)):
        i = rows[r]
        start = bounds[predictions[i] + 1]
        stop = bounds[predictions[i] + 2]
        _skip_self(products, r, self_positions[i] - cell_start)
        sq_norm, band = score_band(queries, r, max_norm)
        counts[i] += count_closer(products, cell_norms, queries, r,
                                  cell_points, start, stop, bad_distance[i],
                                  sq_norm, band)
        good, good_j = canonical_nearest(
            products, cell_norms, queries, r, cell_points, cell_original,
            start, stop, band, np.inf, -1,
            score_limit(good_distance[i], sq_norm, band),
        )
        if good_j >= 0:
            good_j += cell_start
        good_distance[i], good_position[i] = _merge_best(
            good_distance[i], good_position[i], good, good_j, original
        )


@njit(cache=True, nogil=True)
def _nearest_cell(products, rows, cell_start, sq_norms, heap, heap_items,
                  heap_size):
    """Offer every point of one cell to the top-k heap of each query."""
    cell_norms = sq_norms[cell_start:cell_start + products.shape[1]]
    for r in range(len(rows)):
        i = rows[r]
        size = heap_size[i]
        for j in range(products.shape[1]):
            size = _offer(heap[i], heap_items[i], size,
                          product_score(products, cell_norms, r, j),
                          cell_start + j)
        heap_size[i] = size


def train_cells(vectors, n_cells, seed):
    """Centroids of ``n_cells`` k-means cells of ``vectors`` (FAISS).

    FAISS trains on a seeded sample of ``FaissSupport.SAMPLE_PER_CELL``
    points per cell, with one OpenMP thread so that the result does not
    depend on the thread count; the caller's OpenMP setting is restored.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims), float32
    n_cells : int
    seed : int

    Returns
    -------
    centroids : ndarray of shape (n_cells, n_dims), float32
    """
    import faiss

    kmeans = faiss.Kmeans(
        vectors.shape[1], n_cells, niter=FaissSupport.KMEANS_ITERATIONS,
        seed=int(seed) % 2**31, max_points_per_centroid=FaissSupport.SAMPLE_PER_CELL,
        min_points_per_centroid=1, verbose=False,
    )
    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        kmeans.train(vectors)
    finally:
        faiss.omp_set_num_threads(saved)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


class FaissSupport:
    """Support set cut into k-means cells; each query searches its nearest cells.

    The cells are FAISS k-means clusters, about ``sqrt(n_support)`` of them,
    trained on a seeded sample. A query is compared with every point of its
    ``n_probe`` nearest cells (nearest by centroid) by float32 BLAS products
    and the canonical comparisons and tie rules of exact search
    (:mod:`sdm_sklearn._similarity`): over the points of those cells, q and
    the nearest point are exact. A point of
    another cell is never seen, so q errs low when a good point of the run
    lies elsewhere, and high when the bad point that ends the run does.
    Calibration and predictions search the same cells, so the calibration
    describes the q that this backend computes.

    Inside every cell the points are sorted by the class they are good for,
    so that for a query predicted ``c`` the kernel reads r (the nearest
    point not good for ``c``) and the good points as separate ranges. The
    good points that may be closer than the r of the moment go to a bounded
    heap of ``HEAP_SIZE``; a query whose heap is full of points that may be
    closer than the final r (a run at least that long) is counted again
    over its cells.

    The cells probed and every comparison are decided on canonical
    distances, so a query's answer never depends on the other rows of the
    call (which share its products) nor on the BLAS, and blocks of up to
    ``SCAN_ROWS`` queries spread over ``n_jobs`` threads with identical
    results. Only the centroids and sorted arrays are kept, so the
    backend pickles like the exact one.

    Parameters
    ----------
    vectors : ndarray of shape (n_support, n_dims)
        Support points in the search space.
    good_labels : ndarray of shape (n_support,), int
        See :class:`~sdm_sklearn._neighbors.ExactSupport`.
    random_state : int
        Seed of the k-means sample and initialization.
    n_cells : int, default=None
        Number of cells; None: ``round(sqrt(n_support))``.
    n_probe : int, default=None
        Cells searched per query; None: ``N_PROBE``.
    """

    # Cells searched per query. Measured on 10^6 points of 128-d
    # embeddings-like data (1000 cells, 10% mispredicted, 3000 queries): q
    # agreed with exact search for 94.2% of queries with 40 cells, 97.3%
    # with 48, 98.6% with 56 and 99.5% with 64, at 0.34 ms of CPU per query
    # with 48 and 0.39 ms with 56. Finer cells (2000 and 4000, probing the
    # same share of points) agreed as often for more time per query.
    N_PROBE = 56
    HEAP_SIZE = 128
    KMEANS_ITERATIONS = 10
    SAMPLE_PER_CELL = 64
    PROBE_ROWS = 256
    CHUNK_ROWS = 2 * ROW_MULTIPLE
    # Queries per block (per thread: their heaps take 16 MiB, plus the
    # products of one cell). Larger blocks pad the chunks of a cell less: at
    # 10^6 points 8192 rows took 0.35 ms per query, 4096 rows 0.38 ms.
    SCAN_ROWS = 8192

    def __init__(self, vectors, good_labels, *, random_state, n_cells=None,
                 n_probe=None):
        vectors = as_search_array(vectors)
        if n_cells is None:
            n_cells = round(math.sqrt(len(vectors)))
        n_cells = int(min(max(n_cells, 1), max(len(vectors), 1)))
        self.n_probe = int(min(self.N_PROBE if n_probe is None else n_probe,
                               n_cells))
        if len(vectors):
            self.centroids = train_cells(vectors, n_cells, random_state)
        else:
            self.centroids = np.zeros((1, vectors.shape[1]), dtype=np.float32)
            self.n_probe = 1
        self._arrange(vectors, np.asarray(good_labels, dtype=np.int64))

    def _arrange(self, vectors, good_labels):
        """Sort the points by (cell, good class, index) and index the ranges."""
        self.centroid_sq_norms = np.einsum("ij,ij->i", self.centroids,
                                           self.centroids)
        self.centroid_max_norm = norm_bound(self.centroid_sq_norms,
                                            vectors.shape[1])
        n_cells = len(self.centroids)
        cells = self._probes(vectors, 1)[:, 0]
        self.order = np.lexsort((good_labels, cells))
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        sorted_vectors = vectors[self.order]
        self.sq_norms = np.einsum("ij,ij->i", sorted_vectors, sorted_vectors)
        self.max_norm = norm_bound(self.sq_norms, vectors.shape[1])
        # kept transposed: a cell's columns are a BLAS-ready operand (numpy's
        # stacked matmul ran 1.4 times slower on the transposed view of rows)
        self.columns = np.ascontiguousarray(sorted_vectors.T)
        self.sorted_good = good_labels[self.order]
        # groups -1 .. n_labels - 1; a query predicted n_labels (clipped from
        # any class without good points) gets the empty range at the end
        self.n_labels = int(self.sorted_good.max(initial=-1)) + 1
        width = self.n_labels + 1
        keys = cells[self.order] * width + self.sorted_good + 1
        self.cell_bounds = np.searchsorted(
            keys, np.arange(n_cells + 1) * width
        ).astype(np.int64)
        within = np.searchsorted(
            keys, np.arange(n_cells)[:, None] * width + np.arange(width + 1)
        ) - self.cell_bounds[:-1, None]
        self.group_bounds = np.ascontiguousarray(np.hstack(
            [within, np.diff(self.cell_bounds)[:, None]]
        ), dtype=np.int64)

    @property
    def n_support(self):
        return len(self.order)

    @property
    def vectors(self):
        """Support vectors in the original order (a copy)."""
        return self.columns.T[self.position]

    @property
    def good_labels(self):
        """Good class of every support point, in the original order."""
        return self.sorted_good[self.position]

    def with_points(self, vectors, good_labels):
        """A new support set with points appended, in the same cells.

        The centroids are kept (the new points join their nearest cells);
        this support set is left unchanged.
        """
        updated = copy.copy(self)
        updated._arrange(
            np.concatenate([self.vectors, as_search_array(vectors)]),
            np.concatenate([self.good_labels,
                            np.asarray(good_labels, dtype=np.int64)]),
        )
        return updated

    def _scan_rows(self, n_queries, n_jobs):
        """Queries per block: at most ``SCAN_ROWS``, enough blocks for the threads.

        Results do not depend on it: every decision is canonical.
        """
        per_thread = math.ceil(n_queries / max(n_jobs, 1) / self.PROBE_ROWS)
        return min(self.SCAN_ROWS, max(per_thread, 1) * self.PROBE_ROWS)

    def _probes(self, queries32, n_probe):
        """The ``n_probe`` nearest cells of every query (in no order).

        Nearest by canonical distance to the centroid, ties by cell
        (:mod:`sdm_sklearn._similarity`): the scores of the BLAS products
        pick the cells, and where the ``n_probe``-th is within the band of
        others, their canonical distances choose.
        """
        n_cells = len(self.centroids)
        if n_probe >= n_cells:
            return np.broadcast_to(np.arange(n_cells), (len(queries32), n_cells))
        probes = np.empty((len(queries32), n_probe), dtype=np.int64)
        centroids_t = self.centroids.T
        for start in range(0, len(queries32), self.PROBE_ROWS):
            block, size = padded_block(queries32, start, self.PROBE_ROWS)
            scores = (self.centroid_sq_norms
                      - 2.0 * (block @ centroids_t)[:size].astype(np.float64))
            chosen = np.argpartition(scores, n_probe - 1, axis=1)[:, :n_probe]
            kth = np.max(np.take_along_axis(scores, chosen, axis=1), axis=1)
            bands = np.empty(size)
            row_bands(block[:size], self.centroid_max_norm, bands)
            sure = scores < (kth - 2.0 * bands)[:, None]
            near = np.abs(scores - kth[:, None]) <= 2.0 * bands[:, None]
            open_slots = n_probe - sure.sum(axis=1)
            for row in np.flatnonzero(near.sum(axis=1) > open_slots):
                candidates = np.flatnonzero(near[row])
                distances = exact_distances(
                    block, self.centroids, candidates,
                    rows=np.full(len(candidates), row),
                )
                picked = candidates[np.lexsort((candidates, distances))]
                chosen[row] = np.concatenate(
                    [np.flatnonzero(sure[row]), picked[: open_slots[row]]]
                )
            probes[start : start + size] = chosen
        return probes

    def _visit_cells(self, queries32, probes, rows, visit):
        """Call ``visit(cell, cell_rows, products, cell_queries)`` per probed cell.

        ``rows`` are the queries to process; ``cell_rows`` those of them that
        probe the cell (ascending), ``products`` their inner products with
        the cell's points, computed in chunks of ``CHUNK_ROWS`` rows, and
        ``cell_queries`` their vectors, row for row.
        """
        if len(rows) == 0:
            return
        chunk = self.CHUNK_ROWS
        n_dims = queries32.shape[1]
        pair_cells = probes[rows].ravel()
        pair_rows = np.repeat(rows, probes.shape[1])
        by_cell = np.argsort(pair_cells, kind="stable")
        pair_cells, pair_rows = pair_cells[by_cell], pair_rows[by_cell]
        edges = np.flatnonzero(np.diff(pair_cells)) + 1
        starts = np.concatenate([[0], edges])
        stops = np.concatenate([edges, [len(pair_cells)]])
        padded_rows = -(-(stops - starts) // chunk) * chunk
        cell_sizes = np.diff(self.cell_bounds)[pair_cells[starts]]
        gathered = np.zeros((padded_rows.max(initial=0), n_dims), dtype=np.float32)
        buffer = np.empty((padded_rows * cell_sizes).max(initial=0),
                          dtype=np.float32)
        for lo, hi in zip(starts, stops, strict=True):
            cell = pair_cells[lo]
            cell_lo, cell_hi = self.cell_bounds[cell], self.cell_bounds[cell + 1]
            if cell_hi == cell_lo or hi == lo:
                continue
            cell_rows = pair_rows[lo:hi]
            n_chunks = math.ceil(len(cell_rows) / chunk)
            block = gathered[: n_chunks * chunk]
            block[: len(cell_rows)] = queries32[cell_rows]
            block[len(cell_rows):] = 0.0
            products = buffer[: len(block) * (cell_hi - cell_lo)].reshape(
                n_chunks, chunk, cell_hi - cell_lo
            )
            np.matmul(block.reshape(n_chunks, chunk, n_dims),
                      self.columns[:, cell_lo:cell_hi], out=products)
            visit(cell, cell_rows, products.reshape(len(block), -1), block)

    def _search_block(self, queries32, predictions, self_positions,
                      max_similarity):
        """q and the nearest position for one block of queries."""
        n_rows = len(queries32)
        probes = self._probes(queries32, self.n_probe)
        points = self.columns.T
        bad = np.full(n_rows, np.inf)
        bad_position = np.full(n_rows, -1, dtype=np.int64)
        heap = np.full((n_rows, self.HEAP_SIZE), np.inf)
        heap_items = np.empty((n_rows, self.HEAP_SIZE), dtype=np.int64)
        heap_size = np.zeros(n_rows, dtype=np.int64)

        def scan(cell, rows, products, cell_queries):
            _scan_cell(products, cell_queries, rows, self.cell_bounds[cell],
                       self.group_bounds[cell], self.sq_norms, points,
                       self.order, self.max_norm, predictions, self_positions,
                       bad, bad_position, heap, heap_items, heap_size)

        self._visit_cells(queries32, probes, np.arange(n_rows), scan)
        counts = np.empty(n_rows, dtype=np.int64)
        good = np.empty(n_rows)
        good_position = np.empty(n_rows, dtype=np.int64)
        recount = np.empty(n_rows, dtype=np.bool_)
        _finish_heaps(queries32, points, self.max_norm, self.order, bad, heap,
                      heap_items, heap_size, max_similarity, counts, good,
                      good_position, recount)
        longer = np.flatnonzero(recount)
        if len(longer):
            counts[longer], good[longer], good_position[longer] = 0, np.inf, -1

            def count(cell, rows, products, cell_queries):
                _count_cell(products, cell_queries, rows,
                            self.cell_bounds[cell], self.group_bounds[cell],
                            self.sq_norms, points, self.order, self.max_norm,
                            predictions, self_positions, bad, counts, good,
                            good_position)

            self._visit_cells(queries32, probes, longer, count)
        nearest = np.where(good < bad, good_position, bad_position)
        return np.minimum(counts, max_similarity), nearest

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
        """Approximate q, nearest support point and its distance.

        Same contract as :meth:`ExactSupport.search
        <sdm_sklearn._neighbors.ExactSupport.search>`, over the points of
        each query's ``n_probe`` nearest cells; ``d_nearest`` is the float64
        distance to the point found.
        """
        queries32 = as_search_array(queries)
        n_queries = len(queries32)
        # a class without good points searches the empty group at the end
        predictions = np.minimum(
            np.asarray(predictions, dtype=np.int64), self.n_labels
        )
        self_positions = np.full(n_queries, -1, dtype=np.int64)
        if self_indices is not None:
            self_indices = np.asarray(self_indices, dtype=np.int64)
            has_self = self_indices >= 0
            self_positions[has_self] = self.position[self_indices[has_self]]
        q = np.zeros(n_queries, dtype=np.int64)
        positions = np.full(n_queries, -1, dtype=np.int64)

        rows = self._scan_rows(n_queries, n_jobs)

        def task(starts):
            for start in starts:
                stop = min(start + rows, n_queries)
                q[start:stop], positions[start:stop] = self._search_block(
                    queries32[start:stop], predictions[start:stop],
                    self_positions[start:stop], int(max_similarity),
                )

        for_each_block(task, n_queries, rows, n_jobs)
        found = positions >= 0
        nearest = np.full(n_queries, -1, dtype=np.int64)
        nearest[found] = self.order[positions[found]]
        d_nearest = np.full(n_queries, np.inf)
        d_nearest[found] = exact_distances(
            queries32[found], self.columns.T, positions[found]
        )
        return q, nearest, d_nearest

    def _nearest_block(self, queries32, k):
        """Candidates for the ``k`` canonically nearest points of each query.

        Every point of the probed cells (of all cells where those hold
        fewer than ``k``) whose score may place it among the ``k`` nearest
        (:mod:`sdm_sklearn._similarity`): the best scores, in a heap that
        doubles until the points left out of it score more than two bands
        above the ``k``-th.

        Returns
        -------
        candidates : ndarray of shape (n_queries, n_candidates), int64
            Positions in the sorted support set, ``-1`` padding.
        """
        n_rows = len(queries32)
        bands = np.empty(n_rows)
        row_bands(queries32, self.max_norm, bands)
        cells = {False: self._probes(queries32, self.n_probe)}
        wide = np.zeros(n_rows, dtype=bool)
        candidates = [None] * n_rows
        pending = np.arange(n_rows)
        capacity = min(2 * k, self.n_support)
        while len(pending):
            heap = np.full((n_rows, capacity), np.inf)
            heap_items = np.full((n_rows, capacity), -1, dtype=np.int64)
            heap_size = np.zeros(n_rows, dtype=np.int64)

            def offer(cell, rows, products, cell_queries, heap=heap,
                      heap_items=heap_items, heap_size=heap_size):
                _nearest_cell(products, rows, self.cell_bounds[cell],
                              self.sq_norms, heap, heap_items, heap_size)

            for all_cells in (False, True):
                rows = pending[wide[pending] == all_cells]
                if all_cells and len(rows) and True not in cells:
                    cells[True] = self._probes(queries32, len(self.centroids))
                self._visit_cells(queries32, cells.get(all_cells), rows, offer)
                short = pending[~wide[pending] & (heap_size[pending] < k)]
                if not all_cells and len(short):
                    # too few points in the probed cells: search them all
                    heap[short], heap_items[short], heap_size[short] = (
                        np.inf, -1, 0)
                    wide[short] = True
            kth = np.partition(heap[pending], k - 1, axis=1)[:, k - 1]
            done = ((heap_size[pending] < capacity)
                    | (heap[pending].max(axis=1) > kth + 2.0 * bands[pending]))
            for row in pending[done]:
                candidates[row] = heap_items[row, : heap_size[row]]
            pending = pending[~done]
            capacity *= 2
        out = np.full((n_rows, max(map(len, candidates), default=0)), -1,
                      dtype=np.int64)
        for row, found in enumerate(candidates):
            out[row, : len(found)] = found
        return out

    def nearest(self, queries, n_neighbors, *, n_jobs=1):
        """Approximate nearest support points; see :meth:`ExactSupport.nearest
        <sdm_sklearn._neighbors.ExactSupport.nearest>`.

        The nearest points of the probed cells by canonical distance, ties
        by index (all cells when the probed ones hold fewer than
        ``n_neighbors`` points).
        """
        queries32 = as_search_array(queries)
        k = min(n_neighbors, self.n_support)
        indices = np.empty((len(queries32), k), dtype=np.int64)
        distances = np.empty((len(queries32), k))

        rows = self._scan_rows(len(queries32), n_jobs)

        def task(starts):
            for start in starts:
                stop = min(start + rows, len(queries32))
                candidates = self._nearest_block(queries32[start:stop], k)
                indices[start:stop], distances[start:stop] = rank_candidates(
                    queries32[start:stop], self.columns.T, candidates, k,
                    self.order,
                )

        for_each_block(task, len(queries32), rows, n_jobs)
        return indices, distances
