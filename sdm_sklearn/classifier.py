"""SDMClassifier: the scikit-learn face of the SDM activation and estimator.

The face validates inputs and parameters, calls one training function
(:func:`sdm_sklearn._training.fit_sdm`) and the methods of the fitted model
(:class:`sdm_sklearn._model.SDMModel`), and turns their arrays into labels
and DataFrames. It holds no math.
"""

import functools
import threading
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import indexable
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._blas import single_threaded_blas
from ._blocks import resolve_n_jobs
from ._calibration import REASONS, minimum_region_count, zero_error_count
from ._dask_collections import (
    computed,
    dask_collections,
    load_from_directory,
    save_to_directory,
)
from ._dask_fit import ClusterFeatures, compact, fits_on_cluster, is_on_cluster
from ._features import (
    fitted_estimator,
    is_frozen,
    producer_kind,
    takes_sample_weight,
)
from ._labels import (
    as_ids,
    check_class_counts,
    check_no_missing_labels,
    default_ids,
    input_index,
    plain_value,
    resolve_rejection_label,
    row_labels,
    selective_labels,
)
from ._model import OPTIONAL_COLUMNS, UNCERTAINTY_COLUMNS, admitted_column
from ._splitting import label_counts
from ._training import TrainingConfig, fit_sdm
from ._validation import ALPHA, alpha_levels
from ._version import __version__
from .exceptions import (
    InconsistentVersionWarning,
    NoHighReliabilityRegionWarning,
    SmallRegionWarning,
)

# Parameters that shape the fitted model and that predict methods read:
# changing one after fit makes those methods raise until the model is
# refitted (or, for alpha, recalibrated).
FITTED_PARAMETERS = ("alpha", "confidence", "ensemble", "rejection_label")
# Serializes updates of fitted models (add_support), so that none is lost;
# readers take one snapshot of the model per call and need no lock.
_UPDATE_LOCK = threading.Lock()
# The largest cap on q that the kernels' int64 counters hold.
MAX_SIMILARITY_LIMIT = np.iinfo(np.int64).max


def _model_attribute(read):
    """A fitted attribute read from the current model by ``read(model)``."""

    def get(self):
        check_is_fitted(self)
        return read(self._model)

    return property(get)


