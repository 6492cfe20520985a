"""SDMClassifier: the scikit-learn face of the SDM activation and estimator."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._activation import limit_scores, softmax
from ._blas import single_threaded_blas
from ._model import SDMModel
from ._neighbors import make_support_factory
from ._splitting import calibration_counts, stratified_split
from ._training import train_iteration
from ._version import __version__
from .exceptions import (
    InconsistentVersionWarning,
    NoHighReliabilityRegionWarning,
    SmallRegionWarning,
)

# n_epochs="auto": about this many mini-batch steps per iteration, within
# these bounds on the number of epochs (see the n_epochs docstring).
AUTO_STEPS = 1000
AUTO_MIN_EPOCHS = 5
AUTO_MAX_EPOCHS = 50

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
)


class SDMClassifier(ClassifierMixin, BaseEstimator):
    """Selective classifier with the Similarity-Distance-Magnitude activation.

    An exemplar adaptor (a linear map to M-dimensional exemplar vectors, then
    to logits) is trained on features of a support split with the SDM loss;
    a disjoint calibration split sets the HIGH-RELIABILITY region, in which
    class- and prediction-conditional accuracy is expected to reach
    ``alpha``. ``predict_selective`` admits a prediction only inside that
    region (Schmaltz, "Similarity-Distance-Magnitude Activations",
    arXiv:2509.12760).

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    estimator : transformer, Pipeline or FrozenEstimator, default=None
        Feature producer. None: ``X`` already holds the features (embeddings,
        tabular data). A transformer or a Pipeline ending in one is cloned and
        fitted on the support split of every iteration only, so calibration
        points are never seen by anything fitted. A
        :class:`~sklearn.frozen.FrozenEstimator` around a fitted transformer
        is used as is and never refitted.
    alpha : float, default=0.95
        Target conditional accuracy of admitted predictions, in ``(0.5, 1]``.
    n_exemplar_dims : int, default=128
        M, the dimension of the exemplar vectors (paper: 1000).
    n_iterations : int, default=3
        J, the number of random support/calibration splits, each with a fresh
        adaptor; the one with the lowest balanced calibration loss is kept
        (paper: 10).
    n_epochs : int or "auto", default="auto"
        Epochs per iteration; epoch 1 is plain cross-entropy, and the epoch
        with the lowest balanced calibration loss is kept (paper: 200).
        Every epoch ends with an exact search of the support split against
        itself, whose cost grows with the square of its size. "auto" gives
        about 1000 mini-batch steps per iteration: 50 epochs for support
        splits up to 1,000 points (at the default batch size), fewer for
        larger ones, and never fewer than 5 (``n_epochs_`` has the number).
    learning_rate : float, default=3e-3
        Adam learning rate, no weight decay (paper: 1e-5).
    batch_size : int, default=50
        Mini-batch size (paper: 50).
    calibration_size : float, default=0.5
        Fraction of every class held out for calibration (paper: 0.5). Every
        class needs at least one point in each split.
    max_similarity : int, default=None
        Cap on the similarity q. None: the size of the largest class of the
        support split (paper's reference: 2048).
    standardize : {"feature", "global"}, default="feature"
        Standardize each feature with statistics of the support split, or
        all entries with one scalar mean and standard deviation (the
        reference's choice for language-model embeddings).
    search : {"auto", "exact", "approximate"}, default="auto"
        Nearest-neighbour search over the support set. "exact" uses blocked
        float32 BLAS products; "approximate" a pynndescent graph (optional
        dependency, ``pip install sdm_sklearn[approximate]``); "auto" uses
        approximate search from 300,000 support points on when pynndescent
        is installed (where it became cheaper than exact search in our
        measurements, see ``benchmarks/README.md``), exact search below.
    conservative : bool, default=False
        Make ``predict_selective`` use the lower (DKW) variant, which the paper
        recommends for applications; ``predict_uncertainty`` reports both.
    ensemble : bool, default=False
        Keep the models of all ``n_iterations`` (each calibrated on its own
        split) and add the column ``admitted_ensemble`` to
        ``predict_uncertainty``: admitted only when every model predicts the
        same class and every model admits it in the lower variant (paper,
        A.7). Inference then costs ``n_iterations`` times more.
    alpha_levels : sequence of float, default=None
        Further targets in ``(0.5, 1]``. When given, ``predict_uncertainty``
        has the column ``reliability_alpha``: the largest of ``alpha`` and
        these levels whose region admits the point (in the variant chosen by
        ``conservative``), NaN when none does.
    rejection_label : object, default=None
        What ``predict_selective`` returns for rejected inputs. None: -1 for
        numeric classes (``min(classes_) - 1`` if -1 is a class) and
        ``"rejected"`` for other labels. It must not be a class.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits, initializations and mini-batch orders. The same
        value gives the same model and outputs.
    verbose : int, default=0
        Print the calibration loss of every epoch when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during ``fit`` (when defined).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit`` (when ``X`` has string column
        names).
    estimator_ : estimator or None
        The fitted feature producer of the selected iteration.
    support_exemplars_ : ndarray of shape (n_support, n_exemplar_dims)
        Exemplar vectors h' of the support set.
    support_labels_ : ndarray of shape (n_support,)
        Labels of the support set.
    support_predictions_ : ndarray of shape (n_support,)
        Predictions of the final adaptor on the support set.
    max_similarity_ : int
        The cap on q in use.
    min_rescaled_similarity_ : float
        q'_min, the lower edge of the HIGH-RELIABILITY region; ``inf`` when
        no region exists at ``alpha``.
    class_thresholds_ : ndarray of shape (n_classes,)
        psi, the per-class probability thresholds (``inf`` without a region).
    region_class_counts_ : ndarray of shape (n_classes,)
        Calibration points of each class with ``q' >= q'_min``. Below
        ``ceil(1 / (1 - alpha))`` for some class, ``fit`` warns with
        :class:`~sdm_sklearn.exceptions.SmallRegionWarning`.
    rejection_label_ : object
        The rejection marker in use.
    n_epochs_ : int
        The number of epochs run per iteration.
    calibration_loss_ : ndarray of shape (n_iterations, `n_epochs_`)
        Balanced SDM loss on the calibration split after every epoch.
    best_iteration_, best_epoch_ : int
        Where the selected adaptor comes from.

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : Softmax-style calibration.

    Notes
    -----
    At ``d = 0`` the SDM activation is exactly uniform. ``predict_proba`` and
    ``decision_function`` report the limit ``d -> 0+`` there: within
    ``1e-12`` of uniform, ordered by the logits, so ``predict`` is the argmax
    of ``predict_proba`` everywhere. The region and ``predict_uncertainty``
    use the exact activation.

    The paper's settings are ``n_exemplar_dims=1000, n_iterations=10,
    n_epochs=200, learning_rate=1e-5, batch_size=50``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sdm_sklearn import SDMClassifier
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> clf = SDMClassifier(random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.predict_selective(X[:5]).shape
    (5,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform"]), None],
        "alpha": [Interval(Real, 0.5, 1, closed="right")],
        "n_exemplar_dims": [Interval(Integral, 1, None, closed="left")],
        "n_iterations": [Interval(Integral, 1, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "calibration_size": [Interval(Real, 0, 1, closed="neither")],
        "max_similarity": [Interval(Integral, 1, None, closed="left"), None],
        "standardize": [StrOptions({"feature", "global"})],
        "search": [StrOptions({"auto", "exact", "approximate"})],
        "conservative": ["boolean"],
        "ensemble": ["boolean"],
        "alpha_levels": ["array-like", None],
        "rejection_label": "no_validation",
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        alpha=0.95,
        n_exemplar_dims=128,
        n_iterations=3,
        n_epochs="auto",
        learning_rate=3e-3,
        batch_size=50,
        calibration_size=0.5,
        max_similarity=None,
        standardize="feature",
        search="auto",
        conservative=False,
        ensemble=False,
        alpha_levels=None,
        rejection_label=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.alpha = alpha
        self.n_exemplar_dims = n_exemplar_dims
        self.n_iterations = n_iterations
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.calibration_size = calibration_size
        self.max_similarity = max_similarity
        self.standardize = standardize
        self.search = search
        self.conservative = conservative
        self.ensemble = ensemble
        self.alpha_levels = alpha_levels
        self.rejection_label = rejection_label
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, ids=None):
        """Fit the adaptor on support splits and calibrate the region.

        A failed ``fit`` leaves a previously fitted model as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or any input of the
            feature producer
            Training inputs.
        y : array-like of shape (n_samples,)
            Class labels (integers or strings).
        ids : array-like of shape (n_samples,), default=None
            Identifiers of the training points, reported by :meth:`explain`
            and :meth:`calibration_partition` (``support_ids_``,
            ``calibration_ids_``). Default: the index of a DataFrame ``X``,
            else row positions.

        Returns
        -------
        self : SDMClassifier
            The fitted classifier.
        """
        previous_state = dict(self.__dict__)
        try:
            with single_threaded_blas():
                return self._fit(X, y, ids)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    def _fit(self, X, y, ids):
        self._alpha_levels()  # validates alpha_levels before any work
        ids = _default_ids(X) if ids is None else column_or_1d(ids, dtype=None)
        check_consistent_length(ids, y)
        if self.estimator is None:
            X, y = validate_data(
                self, X, y, dtype=[np.float64, np.float32], y_numeric=False,
                ensure_min_samples=2,
            )
        else:
            X, y = indexable(X, y)
            if _num_samples(X) == 0:
                raise ValueError(
                    "Found array with 0 sample(s) while a minimum of 2 is "
                    "required by SDMClassifier."
                )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        _check_class_counts(classes, np.bincount(y_encoded))
        rejection_label = _resolve_rejection_label(self.rejection_label, classes)
        n_classes = len(classes)

        seeds = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=self.n_iterations
        )
        frozen_features = None
        if isinstance(self.estimator, FrozenEstimator):
            frozen_features = self._produce_features(self.estimator, X)

        n_support = len(y_encoded) - calibration_counts(
            np.bincount(y_encoded), self.calibration_size
        ).sum()
        n_epochs = self._resolve_epochs(n_support)
        best, members = None, []
        history = np.empty((self.n_iterations, n_epochs))
        for iteration, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            support_index, calibration_index = stratified_split(
                y_encoded, self.calibration_size, rng
            )
            producer, support_features, calibration_features = self._split_features(
                X, y, frozen_features, support_index, calibration_index
            )
            support_labels = y_encoded[support_index]
            cap = self.max_similarity
            if cap is None:
                cap = int(np.bincount(support_labels).max())
            support_factory = make_support_factory(
                self.search, len(support_index), seed
            )
            result = train_iteration(
                support_features,
                support_labels,
                calibration_features,
                y_encoded[calibration_index],
                n_classes=n_classes,
                n_exemplar_dims=self.n_exemplar_dims,
                n_epochs=n_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                max_similarity=cap,
                standardize=self.standardize,
                support_factory=support_factory,
                rng=rng,
                log=self._epoch_logger(iteration, n_epochs),
            )
            history[iteration] = result.losses
            candidate = _Iteration(iteration, result, producer, support_index,
                                   calibration_index, cap, support_factory)
            if self.ensemble:
                members.append(candidate)
            if best is None or result.best_loss <= best.result.best_loss:
                best = candidate

        model = best.calibrate(y_encoded, self.alpha)
        ensemble = [
            (member.producer,
             model if member is best else member.calibrate(y_encoded, self.alpha))
            for member in members
        ]
        record = model.calibration
        in_region = record.rescaled_similarity >= model.min_rescaled_similarity
        region_counts = np.bincount(record.labels[in_region], minlength=n_classes)
        if not np.isfinite(model.min_rescaled_similarity):
            warnings.warn(
                f"No HIGH-RELIABILITY region exists at alpha={self.alpha}: "
                "predict_selective will reject every input. More data, a "
                "stronger feature producer or a lower alpha may create one.",
                NoHighReliabilityRegionWarning,
                stacklevel=4,
            )
        elif region_counts.min() < _minimum_region_count(self.alpha):
            few = {
                classes[c].item(): int(region_counts[c])
                for c in np.flatnonzero(
                    region_counts < _minimum_region_count(self.alpha)
                )
            }
            warnings.warn(
                "The HIGH-RELIABILITY region rests on few calibration points of "
                f"some classes (class: count) {few}: below ceil(1 / (1 - alpha))"
                f" = {_minimum_region_count(self.alpha)}, their conditional "
                "accuracy is unreliable. Consider more data or conservative=True.",
                SmallRegionWarning,
                stacklevel=4,
            )

        self.classes_ = classes
        self.estimator_ = best.producer
        if best.producer is not None:
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(best.producer, name):
                    setattr(self, name, getattr(best.producer, name))
        self._model = model
        self._ensemble = ensemble
        self.support_labels_ = classes[model.support_labels]
        self.support_predictions_ = classes[model.support_predictions]
        self.support_ids_ = ids[best.support_index]
        self.calibration_ids_ = ids[best.calibration_index]
        self.max_similarity_ = model.max_similarity
        self.min_rescaled_similarity_ = model.min_rescaled_similarity
        self.class_thresholds_ = model.thresholds
        self.region_class_counts_ = region_counts
        self.rejection_label_ = rejection_label
        self.n_epochs_ = n_epochs
        self.calibration_loss_ = history
        self.best_iteration_ = best.iteration
        self.best_epoch_ = best.result.best_epoch
        self._sdm_version = __version__
        return self

    def _alpha_levels(self):
        """``alpha`` and ``alpha_levels``, validated, in decreasing order."""
        levels = [] if self.alpha_levels is None else list(
            np.asarray(self.alpha_levels, dtype=np.float64).ravel()
        )
        for level in levels:
            if not 0.5 < level <= 1.0:
                raise ValueError(
                    f"Every value of alpha_levels must be in (0.5, 1]; got {level}."
                )
        return sorted({float(self.alpha), *levels}, reverse=True)

    def _resolve_epochs(self, n_support):
        """``n_epochs``, with "auto" turned into about AUTO_STEPS steps."""
        if self.n_epochs != "auto":
            return self.n_epochs
        steps_per_epoch = math.ceil(n_support / self.batch_size)
        epochs = math.ceil(AUTO_STEPS / steps_per_epoch)
        return int(min(max(epochs, AUTO_MIN_EPOCHS), AUTO_MAX_EPOCHS))

    def _epoch_logger(self, iteration, n_epochs):
        if not self.verbose:
            return None

        def log(epoch, loss):
            print(
                f"[SDMClassifier] iteration {iteration + 1}/{self.n_iterations} "
                f"epoch {epoch + 1}/{n_epochs}: balanced calibration "
                f"loss {loss:.5f}"
            )

        return log

    def _split_features(self, X, y, frozen_features, support_index,
                        calibration_index):
        """Features of both splits; a producer is fitted on support data only."""
        if self.estimator is None:
            return None, X[support_index], X[calibration_index]
        if frozen_features is not None:
            return (
                self.estimator,
                frozen_features[support_index],
                frozen_features[calibration_index],
            )
        producer = clone(self.estimator)
        support_features = _check_features(
            producer.fit_transform(
                _safe_indexing(X, support_index), _safe_indexing(y, support_index)
            ),
            producer,
        )
        calibration_features = self._produce_features(
            producer, _safe_indexing(X, calibration_index)
        )
        if calibration_features.shape[1] != support_features.shape[1]:
            raise ValueError(
                f"The feature producer {producer!r} returned "
                f"{support_features.shape[1]} features in fit_transform but "
                f"{calibration_features.shape[1]} in transform."
            )
        return producer, support_features, calibration_features

    @staticmethod
    def _produce_features(producer, X):
        return _check_features(producer.transform(X), producer)

    # -------------------------------------------------------------- predict

    def _features(self, X, producer=None, model=None):
        """Standardized features of new inputs (for one ensemble member)."""
        check_is_fitted(self)
        if model is None:
            producer, model = self.estimator_, self._model
        if producer is None:
            features = validate_data(
                self, X, reset=False, dtype=[np.float64, np.float32]
            )
        else:
            features = self._produce_features(producer, X)
            expected = len(model.adaptor.location)
            if features.shape[1] != expected:
                raise ValueError(
                    f"The feature producer returned {features.shape[1]} "
                    f"features, but SDMClassifier was fitted on {expected}."
                )
        return model.adaptor.standardize(features)

    def _state(self, X):
        standardized = self._features(X)
        with single_threaded_blas():
            return self._model.evaluate(standardized)

    def predict(self, X):
        """Predicted class: the argmax of the adaptor's logits z'.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels (every input gets one; see
            :meth:`predict_selective` for rejection).
        """
        standardized = self._features(X)
        logits = self._model.adaptor.logits(standardized)
        return self.classes_[np.argmax(logits, axis=1)]

    def _scores(self, X):
        state = self._state(X)
        return limit_scores(state.logits, state.q, state.d)

    def decision_function(self, X):
        """SDM scores ``ln(2 + q) * d * z'``; their softmax is ``predict_proba``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            For two classes, the second column minus the first.
        """
        scores = self._scores(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_proba(self, X):
        """The SDM activation, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one; uniform (to within 1e-12) where ``d = 0``.
        """
        return softmax(self._scores(X))

    def _uncertainty_arrays(self, X):
        state = self._state(X)
        columns = self._model.uncertainty(state)
        selected = "admitted_lower" if self.conservative else "admitted"
        if self.alpha_levels is not None:
            reliability = np.full(len(columns["q"]), np.nan)
            for level in reversed(self._alpha_levels()):
                admitted = self._model.uncertainty(state, alpha=level)[selected]
                reliability[admitted] = level
            columns["reliability_alpha"] = reliability
        if self.ensemble:
            agreed = columns["admitted_lower"].copy()
            for producer, model in self._ensemble:
                if model is self._model:
                    continue
                member = model.uncertainty(
                    model.evaluate(self._features(X, producer, model))
                )
                agreed &= member["admitted_lower"]
                agreed &= member["prediction"] == columns["prediction"]
            columns["admitted_ensemble"] = agreed
        return columns

    def predict_uncertainty(self, X):
        """Every per-prediction diagnostic of the SDM estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        frame : pandas.DataFrame of shape (n_samples, n_columns)
            Indexed like ``X`` when it is a DataFrame. Columns:
            ``prediction`` (label), ``q``, ``d_nearest``, ``d``,
            ``magnitude`` (z' of the prediction), ``sdm_probability``,
            ``rescaled_similarity`` (q'), ``is_ood`` (floor(q') = 0),
            ``admitted`` (SDM_HR), ``d_lower``, ``d_upper``,
            ``sdm_probability_lower``, ``rescaled_similarity_lower``,
            ``admitted_lower`` (the DKW variant), ``effective_sample_size``
            and ``nearest_support_index`` (a row of ``support_exemplars_``);
            then ``reliability_alpha`` when ``alpha_levels`` is set and
            ``admitted_ensemble`` when ``ensemble=True``.
        """
        import pandas as pd

        columns = self._uncertainty_arrays(X)
        columns["prediction"] = self.classes_[columns["prediction"]]
        names = list(UNCERTAINTY_COLUMNS) + [
            name for name in ("reliability_alpha", "admitted_ensemble")
            if name in columns
        ]
        return pd.DataFrame(
            {name: columns[name] for name in names}, index=_input_index(X)
        )

    def predict_selective(self, X):
        """The SDM estimator: the prediction where admitted, else a marker.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predicted label for inputs in the HIGH-RELIABILITY region
            (``admitted_lower`` when ``conservative=True``), and
            ``rejection_label_`` elsewhere.
        """
        columns = self._uncertainty_arrays(X)
        admitted = columns["admitted_lower" if self.conservative else "admitted"]
        marker = np.asarray([self.rejection_label_])
        dtype = np.result_type(self.classes_, marker)
        if dtype.kind != self.classes_.dtype.kind:
            dtype = object
        out = np.empty(len(admitted), dtype=dtype)
        out[:] = self.rejection_label_
        out[admitted] = self.classes_[columns["prediction"][admitted]]
        return out

    def exemplars(self, X):
        """Exemplar vectors h' of the inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        exemplars : ndarray of shape (n_samples, n_exemplar_dims)
        """
        standardized = self._features(X)
        return self._model.exemplars(self._model.search_vectors(standardized))

    def explain(self, X, *, n_neighbors=5):
        """The support points behind each prediction: its nearest exemplars.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.
        n_neighbors : int, default=5
            Neighbours per input (at most the size of the support set).

        Returns
        -------
        frame : pandas.DataFrame
            One row per (input, neighbour), nearest first. Columns: ``input``
            (the index of ``X`` or its row position), ``rank`` (1 = nearest),
            ``support_index`` (row of ``support_exemplars_``), ``support_id``,
            ``distance`` (between exemplar vectors), ``label`` and
            ``prediction`` of the support point, and ``is_good``: the support
            point is correctly predicted with the input's predicted class,
            so it counts towards the input's similarity q.
        """
        import pandas as pd

        if not (isinstance(n_neighbors, Integral) and n_neighbors >= 1):
            raise ValueError(
                f"n_neighbors must be a positive integer; got {n_neighbors!r}."
            )
        standardized = self._features(X)
        predictions = np.argmax(self._model.adaptor.logits(standardized), axis=1)
        indices, distances = self._model.nearest(standardized, n_neighbors)
        k = indices.shape[1]
        flat = indices.ravel()
        labels = self._model.support_labels[flat]
        support_predictions = self._model.support_predictions[flat]
        return pd.DataFrame({
            "input": np.repeat(_input_labels(X, len(indices)), k),
            "rank": np.tile(np.arange(1, k + 1), len(indices)),
            "support_index": flat,
            "support_id": self.support_ids_[flat],
            "distance": distances.ravel(),
            "label": self.support_labels_[flat],
            "prediction": self.support_predictions_[flat],
            "is_good": (labels == support_predictions)
            & (support_predictions == np.repeat(predictions, k)),
        })

    def calibration_partition(self, X):
        """Calibration points in the same partition as each input.

        The partition of a point is its predicted class and ``floor(q')``:
        the calibration points that share it are the evidence behind the
        region's verdict on the input.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            Inputs.

        Returns
        -------
        frame : pandas.DataFrame
            One row per (input, calibration point in its partition); inputs
            whose partition is empty have no row. Columns: ``input``,
            ``calibration_id``, ``label``, ``prediction``,
            ``rescaled_similarity`` (q' of the calibration point),
            ``sdm_probability`` and ``correct``.
        """
        import pandas as pd

        columns = self._model.uncertainty(self._state(X))
        record = self._model.calibration
        rows = np.arange(len(record.labels))
        inputs = pd.DataFrame({
            "input": _input_labels(X, len(columns["q"])),
            "_class": columns["prediction"],
            "_level": np.floor(columns["rescaled_similarity"]),
        })
        calibration = pd.DataFrame({
            "_class": record.predictions,
            "_level": np.floor(record.rescaled_similarity),
            "calibration_id": self.calibration_ids_,
            "label": self.classes_[record.labels],
            "prediction": self.classes_[record.predictions],
            "rescaled_similarity": record.rescaled_similarity,
            "sdm_probability": record.probabilities[rows, record.predictions],
            "correct": record.labels == record.predictions,
        })
        merged = inputs.merge(calibration, on=["_class", "_level"], how="inner",
                              sort=False)
        return merged.drop(columns=["_class", "_level"]).reset_index(drop=True)

    def add_support(self, X, y, *, ids=None):
        """Add labeled points to the support set without retraining.

        The adaptor, and so ``predict``, never changes; q and d_nearest of
        later queries do (paper, A.6). Labels outside ``classes_`` are
        accepted as out-of-distribution exemplars: they are never good for
        any query, so they lower the similarity of their neighbours.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or producer input
            New support points.
        y : array-like of shape (n_samples,)
            Their labels.
        ids : array-like of shape (n_samples,), default=None
            Their identifiers (default: index of a DataFrame ``X``, else row
            positions in ``X``).

        Returns
        -------
        self : SDMClassifier
        """
        check_is_fitted(self)
        y = column_or_1d(y, dtype=None)
        ids = _default_ids(X) if ids is None else column_or_1d(ids, dtype=None)
        check_consistent_length(X, y, ids)
        position = {label: index for index, label in enumerate(self.classes_)}
        encoded = np.array([position.get(label, -1) for label in y], dtype=np.int64)
        members = self._ensemble or [(self.estimator_, self._model)]
        standardized = [
            self._features(X, producer, model) for producer, model in members
        ]
        for (_, model), features in zip(members, standardized, strict=True):
            model.add_support(features, encoded)
        self.support_labels_ = _concatenate_labels(self.support_labels_, y)
        self.support_predictions_ = self.classes_[self._model.support_predictions]
        self.support_ids_ = _concatenate_labels(self.support_ids_, ids)
        return self

    @property
    def support_exemplars_(self):
        """Exemplar vectors h' of the support set (computed on access)."""
        check_is_fitted(self)
        return self._model.exemplars(self._model.support.vectors)

    def __setstate__(self, state):
        saved = state.get("_sdm_version")
        if saved is not None and saved != __version__:
            warnings.warn(
                f"This SDMClassifier was fitted with sdm_sklearn {saved} and is "
                f"loaded with sdm_sklearn {__version__}; outputs may differ. "
                f"Refit it, or install sdm_sklearn=={saved}.",
                InconsistentVersionWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            from sklearn.utils import get_tags

            tags.input_tags = get_tags(self.estimator).input_tags
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


def _minimum_region_count(alpha):
    """Calibration points per class below which a region is called small.

    ``ceil(1 / (1 - alpha))``, the count at which the ``1 - alpha`` quantile
    stops being the minimum; 0 (never small) for ``alpha = 1``.
    """
    if alpha >= 1.0:
        return 0
    return math.ceil(1.0 / (1.0 - alpha) - 1e-9)


def _check_class_counts(classes, counts):
    """Two classes at least, each large enough for both splits."""
    if len(classes) < 2:
        raise ValueError(
            "SDMClassifier needs samples of at least 2 classes in the data, "
            f"but the data contain only one class: {classes[0]!r}."
        )
    too_small = classes[counts < 2]
    if len(too_small):
        raise ValueError(
            "Every class needs at least 2 samples, one for the support split "
            "and one for the calibration split; these classes have only one: "
            f"{too_small.tolist()!r}."
        )


def _resolve_rejection_label(rejection_label, classes):
    """The marker for rejected inputs; never one of the classes."""
    numeric = np.issubdtype(classes.dtype, np.number)
    if rejection_label is None:
        if not numeric:
            rejection_label = "rejected"
        elif -1 in classes:
            rejection_label = classes.min() - 1
        else:
            rejection_label = -1
    if np.any(classes == np.asarray(rejection_label, dtype=object)):
        raise ValueError(
            f"rejection_label={rejection_label!r} is one of the classes; "
            "choose a value that is not a label."
        )
    return rejection_label


def _check_features(features, producer):
    """Features returned by a producer: dense, 2-D, finite, numeric."""
    if hasattr(features, "toarray") or hasattr(features, "tocsr"):
        raise TypeError(
            f"The feature producer {producer!r} returned a sparse matrix. "
            "SDMClassifier needs dense features: end the pipeline with a "
            "dense transformer, e.g. sklearn.decomposition.TruncatedSVD."
        )
    try:
        return check_array(features, dtype=[np.float64, np.float32])
    except ValueError as error:
        raise ValueError(
            f"The feature producer {producer!r} returned invalid features: "
            f"{error}"
        ) from error


class _Iteration:
    """One trained iteration and what is needed to calibrate it."""

    def __init__(self, iteration, result, producer, support_index,
                 calibration_index, max_similarity, support_factory):
        self.iteration = iteration
        self.result = result
        self.producer = producer
        self.support_index = support_index
        self.calibration_index = calibration_index
        self.max_similarity = max_similarity
        self.support_factory = support_factory

    def calibrate(self, y_encoded, alpha):
        """The calibrated SDMModel of this iteration."""
        return SDMModel.calibrate(
            self.result.adaptor,
            self.result.support_features,
            y_encoded[self.support_index],
            self.result.calibration_features,
            y_encoded[self.calibration_index],
            self.max_similarity,
            alpha,
            self.support_factory,
        )


def _input_index(X):
    """The index of a DataFrame input, else None."""
    return X.index if hasattr(X, "iloc") and hasattr(X, "index") else None


def _input_labels(X, n_samples):
    """Index values of a DataFrame input, else row positions."""
    index = _input_index(X)
    return np.arange(n_samples) if index is None else index.to_numpy()


def _default_ids(X):
    """Identifiers of input rows: a DataFrame's index, else positions."""
    return _input_labels(X, _num_samples(X))


def _concatenate_labels(old, new):
    """Append label-like values, keeping mixed kinds apart (object dtype)."""
    new = np.asarray(new)
    if old.dtype.kind != new.dtype.kind:
        old, new = old.astype(object), new.astype(object)
    return np.concatenate([old, new])
