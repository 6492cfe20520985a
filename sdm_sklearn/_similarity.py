"""Numba kernels: similarity q and the nearest support point, decided exactly.

The kernels read a block of float32 inner products between queries and
support vectors (one BLAS product) and finish the scores
``|s|^2 - 2 <u, s>`` on the fly, so that no distance matrix is ever
written. ``q`` follows the O(N) rule of the method (paper, eq. 4; the
method page of the docs): with ``r`` the distance to the nearest support
point that is not *good* for the query, ``q`` counts the good support
points strictly closer than ``r``. A bad point tied with good points
therefore ends the run (pessimistic ties).

**Every decision is taken on a canonical distance.** A BLAS product rounds
an entry differently depending on where its row and column sit in the
product: on OpenBLAS's Haswell sgemm kernel, rows six apart in one block
round differently, and a column rounds one way in the full support set and
another in a shard of it. Left to those last bits, a near tie (duplicated
rows are common in tabular data) would decide q one way in one batch and
the other way in another. The canonical squared distance
(:func:`squared_distance`: float64, summed over the dimensions in order) is
a function of the two vectors alone; the BLAS scores only prune. By the
standard bound on floating-point dot products, valid for every summation
order (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002,
section 3.1), a float32 product of ``n`` terms errs by at most
``gamma_n |u| |s|`` with ``gamma_n = n 2^-24 / (1 - n 2^-24)``, and so a
score differs from the canonical squared distance minus ``|u|^2`` by at
most :func:`score_band`. Points whose scores lie further apart than the
band are ordered by their scores; the few within it (ties and near ties)
are decided by their canonical distances. The answers are then those of
the canonical distances for any BLAS, batch, shard layout and thread count.

The support columns are sorted by the class they are good for, so the good
points of every query form one contiguous range and the inner loops carry no
data-dependent branch on labels.

**Few dimensions: a sweep instead of products.** In a search space of at
most ``SWEEP_DIMS`` dimensions (a binary classifier's two responses), a
product costs as much as the canonical distance itself, and a query's
answers lie among few points. :func:`sweep_block` then reads no products:
within each class group the points are sorted along one axis, and a query
sweeps outward from its own place on the axis. Every term of the canonical
sum is non-negative and float64 rounding is monotone, so the canonical
distance is at least the axis's term ``(u_a - s_a)^2`` (the same float64
operations); that term only grows away from the query's place, so a sweep
that meets a term beyond a radius has passed every point within it, exactly.
The answers are those of the canonical distances, as above.
"""

import numpy as np
from numba import njit

# The band of score_band in units of (n_dims + 2) float32 roundings times
# (|u| + max |s|)^2: the bound of the module docstring covers the product
# (2 gamma_n |u| |s|) and the float32 squared norm of s (gamma_n |s|^2); the
# factor 2 covers 1 / (1 - n 2^-24), the float64 roundings of the score and
# of the canonical distance, and |u|^2, all far smaller.
BAND_ROUNDINGS = 2.0 * 2.0**-24
# Columns per chunk of the scans: a chunk in which no score can win (a
# count the compiler vectorizes) is skipped whole; the few others are
# scanned column by column. Measured on 2,587 support points of 32-d in
# benchmarks/bench_fit.py's inference table (16 to 128: 32 was fastest).
SCAN_LANES = 32
# Search spaces of at most this many dimensions are searched by the sweep
# (sweep_block). Measured on 1,500 support points in benchmarks/bench_cost.py's
# tabular fit (a 2-d space, 3 to 4 times faster than the products) and on
# Gaussian points: 9x at 1-d, 1.1 to 1.7x at 2-d, 0.7 to 1.0x at 3-d.
SWEEP_DIMS = 2


@njit(cache=True, nogil=True, inline="always")
def squared_distance(queries, row, points, column):
    """Canonical ``|queries[row] - points[column]|^2``: float64, in order."""
    total = 0.0
    for k in range(queries.shape[1]):
        diff = np.float64(queries[row, k]) - np.float64(points[column, k])
        total += diff * diff
    return total


@njit(cache=True, nogil=True)
def pair_squared_distances(queries, rows, points, columns, out):
    """``out[i] = squared_distance(queries, rows[i], points, columns[i])``."""
    for i in range(len(columns)):
        out[i] = squared_distance(queries, rows[i], points, columns[i])


