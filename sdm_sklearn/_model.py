"""A fitted SDM model: adaptor, support set and calibration, and its outputs.

``build_support`` and ``evaluate_split`` evaluate an adaptor against its
support and calibration splits (what training does after every epoch);
``SDMModel`` is the calibrated result that answers queries. None of it knows
anything of scikit-learn.
"""

from dataclasses import dataclass, field

import numpy as np

from ._activation import sdm_activation, sdm_loss
from ._calibration import (
    admit,
    class_distance_values,
    class_rescaled_values,
    distance_quantile,
    dkw_epsilon,
    effective_sample_size,
    high_reliability_region,
    rescaled_similarity,
)


def admitted_column(conservative):
    """The ``predict_uncertainty`` column that is the selective answer.

    Parameters
    ----------
    conservative : bool
        The lower (DKW) variant instead of the standard one.

    Returns
    -------
    column : {"admitted", "admitted_lower"}
    """
    return "admitted_lower" if conservative else "admitted"


@dataclass
class SplitState:
    """Adaptor outputs and search results for one split."""

    logits: np.ndarray
    predictions: np.ndarray
    q: np.ndarray
    nearest: np.ndarray
    d_nearest: np.ndarray
    d: np.ndarray


def build_support(adaptor, standardized, labels, support_factory):
    """Search structure of the support split under the current adaptor.

    Parameters
    ----------
    adaptor : ExemplarAdaptor
    standardized : ndarray of shape (n_support, n_features)
    labels : ndarray of shape (n_support,)
        Encoded true labels.
    support_factory : callable
        ``support_factory(vectors, good_labels)`` returns the search structure.

    Returns
    -------
    support : ExactSupport or ApproximateSupport
    search_vectors : ndarray of shape (n_support, n_dims)
    logits : ndarray of shape (n_support, n_classes)
    projection : ndarray
        See :meth:`ExemplarAdaptor.search_projection`.
    """
    projection = adaptor.search_projection()
    search_vectors = adaptor.search_vectors(standardized, projection)
    logits = adaptor.logits(standardized)
    predictions = np.argmax(logits, axis=1)
    good = np.where(predictions == labels, predictions, -1)
    support = support_factory(search_vectors, good)
    return support, search_vectors, logits, projection


def evaluate_split(support, search_vectors, logits, y, max_similarity,
                   class_values, *, self_match=False, training=False):
    """q, d_nearest and d of one split against the support set.

    Parameters
    ----------
    support : ExactSupport or ApproximateSupport
    search_vectors : ndarray of shape (n_samples, n_dims)
    logits : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,) or None
        Encoded true labels; with ``class_values=None`` the eCDFs are built
        from this split itself.
    max_similarity : int
    class_values : list of ndarray or None
        Sorted distances per class to take d from.
    self_match : bool, default=False
        The split IS the support set: skip each point's self-match.
    training : bool, default=False
        d for training weights: classes without in-distribution points are
        left out (see :func:`distance_quantile`).

    Returns
    -------
    state : SplitState
    class_values : list of ndarray
        The eCDF values used.
    """
    predictions = np.argmax(logits, axis=1)
    self_indices = np.arange(len(predictions)) if self_match else None
    q, nearest, d_nearest = support.search(
        search_vectors, predictions, max_similarity, self_indices=self_indices
    )
    if class_values is None:
        class_values = class_distance_values(d_nearest, y, q, logits.shape[1])
    d = distance_quantile(d_nearest, class_values, skip_empty_classes=training)
    return SplitState(logits, predictions, q, nearest, d_nearest, d), class_values


def evaluate_calibration(adaptor, support, projection, standardized, labels,
                         max_similarity):
    """The calibration split against the support set, with its own eCDFs.

    Parameters
    ----------
    adaptor : ExemplarAdaptor
    support : ExactSupport or ApproximateSupport
    projection : ndarray
        The projection the support set was built with.
    standardized : ndarray of shape (n_calibration, n_features)
    labels : ndarray of shape (n_calibration,)
        Encoded true labels.
    max_similarity : int

    Returns
    -------
    state : SplitState
    class_values : list of ndarray
    """
    return evaluate_split(
        support, adaptor.search_vectors(standardized, projection),
        adaptor.logits(standardized), labels, max_similarity, None,
    )


