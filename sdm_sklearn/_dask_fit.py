"""Fitting from dask collections whose rows stay on the cluster.

``SDMClassifier(search="dask").fit(X, y)`` with ``X`` a dask array or
DataFrame, and no producer to fit (``estimator`` None, or a FrozenEstimator
of a transformer), never brings ``X`` into this process
(:func:`fits_on_cluster` says when):

- the features are ``X``'s blocks, checked on the workers, or a frozen
  producer's output of every block (:func:`sdm_sklearn._features.produce`:
  a row's features do not depend on its block);
- the labels (and identifiers and weights) come to this process, a few
  bytes a row, where every split is drawn as in memory;
- the adaptor trains on a sample of the support split, gathered here: the
  whole split up to ``TRAINING_ROWS`` points, else a stratified random
  sample of ``TRAINING_ROWS`` points (each class in proportion, and at
  least ``MIN_TRAINING_ROWS_PER_CLASS`` of it or all it has; see
  :func:`sdm_sklearn._splitting.stratified_subset`), drawn with its own
  generator seeded by the iteration's seed. The epochs are scored on at
  most ``SELECTION_ROWS`` calibration rows, gathered here as well, and
  training's per-epoch searches of the sample run in this process with
  the exact backend, whose answers are the dask backend's bit for bit
  (:func:`sdm_sklearn._search.training_factory`); the kept epoch keeps no
  index or results of the sample;
- the kept epoch's adaptor maps every block of the support split to its
  search vectors and good classes on the workers, and the shards are built
  from those (:meth:`DaskSupport.from_parts
  <sdm_sklearn._dask_support.DaskSupport.from_parts>`). They depend on
  ``X``'s graph only, so the scheduler holds keys and per-row labels, not
  the points, and rebuilds a shard lost with its worker from ``X``'s
  lineage;
- the calibration split is searched block by block on the workers; only
  the per-row results come here (logits, q, the nearest support point and
  its distance), from which the eCDFs and the region are computed as in
  memory, exactly.

When the support split has at most ``TRAINING_ROWS`` points the sample is
the split, and the fit equals the in-memory fit with ``search="dask"`` on
the same rows bit for bit.
"""

import numpy as np

from ._dask_collections import is_dask_collection
from ._evaluation import SupportIndex, calibration_state, index_support, search_inputs
from ._features import is_frozen, produce, producer_kind
from ._splitting import stratified_subset

# Support points the adaptor trains on when the support split lives on a
# cluster (a stratified sample of a larger split), and the fewest of each
# class in the sample (or all of a smaller class). In memory, with rounds
# of ROUND_ROWS support points, a default fit sees about 1.3 x 10^5 of them
# over its epochs.
TRAINING_ROWS = 100_000
MIN_TRAINING_ROWS_PER_CLASS = 1_000


def fits_on_cluster(X, estimator, search):
    """Whether ``fit`` keeps ``X``'s rows on the cluster.

    True for a dask array or DataFrame ``X`` with ``search="dask"`` and
    ``estimator`` None or a FrozenEstimator of a transformer. A producer
    that ``fit`` must fit, or a frozen classifier (whose appended columns
    take means over all rows), is fitted on rows computed into this
    process, as with other ``search`` values.
    """
    if search != "dask" or not is_dask_collection(X) or X.ndim != 2:
        return False
    if estimator is None:
        return True
    return is_frozen(estimator) and producer_kind(estimator) != "classifier"


def is_on_cluster(X):
    """Whether ``X`` is the features of rows on a cluster (ClusterFeatures)."""
    return isinstance(X, ClusterFeatures)


def _client():
    from ._dask_support import require_client

    return require_client()


def _checked_block(block, producer, n_features):
    """A block of features: a producer's output, or checked numbers."""
    if producer is not None:
        return produce(producer, block, n_features)
    from sklearn.utils import check_array

    return check_array(block, dtype=[np.float64, np.float32],
                       ensure_min_samples=0)


