"""The exemplar adaptor: standardize, ``h' = W1 h + b1``, ``z' = W2 h' + b2``.

Training is mini-batch Adam on the SDM loss with per-point q and d held fixed
within an epoch (paper, eq. 7 and sec. 3.1.6). Everything runs in float32 with buffers
allocated once per epoch, so the inner loop allocates nothing of size D x M.

The *search space*: ``h'`` is linear in ``h``, so with ``W1 = Q R`` (thin QR,
``R`` of shape ``(min(D, M), D)``) the distance between two exemplars equals
the distance between ``R h``. Nearest-neighbour search runs on these shorter
vectors; exemplars are recovered as ``Q (R h) + b1``.
"""

import numpy as np
from scipy.linalg import solve_triangular

from ._activation import gradient_weights, scaled_gradient, sdm_scale
from ._blocks import row_exact_matmul

# Rows converted to float64 at once by the standardization (bounds the
# temporary memory on large inputs).
STANDARDIZE_ROWS = 65_536


def _float64_chunks(features):
    """``(start, float64 copy of the rows)`` for chunks of rows."""
    for start in range(0, len(features), STANDARDIZE_ROWS):
        yield start, np.array(features[start : start + STANDARDIZE_ROWS],
                              dtype=np.float64)


def _reusable_chunks(features):
    """The chunks of :func:`_float64_chunks`, to be read several times.

    A list (converted once) when the features fit in one chunk; otherwise a
    callable giving a fresh generator, so that memory stays bounded.
    """
    if len(features) <= STANDARDIZE_ROWS:
        chunks = list(_float64_chunks(features))
        return lambda: chunks
    return lambda: _float64_chunks(features)