def balanced_calibration_loss(state, y):
    """Mean over classes of the per-class mean SDM loss."""
    return sdm_loss(state.logits, y, state.q, state.d, class_balanced=True)


@dataclass
class CalibrationRecord:
    """What the final model says about its calibration split.

    Attributes
    ----------
    labels : ndarray of shape (n_calibration,)
        Encoded true labels.
    predictions : ndarray of shape (n_calibration,)
    probabilities : ndarray of shape (n_calibration, n_classes)
        SDM outputs.
    rescaled_similarity : ndarray of shape (n_calibration,)
        q'.
    """

    labels: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    rescaled_similarity: np.ndarray

    def region(self, alpha):
        """``(q'_min, psi)`` of Alg. 1 at ``alpha``."""
        return high_reliability_region(
            self.rescaled_similarity, self.probabilities, self.labels, alpha
        )


@dataclass
class SDMModel:
    """A calibrated SDM model.

    Attributes
    ----------
    adaptor : ExemplarAdaptor
    projection : ndarray of shape (n_dims, n_features)
        Search vectors are ``standardized @ projection.T`` (see
        :meth:`ExemplarAdaptor.search_vectors`).
    support : ExactSupport or ApproximateSupport
    support_labels : ndarray of shape (n_support,)
        Encoded labels of the support points (``-1``: outside the classes).
    support_predictions : ndarray of shape (n_support,)
    max_similarity : int
    distance_values : list of ndarray
        Calibration eCDF values of d_nearest per class.
    calibration : CalibrationRecord
    rescaled_values : list of ndarray
        Calibration q' per class (for effective sample sizes).
    alpha : float
    min_rescaled_similarity : float
    thresholds : ndarray of shape (n_classes,)
    other_regions : dict
        Regions at other alphas, computed on first use.
    """

    adaptor: object
    projection: np.ndarray
    support: object
    support_labels: np.ndarray
    support_predictions: np.ndarray
    max_similarity: int
    distance_values: list
    calibration: CalibrationRecord
    rescaled_values: list
    alpha: float
    min_rescaled_similarity: float
    thresholds: np.ndarray
    other_regions: dict = field(default_factory=dict, repr=False)

    def region(self, alpha):
        """``(q'_min, psi)`` at ``alpha`` (the model's own, or another)."""
        if alpha == self.alpha:
            return self.min_rescaled_similarity, self.thresholds
        if alpha not in self.other_regions:
            self.other_regions[alpha] = self.calibration.region(alpha)
        return self.other_regions[alpha]

    @classmethod
    def calibrate(cls, adaptor, support_features, support_labels,
                  calibration_features, calibration_labels, max_similarity, alpha,
                  support_factory):
        """Build the support set and run Alg. 1 on the calibration split.

        Parameters
        ----------
        adaptor : ExemplarAdaptor
            The selected adaptor.
        support_features, calibration_features : ndarray
            Standardized features of D_tr and D_ca.
        support_labels, calibration_labels : ndarray
            Their encoded labels.
        max_similarity : int
        alpha : float
        support_factory : callable
            ``support_factory(vectors, good_labels)`` returns the search
            structure.

        Returns
        -------
        model : SDMModel
        """
        support, _, support_logits, projection = build_support(
            adaptor, support_features, support_labels, support_factory
        )
        state, distance_values = evaluate_calibration(
            adaptor, support, projection, calibration_features,
            calibration_labels, max_similarity,
        )
        probabilities = sdm_activation(state.logits, state.q, state.d)
        rows = np.arange(len(state.q))
        q_prime = rescaled_similarity(state.q, probabilities[rows, state.predictions])
        calibration = CalibrationRecord(
            calibration_labels, state.predictions, probabilities, q_prime
        )
        q_min, thresholds = calibration.region(alpha)
        return cls(
            adaptor=adaptor,
            projection=projection,
            support=support,
            support_labels=np.asarray(support_labels, dtype=np.int64),
            support_predictions=np.argmax(support_logits, axis=1),
            max_similarity=int(max_similarity),
            distance_values=distance_values,
            calibration=calibration,
            rescaled_values=class_rescaled_values(
                q_prime, calibration_labels, probabilities.shape[1]
            ),
            alpha=alpha,
            min_rescaled_similarity=q_min,
            thresholds=thresholds,
        )

    def search_vectors(self, standardized):
        """Search-space vectors of standardized features."""
        return self.adaptor.search_vectors(standardized, self.projection)

    def exemplars(self, search_vectors):
        """Exemplar vectors h' from search vectors."""
        return self.adaptor.exemplars(search_vectors, self.projection)

    def evaluate(self, standardized):
        """The SplitState of new points against the support set."""
        state, _ = evaluate_split(
            self.support, self.search_vectors(standardized),
            self.adaptor.logits(standardized), None, self.max_similarity,
            self.distance_values,
        )
        return state

    def nearest(self, standardized, n_neighbors):
        """The ``n_neighbors`` nearest support points of every input.

        Returns
        -------
        indices, distances : ndarray of shape (n_samples, n_neighbors)
            Sorted by distance (exact search) or approximately sorted.
        """
        return self.support.nearest(self.search_vectors(standardized), n_neighbors)

    def add_support(self, standardized, labels):
        """Append labeled points to the support set; the adaptor is unchanged.

        Parameters
        ----------
        standardized : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            Encoded labels; ``-1`` for labels outside the classes, which are
            never good for any query.
        """
        predictions = np.argmax(self.adaptor.logits(standardized), axis=1)
        good = np.where(predictions == labels, predictions, -1)
        self.support.add(self.search_vectors(standardized), good)
        self.support_labels = np.concatenate([self.support_labels, labels])
        self.support_predictions = np.concatenate(
            [self.support_predictions, predictions]
        )

    def uncertainty(self, state, *, alpha=None):
        """Every per-prediction quantity of SPEC.md sec. 12.

        Parameters
        ----------
        state : SplitState
            Output of :meth:`evaluate`.
        alpha : float, default=None
            Another target than the model's own: the region and the DKW band
            are those of this alpha.

        Returns
        -------
        columns : dict of str to ndarray
            The per-row quantities ``prediction, q, d_nearest, d, magnitude,
            sdm_probability, rescaled_similarity, is_ood, admitted, d_lower, d_upper,
            sdm_probability_lower, rescaled_similarity_lower, admitted_lower,
            effective_sample_size, nearest_support_index``.
        """
        alpha = self.alpha if alpha is None else alpha
        region = self.region(alpha)
        rows = np.arange(len(state.q))
        yhat = state.predictions
        probabilities = sdm_activation(state.logits, state.q, state.d)
        p_hat = probabilities[rows, yhat]
        q_prime = rescaled_similarity(state.q, p_hat)
        n_min = effective_sample_size(q_prime, self.rescaled_values)
        eps = dkw_epsilon(n_min, alpha)
        d_lower = np.maximum(state.d - eps, 0.0)
        d_upper = np.minimum(state.d + eps, 1.0)
        p_lower = sdm_activation(state.logits, state.q, d_lower)[rows, yhat]
        q_prime_lower = rescaled_similarity(state.q, p_lower)
        return {
            "prediction": yhat,
            "q": state.q,
            "d_nearest": state.d_nearest,
            "d": state.d,
            "magnitude": state.logits[rows, yhat],
            "sdm_probability": p_hat,
            "rescaled_similarity": q_prime,
            "is_ood": np.floor(q_prime) == 0,
            "admitted": admit(q_prime, p_hat, yhat, *region),
            "d_lower": d_lower,
            "d_upper": d_upper,
            "sdm_probability_lower": p_lower,
            "rescaled_similarity_lower": q_prime_lower,
            "admitted_lower": admit(q_prime_lower, p_lower, yhat, *region),
            "effective_sample_size": n_min,
            "nearest_support_index": state.nearest,
        }
