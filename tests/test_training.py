"""Tests for the stratified split and one training iteration (paper, sec. 3.1.6)."""

from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification

import sdm_sklearn._training as training_module
from sdm_sklearn._adam import ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON
from sdm_sklearn._adaptor import ExemplarAdaptor
from sdm_sklearn._exact import ExactSupport
from sdm_sklearn._splitting import COUNT_ROWS, label_counts, stratified_split
from sdm_sklearn._training import (
    Progress,
    TrainingConfig,
    _train_iteration,
    epoch_rows,
    scored_epochs,
    selection_rows,
    warmup_epochs,
)

CLASS_SIZES = [2, 3, 10, 7]
Y_SPLIT = np.repeat(np.arange(4), CLASS_SIZES)
np.random.RandomState(0).shuffle(Y_SPLIT)


@pytest.mark.parametrize(
    "calibration_size, expected_counts",
    [
        # round(0.5 n_c): 1, round(1.5) = 2, 5, round(3.5) = 4.
        (0.5, [1, 2, 5, 4]),
        # round(0.1 n_c) = 0, 0, 1, 1; at least 1 per class.
        (0.1, [1, 1, 1, 1]),
        # round(0.9 n_c) = 2, 3, 9, 6; at most n_c - 1 per class.
        (0.9, [1, 2, 9, 6]),
    ],
)
def test_stratified_split_counts_and_partition(calibration_size, expected_counts):
    support, calibration = stratified_split(
        Y_SPLIT, calibration_size, np.random.default_rng(3)
    )
    assert len(np.intersect1d(support, calibration)) == 0
    assert_array_equal(np.sort(np.concatenate([support, calibration])),
                       np.arange(len(Y_SPLIT)))
    assert_array_equal(support, np.sort(support))
    assert_array_equal(calibration, np.sort(calibration))
    assert_array_equal(np.bincount(Y_SPLIT[calibration], minlength=4),
                       expected_counts)
    assert np.all(np.bincount(Y_SPLIT[support], minlength=4) >= 1)


def test_stratified_split_is_deterministic_for_a_seed():
    first = stratified_split(Y_SPLIT, 0.5, np.random.default_rng(7))
    second = stratified_split(Y_SPLIT, 0.5, np.random.default_rng(7))
    assert_array_equal(first[0], second[0])
    assert_array_equal(first[1], second[1])
    # Other seeds draw other splits.
    others = {
        tuple(stratified_split(Y_SPLIT, 0.5, np.random.default_rng(s))[1])
        for s in range(10)
    }
    assert len(others) > 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64])
@pytest.mark.parametrize("n", [0, 1, COUNT_ROWS, COUNT_ROWS + 3])
def test_label_counts_equal_bincount_for_small_label_types(dtype, n):
    labels = np.random.default_rng(n).integers(0, 7, size=n).astype(dtype)
    counts = label_counts(labels)
    assert counts.dtype == np.int64
    assert_array_equal(counts, np.bincount(labels))


def test_a_split_is_the_same_for_every_index_and_label_type():
    y = np.random.default_rng(5).integers(0, 4, size=500)
    expected = stratified_split(y, 0.3, np.random.default_rng(2))
    for dtype in (np.uint8, np.uint16, np.int32):
        got = stratified_split(y.astype(dtype), 0.3, np.random.default_rng(2),
                               dtype=np.uint16)
        for side, wanted in zip(got, expected, strict=True):
            assert side.dtype == np.uint16
            assert_array_equal(side, wanted)


N_CLASSES, N_DIMS = 3, 5


@pytest.fixture(scope="module")
def splits():
    X, y = make_classification(
        n_samples=160, n_features=6, n_informative=4, n_redundant=0,
        n_classes=N_CLASSES, class_sep=1.5, random_state=0,
    )
    X[:, 2] = 40.0 * X[:, 2] + 7.0  # a feature on another scale
    return X[:80], y[:80], X[80:], y[80:]


