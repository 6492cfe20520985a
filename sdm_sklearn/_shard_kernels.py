"""Numba kernels of the sharded search: a shard's good runs, canonically.

One pass of the Dask backend (:mod:`sdm_sklearn._dask_support`) asks every
shard, per query, for its nearest point that is not good (``b``, from
:func:`sdm_sklearn._similarity.shard_minima`) and for the canonical squared
distances of its good points closer than ``b``: the *run* of the shard.
:func:`good_runs` writes the smallest ``max_similarity`` of them, ascending,
so that the client can count the good points below the nearest bad point of
all shards without asking the shards again (the module docstring of the
backend has the argument).

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
    count_at_most,
    product_score,
    score_band,
    squared_distance,
)


@njit(cache=True, nogil=True)
def good_runs(products, sq_norms, queries, points, max_norm, group_bounds,
              predictions, radii, counts, offsets, out):
    """Per row: the smallest canonical squared distances of its good run.

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
        The canonical squared distance ``b`` of every row's nearest point
        that is not good (``inf``: none in the shard).
    counts : ndarray of shape (n_rows,), int64
        The number of good columns closer than ``radii`` (the counts of
        :func:`sdm_sklearn._similarity.shard_minima`).
    offsets : ndarray of shape (n_rows + 1,), int64
        Row ``i`` writes ``out[offsets[i]:offsets[i + 1]]``, at most
        ``counts[i]`` entries (the cap).
    out : ndarray of shape (offsets[-1],), float64
        Filled with the smallest canonical squared distances of the run of
        every row, ascending.
    """
    for i in range(products.shape[0]):
        n = counts[i]
        width = offsets[i + 1] - offsets[i]
        if n == 0 or width == 0:
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
        # the same decisions as count_closer find exactly n entries; inf
        # pads would never count below any radius
        found = np.full(n, np.inf)
        m = 0
        for chunk in range(start, stop, SCAN_LANES):
            end = min(chunk + SCAN_LANES, stop)
            if high != np.inf and count_at_most(
                    products[i, chunk:end], sq_norms[chunk:end], high) == 0:
                continue
            for j in range(chunk, end):
                score = product_score(products, sq_norms, i, j)
                if score == np.inf or score > high:
                    continue
                distance = squared_distance(queries, i, points, j)
                if (score < low or distance < radius) and m < n:
                    found[m] = distance
                    m += 1
        found.sort()
        out[offsets[i] : offsets[i + 1]] = found[:width]