@njit(cache=True, nogil=True, inline="always")
def score_band(queries, row, max_norm):
    """Half-width of the band around a score, and ``|u|^2`` (float64).

    Parameters
    ----------
    queries : ndarray of shape (n_rows, n_dims)
    row : int
    max_norm : float
        An upper bound on the norms of the support points scored.

    Returns
    -------
    sq_norm : float
        ``|u|^2`` of the query, summed in float64.
    band : float
        Every score ``|s|^2 - 2 <u, s>`` of the query lies within ``band``
        of ``squared_distance(u, s) - |u|^2``, and ``sq_norm`` within
        ``band`` of ``|u|^2``.
    """
    n_dims = queries.shape[1]
    sq_norm = 0.0
    for k in range(n_dims):
        value = np.float64(queries[row, k])
        sq_norm += value * value
    reach = np.sqrt(sq_norm) + max_norm
    return sq_norm, BAND_ROUNDINGS * (n_dims + 2) * reach * reach


@njit(cache=True, nogil=True, inline="always")
def product_score(products, sq_norms, row, column):
    """``|s|^2 - 2 <u, s>`` of one entry of ``products``, in float64."""
    return np.float64(sq_norms[column]) - 2.0 * np.float64(products[row, column])


# Kept out of line (not inline="always"): inlined into the scans, its loop
# was no longer vectorized. Its scores are those of product_score, operation
# for operation.
@njit(cache=True, nogil=True)
def count_scores(row_products, sq_norms, floor, ceiling):
    """How many scores of one row of products are below ``floor``, ``<= ceiling``.

    Returns
    -------
    below, at_most : int
    """
    below = 0
    at_most = 0
    for j in range(row_products.shape[0]):
        score = np.float64(sq_norms[j]) - 2.0 * np.float64(row_products[j])
        below += score < floor
        at_most += score <= ceiling
    return below, at_most


@njit(cache=True, nogil=True, inline="always")
def canonical_nearest(products, sq_norms, queries, row, points, original,
                      start, stop, band, best, best_j, limit):
    """Fold columns ``start:stop`` into a canonical nearest point.

    Columns scored ``inf`` (self-matches) or above ``limit`` are skipped. A
    column can be the nearest only if its score is within ``2 band`` of the
    smallest score so far; those get their canonical distance, and exact
    ties go to the smallest original index.

    Parameters
    ----------
    products : ndarray of shape (n_rows, n_columns), float32
    sq_norms : ndarray of shape (n_columns,), float32
    queries : ndarray of shape (n_rows, n_dims)
        The queries of ``products``' rows.
    row : int
    points : ndarray of shape (n_columns, n_dims)
        The support points of ``products``' columns (a transposed view
        works).
    original : ndarray of shape (n_columns,), int64
        Original index of every column.
    start, stop : int
    band : float
        From :func:`score_band`.
    best, best_j : float, int
        Canonical squared distance and column of the nearest so far
        (``inf``, ``-1``: none).
    limit : float
        Scores above it cannot win: :func:`score_limit` of a nearest point
        found elsewhere (``inf``: none).

    Returns
    -------
    best, best_j : float, int
    """
    lowest = limit - 2.0 * band
    for chunk in range(start, stop, SCAN_LANES):
        end = min(chunk + SCAN_LANES, stop)
        # the column loop below would skip every column of this chunk
        if lowest != np.inf and count_scores(
                products[row, chunk:end], sq_norms[chunk:end], -np.inf,
                lowest + 2.0 * band)[1] == 0:
            continue
        for j in range(chunk, end):
            score = product_score(products, sq_norms, row, j)
            if score == np.inf or score > lowest + 2.0 * band:
                continue
            lowest = min(lowest, score)
            best, best_j = nearer(squared_distance(queries, row, points, j),
                                  j, original, best, best_j)
    return best, best_j


@njit(cache=True, nogil=True, inline="always")
def nearer(distance, column, original, best, best_j):
    """The nearer of ``column`` (at canonical squared ``distance``) and the
    nearest so far (``best``, ``best_j``); an exact tie goes to the smallest
    original index."""
    if distance < best or (distance == best and (
            best_j < 0 or original[column] < original[best_j])):
        return distance, column
    return best, best_j


