"""The BLAS thread policy: one thread for everything the package computes.

Measured on the 2-core machines this package is developed on: OpenBLAS with
two threads made small products (mini-batch steps, 50x384 by 384x256) tens of
times slower than with one, changing the thread count between calls costs
tens of milliseconds each time, and large float32 products (3000x384 by
384x3000) ran at the same rate with one thread as with two (about 70
GFLOP/s). ``fit`` and every prediction method therefore run inside one
single-thread region; the user's setting is restored on exit.
"""

from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller():
    """One controller per process: discovering the BLAS libraries is slow."""
    return ThreadpoolController()


def single_threaded_blas():
    """Context manager limiting BLAS libraries to one thread."""
    return _controller().limit(limits=1, user_api="blas")
