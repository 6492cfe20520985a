"""The FAISS backend: the support set cut into k-means cells.

:class:`FaissSupport` (``search="faiss"``) cuts the support set into
k-means cells (FAISS's k-means, an optional dependency imported when the
backend is built) and compares every query exactly with the points of its
nearest cells, by float32 BLAS products and the kernels of
:mod:`sdm_sklearn._faiss_kernels`. It answers the support-set interface of
:mod:`sdm_sklearn._exact` with approximate answers; their agreement with
exact search is measured in ``benchmarks/bench_scale.py``.
"""

import copy
import math

import numpy as np

from ._blocks import ROW_MULTIPLE, for_each_block, padded_block
from ._exact import (
    as_search_array,
    exact_distances,
    rank_candidates,
    self_positions,
)
from ._faiss_kernels import count_cell, finish_heaps, nearest_cell, scan_cell
from ._similarity import norm_bound, row_bands


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
    vectors, good_labels : ndarray
        The support points in the search space and the good class of each,
        as for :class:`~sdm_sklearn._exact.ExactSupport`.
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
        self.centroids, self.n_probe = self.cells_for(
            vectors, random_state=random_state, n_cells=n_cells,
            n_probe=n_probe)
        self._arrange(vectors, np.asarray(good_labels, dtype=np.int64))

    @classmethod
    def cells_for(cls, vectors, *, random_state, n_cells=None, n_probe=None):
        """The cells of the support set these arguments build, points left out.

        What the constructor trains before it arranges the points in the
        cells: a caller that arranges the points elsewhere (each shard of
        :mod:`sdm_sklearn._dask_faiss` its own) gets the same cells.

        Parameters
        ----------
        vectors : ndarray of shape (n_support, n_dims)
        random_state, n_cells, n_probe
            As for the constructor.

        Returns
        -------
        centroids : ndarray of shape (n_cells, n_dims), float32
            One cell of zeros for no points.
        n_probe : int
            Cells searched per query, at most ``n_cells``.
        """
        vectors = as_search_array(vectors)
        if n_cells is None:
            n_cells = round(math.sqrt(len(vectors)))
        n_cells = int(min(max(n_cells, 1), max(len(vectors), 1)))
        if not len(vectors):
            return np.zeros((1, vectors.shape[1]), dtype=np.float32), 1
        n_probe = int(min(cls.N_PROBE if n_probe is None else n_probe, n_cells))
        return train_cells(vectors, n_cells, random_state), n_probe

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

    def for_task_graph(self):
        """This set, as it travels in a task graph: itself (held in memory)."""
        return self

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

    def _scan_probed(self, queries32, predictions, skipped):
        """The first scan of one block's probed cells (``scan_cell``).

        Parameters
        ----------
        queries32 : ndarray of shape (n_rows, n_dims), float32
        predictions : ndarray of shape (n_rows,), int64
            Clipped to ``n_labels``.
        skipped : ndarray of shape (n_rows,), int64
            Sorted position of every row's self-match, ``-1`` for none.

        Returns
        -------
        probes : ndarray of shape (n_rows, n_probe), int64
            The cells scanned.
        bad : ndarray of shape (n_rows,)
            Canonical squared distance to the nearest point not good for
            the prediction (``inf`` for none).
        bad_position : ndarray of shape (n_rows,), int64
            Its sorted position (``-1``: none).
        heap, heap_items : ndarray of shape (n_rows, HEAP_SIZE)
            Every row's bounded heap of the good points that may be closer
            than ``bad``: scores and sorted positions.
        heap_size : ndarray of shape (n_rows,), int64
            Entries of every heap.
        """
        n_rows = len(queries32)
        probes = self._probes(queries32, self.n_probe)
        points = self.columns.T
        bad = np.full(n_rows, np.inf)
        bad_position = np.full(n_rows, -1, dtype=np.int64)
        heap = np.full((n_rows, self.HEAP_SIZE), np.inf)
        heap_items = np.empty((n_rows, self.HEAP_SIZE), dtype=np.int64)
        heap_size = np.zeros(n_rows, dtype=np.int64)

        def scan(cell, rows, products, cell_queries):
            scan_cell(products, cell_queries, rows, self.cell_bounds[cell],
                      self.group_bounds[cell], self.sq_norms, points,
                      self.order, self.max_norm, predictions, skipped,
                      bad, bad_position, heap, heap_items, heap_size)

        self._visit_cells(queries32, probes, np.arange(n_rows), scan)
        return probes, bad, bad_position, heap, heap_items, heap_size

    def _search_block(self, queries32, predictions, skipped,
                      max_similarity):
        """q and the nearest position for one block of queries."""
        n_rows = len(queries32)
        points = self.columns.T
        probes, bad, bad_position, heap, heap_items, heap_size = (
            self._scan_probed(queries32, predictions, skipped))
        counts = np.empty(n_rows, dtype=np.int64)
        good = np.empty(n_rows)
        good_position = np.empty(n_rows, dtype=np.int64)
        recount = np.empty(n_rows, dtype=np.bool_)
        finish_heaps(queries32, points, self.max_norm, self.order, bad, heap,
                     heap_items, heap_size, max_similarity, counts, good,
                     good_position, recount)
        longer = np.flatnonzero(recount)
        if len(longer):
            counts[longer], good[longer], good_position[longer] = 0, np.inf, -1

            def count(cell, rows, products, cell_queries):
                count_cell(products, cell_queries, rows,
                           self.cell_bounds[cell], self.group_bounds[cell],
                           self.sq_norms, points, self.order, self.max_norm,
                           predictions, skipped, bad, counts, good,
                           good_position)

            self._visit_cells(queries32, probes, longer, count)
        nearest = np.where(good < bad, good_position, bad_position)
        return np.minimum(counts, max_similarity), nearest

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
        """Approximate q, nearest support point and its distance.

        Same contract as :meth:`ExactSupport.search
        <sdm_sklearn._exact.ExactSupport.search>`, over the points of
        each query's ``n_probe`` nearest cells; ``d_nearest`` is the float64
        distance to the point found.
        """
        queries32 = as_search_array(queries)
        n_queries = len(queries32)
        # a class without good points searches the empty group at the end
        predictions = np.minimum(
            np.asarray(predictions, dtype=np.int64), self.n_labels
        )
        skipped = self_positions(self.position, self_indices, n_queries)
        q = np.zeros(n_queries, dtype=np.int64)
        positions = np.full(n_queries, -1, dtype=np.int64)

        rows = self._scan_rows(n_queries, n_jobs)

        def task(starts):
            for start in starts:
                stop = min(start + rows, n_queries)
                q[start:stop], positions[start:stop] = self._search_block(
                    queries32[start:stop], predictions[start:stop],
                    skipped[start:stop], int(max_similarity),
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
                nearest_cell(products, rows, self.cell_bounds[cell],
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
        <sdm_sklearn._exact.ExactSupport.nearest>`.

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
