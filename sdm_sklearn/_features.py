"""Producing features: none, a transformer or pipeline, a classifier, frozen.

The producer of a fit is chosen by the ``estimator`` parameter:

- None: the inputs are the features (embeddings, tabular data);
- a transformer or a Pipeline ending in one: cloned and fitted on the
  support split of every iteration only, so that no calibration point is
  ever seen by anything fitted;
- a classifier (``predict_proba`` or ``decision_function``): its responses
  are the features (:class:`ClassifierResponses`). On the support split they
  are cross-fitted (out of fold), so that support points look to the adaptor
  like unseen points; calibration and new points get the responses of the
  classifier fitted on the whole support split;
- any of these in a :class:`~sklearn.frozen.FrozenEstimator`: used as it
  is, never refitted.

A row's features never depend on the other rows of a call. Producers
known to compute every row on its own (tree models, elementwise
preprocessing, and pipelines and column transformers of them: see
:func:`is_row_wise`) take a whole chunk of inputs in one call. Any other
producer, one computing with BLAS say, whose rounding may depend on the
shape of the product, takes blocks of exactly ``PADDED_ROWS`` rows (the last
one padded by repeating its last row).
"""

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_array, has_fit_parameter

from ._blocks import block_starts

# Rows of every call of a producer that is not row-wise (see is_row_wise):
# large enough that the producer's per-call cost (input validation, a
# DataFrame's conversion) is paid rarely, small enough that padding one row
# to a block stays cheap for the producers measured in benchmarks/bench_cost.py.
PADDED_ROWS = 1024
# Producers whose output for a row is a function of that row alone, whatever
# the other rows of the call: tree models (every row walks the trees on its
# own; probabilities are finished row by row) and elementwise preprocessing.
# Exact types only: a subclass may compute differently.
ROW_WISE_TYPES = frozenset({
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.ExtraTreeClassifier",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.impute.SimpleImputer",
})
# Folds of the cross-fitted responses of a classifier on the support split
# (fewer when a class has fewer support points).
RESPONSE_FOLDS = 5
# Probabilities are turned into features as log(max(p, PROBABILITY_FLOOR)).
# Measured (digits and breast cancer, 2 seeds, kNN, random forest, logistic
# regression, gradient boosting): a floor of 1e-12 let the hard zeros of a
# random forest dominate (accuracy 0.62 on digits, nothing admitted), raw
# probabilities admitted nothing for logistic regression on digits, and 1e-2
# had no such failure (benchmarks/README.md, "Classifier responses").
PROBABILITY_FLOOR = 1e-2


class RowSubset:
    """Rows ``index`` of a 2-D array, read in slices without a full copy.

    Training standardizes the support and calibration splits chunk by chunk
    (:mod:`sdm_sklearn._adaptor`); this keeps the raw features of both splits
    from being copied whole, which at a million rows would double the
    memory of the input.
    """

    def __init__(self, array, index):
        self.array = array
        self.index = np.asarray(index)

    @property
    def shape(self):
        return (len(self.index),) + self.array.shape[1:]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, rows):
        return self.array[self.index[rows]]


def is_frozen(estimator):
    """Whether the producer is used as it is (never refitted)."""
    return isinstance(estimator, FrozenEstimator)


def producer_kind(estimator):
    """"none", "classifier" or "transformer": how ``estimator`` makes features."""
    if estimator is None:
        return "none"
    return "classifier" if is_classifier(estimator) else "transformer"


def resolve_response_method(estimator, response_method):
    """The classifier method whose outputs are the features.

    "auto" is ``predict_proba`` when the classifier has it, else
    ``decision_function``.
    """
    if response_method == "auto":
        return ("predict_proba" if hasattr(estimator, "predict_proba")
                else "decision_function")
    if not hasattr(estimator, response_method):
        raise ValueError(
            f"response_method={response_method!r}, but {estimator!r} has no "
            f"{response_method} method."
        )
    return response_method


