"""Producing features: none, a transformer or pipeline, or a frozen estimator.

The producer of a fit is chosen by the ``estimator`` parameter:

- None: the inputs are the features (embeddings, tabular data);
- a transformer or a Pipeline ending in one: cloned and fitted on the
  support split of every iteration only, so that no calibration point is
  ever seen by anything fitted;
- a :class:`~sklearn.frozen.FrozenEstimator`: used as it is, never refitted.

New inputs go through the producer in blocks of a fixed number of rows (the
last one padded by repeating its last row), so that a producer computing
with BLAS gives a row the same features whatever else is in the call.
"""

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_array

from ._blocks import block_starts

# Rows per call of the producer's transform.
PRODUCER_ROWS = 128


def is_frozen(estimator):
    """Whether the producer is used as it is (never refitted)."""
    return isinstance(estimator, FrozenEstimator)


def check_features(features, producer, n_features=None):
    """Features from a producer: dense, 2-D, finite, numeric, the right width.

    Parameters
    ----------
    features : array-like
        What the producer returned.
    producer : estimator
        Named in error messages.
    n_features : int, default=None
        The width the adaptor was fitted on (None: any).

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32 or float64
    """
    if hasattr(features, "toarray") or hasattr(features, "tocsr"):
        raise TypeError(
            f"The feature producer {producer!r} returned a sparse matrix. "
            "SDMClassifier needs dense features: end the pipeline with a "
            "dense transformer, e.g. sklearn.decomposition.TruncatedSVD."
        )
    try:
        features = check_array(features, dtype=[np.float64, np.float32])
    except ValueError as error:
        raise ValueError(
            f"The feature producer {producer!r} returned invalid features: "
            f"{error}"
        ) from error
    if n_features is not None and features.shape[1] != n_features:
        raise ValueError(
            f"The feature producer {producer!r} returned {features.shape[1]} "
            f"features, but SDMClassifier was fitted on {n_features}."
        )
    return features


def produce(producer, X, n_features=None):
    """Features of inputs ``X``: the producer's transform, in fixed blocks.

    Parameters
    ----------
    producer : fitted transformer
    X : producer input with ``n_samples`` rows
    n_features : int, default=None
        Expected width (see :func:`check_features`).

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)
    """
    n_samples = _num_samples(X)
    parts = []
    for start in block_starts(n_samples, PRODUCER_ROWS):
        rows = np.minimum(np.arange(start, start + PRODUCER_ROWS), n_samples - 1)
        size = min(PRODUCER_ROWS, n_samples - start)
        block = check_features(
            producer.transform(_safe_indexing(X, rows)), producer, n_features
        )
        parts.append(block[:size])
        n_features = block.shape[1]
    if not parts:
        return check_features(producer.transform(X), producer, n_features)
    return np.concatenate(parts)


def split_features(estimator, X, y, support_index, calibration_index,
                   frozen_features=None):
    """The producer of one iteration and the features of both splits.

    Parameters
    ----------
    estimator : None, transformer, Pipeline or FrozenEstimator
        The ``estimator`` parameter.
    X : array-like or producer input
        All training inputs (validated features when ``estimator`` is None).
    y : array-like of shape (n_samples,)
        Labels, passed to the producer's ``fit_transform``.
    support_index, calibration_index : ndarray of int
        The split.
    frozen_features : ndarray, default=None
        For a frozen producer, the features of all of ``X`` (computed once
        for every iteration).

    Returns
    -------
    producer : fitted transformer or None
    support_features, calibration_features : ndarray
    """
    if estimator is None:
        return None, X[support_index], X[calibration_index]
    if frozen_features is not None:
        return (estimator, frozen_features[support_index],
                frozen_features[calibration_index])
    producer = clone(estimator)
    support_features = check_features(
        producer.fit_transform(
            _safe_indexing(X, support_index), _safe_indexing(y, support_index)
        ),
        producer,
    )
    calibration_features = produce(
        producer, _safe_indexing(X, calibration_index), support_features.shape[1]
    )
    return producer, support_features, calibration_features