@njit(cache=True, nogil=True, inline="always")
def canonical_nearest_outside(products, sq_norms, queries, row, points,
                              original, start, stop, sq_norm, band, limit):
    """:func:`canonical_nearest` over every column but ``start:stop``.

    The points that are not good for a query predicted ``c`` lie on both
    sides of ``c``'s group ``start:stop``; ``sq_norm`` and ``band`` come
    from :func:`score_band`.
    """
    best, best_j = canonical_nearest(products, sq_norms, queries, row, points,
                                     original, 0, start, band, np.inf, -1,
                                     limit)
    return canonical_nearest(
        products, sq_norms, queries, row, points, original, stop,
        products.shape[1], band, best, best_j,
        min(limit, score_limit(best, sq_norm, band)),
    )


@njit(cache=True, nogil=True, inline="always")
def score_limit(sq_distance, sq_norm, band):
    """The largest score of a point that may be as close as ``sq_distance``.

    Scores above it belong to points canonically further than
    ``sq_distance`` (squared); ``inf`` for ``inf``.
    """
    return sq_distance - sq_norm + 2.0 * band


@njit(cache=True, nogil=True, inline="always")
def count_closer(products, sq_norms, queries, row, points, start, stop,
                 radius, sq_norm, band):
    """Columns ``start:stop`` canonically closer than ``radius`` (squared).

    Scores further than ``2 band`` from ``radius - sq_norm`` decide alone;
    the others are decided by their canonical distance. Columns scored
    ``inf`` (self-matches) never count.
    """
    if radius == np.inf:
        count = 0
        for j in range(start, stop):
            count += product_score(products, sq_norms, row, j) != np.inf
        return count
    threshold = radius - sq_norm
    row_products, row_norms = products[row, start:stop], sq_norms[start:stop]
    count, at_most = count_scores(row_products, row_norms,
                                  threshold - 2.0 * band,
                                  threshold + 2.0 * band)
    if at_most == count:
        return count  # no score within the band
    for j in range(start, stop):
        score = product_score(products, sq_norms, row, j)
        if threshold - 2.0 * band <= score <= threshold + 2.0 * band:
            count += squared_distance(queries, row, points, j) < radius
    return count


def norm_bound(sq_norms, n_dims):
    """An upper bound on the norms of points with float32 ``sq_norms``.

    Parameters
    ----------
    sq_norms : ndarray of shape (n_points,), float32
        Squared norms summed in float32 over ``n_dims`` terms.
    n_dims : int

    Returns
    -------
    max_norm : float
    """
    if len(sq_norms) == 0:
        return 0.0
    largest = float(np.max(sq_norms))
    return float(np.sqrt(largest * (1.0 + BAND_ROUNDINGS * (n_dims + 2))))


@njit(cache=True, nogil=True, inline="always")
def _row_minima(products, sq_norms, queries, row, points, max_norm, original,
                start, stop):
    """Canonical nearest bad and good columns of one row (see below)."""
    sq_norm, band = score_band(queries, row, max_norm)
    bad, bad_j = canonical_nearest_outside(products, sq_norms, queries, row,
                                           points, original, start, stop,
                                           sq_norm, band, np.inf)
    good, good_j = canonical_nearest(products, sq_norms, queries, row, points,
                                     original, start, stop, band, np.inf, -1,
                                     np.inf)
    count = 0
    if good < bad:
        count = count_closer(products, sq_norms, queries, row, points, start,
                             stop, bad, sq_norm, band)
    return bad, bad_j, good, good_j, count