def _response_features(responses, method):
    """2-D float features from a classifier's raw responses."""
    responses = np.asarray(responses, dtype=np.float64)
    if responses.ndim == 1:
        responses = responses[:, None]
    if method == "predict_proba":
        responses = np.log(np.maximum(responses, PROBABILITY_FLOOR))
    return responses


class ClassifierResponses:
    """A fitted classifier used as a feature producer.

    ``transform(X)`` returns the classifier's responses (log-probabilities
    for ``predict_proba``, scores for ``decision_function``; one column for
    a binary ``decision_function``), after the columns of ``X`` itself when
    ``append_features`` is true.

    Parameters
    ----------
    classifier : fitted classifier
    method : {"predict_proba", "decision_function"}
    append_features : bool
    fill : ndarray of shape (n_columns,), default=None
        With ``append_features``: what a missing value (NaN) of each column
        of ``X`` becomes among the features, the column's mean over the
        training rows (see :func:`column_means`). The classifier itself sees
        the NaN.
    """

    def __init__(self, classifier, method, append_features, fill=None):
        self.classifier = classifier
        self.method = method
        self.append_features = append_features
        self.fill = fill

    def __repr__(self):
        return f"ClassifierResponses({self.classifier!r}, {self.method!r})"

    def features(self, X, responses):
        """Features from inputs and their (raw) responses."""
        responses = _response_features(responses, self.method)
        if not self.append_features:
            return responses
        raw = check_array(X, dtype=[np.float64, np.float32],
                          ensure_all_finite="allow-nan")
        missing = np.isnan(raw)
        if missing.any():
            raw = np.where(missing, self.fill, raw)
        return np.hstack([raw, responses])

    def transform(self, X):
        return self.features(X, getattr(self.classifier, self.method)(X))


def column_means(X):
    """Means of the columns of a numeric ``X`` over their non-missing values.

    A column with no value has mean 0.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_columns), numeric, NaN allowed

    Returns
    -------
    means : ndarray of shape (n_columns,), float64
    """
    raw = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
    present = ~np.isnan(raw)
    counts = present.sum(axis=0)
    totals = np.where(present, raw, 0.0).sum(axis=0)
    return np.divide(totals, counts, out=np.zeros(raw.shape[1]), where=counts > 0)


def fitted_estimator(producer):
    """What users see as the fitted producer: a classifier itself, unwrapped."""
    if isinstance(producer, ClassifierResponses):
        return producer.classifier
    return producer


def seeded_clone(estimator, seed):
    """An unfitted copy of ``estimator`` whose unseeded randomness is seeded.

    Every ``random_state`` parameter left at None, the estimator's own and
    its nested estimators' (a Pipeline's steps, say), is set to ``seed``, so
    that the same ``SDMClassifier(random_state=...)`` gives the same model.
    A ``random_state`` the user set is kept.

    Parameters
    ----------
    estimator : estimator
    seed : int

    Returns
    -------
    estimator : estimator
        A clone.
    """
    estimator = clone(estimator)
    unseeded = {name: seed for name, value in estimator.get_params(deep=True).items()
                if (name == "random_state" or name.endswith("__random_state"))
                and value is None}
    return estimator.set_params(**unseeded)


def takes_sample_weight(estimator):
    """Whether ``estimator.fit`` has a ``sample_weight`` parameter.

    A Pipeline's ``fit`` takes ``step__sample_weight`` names instead, so it
    does not (scikit-learn's own meta-estimators decide the same way).
    """
    return has_fit_parameter(estimator, "sample_weight")


