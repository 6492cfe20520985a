"""One split against a support set: q, d_nearest, d and the loss.

Training evaluates after every epoch, and the fitted model evaluates new
inputs, through the same functions, so the calibration state the fitted
model keeps is exactly what training computed at its best epoch:

- :func:`index_support` builds the search structure of the support split
  under an adaptor;
- :func:`evaluate_support` searches the support split against itself
  (self-matches skipped; d from its own eCDFs, empty classes skipped), for
  the training weights of the next epoch;
- :func:`evaluate_calibration` searches the calibration split and builds
  its eCDFs (the d of calibration points and of every later query);
- :func:`evaluate_queries` searches new inputs with stored eCDFs.

None of it knows anything of scikit-learn.
"""

from dataclasses import dataclass

import numpy as np

from ._activation import sdm_loss
from ._calibration import class_distance_values, distance_quantile
from ._exact import good_classes


@dataclass(frozen=True)
class SupportIndex:
    """The support split indexed under one adaptor state.

    Attributes
    ----------
    support : ExactSupport, FaissSupport, NNDescentSupport or DaskSupport
        The search structure (see :mod:`sdm_sklearn._exact` for the
        interface, :mod:`sdm_sklearn._search` for the backends).
    projection : ndarray of shape (n_dims, n_features)
        Search vectors are ``standardized @ projection.T``.
    predictions : ndarray of shape (n_support,), int
        Encoded predictions of the support points, of any integer type (a
        fit on a cluster keeps the smallest).
    """

    support: object
    projection: np.ndarray
    predictions: np.ndarray


@dataclass(frozen=True)
class SplitState:
    """Adaptor outputs and search results for the rows of one split."""

    logits: np.ndarray
    predictions: np.ndarray
    q: np.ndarray
    nearest: np.ndarray
    d_nearest: np.ndarray
    d: np.ndarray


def index_support(adaptor, standardized, labels, support_factory,
                  projection=None):
    """Search structure of the support split under the current adaptor.

    Parameters
    ----------
    adaptor : ExemplarAdaptor
    standardized : ndarray of shape (n_support, n_features)
    labels : ndarray of shape (n_support,)
        Encoded true labels.
    support_factory : callable
        ``support_factory(vectors, good_labels)`` returns the search structure.
    projection : ndarray, default=None
        The adaptor's search projection, when computed already (the blocks
        of a split on a cluster share one).

    Returns
    -------
    index : SupportIndex
    vectors : ndarray of shape (n_support, n_dims)
        Search vectors of the support points.
    logits : ndarray of shape (n_support, n_classes)
    """
    if projection is None:
        projection = adaptor.search_projection()
    vectors = adaptor.search_vectors(standardized, projection)
    logits = adaptor.logits(standardized)
    predictions = np.argmax(logits, axis=1)
    support = support_factory(vectors, good_classes(predictions, labels))
    return SupportIndex(support, projection, predictions), vectors, logits


def _search(index, vectors, logits, max_similarity, n_jobs, self_indices=None):
    predictions = np.argmax(logits, axis=1)
    q, nearest, d_nearest = index.support.search(
        vectors, predictions, max_similarity, self_indices=self_indices,
        n_jobs=n_jobs,
    )
    return predictions, q, nearest, d_nearest


def search_inputs(index, adaptor, standardized, max_similarity, n_jobs):
    """Logits, predictions, q, nearest point and its distance of inputs.

    Every output of a row depends on that row alone, so the rows may be
    searched in any groups (the blocks of a dask collection, for one).

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
    predictions, q, nearest : ndarray of shape (n_samples,), int
    d_nearest : ndarray of shape (n_samples,)
    """
    logits = adaptor.logits(standardized)
    vectors = adaptor.search_vectors(standardized, index.projection)
    return (logits,) + _search(index, vectors, logits, max_similarity, n_jobs)