@njit(cache=True, nogil=True)
def similarity_block(products, sq_norms, queries, points, max_norm, original,
                     group_bounds, query_predictions, self_positions,
                     max_similarity, q_out, nearest_out, sq_distance_out):
    """Fill q and the nearest support column for a block of query rows.

    Parameters
    ----------
    products : ndarray of shape (n_rows, n_support), float32
        Inner products ``<u_query, u_support>``; entries at self positions
        are overwritten.
    sq_norms : ndarray of shape (n_support,), float32
        ``|u_support|^2``.
    queries : ndarray of shape (n_rows, n_dims), float32
        The queries of the rows.
    points : ndarray of shape (n_support, n_dims), float32
        The support points of the columns.
    max_norm : float
        An upper bound on the norms of ``points`` (:func:`norm_bound`).
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
    sq_distance_out : ndarray of shape (n_rows,), float64
        Filled with the canonical squared distance to the nearest column
        (``inf`` for none).
    """
    for i in range(products.shape[0]):
        if self_positions[i] >= 0:
            products[i, self_positions[i]] = -np.inf
        start = group_bounds[query_predictions[i] + 1]
        stop = group_bounds[query_predictions[i] + 2]
        bad, bad_j, good, good_j, count = _row_minima(
            products, sq_norms, queries, i, points, max_norm, original, start,
            stop,
        )
        if good < bad:
            nearest_out[i], sq_distance_out[i] = good_j, good
        else:
            nearest_out[i], sq_distance_out[i] = bad_j, bad
        q_out[i] = min(count, max_similarity)


@njit(cache=True, nogil=True)
def shard_minima(products, sq_norms, queries, points, max_norm, original,
                 group_bounds, predictions, distances_out, columns_out,
                 counts_out):
    """Per row of one shard: the nearest bad and good columns, and the good
    ones closer than the bad (the first pass of the sharded search).

    Same parameters as :func:`similarity_block`; ``distances_out[:, 0]``
    and ``columns_out[:, 0]`` get the canonical squared distance and column
    of the nearest column that is not good (``inf`` and ``-1`` if none),
    ``[:, 1]`` those of the nearest good one, ``counts_out`` the good
    columns closer than the nearest bad one. Self-matches are already
    scored ``inf`` (products ``-inf``).
    """
    for i in range(products.shape[0]):
        start = group_bounds[predictions[i] + 1]
        stop = group_bounds[predictions[i] + 2]
        bad, bad_j, good, good_j, count = _row_minima(
            products, sq_norms, queries, i, points, max_norm, original, start,
            stop,
        )
        distances_out[i, 0], columns_out[i, 0] = bad, bad_j
        distances_out[i, 1], columns_out[i, 1] = good, good_j
        counts_out[i] = count


@njit(cache=True, nogil=True)
def count_block(products, sq_norms, queries, points, max_norm, group_bounds,
                predictions, radii, counts_out):
    """Per row: the good columns canonically closer than ``radii`` (squared).

    Same parameters as :func:`shard_minima`; ``radii`` holds a canonical
    squared distance per row.
    """
    for i in range(products.shape[0]):
        sq_norm, band = score_band(queries, i, max_norm)
        counts_out[i] = count_closer(
            products, sq_norms, queries, i, points,
            group_bounds[predictions[i] + 1], group_bounds[predictions[i] + 2],
            radii[i], sq_norm, band,
        )


@njit(cache=True, nogil=True)
def row_bands(queries, max_norm, out):
    """``out[i]``: the band of :func:`score_band` for every query row."""
    for i in range(queries.shape[0]):
        out[i] = score_band(queries, i, max_norm)[1]


@njit(cache=True, nogil=True, inline="always")
def axis_term(key, keys, column):
    """The axis's term of the canonical sum: ``(key - keys[column])^2``."""
    diff = key - keys[column]
    return diff * diff


@njit(cache=True, nogil=True, inline="always")
def place_of(keys, lo, hi, key):
    """Where ``key`` belongs in the sorted ``keys[lo:hi]`` (before equals)."""
    while lo < hi:
        middle = (lo + hi) // 2
        if keys[middle] < key:
            lo = middle + 1
        else:
            hi = middle
    return lo


@njit(cache=True, nogil=True, inline="always")
def sweep_nearest(queries, row, points, keys, original, lo, hi, place, key,
                  skip, best, best_j):
    """Fold the sorted columns ``lo:hi`` into a canonical nearest point.

    The sweep runs both ways from ``place``, where the query's axis value
    ``key`` belongs, and stops at the first axis term above the nearest so
    far (``best``, ``best_j``); ``skip`` is the self-match (``-1``: none).
    The result is that of :func:`canonical_nearest` over the same columns.
    """
    # two loops of constant step: numba compiles a variable step slower
    for j in range(place, hi):
        if axis_term(key, keys, j) > best:
            break
        best, best_j = nearer_unless(queries, row, points, original, j, skip,
                                     best, best_j)
    for j in range(place - 1, lo - 1, -1):
        if axis_term(key, keys, j) > best:
            break
        best, best_j = nearer_unless(queries, row, points, original, j, skip,
                                     best, best_j)
    return best, best_j


