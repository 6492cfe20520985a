"""Numba kernel: similarity q and the nearest support point from one block.

The kernel reads a block of inner products between queries and support
vectors (one BLAS product) and finishes the squared distances on the fly, so
that no distance matrix is ever written. ``q`` follows the O(N) rule of the
specification (sec. 2): with ``r`` the distance to the nearest support point
that is not *good* for the query, ``q`` counts the good support points
strictly closer than ``r``. A bad point tied with good points therefore ends
the run (pessimistic ties).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def similarity_block(products, support_sq_norms, support_good, query_predictions,
                     self_indices, max_similarity, q_out, nearest_out):
    """Fill q and the nearest support index for a block of query rows.

    Parameters
    ----------
    products : ndarray of shape (n_rows, n_support), float32
        Inner products ``<u_query, u_support>``.
    support_sq_norms : ndarray of shape (n_support,), float32
        ``|u_support|^2``.
    support_good : ndarray of shape (n_support,), int64
        The class index for which each support point is good (its prediction
        when it is correctly predicted), ``-1`` when it is good for nothing.
    query_predictions : ndarray of shape (n_rows,), int64
    self_indices : ndarray of shape (n_rows,), int64
        Support index to skip for each row (its self-match), ``-1`` for none.
    max_similarity : int
        Cap on q.
    q_out, nearest_out : ndarray of shape (n_rows,), int64
        Filled with q and the index of the nearest support point (``-1``
        when every column is skipped).
    """
    n_rows, n_support = products.shape
    for i in range(n_rows):
        label = query_predictions[i]
        skip = self_indices[i]
        bad_radius = np.inf
        best = np.inf
        best_j = -1
        for j in range(n_support):
            if j == skip:
                continue
            score = np.float64(support_sq_norms[j]) - 2.0 * np.float64(products[i, j])
            if score < best:
                best = score
                best_j = j
            if support_good[j] != label and score < bad_radius:
                bad_radius = score
        count = 0
        if best_j >= 0 and support_good[best_j] == label:
            for j in range(n_support):
                if j == skip or support_good[j] != label:
                    continue
                score = (np.float64(support_sq_norms[j])
                         - 2.0 * np.float64(products[i, j]))
                if score < bad_radius:
                    count += 1
                    if count >= max_similarity:
                        break
        q_out[i] = count
        nearest_out[i] = best_j
