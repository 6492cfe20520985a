"""The Dask backend: a support set sharded over a ``distributed`` cluster.

:class:`DaskSupport` (``search="dask"``) shards the support set over the
workers of a ``distributed`` client and answers the support-set interface
of :mod:`sdm_sklearn._exact` with exactly the answers of
:class:`~sdm_sklearn._exact.ExactSupport`. dask and distributed are optional
(``pip install "dask[array,dataframe]" distributed``) and imported when the
backend is used; dask collections in and out of the prediction methods are
:mod:`sdm_sklearn._dask_collections`.

The exact reduction over shards follows the q rule. With ``r`` the distance
to the nearest support point that is not good for a query, q counts the good
points strictly closer than ``r``. In the common case it takes one round of
tasks, one per shard:

1. every shard reports, per query, its nearest point that is not good
   (``b_k``) and its nearest good point (canonical squared distance and
   original index, ties by the smallest index, as in the exact kernel),
   the length ``n_k`` of its *run* (its good points closer than ``b_k``)
   and canonical squared distances of the run
   (:func:`sdm_sklearn._shard_kernels.good_runs`): the whole run, up to
   ``max_similarity`` of its smallest, when that is at most
   ``2 * RUN_BUDGET`` entries; otherwise its ``RUN_BUDGET`` smallest and
   ``RUN_BUDGET`` largest;
2. the client takes ``r = min_k b_k`` and counts, for every shard, its run
   strictly below ``r``; q is the sum, capped; the nearest point is the
   nearest good one if it is strictly closer than ``r``, else the nearest
   bad one.

Each count is exact without asking the shard again, but in one case.
``r <= b_k``, so the run's points below ``r`` are the ones counted. A run
sent whole up to the cap: if all of the cap smallest lie below ``r``, q
reaches the cap whatever the rest; if one does not, no point left out (none
closer than it) lies below ``r`` either. A run sent as its two ends: if the
smallest of the largest lies below ``r``, every point at or above ``r`` is
among the largest, and the count is ``n_k`` minus those; if the largest of
the smallest lies at or above ``r``, every point below ``r`` is among the
smallest. Only when ``r`` falls in the gap between the two ends (a shard
whose run is longer than ``2 * RUN_BUDGET`` and than the cap allows, while
another shard's nearest bad point lies within the middle of that run) is
the count unknown, at least ``RUN_BUDGET``; unless the other counts and
these lower bounds reach the cap already, those (query, shard) pairs are
counted again below ``r`` in a second round of tasks. Ties follow the
exact rules: a good point at exactly ``r`` is not counted, so a point that
is not good, in any shard, at the distance of good points ends the run.

A shard sends at most ``2 * RUN_BUDGET`` distances per query (8 bytes
each) and computes canonical distances only for the points that may be
among those it sends (scores within the rounding band decide the rest), on
top of a scan of its run's scores: ``O(n_k)`` per query and shard, besides
the ``O(n_points * n_dims)`` products.

The answers equal those of exact search bit for bit although a shard's
float32 products round otherwise than the whole set's (a column's bits
depend on where it sits in the product): every comparison is decided on
canonical distances, functions of the two vectors alone
(:mod:`sdm_sklearn._similarity`), whatever BLAS or CPU each worker has.
"""

import functools
import json
import pickle
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._blas import single_threaded_blas
from ._exact import (
    ExactSupport,
    as_search_array,
    block_rows_for,
    default_block_bytes,
    group_bounds,
    self_positions,
)
from ._shard_kernels import good_runs
from ._similarity import count_block, shard_minima

