"""Approximate search on a Dask cluster: FAISS cells in every shard.

:class:`DaskFaissSupport` (``search="dask-faiss"``) is the FAISS backend
(:mod:`sdm_sklearn._faiss`) cut into the shards of the Dask backend
(:mod:`sdm_sklearn._dask_support`). The client trains the k-means cells
exactly as :class:`~sdm_sklearn._faiss.FaissSupport` does for the same
points and seed (:meth:`FaissSupport.cells_for
<sdm_sklearn._faiss.FaissSupport.cells_for>`, what its constructor
trains), and every shard arranges its own points in those cells. A query
probes the same ``n_probe`` cells in every shard (the nearest by canonical
distance to their centroids, a function of the query and the centroids
alone), so the points it is compared with are, over all shards, exactly
the points of its probed cells, as in one process.

Every shard answers the one-round reduction of the Dask backend over the
points of the query's probed cells that it holds: its nearest point that
is not good, its nearest good point below that one, the length of its run
(its good points closer than its own nearest bad point) and the run's
canonical squared distances, whole or as its two ends (module docstring of
:mod:`sdm_sklearn._dask_support`). The client reduces them with
:meth:`DaskSupport.search <sdm_sklearn._dask_support.DaskSupport.search>`
itself, second round included. A shard computes its part in one scan of
its probed cells in the common case, with the kernels of the FAISS backend
(:func:`~sdm_sklearn._faiss_kernels.scan_cell`): the nearest bad point and
a heap of the ``HEAP_SIZE`` good points that may be closer, whose
canonical distances are the run unless the heap filled up with points
that may be closer. A query whose heap did is scanned again: every probed
cell's run is counted (:func:`~sdm_sklearn._faiss_kernels.count_cell`) and
its ends taken with the kernel of the exact shards
(:func:`~sdm_sklearn._shard_kernels.good_runs`), and the cells' ends merged.

Every comparison is decided on canonical distances, so the answers equal
those of ``FaissSupport(vectors, good_labels, random_state=seed)`` bit for
bit, whatever the number of workers and shards, the other rows of a call,
the threads and the BLAS. Pickling gathers the points into exactly that
in-memory ``FaissSupport`` (the cells of the cluster, the points arranged
in them), so a loaded model needs no cluster and answers as before.
"""

import copy
import copyreg
import json
from pathlib import Path

import numpy as np

from ._blas import single_threaded_blas
from ._dask_support import (
    DaskSupport,
    _client_for,
    _large_payloads,
    _Shard,
    _submit,
    run_lengths,
)
from ._exact import as_search_array, rank_candidates
from ._faiss import FaissSupport
from ._faiss_kernels import count_cell
from ._shard_kernels import good_runs
from ._similarity import pair_squared_distances, row_bands

# The cells of a support set saved to a directory, next to its shards:
# the centroids (float32) and the cells probed per query
CELLS_VECTORS = "cells.npy"
CELLS_META = "cells.json"


