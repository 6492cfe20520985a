"""Session-wide test configuration."""

import warnings

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
    """Compile (or load from the on-disk cache) the numba kernels once.

    ``tests/warm_kernels.py`` compiles them in two processes at once (see
    its docstring); a failure there only leaves the compiling to the tests.
    """
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "tests" / "warm_kernels.py"
    warmers = [subprocess.Popen([sys.executable, str(script), group],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for group in ("exact", "shards")]
    for warmer in warmers:
        warmer.wait()
    from sdm_sklearn import SDMClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 2))
    y = np.repeat([0, 1], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SDMClassifier(n_iterations=1, n_epochs=1, random_state=0).fit(X, y)