def _train(splits, seed, n_epochs, learning_rate=1e-2, warmup_fraction=0.0):
    """One iteration; its losses, best epoch and the adaptor kept."""
    X_tr, y_tr, X_ca, y_ca = splits
    config = TrainingConfig(
        n_exemplar_dims=N_DIMS, n_iterations=1, n_epochs=n_epochs,
        warmup_fraction=warmup_fraction, learning_rate=learning_rate,
        batch_size=16, calibration_size=0.5,
        max_similarity=40, standardize="feature", search="exact",
        ensemble=False, n_jobs=1,
    )
    losses, best = _train_iteration(
        X_tr, y_tr, X_ca, y_ca, n_classes=N_CLASSES, config=config,
        n_epochs=n_epochs, max_similarity=40, factory=ExactSupport,
        rng=np.random.default_rng(seed), progress=Progress(0, 1, n_epochs),
        iteration=0,
    )
    return SimpleNamespace(losses=losses, best_epoch=best.epoch,
                           best_loss=losses[best.epoch], adaptor=best.adaptor)


def _cross_entropy_adam(params, X, y, orders, batch_size, learning_rate):
    """Epochs of Adam on softmax cross entropy, float64, from scratch.

    ``params`` is ``[W1 (M, D), b1 (M,), W2 (C, M), b2 (C,)]``; the model is
    ``z = (x W1^T + b1) W2^T + b2``. One epoch per order of ``orders``; the
    moments and the step count run on across epochs.
    """
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    onehot = np.eye(params[3].shape[0])[y]
    batches = [order[start : start + batch_size] for order in orders
               for start in range(0, len(X), batch_size)]
    for step, index in enumerate(batches, start=1):
        x, target = X[index], onehot[index]
        w1, b1, w2, b2 = params
        hidden = x @ w1.T + b1
        logits = hidden @ w2.T + b2
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        grad_logits = (exp / exp.sum(axis=1, keepdims=True) - target) / len(index)
        grad_hidden = grad_logits @ w2
        grads = [grad_hidden.T @ x, grad_hidden.sum(axis=0),
                 grad_logits.T @ hidden, grad_logits.sum(axis=0)]
        for p, g, m, v in zip(params, grads, first, second, strict=True):
            m *= ADAM_BETA1
            m += (1 - ADAM_BETA1) * g
            v *= ADAM_BETA2
            v += (1 - ADAM_BETA2) * g * g
            m_hat = m / (1 - ADAM_BETA1**step)
            v_hat = v / (1 - ADAM_BETA2**step)
            p -= learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON)
    return params


def _cross_entropy(params, X, y):
    w1, b1, w2, b2 = params
    logits = (X @ w1.T + b1) @ w2.T + b2
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_norm - logits[np.arange(len(y)), y]))


def _unflatten(flat, n_features):
    sizes = [N_DIMS * n_features, N_DIMS, N_CLASSES * N_DIMS, N_CLASSES]
    parts = np.split(np.asarray(flat, dtype=np.float64), np.cumsum(sizes)[:-1])
    shapes = [(N_DIMS, n_features), (N_DIMS,), (N_CLASSES, N_DIMS), (N_CLASSES,)]
    return [part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)]


def test_first_epoch_is_softmax_cross_entropy_training(splits):
    X_tr, y_tr = splits[0], splits[1]
    seed, learning_rate = 5, 1e-2
    result = _train(splits, seed, n_epochs=1, learning_rate=learning_rate)
    assert result.losses.shape == (1,)
    assert np.isfinite(result.losses[0])
    assert result.best_epoch == 0

    # Replay the iteration's random stream: the initial weights come first,
    # then the mini-batch order of epoch 1.
    rng = np.random.default_rng(seed)
    location, scale = X_tr.mean(axis=0), X_tr.std(axis=0)
    initial = ExemplarAdaptor(location, scale, N_DIMS, N_CLASSES, rng).params
    order = rng.permutation(len(y_tr))
    standardized = (X_tr - location) / scale
    assert_allclose(result.adaptor.standardize(X_tr), standardized, rtol=1e-5,
                    atol=1e-5)

    start = _unflatten(initial, X_tr.shape[1])
    expected = _cross_entropy_adam(
        [p.copy() for p in start], standardized, y_tr, [order], 16, learning_rate
    )
    trained = _unflatten(result.adaptor.params, X_tr.shape[1])
    # float32 training against a float64 replay over 5 Adam steps.
    for actual, wanted in zip(trained, expected, strict=True):
        assert_allclose(actual, wanted, rtol=0, atol=1e-6)
    assert _cross_entropy(trained, standardized, y_tr) < _cross_entropy(
        start, standardized, y_tr
    )