class CellIndex(FaissSupport):
    """A ``FaissSupport`` over given cells, with the part a shard answers.

    Parameters
    ----------
    vectors, good_labels : ndarray
        Points and good classes, as for ``FaissSupport``.
    centroids : ndarray of shape (n_cells, n_dims), float32
    n_probe : int
        Cells searched per query.
    """

    def __init__(self, vectors, good_labels, centroids, n_probe):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.n_probe = int(n_probe)
        self._arrange(as_search_array(vectors),
                      np.asarray(good_labels, dtype=np.int64))

    def _count_cells(self, queries32, probes, rows, predictions, skipped,
                     radii, counts, good, good_position, then=None):
        """Count the good points below ``radii`` in the probed cells of ``rows``.

        Adds to ``counts`` and folds the nearest good point into ``good``
        and ``good_position`` (:func:`~sdm_sklearn._faiss_kernels.count_cell`);
        ``then(cell, cell_rows, products, cell_queries, added)`` follows
        every cell, ``added`` the cell's counts.
        """
        points = self.columns.T

        def count(cell, cell_rows, products, cell_queries):
            before = counts[cell_rows]
            count_cell(products, cell_queries, cell_rows,
                       self.cell_bounds[cell], self.group_bounds[cell],
                       self.sq_norms, points, self.order, self.max_norm,
                       predictions, skipped, radii, counts, good,
                       good_position)
            if then is not None:
                then(cell, cell_rows, products, cell_queries,
                     counts[cell_rows] - before)

        self._visit_cells(queries32, probes, rows, count)

    def run_summary(self, queries32, predictions, skipped, max_similarity,
                    run_budget):
        """One block's part of a sharded search, over its probed cells.

        Parameters
        ----------
        queries32 : ndarray of shape (n_rows, n_dims), float32
        predictions : ndarray of shape (n_rows,), int64
            Clipped to ``n_labels`` (a class without good points here).
        skipped : ndarray of shape (n_rows,), int64
            Sorted position of every row's self-match, ``-1`` for none.
        max_similarity, run_budget : int
            As for the exact shards
            (:func:`sdm_sklearn._dask_support.run_lengths`).

        Returns
        -------
        bad, good : ndarray of shape (n_rows,)
            Canonical squared distances to the nearest point that is not
            good and to the nearest good point (``inf`` for none; also, for
            a row whose heap held its whole run, where no good point is
            closer than the bad one: such a point is never the nearest over
            all shards).
        bad_position, good_position : ndarray of shape (n_rows,), int64
            Their sorted positions (``-1``: none).
        counts, low_lengths, high_lengths : ndarray of shape (n_rows,), int64
        low, high : ndarray
            The run of every row, as ``_Shard.search_part`` returns it.
        """
        n_rows = len(queries32)
        points = self.columns.T
        probes, bad, bad_position, heap, heap_items, heap_size = (
            self._scan_probed(queries32, predictions, skipped))
        # scores above the limit belong to points further than the bad one
        # (one band more than score_limit: |u|^2 summed by numpy here)
        bands = np.empty(n_rows)
        row_bands(queries32, self.max_norm, bands)
        as64 = queries32.astype(np.float64)
        limit = bad - np.einsum("ij,ij->i", as64, as64) + 3.0 * bands
        # a heap that did not fill up, or whose largest score is above the
        # limit, holds every good point that may be closer than the bad
        # one: the run is those of its members canonically closer
        held = np.flatnonzero((heap_size < self.HEAP_SIZE) | (heap[:, 0] > limit))
        owners = np.repeat(held, heap_size[held])
        slots = np.arange(len(owners)) - np.repeat(
            np.cumsum(heap_size[held]) - heap_size[held], heap_size[held])
        near = heap[owners, slots] <= limit[owners]
        owners, slots = owners[near], slots[near]
        positions = heap_items[owners, slots]
        distances = np.empty(len(owners))
        pair_squared_distances(queries32, owners, points, positions, distances)
        inside = distances < bad[owners]
        owners, positions, distances = (values[inside] for values in
                                        (owners, positions, distances))
        counts = np.bincount(owners, minlength=n_rows).astype(np.int64)
        good = np.full(n_rows, np.inf)
        good_position = np.full(n_rows, -1, dtype=np.int64)
        first = np.lexsort((self.order[positions], distances, owners))
        if len(first):  # the nearest member of every run, ties by index
            first = first[np.r_[True, np.diff(owners[first]) > 0]]
        good[owners[first]] = distances[first]
        good_position[owners[first]] = positions[first]
        # a full heap: count every probed cell's run and take its ends
        parts = [(owners, distances)]

        def ends(cell, cell_rows, products, cell_queries, added):
            low_lengths, high_lengths = run_lengths(added, max_similarity,
                                                    run_budget)
            low_offsets = np.concatenate([[0], np.cumsum(low_lengths)])
            high_offsets = np.concatenate([[0], np.cumsum(high_lengths)])
            low, high = np.empty(low_offsets[-1]), np.empty(high_offsets[-1])
            lo, hi = self.cell_bounds[cell], self.cell_bounds[cell + 1]
            size = len(cell_rows)
            good_runs(products[:size], self.sq_norms[lo:hi],
                      cell_queries[:size], points[lo:hi], self.max_norm,
                      self.group_bounds[cell], predictions[cell_rows],
                      bad[cell_rows], added, low_offsets, low, high_offsets,
                      high)
            parts.append((np.repeat(cell_rows, low_lengths), low))
            parts.append((np.repeat(cell_rows, high_lengths), high))

        full = np.setdiff1d(np.arange(n_rows), held)
        if len(full):
            self._count_cells(queries32, probes, full, predictions, skipped,
                              bad, counts, good, good_position, then=ends)
        owners = np.concatenate([part[0] for part in parts])
        distances = np.concatenate([part[1] for part in parts])
        kept = np.isfinite(distances)  # no padding is expected; none counts
        owners, distances = owners[kept], distances[kept]
        order = np.lexsort((distances, owners))
        owners, distances = owners[order], distances[order]
        low_lengths, high_lengths = run_lengths(counts, max_similarity,
                                                run_budget)
        entries = np.bincount(owners, minlength=n_rows)
        rank = np.arange(len(owners)) - (np.cumsum(entries) - entries)[owners]
        low = distances[rank < low_lengths[owners]]
        high = distances[rank >= (entries - high_lengths)[owners]]
        return (bad, good, bad_position, good_position, counts, low_lengths,
                high_lengths, low, high)

    def count_below(self, queries32, predictions, skipped, radii):
        """Good points of the probed cells canonically closer than ``radii``."""
        n_rows = len(queries32)
        counts = np.zeros(n_rows, dtype=np.int64)
        self._count_cells(queries32, self._probes(queries32, self.n_probe),
                          np.arange(n_rows), predictions, skipped,
                          np.asarray(radii, dtype=np.float64), counts,
                          np.full(n_rows, np.inf),
                          np.full(n_rows, -1, dtype=np.int64))
        return counts

    def probed_nearest(self, queries32, n_neighbors):
        """The ``n_neighbors`` nearest points of the probed cells, padded.

        As ``nearest``, but never beyond the probed cells: where they hold
        fewer points, all of them, then ``-1`` and ``inf``.

        Returns
        -------
        indices, distances : ndarray of shape (n_queries, n_neighbors)
            Indices of this set's points and canonical distances.
        """
        k = n_neighbors
        probes = self._probes(queries32, self.n_probe)
        cell_sizes = np.diff(self.cell_bounds)[probes]
        held = cell_sizes.sum(axis=1)
        indices = np.full((len(queries32), k), -1, dtype=np.int64)
        distances = np.full((len(queries32), k), np.inf)
        many = np.flatnonzero(held >= k)
        if len(many):
            indices[many], distances[many] = self.nearest(queries32[many], k)
        few = np.flatnonzero(held < k)
        if len(few):
            # every point of the probed cells: a run of positions per cell
            starts = self.cell_bounds[probes[few]].ravel()
            sizes = cell_sizes[few].ravel()
            owners = np.repeat(np.arange(len(few)), held[few])
            columns = np.arange(len(owners)) - np.repeat(
                np.cumsum(held[few]) - held[few], held[few])
            candidates = np.full((len(few), k), -1, dtype=np.int64)
            candidates[owners, columns] = (
                np.arange(len(owners)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                + np.repeat(starts, sizes))
            indices[few], distances[few] = rank_candidates(
                queries32[few], self.columns.T, candidates, k, self.order)
        return indices, distances


class _CellShard(_Shard):
    """A shard of the Dask backend whose points sit in FAISS cells.

    ``support`` is a :class:`CellIndex`; the methods are those the client
    of :class:`~sdm_sklearn._dask_support.DaskSupport` calls, over the
    probed cells.
    """

    def with_points(self, vectors, good_labels, indices):
        with single_threaded_blas():  # the new points' nearest cells
            support = self.support.with_points(vectors, good_labels)
        return _CellShard(support, np.concatenate([self.indices, indices]))

    def cells(self):
        """The centroids and the cells probed per query."""
        return self.support.centroids, self.support.n_probe

    def every_cell(self):
        """This shard probing all of its cells (a view: the points are shared)."""
        wide = copy.copy(self.support)
        wide.n_probe = len(wide.centroids)
        return _CellShard(wide, self.indices)

    def _queries(self, payload, rows=slice(None)):
        queries32, predictions, self_indices = payload
        predictions = np.minimum(predictions[rows], self.support.n_labels)
        return (queries32[rows], predictions,
                self._self_positions(self_indices[rows]))

    def search_part(self, payload, max_similarity, run_budget, block_rows):
        """The shard's part of a search, as ``_Shard.search_part`` returns it.

        Over the probed cells of every query; ``block_rows`` is unused (the
        blocks are those of ``FaissSupport``, which no answer depends on).
        """
        queries32, predictions, skipped = self._queries(payload)
        index = self.support
        rows = index._scan_rows(len(queries32), 1)
        parts = []
        with single_threaded_blas():
            for start in range(0, len(queries32), rows):
                block = slice(start, start + rows)
                parts.append(index.run_summary(
                    queries32[block], predictions[block], skipped[block],
                    max_similarity, run_budget))
        if not parts:
            parts = [index.run_summary(queries32, predictions, skipped,
                                       max_similarity, run_budget)]
        bad, good, bad_position, good_position, *run = (
            np.concatenate(values) for values in zip(*parts, strict=True))
        positions = np.stack([bad_position, good_position], axis=1)
        indices = np.where(positions >= 0,
                           self.original[np.maximum(positions, 0)], -1)
        return (np.stack([bad, good], axis=1), indices, *run)

    def second_pass(self, payload, rows, radii, block_rows):
        """Good points of the probed cells below ``radii`` for the queries ``rows``."""
        with single_threaded_blas():
            return self.support.count_below(*self._queries(payload, rows),
                                            radii)

    def nearest(self, queries, n_neighbors, block_rows):
        """The nearest points of the probed cells: original indices, distances.

        Padded with ``-1`` and ``inf`` where the shard's probed cells hold
        fewer than ``n_neighbors`` points.
        """
        with single_threaded_blas():
            local, distances = self.support.probed_nearest(
                as_search_array(queries), n_neighbors)
        return (np.where(local >= 0, self.indices[np.maximum(local, 0)], -1),
                distances)


def _cell_shard(shard, centroids, n_probe):
    """The points of an exact shard, arranged in the cells (a task).

    One BLAS thread, as every task of the shards: the products that find
    each point's cell would otherwise spin threads against the other
    workers'.
    """
    indices, vectors, good_labels = shard.points()
    with single_threaded_blas():
        index = CellIndex(vectors, good_labels, centroids, n_probe)
    return _CellShard(index, indices)


def _in_cells(state, centroids, n_probe):
    """The state of a sharded set with every shard arranged in the cells.

    Each new shard is a task on the old one, at its home, that carries the
    centroids: the scheduler can rebuild it as it rebuilds the old one.
    """
    shards, homes = state[0], state[1]
    with _client_for(shards, DaskFaissSupport.SEARCH) as client, _large_payloads():
        cells = [_submit(client, home, _cell_shard, shard, centroids, n_probe)
                 for shard, home in zip(shards, homes, strict=True)]
    return (cells, *state[1:])


class DaskFaissSupport(DaskSupport):
    """Support set sharded over a cluster, each shard in FAISS cells.

    The answers equal those of ``FaissSupport(vectors, good_labels,
    random_state=random_state, n_cells=n_cells, n_probe=n_probe)`` bit for
    bit (module docstring): the client trains that set's k-means cells and
    every shard arranges its points in them. The shards are those of
    :class:`~sdm_sklearn._dask_support.DaskSupport` (one per worker thread
    of the running client, built by tasks that carry their points), each
    turned into cells by a task on it; the scheduler can rebuild either.
    ``search``, ``with_points`` (the new points join their nearest cells)
    and the gathering of the points are those of ``DaskSupport``.

    Pickling gathers the points into the equivalent in-memory
    :class:`~sdm_sklearn._faiss.FaissSupport` (the same cells and probes,
    the points arranged in them), up to
    ``sdm_sklearn._dask_support.MAX_GATHER_BYTES`` of points;
    :meth:`to_directory` and :meth:`from_directory` save the shards and the
    cells and load them onto a cluster instead.

    Parameters
    ----------
    vectors, good_labels : ndarray
    random_state : int
    n_cells, n_probe : int, default=None
        Those of the equivalent :class:`~sdm_sklearn._faiss.FaissSupport`.

    Raises
    ------
    RuntimeError
        When no ``distributed`` client is running.
    """

    SEARCH = "dask-faiss"

    def __init__(self, vectors, good_labels, *, random_state, n_cells=None,
                 n_probe=None):
        vectors = as_search_array(vectors)
        good_labels = np.asarray(good_labels, dtype=np.int64)
        super().__init__(vectors, good_labels)
        # the workers build the shards while this process trains the cells
        centroids, n_probe = FaissSupport.cells_for(
            vectors, random_state=random_state, n_cells=n_cells,
            n_probe=n_probe)
        self._state = _in_cells(self._state, centroids, n_probe)

    def _cells(self):
        """The centroids and the cells probed per query (from the first shard)."""
        with _client_for(self.shards, self.SEARCH) as client:
            return client.gather(self._on_shard(client, 0, "cells"))

    def nearest(self, queries, n_neighbors, *, n_jobs=1):
        """Approximate nearest support points; see ``FaissSupport.nearest``.

        The nearest points of the probed cells over all shards, ties by
        index; all cells for the queries whose probed cells hold fewer than
        ``n_neighbors`` points, as in one process.
        """
        indices, distances = super().nearest(queries, n_neighbors)
        short = np.flatnonzero(np.isinf(distances[:, -1]))
        if len(short) and distances.shape[1]:
            with _client_for(self.shards, self.SEARCH) as client:
                wide = [self._on_shard(client, k, "every_cell")
                        for k in range(len(self.shards))]
            every = DaskSupport._from_state((wide, *self._state[1:]))
            indices[short], distances[short] = every.nearest(
                as_search_array(queries)[short], n_neighbors)
        return indices, distances

    def __reduce__(self):
        if self._by_reference:
            return type(self)._from_state, (self._state, True)
        # an instance of FaissSupport itself (object.__new__ and its
        # attributes, as pickle rebuilds a plain object), points arranged
        return (copyreg._reconstructor, (FaissSupport, object, None),
                self.__getstate__())

    def __getstate__(self):
        # the points, gathered and arranged in the cells as FaissSupport has
        # them (for serializers that store attributes too, e.g. skops)
        self._check_gather()
        vectors, good_labels = self._points()
        centroids, n_probe = self._cells()
        return CellIndex(vectors, good_labels, centroids, n_probe).__dict__

    def __setstate__(self, state):
        # ... and loaded as that FaissSupport
        self.__class__ = FaissSupport
        self.__dict__.update(state)

    def to_directory(self, directory):
        """Write the shards and the cells to ``directory``, a shard at a time.

        The files of ``DaskSupport.to_directory``, plus ``CELLS_VECTORS``
        (the centroids) and ``CELLS_META`` (JSON: the cells probed per
        query).

        Parameters
        ----------
        directory : path-like
            Created if missing; the files in it are overwritten.
        """
        super().to_directory(directory)
        centroids, n_probe = self._cells()
        np.save(Path(directory) / CELLS_VECTORS, centroids)
        (Path(directory) / CELLS_META).write_text(
            json.dumps({"format": 1, "n_probe": int(n_probe)}))

    @classmethod
    def from_directory(cls, directory, client=None, *, read_on_workers=False):
        """The support set written by :meth:`to_directory`, on a cluster.

        The parameters are those of ``DaskSupport.from_directory``; the
        centroids travel inside the tasks that arrange the shards in their
        cells, whichever process reads the shards.

        Returns
        -------
        support : DaskFaissSupport
        """
        support = super().from_directory(directory, client,
                                         read_on_workers=read_on_workers)
        meta = json.loads((Path(directory) / CELLS_META).read_text())
        support._state = _in_cells(support._state,
                                   np.load(Path(directory) / CELLS_VECTORS),
                                   meta["n_probe"])
        return support
