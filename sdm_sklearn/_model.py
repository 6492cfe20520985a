"""The fitted SDM model: the only door for predictions and diagnostics.

An :class:`SDMModel` holds everything a fit produced for one iteration: the
feature producer, the exemplar adaptor, the indexed support set, the
calibration split's eCDFs and record, and the region at ``alpha``; an
ensemble model also holds the models of the other iterations. Its methods
take inputs (validated features, or what the producer takes) and return
plain arrays keyed by column name. Models are immutable: ``add_support`` and
``recalibrate`` return new models, so that a reader holding a model never
sees half of an update.

Inputs stream through in chunks of ``CHUNK_ROWS`` rows, so that memory
beyond the outputs does not grow with the number of rows, and every product
runs in fixed-size row blocks (:mod:`sdm_sklearn._blocks`), so that a row's
outputs never depend on the other rows of the call.
"""

from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples

from ._activation import limit_scores, sdm_activation, softmax
from ._calibration import (
    admit_at,
    class_rescaled_values,
    dkw_epsilon,
    effective_sample_size,
    minimum_region_count,
    region_ladder,
    rejection_reasons,
    rescaled_similarity,
)
from ._evaluation import SupportIndex, evaluate_queries, unplaced
from ._exact import good_classes
from ._features import produce

# The per-prediction columns of predict_uncertainty, in order; an ensemble
# adds the optional one.
UNCERTAINTY_COLUMNS = (
    "prediction",
    "q",
    "d_nearest",
    "d",
    "magnitude",
    "sdm_probability",
    "rescaled_similarity",
    "is_ood",
    "admitted",
    "d_lower",
    "d_upper",
    "sdm_probability_lower",
    "rescaled_similarity_lower",
    "admitted_lower",
    "effective_sample_size",
    "nearest_support_index",
    "assigned_alpha",
    "reason",
)
OPTIONAL_COLUMNS = ("admitted_ensemble",)
# Rows of input processed at once.
CHUNK_ROWS = 16_384


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


def concatenate_values(old, new):
    """Append label-like values, keeping different kinds apart (object dtype)."""
    new = np.asarray(new)
    if old.dtype.kind != new.dtype.kind:
        old, new = old.astype(object), new.astype(object)
    return np.concatenate([old, new])


