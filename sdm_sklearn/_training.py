"""Training: iterations x epochs, and the calibrated model of the best epoch.

:func:`fit_sdm` owns the whole loop of the method (paper, sec. 3.1.6 and
A.4): for each of ``n_iterations`` random support/calibration splits, a
fresh adaptor is trained for ``n_epochs`` epochs (with a producer fitted
during ``fit``, the iterations share one split and its producer: see
:func:`shares_split`). The first
:func:`warmup_epochs` of them (epoch 1 at least, as in the paper) are plain
cross-entropy (``q = e - 2``, ``d = 1``). After every epoch (but see large
splits below) the calibration split is searched against the support split
and its balanced SDM loss is recorded; before every SDM epoch the support
split is searched against itself (self-matches skipped) for its q and d.
The epoch with the lowest balanced calibration loss is kept (later epochs
win ties), and the iteration with the lowest of those. The model is built
from the state its best epoch computed: nothing is searched again.

Large splits (the cost of an exact epoch grows with the square of the
split sizes), with ``n_epochs="auto"`` only:

- when the support split has more than ``ROUND_ROWS`` points, the epochs are
  rounds of ``ROUND_ROWS`` support points (consecutive slices of a random
  permutation, drawn again once used up), so each round trains on, and
  searches the training weights of, ``ROUND_ROWS`` points;
- when the calibration split has more than ``SELECTION_ROWS`` points, the
  epochs are compared on a stratified random subset of that many
  calibration points (the balanced loss is a mean: with thousands of points
  its standard error is small, and every epoch is scored on the same
  subset), and the kept epoch's model is then calibrated on the whole
  calibration split, exactly;
- with rounds, the warm-up epochs before the last are not scored (their
  loss is NaN) and the support split is not indexed after them (see
  :func:`scored_epochs`).

The final model's q, d_nearest, eCDFs and region therefore stay exact
(with ``search="exact"``) at every size. With an approximate backend, the
per-epoch searches of training use FAISS cells probed more coarsely when
``search`` resolves to "faiss", and exact search for pynndescent (see
:func:`sdm_sklearn._search.training_factory`); the kept epoch's model
gets the backend's own index, with which it is calibrated.
"""

import copy
import math
import time
from dataclasses import dataclass, replace

import numpy as np
from sklearn.utils import check_random_state

from ._adaptor import ExemplarAdaptor, fit_standardizer
from ._calibration import as_printed
from ._dask_fit import is_on_cluster
from ._evaluation import (
    balanced_loss,
    evaluate_calibration,
    evaluate_support,
    index_support,
)
from ._features import (
    frozen_producer,
    is_frozen,
    produce,
    resolve_append,
    split_features,
)
from ._model import calibrated_model
from ._search import (
    keeps_training_index,
    resolve_search,
    support_factory,
    training_factory,
)
from ._splitting import (
    calibration_counts,
    label_counts,
    stratified_split,
    stratified_subset,
)

# n_epochs="auto": about this many mini-batch steps per iteration, within
# these bounds on the number of epochs. With the default warm-up of half the
# epochs, the SDM epochs alone make about 1000 steps (at most 50 epochs).
# Measured in benchmarks/bench_accuracy.py ("Point predictor").
AUTO_STEPS = 2000
AUTO_MIN_EPOCHS = 5
AUTO_MAX_EPOCHS = 100
# Large splits with n_epochs="auto" (see the module docstring): support rows
# per round, and calibration rows that score the epochs. Measured in
# benchmarks/bench_fit.py ("large splits").
ROUND_ROWS = 10_000
SELECTION_ROWS = 5_000
MIN_SELECTION_ROWS_PER_CLASS = 100