def _cross_fitted(estimator, X, y, method, append_features, seed, fit_params):
    """A classifier producer fitted on X, and its out-of-fold features of X.

    ``fit_params`` (``sample_weight`` or nothing) go to every fit.
    """
    counts = np.unique(y, return_counts=True)[1]
    n_splits = int(min(RESPONSE_FOLDS, counts.min()))
    if n_splits < 2:
        raise ValueError(
            "A classifier as estimator needs at least 2 support points of "
            "every class for its cross-fitted responses; use more data or a "
            "smaller calibration_size."
        )
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    out_of_fold = cross_val_predict(clone(estimator), X, y, cv=folds,
                                    method=method, params=fit_params)
    producer = ClassifierResponses(
        clone(estimator).fit(X, y, **fit_params), method, append_features,
        column_means(X) if append_features else None,
    )
    return producer, check_features(producer.features(X, out_of_fold), producer)


def resolve_append(append_features, X):
    """Whether a classifier's responses follow the columns of ``X``.

    "auto": when ``X`` is a dense numeric 2-D array (or converts to one),
    missing values (NaN) included; not for text or sparse matrices, which
    the classifier may take but the adaptor cannot. Decided by the kind of
    ``X``, never by its values, so a NaN in training does not change the
    feature space.
    """
    if append_features != "auto":
        return bool(append_features)
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        return False
    try:
        check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False)
    except (TypeError, ValueError):
        return False
    return True


def frozen_producer(estimator, response_method, append_features, X):
    """The producer of a FrozenEstimator (a classifier's responses, or it).

    ``X``, the training inputs, gives the fill of missing appended values.
    """
    if producer_kind(estimator) == "classifier":
        method = resolve_response_method(estimator, response_method)
        return ClassifierResponses(estimator, method, append_features,
                                   column_means(X) if append_features else None)
    return estimator


def check_features(features, producer, n_features=None, finite=True):
    """Features from a producer: dense, 2-D, finite, numeric, the right width.

    Parameters
    ----------
    features : array-like
        What the producer returned.
    producer : estimator
        Named in error messages.
    n_features : int, default=None
        The width the adaptor was fitted on (None: any).
    finite : bool, default=True
        Whether NaN and infinity are errors; predictions pass False and
        reject such rows instead.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32 or float64
    """
    if hasattr(features, "toarray") or hasattr(features, "tocsr"):
        raise TypeError(
            f"The feature producer {producer!r} returned a sparse matrix. "
            "SDMClassifier needs dense features: end the pipeline with a "
            "dense transformer, e.g. sklearn.decomposition.TruncatedSVD."
        )
    try:
        features = check_array(features, dtype=[np.float64, np.float32],
                               ensure_all_finite=finite)
    except ValueError as error:
        raise ValueError(
            f"The feature producer {producer!r} returned invalid features: "
            f"{error}"
        ) from error
    if n_features is not None and features.shape[1] != n_features:
        raise ValueError(
            f"The feature producer {producer!r} returned {features.shape[1]} "
            f"features, but SDMClassifier was fitted on {n_features}."
        )
    return features


def _public_name(estimator):
    """``package.Name`` of an estimator's exact type (private modules cut)."""
    kind = type(estimator)
    public = [part for part in kind.__module__.split(".")
              if not part.startswith("_")]
    return ".".join(public[:2] + [kind.__qualname__])


def is_row_wise(producer):
    """Whether ``producer`` computes the features of every row on its own.

    True for the exact types of ``ROW_WISE_TYPES``, for the
    :class:`ClassifierResponses` and ``FrozenEstimator`` of one, and for a
    Pipeline or ColumnTransformer all of whose steps are (``"passthrough"``
    and dropped columns included). Such a producer may take any number of
    rows in one call; any other takes fixed, padded blocks (see
    :func:`produce`).

    Parameters
    ----------
    producer : estimator, "passthrough", "drop" or None

    Returns
    -------
    row_wise : bool
    """
    if producer is None or isinstance(producer, str):
        return producer in (None, "passthrough", "drop")
    if isinstance(producer, ClassifierResponses):
        return is_row_wise(producer.classifier)
    if is_frozen(producer):
        return is_row_wise(producer.estimator)
    steps = getattr(producer, "steps", None)
    if steps is not None and _public_name(producer) == "sklearn.pipeline.Pipeline":
        return all(is_row_wise(step) for _, step in steps)
    if _public_name(producer) == "sklearn.compose.ColumnTransformer":
        parts = getattr(producer, "transformers_", producer.transformers)
        return is_row_wise(producer.remainder) and all(
            is_row_wise(part) for _, part, _ in parts
        )
    return _public_name(producer) in ROW_WISE_TYPES