class ClusterFeatures:
    """The features of every training row, blocks of a dask array.

    Parameters
    ----------
    X : dask Array or DataFrame
        The training inputs, two-dimensional.
    producer : fitted transformer or None
        Applied to every block (a FrozenEstimator).
    check : callable, default=None
        Validates the first two rows (computed here) and returns them as
        the features' example: the face's ``validate_data`` without a
        producer.
    """

    def __init__(self, X, producer, check=None):
        import dask
        import dask.array as da

        self.is_frame = not hasattr(X, "chunks")
        if not self.is_frame:
            X = X.rechunk({1: -1})
            if any(np.isnan(size) for size in X.chunks[0]):
                X = X.compute_chunk_sizes()
        head = X.head(2, npartitions=-1) if self.is_frame else X[:2].compute()
        if check is not None:
            head = check(head)
        example = _checked_block(head, producer, None)
        n_features = example.shape[1]
        # one key in the graph, not a copy of the producer in every task
        producer_task = dask.delayed(producer, pure=True)
        if self.is_frame:
            lengths = [int(n) for n in X.map_partitions(len).compute()]
            features = da.concatenate([
                da.from_delayed(_delayed_block(part, producer_task, n_features),
                                shape=(n, n_features), dtype=example.dtype)
                for part, n in zip(X.to_delayed(), lengths, strict=True)
            ], axis=0)
        else:
            features = X.map_blocks(
                _checked_block, producer_task, n_features,
                chunks=(X.chunks[0], (n_features,)), dtype=example.dtype,
            )
        self.X = X
        self.features = features
        self.producer = producer
        self.starts = np.concatenate([[0], np.cumsum(features.chunks[0])]
                                     ).astype(np.int64)

    def default_ids(self):
        """A DataFrame's index (computed), else None (the row positions)."""
        if self.is_frame:
            return self.X.index.compute().to_numpy()
        return None

    @property
    def shape(self):
        return (int(self.starts[-1]), self.features.shape[1])

    @property
    def position_dtype(self):
        """The smallest integer type of the rows' positions."""
        return np.min_scalar_type(max(len(self) - 1, 0))

    def __len__(self):
        return int(self.starts[-1])

    def take(self, rows):
        """The features of ``rows`` (positions, any order), gathered here."""
        rows = np.asarray(rows, dtype=np.int64)
        if np.all(rows[1:] >= rows[:-1]):  # in order already: no copy
            return _client().compute(self.features[rows]).result()
        order = np.argsort(rows, kind="stable")
        gathered = _client().compute(self.features[rows[order]]).result()
        values = np.empty_like(gathered)
        values[order] = gathered
        return values

    def blocks(self, index):
        """Every block holding rows of ``index`` (sorted positions).

        Yields
        ------
        block : dask Delayed
        local : ndarray of int32
            The rows' positions in the block.
        positions : slice
            Their positions in ``index``.
        """
        delayed = self.features.to_delayed()[:, 0]
        cuts = np.searchsorted(index, self.starts)
        for k, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            if hi > lo:
                local = (index[lo:hi] - self.starts[k]).astype(np.int32)
                yield delayed[k], local, slice(lo, hi)

    def split(self, support_index, support_labels, calibration_index,
              calibration_labels, seed):
        """The rows an iteration trains on, and its split on the cluster.

        ``support_index`` (of :attr:`position_dtype`) and
        ``support_labels`` (:func:`compact`, as the face encodes the labels
        of a fit on the cluster) are what grows with the split in this
        process: a few bytes a row.

        Returns
        -------
        split : dict
            The fields of the iteration's split
            (``sdm_sklearn._training._IterationSplit``): the arguments but
            ``seed``, ``producer``, ``training_rows`` (positions in the
            support split of the sample, None: all), ``support_features``
            (the sample's, gathered here), ``calibration_features``
            (ClusterRows) and ``final`` (ClusterSplit).
        """
        training_rows = stratified_subset(
            support_labels, TRAINING_ROWS, MIN_TRAINING_ROWS_PER_CLASS,
            np.random.default_rng((int(seed), 1)),
        )
        sample = (support_index if training_rows is None
                  else support_index[training_rows])
        calibration = ClusterRows(self, calibration_index)
        final = ClusterSplit(ClusterRows(self, support_index), support_labels,
                             calibration, calibration_labels)
        return dict(support_index=support_index, support_labels=support_labels,
                    calibration_index=calibration_index,
                    calibration_labels=calibration_labels,
                    producer=self.producer, training_rows=training_rows,
                    support_features=self.take(sample),
                    calibration_features=calibration, final=final)