@pytest.mark.parametrize("warmup_fraction, n_warmup", [(0.0, 1), (0.5, 2), (1.0, 4)])
def test_warmup_epochs_are_cross_entropy_training(splits, monkeypatch,
                                                   warmup_fraction, n_warmup):
    """The first ceil(fraction x n_epochs) epochs (at least 1) are plain
    cross-entropy; every later one trains on the SDM loss with the q and d
    of a support search made just before it."""
    X_tr, y_tr = splits[0], splits[1]
    seed, learning_rate, n_epochs = 5, 1e-2, 4
    after_epoch, searches = [], []
    original_epoch = ExemplarAdaptor.train_epoch
    original_search = training_module.evaluate_support

    def train_epoch(adaptor, *args, **kwargs):
        original_epoch(adaptor, *args, **kwargs)
        after_epoch.append(adaptor.params.copy())

    def evaluate_support(*args, **kwargs):
        searches.append(len(after_epoch))
        return original_search(*args, **kwargs)

    monkeypatch.setattr(ExemplarAdaptor, "train_epoch", train_epoch)
    monkeypatch.setattr(training_module, "evaluate_support", evaluate_support)
    _train(splits, seed, n_epochs=n_epochs, learning_rate=learning_rate,
           warmup_fraction=warmup_fraction)
    # q and d are searched after each epoch that precedes an SDM epoch.
    assert searches == list(range(n_warmup, n_epochs))

    rng = np.random.default_rng(seed)
    location, scale = X_tr.mean(axis=0), X_tr.std(axis=0)
    start = _unflatten(
        ExemplarAdaptor(location, scale, N_DIMS, N_CLASSES, rng).params,
        X_tr.shape[1],
    )
    orders = [rng.permutation(len(y_tr)) for _ in range(n_epochs)]
    standardized = (X_tr - location) / scale
    for epoch in range(n_epochs):
        expected = _cross_entropy_adam([p.copy() for p in start], standardized,
                                       y_tr, orders[: epoch + 1], 16,
                                       learning_rate)
        trained = _unflatten(after_epoch[epoch], X_tr.shape[1])
        differences = [np.max(np.abs(a - w))
                       for a, w in zip(trained, expected, strict=True)]
        if epoch < n_warmup:
            # float32 training against a float64 replay
            assert max(differences) < 1e-5
        else:
            # the SDM loss weighs each point's gradient by its d
            assert max(differences) > 1e-3


def test_same_seed_gives_bit_identical_iteration(splits):
    first = _train(splits, seed=11, n_epochs=3)
    second = _train(splits, seed=11, n_epochs=3)
    assert first.adaptor.params.dtype == np.float32
    assert first.adaptor.params.tobytes() == second.adaptor.params.tobytes()
    assert first.losses.tobytes() == second.losses.tobytes()
    assert first.best_epoch == second.best_epoch
    other = _train(splits, seed=12, n_epochs=3)
    assert not np.array_equal(first.adaptor.params, other.adaptor.params)


def test_kept_parameters_are_those_of_the_best_epoch(splits):
    # A large step makes the calibration loss rise after a few epochs.
    result = _train(splits, seed=0, n_epochs=8, learning_rate=3e-2)
    assert result.losses.shape == (8,)
    assert np.all(np.isfinite(result.losses))
    assert result.losses[result.best_epoch] == result.losses.min()
    assert result.best_loss == result.losses.min()
    # Training is sequential and deterministic, so a run stopped right after
    # the best epoch ends with the parameters the full run kept.
    assert result.best_epoch < 7
    stopped = _train(splits, seed=0, n_epochs=result.best_epoch + 1,
                     learning_rate=3e-2)
    assert_array_equal(stopped.losses, result.losses[: result.best_epoch + 1])
    assert stopped.best_epoch == result.best_epoch
    assert stopped.adaptor.params.tobytes() == result.adaptor.params.tobytes()


# ------------------------------------------------------------ large splits


