"""Numba kernels of the sharded search: a shard's good runs, canonically.

One pass of the Dask backend (:mod:`sdm_sklearn._dask_support`) asks every
shard, per query, for its nearest point that is not good (``b``, from
:func:`sdm_sklearn._similarity.shard_minima`) and for canonical squared
distances of its good points closer than ``b``: the *run* of the shard.
:func:`good_runs` writes the smallest and the largest of them, ascending,
as many as asked, so that the client can count the good points below the
nearest bad point of all shards without asking the shards again in the
common case (the module docstring of the backend has the argument).

The decisions are those of :func:`sdm_sklearn._similarity.count_closer`,
operation for operation: a score further than ``2 band`` below
``b - |u|^2`` is in the run, one within the band is in when its canonical
distance is below ``b``, and self-matches (scored ``inf``) never are. The
distances written are the canonical ones
(:func:`sdm_sklearn._similarity.squared_distance`), functions of the two
vectors alone, so they compare with another shard's ``b`` as the exact
backend's kernel would compare them.
"""

import numpy as np
from numba import njit

from ._similarity import (
    SCAN_LANES,
    count_scores,
    product_score,
    score_band,
    squared_distance,
)


@njit(cache=True, nogil=True, inline="always")
def _canonical(queries, row, points, columns, distances, k):
    """``distances[k]``, the canonical distance of member ``k``, computed once."""
    if np.isnan(distances[k]):
        distances[k] = squared_distance(queries, row, points, columns[k])
    return distances[k]


@njit(cache=True, nogil=True, inline="always")
def _keep_smallest(heap, value):
    """Fold ``value`` into ``heap``, a max-heap of the smallest values seen."""
    if value >= heap[0]:
        return
    heap[0] = value
    size = len(heap)
    i = 0
    while True:
        largest = i
        left = 2 * i + 1
        if left < size and heap[left] > heap[largest]:
            largest = left
        if left + 1 < size and heap[left + 1] > heap[largest]:
            largest = left + 1
        if largest == i:
            return
        heap[i], heap[largest] = heap[largest], heap[i]
        i = largest


@njit(cache=True, nogil=True, inline="always")
def _ends(queries, row, points, columns, distances, scores, n_members, pivot,
          below, margin):
    """The canonical distances of the members that may rank where asked.

    ``below``: the members whose score is at most ``pivot`` (the k-th
    smallest score) plus ``margin``, which hold the k smallest canonical
    distances; otherwise those at least ``pivot`` (the k-th largest) minus
    ``margin``, which hold the k largest. Sorted.
    """
    picked = np.empty(n_members)
    n_picked = 0
    for k in range(n_members):
        if (below and scores[k] <= pivot + margin) or (
                not below and scores[k] >= pivot - margin):
            picked[n_picked] = _canonical(queries, row, points, columns,
                                          distances, k)
            n_picked += 1
    picked = picked[:n_picked]
    picked.sort()
    return picked


@njit(cache=True, nogil=True)
def good_runs(products, sq_norms, queries, points, max_norm, group_bounds,
              predictions, radii, counts, low_offsets, low_out, high_offsets,
              high_out):
    """Per row: the smallest and the largest canonical distances of its run.

    The run of a row is its good columns canonically closer than its
    ``radii`` entry; only the distances asked for are computed canonically
    (members whose scores rank far from them cannot take their place: a
    score lies within ``2 band`` of the canonical distance minus ``|u|^2``).

    Parameters
    ----------
    products : ndarray of shape (n_rows, n_columns), float32
        Inner products with the shard's sorted points; self-matches are
        already ``-inf``.
    sq_norms : ndarray of shape (n_columns,), float32
    queries : ndarray of shape (n_rows, n_dims), float32
    points : ndarray of shape (n_columns, n_dims), float32
    max_norm : float
        See :func:`sdm_sklearn._similarity.norm_bound`.
    group_bounds : ndarray of shape (n_groups + 2,), int64
        See :func:`sdm_sklearn._similarity.similarity_block`.
    predictions : ndarray of shape (n_rows,), int64
    radii : ndarray of shape (n_rows,), float64
        The canonical squared distance of every row's nearest point that is
        not good (``inf``: none in the shard).
    counts : ndarray of shape (n_rows,), int64
        The length of every run (the counts of
        :func:`sdm_sklearn._similarity.shard_minima`).
    low_offsets, high_offsets : ndarray of shape (n_rows + 1,), int64
        Row ``i`` writes its smallest distances to
        ``low_out[low_offsets[i]:low_offsets[i + 1]]`` and its largest to
        ``high_out[high_offsets[i]:high_offsets[i + 1]]``, each at most
        ``counts[i]`` of them.
    low_out, high_out : ndarray, float64
        Filled with canonical squared distances, ascending in every row.
    """
    for i in range(products.shape[0]):
        n = counts[i]
        n_low = low_offsets[i + 1] - low_offsets[i]
        n_high = high_offsets[i + 1] - high_offsets[i]
        if n == 0 or (n_low == 0 and n_high == 0):
            continue
        start = group_bounds[predictions[i] + 1]
        stop = group_bounds[predictions[i] + 2]
        sq_norm, band = score_band(queries, i, max_norm)
        radius = radii[i]
        low = np.inf  # scores below it are in without a canonical check
        high = np.inf  # scores above it are out
        if radius != np.inf:
            low = radius - sq_norm - 2.0 * band
            high = radius - sq_norm + 2.0 * band
        # the members: the decisions of count_closer, which counted n
        scores = np.empty(n)
        columns = np.empty(n, dtype=np.int64)
        distances = np.full(n, np.nan)
        # the min(n_low, n)-th smallest and min(n_high, n)-th largest scores
        smallest = np.full(min(n_low, n), np.inf)
        largest = np.full(min(n_high, n), np.inf)  # negated scores
        m = 0
        for chunk in range(start, stop, SCAN_LANES):
            end = min(chunk + SCAN_LANES, stop)
            if high != np.inf and count_scores(
                    products[i, chunk:end], sq_norms[chunk:end], -np.inf,
                    high)[1] == 0:
                continue
            for j in range(chunk, end):
                score = product_score(products, sq_norms, i, j)
                if score == np.inf or score > high or m == n:
                    continue
                if score < low:
                    scores[m], columns[m] = score, j
                else:
                    distance = squared_distance(queries, i, points, j)
                    if distance >= radius:
                        continue
                    scores[m], columns[m], distances[m] = score, j, distance
                m += 1
                if len(smallest):
                    _keep_smallest(smallest, score)
                if len(largest):
                    _keep_smallest(largest, -score)
        margin = 4.0 * band
        if n_low > 0:
            picked = _ends(queries, i, points, columns, distances, scores,
                           m, smallest[0], True, margin)
            width = min(n_low, len(picked))
            low_out[low_offsets[i] : low_offsets[i] + width] = picked[:width]
            # never short (m == n); inf would count below no radius
            low_out[low_offsets[i] + width : low_offsets[i + 1]] = np.inf
        if n_high > 0:
            picked = _ends(queries, i, points, columns, distances, scores,
                           m, -largest[0], False, margin)
            width = min(n_high, len(picked))
            high_out[high_offsets[i + 1] - width : high_offsets[i + 1]] = (
                picked[len(picked) - width :])
            high_out[high_offsets[i] : high_offsets[i + 1] - width] = -np.inf