# Fewest points per shard: a smaller shard costs a task for little work.
MIN_SHARD_POINTS = 64
# Threshold of distributed's "large graph" warning while the support set and
# the queries are sent: the arrays travel inside their tasks on purpose, so
# that the scheduler can rebuild a shard lost with its worker.
PAYLOAD_WARNING_BYTES = "100GB"
# Largest sharded support set (bytes of its points: float32 vectors, int64
# good classes and indices) that pickling gathers into one process; above
# it, pickling raises and names SDMClassifier.save. Read at every pickling,
# so assigning another value takes effect at once.
MAX_GATHER_BYTES = 2 * 2**30
# The files of a support set saved to a directory (to_directory)
# A shard sends a run (its good points below its own nearest bad point)
# whole when it has at most 2 * RUN_BUDGET entries after the cap, else its
# RUN_BUDGET smallest and largest distances: 1 KB a (query, shard) pair at
# most. Read at every search.
RUN_BUDGET = 64
SHARD_VECTORS = "shard-{:05d}.npy"
SHARD_LABELS = "shard-{:05d}-labels.npy"
SUPPORT_META = "support.json"

NO_CLIENT = (
    'search="dask" needs a running dask.distributed client in this process, '
    "whose workers hold the support set. Start one before fit, e.g. "
    "`from distributed import Client, LocalCluster; "
    "client = Client(LocalCluster())`, or connect to a cluster with "
    '`Client("scheduler-address:8786")`.'
)


# -------------------------------------------------------------- the shards


class _Shard:
    """Some support points: an exact support set and their original indices.

    Attributes
    ----------
    support : ExactSupport
        Over the shard's points, in the order of ``indices``.
    indices : ndarray of shape (n_points,), int64
        Original index of every point, increasing.
    original : ndarray of shape (n_points,), int64
        Original index of every sorted column of ``support``.
    """

    def __init__(self, support, indices):
        self.support = support
        self.indices = indices
        self.original = indices[support.order]

    def with_points(self, vectors, good_labels, indices):
        return _Shard(self.support.with_points(vectors, good_labels),
                      np.concatenate([self.indices, indices]))

    def points(self):
        """Original indices, vectors and good classes of the shard's points."""
        return self.indices, self.support.vectors, self.support.good_labels

    def _self_positions(self, self_indices):
        """Sorted column of each query's self-match in this shard, else -1."""
        local = np.searchsorted(self.indices, self_indices)
        local = np.minimum(local, len(self.indices) - 1)
        own = (self_indices >= 0) & (self.indices[local] == self_indices)
        return self_positions(self.support.position, np.where(own, local, -1),
                              len(self_indices))

    def _scan(self, queries32, self_indices, block_rows, process):
        """Feed every block's products, self-matches skipped, to ``process``."""
        skipped = self._self_positions(self_indices)

        def skip_self(start, size, products):
            positions = skipped[start : start + size]
            rows = np.flatnonzero(positions >= 0)
            products[rows, positions[rows]] = -np.inf
            process(start, size, products)

        with single_threaded_blas():
            self.support.scan_products(queries32, skip_self,
                                       block_rows=block_rows)

    def search_part(self, payload, max_similarity, run_budget, block_rows):
        """The shard's part of a search: minima and runs of every query.

        Parameters
        ----------
        payload : tuple
            The queries (float32), their predictions and self indices.
        max_similarity : int
            Cap on q.
        run_budget : int
            A run longer than ``2 * run_budget`` entries (and than the cap
            allows) is sent as its ``run_budget`` smallest and
            ``run_budget`` largest distances.
        block_rows : int
            Query rows per block of products.

        Returns
        -------
        scores : ndarray of shape (n_queries, 2)
            Canonical squared distances (:mod:`sdm_sklearn._similarity`) to
            the nearest point that is not good and to the nearest good one
            (``inf`` if none).
        indices : ndarray of shape (n_queries, 2), int64
            Their original indices (-1 if none).
        counts : ndarray of shape (n_queries,), int64
            The length of every query's run: its good points closer than its
            nearest bad point.
        low_lengths, high_lengths : ndarray of shape (n_queries,), int64
            Entries of every query's run in ``low`` and in ``high``.
        low, high : ndarray of shape (low_lengths.sum(),), (high_lengths.sum(),)
            The smallest and the largest canonical squared distances of
            every run, query after query, ascending in every query.
        """
        queries32, predictions, self_indices = payload
        support = self.support
        n_queries = len(queries32)
        bounds = group_bounds(support.sorted_good, predictions)
        scores = np.empty((n_queries, 2))
        columns = np.empty((n_queries, 2), dtype=np.int64)
        counts = np.empty(n_queries, dtype=np.int64)
        low_lengths = np.empty(n_queries, dtype=np.int64)
        high_lengths = np.empty(n_queries, dtype=np.int64)
        runs = {0: (np.empty(0), np.empty(0))}  # with no query, no block

        def process(start, size, products):
            rows = slice(start, start + size)
            shard_minima(products, support.sq_norms, queries32[rows],
                         support.sorted_vectors, support.max_norm,
                         self.original, bounds, predictions[rows],
                         scores[rows], columns[rows], counts[rows])
            low_lengths[rows], high_lengths[rows] = run_lengths(
                counts[rows], max_similarity, run_budget)
            low_offsets = np.concatenate([[0], np.cumsum(low_lengths[rows])])
            high_offsets = np.concatenate([[0], np.cumsum(high_lengths[rows])])
            low, high = np.empty(low_offsets[-1]), np.empty(high_offsets[-1])
            good_runs(products, support.sq_norms, queries32[rows],
                      support.sorted_vectors, support.max_norm, bounds,
                      predictions[rows], scores[rows, 0], counts[rows],
                      low_offsets, low, high_offsets, high)
            runs[start] = low, high

        self._scan(queries32, self_indices, block_rows, process)
        found = columns >= 0
        indices = np.where(found, self.original[np.maximum(columns, 0)], -1)
        parts = [runs[start] for start in sorted(runs)]
        low = np.concatenate([part[0] for part in parts])
        high = np.concatenate([part[1] for part in parts])
        return scores, indices, counts, low_lengths, high_lengths, low, high

    def second_pass(self, payload, rows, radii, block_rows):
        """Good points with a score below ``radii`` for the queries ``rows``."""
        queries32, predictions, self_indices = payload
        queries32, predictions = queries32[rows], predictions[rows]
        support = self.support
        bounds = group_bounds(support.sorted_good, predictions)
        counts = np.empty(len(rows), dtype=np.int64)

        def process(start, size, products):
            part = slice(start, start + size)
            count_block(products, support.sq_norms, queries32[part],
                        support.sorted_vectors, support.max_norm, bounds,
                        predictions[part], radii[part], counts[part])

        self._scan(queries32, self_indices[rows], block_rows, process)
        return counts

    def nearest(self, queries, n_neighbors, block_rows):
        """The shard's nearest points: original indices and distances."""
        with single_threaded_blas():
            local, distances = self.support.nearest(queries, n_neighbors,
                                                    block_rows=block_rows)
        return self.indices[local], distances