@njit(cache=True, nogil=True, inline="always")
def nearer_unless(queries, row, points, original, column, skip, best, best_j):
    """:func:`nearer` for ``column`` unless it is ``skip``."""
    if column == skip:
        return best, best_j
    return nearer(squared_distance(queries, row, points, column), column,
                  original, best, best_j)


@njit(cache=True, nogil=True, inline="always")
def sweep_closer(queries, row, points, keys, original, lo, hi, place, key,
                 skip, radius):
    """The sorted columns ``lo:hi`` canonically closer than ``radius``
    (squared): how many, and the nearest of them.

    Only the run around ``place`` whose axis terms are below ``radius`` can
    be closer; ``skip`` (the self-match, ``-1``: none) never is.

    Returns
    -------
    count : int
    best, best_j : float, int
        Canonical squared distance and column of the nearest of them
        (``inf``, ``-1``: none).
    """
    if radius == np.inf:
        best, best_j = sweep_nearest(queries, row, points, keys, original, lo,
                                     hi, place, key, skip, np.inf, -1)
        return hi - lo - (lo <= skip < hi), best, best_j
    count, best, best_j = 0, np.inf, -1
    for j in range(place, hi):
        if axis_term(key, keys, j) >= radius:
            break
        count, best, best_j = count_closer_one(
            queries, row, points, original, j, skip, radius, count, best,
            best_j,
        )
    for j in range(place - 1, lo - 1, -1):
        if axis_term(key, keys, j) >= radius:
            break
        count, best, best_j = count_closer_one(
            queries, row, points, original, j, skip, radius, count, best,
            best_j,
        )
    return count, best, best_j


@njit(cache=True, nogil=True, inline="always")
def count_closer_one(queries, row, points, original, column, skip, radius,
                     count, best, best_j):
    """Count ``column`` and fold it into the nearest if it is closer than
    ``radius`` and not ``skip``."""
    distance = squared_distance(queries, row, points, column)
    closer = (distance < radius) & (column != skip)
    # branch on the comparison that is rarely true, not on ``closer``
    if distance <= best and closer:
        best, best_j = nearer(distance, column, original, best, best_j)
    return count + closer, best, best_j


@njit(cache=True, nogil=True)
def sweep_block(queries, points, keys, axis, original, group_bounds,
                query_predictions, self_positions, max_similarity, q_out,
                nearest_out, sq_distance_out):
    """:func:`similarity_block` without products: the sweep along ``axis``.

    Parameters
    ----------
    queries : ndarray of shape (n_rows, n_dims), float32
    points : ndarray of shape (n_support, n_dims), float32
        The support points, sorted by good class (as for
        :func:`similarity_block`) and within each class along ``axis``.
    keys : ndarray of shape (n_support,), float64
        ``points[:, axis]``.
    axis : int
    original, group_bounds, query_predictions, self_positions, \
max_similarity, q_out, nearest_out, sq_distance_out
        As for :func:`similarity_block`, whose outputs these are, with the
        same tie rules.
    """
    n_groups = len(group_bounds) - 1
    for i in range(queries.shape[0]):
        key = np.float64(queries[i, axis])
        own = query_predictions[i] + 1
        skip = self_positions[i]
        bad, bad_j = np.inf, -1
        for group in range(n_groups):
            if group != own:
                lo, hi = group_bounds[group], group_bounds[group + 1]
                bad, bad_j = sweep_nearest(
                    queries, i, points, keys, original, lo, hi,
                    place_of(keys, lo, hi, key), key, skip, bad, bad_j,
                )
        lo, hi = group_bounds[own], group_bounds[own + 1]
        count, good, good_j = sweep_closer(
            queries, i, points, keys, original, lo, hi,
            place_of(keys, lo, hi, key), key, skip, bad,
        )
        # a good point closer than every bad one is the nearest
        if count > 0:
            nearest_out[i], sq_distance_out[i] = good_j, good
        else:
            nearest_out[i], sq_distance_out[i] = bad_j, bad
        q_out[i] = min(count, max_similarity)