def test_rounds_cover_the_support_split_in_permutation_slices():
    rng = np.random.default_rng(0)
    rounds = epoch_rows(5, 25, rng, automatic=False)
    assert rounds == [None] * 5
    from sdm_sklearn import _training

    size = _training.ROUND_ROWS
    rounds = epoch_rows(4, int(2.5 * size), rng, automatic=True)
    assert [len(r) for r in rounds] == [size] * 4
    # the first two rounds are disjoint; every point is met before repeats
    assert len(np.intersect1d(rounds[0], rounds[1])) == 0
    assert len(np.unique(np.concatenate(rounds[:2]))) == 2 * size


def test_selection_rows_are_stratified():
    from sdm_sklearn import _training

    labels = np.repeat([0, 1, 2], [_training.SELECTION_ROWS, 50, 2000])
    rows = selection_rows(labels, np.random.default_rng(0))
    counts = np.bincount(labels[rows])
    assert counts[1] == 50  # a small class is kept whole
    assert abs(len(rows) - _training.SELECTION_ROWS) < 200
    assert selection_rows(labels[:100], np.random.default_rng(0)) is None


def test_scored_epochs_leave_out_the_early_warmup_rounds():
    assert scored_epochs([None] * 6, 3).all()
    rounds = [np.arange(4)] * 6
    assert_array_equal(scored_epochs(rounds, 3), [0, 0, 1, 1, 1, 1])
    assert_array_equal(scored_epochs(rounds, 1), [1] * 6)
    # cross-entropy throughout: the last epoch alone is scored
    assert_array_equal(scored_epochs(rounds, 6), [0, 0, 0, 0, 0, 1])


# a round of 60 support points leaves no region; the schedule is the point
@pytest.mark.filterwarnings(
    "ignore::sdm_sklearn.exceptions.NoHighReliabilityRegionWarning")
def test_unscored_warmup_rounds_are_neither_indexed_nor_kept(monkeypatch):
    from sdm_sklearn import SDMClassifier

    monkeypatch.setattr(training_module, "ROUND_ROWS", 60)
    indexed = []
    original = training_module.index_support

    def counting_index(*args, **kwargs):
        indexed.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(training_module, "index_support", counting_index)
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4,
                               n_redundant=0, n_classes=3, random_state=1)
    clf = SDMClassifier(n_iterations=1, warmup_fraction=0.3, alpha=0.8,
                        random_state=0).fit(X, y)
    n_warmup = warmup_epochs(0.3, clf.n_epochs_)
    losses = clf.calibration_loss_[0]
    assert 1 < n_warmup < clf.n_epochs_
    assert np.isnan(losses[: n_warmup - 1]).all()
    assert np.isfinite(losses[n_warmup - 1 :]).all()
    assert len(indexed) == clf.n_epochs_ - (n_warmup - 1)
    # the lowest scored loss is kept, later epochs winning ties
    best = clf.n_epochs_ - 1 - np.nanargmin(losses[::-1])
    assert clf.best_epoch_ == best


def test_large_split_schedule_keeps_the_final_calibration_exact(monkeypatch):
    from sdm_sklearn import SDMClassifier, _training

    monkeypatch.setattr(_training, "ROUND_ROWS", 60)
    monkeypatch.setattr(_training, "SELECTION_ROWS", 50)
    monkeypatch.setattr(_training, "MIN_SELECTION_ROWS_PER_CLASS", 5)
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4,
                               n_redundant=0, n_classes=3, random_state=1)
    clf = SDMClassifier(n_iterations=2, alpha=0.8, random_state=0).fit(X, y)
    record = clf._model.calibration
    assert len(record.labels) == len(clf.calibration_ids_) > 150
    rows = np.asarray(clf.calibration_ids_)
    frame = clf.predict_uncertainty(X[rows])
    assert_array_equal(frame["rescaled_similarity"], record.rescaled_similarity)
    assert_array_equal(frame["prediction"], clf.classes_[record.predictions])
    # an explicit n_epochs keeps full passes and every calibration point
    explicit = SDMClassifier(n_iterations=1, n_epochs=3, alpha=0.8,
                             random_state=0).fit(X, y)
    assert explicit.n_epochs_ == 3