def evaluate_support(index, vectors, logits, labels, max_similarity, n_jobs,
                     rows=None):
    """Support points against the whole support set: training weights q, d.

    Each point's self-match is skipped; d comes from the eCDFs of the
    searched points themselves, leaving out classes without
    in-distribution points (see
    :func:`sdm_sklearn._calibration.distance_quantile`).

    Parameters
    ----------
    index : SupportIndex
    vectors, logits : ndarray
        Outputs of :func:`index_support`.
    labels : ndarray of shape (n_support,)
    max_similarity : int
    n_jobs : int
    rows : ndarray of int, default=None
        The support points to search (None: all of them).

    Returns
    -------
    state : SplitState
        For the searched rows, in their order.
    """
    if rows is None:
        rows = np.arange(len(logits))
    logits, labels = logits[rows], labels[rows]
    predictions, q, nearest, d_nearest = _search(
        index, vectors[rows], logits, max_similarity, n_jobs, self_indices=rows,
    )
    values = class_distance_values(d_nearest, labels, q, logits.shape[1])
    d = distance_quantile(d_nearest, values, skip_empty_classes=True)
    return SplitState(logits, predictions, q, nearest, d_nearest, d)


def evaluate_calibration(index, adaptor, standardized, labels, max_similarity,
                         n_jobs):
    """The calibration split against the support set, with its own eCDFs.

    Parameters
    ----------
    index : SupportIndex
    adaptor : ExemplarAdaptor
    standardized : ndarray of shape (n_calibration, n_features)
    labels : ndarray of shape (n_calibration,)
        Encoded true labels.
    max_similarity : int
    n_jobs : int

    Returns
    -------
    state : SplitState
    distance_values : list of ndarray
        Sorted d_nearest of the in-distribution points of every class.
    """
    return calibration_state(
        search_inputs(index, adaptor, standardized, max_similarity, n_jobs),
        labels,
    )


def calibration_state(searched, labels):
    """The calibration split's state and eCDFs from its searched rows.

    Parameters
    ----------
    searched : tuple
        Output of :func:`search_inputs` for the calibration rows.
    labels : ndarray of shape (n_calibration,)
        Encoded true labels.

    Returns
    -------
    state : SplitState
    distance_values : list of ndarray
        Sorted d_nearest of the in-distribution points of every class.
    """
    logits, predictions, q, nearest, d_nearest = searched
    values = class_distance_values(d_nearest, labels, q, logits.shape[1])
    d = distance_quantile(d_nearest, values)
    return SplitState(logits, predictions, q, nearest, d_nearest, d), values


def evaluate_queries(index, adaptor, standardized, max_similarity,
                     distance_values, n_jobs):
    """New inputs against the support set, with the calibration eCDFs.

    Parameters
    ----------
    index : SupportIndex
    adaptor : ExemplarAdaptor
    standardized : ndarray of shape (n_samples, n_features)
    max_similarity : int
    distance_values : list of ndarray
        Output of :func:`evaluate_calibration`.
    n_jobs : int

    Returns
    -------
    state : SplitState
    """
    logits, predictions, q, nearest, d_nearest = search_inputs(
        index, adaptor, standardized, max_similarity, n_jobs
    )
    d = distance_quantile(d_nearest, distance_values)
    return SplitState(logits, predictions, q, nearest, d_nearest, d)


def unplaced(state, rows):
    """``state`` with ``rows`` marked as infinitely far from the support set.

    For inputs that cannot be placed (features that are not finite, or
    overflow float32 once standardized): q = 0, no nearest support point
    (index -1), ``d_nearest`` infinite and d = 0, so that the SDM output is
    uniform and the row is rejected as out of distribution. Their logits
    are those of the all-zero standardized row, the training mean.

    Parameters
    ----------
    state : SplitState
    rows : ndarray of shape (n_samples,), bool

    Returns
    -------
    state : SplitState
    """
    return SplitState(
        state.logits, state.predictions,
        np.where(rows, 0, state.q),
        np.where(rows, -1, state.nearest),
        np.where(rows, np.inf, state.d_nearest),
        np.where(rows, 0.0, state.d),
    )


def balanced_loss(state, labels, sample_weight=None):
    """Mean over classes of the per-class (weighted) mean SDM loss (paper,
    sec. 3.1.6)."""
    return sdm_loss(state.logits, labels, state.q, state.d, class_balanced=True,
                    sample_weight=sample_weight)
