"""Numba kernel: similarity q and the nearest support point from one block.

The kernel reads a block of inner products between queries and support
vectors (one BLAS product) and finishes the squared distances on the fly, so
that no distance matrix is ever written. ``q`` follows the O(N) rule of the
method (paper, eq. 4; the method page of the docs): with ``r`` the distance
to the nearest support point that is not *good* for the query, ``q`` counts
the good support points strictly closer than ``r``. A bad point tied with
good points therefore ends the run (pessimistic ties).

The support columns are sorted by the class they are good for, so the good
points of every query form one contiguous range and the inner loops carry no
data-dependent branch on labels.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _range_min(products, sq_norms, original, row, start, stop):
    """Smallest ``|s|^2 - 2 <u, s>`` over columns ``start:stop`` and where.

    Exact ties go to the column of smallest original index.
    """
    best = np.inf
    best_j = -1
    for j in range(start, stop):
        score = np.float64(sq_norms[j]) - 2.0 * np.float64(products[row, j])
        if score < best or (score == best and best_j >= 0
                            and original[j] < original[best_j]):
            best = score
            best_j = j
    return best, best_j


@njit(cache=True, nogil=True)
def similarity_block(products, sq_norms, original, group_bounds,
                     query_predictions, self_positions, max_similarity, q_out,
                     nearest_out):
    """Fill q and the nearest support column for a block of query rows.

    Parameters
    ----------
    products : ndarray of shape (n_rows, n_support), float32
        Inner products ``<u_query, u_support>``; entries at self positions
        are overwritten.
    sq_norms : ndarray of shape (n_support,), float32
        ``|u_support|^2``.
    original : ndarray of shape (n_support,), int64
        Original index of every column (for breaking ties).
    group_bounds : ndarray of shape (n_groups + 1,), int64
        Columns are sorted by good class: the points good for class ``c``
        are the columns ``group_bounds[c + 1]:group_bounds[c + 2]``; columns
        before ``group_bounds[1]`` are good for no class.
    query_predictions : ndarray of shape (n_rows,), int64
    self_positions : ndarray of shape (n_rows,), int64
        Column to skip for each row (its self-match), ``-1`` for none.
    max_similarity : int
        Cap on q.
    q_out, nearest_out : ndarray of shape (n_rows,), int64
        Filled with q and the nearest column (``-1`` when every column is
        skipped). Among exactly tied nearest columns a point that is not good
        wins (pessimistic), then the smallest original index.
    """
    n_rows, n_support = products.shape
    for i in range(n_rows):
        if self_positions[i] >= 0:
            products[i, self_positions[i]] = -np.inf
        start = group_bounds[query_predictions[i] + 1]
        stop = group_bounds[query_predictions[i] + 2]
        bad, bad_j = _range_min(products, sq_norms, original, i, 0, start)
        after, after_j = _range_min(products, sq_norms, original, i, stop, n_support)
        if after < bad or (after == bad and after_j >= 0
                           and original[after_j] < original[bad_j]):
            bad, bad_j = after, after_j
        good, good_j = _range_min(products, sq_norms, original, i, start, stop)
        count = 0
        if good < bad:
            for j in range(start, stop):
                score = np.float64(sq_norms[j]) - 2.0 * np.float64(products[i, j])
                count += score < bad
            nearest_out[i] = good_j
        else:
            nearest_out[i] = bad_j
        q_out[i] = min(count, max_similarity)