def run_lengths(counts, max_similarity, run_budget):
    """Entries sent of every run: its smallest and its largest distances.

    A run of at most ``2 * run_budget`` entries after the cap (``counts``
    capped at ``max_similarity``) is sent whole up to the cap, among the
    smallest; a longer one as its ``run_budget`` smallest and
    ``run_budget`` largest distances.

    Returns
    -------
    low_lengths, high_lengths : ndarray of shape (n_queries,), int64
    """
    sent = np.minimum(counts, max_similarity)
    whole = sent <= 2 * run_budget
    return (np.where(whole, sent, run_budget).astype(np.int64),
            np.where(whole, 0, run_budget).astype(np.int64))


def _payload(queries32, predictions, self_indices):
    """The queries of a search, as one task result that the passes read."""
    return queries32, predictions, self_indices


def _new_shard(vectors, good_labels, indices):
    return _Shard(ExactSupport(vectors, good_labels), indices)


def _shard_of_parts(start, *parts):
    """A shard of consecutive parts (see ``DaskSupport.from_parts``)."""
    vectors = np.concatenate([part[0] for part in parts])
    good_labels = np.concatenate([part[1] for part in parts])
    return _new_shard(vectors, good_labels,
                      np.arange(start, start + len(vectors), dtype=np.int64))


