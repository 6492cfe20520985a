"""One training iteration of the exemplar adaptor (SPEC.md sec. 7).

Epoch 1 is plain cross-entropy (``q = e - 2``, ``d = 1``). After every epoch
the calibration split is searched against the support split, and, unless it
was the last epoch, the support split against itself (self-matches skipped)
for the q and d of the next epoch; the epoch with the lowest balanced
calibration loss is kept (later epochs win ties).
"""

from dataclasses import dataclass

import numpy as np

from ._adaptor import ExemplarAdaptor, fit_standardizer
from ._model import (
    balanced_calibration_loss,
    build_support,
    evaluate_calibration,
    evaluate_split,
)


@dataclass
class IterationResult:
    """What one iteration hands back.

    Attributes
    ----------
    adaptor : ExemplarAdaptor
        With the parameters of the best epoch.
    losses : ndarray of shape (n_epochs,)
        Balanced calibration loss after each epoch.
    best_epoch : int
    support_features, calibration_features : ndarray
        Standardized features of the two splits.
    """

    adaptor: ExemplarAdaptor
    losses: np.ndarray
    best_epoch: int
    support_features: np.ndarray
    calibration_features: np.ndarray

    @property
    def best_loss(self):
        return self.losses[self.best_epoch]


def train_iteration(train_features, train_labels, calibration_features,
                    calibration_labels, *, n_classes, n_exemplar_dims, n_epochs,
                    batch_size, learning_rate, max_similarity, standardize,
                    support_factory, rng, log=None):
    """Train one adaptor on a D_tr / D_ca split.

    Parameters
    ----------
    train_features, calibration_features : ndarray
        Raw features of D_tr and D_ca.
    train_labels, calibration_labels : ndarray
        Encoded labels.
    n_classes, n_exemplar_dims, n_epochs, batch_size : int
    learning_rate : float
    max_similarity : int
        Cap on q.
    standardize : {"feature", "global"}
    support_factory : callable
        ``support_factory(vectors, good_labels)`` returns the search structure.
    rng : numpy.random.Generator
    log : callable, default=None
        Called as ``log(epoch, loss)`` after every epoch.

    Returns
    -------
    result : IterationResult
    """
    location, scale = fit_standardizer(train_features, standardize)
    adaptor = ExemplarAdaptor(location, scale, n_exemplar_dims, n_classes, rng)
    train_std = adaptor.standardize(train_features)
    calibration_std = adaptor.standardize(calibration_features)
    optimizer_state = adaptor.new_optimizer_state()
    q = np.full(len(train_labels), np.e - 2.0)
    d = np.ones(len(train_labels))
    losses = np.empty(n_epochs)
    best_epoch, best_params = -1, None
    for epoch in range(n_epochs):
        adaptor.train_epoch(
            train_std, train_labels, q, d, batch_size, learning_rate,
            optimizer_state, rng,
        )
        support, train_vectors, train_logits, projection = build_support(
            adaptor, train_std, train_labels, support_factory
        )
        if epoch + 1 < n_epochs:
            train_state, _ = evaluate_split(
                support, train_vectors, train_logits, train_labels,
                max_similarity, None, self_match=True, training=True,
            )
            q, d = train_state.q, train_state.d
        calibration_state, _ = evaluate_calibration(
            adaptor, support, projection, calibration_std, calibration_labels,
            max_similarity,
        )
        losses[epoch] = balanced_calibration_loss(calibration_state, calibration_labels)
        if log is not None:
            log(epoch, losses[epoch])
        if best_params is None or losses[epoch] <= losses[best_epoch]:
            best_epoch, best_params = epoch, adaptor.params.copy()
    adaptor.params = best_params
    return IterationResult(adaptor, losses, best_epoch, train_std, calibration_std)
