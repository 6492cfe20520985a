"""Shared helpers of the benchmark scripts: timing, tables, data, BLAS threads.

The machines these scripts run on are shared and noisy, so every result is a
median over repeats, and every comparison interleaves the contenders inside
each repeat and reports the median of the per-repeat ratios (a slow moment
then hits both sides of a ratio instead of one side of it).
"""

import argparse
import platform
import resource
import time
from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

from sdm_sklearn._exact import good_classes


def size_parser(description, *, quick, default, full):
    """Argument parser with ``--quick`` / ``--full`` and ``--repeats``.

    Parameters
    ----------
    description : str
        Shown by ``--help``.
    quick, default, full : str
        What each mode runs, for the help text.

    Returns
    -------
    parser : argparse.ArgumentParser
        Its ``mode`` is ``"quick"``, ``"default"`` or ``"full"``.
    """
    parser = argparse.ArgumentParser(description=description)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--quick", dest="mode", action="store_const", const="quick",
        help=f"smoke run: {quick}",
    )
    modes.add_argument(
        "--full", dest="mode", action="store_const", const="full",
        help=f"long run: {full}",
    )
    parser.set_defaults(mode="default")
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="repeats per measurement (default depends on the mode)",
    )
    parser.epilog = f"Default run: {default}."
    return parser


def interleaved_times(contenders, repeats, *, warmup=1):
    """Wall-clock seconds of each callable, interleaved within every repeat.

    Parameters
    ----------
    contenders : dict of str to callable
        Called without arguments.
    repeats : int
        Timed calls of each contender.
    warmup : int, default=1
        Untimed calls of each contender first (JIT, caches, page faults).

    Returns
    -------
    times : dict of str to ndarray of shape (repeats,)
    """
    for _ in range(warmup):
        for function in contenders.values():
            function()
    times = {name: np.empty(repeats) for name in contenders}
    names = list(contenders)
    for repeat in range(repeats):
        # Rotate the order so no contender always runs right after another.
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            times[name][repeat] = time.perf_counter() - start
    return times


def median_ratio(numerator, denominator):
    """Median of the per-repeat ratios of two paired timing arrays."""
    return float(np.median(np.asarray(numerator) / np.asarray(denominator)))


@lru_cache(maxsize=1)
def _controller():
    return ThreadpoolController()


def blas_threads(n_threads):
    """Context manager limiting BLAS to ``n_threads`` threads."""
    return _controller().limit(limits=n_threads, user_api="blas")


def blas_description():
    """BLAS library and default thread count, for the header of a run."""
    infos = [
        f"{info['internal_api']} {info.get('version')} "
        f"({info['num_threads']} threads)"
        for info in _controller().info()
        if info["user_api"] == "blas"
    ]
    return ", ".join(infos) or "unknown BLAS"


def print_header(title):
    """Print what ran where: the title, Python, numpy and BLAS."""
    print(f"# {title}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{blas_description()}, {platform.machine()}"
    )
    print()


def matmul_into(left, right):
    """A callable computing ``left @ right`` into a buffer allocated once."""
    out = np.empty((left.shape[0], right.shape[1]), dtype=np.result_type(left, right))

    def run():
        np.matmul(left, right, out=out)

    return run


def gflops(flops, seconds):
    """Rate in GFLOP/s."""
    return flops / seconds / 1e9