def _call_shard(shard, method, *args):
    return getattr(shard, method)(*args)


def _read_shard(vectors_path, labels_path):
    """A shard from its two files (a task on a worker that sees them)."""
    indices, good_labels = np.load(labels_path)
    return _new_shard(np.load(vectors_path), good_labels, indices)


# ------------------------------------------------------- the support set


def require_client():
    """The running ``distributed`` client of this process, or a clear error."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError as error:
        raise RuntimeError(NO_CLIENT) from error


@contextmanager
def _client_for(futures, search):
    """A client that can submit tasks on ``futures``.

    On a worker (predicting a dask collection), the worker's client,
    seceding from the worker's thread pool while waiting; elsewhere the
    client the futures belong to.

    Parameters
    ----------
    futures : list of Future
        The shards of a support set.
    search : str
        The backend that holds them (``search=`` of the model), named by
        the error for a closed client.
    """
    from distributed import get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        client = futures[0].client
        if client.status != "running":
            pickled = ('with FAISS, as search="faiss"'
                       if search == "dask-faiss" else "exactly")
            raise RuntimeError(
                f'The support set of this model (search="{search}") is sharded '
                "over a dask.distributed cluster whose client is closed. Keep "
                "the Client that fit used open; a model pickled while it is "
                f"open searches in memory ({pickled})."
            ) from None
        yield client
    else:
        with worker_client() as client:
            yield client


def _worker_slots(client):
    """One entry per worker thread of the client's cluster, dealt round."""
    nthreads = client.nthreads()
    workers = [address for slot in range(max(nthreads.values(), default=0))
               for address, threads in nthreads.items() if slot < threads]
    if not workers:
        raise RuntimeError(
            'search="dask" found no workers in the cluster of the running '
            "client: start some, or wait for them with "
            "client.wait_for_workers(n), before fit."
        )
    return workers


def _shard_bounds(n_points, n_shards):
    """Contiguous, balanced ranges of ``n_points`` for ``n_shards`` shards."""
    return np.linspace(0, n_points, n_shards + 1).round().astype(int)