@dataclass(frozen=True)
class TrainingConfig:
    """The hyper-parameters of training (see :class:`SDMClassifier`)."""

    n_exemplar_dims: int
    n_iterations: int
    n_epochs: object
    warmup_fraction: float
    learning_rate: float
    batch_size: int
    calibration_size: float
    max_similarity: object
    standardize: str
    search: str
    ensemble: bool
    n_jobs: int
    response_method: str = "auto"
    append_features: object = "auto"
    share_split: bool = True


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`fit_sdm` hands back.

    Attributes
    ----------
    model : SDMModel
        The selected iteration's model, calibrated at ``alpha`` (with the
        other iterations' models as members for an ensemble).
    losses : ndarray of shape (n_iterations, n_epochs)
        Balanced calibration loss after every epoch.
    best_iteration, best_epoch : int
    n_epochs : int
    search : {"exact", "faiss", "approximate", "dask"}
        What the ``search`` setting resolved to.
    """

    model: object
    losses: np.ndarray
    best_iteration: int
    best_epoch: int
    n_epochs: int
    search: str


def resolve_epochs(n_epochs, n_support, batch_size):
    """``n_epochs``, with "auto" turned into about ``AUTO_STEPS`` steps."""
    if n_epochs != "auto":
        return int(n_epochs)
    steps_per_epoch = math.ceil(min(n_support, ROUND_ROWS) / batch_size)
    epochs = math.ceil(AUTO_STEPS / steps_per_epoch)
    return int(min(max(epochs, AUTO_MIN_EPOCHS), AUTO_MAX_EPOCHS))


def warmup_epochs(warmup_fraction, n_epochs):
    """The number of plain cross-entropy epochs that open an iteration.

    ``ceil(warmup_fraction * n_epochs)`` (the fraction read as the decimal
    it prints as, so 0.7 of 10 epochs is 7), and at least 1: the paper's
    schedule (epoch 1 only) is ``warmup_fraction=0``.
    """
    return max(1, math.ceil(as_printed(warmup_fraction) * n_epochs))


def epoch_rows(n_epochs, n_support, rng, automatic):
    """The support rows each epoch trains on (None: all of them).

    Rounds of ``ROUND_ROWS`` rows when ``automatic`` and the support split
    is larger (see the module docstring); full passes otherwise.
    """
    if not automatic or n_support <= ROUND_ROWS:
        return [None] * n_epochs
    rounds, order = [], np.empty(0, dtype=np.int64)
    while len(rounds) < n_epochs:
        if len(order) < ROUND_ROWS:
            order = np.concatenate([order, rng.permutation(n_support)])
        rounds.append(np.sort(order[:ROUND_ROWS]))
        order = order[ROUND_ROWS:]
    return rounds


def scored_epochs(rounds, n_warmup):
    """Which epochs are scored on the calibration split (a boolean mask).

    Every epoch on full passes; with rounds (``rounds`` from
    :func:`epoch_rows`), every epoch from the last warm-up one on. A
    cross-entropy round is followed by another on fresh support rows, so
    the last warm-up round stands for the ones before it; scoring those
    would cost a search of the calibration subset and an index of the
    support split each (measured in ``benchmarks/README.md``, "Fit at
    scale").
    """
    scored = np.ones(len(rounds), dtype=bool)
    if rounds[0] is not None:
        scored[: n_warmup - 1] = False
    return scored


def selection_rows(labels, rng):
    """Calibration rows that score the epochs: all, or a stratified subset.

    Parameters
    ----------
    labels : ndarray of shape (n_calibration,)
        Encoded labels.
    rng : numpy.random.Generator
        Used only for a subset.

    Returns
    -------
    rows : ndarray of int or None
        None when every calibration point scores the epochs. Otherwise
        about ``SELECTION_ROWS`` rows (see
        :func:`~sdm_sklearn._splitting.stratified_subset`).
    """
    return stratified_subset(labels, SELECTION_ROWS, MIN_SELECTION_ROWS_PER_CLASS,
                             rng)


class Progress:
    """Progress lines of a fit: one per iteration (verbose 1), per epoch (2).

    Parameters
    ----------
    verbose : int
    n_iterations, n_epochs : int
    """

    def __init__(self, verbose, n_iterations, n_epochs):
        self.verbose = verbose
        self.n_iterations = n_iterations
        self.n_epochs = n_epochs
        self.start = time.perf_counter()

    def epoch(self, iteration, epoch, loss):
        if self.verbose >= 2:
            outcome = ("not scored (a warm-up round)" if np.isnan(loss)
                       else f"balanced calibration loss {loss:.5f}")
            print(f"[SDMClassifier] iteration {iteration + 1}/{self.n_iterations}"
                  f" epoch {epoch + 1}/{self.n_epochs}: {outcome}", flush=True)

    def iteration(self, iteration, best_epoch, best_loss):
        if self.verbose >= 1:
            elapsed = time.perf_counter() - self.start
            left = elapsed / (iteration + 1) * (self.n_iterations - iteration - 1)
            print(f"[SDMClassifier] iteration {iteration + 1}/{self.n_iterations}"
                  f": best balanced calibration loss {best_loss:.5f} at epoch "
                  f"{best_epoch + 1}/{self.n_epochs}; {elapsed:.1f} s elapsed, "
                  f"about {left:.1f} s left", flush=True)


@dataclass(frozen=True)
class _PendingSplit:
    """A split held in memory for the kept epoch's final calibration.

    ``support`` is standardized; ``calibration`` holds the raw features
    (standardized when :meth:`calibrate` needs them).
    """

    support: np.ndarray
    support_labels: np.ndarray
    calibration: object
    calibration_labels: np.ndarray

    def calibrate(self, adaptor, index, factory, max_similarity, n_jobs):
        """The index of the fitted model and the calibration split's state.

        ``factory`` builds the fitted model's index (None: ``index``, the
        one training built, is that one).

        Returns
        -------
        index : SupportIndex
        state : SplitState
        distance_values : list of ndarray
        """
        if factory is not None:
            index = index_support(adaptor, self.support, self.support_labels,
                                  factory)[0]
        state, values = evaluate_calibration(
            index, adaptor, adaptor.standardize(self.calibration),
            self.calibration_labels, max_similarity, n_jobs,
        )
        return index, state, values


@dataclass
class _EpochState:
    """The state of the best epoch so far of one iteration.

    ``pending`` holds the split when the state is not final yet: when the
    epochs were scored on a subset of the calibration split, when the
    fitted model searches with another backend than training did, or when
    training saw a sample of a split that lives on a cluster (see
    :func:`_finish`).
    """

    adaptor: ExemplarAdaptor
    epoch: int
    index: object
    calibration: object
    distance_values: list
    pending: object = None


def _finish(state, max_similarity, n_jobs, factory):
    """The kept epoch with the fitted model's index, on all calibration points.

    ``factory`` builds the fitted model's index; None when training's index
    is that one already. Nothing is searched again when the state is final.
    """
    if state.pending is None:
        return state
    state.index, state.calibration, state.distance_values = (
        state.pending.calibrate(state.adaptor, state.index, factory,
                                max_similarity, n_jobs)
    )
    state.pending = None
    return state


def _train_iteration(support_features, support_labels, calibration_features,
                     calibration_labels, *, n_classes, config, n_epochs,
                     max_similarity, factory, rng, progress, iteration,
                     final_index=False, final_split=None,
                     support_weight=None, calibration_weight=None):
    """Train one adaptor on a split; the losses and its best epoch's state.

    ``final_index``: the fitted model will search with another backend than
    ``factory``, so the state keeps what :func:`_finish` needs.
    ``final_split``: that split, when it is not the one given here (a split
    on a cluster, of which ``support_features`` is a sample).
    ``support_weight`` (of mean 1) weights the training loss,
    ``calibration_weight`` the balanced loss that chooses the epoch.
    """
    location, scale = fit_standardizer(support_features, config.standardize)
    adaptor = ExemplarAdaptor(location, scale, config.n_exemplar_dims,
                              n_classes, rng)
    support_std = adaptor.standardize(support_features)
    optimizer_state = adaptor.new_optimizer_state()
    rounds = epoch_rows(n_epochs, len(support_labels), rng,
                        automatic=config.n_epochs == "auto")
    scoring = selection_rows(calibration_labels, rng)
    scoring_features, scoring_labels = calibration_features, calibration_labels
    scoring_weight = calibration_weight
    if scoring is not None:
        scoring_features = calibration_features[scoring]
        scoring_labels = calibration_labels[scoring]
        if calibration_weight is not None:
            scoring_weight = calibration_weight[scoring]
    scoring_std = adaptor.standardize(scoring_features)
    q = np.full(len(support_labels), np.e - 2.0)
    d = np.ones(len(support_labels))
    n_warmup = warmup_epochs(config.warmup_fraction, n_epochs)
    scored = scored_epochs(rounds, n_warmup)
    losses = np.full(n_epochs, np.nan)
    best = None
    for epoch, rows in enumerate(rounds):
        # a diverging step overflows; it is reported just below instead
        with np.errstate(over="ignore", invalid="ignore"):
            adaptor.train_epoch(support_std, support_labels, q, d,
                                config.batch_size, config.learning_rate,
                                optimizer_state, rng, rows=rows,
                                sample_weight=support_weight)
        if not np.all(np.isfinite(adaptor.params)):
            raise ValueError(
                f"Training diverged at iteration {iteration + 1}, epoch "
                f"{epoch + 1}: the adaptor's weights are no longer finite. "
                f"Lower learning_rate (now {config.learning_rate!r})."
            )
        if not scored[epoch]:
            progress.epoch(iteration, epoch, losses[epoch])
            continue
        index = vectors = logits = None  # the last epoch's, before the next
        index, vectors, logits = index_support(adaptor, support_std,
                                               support_labels, factory)
        state, values = evaluate_calibration(
            index, adaptor, scoring_std, scoring_labels, max_similarity,
            config.n_jobs,
        )
        losses[epoch] = balanced_loss(state, scoring_labels, scoring_weight)
        progress.epoch(iteration, epoch, losses[epoch])
        if best is None or losses[epoch] <= losses[best.epoch]:
            # a split on a cluster is searched again from its blocks: the
            # sample's index and results are not kept
            searched = ((None, None, None) if final_split is not None
                        else (index, state, values))
            best = _EpochState(copy.deepcopy(adaptor), epoch, *searched)
        if n_warmup <= epoch + 1 < n_epochs:
            following = rounds[epoch + 1]
            support_state = evaluate_support(index, vectors, logits,
                                             support_labels, max_similarity,
                                             config.n_jobs, rows=following)
            if following is None:
                q, d = support_state.q, support_state.d
            else:
                q[following], d[following] = support_state.q, support_state.d
    if final_split is not None:
        best.pending = final_split
    elif scoring is not None or final_index:
        best.pending = _PendingSplit(support_std, support_labels,
                                     calibration_features, calibration_labels)
    progress.iteration(iteration, best.epoch, losses[best.epoch])
    return losses, best


def shares_split(estimator, share_split):
    """Whether every iteration uses the first iteration's split.

    True when ``share_split`` and ``estimator`` is fitted during ``fit`` (a
    classifier or a transformer, not a FrozenEstimator): the producer, its
    cross-fitted support features and the calibration features are then
    computed once and shared, and the iterations differ only in the
    adaptor's initialisation and mini-batch order. A calibration point's
    features still come from a producer fitted on the support split only,
    the same producer that new points go through. Otherwise every iteration
    draws its own split (the paper's J splits).
    """
    return share_split and estimator is not None and not is_frozen(estimator)


@dataclass(frozen=True)
class _IterationSplit:
    """A support/calibration split with its producer and raw features.

    ``training_rows`` are the positions in the support split of the rows
    in ``support_features`` (None: all of them); ``final`` is the whole
    split when it lives on a cluster (see
    :meth:`sdm_sklearn._dask_fit.ClusterFeatures.split`), whose indices
    and support labels are then of the smallest integer types.
    """

    support_index: np.ndarray
    support_labels: np.ndarray
    calibration_index: np.ndarray
    calibration_labels: np.ndarray
    producer: object
    support_features: object
    calibration_features: object
    training_rows: np.ndarray = None
    final: object = None

    @classmethod
    def draw(cls, estimator, X, y, y_encoded, config, append, rng, seed,
             frozen, sample_weight):
        """A stratified split of ``rng`` and the features of both sides."""
        on_cluster = is_on_cluster(X)
        support_index, calibration_index = stratified_split(
            y_encoded, config.calibration_size, rng,
            dtype=X.position_dtype if on_cluster else np.int64,
        )
        support_labels = y_encoded[support_index]
        calibration_labels = y_encoded[calibration_index].astype(
            np.int64, copy=False)
        if on_cluster:
            return cls(**X.split(support_index, support_labels,
                                 calibration_index, calibration_labels, seed))
        producer, support_features, calibration_features = split_features(
            estimator, X, y, support_index, calibration_index,
            response_method=config.response_method,
            append_features=append, seed=seed, frozen=frozen,
            sample_weight=None if sample_weight is None
            else sample_weight[support_index],
        )
        return cls(support_index, support_labels, calibration_index,
                   calibration_labels, producer, support_features,
                   calibration_features)


@dataclass(frozen=True)
class _Candidate:
    """One trained iteration: its best epoch's state, split and cap."""

    iteration: int
    state: _EpochState
    split: _IterationSplit
    cap: int
    seed: int


def support_weights(sample_weight, support_index):
    """The support split's weights, normalized to mean 1 (None: none).

    Raises
    ------
    ValueError
        When every support point has weight 0.
    """
    if sample_weight is None:
        return None
    weights = sample_weight[support_index]
    total = weights.sum()
    if not total > 0:
        raise ValueError(
            "sample_weight is 0 on every point of a support split: the "
            "adaptor would learn from nothing. Give positive weights to "
            "more points."
        )
    return weights * (len(weights) / total)


def fit_sdm(X, y, y_encoded, classes, ids, *, estimator, config, alpha,
            confidence, random_state, verbose=0, sample_weight=None):
    """Train every iteration and calibrate the selected model.

    Parameters
    ----------
    X : validated features, the producer's input, or ClusterFeatures
        (the features of rows that stay on a cluster: the adaptor trains on
        a sample of each support split, see :mod:`sdm_sklearn._dask_fit`)
    y : ndarray of shape (n_samples,)
        Labels as given (passed to a producer's ``fit_transform``).
    y_encoded : ndarray of shape (n_samples,)
        Labels encoded as ``0 .. n_classes - 1`` (in the smallest integer
        type for ClusterFeatures).
    classes : ndarray of shape (n_classes,)
    ids : ndarray of shape (n_samples,) or None
        Identifiers of the rows (None: their positions, which the model
        then shares with the split's indices).
    estimator : None, transformer, Pipeline or FrozenEstimator
    config : TrainingConfig
    alpha : float
    confidence : float or None
        Certify the region at this confidence (None: the paper's Alg. 1).
    random_state : int, RandomState instance or None
    verbose : int, default=0
    sample_weight : ndarray of shape (n_samples,), default=None
        Validated, nonnegative. Weights the base model's fit (where it
        accepts them), the adaptor's loss and the balanced loss that picks
        the epoch and the iteration; never the split, q, d or the region.

    Returns
    -------
    result : TrainingResult
    """
    seeds = check_random_state(random_state).randint(
        np.iinfo(np.int32).max, size=config.n_iterations
    )
    class_counts = label_counts(y_encoded)
    n_support = len(y_encoded) - calibration_counts(
        class_counts, config.calibration_size
    ).sum()
    n_epochs = resolve_epochs(config.n_epochs, n_support, config.batch_size)
    search = resolve_search(config.search, n_support)
    keeps_index = keeps_training_index(search)
    progress = Progress(verbose, config.n_iterations, n_epochs)
    append = False if is_on_cluster(X) else resolve_append(
        config.append_features, X)
    frozen = None
    if is_frozen(estimator) and not is_on_cluster(X):
        producer = frozen_producer(estimator, config.response_method, append, X)
        frozen = (producer, produce(producer, X))

    losses = np.empty((config.n_iterations, n_epochs))
    kept, best, shared = [], None, None
    for iteration, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        if shared is None:
            split = _IterationSplit.draw(
                estimator, X, y, y_encoded, config, append, rng, int(seed),
                frozen, sample_weight,
            )
            if shares_split(estimator, config.share_split):
                shared = split
        else:
            split = shared
        cap = config.max_similarity
        if cap is None:
            cap = int(label_counts(split.support_labels).max())
        rows = split.training_rows
        trained = split.support_index if rows is None else split.support_index[rows]
        trained_labels = (split.support_labels if rows is None
                          else split.support_labels[rows])
        losses[iteration], state = _train_iteration(
            split.support_features, trained_labels.astype(np.int64, copy=False),
            split.calibration_features, split.calibration_labels,
            n_classes=len(classes), config=config, n_epochs=n_epochs,
            max_similarity=cap,
            factory=training_factory(search, seed,
                                     in_process=split.final is not None),
            rng=rng, progress=progress, iteration=iteration,
            final_index=not keeps_index, final_split=split.final,
            support_weight=support_weights(sample_weight, trained),
            calibration_weight=None if sample_weight is None
            else sample_weight[split.calibration_index],
        )
        # the model needs the split's rows, not their features
        candidate = _Candidate(iteration, state, replace(
            split, support_features=None, calibration_features=None), cap, seed)
        if best is None or losses[iteration, state.epoch] <= (
            losses[best.iteration, best.state.epoch]
        ):
            best = candidate
        # only the best so far is kept, unless every iteration is a member
        kept = [*kept, candidate] if config.ensemble else [best]
        # a candidate that is not kept frees its split before the next one
        del split, trained, trained_labels, state, candidate

    def model_of(candidate):
        split = candidate.split
        final_factory = (None if keeps_index
                         else support_factory(search, candidate.seed))
        state = _finish(candidate.state, candidate.cap, config.n_jobs,
                        final_factory)
        return calibrated_model(
            classes=classes, producer=split.producer, adaptor=state.adaptor,
            index=state.index, support_labels=split.support_labels,
            support_ids=split.support_index.astype(np.int64, copy=False)
            if ids is None else ids[split.support_index],
            max_similarity=candidate.cap, state=state.calibration,
            distance_values=state.distance_values,
            calibration_labels=split.calibration_labels,
            calibration_ids=split.calibration_index.astype(np.int64, copy=False)
            if ids is None else ids[split.calibration_index], alpha=alpha,
            confidence=confidence, n_seen=len(y_encoded),
        )

    members = tuple(model_of(candidate) for candidate in kept
                    if candidate is not best)
    return TrainingResult(
        model=replace(model_of(best), members=members),
        losses=losses,
        best_iteration=best.iteration,
        best_epoch=best.state.epoch,
        n_epochs=n_epochs,
        search=search,
    )