def _delayed_block(part, producer, n_features):
    import dask

    return dask.delayed(_checked_block, pure=True)(part, producer, n_features)


class ClusterRows:
    """Rows ``index`` (sorted positions) of :class:`ClusterFeatures`.

    Indexing gathers the rows asked for into this process, as
    :class:`~sdm_sklearn._features.RowSubset` reads them from memory.
    """

    def __init__(self, features, index):
        self.features = features
        self.index = np.asarray(index)

    @property
    def shape(self):
        return (len(self.index), self.features.shape[1])

    def __len__(self):
        return len(self.index)

    def __getitem__(self, rows):
        return self.features.take(self.index[rows])

    def blocks(self):
        """See :meth:`ClusterFeatures.blocks`."""
        return self.features.blocks(self.index)


def _support_part(block, local, labels, adaptor, projection):
    """Search vectors, good classes and predictions of a block's support rows."""
    index = index_support(adaptor, adaptor.standardize(block[local]),
                          labels.astype(np.int64), _points, projection)[0]
    vectors, good_labels = index.support
    return vectors, good_labels, index.predictions


def _points(vectors, good_labels):
    return vectors, good_labels


def _predictions(part, n_classes):
    """A part's predictions, compact (the client keeps them so)."""
    return compact(part[2], n_classes - 1)


def _calibration_part(block, local, adaptor, index, max_similarity):
    """:func:`search_inputs` of a block's calibration rows (on a worker)."""
    return search_inputs(index, adaptor, adaptor.standardize(block[local]),
                         max_similarity, 1)


def compact(values, largest):
    """Nonnegative integers of at most ``largest`` in the smallest type."""
    return values.astype(np.min_scalar_type(max(int(largest), 0)), copy=False)


class ClusterSplit:
    """A support/calibration split whose rows live on the cluster.

    Parameters
    ----------
    support, calibration : ClusterRows
    support_labels, calibration_labels : ndarray of int
        Encoded labels (the support split's of the smallest type: they
        travel inside tasks).
    """

    def __init__(self, support, support_labels, calibration,
                 calibration_labels):
        self.support = support
        self.support_labels = support_labels
        self.calibration = calibration
        self.calibration_labels = calibration_labels

    def calibrate(self, adaptor, index, factory, max_similarity, n_jobs):
        """The fitted model's sharded index and the calibration state.

        The counterpart of ``_PendingSplit.calibrate`` of
        :mod:`sdm_sklearn._training` for a split on the cluster: ``index``
        and ``factory`` (training's index over the sample, and the
        constructor of a support set in this process) are not used, and
        every block is searched with one thread.

        Returns
        -------
        index : SupportIndex
        state : SplitState
        distance_values : list of ndarray
        """
        import dask

        from ._dask_support import DaskSupport

        client = _client()
        n_classes = adaptor.shapes[-1][0]
        adaptor_task = dask.delayed(adaptor, pure=True)
        projection = adaptor.search_projection()
        projection_task = dask.delayed(projection, pure=True)
        blocks = list(self.support.blocks())
        parts = client.compute([
            dask.delayed(_support_part, pure=True)(
                block, local, self.support_labels[positions], adaptor_task,
                projection_task)
            for block, local, positions in blocks
        ])
        support = DaskSupport.from_parts(
            parts, [len(local) for _, local, _ in blocks], projection.shape[0],
            client=client,
        )
        # every class has a support point: there is at least one part
        predictions = np.concatenate(client.gather(
            [client.submit(_predictions, part, n_classes, pure=False)
             for part in parts]))
        del parts  # the shards hold their lineage
        index = SupportIndex(support, projection, predictions)
        in_task = SupportIndex(support.for_task_graph(), projection, None)
        searched = client.gather(client.compute([
            dask.delayed(_calibration_part, pure=True)(
                block, local, adaptor_task, in_task, int(max_similarity))
            for block, local, _ in self.calibration.blocks()
        ]))
        columns = [np.concatenate(values) for values in zip(*searched,
                                                              strict=True)]
        state, values = calibration_state(tuple(columns),
                                          self.calibration_labels)
        return index, state, values