@dataclass(frozen=True)
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
    d_nearest : ndarray of shape (n_calibration,)
        Distance to the nearest support point.
    ids : ndarray of shape (n_calibration,)
        The user's identifiers of the calibration points.
    """

    labels: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    rescaled_similarity: np.ndarray
    d_nearest: np.ndarray
    ids: np.ndarray

    def ladder(self, levels, confidence):
        """``(q'_min, psi)`` per level of a decreasing ladder (nested).

        See :func:`~sdm_sklearn._calibration.region_ladder`.
        """
        return region_ladder(self.rescaled_similarity, self.probabilities,
                             self.labels, levels, confidence)


def _sdm_outputs(state):
    """The SDM activation of a split's state, and p-hat and q' of its predictions.

    Parameters
    ----------
    state : SplitState

    Returns
    -------
    probabilities : ndarray of shape (n_rows, n_classes)
    p_hat : ndarray of shape (n_rows,)
        The probability of every row's predicted class.
    q_prime : ndarray of shape (n_rows,)
        The rescaled similarity q' of every row.
    """
    probabilities = sdm_activation(state.logits, state.q, state.d)
    p_hat = probabilities[np.arange(len(state.q)), state.predictions]
    return probabilities, p_hat, rescaled_similarity(state.q, p_hat)


def calibrated_model(*, classes, producer, adaptor, index, support_labels,
                     support_ids, max_similarity, state, distance_values,
                     calibration_labels, calibration_ids, alpha, confidence,
                     n_seen):
    """The SDMModel of one iteration, from its best epoch's evaluation.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
    producer : fitted transformer or None
    adaptor : ExemplarAdaptor
        With the parameters of the best epoch.
    index : SupportIndex
        The support split indexed at the best epoch.
    support_labels : ndarray of shape (n_support,)
        Encoded labels.
    support_ids, calibration_ids : ndarray
        The user's identifiers of both splits.
    max_similarity : int
    state : SplitState
        The calibration split evaluated at the best epoch.
    distance_values : list of ndarray
        Its eCDF values.
    calibration_labels : ndarray of shape (n_calibration,)
        Encoded labels.
    alpha : float
    confidence : float or None
        Certify the region at this confidence; None: the paper's Alg. 1.
    n_seen : int
        Number of training rows (default identifiers of later points
        continue from there).

    Returns
    -------
    model : SDMModel
    """
    probabilities, _, q_prime = _sdm_outputs(state)
    calibration = CalibrationRecord(
        calibration_labels, state.predictions, probabilities, q_prime,
        state.d_nearest, calibration_ids,
    )
    ((q_min, thresholds),) = calibration.ladder((alpha,), confidence)
    return SDMModel(
        classes=classes,
        producer=producer,
        adaptor=adaptor,
        index=index,
        support_labels=support_labels,
        support_values=None,
        support_ids=support_ids,
        max_similarity=int(max_similarity),
        distance_values=distance_values,
        calibration=calibration,
        rescaled_values=class_rescaled_values(q_prime, calibration_labels,
                                              len(classes)),
        alpha=alpha,
        confidence=confidence,
        min_rescaled_similarity=q_min,
        thresholds=thresholds,
        n_seen=n_seen,
    )


@dataclass(frozen=True)
class SDMModel:
    """A calibrated SDM model (see the module docstring).

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
    producer : fitted transformer or None
    adaptor : ExemplarAdaptor
    index : SupportIndex
    support_labels : ndarray of shape (n_support,), int
        Encoded labels (``-1``: outside the classes, added by
        :meth:`with_support`), of any integer type (a fit on a cluster
        keeps the smallest).
    support_values : ndarray of shape (n_support,) or None
        The labels as the user gave them; None while they are
        ``classes[support_labels]`` (see :meth:`support_values_at`).
    support_ids : ndarray of shape (n_support,)
    max_similarity : int
    distance_values : list of ndarray
        Calibration eCDF values of d_nearest per class.
    calibration : CalibrationRecord
    rescaled_values : list of ndarray
        Calibration q' per class (for effective sample sizes).
    alpha : float
    confidence : float or None
        The region is certified at this confidence (None: Alg. 1).
    min_rescaled_similarity : float
        q'_min of the region at ``alpha`` alone.
    thresholds : ndarray of shape (n_classes,)
    n_seen : int
        Rows seen by fit and add_support (next default identifier).
    members : tuple of SDMModel
        The other iterations' models of an ensemble (empty otherwise).
    regions : dict
        Ladders of regions (keyed by their levels), computed on first use.
    """

    classes: np.ndarray
    producer: object
    adaptor: object
    index: SupportIndex
    support_labels: np.ndarray
    support_values: object
    support_ids: np.ndarray
    max_similarity: int
    distance_values: list
    calibration: CalibrationRecord
    rescaled_values: list
    alpha: float
    confidence: object
    min_rescaled_similarity: float
    thresholds: np.ndarray
    n_seen: int
    members: tuple = ()
    regions: dict = field(default_factory=dict, repr=False, compare=False)

    # --------------------------------------------------------------- region

    def levels(self, alpha_levels=()):
        """The ladder's levels: ``alpha`` and ``alpha_levels``, decreasing."""
        return tuple(sorted({self.alpha, *alpha_levels}, reverse=True))

    def ladder(self, levels):
        """``(q'_min, psi)`` per level of ``levels`` (see :meth:`levels`)."""
        if levels == (self.alpha,):
            return ((self.min_rescaled_similarity, self.thresholds),)
        if levels not in self.regions:
            self.regions[levels] = self.calibration.ladder(levels, self.confidence)
        return self.regions[levels]

    def region(self, alpha_levels=()):
        """``(q'_min, psi)`` of the level ``alpha`` in its ladder."""
        levels = self.levels(alpha_levels)
        return self.ladder(levels)[levels.index(self.alpha)]

    def recalibrated(self, alpha, confidence):
        """The same model (and its members) with the region at ``alpha``."""
        ((q_min, thresholds),) = self.calibration.ladder((alpha,), confidence)
        return replace(
            self, alpha=alpha, confidence=confidence,
            min_rescaled_similarity=q_min, thresholds=thresholds, regions={},
            members=tuple(member.recalibrated(alpha, confidence)
                          for member in self.members),
        )

    def calibration_columns(self, alpha_levels=()):
        """What the model says about its own calibration points.

        Returns
        -------
        columns : dict of str to ndarray
            ``calibration_id``, ``label``, ``prediction`` (labels),
            ``sdm_probability`` (of the prediction), ``rescaled_similarity``,
            ``d_nearest`` and ``admitted`` (by the region at ``alpha`` or a
            higher level of the ladder, as :meth:`uncertainty` admits).
        """
        record = self.calibration
        p_hat = record.probabilities[np.arange(len(record.labels)),
                                     record.predictions]
        levels = self.levels(alpha_levels)
        above = self.ladder(levels)[:levels.index(self.alpha) + 1]
        return {
            "calibration_id": record.ids,
            "label": self.classes[record.labels],
            "prediction": self.classes[record.predictions],
            "sdm_probability": p_hat,
            "rescaled_similarity": record.rescaled_similarity,
            "d_nearest": record.d_nearest,
            "admitted": admit_at(record.rescaled_similarity, p_hat,
                                 record.predictions, above),
        }

    def region_class_counts(self, min_rescaled_similarity=None):
        """Calibration points of each class with ``q' >= q'_min``.

        ``min_rescaled_similarity``: q'_min (default: the model's own).
        """
        if min_rescaled_similarity is None:
            min_rescaled_similarity = self.min_rescaled_similarity
        record = self.calibration
        inside = record.rescaled_similarity >= min_rescaled_similarity
        return np.bincount(record.labels[inside], minlength=len(self.classes))

    def small_region_classes(self):
        """``{class: count}`` of the classes with few points in the region.

        Few is below :func:`~sdm_sklearn._calibration.minimum_region_count`;
        empty when no region exists or when the region is certified (its
        test accounts for the counts).
        """
        if self.confidence is not None or not np.isfinite(
            self.min_rescaled_similarity
        ):
            return {}
        counts = self.region_class_counts()
        small = np.flatnonzero(counts < minimum_region_count(self.alpha))
        return {self.classes[c]: int(counts[c]) for c in small}

    # ------------------------------------------------------- inputs to state

    @property
    def support_predictions(self):
        """Predicted labels of the support points."""
        return self.classes[self.index.predictions]

    def support_values_at(self, rows=slice(None)):
        """The labels of support points ``rows``, as the user gave them."""
        if self.support_values is None:
            return self.classes[self.support_labels[rows]]
        return self.support_values[rows]

    @property
    def n_features(self):
        """Width of the features the adaptor takes."""
        return len(self.adaptor.location)

    def _input_chunks(self, inputs):
        """The inputs in chunks of ``CHUNK_ROWS`` rows (one chunk if empty)."""
        n_samples = _num_samples(inputs)
        if n_samples <= CHUNK_ROWS:
            yield inputs
            return
        for start in range(0, n_samples, CHUNK_ROWS):
            rows = np.arange(start, min(start + CHUNK_ROWS, n_samples))
            yield _safe_indexing(inputs, rows)

    def _features(self, inputs, strict=True):
        """Raw features of (a chunk of) inputs: the producer's, or the inputs."""
        if self.producer is None:
            return inputs
        return produce(self.producer, inputs, self.n_features, finite=strict)

    def _standardized(self, inputs, strict=True, features=None):
        """Standardized features of (a chunk of) inputs.

        ``strict=False`` (predictions) also returns the rows that can be
        placed (see :meth:`ExemplarAdaptor.standardize`) instead of failing
        on the others. ``features``: the raw features of ``inputs`` when
        already produced (:meth:`_features`).
        """
        if features is None:
            features = self._features(inputs, strict)
        return self.adaptor.standardize(features, strict)

    def _state(self, inputs, n_jobs, features=None):
        standardized, placed = self._standardized(inputs, strict=False,
                                                  features=features)
        state = evaluate_queries(
            self.index, self.adaptor, standardized,
            self.max_similarity, self.distance_values, n_jobs,
        )
        return state if placed.all() else unplaced(state, ~placed)

    def _gather(self, inputs, compute):
        """Concatenate the ``compute(chunk)`` dicts of all chunks."""
        parts = [compute(chunk) for chunk in self._input_chunks(inputs)]
        return {name: np.concatenate([part[name] for part in parts])
                for name in parts[0]}

    # -------------------------------------------------------------- outputs

    def predict(self, inputs):
        """Predicted labels: the argmax of the logits."""
        encoded = self._gather(inputs, lambda chunk: {
            "prediction": np.argmax(
                self.adaptor.logits(self._standardized(chunk, strict=False)[0]),
                axis=1,
            )
        })["prediction"]
        return self.classes[encoded]

    def scores(self, inputs, n_jobs=1):
        """SDM scores with the ``d -> 0+`` limit (see ``limit_scores``)."""
        def compute(chunk):
            state = self._state(chunk, n_jobs)
            return {"scores": limit_scores(state.logits, state.q, state.d)}

        return self._gather(inputs, compute)["scores"]

    def probabilities(self, inputs, n_jobs=1):
        """``softmax`` of :meth:`scores`: the SDM activation, d = 0 as a limit."""
        return softmax(self.scores(inputs, n_jobs))

    def _columns(self, state, alpha_levels=(), conservative=False):
        """The per-row quantities of the SDM estimator at ``alpha``.

        Admission at ``alpha`` is by its region or that of a higher level of
        the ladder (``alpha`` and ``alpha_levels``); ``assigned_alpha`` is
        the highest level admitting the row (0 if none) and ``reason`` the
        code of :func:`~sdm_sklearn._calibration.rejection_reasons`, both
        in the variant chosen by ``conservative``.
        """
        levels = self.levels(alpha_levels)
        ladder = self.ladder(levels)
        above = ladder[:levels.index(self.alpha) + 1]
        rows = np.arange(len(state.q))
        yhat = state.predictions
        _, p_hat, q_prime = _sdm_outputs(state)
        n_min = effective_sample_size(q_prime, self.rescaled_values)
        eps = dkw_epsilon(n_min, self.alpha)
        d_lower = np.maximum(state.d - eps, 0.0)
        d_upper = np.minimum(state.d + eps, 1.0)
        p_lower = sdm_activation(state.logits, state.q, d_lower)[rows, yhat]
        q_prime_lower = rescaled_similarity(state.q, p_lower)
        selected = (q_prime_lower, p_lower) if conservative else (q_prime, p_hat)
        assigned = np.zeros(len(rows))
        for level, region in zip(reversed(levels), reversed(ladder), strict=True):
            # from the lowest level up, so that higher levels overwrite
            assigned[admit_at(*selected, yhat, [region])] = level
        admitted = admit_at(q_prime, p_hat, yhat, above)
        admitted_lower = admit_at(q_prime_lower, p_lower, yhat, above)
        return {
            "prediction": yhat,
            "q": state.q,
            "d_nearest": state.d_nearest,
            "d": state.d,
            "magnitude": state.logits[rows, yhat],
            "sdm_probability": p_hat,
            "rescaled_similarity": q_prime,
            "is_ood": np.floor(q_prime) == 0,
            "admitted": admitted,
            "d_lower": d_lower,
            "d_upper": d_upper,
            "sdm_probability_lower": p_lower,
            "rescaled_similarity_lower": q_prime_lower,
            "admitted_lower": admitted_lower,
            "effective_sample_size": n_min,
            "nearest_support_index": state.nearest,
            "assigned_alpha": assigned,
            "reason": rejection_reasons(
                *selected, yhat, admitted_lower if conservative else admitted,
                *above[-1],
            ),
        }

    def _chunk_uncertainty(self, chunk, conservative, alpha_levels, n_jobs):
        features = self._features(chunk, strict=False)
        columns = self._columns(self._state(chunk, n_jobs, features),
                                alpha_levels, conservative)
        if self.members:
            agreed = columns["admitted_lower"].copy()
            for member in self.members:
                # members of a fit with a fitted producer share it (and its
                # one pass over the chunk); see _training.shares_split
                shared = features if member.producer is self.producer else None
                member_columns = member._columns(
                    member._state(chunk, n_jobs, shared))
                agreed &= member_columns["admitted_lower"]
                agreed &= member_columns["prediction"] == columns["prediction"]
            columns["admitted_ensemble"] = agreed
        return columns

    def uncertainty(self, inputs, *, conservative=False, alpha_levels=(),
                    n_jobs=1):
        """Every per-prediction quantity of the SDM estimator.

        Parameters
        ----------
        inputs : validated features or producer input
        conservative : bool, default=False
            The variant that ``assigned_alpha`` and ``reason`` follow.
        alpha_levels : sequence of float, default=()
            Further levels of the ladder (see :meth:`_columns`).
        n_jobs : int, default=1

        Returns
        -------
        columns : dict of str to ndarray
            ``UNCERTAINTY_COLUMNS`` in order (``prediction`` as labels,
            ``reason`` as codes into ``REASONS``), then
            ``admitted_ensemble`` for an ensemble: admitted only when every
            model predicts the same class and admits it in the lower variant
            (paper, A.7).
        """
        columns = self._gather(inputs, lambda chunk: self._chunk_uncertainty(
            chunk, conservative, alpha_levels, n_jobs
        ))
        columns["prediction"] = self.classes[columns["prediction"]]
        return columns

    def exemplars(self, inputs):
        """Exemplar vectors h' of the inputs."""
        def compute(chunk):
            vectors = self.adaptor.search_vectors(
                self._standardized(chunk), self.index.projection
            )
            return {"exemplars": self._exemplars_of(vectors)}

        return self._gather(inputs, compute)["exemplars"]

    def _exemplars_of(self, vectors):
        return self.adaptor.exemplars(vectors, self.index.projection)

    def support_exemplars(self):
        """Exemplar vectors h' of the support set."""
        return self._exemplars_of(self.index.support.vectors)

    def explain(self, inputs, n_neighbors, n_jobs=1):
        """The nearest support points of every input.

        Returns
        -------
        columns : dict of str to ndarray
            One row per (input, neighbour), nearest first: ``input`` (row
            position), ``rank``, ``support_index``, ``support_id``,
            ``distance``, ``label`` and ``prediction`` of the support point,
            and ``is_good`` (it counts towards the input's q).
        """
        support_good = good_classes(self.index.predictions, self.support_labels)
        offset = [0]

        def compute(chunk):
            standardized = self._standardized(chunk)
            predictions = np.argmax(self.adaptor.logits(standardized), axis=1)
            vectors = self.adaptor.search_vectors(standardized,
                                                  self.index.projection)
            indices, distances = self.index.support.nearest(
                vectors, n_neighbors, n_jobs=n_jobs
            )
            n_rows, k = indices.shape
            flat = indices.ravel()
            positions = np.arange(offset[0], offset[0] + n_rows)
            offset[0] += n_rows
            return {
                "input": np.repeat(positions, k),
                "rank": np.tile(np.arange(1, k + 1), n_rows),
                "support_index": flat,
                "support_id": self.support_ids[flat],
                "distance": distances.ravel(),
                "label": self.support_values_at(flat),
                "prediction": self.classes[self.index.predictions[flat]],
                "is_good": support_good[flat] == np.repeat(predictions, k),
            }

        return self._gather(inputs, compute)

    def calibration_partition(self, inputs, n_jobs=1):
        """Calibration points sharing each input's prediction and floor(q').

        Returns
        -------
        columns : dict of str to ndarray
            One row per (input, calibration point of its partition), inputs
            in order, calibration points in their order: ``input`` (row
            position), ``calibration_id``, ``label``, ``prediction``,
            ``rescaled_similarity``, ``sdm_probability``, ``correct``.
        """
        columns = self._gather(inputs, lambda chunk: self._columns(
            self._state(chunk, n_jobs)
        ))
        record = self.calibration
        n_levels = np.floor(np.concatenate(
            [record.rescaled_similarity, columns["rescaled_similarity"]]
        )).max() + 1
        calibration_keys = (record.predictions * n_levels
                            + np.floor(record.rescaled_similarity))
        input_keys = (columns["prediction"] * n_levels
                      + np.floor(columns["rescaled_similarity"]))
        order = np.argsort(calibration_keys, kind="stable")
        sorted_keys = calibration_keys[order]
        lo = np.searchsorted(sorted_keys, input_keys, side="left")
        hi = np.searchsorted(sorted_keys, input_keys, side="right")
        counts = hi - lo
        inputs_of_rows = np.repeat(np.arange(len(input_keys)), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                                     counts)
        rows = order[np.repeat(lo, counts) + within]
        return {
            "input": inputs_of_rows,
            "calibration_id": record.ids[rows],
            "label": self.classes[record.labels[rows]],
            "prediction": self.classes[record.predictions[rows]],
            "rescaled_similarity": record.rescaled_similarity[rows],
            "sdm_probability": record.probabilities[rows, record.predictions[rows]],
            "correct": record.labels[rows] == record.predictions[rows],
        }

    def with_support(self, inputs, labels, ids):
        """A new model whose support set (and its members') has more points.

        The adaptor, and so every prediction, is unchanged; q and d_nearest
        of later queries change (paper, A.6). The eCDFs, the region, the cap
        and the effective sample sizes stay those of the calibration split.

        Parameters
        ----------
        inputs : validated features or producer input
        labels : ndarray of shape (n_samples,)
            The labels as the user gives them; values outside ``classes``
            are never good for any query.
        ids : ndarray of shape (n_samples,)

        Returns
        -------
        model : SDMModel
        """
        position = {label: index for index, label in enumerate(self.classes)}
        encoded = np.array([position.get(label, -1) for label in labels],
                           dtype=np.int64)
        return self._with_encoded_support(inputs, encoded, labels, ids)

    def _with_encoded_support(self, inputs, encoded, labels, ids):
        standardized = self._standardized(inputs)
        predictions = np.argmax(self.adaptor.logits(standardized), axis=1)
        vectors = self.adaptor.search_vectors(standardized, self.index.projection)
        support = self.index.support.with_points(
            vectors, good_classes(predictions, encoded)
        )
        index = SupportIndex(
            support, self.index.projection,
            np.concatenate([self.index.predictions, predictions]),
        )
        return replace(
            self,
            index=index,
            support_labels=np.concatenate([self.support_labels, encoded]),
            support_values=concatenate_values(self.support_values_at(), labels),
            support_ids=concatenate_values(self.support_ids, ids),
            n_seen=self.n_seen + len(encoded),
            members=tuple(
                member._with_encoded_support(inputs, encoded, labels, ids)
                for member in self.members
            ),
        )

    def for_task_graph(self):
        """The model as it travels in a dask task graph.

        The same model (and members) with every support set in the form
        its backend gives for task graphs (``for_task_graph``): a sharded
        set as references to its shards, which stay on the workers, instead
        of being gathered as when the model is pickled otherwise.

        Returns
        -------
        model : SDMModel
        """
        index = replace(self.index,
                        support=self.index.support.for_task_graph())
        return replace(self, index=index, members=tuple(
            member.for_task_graph() for member in self.members
        ))