def peak_rss_bytes():
    """Peak resident set size of this process so far.

    Linux's ``VmHWM`` where available: ``getrusage`` keeps the peak of the
    process before ``exec``, so a subprocess would report its parent's peak
    at the time it was started.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sphere_clusters(n_samples, n_features, n_classes, *, spread=1.0,
                    intrinsic_dims=None, seed=0, chunk_rows=100_000):
    """Embedding-like data: noisy class clusters normalized to the unit sphere.

    Class centres are random unit vectors; each point is its centre plus
    Gaussian noise of total norm about ``spread``, then normalized. With
    ``spread`` large enough neighbouring classes overlap, as embeddings of a
    hard task do.

    Parameters
    ----------
    n_samples, n_features, n_classes : int
    spread : float, default=1.0
        Noise norm relative to the unit-norm centres.
    intrinsic_dims : int, default=None
        None: isotropic noise in all ``n_features`` directions. Otherwise the
        noise lies in a random ``intrinsic_dims``-dimensional subspace (plus
        a 10% isotropic part), as real embeddings occupy few directions;
        nearest-neighbour graphs find neighbours far more easily then.
    seed : int, default=0
    chunk_rows : int, default=100_000
        Rows generated at once (bounds the temporary memory).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis = None
    if intrinsic_dims is not None:
        basis = rng.standard_normal((intrinsic_dims, n_features)).astype(np.float32)
        basis *= np.float32(spread / np.sqrt(n_features * intrinsic_dims))
    y = rng.integers(n_classes, size=n_samples)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    for start in range(0, n_samples, chunk_rows):
        stop = min(start + chunk_rows, n_samples)
        chunk = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        if basis is None:
            chunk *= np.float32(spread / np.sqrt(n_features))
        else:
            chunk *= np.float32(0.1 * spread / np.sqrt(n_features))
            latent = rng.standard_normal((stop - start, len(basis)), dtype=np.float32)
            chunk += latent @ basis
        chunk += centres[y[start:stop]]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        X[start:stop] = chunk
    return X, y


def noisy_labels(y, n_classes, error_rate, seed):
    """``y`` with a fraction ``error_rate`` replaced by random classes.

    Stands in for a classifier's predictions (and, through
    :func:`sdm_sklearn._exact.good_classes`, for which support points it got
    right).
    """
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < error_rate
    out = y.copy()
    out[flip] = rng.integers(n_classes, size=int(flip.sum()))
    return out


def markdown_table(headers, rows):
    """A Markdown pipe table, columns padded for reading in a terminal.

    Parameters
    ----------
    headers : list of str
    rows : list of list
        Cells are printed with ``str``; format numbers before.

    Returns
    -------
    table : str
    """
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def verdict(passed):
    """PASS / FAIL for a target."""
    return "PASS" if passed else "FAIL"


def search_space_problem(n_support, n_queries, *, error_rate, n_features=384,
                         n_classes=10, spread=1.0, intrinsic_dims=None, seed=0,
                         fit_rows=20_000):
    """Support and query vectors in the package's search space.

    ``sphere_clusters`` data goes through the exemplar adaptor of an
    ``SDMClassifier`` with default settings (``n_exemplar_dims=128``),
    fitted for a few epochs on the first ``fit_rows`` rows: its exemplar
    vectors h' have the distances of the search space the backends see.
    ``noisy_labels`` stand for a classifier's predictions.

    Parameters
    ----------
    n_support, n_queries : int
    error_rate : float
        Share of mispredicted support points and queries.
    n_features, n_classes, spread, intrinsic_dims, seed
        See :func:`sphere_clusters`.
    fit_rows : int, default=20_000

    Returns
    -------
    problem : dict of ndarray
        ``support`` (float32), ``good`` (good class of every support point,
        -1 for none), ``queries`` (float32) and ``predictions``.
    """
    import warnings

    from sdm_sklearn import SDMClassifier

    X, y = sphere_clusters(n_support + n_queries, n_features, n_classes,
                           spread=spread, intrinsic_dims=intrinsic_dims, seed=seed)
    fit_rows = min(fit_rows, n_support)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SDMClassifier(n_iterations=1, n_epochs=3, random_state=0).fit(
            X[:fit_rows], y[:fit_rows])
    vectors = np.empty((len(X), model.n_exemplar_dims), dtype=np.float32)
    for start in range(0, len(X), 100_000):
        vectors[start : start + 100_000] = model.exemplars(X[start : start + 100_000])
    predictions = noisy_labels(y, n_classes, error_rate, seed + 1)
    return {
        "support": vectors[:n_support],
        "good": good_classes(predictions[:n_support], y[:n_support]),
        "queries": vectors[n_support:],
        "predictions": predictions[n_support:],
    }
