"""Numba kernels of the FAISS backend: one cell of products at a time.

:class:`sdm_sklearn._faiss.FaissSupport` sorts its points by (cell, good
class) and computes, per probed cell, the float32 inner products of the
queries that probe it; these kernels fold each cell into every query's
search state with the canonical comparisons of :mod:`sdm_sklearn._similarity`
(a score decides alone only outside the band around a tie):

- :func:`scan_cell` updates the nearest point that is not good and a
  bounded heap of the good points that may be closer than it;
- :func:`finish_heaps` turns the heaps into q and the nearest good point,
  and flags the queries whose heap overflowed;
- :func:`count_cell` counts those queries' good points again, cell by cell;
- :func:`nearest_cell` offers every point of a cell to top-k heaps (for
  ``nearest``).
"""

import numpy as np
from numba import njit

from ._similarity import (
    canonical_nearest,
    canonical_nearest_outside,
    count_closer,
    product_score,
    score_band,
    score_limit,
    squared_distance,
)


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
def _cell(sq_norms, points, original, cell_start, cell_size):
    """Squared norms, points and original indices of one cell's points."""
    cell_stop = cell_start + cell_size
    return (sq_norms[cell_start:cell_stop], points[cell_start:cell_stop],
            original[cell_start:cell_stop])


@njit(cache=True, nogil=True, inline="always")
def _enter_row(products, queries, r, i, cell_start, bounds, predictions,
               self_positions, max_norm):
    """Query ``i`` (row ``r`` of the cell's products) entering a cell.

    Returns the cell's range of points good for the query's class and the
    query's :func:`~sdm_sklearn._similarity.score_band`, its self-match
    hidden from the products (its score becomes inf).
    """
    start = bounds[predictions[i] + 1]
    stop = bounds[predictions[i] + 2]
    offset = self_positions[i] - cell_start
    if 0 <= offset < products.shape[1]:
        products[r, offset] = -np.inf
    sq_norm, band = score_band(queries, r, max_norm)
    return start, stop, sq_norm, band


@njit(cache=True, nogil=True)
def scan_cell(products, queries, rows, cell_start, bounds, sq_norms, points,
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
    cell_norms, cell_points, cell_original = _cell(
        sq_norms, points, original, cell_start, products.shape[1])
    for r in range(len(rows)):
        i = rows[r]
        start, stop, sq_norm, band = _enter_row(
            products, queries, r, i, cell_start, bounds, predictions,
            self_positions, max_norm)
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
def finish_heaps(queries, points, max_norm, original, bad_distance, heap,
                 heap_items, heap_size, max_similarity, counts, good_distance,
                 good_position, recount):
    """q and the nearest good point of every query from its heap.

    ``counts`` gets the heap's points canonically closer than the bad
    point, ``good_distance`` and ``good_position`` the canonically nearest
    of them (ties: original index). ``recount`` flags the queries whose
    heap is full of points that may be closer than the bad one, with fewer
    than ``max_similarity`` counted: points left out of the heap may count,
    so their cells are counted again (:func:`count_cell`).
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
def count_cell(products, queries, rows, cell_start, bounds, sq_norms, points,
               original, max_norm, predictions, self_positions, bad_distance,
               counts, good_distance, good_position):
    """Add the good points of one cell closer than the bad one to ``counts``.

    Same parameters as :func:`scan_cell`; ``bad_distance`` holds the final
    bad distance of every query; the nearest good point is folded into
    ``good_distance`` and ``good_position``.
    """
    cell_norms, cell_points, cell_original = _cell(
        sq_norms, points, original, cell_start, products.shape[1])
    for r in range(len(rows)):
        i = rows[r]
        start, stop, sq_norm, band = _enter_row(
            products, queries, r, i, cell_start, bounds, predictions,
            self_positions, max_norm)
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
def nearest_cell(products, rows, cell_start, sq_norms, heap, heap_items,
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
