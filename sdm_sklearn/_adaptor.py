"""The exemplar adaptor: standardize, ``h' = W1 h + b1``, ``z' = W2 h' + b2``.

Training is mini-batch Adam on the SDM loss with per-point q and d held fixed
within an epoch (SPEC.md sec. 6-7). Everything runs in float32 with buffers
allocated once per epoch, so the inner loop allocates nothing of size D x M.

The *search space*: ``h'`` is linear in ``h``, so with ``W1 = Q R`` (thin QR,
``R`` of shape ``(min(D, M), D)``) the distance between two exemplars equals
the distance between ``R h``. Nearest-neighbour search runs on these shorter
vectors; exemplars are recovered as ``Q (R h) + b1``.
"""

import numpy as np
from numba import njit

from ._activation import sdm_loss_gradient

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8


@njit(cache=True, nogil=True)
def _adam_step(params, grads, first_moment, second_moment, step_size,
               bias_correction2):
    """In-place Adam update over flat float32 arrays (no weight decay)."""
    for i in range(params.shape[0]):
        g = grads[i]
        m = ADAM_BETA1 * first_moment[i] + (1.0 - ADAM_BETA1) * g
        v = ADAM_BETA2 * second_moment[i] + (1.0 - ADAM_BETA2) * g * g
        first_moment[i] = m
        second_moment[i] = v
        params[i] -= step_size * m / (np.sqrt(v / bias_correction2) + ADAM_EPSILON)


def fit_standardizer(features, mode):
    """Location and scale from training features.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    mode : {"feature", "global"}
        Per-feature statistics, or one scalar mean and std over all entries
        (the reference's choice for language-model embeddings).

    Returns
    -------
    location, scale : ndarray of shape (n_features,)
        Constant columns (or a constant matrix) get scale 1.
    """
    features = np.asarray(features, dtype=np.float64)
    if mode == "global":
        location = np.full(features.shape[1], features.mean())
        scale = np.full(features.shape[1], features.std())
    else:
        location = features.mean(axis=0)
        scale = features.std(axis=0)
    scale[~(scale > np.finfo(np.float64).tiny * 1e10)] = 1.0
    return location, scale


class ExemplarAdaptor:
    """Parameters and arithmetic of one exemplar adaptor.

    Parameters
    ----------
    location, scale : ndarray of shape (n_features,)
        Standardization statistics.
    n_exemplar_dims : int
        M, the dimension of the exemplar vectors.
    n_classes : int
    rng : numpy.random.Generator
        Source of the initial weights (uniform in
        ``+-1/sqrt(fan_in)``, as common deep-learning defaults).
    """

    def __init__(self, location, scale, n_exemplar_dims, n_classes, rng):
        n_features = len(location)
        self.location = location.astype(np.float32)
        self.inv_scale = (1.0 / scale).astype(np.float32)
        shapes = [
            (n_exemplar_dims, n_features),
            (n_exemplar_dims,),
            (n_classes, n_exemplar_dims),
            (n_classes,),
        ]
        sizes = [int(np.prod(s)) for s in shapes]
        bounds = np.repeat(
            [1 / np.sqrt(n_features)] * 2 + [1 / np.sqrt(n_exemplar_dims)] * 2,
            sizes,
        )
        self.params = (rng.uniform(-1.0, 1.0, size=sum(sizes)) * bounds).astype(
            np.float32
        )
        self.shapes = shapes

    def _views(self, flat):
        """Split a flat array into W1, b1, W2, b2 views."""
        views, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            views.append(flat[start : start + size].reshape(shape))
            start += size
        return views

    def standardize(self, features):
        """``(features - location) / scale`` as float32."""
        out = np.asarray(features, dtype=np.float32) - self.location
        out *= self.inv_scale
        return out

    def logits(self, standardized):
        """z' for standardized features, through the collapsed map W2 W1."""
        w1, b1, w2, b2 = self._views(self.params)
        weights = w2 @ w1
        bias = w2 @ b1 + b2
        return standardized @ weights.T + bias

    def search_projection(self):
        """``(P, Q)``: search vectors are ``h P^T``, exemplars ``u Q^T + b1``.

        ``P = R`` and ``Q`` from the thin QR of W1 when ``D < M``; otherwise
        ``P = W1`` and ``Q`` is None (the search vectors are ``h' - b1``).
        """
        w1 = self._views(self.params)[0]
        if w1.shape[1] >= w1.shape[0]:
            return w1, None
        basis, triangle = np.linalg.qr(w1.astype(np.float64))
        return triangle.astype(np.float32), basis.astype(np.float32)

    def exemplar_bias(self):
        """b1."""
        return self._views(self.params)[1]

    def train_epoch(self, standardized, y, q, d, batch_size, learning_rate,
                    optimizer_state, rng):
        """One pass of mini-batch Adam over the data.

        Parameters
        ----------
        standardized : ndarray of shape (n_samples, n_features), float32
        y : ndarray of shape (n_samples,)
            Encoded labels.
        q, d : ndarray of shape (n_samples,)
            Per-point similarity and distance quantile, fixed for the epoch.
        batch_size : int
        learning_rate : float
        optimizer_state : dict
            Adam moments and step count, updated in place.
        rng : numpy.random.Generator
            Shuffles the mini-batches.
        """
        w1, b1, w2, b2 = self._views(self.params)
        grads = np.zeros_like(self.params)
        g_w1, g_b1, g_w2, g_b2 = self._views(grads)
        n_samples, n_features = standardized.shape
        batch_size = min(batch_size, n_samples)
        inputs = np.empty((batch_size, n_features), dtype=np.float32)
        hidden = np.empty((batch_size, w1.shape[0]), dtype=np.float32)
        back = np.empty_like(hidden)
        logits = np.empty((batch_size, w2.shape[0]), dtype=np.float32)
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            index = order[start : start + batch_size]
            size = len(index)
            x, h, dh, z = inputs[:size], hidden[:size], back[:size], logits[:size]
            np.take(standardized, index, axis=0, out=x)
            np.matmul(x, w1.T, out=h)
            h += b1
            np.matmul(h, w2.T, out=z)
            z += b2
            grad_z = sdm_loss_gradient(z, y[index], q[index], d[index])
            grad_z = grad_z.astype(np.float32)
            np.matmul(grad_z.T, h, out=g_w2)
            np.sum(grad_z, axis=0, out=g_b2)
            np.matmul(grad_z, w2, out=dh)
            np.matmul(dh.T, x, out=g_w1)
            np.sum(dh, axis=0, out=g_b1)
            optimizer_state["step"] += 1
            step = optimizer_state["step"]
            _adam_step(
                self.params, grads, optimizer_state["m"], optimizer_state["v"],
                np.float32(learning_rate / (1.0 - ADAM_BETA1**step)),
                np.float32(1.0 - ADAM_BETA2**step),
            )

    def new_optimizer_state(self):
        """Zero Adam moments."""
        return {
            "step": 0,
            "m": np.zeros_like(self.params),
            "v": np.zeros_like(self.params),
        }