def fit_standardizer(features, mode):
    """Location and scale from training features.

    Statistics are computed on values divided by their largest magnitude,
    so that features near the float64 limits (1e300 or 1e-300) neither
    overflow nor vanish, in three passes over chunks of rows (memory beyond
    the input does not grow with its rows; features of one chunk are
    gathered and converted once).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features), or any object with
        ``shape`` whose row slices are arrays
    mode : {"feature", "global"}
        Per-feature statistics, or one scalar mean and std over all entries
        (the reference's choice for language-model embeddings).

    Returns
    -------
    location, scale : ndarray of shape (n_features,), float64
        Columns that are constant up to rounding (or a constant matrix) get
        scale 1.
    """
    n_samples, n_features = features.shape
    pooled = mode == "global"
    chunks = _reusable_chunks(features)
    magnitude = np.zeros(n_features)
    for _, chunk in chunks():
        np.maximum(magnitude, np.abs(chunk).max(axis=0), out=magnitude)
    if pooled:
        magnitude[:] = magnitude.max()
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    count = n_samples * (n_features if pooled else 1)

    def pool(per_feature):
        return np.full(n_features, per_feature.sum()) if pooled else per_feature

    total = np.zeros(n_features)
    for _, chunk in chunks():
        total += (chunk / magnitude).sum(axis=0)
    location = pool(total) / count
    squares = np.zeros(n_features)
    for _, chunk in chunks():
        squares += np.square(chunk / magnitude - location).sum(axis=0)
    spread = np.sqrt(pool(squares) / count)
    scale = np.where(spread > 16 * np.finfo(np.float64).eps, spread * magnitude, 1.0)
    return location * magnitude, scale


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
        self.location = location
        self.scale = scale
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

    def standardize(self, features, strict=True):
        """``(features - location) / scale``, computed in float64, as float32.

        Computed in chunks of rows: memory beyond the output does not grow
        with the number of rows.

        Parameters
        ----------
        features : ndarray of shape (n_samples, n_features)
        strict : bool, default=True
            Whether a row that cannot be placed (a value that is not finite,
            or leaves the float32 range once standardized) is an error.

        Returns
        -------
        standardized : ndarray of shape (n_samples, n_features), float32
            With ``strict=False``, rows that cannot be placed are zero.
        placed : ndarray of shape (n_samples,), bool
            Only with ``strict=False``: the rows that can be placed.

        Raises
        ------
        ValueError
            With ``strict=True``, if a row cannot be placed.
        """
        out = np.empty(features.shape, dtype=np.float32)
        for start, chunk in _float64_chunks(features):
            chunk -= self.location
            chunk /= self.scale
            with np.errstate(over="ignore", invalid="ignore"):
                out[start : start + len(chunk)] = chunk
        placed = np.isfinite(out).all(axis=1)
        if not strict:
            out[~placed] = 0.0
            return out, placed
        if not placed.all():
            raise ValueError(
                "Some inputs are too large: standardized with the training "
                "statistics they exceed the float32 range (about 3.4e38) in "
                "which the exemplar adaptor works. Check the scale of X."
            )
        return out

    def logits(self, standardized):
        """z' (float64) through the collapsed map ``W2 W1``.

        Computed in float64 in fixed-size row blocks, so that a row's result
        never depends on the other rows of the call (see
        :mod:`sdm_sklearn._blocks`).
        """
        w1, b1, w2, b2 = (view.astype(np.float64) for view in self._views(self.params))
        return row_exact_matmul(standardized, (w2 @ w1).T) + (w2 @ b1 + b2)

    @staticmethod
    def search_vectors(standardized, projection):
        """``standardized @ projection.T`` as float32, computed in float64.

        Row-exact like :meth:`logits`; the result is rounded once.
        """
        return row_exact_matmul(standardized, projection.T, dtype=np.float32)

    def search_projection(self):
        """P such that search vectors ``h P^T`` keep exemplar distances.

        ``P = W1`` when ``D >= M``; otherwise ``P = R``, the upper-triangular
        factor of ``W1^T W1 = R^T R`` (the R of the thin QR of W1, obtained
        from the D x D Gram matrix by Cholesky: M D^2 work instead of QR's
        2 M D^2), so ``|W1 v| = |R v|`` with D instead of M dimensions.

        Returns
        -------
        projection : ndarray of shape (min(D, M), D), float32
        """
        w1 = self._views(self.params)[0]
        if w1.shape[1] >= w1.shape[0]:
            return w1
        w1 = w1.astype(np.float64)
        try:
            return np.linalg.cholesky(w1.T @ w1).T.astype(np.float32)
        except np.linalg.LinAlgError:
            return np.linalg.qr(w1, mode="r").astype(np.float32)

    def exemplars(self, search_vectors, projection):
        """Exemplar vectors ``h' = W1 h + b1`` from search vectors ``h P^T``.

        Parameters
        ----------
        search_vectors : ndarray of shape (n_samples, min(D, M))
        projection : ndarray
            The :meth:`search_projection` the vectors were made with.

        Returns
        -------
        exemplars : ndarray of shape (n_samples, M), float32
        """
        w1, b1 = self._views(self.params)[:2]
        if projection.shape[0] == w1.shape[0]:
            return search_vectors + b1
        features = solve_triangular(
            projection.astype(np.float64), np.asarray(search_vectors, np.float64).T
        )
        return (w1 @ features).T.astype(np.float32) + b1

    def train_epoch(self, standardized, y, q, d, batch_size, learning_rate,
                    optimizer_state, rng, rows=None, sample_weight=None):
        """One pass of mini-batch Adam over the data (or some of its rows).

        Parameters
        ----------
        standardized : ndarray of shape (n_samples, n_features), float32
        y : ndarray of shape (n_samples,)
            Encoded labels.
        q, d : ndarray of shape (n_samples,)
            Per-point similarity and distance quantile, fixed for the epoch.
        batch_size : int
        learning_rate : float
        optimizer_state : AdamState
            Updated in place.
        rng : numpy.random.Generator
            Shuffles the mini-batches.
        rows : ndarray of int, default=None
            Train on these rows only (None: all).
        sample_weight : ndarray of shape (n_samples,), default=None
            Per-point weights of the loss, of mean 1 (see
            :func:`~sdm_sklearn._activation.sdm_loss_gradient`).
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
        grad_logits = np.empty_like(logits)
        order = rng.permutation(n_samples if rows is None else rows)
        # the points' factors of the gradient, in the epoch's order
        labels, distances = y[order], d[order]
        scale = sdm_scale(q[order], distances)
        weights = None if sample_weight is None else sample_weight[order]
        for start in range(0, len(order), batch_size):
            batch = slice(start, start + batch_size)
            index = order[batch]
            size = len(index)
            x, h, dh, z = inputs[:size], hidden[:size], back[:size], logits[:size]
            grad_z = grad_logits[:size]
            np.take(standardized, index, axis=0, out=x)
            np.matmul(x, w1.T, out=h)
            h += b1
            np.matmul(h, w2.T, out=z)
            z += b2
            scaled_gradient(
                z, labels[batch], scale[batch],
                gradient_weights(distances[batch],
                                 None if weights is None else weights[batch]),
                out=grad_z,
            )
            np.matmul(grad_z.T, h, out=g_w2)
            grad_z.sum(axis=0, out=g_b2)
            np.matmul(grad_z, w2, out=dh)
            np.matmul(dh.T, x, out=g_w1)
            dh.sum(axis=0, out=g_b1)
            optimizer_state.update(self.params, grads, learning_rate)

    def new_optimizer_state(self):
        """Fresh Adam state for the parameters."""
        # numba is imported on first use only: it adds a fifth to the import
        # time of the package
        from ._adam import AdamState

        return AdamState(self.params)