def produce(producer, X, n_features=None, finite=True):
    """Features of inputs ``X``, each row's independent of the other rows.

    A row-wise producer (:func:`is_row_wise`) transforms ``X`` in one call;
    any other, blocks of exactly ``PADDED_ROWS`` rows, the last one padded
    by repeating its last row.

    Parameters
    ----------
    producer : fitted transformer or ClassifierResponses
    X : producer input with ``n_samples`` rows
    n_features : int, default=None
        Expected width (see :func:`check_features`).
    finite : bool, default=True
        See :func:`check_features`.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)
    """
    n_samples = _num_samples(X)
    if n_samples == 0 or is_row_wise(producer):
        return check_features(producer.transform(X), producer, n_features,
                              finite)
    parts = []
    for start in block_starts(n_samples, PADDED_ROWS):
        rows = np.minimum(np.arange(start, start + PADDED_ROWS), n_samples - 1)
        size = min(PADDED_ROWS, n_samples - start)
        block = check_features(
            producer.transform(_safe_indexing(X, rows)), producer, n_features,
            finite,
        )
        parts.append(block[:size])
        n_features = block.shape[1]
    return np.concatenate(parts)


def split_features(estimator, X, y, support_index, calibration_index, *,
                   response_method, append_features, seed,
                   frozen=None, sample_weight=None):
    """The producer of one iteration and the features of both splits.

    Parameters
    ----------
    estimator : None, transformer, Pipeline, classifier or FrozenEstimator
        The ``estimator`` parameter.
    X : array-like or producer input
        All training inputs (validated features when ``estimator`` is None).
    y : array-like of shape (n_samples,)
        Labels, passed to the producer's ``fit``.
    support_index, calibration_index : ndarray of int
        The split.
    response_method : {"auto", "predict_proba", "decision_function"}
    append_features : bool
        For a classifier: the inputs' columns before its responses.
    seed : int
        Seeds the folds of the cross-fitted responses and every
        ``random_state`` of the estimator left at None.
    frozen : tuple, default=None
        For a FrozenEstimator: its producer and the features of all of
        ``X``, built once for every iteration.
    sample_weight : ndarray of shape (n_support,), default=None
        Weights of the support rows, passed to the producer's ``fit`` when
        it takes ``sample_weight`` (see :func:`takes_sample_weight`).

    Returns
    -------
    producer : fitted transformer, ClassifierResponses or None
    support_features, calibration_features : ndarray or RowSubset
        Raw features of both splits (rows of ``X`` without a producer, or
        of the frozen features).
    """
    if estimator is None:
        return None, RowSubset(X, support_index), RowSubset(X, calibration_index)
    if frozen is not None:
        producer, features = frozen
        return (producer, RowSubset(features, support_index),
                RowSubset(features, calibration_index))
    estimator = seeded_clone(estimator, seed)
    support_X = _safe_indexing(X, support_index)
    support_y = _safe_indexing(y, support_index)
    fit_params = ({} if sample_weight is None or not takes_sample_weight(estimator)
                  else {"sample_weight": sample_weight})
    if producer_kind(estimator) == "classifier":
        producer, support_features = _cross_fitted(
            estimator, support_X, support_y,
            resolve_response_method(estimator, response_method),
            append_features, seed, fit_params,
        )
    else:
        producer = estimator  # a fresh clone already
        support_features = check_features(
            producer.fit_transform(support_X, support_y, **fit_params), producer
        )
    calibration_features = produce(
        producer, _safe_indexing(X, calibration_index), support_features.shape[1]
    )
    return producer, support_features, calibration_features