def _computes(method):
    """Decorator: the method runs with single-threaded BLAS.

    The call enters :func:`~sdm_sklearn._blas.single_threaded_blas`: every
    BLAS library runs one thread while it runs (the user's setting is
    restored when the last such call returns), and parallelism comes from
    ``n_jobs`` threads over blocks of rows instead (see
    :mod:`sdm_sklearn._blas`).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with single_threaded_blas():
            return method(self, *args, **kwargs)

    return wrapper


def _check_parameters(params, constraints, caller_name):
    """Validate ``params`` against ``constraints``, refusing bools for numbers.

    scikit-learn's numeric intervals accept ``True`` as 1 (``bool`` is an
    ``int``); a bool given for a fraction, a count or a level is a mistake,
    never a number the user meant.

    Parameters
    ----------
    params : dict
        Parameter names and values.
    constraints : dict
        The estimator's ``_parameter_constraints``.
    caller_name : str
        Named in the error message.

    Raises
    ------
    InvalidParameterError
        When a value meets none of its constraints, or is a bool for a
        parameter that accepts no bool.
    """
    validate_parameter_constraints(
        {name: constraints[name] for name in params}, params, caller_name
    )
    for name, value in params.items():
        allowed = constraints[name]
        takes_bool = (allowed == "no_validation" or "boolean" in allowed
                      or "verbose" in allowed)
        if isinstance(value, (bool, np.bool_)) and not takes_bool:
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller_name} must be a number, "
                f"not a bool. Got {value!r} instead."
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

    Read more in the :ref:`User Guide <user_guide>` and, for every
    convention of the method, on the :doc:`method page </method>`.

    Parameters
    ----------
    estimator : transformer, classifier, Pipeline or FrozenEstimator, \
            default=None
        Feature producer. None: ``X`` already holds the features (embeddings,
        tabular data). A transformer or a Pipeline ending in one is cloned and
        fitted on the support split of every iteration only, so calibration
        points are never seen by anything fitted. A classifier (anything
        with ``fit`` and ``predict_proba`` or ``decision_function``, such as
        ``HistGradientBoostingClassifier`` or a Pipeline ending in one) gives
        its responses as features (see ``response_method``): cross-fitted
        (out of fold, 5 folds) on the support split, so that support points
        look like unseen points, and those of the classifier fitted on the
        whole support split for calibration and new points. A
        :class:`~sklearn.frozen.FrozenEstimator` around a fitted transformer
        or classifier is used as is and never refitted; it must not have
        been fitted on any row passed to ``fit`` (see the user guide's
        drop-in section: nothing here can detect it, and the region then
        admits too much).
    response_method : {"auto", "predict_proba", "decision_function"}, \
            default="auto"
        For a classifier as ``estimator``: the method whose outputs are the
        features, log-probabilities for ``predict_proba`` (probabilities
        floored at 0.01) and scores for ``decision_function``. "auto":
        ``predict_proba`` when the classifier has it, else
        ``decision_function``.
    append_features : bool or "auto", default="auto"
        For a classifier as ``estimator``: put the columns of ``X`` before
        its responses. "auto": when ``X`` is a dense numeric array (not for
        text or sparse matrices), decided by its kind, never by its values.
        A missing value (NaN) of an appended column becomes that column's
        mean over the training rows, while the classifier sees the NaN, so
        NaN works in fit and in prediction wherever the classifier takes
        it (``HistGradientBoostingClassifier``, say). A classifier's
        responses say how sure it is, not how unusual an input is; the
        appended columns keep the distances between inputs, so that q and d
        fall for inputs unlike the support set. The measurements, and the
        data sets where the columns admit less, are in
        ``benchmarks/README.md``, section "Drop-in panel".
    alpha : float, default=0.95
        Target conditional accuracy of admitted predictions, in ``(0.5, 1]``.
        Read as the decimal number it prints as (0.9 is exactly 9/10).
    confidence : float or None, default=0.5
        How sure the region's choice must be. The region admits a
        prediction when its SDM output is at least ``alpha`` and its q' at
        least ``min_rescaled_similarity_``, a threshold chosen by exact
        binomial tests in a fixed sequence: with probability at least
        ``confidence`` over the calibration split, each class-conditional
        and each prediction-conditional accuracy of the admitted points is
        at least ``alpha`` on data exchangeable with it (the statement, its
        assumptions and its proof are on the :doc:`method page </method>`).
        Every class needs enough calibration points in the region: at least
        ``ceil(ln(1 - confidence) / ln(alpha))`` with no error (14 at 0.95 /
        0.5, 59 at 0.95 / 0.95, 29 at 0.9 / 0.95). The default 0.5 is the
        weakest statement that still counts the points behind each cell;
        0.9 or 0.95 make it a certificate, at the price of calibration
        points. How often the cells of each setting fell below ``alpha``,
        against Alg. 1, is measured in ``benchmarks/VALIDITY.md`` and read
        in the user guide, section "What admitted promises". None:
        the paper's Alg. 1, which compares empirical quantiles with
        ``alpha`` and allows for no sampling error (on small classes its
        admitted accuracy can fall well below ``alpha``).
    n_exemplar_dims : int, default=128
        M, the dimension of the exemplar vectors (paper: 1000).
    n_iterations : int, default=3
        J, the number of random support/calibration splits, each with a fresh
        adaptor; the one with the lowest balanced calibration loss is kept
        (paper: 10). With a classifier or transformer as ``estimator``, see
        ``share_split``.
    share_split : bool, default=True
        With a classifier or transformer as ``estimator`` (fitted during
        ``fit``): whether the iterations share the first one's split, and so
        one fitted producer (a classifier is fitted 6 times per fit: 5
        cross-fitting folds and the whole support split), differing in the
        adaptor's initialization and mini-batch order only. False draws a
        split per iteration and fits the producer on each (6 times per
        iteration), which admitted more in distribution on the drop-in panel
        at three times the base model's fits (``benchmarks/README.md``,
        "Cost against the peer"). Without a fitted producer every iteration
        draws its own split either way.
    n_epochs : int or "auto", default="auto"
        Epochs per iteration; the epoch with the lowest balanced calibration
        loss is kept (paper: 200). After every epoch the calibration split
        is searched against the support split, and, before every SDM epoch
        (see ``warmup_fraction``), the support split against itself, so an
        epoch costs one or two searches whose cost grows with the square of
        the split sizes (exact search).
        "auto" gives about 2000 mini-batch steps per iteration: 100 epochs
        for support splits up to 1,000 points (at the default batch size),
        fewer for larger ones, and never fewer than 5 (``n_epochs_`` has
        the number). On large splits "auto" also bounds the searches: past
        10,000 support points an epoch is a round of 10,000 of them, and
        the warm-up rounds before the last are not scored; past 5,000
        calibration points the epochs are scored on a stratified subset of
        5,000 and the kept epoch is calibrated on all of them.
    warmup_fraction : float, default=0.5
        Fraction of each iteration's epochs, at the start, trained on plain
        cross-entropy (q = e - 2, d = 1 for every support point) before the
        SDM loss takes over: the first ``ceil(warmup_fraction * n_epochs)``
        epochs, and at least epoch 1. 0 is the paper's schedule (epoch 1
        only), 1 cross-entropy throughout. Every epoch, warm-up included,
        is scored by the balanced SDM loss on the calibration split (except
        the warm-up rounds before the last on large splits, see
        ``n_epochs``). The SDM
        loss weighs each support point's gradient by its d, which is small
        for the points farthest from the others, so an adaptor trained on it
        from epoch 2 on learns them slowly. A warm-up lets every point shape
        the adaptor first, which tends to raise plain accuracy and can
        change the admitted share either way; the steps of
        ``n_epochs="auto"`` include the warm-up epochs. The measurements are in
        ``benchmarks/README.md``, section "Point predictor".
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
    search : {"auto", "exact", "faiss", "approximate", "dask", "dask-faiss"}, \
            default="auto"
        Nearest-neighbour search over the support set. "exact" uses blocked
        float32 BLAS products. "faiss" cuts the support set into k-means
        cells (FAISS, optional dependency, ``pip install faiss-cpu``) and
        compares each query exactly with the points of its 56 nearest cells:
        q and d_nearest are exact over those cells and approximate overall
        (a support point outside them is never compared with the query).
        "approximate" uses a pynndescent graph (optional dependency,
        ``pip install pynndescent``), also approximate. "auto" uses "faiss"
        from 30,000 support points on when faiss is installed (else
        "approximate" from 50,000 when pynndescent is), exact search below.
        How often each backend's q equals exact search's, their speeds and
        build times are measured in ``benchmarks/README.md``, section
        "bench_scale.py".
        "dask" shards the support set over the workers of the running
        ``distributed`` client (``pip install distributed``;
        fit raises without a client) and gives exactly the answers of
        "exact"; a model pickled while the client runs searches exactly in
        memory, without a cluster (up to a size: see :meth:`save`, which
        stores the shards apart and loads them onto a cluster).
        "dask-faiss" is "faiss" sharded over the running client's workers:
        the same k-means cells (trained in this process), every shard
        arranging its points in them, and answers equal to those of
        "faiss" bit for bit whatever the number of workers; a model pickled
        while the client runs searches with "faiss" in memory. With
        "faiss" or "dask-faiss", the per-epoch searches of training probe
        32 cells (their q only weigh and score the epochs); with
        "approximate" they are exact. Either way the kept epoch is
        calibrated with the fitted model's own index. ``search_`` records
        the choice.
    conservative : bool, default=False
        Make ``predict_selective`` use the lower (DKW) variant, which the paper
        recommends for applications; ``predict_uncertainty`` reports both.
        Read at prediction time: changing it after fit takes effect.
    ensemble : bool, default=False
        Keep the models of all ``n_iterations`` (each calibrated on its own
        split, or on the shared one: see ``share_split``) and add the
        column ``admitted_ensemble`` to ``predict_uncertainty``: admitted
        only when every model predicts the same class and every model admits
        it in the lower variant (paper, A.7). It does not change what
        ``predict_selective`` admits. Inference then costs up to
        ``n_iterations`` times more.
    alpha_levels : sequence of float, default=None
        Further levels in ``(0.5, 1]`` of a nested ladder of regions with
        ``alpha``: a point admitted at a level is admitted at every lower
        one, and the column ``assigned_alpha`` of ``predict_uncertainty``
        is the highest level admitting it (in the variant chosen by
        ``conservative``). Certified regions (``confidence`` set) are nested
        by construction; a level's threshold is raised to those of the
        levels below it when they are higher, which keeps it certified.
        With ``confidence=None`` each level's region is fitted on the
        calibration points not admitted at a higher level, and a point is
        admitted at a level when that region or a higher one admits it, so
        levels above ``alpha`` widen what ``predict_selective`` admits. Read
        at prediction time.
    rejection_label : object, default=None
        What ``predict_selective`` returns for rejected inputs: a single
        number or string that is not a class (nor equal to one) and not NaN.
        None: -1 for numeric classes (one less than the smallest class if -1
        is a class) and ``"rejected"`` for other labels (``"rejected_"``
        when ``"rejected"`` is a class, and so on). When the classes'
        dtype cannot hold it exactly (a number with string classes, say),
        ``predict_selective`` returns an object array.
    n_jobs : int, default=None
        Threads for the searches of fit and of every prediction method.
        None means 1 unless in a :func:`joblib.parallel_config` context; -1
        means all cores. Each thread computes its own blocks of rows with
        one BLAS thread, so results are bit-identical for every value.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits, initializations and mini-batch orders, and every
        ``random_state`` of ``estimator`` (and of its nested estimators) left
        at None; one the user set is kept. The same value gives the same
        model and outputs.
    verbose : int, default=0
        1: one line per iteration (best calibration loss and its epoch,
        elapsed time, estimated time left); 2: also one line per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during ``fit`` (when defined: without a
        producer, or when the producer defines it).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit`` (when ``X`` has string column
        names).
    estimator_ : estimator or None
        The fitted feature producer of the selected iteration (for a
        classifier: the classifier fitted on its whole support split).
    support_exemplars_ : ndarray of shape (n_support, n_exemplar_dims)
        Exemplar vectors h' of the support set.
    support_labels_ : ndarray of shape (n_support,)
        Labels of the support set (with those added by
        :meth:`add_support`).
    support_predictions_ : ndarray of shape (n_support,)
        Predictions of the final adaptor on the support set.
    support_ids_ : ndarray of shape (n_support,)
        Identifiers of the support points (``ids`` of :meth:`fit` and
        :meth:`add_support`).
    calibration_ids_ : ndarray of shape (n_calibration,)
        Identifiers of the calibration points.
    max_similarity_ : int
        The cap on q in use.
    min_rescaled_similarity_ : float
        q'_min, the lower edge of the HIGH-RELIABILITY region at ``alpha``
        (in the ladder with ``alpha_levels``); ``inf`` when no region exists
        at ``alpha``.
    class_thresholds_ : ndarray of shape (n_classes,)
        psi, the per-class probability thresholds (``inf`` without a
        region); ``alpha`` for every class unless ``confidence=None``.
    region_class_counts_ : ndarray of shape (n_classes,)
        Calibration points of each class with ``q' >= q'_min``. With
        ``confidence=None``, below ``ceil(1 / (1 - alpha))`` for some class,
        ``fit`` warns with
        :class:`~sdm_sklearn.exceptions.SmallRegionWarning`.
    calibration_uncertainty_ : pandas.DataFrame of shape (n_calibration, 7)
        What the model says about its calibration points, the reference of
        :class:`~sdm_sklearn.monitoring.DriftMonitor`: ``calibration_id``,
        ``label``, ``prediction``, ``sdm_probability``,
        ``rescaled_similarity`` (q'), ``d_nearest`` and ``admitted`` (by the
        current region, as in :meth:`predict_uncertainty`; the points
        chose the region, so their admitted accuracy is in-sample).
    rejection_label_ : object
        The rejection marker in use.
    search_ : {"exact", "faiss", "approximate", "dask", "dask-faiss"}
        What ``search`` resolved to.
    n_epochs_ : int
        The number of epochs run per iteration.
    calibration_loss_ : ndarray of shape (n_iterations, `n_epochs_`)
        Balanced SDM loss on the calibration split after every epoch; NaN
        for the epochs that were not scored (the warm-up rounds before the
        last on large splits, see ``n_epochs``).
    best_iteration_ : int
        The iteration the selected adaptor comes from.
    best_epoch_ : int
        Its epoch.

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : Softmax-style calibration.

    Notes
    -----
    At ``d = 0`` the SDM activation is exactly uniform and its scores
    ``ln(2 + q) d z'`` are 0. ``decision_function`` and ``predict_proba``
    report the limit ``d -> 0+`` there: scores within ``5e-13`` of 0 and
    probabilities within ``1e-12`` of uniform, both ordered by the logits,
    so ``predict`` is the argmax of ``predict_proba`` everywhere and
    ``predict_proba`` is the softmax of ``decision_function``. The region and
    ``predict_uncertainty`` use the exact activation.

    Every output of a row depends on that row only, never on the other rows
    of the call, nor on ``n_jobs`` or the thread settings.

    ``alpha``, ``ensemble`` and ``rejection_label`` are fitted: after
    changing one with ``set_params``, prediction methods raise until the
    model is refitted (:meth:`recalibrate` changes ``alpha`` without
    retraining). ``conservative``, ``alpha_levels``, ``n_jobs`` and
    ``verbose`` take effect at once.

    The paper's settings are ``n_exemplar_dims=1000, n_iterations=10,
    n_epochs=200, warmup_fraction=0, learning_rate=1e-5, batch_size=50``.

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
        "estimator": [
            HasMethods(["fit", "transform"]),
            HasMethods(["fit", "predict_proba"]),
            HasMethods(["fit", "decision_function"]),
            None,
        ],
        "response_method": [
            StrOptions({"auto", "predict_proba", "decision_function"})
        ],
        "append_features": ["boolean", StrOptions({"auto"})],
        "alpha": [ALPHA],
        "confidence": [Interval(Real, 0, 1, closed="neither"), None],
        "n_exemplar_dims": [Interval(Integral, 1, None, closed="left")],
        "n_iterations": [Interval(Integral, 1, None, closed="left")],
        "share_split": ["boolean"],
        "n_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "warmup_fraction": [Interval(Real, 0, 1, closed="both")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "calibration_size": [Interval(Real, 0, 1, closed="neither")],
        "max_similarity": [
            Interval(Integral, 1, MAX_SIMILARITY_LIMIT, closed="both"), None
        ],
        "standardize": [StrOptions({"feature", "global"})],
        "search": [
            StrOptions({"auto", "exact", "faiss", "approximate", "dask",
                        "dask-faiss"})
        ],
        "conservative": ["boolean"],
        "ensemble": ["boolean"],
        "alpha_levels": ["array-like", None],
        "rejection_label": "no_validation",
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        response_method="auto",
        append_features="auto",
        alpha=0.95,
        confidence=0.5,
        n_exemplar_dims=128,
        n_iterations=3,
        share_split=True,
        n_epochs="auto",
        warmup_fraction=0.5,
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
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.response_method = response_method
        self.append_features = append_features
        self.alpha = alpha
        self.confidence = confidence
        self.n_exemplar_dims = n_exemplar_dims
        self.n_iterations = n_iterations
        self.share_split = share_split
        self.n_epochs = n_epochs
        self.warmup_fraction = warmup_fraction
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
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, *, sample_weight=None, ids=None):
        """Fit the adaptor on support splits and calibrate the region.

        A failed ``fit`` leaves a previously fitted model as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Training inputs: the features, or whatever ``estimator`` takes.
            With ``search="dask"``, a dask array or DataFrame stays on the
            running client's cluster when ``estimator`` is None or a
            FrozenEstimator of a transformer: the adaptor trains on a sample
            of at most 100,000 support points gathered here, the support
            set's shards are built on the workers from ``X``'s blocks, and
            the calibration split is searched there; with at most that many
            support points the fit equals the in-memory fit bit for bit
            (see :ref:`scaling`). Otherwise a dask collection (here or in
            ``y``, ``sample_weight``, ``ids``, which always come here) is
            computed into this process first and the fit is the in-memory
            fit on the same rows.
        y : array-like of shape (n_samples,)
            Class labels (integers, booleans or strings).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights. They weight the base model's fit on each
            support split, when its ``fit`` takes ``sample_weight`` (a
            warning says when it does not; a Pipeline's does not), the
            adaptor's loss, and the balanced calibration loss that chooses
            the epoch and the iteration. They do not enter the split, q, d,
            the distance eCDFs or the region: the region's test counts
            calibration points of each class as independent draws, and a
            class-conditional accuracy does not depend on how much the
            classes weigh. An integer weight ``k`` counts a point ``k``
            times in both losses (as ``k`` copies of it would), not in the
            support set or in the region. Weights of 1 give the same model
            as no weights.
        ids : array-like of shape (n_samples,), default=None
            Identifiers of the training points, reported by :meth:`explain`
            and :meth:`calibration_partition` (``support_ids_``,
            ``calibration_ids_``) and kept as given (mixed kinds in an
            object array). Default: the index of a DataFrame ``X``, else
            row positions.

        Returns
        -------
        self : SDMClassifier
            The fitted classifier.
        """
        previous_state = dict(self.__dict__)
        try:
            with single_threaded_blas():
                return self._fit(X, y, ids, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    def _forget_input_names(self):
        for name in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)

    def _cluster_features(self, X, ids, n_labels):
        """Features of a dask collection that stays on the cluster, and ids.

        The first rows are validated here (width, dtypes, feature names);
        every block is checked on the workers when it is computed.
        """
        check = None
        if self.estimator is None:
            check = functools.partial(validate_data, self,
                                      dtype=[np.float64, np.float32],
                                      ensure_min_samples=0)
        else:
            self._forget_input_names()
        features = ClusterFeatures(X, self.estimator, check)
        check_consistent_length(np.empty(len(features)), np.empty(n_labels))
        if ids is None:
            return features, features.default_ids()
        return features, as_ids(ids, len(features))

    def _fit(self, X, y, ids, sample_weight):
        self._alpha_levels()  # validates alpha_levels before any work
        if fits_on_cluster(X, self.estimator, self.search):
            y, ids, sample_weight = computed(y, ids, sample_weight)
            X, ids = self._cluster_features(X, ids, len(y))
        else:
            X, y, ids, sample_weight = computed(X, y, ids, sample_weight)
            if ids is not None:
                ids = as_ids(ids, _num_samples(X))
            elif input_index(X) is not None:
                ids = default_ids(X)
            # else None: the row positions (the model shares the split's)
            if self.estimator is None:
                X, y = validate_data(
                    self, X, y, dtype=[np.float64, np.float32], y_numeric=False,
                    ensure_min_samples=2,
                )
            else:
                X, y = indexable(X, y)
                self._forget_input_names()
                if _num_samples(X) == 0:
                    raise ValueError(
                        "Found array with 0 sample(s) while a minimum of 2 is "
                        "required by SDMClassifier."
                    )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, y, dtype=np.float64, ensure_non_negative=True
            )
            _warn_if_weights_skip(self.estimator)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if is_on_cluster(X):  # a byte a row in this process, not eight
            y_encoded = compact(y_encoded, len(classes) - 1)
        check_class_counts(classes, label_counts(y_encoded))
        check_consistent_length(ids, y)
        rejection_label = resolve_rejection_label(self.rejection_label, classes)
        result = fit_sdm(
            X, y, y_encoded, classes, ids,
            estimator=self.estimator,
            config=TrainingConfig(
                n_exemplar_dims=self.n_exemplar_dims,
                n_iterations=self.n_iterations,
                share_split=self.share_split,
                n_epochs=self.n_epochs,
                warmup_fraction=self.warmup_fraction,
                learning_rate=self.learning_rate,
                batch_size=self.batch_size,
                calibration_size=self.calibration_size,
                max_similarity=self.max_similarity,
                standardize=self.standardize,
                search=self.search,
                ensemble=self.ensemble,
                n_jobs=resolve_n_jobs(self.n_jobs),
                response_method=self.response_method,
                append_features=self.append_features,
            ),
            alpha=self.alpha,
            confidence=self.confidence,
            random_state=self.random_state,
            verbose=self.verbose,
            sample_weight=sample_weight,
        )
        _warn_about_region(result.model, stacklevel=5)

        self.classes_ = classes
        self.estimator_ = fitted_estimator(result.model.producer)
        for name in ("n_features_in_", "feature_names_in_"):
            if self.estimator is not None and hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))
        self._model = result.model
        self._fitted = {name: getattr(self, name) for name in FITTED_PARAMETERS}
        self.rejection_label_ = rejection_label
        self.search_ = result.search
        self.n_epochs_ = result.n_epochs
        self.calibration_loss_ = result.losses
        self.best_iteration_ = result.best_iteration
        self.best_epoch_ = result.best_epoch
        self._sdm_version = __version__
        return self

    @_computes
    def recalibrate(self, alpha):
        """Recompute the region at another ``alpha`` without retraining.

        The region (certified at the current ``confidence``, or Alg. 1 when
        it is None), the class thresholds, the DKW band and the
        ``alpha_levels`` regions are recomputed on the stored calibration
        split (of every ensemble member too). Training never uses ``alpha``
        nor ``confidence``, so ``fit`` with ``alpha=a`` and ``fit`` with
        ``alpha=b`` followed by ``recalibrate(a)`` give identical outputs
        and fitted attributes. Sets the ``alpha`` parameter to the new
        value; a ``confidence`` changed with ``set_params`` since the fit
        takes effect here.

        Parameters
        ----------
        alpha : float
            The new target, in ``(0.5, 1]``.

        Returns
        -------
        self : SDMClassifier
            This classifier, with its region recomputed in place.
        """
        check_is_fitted(self)
        self._check_unchanged(skip=("alpha", "confidence"))
        # the constraints of the constructor's parameters, in one home
        _check_parameters(
            {"alpha": alpha, "confidence": self.confidence},
            self._parameter_constraints,
            caller_name=f"{type(self).__name__}.recalibrate",
        )
        confidence = None if self.confidence is None else float(self.confidence)
        model = self._model.recalibrated(float(alpha), confidence)
        _warn_about_region(model, stacklevel=4)
        self.alpha = alpha
        self._model = model
        self._fitted = {**self._fitted, "alpha": alpha, "confidence": self.confidence}
        return self

    def _validate_params(self):
        """scikit-learn's validation of the constructor's parameters, bools
        refused where a number is expected."""
        _check_parameters(self.get_params(deep=False), self._parameter_constraints,
                          caller_name=type(self).__name__)

    def _alpha_levels(self):
        """The ``alpha_levels`` parameter, validated, as a tuple of floats."""
        return alpha_levels(self.alpha_levels)

    # -------------------------------------------------------------- predict

    def _check_unchanged(self, skip=()):
        """Raise when a fitted parameter was changed after fit."""
        for name in FITTED_PARAMETERS:
            fitted, now = self._fitted[name], getattr(self, name)
            if name in skip or (type(fitted) is type(now) and fitted == now):
                continue
            remedy = ("call recalibrate(alpha) or refit" if name == "alpha"
                      else "refit the model")
            raise ValueError(
                f"{name} was changed from {fitted!r} to {now!r} after fit; the "
                f"fitted model still has {name}={fitted!r}: {remedy}, or set "
                f"{name} back."
            )

    def _prepared(self, X):
        """The fitted model (one snapshot for the call) and validated inputs.

        Inputs are validated features without a producer, else passed to the
        producer as they are.
        """
        check_is_fitted(self)
        self._check_unchanged()
        model = self._model
        if model.producer is None:
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        else:
            (X,) = indexable(X)
        return model, X

    def _uncertainty(self, X):
        model, inputs = self._prepared(X)
        return model.uncertainty(
            inputs, conservative=self.conservative,
            alpha_levels=self._alpha_levels(), n_jobs=resolve_n_jobs(self.n_jobs),
        )

    @dask_collections
    @_computes
    def predict(self, X, *, selective=False):
        """Predicted class: the argmax of the adaptor's logits z'.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Inputs.
        selective : bool, default=False
            Return what :meth:`predict_selective` returns instead: the
            prediction inside the HIGH-RELIABILITY region and
            ``rejection_label_`` elsewhere. This is how a Pipeline ending in
            SDMClassifier gives selective predictions:
            ``pipeline.predict(X, selective=True)`` (with metadata routing
            enabled, request it first with
            ``set_predict_request(selective=True)``).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels (every input gets one unless ``selective``).
        """
        if selective:
            return self._selective(X)
        model, inputs = self._prepared(X)
        return model.predict(inputs)

    @dask_collections
    @_computes
    def decision_function(self, X):
        """SDM scores ``ln(2 + q) * d * z'``; their softmax is ``predict_proba``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Inputs.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            For two classes, the second column minus the first. At ``d = 0``
            the limit ``d -> 0+`` (see Notes of the class).
        """
        model, inputs = self._prepared(X)
        scores = model.scores(inputs, resolve_n_jobs(self.n_jobs))
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    @dask_collections
    @_computes
    def predict_proba(self, X):
        """The SDM activation, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one; uniform (to within 1e-12) where ``d = 0``.
        """
        model, inputs = self._prepared(X)
        return model.probabilities(inputs, resolve_n_jobs(self.n_jobs))

    @dask_collections
    @_computes
    def predict_uncertainty(self, X):
        """Every per-prediction diagnostic of the SDM estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
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
            ``assigned_alpha`` (the highest level of the ladder of
            ``alpha`` and ``alpha_levels`` that admits the point, 0 when
            none) and ``reason``, a categorical: ``admitted``,
            ``out_of_distribution`` (floor(q') = 0, and every row whose
            features are not finite or overflow float32 once standardized:
            q = 0, d = 0, ``d_nearest`` inf, ``nearest_support_index`` -1),
            ``no_region`` (no
            region exists at ``alpha``), ``below_region`` (q' below
            ``min_rescaled_similarity_``) or ``below_class_threshold`` (the
            SDM output below the class threshold); both follow the variant
            chosen by ``conservative``. Then ``admitted_ensemble`` when
            ``ensemble=True``.
        """
        import pandas as pd

        columns = self._uncertainty(X)
        columns["reason"] = pd.Categorical.from_codes(columns["reason"], REASONS)
        names = list(UNCERTAINTY_COLUMNS) + [
            name for name in OPTIONAL_COLUMNS if name in columns
        ]
        return pd.DataFrame(
            {name: columns[name] for name in names}, index=input_index(X)
        )

    @dask_collections
    @_computes
    def predict_selective(self, X):
        """The SDM estimator: the prediction where admitted, else a marker.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predicted label for inputs in the HIGH-RELIABILITY region
            (``admitted_lower`` when ``conservative=True``), and
            ``rejection_label_`` elsewhere. An object array when the
            classes' dtype cannot hold the marker exactly.
        """
        return self._selective(X)

    def _selective(self, X):
        columns = self._uncertainty(X)
        return selective_labels(
            columns["prediction"], columns[admitted_column(self.conservative)],
            self.rejection_label_, self.classes_,
        )

    @dask_collections
    @_computes
    def exemplars(self, X):
        """Exemplar vectors h' of the inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            Inputs.

        Returns
        -------
        exemplars : ndarray of shape (n_samples, n_exemplar_dims)
            The exemplar vector of each input under the fitted adaptor, in
            the space of ``support_exemplars_``.
        """
        model, inputs = self._prepared(X)
        return model.exemplars(inputs)

    @_computes
    def explain(self, X, *, n_neighbors=5):
        """The support points behind each prediction: its nearest exemplars.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
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

        if isinstance(n_neighbors, bool) or not (
            isinstance(n_neighbors, Integral) and n_neighbors >= 1
        ):
            raise ValueError(
                f"n_neighbors must be a positive integer; got {n_neighbors!r}."
            )
        model, inputs = self._prepared(X)
        columns = model.explain(inputs, int(n_neighbors),
                                resolve_n_jobs(self.n_jobs))
        columns["input"] = row_labels(X, columns["input"])
        return pd.DataFrame(columns)

    @_computes
    def calibration_partition(self, X):
        """Calibration points that share each input's class and floor(q').

        The partition of a point is its predicted class and ``floor(q')``
        (the paper's interpretability by exemplar): the calibration points
        in it show how points like the input fared. It is not the set Alg. 1
        used, which groups calibration points by true label over
        ``q' >= q'_min``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
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

        model, inputs = self._prepared(X)
        columns = model.calibration_partition(inputs, resolve_n_jobs(self.n_jobs))
        columns["input"] = row_labels(X, columns["input"])
        return pd.DataFrame(columns)

    @_computes
    def add_support(self, X, y, *, ids=None):
        """Add labeled points to the support set without retraining.

        The adaptor, and so ``predict``, never changes; q and d_nearest of
        later queries do (paper, A.6). The calibration eCDFs, the region,
        the cap on q and the effective sample sizes are not recomputed.
        Labels outside ``classes_`` are accepted as out-of-distribution
        exemplars: they are never good for any query, so they lower the
        similarity of their neighbours. The update is atomic: a prediction
        running in another thread sees the support set before or after it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            New support points.
        y : array-like of shape (n_samples,)
            Their labels (no missing values).
        ids : array-like of shape (n_samples,), default=None
            Their identifiers. Default: the index of a DataFrame ``X``, else
            consecutive integers after the largest default so far (the
            training rows are ``0 .. n_samples - 1``).

        Returns
        -------
        self : SDMClassifier
            This classifier, with the points added to its support set.
        """
        y = column_or_1d(y, dtype=None)
        check_no_missing_labels(y)
        with _UPDATE_LOCK:
            model, inputs = self._prepared(X)
            if ids is None:
                ids = default_ids(X, first=model.n_seen)
            ids = as_ids(ids, len(y))
            check_consistent_length(inputs, y, ids)
            self._model = model.with_support(inputs, y, ids)
        return self

    # ---------------------------------------------------- model attributes
    # Read from the current model, so that they follow add_support and
    # recalibrate (documented in the class docstring).

    support_exemplars_ = _model_attribute(lambda model: model.support_exemplars())
    support_labels_ = _model_attribute(lambda model: model.support_values_at())
    support_predictions_ = _model_attribute(lambda model: model.support_predictions)
    support_ids_ = _model_attribute(lambda model: model.support_ids)
    calibration_ids_ = _model_attribute(lambda model: model.calibration.ids)
    max_similarity_ = _model_attribute(lambda model: model.max_similarity)
    @property
    def min_rescaled_similarity_(self):
        check_is_fitted(self)
        return self._model.region(self._alpha_levels())[0]

    @property
    def class_thresholds_(self):
        check_is_fitted(self)
        return self._model.region(self._alpha_levels())[1]

    @property
    def region_class_counts_(self):
        check_is_fitted(self)
        return self._model.region_class_counts(self.min_rescaled_similarity_)

    @property
    def calibration_uncertainty_(self):
        import pandas as pd

        check_is_fitted(self)
        return pd.DataFrame(self._model.calibration_columns(self._alpha_levels()))

    def save(self, path):
        """Store this classifier in a directory, its shards apart.

        The classifier is pickled into ``path/model.pkl``, except a support
        set sharded over a cluster (``search="dask"``): each such set writes
        its shards to a sub-directory, one at a time (two ``.npy`` files a
        shard: the float32 vectors, and the original indices and good
        classes), so that this process never holds the whole set. Pickling
        such a model instead gathers its support set into an in-memory
        exact one, which is refused above
        ``sdm_sklearn._dask_support.MAX_GATHER_BYTES`` (2 GiB of points by
        default). Any other classifier is stored whole in ``model.pkl``.

        Parameters
        ----------
        path : path-like
            A directory, created if missing; files of an earlier ``save``
            there are overwritten.
        """
        check_is_fitted(self)
        save_to_directory(self, path)

    @classmethod
    def load(cls, path, *, client=None, read_on_workers=False):
        """A classifier stored by :meth:`save`, its shards on a cluster.

        Loading unpickles ``model.pkl``: load only directories you trust.

        Parameters
        ----------
        path : path-like
            The directory given to :meth:`save`.
        client : distributed.Client, default=None
            The cluster that gets the shards of a sharded support set (as
            many shards as were saved, dealt over its worker threads); None:
            the running client of this process. Unused for a classifier
            without sharded support sets.
        read_on_workers : bool, default=False
            False: this process reads each shard and sends it inside the
            task that builds it, so the workers need not see ``path`` and
            the scheduler can rebuild a shard lost with its worker. True: the
            workers read the shard files themselves (``path`` on a file
            system they share, kept there while the model is used) and the
            tasks carry only the file names.

        Returns
        -------
        classifier : SDMClassifier
        """
        loaded = load_from_directory(path, client=client,
                                     read_on_workers=read_on_workers)
        if not isinstance(loaded, cls):
            raise TypeError(
                f"{path} holds a {type(loaded).__name__}, not a {cls.__name__}."
            )
        return loaded

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
        if self.estimator is None or (
            self.append_features is True
            and producer_kind(self.estimator) == "classifier"
        ):
            # the features are X itself: dense and finite
            tags.input_tags.sparse = False
            tags.input_tags.allow_nan = False
        return tags


def _warn_if_weights_skip(estimator):
    """Say so when ``sample_weight`` cannot reach the base model's fit."""
    if estimator is None or is_frozen(estimator) or takes_sample_weight(estimator):
        return
    warnings.warn(
        f"{type(estimator).__name__}.fit does not take sample_weight: the "
        "base model is fitted unweighted, and the weights reach the "
        "adaptor's loss and the choice of epoch only (a Pipeline's fit "
        "takes step__sample_weight names, which SDMClassifier does not "
        "guess).",
        UserWarning, stacklevel=4,
    )


def _warn_about_region(model, stacklevel):
    """Warn when a model has no region, or one resting on few points.

    ``stacklevel`` points the warning at the user's call.
    """
    alpha = model.alpha
    if not np.isfinite(model.min_rescaled_similarity):
        warnings.warn(
            f"No HIGH-RELIABILITY region exists at alpha={alpha}: "
            "predict_selective will reject every input. More data, a "
            "stronger feature producer or a lower alpha may create one."
            + _certificate_needs(model),
            NoHighReliabilityRegionWarning,
            stacklevel=stacklevel,
        )
        return
    few = {plain_value(label): count
           for label, count in model.small_region_classes().items()}
    if few:
        warnings.warn(
            "The HIGH-RELIABILITY region rests on few calibration points of "
            f"some classes (class: count) {few}: below ceil(1 / (1 - alpha))"
            f" = {minimum_region_count(alpha)}, their conditional "
            "accuracy is unreliable. Consider more data or conservative=True.",
            SmallRegionWarning,
            stacklevel=stacklevel,
        )


def _certificate_needs(model):
    """What a certified region needs, said in counts (empty for Alg. 1)."""
    if model.confidence is None:
        return ""
    needed = zero_error_count(model.alpha, model.confidence)
    counts = np.bincount(model.calibration.labels, minlength=len(model.classes))
    have = {plain_value(label): int(count)
            for label, count in zip(model.classes, counts, strict=True)}
    return (
        f" A region certified at confidence={model.confidence} needs, for "
        f"every class, at least {needed} calibration points in the region "
        "(true and predicted), and more when any of them is wrong; the "
        f"calibration split holds (class: count) {have}. Use more data, a "
        "larger calibration_size, a lower alpha or confidence, or "
        "alpha_levels for a ladder of lower levels."
    )
