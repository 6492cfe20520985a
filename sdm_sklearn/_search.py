"""Which backend searches the support set: resolving ``search``, the factories.

The top of the search stack: training asks it which backend ``search``
means (:func:`resolve_search`) and for the constructors of the
support sets (:func:`support_factory`, :func:`training_factory`); it
imports the backends downward. The exact backend is imported with the
package; the others (:mod:`sdm_sklearn._faiss`, :mod:`sdm_sklearn._nndescent`,
:mod:`sdm_sklearn._dask_support`) when chosen, since they import numba and
their optional dependencies (faiss, pynndescent, distributed), which
``import sdm_sklearn`` must not; so is :mod:`sdm_sklearn._dask_faiss`
(``search="dask-faiss"``: FAISS cells in the shards of the Dask backend).
"""

import importlib.util
from functools import partial

from ._exact import ExactSupport

# The approximate backends, in the order "auto" prefers them: the module
# each imports, the package that provides it (the extra of the same name
# installs it) and the support-set size from which "auto" takes it. Measured
# (benchmarks/bench_scale.py, 128-d search space of 384-d embedding-like
# data, one thread): FaissSupport answered as fast as exact search at 10^4
# points (a pass of as many queries as points, build included, took
# longer), 2.3 times as fast at 3 x 10^4 and 8.7 times at 10^5 (passes: 2.1
# and 8.1 times), with q equal to exact for all 2,000 sampled queries up to
# 3 x 10^5 (99.3% at 10^6); a fit also searches with it after every epoch
# (see training_factory). pynndescent (the fallback when faiss is missing)
# was 2.0 times as fast as exact search at 10^5 points and is not taken
# below 5 x 10^4. Exact search stays exact, so it is kept below the sizes
# where a backend is clearly cheaper.
APPROXIMATE_BACKENDS = {
    "faiss": ("faiss", "faiss-cpu", 30_000),
    "approximate": ("pynndescent", "pynndescent", 50_000),
}


def resolve_search(search, n_support):
    """What ``search`` means for a support set of ``n_support`` points.

    Parameters
    ----------
    search : {"auto", "exact", "faiss", "approximate", "dask", "dask-faiss"}
    n_support : int

    Returns
    -------
    resolved : {"exact", "faiss", "approximate", "dask", "dask-faiss"}
        "auto" is the first backend of ``APPROXIMATE_BACKENDS`` that is
        installed and whose size ``n_support`` reaches ("faiss" from 30,000
        points, "approximate" from 50,000), else "exact".

    Raises
    ------
    ImportError
        For "faiss" without faiss, "approximate" without pynndescent, "dask"
        without distributed, "dask-faiss" without either of faiss and
        distributed.
    RuntimeError
        For "dask" and "dask-faiss" without a running ``distributed``
        client.
    """
    if search == "dask-faiss":
        for part in ("faiss", "dask"):  # the needs of both, in their words
            try:
                resolve_search(part, n_support)
            except (ImportError, RuntimeError) as error:
                raise type(error)(str(error).replace(
                    f'search="{part}"', f'search="{search}"')) from None
        return search
    if search == "dask":
        if importlib.util.find_spec("distributed") is None:
            raise ImportError(
                'search="dask" needs dask.distributed: pip install '
                '"dask[array,dataframe]" distributed (or, in a clone of '
                'sdm_sklearn, pip install ".[distributed]")'
            )
        from ._dask_support import require_client

        require_client()
        return "dask"
    installed = {
        name: importlib.util.find_spec(module) is not None
        for name, (module, _, _) in APPROXIMATE_BACKENDS.items()
    }
    if search in APPROXIMATE_BACKENDS:
        if not installed[search]:
            module, package, _ = APPROXIMATE_BACKENDS[search]
            raise ImportError(
                f'search="{search}" needs {module}: pip install {package} (or, '
                f'in a clone of sdm_sklearn, pip install ".[{search}]")'
            )
        return search
    if search == "auto":
        for name, (_, _, threshold) in APPROXIMATE_BACKENDS.items():
            if installed[name] and n_support >= threshold:
                return name
    return "exact"


# FAISS cells probed by the per-epoch searches of training (the fitted model
# probes FaissSupport.N_PROBE). Measured in the search space of a model fitted
# on 10^5 rows of 384-d embeddings-like data (5 x 10^4 support points, 224
# cells, 3,000 test queries in distribution and 3,000 shifted): q equal to
# exact search for 100.0% of both with 32 cells (as with 56), 99.8% / 99.4%
# with 24 and 94.1% / 94.0% with 16. Training's q only weigh the support
# points of the next epoch and score the epochs; the kept epoch is
# calibrated again with the fitted model's index.
TRAINING_PROBES = 32


def keeps_training_index(resolved):
    """Whether the fitted model keeps the index that training built.

    True for the exact and dask backends; the approximate ones ("faiss",
    "approximate", "dask-faiss") get an index of their own (see
    :func:`training_factory`).
    """
    return resolved in ("exact", "dask")


def training_factory(resolved, seed, in_process=False):
    """The constructor of the per-epoch searches of training for ``resolved``.

    - "exact", "dask": the fitted model's own (the dask backend is exact and
      spreads those searches over the cluster), except that "dask" searches
      in this process when ``in_process``;
    - "faiss": FAISS cells probing ``TRAINING_PROBES`` cells per query,
      rebuilt after every epoch (a k-means on a small sample, cheap next to
      the searches it speeds up: ``benchmarks/README.md``, "Fit at scale");
    - "dask-faiss": the same cells and probes, in the shards of a cluster;
    - "approximate": exact search, since pynndescent's graph would take far
      longer to rebuild after every epoch than the epoch's exact searches.

    Parameters
    ----------
    resolved : {"exact", "faiss", "approximate", "dask", "dask-faiss"}
        Output of :func:`resolve_search`.
    seed : int
        Seed of the FAISS cells (the fitted model's index gets the same
        cells).
    in_process : bool, default=False
        Training's rows are a sample gathered into this process from a
        split on a cluster (:mod:`sdm_sklearn._dask_fit`): the exact backend
        answers as the dask one, bit for bit, without sending the sample
        to the workers after every epoch.
    """
    if resolved == "approximate" or (resolved == "dask" and in_process):
        return ExactSupport
    factory = support_factory(resolved, seed)
    if resolved in ("faiss", "dask-faiss"):
        return partial(factory, n_probe=TRAINING_PROBES)
    return factory


def support_factory(resolved, seed):
    """The constructor ``factory(vectors, good_labels)`` of a resolved search.

    Backends other than the exact one are imported only when chosen (see
    the module docstring).

    Parameters
    ----------
    resolved : {"exact", "faiss", "approximate", "dask", "dask-faiss"}
        Output of :func:`resolve_search`.
    seed : int
        Seed of the approximate index.
    """
    if resolved == "exact":
        return ExactSupport
    if resolved == "dask":
        from ._dask_support import DaskSupport

        return DaskSupport
    if resolved == "dask-faiss":
        from ._dask_faiss import DaskFaissSupport as backend
    elif resolved == "faiss":
        from ._faiss import FaissSupport as backend
    else:
        from ._nndescent import NNDescentSupport as backend
    return partial(backend, random_state=int(seed))
