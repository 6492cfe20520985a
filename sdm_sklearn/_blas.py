"""The BLAS thread policy: one BLAS thread for everything the package computes.

Measured on the 2-core machines this package is developed on: OpenBLAS with
two threads made small products (mini-batch steps, 50x384 by 384x256) tens of
times slower than with one, changing the thread count between calls costs
tens of milliseconds each time, and large float32 products (3000x384 by
384x3000) ran at the same rate with one thread as with two (about 70
GFLOP/s). ``fit`` and every prediction method therefore run inside one
single-thread region, and parallelism (``n_jobs``) goes over independent
blocks of rows, each computed by one BLAS thread (:mod:`sdm_sklearn._blocks`).

The BLAS thread count is a setting of the whole process, so the region is
process-wide and counted: the first caller to enter it (from any thread)
saves the user's setting and sets one thread, and the last to leave restores
the saved setting exactly. Nested or concurrent calls (several threads
predicting at once) can therefore never leave the process at one thread.
"""

import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_region = {"depth": 0, "limiter": None}


@contextmanager
def single_threaded_blas():
    """Context manager: BLAS libraries run one thread while any caller is inside.

    Safe to nest and to enter from several threads at once; the user's
    setting is restored when the last caller leaves.
    """
    with _lock:
        if _region["depth"] == 0:
            # a new controller (0.3 ms) finds BLAS libraries loaded since the
            # last call too, e.g. the one a faiss import brings
            _region["limiter"] = ThreadpoolController().limit(
                limits=1, user_api="blas"
            )
        _region["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _region["depth"] -= 1
            if _region["depth"] == 0:
                _region["limiter"].restore_original_limits()
                _region["limiter"] = None
