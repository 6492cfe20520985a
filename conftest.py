"""Session-wide test configuration."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

# OpenMP threads (scikit-learn's HistGradientBoosting) sleep at the end of a
# parallel region instead of spinning: on a machine busy with other work a
# spinning thread holds the core that the thread it waits for needs: a test
# of many small predictions took up to 30 s instead of 0.5-4 s. The threads,
# and so every result, are the same. Set before any module loads OpenMP;
# the test's processes (Dask workers, fresh interpreters) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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


# the processes of tests/warm_kernels.py, started with the session
_WARMERS = pytest.StashKey[list]()


def pytest_sessionstart(session):
    """Start compiling the numba kernels while pytest collects the tests.

    ``tests/warm_kernels.py`` compiles them in two processes at once (see
    its docstring); :func:`_warm_numba_kernels` waits for them before the
    first test, and a failure there only leaves the compiling to the tests.
    """
    if session.config.option.collectonly:
        return
    script = Path(__file__).parent / "tests" / "warm_kernels.py"
    session.stash[_WARMERS] = [
        subprocess.Popen([sys.executable, str(script), group],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for group in ("exact", "shards")]


def pytest_sessionfinish(session):
    """Stop the kernels' compiling if no test waited for it."""
    for warmer in session.stash.get(_WARMERS, []):
        if warmer.poll() is None:
            warmer.kill()
            warmer.wait()


@pytest.fixture(scope="session", autouse=True)
def _warm_numba_kernels(request):
    """Wait for the numba kernels' compiling, then load them in this process."""
    for warmer in request.session.stash.get(_WARMERS, []):
        warmer.wait()
    from sdm_sklearn import SDMClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 2))
    y = np.repeat([0, 1], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SDMClassifier(n_iterations=1, n_epochs=1, random_state=0).fit(X, y)
