"""Fixed-size row blocks: products whose rows never depend on the other rows.

BLAS kernels round differently for different shapes: a product of one row
goes through a matrix-vector kernel, small matrices through special kernels,
and so the same row gives other last bits alone than in a batch. Those bits
can move an input across a threshold (an admission that flips with the
batch). Every product that a prediction depends on is therefore computed in
blocks of one fixed number of rows, the last block padded with zeros: then
each row always meets the same kernel, whatever else is in the call. Checked
for these float64 products on OpenBLAS (SkylakeX and Haswell kernels) for
blocks of 32 rows and more; blocks of 7 rows were not row-exact. Fixed
blocks are not enough for float32 products: OpenBLAS's Haswell sgemm kernel
rounds rows six apart differently within one block, so the support-set
searches decide on canonical distances instead (:mod:`sdm_sklearn._similarity`).
The tests assert row independence for every public output.

Blocks are independent, which is also what spreads the work over threads
(``n_jobs``): each block runs on one BLAS thread (see :mod:`sdm_sklearn._blas`)
and writes its own rows of the output, so the result is bit-identical for
every number of threads.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import effective_n_jobs

# Every fixed block size is a multiple of this (and at least this).
ROW_MULTIPLE = 32
# Rows per block of the small products of the adaptor (logits, search
# vectors): large enough for the matrix-matrix kernels, small enough that
# predicting one row costs little.
PRODUCT_ROWS = 256


def round_block_rows(rows):
    """``rows`` rounded down to a multiple of ``ROW_MULTIPLE`` (at least one)."""
    return max(ROW_MULTIPLE, int(rows) // ROW_MULTIPLE * ROW_MULTIPLE)


def block_starts(n_rows, block_rows):
    """First row of every block of ``block_rows`` rows covering ``n_rows``."""
    return range(0, n_rows, block_rows)


def padded_block(array, start, block_rows):
    """Rows ``start : start + block_rows`` of ``array``, zero-padded at the end.

    Parameters
    ----------
    array : ndarray of shape (n_rows, n_columns)
    start : int
    block_rows : int

    Returns
    -------
    block : ndarray of shape (block_rows, n_columns)
        A view when no padding is needed.
    size : int
        Number of real rows in the block.
    """
    block = array[start : start + block_rows]
    size = len(block)
    if size == block_rows:
        return block, size
    padded = np.zeros((block_rows,) + array.shape[1:], dtype=array.dtype)
    padded[:size] = block
    return padded, size


def row_exact_matmul(a, b, *, block_rows=PRODUCT_ROWS, dtype=np.float64):
    """``a @ b`` in float64, computed in fixed blocks of ``block_rows`` rows.

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_inner)
        Converted to float64 block by block.
    b : ndarray of shape (n_inner, n_columns)
    block_rows : int, default=PRODUCT_ROWS
    dtype : dtype, default=float64
        Of the result: every block's float64 product is rounded to it once,
        so the full float64 product is never held.

    Returns
    -------
    product : ndarray of shape (n_rows, n_columns)
        Row ``i`` depends on ``a[i]`` and ``b`` only.
    """
    b = np.asarray(b, dtype=np.float64)
    out = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    for start in block_starts(len(a), block_rows):
        block, size = padded_block(a, start, block_rows)
        out[start : start + size] = (block.astype(np.float64) @ b)[:size]
    return out


def resolve_n_jobs(n_jobs):
    """Number of worker threads for ``n_jobs`` (scikit-learn's convention).

    None means 1 unless a :func:`joblib.parallel_config` context sets
    another value; -1 means all cores.
    """
    return max(1, int(effective_n_jobs(n_jobs)))


def for_each_block(task, n_rows, block_rows, n_jobs):
    """Run ``task(start)`` for every block start, over ``n_jobs`` threads.

    Blocks are dealt to the threads in contiguous runs; ``task`` must write
    only the rows of its own block. numpy's products and the package's numba
    kernels release the GIL, so the threads run in parallel.

    Parameters
    ----------
    task : callable
        ``task(starts)`` receives a range of block starts to process in
        order (so that it can reuse one buffer for all of them).
    n_rows, block_rows : int
    n_jobs : int
        Resolved number of threads (see :func:`resolve_n_jobs`).
    """
    starts = block_starts(n_rows, block_rows)
    n_workers = min(n_jobs, len(starts))
    if n_workers <= 1:
        task(starts)
        return
    bounds = np.linspace(0, len(starts), n_workers + 1).round().astype(int)
    runs = [starts[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        # list() re-raises the first exception of any worker
        list(pool.map(task, runs))
