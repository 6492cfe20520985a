"""Session-wide test configuration."""

import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running test (deselect with -m 'not slow')"
    )


@pytest.fixture(autouse=True)
def _stable_print_options(doctest_namespace):
    """Doctest outputs do not depend on the user's numpy print options."""
    with np.printoptions(precision=8, legacy=False):
        doctest_namespace["np"] = np
        yield


@pytest.fixture(scope="session", autouse=True)
def _warm_numba_kernels():
    """Compile (or load from cache) the numba kernels once per session."""
    from sdm_sklearn._adaptor import _adam_step
    from sdm_sklearn._similarity import similarity_block

    one = np.ones(1, dtype=np.float32)
    _adam_step(one.copy(), one, one.copy(), one.copy(), np.float32(1e-3),
               np.float32(1e-3))
    similarity_block(
        np.zeros((1, 2), dtype=np.float32), np.zeros(2, dtype=np.float32),
        np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int64),
        np.full(1, -1, dtype=np.int64), 10, np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    )
