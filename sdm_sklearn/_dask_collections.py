"""Dask collections in and out of the prediction methods.

:func:`dask_collections` lets the prediction methods of the face take dask
arrays, DataFrames and Series and return dask collections. Every output of
a row depends on that row only (:mod:`sdm_sklearn._blocks`), so the
in-memory method mapped over the blocks or partitions gives, once computed,
the in-memory result bit for bit. The estimator goes into the graph as the
copy :func:`_graph_snapshot` makes, whose model is in the form the model
gives for task graphs (a sharded support set by reference).

:func:`save_to_directory` and :func:`load_from_directory` store a fitted
estimator in a directory: the estimator pickled, except the support sets
that store themselves apart (a sharded support set writes its shards one at
a time, :meth:`DaskSupport.to_directory
<sdm_sklearn._dask_support.DaskSupport.to_directory>`), which the pickle
names by their class and sub-directory. Neither knows the model's fields
nor imports a backend: a loaded pickle imports the classes it names.

dask is optional (``pip install "dask[array,dataframe]" distributed``) and
imported only when a collection comes in: ``import sdm_sklearn`` loads this
module (the face's methods are decorated with it) but never dask.
"""

import copy
import functools
import pickle
import sys
from pathlib import Path

import numpy as np


def is_dask_collection(X):
    """Whether ``X`` is a dask collection (never imports dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


def computed(*values):
    """``values``, with the dask collections among them computed together.

    ``fit`` takes dask arrays, DataFrames and Series (``X``, ``y``,
    ``sample_weight``, ``ids``) by computing them here, in one call so that
    they share the graph's work, on the running client's cluster if there
    is one (dask's default scheduler otherwise): the values are then held
    in this process, and the fit is the in-memory fit on the same rows (a
    DataFrame keeps its index, the default ``ids``). Other values are
    returned as they are.

    Parameters
    ----------
    *values : object

    Returns
    -------
    values : tuple
    """
    lazy = [k for k, value in enumerate(values) if is_dask_collection(value)]
    if not lazy:
        return values
    import warnings

    import dask

    with warnings.catch_warnings():
        # a dask DataFrame with a dask array y: dask says that the two kinds
        # of graph are merged into one (which is all that is wanted here)
        warnings.filterwarnings("ignore", message="Computing mixed collections")
        results = dask.compute(*(values[k] for k in lazy))
    values = list(values)
    for k, result in zip(lazy, results, strict=True):
        values[k] = result
    return tuple(values)


def dask_collections(method):
    """Decorator: a prediction method that also maps over dask collections.

    ``method(self, X)`` keeps its in-memory behaviour; when ``X`` is a dask
    array, DataFrame or Series, the call returns a lazy collection of the
    method's outputs (see :func:`lazy_outputs`).
    """

    @functools.wraps(method)
    def wrapper(self, X, **kwargs):
        if is_dask_collection(X):
            name = method.__name__
            # predict(X, selective=True) is predict_selective(X)
            if kwargs.pop("selective", False):
                name = "predict_selective"
            if kwargs:
                raise TypeError(
                    f"{name} of a dask collection takes no keyword arguments "
                    f"but selective; got {sorted(kwargs)}."
                )
            return lazy_outputs(self, name, X)
        return method(self, X, **kwargs)

    return wrapper


def _call(block, estimator, *, name, empty):
    """One block or partition through the in-memory method."""
    if len(block) == 0:
        return empty.copy()
    return getattr(estimator, name)(block)


def _frame_block(block, estimator, start, *, name, empty):
    """A block of a dask array as a DataFrame indexed by its row positions."""
    frame = _call(block, estimator, name=name, empty=empty)
    return frame.set_axis(np.arange(start, start + len(frame)))


def _is_array(X):
    """A dask array (the module is imported whenever one exists)."""
    array = sys.modules.get("dask.array")
    return array is not None and isinstance(X, array.Array)


def _is_frame_like(X):
    """A dask DataFrame or Series."""
    frame = sys.modules.get("dask.dataframe")
    return frame is not None and isinstance(X, (frame.DataFrame, frame.Series))


def _sample(estimator, X):
    """One input row that the method accepts: its output gives the metadata.

    Without a producer a row of zeros (of the right columns and dtypes)
    does, so nothing is computed; a producer's input can be anything, so
    the first row of ``X`` is computed.
    """
    frame_like = _is_frame_like(X)
    if estimator.estimator_ is not None:
        head = X.head(1) if frame_like else X[:1].compute()
        if len(head) == 0 and frame_like:
            head = X.head(1, npartitions=-1)
        return head
    if frame_like:
        import pandas as pd

        if X.ndim == 1:
            # a Series: the in-memory method says what it makes of one
            return pd.Series(np.zeros(1, dtype=X.dtype), name=X.name)
        zeros = np.zeros((1, len(X.columns)))
        return pd.DataFrame(zeros, columns=X.columns).astype(X.dtypes.to_dict())
    return np.zeros((1,) + X.shape[1:], dtype=X.dtype)


def lazy_outputs(estimator, name, X):
    """The outputs of ``estimator.name(X)`` for a dask collection ``X``.

    The estimator is checked and copied at once (a later ``add_support`` or
    ``set_params`` does not change the collection), and the method runs on
    one sample row, which raises the errors of a wrong input width or wrong
    feature names now and gives the output metadata.

    Parameters
    ----------
    estimator : SDMClassifier
    name : str
        The prediction method.
    X : dask Array, DataFrame or Series

    Returns
    -------
    outputs : dask Array or DataFrame
        For an array input, chunks follow ``X``'s row chunks (one chunk
        along other axes); for a DataFrame or Series, the row chunks are
        unknown and a DataFrame output keeps ``X``'s index and divisions.

    Raises
    ------
    TypeError
        For dask collections other than arrays, DataFrames and Series.
    """
    import dask
    from sklearn.utils.validation import check_is_fitted

    frame_like = _is_frame_like(X)
    if not (frame_like or _is_array(X)):
        raise TypeError(
            f"SDMClassifier.{name} takes dask arrays, DataFrames and Series; "
            f"got {type(X).__name__}. Convert it to one of them first."
        )
    check_is_fitted(estimator)
    snapshot = _graph_snapshot(estimator)
    example = getattr(snapshot, name)(_sample(snapshot, X))
    is_frame = hasattr(example, "iloc")
    empty = example.iloc[:0] if is_frame else example[:0]
    model = dask.delayed(snapshot, pure=False)
    if frame_like:
        if is_frame:
            empty = empty.set_axis(X._meta.index[:0])
        function = functools.partial(_call, name=name, empty=empty)
        return X.map_partitions(function, model, meta=empty)
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    if is_frame:
        return _frame_of_blocks(X, model, name, empty)
    axes = {}
    if X.ndim > example.ndim:
        axes["drop_axis"] = list(range(example.ndim, X.ndim))
    elif X.ndim < example.ndim:
        axes["new_axis"] = list(range(X.ndim, example.ndim))
    chunks = (X.chunks[0],) + tuple((size,) for size in example.shape[1:])
    function = functools.partial(_call, name=name, empty=empty)
    return X.map_blocks(function, model, chunks=chunks, meta=empty, **axes)


def _frame_of_blocks(X, model, name, empty):
    """A dask DataFrame from the blocks of a dask array, indexed 0 .. n-1."""
    import dask
    import dask.dataframe as dd

    sizes = X.chunks[0]
    if any(np.isnan(size) for size in sizes):
        raise ValueError(
            f"SDMClassifier.{name} on a dask array needs its row chunk sizes, "
            "to index the rows of the DataFrame it returns: call "
            "X.compute_chunk_sizes() first."
        )
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    function = dask.delayed(functools.partial(_frame_block, name=name,
                                              empty=empty))
    parts = [function(block, model, int(start))
             for block, start in zip(X.to_delayed().ravel(), starts[:-1],
                                     strict=True)]
    divisions = tuple(int(start) for start in starts[:-1]) + (
        max(int(starts[-1]) - 1, 0),
    )
    return dd.from_delayed(parts, meta=empty, divisions=divisions,
                           verify_meta=False)


def _graph_snapshot(estimator):
    """A copy of the fitted estimator to put in a task graph.

    Its model is the one :meth:`SDMModel.for_task_graph
    <sdm_sklearn._model.SDMModel.for_task_graph>` gives: a sharded support
    set travels by reference (its shards stay on the workers) instead of
    being gathered, as it is when pickled otherwise.
    """
    snapshot = copy.copy(estimator)
    snapshot._model = estimator._model.for_task_graph()
    return snapshot


# ------------------------------------------------------ models in directories

MODEL_FILE = "model.pkl"


def _stored_apart(obj):
    """Whether ``obj`` writes itself to a directory (a sharded support set)."""
    kind = type(obj)
    return (callable(getattr(kind, "to_directory", None))
            and callable(getattr(kind, "from_directory", None)))


class _DirectoryPickler(pickle.Pickler):
    """A pickler that leaves the objects stored apart to their directories."""

    def __init__(self, file, directory):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._directory = directory
        self._names = {}

    def persistent_id(self, obj):
        if not _stored_apart(obj):
            return None
        if id(obj) not in self._names:
            name = f"support-{len(self._names):03d}"
            obj.to_directory(self._directory / name)
            # keep obj alive, so that its id is not reused by another
            self._names[id(obj)] = (name, obj)
        return type(obj), self._names[id(obj)][0]


class _DirectoryUnpickler(pickle.Unpickler):
    def __init__(self, file, directory, client, read_on_workers):
        super().__init__(file)
        self._directory = directory
        self._options = {"client": client, "read_on_workers": read_on_workers}

    def persistent_load(self, pid):
        kind, name = pid
        return kind.from_directory(self._directory / name, **self._options)


def save_to_directory(obj, path):
    """Store ``obj`` in the directory ``path`` (see the module docstring).

    Parameters
    ----------
    obj : object
        Picklable but for the objects stored apart.
    path : path-like
        Created if missing; ``MODEL_FILE`` and the sub-directories of the
        objects stored apart are overwritten.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / MODEL_FILE, "wb") as file:
        _DirectoryPickler(file, directory).dump(obj)


def load_from_directory(path, *, client=None, read_on_workers=False):
    """The object stored by :func:`save_to_directory` in ``path``.

    Parameters
    ----------
    path : path-like
    client : distributed.Client, default=None
        Given to the objects stored apart (the cluster that gets the shards
        of a sharded support set); None: the running client.
    read_on_workers : bool, default=False
        See :meth:`DaskSupport.from_directory
        <sdm_sklearn._dask_support.DaskSupport.from_directory>`.

    Returns
    -------
    obj : object
    """
    directory = Path(path)
    with open(directory / MODEL_FILE, "rb") as file:
        return _DirectoryUnpickler(file, directory, client,
                                   read_on_workers).load()