class DaskSupport:
    """Support set sharded over the workers of a ``distributed`` client.

    Every answer equals that of :class:`~sdm_sklearn._exact.ExactSupport`
    over the same points bit for bit (see the module docstring), and
    ``nearest`` too except where two points tie exactly at the last place
    asked for. The set is cut into contiguous shards of at least
    ``MIN_SHARD_POINTS`` points, one per worker thread of the client's
    cluster at construction, each built by a task that carries its points:
    the scheduler keeps those tasks, so it can rebuild a shard lost with its
    worker. Searches run as tasks next to the shards, one thread each
    (``n_jobs`` is accepted for the common interface).

    Pickling the set (with the model holding it; skops too) gathers the
    shards and stores an :class:`~sdm_sklearn._exact.ExactSupport` with
    the same answers, so that a loaded model predicts without a cluster, up
    to ``MAX_GATHER_BYTES`` of points (a larger set raises
    ``pickle.PicklingError`` naming its size); :meth:`to_directory` and
    :meth:`from_directory` save it shard by shard and load it onto a
    cluster instead. Copies share the shards, which never change.

    Parameters
    ----------
    vectors, good_labels : ndarray
        The support points in the search space and the good class of each,
        as for :class:`~sdm_sklearn._exact.ExactSupport`.
    block_bytes : int, default=None
        As for :class:`~sdm_sklearn._exact.ExactSupport`.

    Raises
    ------
    RuntimeError
        When no ``distributed`` client is running.
    """

    # the value of ``search`` that builds this backend, named by its errors
    SEARCH = "dask"

    def __init__(self, vectors, good_labels, *, block_bytes=None):
        vectors = as_search_array(vectors)
        good_labels = np.asarray(good_labels, dtype=np.int64)
        client = require_client()
        if block_bytes is None:
            block_bytes = default_block_bytes(vectors.shape[1])
        # one slot per worker thread, dealt round the workers
        workers = _worker_slots(client)
        n_shards = max(1, min(len(workers), len(vectors) // MIN_SHARD_POINTS))
        bounds = _shard_bounds(len(vectors), n_shards)
        homes = workers[:n_shards]
        with _large_payloads():
            shards = [
                _submit(client, home, _new_shard, vectors[lo:hi],
                        good_labels[lo:hi], np.arange(lo, hi))
                for lo, hi, home in zip(bounds[:-1], bounds[1:], homes,
                                        strict=True)
            ]
        self._state = (shards, homes, np.diff(bounds), vectors.shape[1],
                       int(block_bytes))
        self._by_reference = False

    @classmethod
    def from_parts(cls, parts, sizes, n_dims, *, client, block_bytes=None):
        """A support set whose shards are built on the workers from parts.

        Parameters
        ----------
        parts : list of Future
            Consecutive runs of the support points, in their order: each
            gives a tuple whose first two items are the run's search
            vectors (float32) and good classes. The shards are tasks on
            them, so a shard lost with its worker is rebuilt from the
            parts' lineage; the caller may release them.
        sizes : list of int
            Points of every part.
        n_dims : int
            Dimensions of the search vectors.
        client : distributed.Client
        block_bytes : int, default=None
            As for :class:`~sdm_sklearn._exact.ExactSupport`.

        Returns
        -------
        support : DaskSupport
            With as many shards as the client's cluster has worker threads
            (fewer for few points or parts), each a contiguous group of
            parts, groups balanced by their points.
        """
        if block_bytes is None:
            block_bytes = default_block_bytes(n_dims)
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        workers = _worker_slots(client)
        n_shards = max(1, min(len(workers), int(starts[-1]) // MIN_SHARD_POINTS,
                              len(parts)))
        # each shard ends at the part boundary nearest to a balanced cut
        targets = _shard_bounds(int(starts[-1]), n_shards)
        cuts = np.unique(np.abs(starts[:, None] - targets).argmin(axis=0))
        cuts = np.union1d(cuts, [0, len(parts)])
        homes = [workers[k] for k in range(len(cuts) - 1)]
        shards = [
            _submit(client, home, _shard_of_parts, int(starts[lo]),
                    *parts[lo:hi])
            for lo, hi, home in zip(cuts[:-1], cuts[1:], homes, strict=True)
        ]
        return cls._from_state((shards, homes, np.diff(starts[cuts]),
                                int(n_dims), int(block_bytes)))

    @classmethod
    def _from_state(cls, state, by_reference=False):
        support = cls.__new__(cls)
        support._state = state
        support._by_reference = by_reference
        return support

    @property
    def shards(self):
        """Futures of the shards."""
        return self._state[0]

    @property
    def sizes(self):
        """Number of points of every shard."""
        return self._state[2]

    @property
    def block_bytes(self):
        return self._state[4]

    @property
    def n_support(self):
        return int(self.sizes.sum())

    @property
    def block_rows(self):
        """Query rows per block: those of an exact support set of all points."""
        return block_rows_for(self.n_support, self.block_bytes)

    def _on_shard(self, client, k, method, *args):
        """Future of ``shard.method(*args)`` for shard ``k``, at its home.

        The home worker is a preference: a shard rebuilt elsewhere after
        its worker died is used where it is.
        """
        return _submit(client, self._state[1][k], _call_shard, self.shards[k],
                       method, *args)

    def _on_shards(self, client, method, *args):
        return [self._on_shard(client, k, method, *args)
                for k in range(len(self.shards))]

    @property
    def nbytes(self):
        """Bytes of the points: float32 vectors, int64 good classes, indices."""
        return self.n_support * (4 * self._state[3] + 16)

    def _check_gather(self):
        """Raise when the points are too many to gather for pickling."""
        if self.nbytes > MAX_GATHER_BYTES:
            raise pickle.PicklingError(
                f'Pickling a model fitted with search="{self.SEARCH}" gathers '
                f"its sharded support set into this process: "
                f"{self.n_support:,} points of {self._state[3]} dimensions, "
                f"{self.nbytes / 1e9:.2f} GB, more than "
                "sdm_sklearn._dask_support.MAX_GATHER_BYTES "
                f"({MAX_GATHER_BYTES / 1e9:.2f} GB). Save it to a directory "
                "instead, shard by shard, with SDMClassifier.save(path), and "
                "load it onto a cluster with SDMClassifier.load(path, "
                "client=...); or raise MAX_GATHER_BYTES if this process can "
                "hold it."
            )

    def to_directory(self, directory):
        """Write the shards to ``directory``, one at a time.

        Every shard becomes two ``.npy`` files (``SHARD_VECTORS``: its
        float32 vectors; ``SHARD_LABELS``: its original indices and good
        classes, int64, shape ``(2, n_points)``), plus ``SUPPORT_META``
        (JSON: shard sizes, dimensions, block bytes). Each shard is
        gathered into this process alone, so that this process holds one
        shard at a time, never the set.

        Parameters
        ----------
        directory : path-like
            Created if missing; the files in it are overwritten.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        shards, _, sizes, n_dims, block_bytes = self._state
        with _client_for(shards, self.SEARCH) as client:
            for k in range(len(shards)):
                indices, vectors, good_labels = client.gather(
                    self._on_shard(client, k, "points"))
                np.save(directory / SHARD_VECTORS.format(k), vectors)
                np.save(directory / SHARD_LABELS.format(k),
                        np.stack([indices, good_labels]))
                del indices, vectors, good_labels
        meta = {"format": 1, "sizes": [int(size) for size in sizes],
                "n_dims": int(n_dims), "block_bytes": int(block_bytes)}
        (directory / SUPPORT_META).write_text(json.dumps(meta))

    @classmethod
    def from_directory(cls, directory, client=None, *, read_on_workers=False):
        """The support set written by :meth:`to_directory`, on a cluster.

        Parameters
        ----------
        directory : path-like
        client : distributed.Client, default=None
            Whose workers get the shards, one per worker thread in turn
            (the number of shards is the saved one); None: the running
            client of this process.
        read_on_workers : bool, default=False
            False: this process reads each shard and sends it inside the
            task that builds it (as ``fit`` does), so the files need not be
            visible to the workers, and the scheduler can rebuild a lost
            shard from the task. True: the workers read the files (which
            they must see, e.g. on a shared file system, and which must stay
            there); the tasks carry the paths only.

        Returns
        -------
        support : DaskSupport
        """
        directory = Path(directory)
        meta = json.loads((directory / SUPPORT_META).read_text())
        if client is None:
            client = require_client()
        slots = _worker_slots(client)
        sizes = np.asarray(meta["sizes"], dtype=np.int64)
        homes = [slots[k % len(slots)] for k in range(len(sizes))]
        shards = []
        with _large_payloads():
            for k, home in enumerate(homes):
                vectors_path = directory / SHARD_VECTORS.format(k)
                labels_path = directory / SHARD_LABELS.format(k)
                if read_on_workers:
                    shards.append(_submit(client, home, _read_shard,
                                          str(vectors_path.resolve()),
                                          str(labels_path.resolve())))
                    continue
                indices, good_labels = np.load(labels_path)
                shards.append(_submit(client, home, _new_shard,
                                      np.load(vectors_path), good_labels,
                                      indices))
        return cls._from_state((shards, homes, sizes, int(meta["n_dims"]),
                                int(meta["block_bytes"])))

    def _points(self):
        """Vectors and good classes of all points, in the original order."""
        vectors = np.empty((self.n_support, self._state[3]), dtype=np.float32)
        good_labels = np.empty(self.n_support, dtype=np.int64)
        with _client_for(self.shards, self.SEARCH) as client:
            parts = client.gather(self._on_shards(client, "points"))
        for indices, shard_vectors, shard_good in parts:
            vectors[indices] = shard_vectors
            good_labels[indices] = shard_good
        return vectors, good_labels

    @property
    def vectors(self):
        """Support vectors in the original order (gathered from the shards)."""
        return self._points()[0]

    @property
    def good_labels(self):
        """Good class of every support point, in the original order."""
        return self._points()[1]

    def for_task_graph(self):
        """A copy that pickles as references to the shards (for task graphs)."""
        return self._from_state(self._state, by_reference=True)

    def __reduce__(self):
        if self._by_reference:
            # still by reference where it lands: a worker passes it on
            return DaskSupport._from_state, (self._state, True)
        self._check_gather()
        vectors, good_labels = self._points()
        return (functools.partial(ExactSupport, block_bytes=self.block_bytes),
                (vectors, good_labels))

    def __getstate__(self):
        # for serializers that store attributes (skops): the points, gathered
        self._check_gather()
        vectors, good_labels = self._points()
        return {"vectors": vectors, "good_labels": good_labels,
                "block_bytes": self.block_bytes}

    def __setstate__(self, state):
        # ... and loaded as the equivalent exact support set
        exact = ExactSupport(state["vectors"], state["good_labels"],
                             block_bytes=state["block_bytes"])
        self.__class__ = ExactSupport
        self.__dict__.update(exact.__dict__)

    def __copy__(self):
        return self._from_state(self._state, self._by_reference)

    def __deepcopy__(self, memo):
        return self.__copy__()

    def with_points(self, vectors, good_labels):
        """A new support set with points appended; this one is unchanged.

        The new points are dealt to the shards in contiguous runs, so that
        shard sizes stay balanced; each grown shard is a new task on the
        old one, at the same home.
        """
        vectors = as_search_array(vectors)
        good_labels = np.asarray(good_labels, dtype=np.int64)
        shards, homes, sizes, n_dims, block_bytes = self._state
        bounds = _shard_bounds(len(vectors), len(shards))
        grown = [k for k in range(len(shards)) if bounds[k + 1] > bounds[k]]
        shards = list(shards)
        with _client_for(shards, self.SEARCH) as client, _large_payloads():
            for k in grown:
                lo, hi = bounds[k], bounds[k + 1]
                shards[k] = _submit(
                    client, homes[k], _call_shard, shards[k], "with_points",
                    vectors[lo:hi], good_labels[lo:hi],
                    np.arange(lo, hi) + self.n_support,
                )
        return self._from_state(
            (shards, homes, sizes + np.diff(bounds), n_dims, block_bytes)
        )

    def nearest(self, queries, n_neighbors, *, n_jobs=1):
        """The nearest support points; see ``ExactSupport.nearest``.

        Each shard ranks its own nearest points by exact distance and the
        client keeps the best (ties by the smallest index).
        """
        queries32 = as_search_array(queries)
        k = min(n_neighbors, self.n_support)
        with _client_for(self.shards, self.SEARCH) as client, _large_payloads():
            sent = client.submit(np.asarray, queries32, pure=False)
            parts = client.gather(self._on_shards(client, "nearest", sent, k,
                                                  self.block_rows))
        indices = np.concatenate([part[0] for part in parts], axis=1)
        distances = np.concatenate([part[1] for part in parts], axis=1)
        order = np.lexsort((indices, distances), axis=1)[:, :k]
        return (np.take_along_axis(indices, order, axis=1),
                np.take_along_axis(distances, order, axis=1))

    def search(self, queries, predictions, max_similarity, *, self_indices=None,
               n_jobs=1):
        """q, nearest support point and its distance; see ``ExactSupport.search``.

        Computed by the reduction over shards of the module docstring: one
        round of tasks (one per shard), and a second one only for the
        (query, shard) pairs whose long run leaves the count open.
        """
        queries32 = as_search_array(queries)
        n_queries = len(queries32)
        predictions = np.ascontiguousarray(predictions, dtype=np.int64)
        if self_indices is None:
            self_indices = np.full(n_queries, -1, dtype=np.int64)
        self_indices = np.asarray(self_indices, dtype=np.int64)
        budget = int(RUN_BUDGET)
        cap = int(max_similarity)
        with _client_for(self.shards, self.SEARCH) as client:
            with _large_payloads():
                payload = client.submit(_payload, queries32, predictions,
                                        self_indices, pure=False)
            parts = client.gather(self._on_shards(
                client, "search_part", payload, cap, budget, self.block_rows,
            ))
            scores = np.stack([part[0] for part in parts])
            indices = np.stack([part[1] for part in parts])
            # the nearest bad and good points over shards: smallest score,
            # then smallest index (shard, query, side)
            rows = np.arange(n_queries)
            best = np.lexsort((indices, scores), axis=0)[0]
            score, index = (values[best, rows[:, None], [0, 1]]
                            for values in (scores, indices))
            radius = score[:, 0]
            # q: the good points of every run strictly closer than the radius
            known = np.zeros(n_queries, dtype=np.int64)
            at_least = np.zeros(n_queries, dtype=np.int64)
            unknown = []
            for part in parts:
                counts, unsure = _run_counts(radius, *part[2:])
                known += np.where(unsure, 0, counts)
                at_least += np.where(unsure, budget, 0)
                unknown.append(unsure)
            # a run cut in two whose gap holds the radius: its own count
            # below the radius, unless the others already reach the cap
            open_rows = known + at_least < cap
            again = [k for k in range(len(parts))
                     if (unknown[k] & open_rows).any()]
            futures = []
            for k in again:
                wanted = unknown[k] & open_rows
                futures.append(self._on_shard(
                    client, k, "second_pass", payload, np.flatnonzero(wanted),
                    radius[wanted], self.block_rows,
                ))
            for k, values in zip(again, client.gather(futures), strict=True):
                known[unknown[k] & open_rows] += values
        q = np.where(open_rows, np.minimum(known, cap), cap)
        good_wins = score[:, 1] < radius
        nearest = np.where(good_wins, index[:, 1], index[:, 0])
        d_nearest = np.sqrt(np.where(good_wins, score[:, 1], score[:, 0]))
        return q, nearest, d_nearest


def _run_counts(radius, counts, low_lengths, high_lengths, low, high):
    """Every query's good points of one shard below ``radius``, if known.

    Returns
    -------
    below : ndarray of shape (n_queries,), int64
        The count (meaningless where ``unsure``).
    unsure : ndarray of shape (n_queries,), bool
        Runs sent in two parts whose gap holds the radius: at least
        ``low_lengths`` entries lie below it, and the shard must count.
    """
    n_queries = len(radius)
    rows = np.arange(n_queries)
    owners = np.repeat(rows, low_lengths)
    below = np.bincount(owners[low < radius[owners]], minlength=n_queries)
    unsure = np.zeros(n_queries, dtype=bool)
    split = np.flatnonzero(high_lengths > 0)
    if len(split):
        owners = np.repeat(rows, high_lengths)
        above = np.bincount(owners[high >= radius[owners]],
                            minlength=n_queries)
        high_first = np.concatenate([[0], np.cumsum(high_lengths)])[split]
        low_last = np.cumsum(low_lengths)[split] - 1
        r = radius[split]
        reaches_high = high[high_first] < r  # every point >= r is in high
        within_low = low[low_last] >= r  # every point < r is in low
        below[split] = np.where(reaches_high, counts[split] - above[split],
                                below[split])
        unsure[split] = ~reaches_high & ~within_low
    return below, unsure


def _submit(client, home, function, *args):
    """``client.submit`` preferring the worker ``home``."""
    return client.submit(function, *args, workers=[home],
                         allow_other_workers=True, pure=False)


@contextmanager
def _large_payloads():
    """Silence distributed's large-graph warning for arrays sent on purpose."""
    import dask

    with dask.config.set({"distributed.admin.large-graph-warning-threshold":
                          PAYLOAD_WARNING_BYTES}):
        yield
