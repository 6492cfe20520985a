"""The ``evaluate`` command: fit or load an SDMClassifier, tabulate a test file.

``python -m sdm_sklearn evaluate --train FILE --test FILE`` fits
:class:`~sdm_sklearn.SDMClassifier` on one file and prints the selective
tables of both variants on another; ``--model`` reuses a model saved with
``--save``. Both files are read and checked against each other before the
fit. Problems with the user's files end the command with one line on stderr
and exit status 2.
"""

import argparse
import csv
import json
import math
import sys
import time
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._model import admitted_column
from ._validation import MARGINAL, is_alpha
from .classifier import SDMClassifier
from .metrics import format_selective_report, selective_report

__all__ = ["add_evaluate_parser", "run_evaluate"]

_PROG = "python -m sdm_sklearn evaluate"
_DEFAULT_TARGETS = ("label", "target")
_NPZ_FEATURES = ("X", "features")
_NPZ_LABELS = ("y", "label", "target")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_TABLE_SUFFIXES = (".csv", *_PARQUET_SUFFIXES)
# A first column with one of these names that holds distinct integers is a
# row index saved with the data ("Unnamed: 0" is what pandas calls the empty
# header cell that ``DataFrame.to_csv`` writes for an unnamed index).
_INDEX_NAMES = ("Unnamed: 0", "index")
_TITLES = {
    False: "SDM_HR (admitted)",
    True: "SDM_HR lower, DKW (admitted_lower)",
}
DEFAULT_RANDOM_STATE = 0
# Fits on at least this many feature values (rows x features) print their
# progress: the fit of 5,000 x 384 = 1.9 million takes about 4 s on 2 cores.
PROGRESS_VALUES = 1_000_000
_MAX_SEED = 2**32 - 1


class InputError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


class Dataset(NamedTuple):
    """Features and labels read from one file.

    ``target`` is the label column (array for NPZ); ``guessed`` says that it
    is the last column of a table, taken for want of a column named
    "label" or "target".
    """

    features: object
    labels: np.ndarray
    target: str
    guessed: bool = False


class _Reference(NamedTuple):
    """What a test file must match: the training file or a loaded model."""

    n_features: int
    names: list
    label_kind: str
    label_examples: list  # the distinct labels, sorted
    owner: str  # "the model's" or "train.csv's"
    fitted_on: str  # "the model was fitted on" or "train.csv has"
    labels_owner: str  # "the model's classes" or "train.csv's labels"


def _one_line(error):
    """The message of an exception with its whitespace runs collapsed."""
    return " ".join(str(error).split())


def _shown(names):
    """At most ten names, comma-separated."""
    names = [str(name) for name in names]
    return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")


# ------------------------------------------------------- argument types


def _parse_value(text):
    """The Python value of a ``--set`` value: bool, None, int, float or str."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_setting(text):
    """Split ``PARAM=VALUE`` into the name and the parsed value.

    Parameters
    ----------
    text : str
        A ``--set`` argument.

    Returns
    -------
    name : str
    value : bool, None, int, float or str
    """
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(
            f"expected PARAM=VALUE, e.g. n_epochs=20; got {text!r}"
        )
    return name.strip(), _parse_value(value.strip())


def parse_alpha(text):
    """A target accuracy ``alpha`` in (0.5, 1], as argparse ``type``.

    Parameters
    ----------
    text : str

    Returns
    -------
    alpha : float
    """
    try:
        alpha = float(text)
    except ValueError:
        alpha = math.nan
    if not is_alpha(alpha):
        raise argparse.ArgumentTypeError(
            f"expected a target accuracy in (0.5, 1], e.g. 0.95; got {text!r}"
        )
    return alpha


def parse_seed(text):
    """A seed, an integer in [0, 2**32 - 1], as argparse ``type``.

    Parameters
    ----------
    text : str

    Returns
    -------
    seed : int
    """
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= _MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected an integer seed in [0, 2**32 - 1]; got {text!r}"
        )
    return seed


def add_evaluate_parser(commands):
    """Add the ``evaluate`` sub-command to an argparse sub-parsers object.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The result of ``ArgumentParser.add_subparsers``.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = commands.add_parser(
        "evaluate",
        help="fit SDMClassifier on a file (or load a saved model) and print "
        "its selective tables on a test file",
        description="Fit SDMClassifier on --train (or load --model) and print "
        "the selective table of the standard and of the lower (DKW) variant "
        "on --test. Files: .csv (UTF-8; comma, semicolon or tab separated) "
        "or .parquet, one row per sample, a header, numeric features and one "
        "label column; or .npz (arrays X and y). Both files are checked "
        "against each other before the fit. A first column named "
        "'Unnamed: 0' or 'index' that holds distinct integers is a saved "
        "row index: it is dropped, with a warning. The fit is seeded "
        f"(random_state={DEFAULT_RANDOM_STATE} unless --set random_state=...) "
        "and prints its progress when the training file holds at least "
        f"{PROGRESS_VALUES:,} feature values (rows x features), unless "
        "--set verbose=... is given. Exit status: 0 on success, 2 for a "
        "problem with the input (one line on stderr).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path, metavar="FILE",
                        help="training file (.csv, .parquet or .npz)")
    source.add_argument("--model", type=Path, metavar="MODEL",
                        help="a model saved with --save (joblib); load only "
                        "files you trust")
    parser.add_argument("--test", type=Path, metavar="FILE", required=True,
                        help="labelled test file (.csv, .parquet or .npz)")
    parser.add_argument("--target", metavar="COL",
                        help="label column (array for .npz); default: a "
                        "column named 'label' or 'target', else the last "
                        "column ('y', 'label' or 'target' for .npz); with "
                        "--train, the test table must have the training "
                        "table's label column")
    parser.add_argument("--alpha", type=parse_alpha, metavar="A",
                        help="target accuracy, in (0.5, 1] (default 0.95)")
    parser.add_argument("--set", type=parse_setting, action="append",
                        default=[], metavar="PARAM=VALUE", dest="settings",
                        help="an SDMClassifier hyper-parameter, e.g. "
                        "n_epochs=20 or random_state=1; repeat as needed")
    parser.add_argument("--predictions", type=Path, metavar="OUT.csv",
                        help="write every test row's predict_uncertainty "
                        "columns and its true label to this CSV file")
    parser.add_argument("--save", type=Path, metavar="MODEL",
                        help="save the fitted model with joblib")
    parser.add_argument("--report", type=Path, metavar="OUT.html",
                        help="write a self-contained HTML report on the test "
                        "file (region, selective tables, plots, rejection "
                        "reasons, drift against the calibration split, "
                        "examples with their nearest support points)")
    parser.add_argument("--report-json", type=Path, metavar="OUT.json",
                        help="write the report's numbers as JSON (schema in "
                        "sdm_sklearn.report)")
    return parser


# ----------------------------------------------------------------- reading


def _csv_layout(path):
    """The separator and the header cells of a CSV file, from its first line.

    The separator is a comma, or a semicolon or a tab when the first line
    holds no comma but one of those.
    """
    with open(path, "rb") as handle:
        # pandas skips blank lines; so does this search for the header.
        first = next((line for line in handle if line.strip()), b"")
    if not first:
        raise InputError(f"{path} is empty")
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            f"cannot read {path} as CSV: it starts with a UTF-16 byte-order "
            "mark; save it as UTF-8"
        )
    try:
        header = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from error
    separator = ","
    if "," not in header:
        separator = next((sep for sep in (";", "\t") if sep in header), ",")
    cells = next(csv.reader([header.rstrip("\r\n")], delimiter=separator), [])
    return separator, cells


def _not_utf8(path, error):
    return InputError(
        f"cannot read {path} as CSV: it is not UTF-8 text ({error.reason}); "
        "save it as UTF-8"
    )


def _read_frame(path):
    """A CSV or Parquet file as a DataFrame."""
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except ImportError as error:
            raise InputError(
                f"reading {path} needs pyarrow: pip install pyarrow"
            ) from error
        except (ValueError, OSError) as error:
            raise InputError(
                f"cannot read {path} as Parquet: {_one_line(error)}"
            ) from error
    separator, cells = _csv_layout(path)
    # pandas names empty header cells "Unnamed: 0", "Unnamed: 1"...
    repeated = sorted(
        cell for cell, count in Counter(cells).items() if cell and count > 1
    )
    if repeated:
        raise InputError(
            f"{path}: the column names {repeated[:10]} appear more than once; "
            "give every column its own name"
        )
    try:
        return pd.read_csv(path, sep=separator)
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from error
    except (ValueError, OSError) as error:
        raise InputError(f"cannot read {path} as CSV: {_one_line(error)}") from error


def _drop_index_column(frame, path, target):
    """The table without a row index saved as its first column, if any."""
    first = frame.columns[0]
    if (
        first in _INDEX_NAMES
        and first != target
        and frame.shape[1] > 1
        and pd.api.types.is_integer_dtype(frame[first])
        and frame[first].is_unique
    ):
        warnings.warn(
            f"{path}: ignored the first column {first!r}, a row index saved "
            "with the data (distinct integers); write tables with "
            "to_csv(..., index=False) to leave it out",
            UserWarning,
            stacklevel=2,
        )
        return frame.drop(columns=first)
    return frame


def _split_frame(frame, path, target, label_source=None):
    """Features and labels of a table; features must be numeric and finite.

    ``label_source`` names the training file whose label column ``target``
    is, for the error message when the table lacks it.
    """
    if frame.shape[1] == 0:
        raise InputError(f"{path} has no columns")
    frame.columns = [str(column) for column in frame.columns]
    frame = _drop_index_column(frame, path, target)
    columns = list(frame.columns)
    guessed = False
    if target is None:
        target = next((name for name in _DEFAULT_TARGETS if name in columns), None)
        if target is None:
            target, guessed = columns[-1], True
    elif target not in columns:
        if label_source is not None:
            raise InputError(
                f"{path} has no label column {target!r} (the label column of "
                f"{label_source}); its columns are: {_shown(columns)}"
            )
        raise InputError(
            f"{path} has no column {target!r}; its columns are: {_shown(columns)}"
        )
    if frame.empty:
        raise InputError(f"{path} has no rows")
    features = frame.drop(columns=target)
    if features.shape[1] == 0:
        raise InputError(f"{path} has no feature columns besides {target!r}")
    non_numeric = [
        name for name in features.columns
        if not pd.api.types.is_numeric_dtype(features[name])
    ]
    if non_numeric:
        raise InputError(
            f"{path}: non-numeric feature columns {non_numeric[:10]}; "
            "SDMClassifier needs numeric features (encode them first)"
        )
    incomplete = features.columns[features.isna().any()].tolist()
    if incomplete:
        raise InputError(
            f"{path}: missing values in feature columns {incomplete[:10]}"
        )
    infinite = features.columns[~np.isfinite(features).all()].tolist()
    if infinite:
        raise InputError(
            f"{path}: infinite values in feature columns {infinite[:10]}"
        )
    labels = frame[target]
    if labels.isna().any():
        raise InputError(f"{path}: missing labels in column {target!r}")
    labels = labels.to_numpy()
    _check_finite_labels(labels, path, f"column {target!r}")
    return Dataset(features, labels, target, guessed)


def _check_finite_labels(labels, path, where):
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise InputError(f"{path}: infinite labels in {where}")


def _first_present(names, arrays):
    return next((name for name in names if name in arrays), None)


def _read_npz(path, target):
    """Features and labels of an NPZ archive."""
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path} is not an NPZ archive (the zip of named arrays that "
            "numpy.savez writes)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Members that are not .npy arrays are read as bytes: skip them.
            arrays = {
                name: value for name in archive.files
                if isinstance(value := archive[name], np.ndarray)
            }
    # ValueError: object arrays, which cannot be loaded without pickle.
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read {path} as NPZ: {_one_line(error)}") from error
    feature_name = _first_present(_NPZ_FEATURES, arrays)
    label_name = target if target is not None else _first_present(_NPZ_LABELS, arrays)
    if feature_name is None or label_name not in arrays:
        wanted = f"{target!r}" if target is not None else "'y' (or 'label')"
        raise InputError(
            f"{path} needs a feature array 'X' (or 'features') and a label "
            f"array {wanted}; it holds: {', '.join(arrays) or 'nothing'}"
        )
    features, labels = arrays[feature_name], arrays[label_name]
    if features.ndim != 2 or features.dtype.kind not in "iuf":
        raise InputError(
            f"{path}: array {feature_name!r} must be a 2-D numeric array; got "
            f"shape {features.shape} and dtype {features.dtype}"
        )
    if labels.ndim != 1 or len(labels) != len(features):
        raise InputError(
            f"{path}: array {label_name!r} must be 1-D with one label per row "
            f"of {feature_name!r} ({len(features)}); got shape {labels.shape}"
        )
    if len(features) == 0:
        raise InputError(f"{path} has no rows")
    values = features.astype(float)
    if np.isnan(values).any():
        raise InputError(f"{path}: missing values (NaN) in array {feature_name!r}")
    if np.isinf(values).any():
        raise InputError(f"{path}: infinite values in array {feature_name!r}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise InputError(f"{path}: missing labels (NaN) in array {label_name!r}")
    _check_finite_labels(labels, path, f"array {label_name!r}")
    return Dataset(features, labels, label_name)


def _is_table(path):
    return path.suffix.lower() in _TABLE_SUFFIXES


def read_dataset(path, target=None, label_source=None):
    """Features and labels of a CSV, Parquet or NPZ file.

    Parameters
    ----------
    path : pathlib.Path
        The file; its suffix selects the format.
    target : str, default=None
        Label column (array for NPZ). None: "label" or "target", else the
        last column; for NPZ "y", "label" or "target".
    label_source : pathlib.Path, default=None
        The training file whose label column ``target`` is, named in the
        error message when the table lacks that column.

    Returns
    -------
    dataset : Dataset
        ``features`` is a DataFrame (string column names) for tables, an
        array for NPZ; ``labels`` an ndarray of shape (n_samples,).

    Raises
    ------
    InputError
        For a missing, unreadable or malformed file.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, target)
    if _is_table(path):
        return _split_frame(_read_frame(path), path, target, label_source)
    raise InputError(
        f"{path}: unknown file type {path.suffix!r}; use .csv, .parquet or .npz"
    )


# ---------------------------------------------------------------- checks


def _label_kind(labels):
    if labels.dtype.kind == "b":
        return "booleans"
    return "numbers" if np.issubdtype(labels.dtype, np.number) else "strings"


def _train_reference(train, path):
    features = train.features
    names = list(features.columns) if isinstance(features, pd.DataFrame) else None
    return _Reference(
        n_features=features.shape[1], names=names,
        label_kind=_label_kind(train.labels),
        label_examples=np.unique(train.labels).tolist(),
        owner=f"{path}'s", fitted_on=f"{path} has",
        labels_owner=f"{path}'s labels",
    )


def _model_reference(model):
    names = getattr(model, "feature_names_in_", None)
    return _Reference(
        n_features=getattr(model, "n_features_in_", None),
        names=None if names is None else list(names),
        label_kind=_label_kind(model.classes_),
        label_examples=model.classes_.tolist(),
        owner="the model's", fitted_on="the model was fitted on",
        labels_owner="the model's classes",
    )


def _check_train_labels(train, path):
    """Class labels, not measurements: a continuous column is refused."""
    try:
        kind = type_of_target(train.labels)
    except ValueError as error:
        raise InputError(f"{path}: unusable labels: {_one_line(error)}") from error
    if kind == "continuous":
        guess = (
            " (no column is named 'label' or 'target', so the last column was "
            "taken; name the label column so, or pass --target)"
            if train.guessed else ""
        )
        raise InputError(
            f"{path}: the labels in {train.target!r} are continuous "
            f"numbers, not classes (e.g. {train.labels[0]}){guess}"
        )
    _check_labels(train.labels, path)


def _check_labels(labels, path):
    """Labels the selective tables can show."""
    if _label_kind(labels) == "strings" and MARGINAL in set(labels.tolist()):
        raise InputError(
            f"{path}: {MARGINAL!r} cannot be a label: it names the last row "
            "of the selective tables; rename that class"
        )


def _check_test(test, reference, path):
    """A test set comparable with the training file or the model.

    Checks, in this order: a label column taken by default as the last
    column that is in fact a feature, the number and the names of the
    feature columns (their order may differ), and the kind of the labels.
    """
    features, names = test.features, reference.names
    columns = list(features.columns) if isinstance(features, pd.DataFrame) else None
    expected = reference.n_features
    if test.guessed and names is not None and test.target in names:
        raise InputError(
            f"{path} has no label column: none is named 'label' or 'target', "
            f"and its last column {test.target!r} is one of "
            f"{reference.owner} features; add the label column, or name it "
            "with --target"
        )
    if test.guessed and names is None and expected == features.shape[1] + 1:
        raise InputError(
            f"{path} has no label column named 'label' or 'target', and its "
            f"{expected} columns are as many as {reference.owner} features; "
            "add the label column, or name it with --target"
        )
    missing = extra = []
    if names is not None and columns is not None:
        missing = [name for name in names if name not in columns]
        extra = [name for name in columns if name not in names]
    details = "".join(
        f"; {word}: {values[:10]}"
        for word, values in (("missing", missing), ("extra", extra)) if values
    )
    if expected is not None and features.shape[1] != expected:
        raise InputError(
            f"{path} has {features.shape[1]} feature columns, but "
            f"{reference.fitted_on} {expected}{details}"
        )
    if missing:
        raise InputError(
            f"{path} lacks {reference.owner} feature columns {missing[:10]} "
            f"(it has {extra[:10]} instead)"
        )
    kind = _label_kind(test.labels)
    if kind != reference.label_kind:
        raise InputError(
            f"{path}: the labels are {kind}, but {reference.labels_owner} are "
            f"{reference.label_kind}: {_shown(reference.label_examples)}"
        )
    _check_labels(test.labels, path)


def _align_features(features, model):
    """Checked test features in the layout the model was fitted on."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return np.asarray(features)
    if not isinstance(features, pd.DataFrame):
        return pd.DataFrame(features, columns=names)
    return features[list(names)]


# ------------------------------------------------------------------ model


def _not_a_model(path):
    return InputError(f"{path} is not a model saved by sdm_sklearn (evaluate --save)")


def _load_model(path):
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as handle:
        # --save writes a pickle of protocol 2 or later, which starts so.
        pickled = handle.read(1) == b"\x80"
    try:
        model = joblib.load(path)
    # A pickle that names code this environment lacks: a model saved with
    # other library versions (any bytes may name one, hence the check).
    except (ImportError, AttributeError) as error:
        if not pickled:
            raise _not_a_model(path) from error
        raise InputError(
            f"cannot load the model in {path} ({_one_line(error)}); was it saved "
            "with other versions of sdm_sklearn or scikit-learn?"
        ) from error
    # Any other failure (nearly any error can come out of unpickling bytes
    # that are not a pickle): not a saved model at all.
    except Exception as error:
        raise _not_a_model(path) from error
    if not isinstance(model, SDMClassifier):
        raise InputError(
            f"{path} holds a {type(model).__name__}, not an SDMClassifier"
        )
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise InputError(f"{path} holds an SDMClassifier that is not fitted") from error
    return model


def _fit_parameters(args, n_values):
    """Hyper-parameters of the fit: ``--set`` and ``--alpha``, with defaults.

    The seed defaults to :data:`DEFAULT_RANDOM_STATE`; fits on at least
    :data:`PROGRESS_VALUES` feature values print their progress.
    """
    params = dict(args.settings)
    if params.get("search") in ("dask", "dask-faiss"):
        raise InputError(
            f"--set search={params['search']} needs a running "
            "dask.distributed client, which the command line does not start; "
            "use search=exact, faiss or approximate here, or fit from Python "
            "with a Client running"
        )
    if args.alpha is not None:
        params["alpha"] = args.alpha
    params.setdefault("random_state", DEFAULT_RANDOM_STATE)
    if n_values >= PROGRESS_VALUES:
        params.setdefault("verbose", 1)
    return params


def _fit_model(args, train):
    n_rows, n_features = train.features.shape
    params = _fit_parameters(args, n_rows * n_features)
    print(f"Fitting SDMClassifier on {args.train}: {n_rows} rows, {n_features} "
          f"features, {len(pd.unique(train.labels))} classes, "
          f"random_state={params['random_state']}", flush=True)
    start = time.perf_counter()
    try:
        model = SDMClassifier().set_params(**params).fit(train.features, train.labels)
    # Invalid hyper-parameters and unusable labels raise ValueError (the
    # estimator's InvalidParameterError is one), a search backend whose
    # package is missing ImportError; anything else is a bug.
    except (ValueError, ImportError) as error:
        raise InputError(f"cannot fit SDMClassifier: {_one_line(error)}") from error
    print(f"Fitted in {time.perf_counter() - start:.1f} s")
    return model


def _check_combination(args):
    if args.model is not None:
        extra = [
            option for option, value in (
                ("--alpha", args.alpha), ("--set", args.settings),
                ("--save", args.save),
            ) if value
        ]
        if extra:
            raise InputError(
                f"{', '.join(extra)} apply to fitting with --train; --model "
                "reuses a fitted model as it is"
            )


def _write(description, path, writer):
    try:
        writer(path)
    except OSError as error:
        raise InputError(f"cannot write {description} to {path}: "
                         f"{_one_line(error)}") from error


def _read_and_fit(args):
    """The model and the checked test set; the test file is read first."""
    if args.model is not None:
        model = _load_model(args.model)
        test = read_dataset(args.test, args.target)
        _check_test(test, _model_reference(model), args.test)
        print(f"Loaded {args.model}: SDMClassifier with "
              f"{len(model.classes_)} classes, alpha={model.alpha}, "
              f"random_state={model.random_state}")
        return model, test
    train = read_dataset(args.train, args.target)
    _check_train_labels(train, args.train)
    # Between two tables the label column is the same: a test table without
    # the training table's one is reported, not read with another label.
    inherit = args.target is None and _is_table(args.train) and _is_table(args.test)
    test = read_dataset(
        args.test, train.target if inherit else args.target,
        label_source=args.train if inherit else None,
    )
    _check_test(test, _train_reference(train, args.train), args.test)
    model = _fit_model(args, train)
    if args.save is not None:
        _write("the model", args.save, lambda path: joblib.dump(model, path))
        print(f"Saved the model to {args.save}")
    return model, test


def _evaluate(args):
    _check_combination(args)
    model, test = _read_and_fit(args)
    try:
        frame = model.predict_uncertainty(_align_features(test.features, model))
    except ValueError as error:
        raise InputError(
            f"cannot predict on {args.test}: {_one_line(error)}"
        ) from error

    if np.isfinite(model.min_rescaled_similarity_):
        region = f"q'_min = {model.min_rescaled_similarity_:.4g}"
    else:
        region = "none exists, every input is rejected"
    print(f"HIGH-RELIABILITY region at alpha={model.alpha}: {region}")
    print(f"Test file {args.test}: {len(test.labels)} rows")
    prediction = frame["prediction"].to_numpy()
    for conservative, title in _TITLES.items():
        admitted = frame[admitted_column(conservative)].to_numpy()
        # the reason column explains the admission the model was fitted for
        reasons = frame["reason"] if conservative == model.conservative else None
        report = selective_report(test.labels, prediction, admitted,
                                  reasons=reasons)
        print()
        print(format_selective_report(report, title=f"{title} | {args.test}"))

    if args.report is not None or args.report_json is not None:
        from .report import build_report, render_html

        report = build_report(model, _align_features(test.features, model),
                              test.labels, title=f"SDMClassifier on {args.test}")
        for path, text in ((args.report, lambda: render_html(report)),
                           (args.report_json,
                            lambda: json.dumps(report, indent=2, allow_nan=False))):
            if path is not None:
                _write("the report", path,
                       lambda target, text=text: target.write_text(text(),
                                                                   encoding="utf-8"))
                print(f"\nWrote the report to {path}")

    if args.predictions is not None:
        output = frame.reset_index(drop=True)
        output.insert(0, "true_label", test.labels)
        _write("the predictions", args.predictions,
               lambda path: output.to_csv(path, index=False))
        print(f"\nWrote {len(output)} rows to {args.predictions}")


def run_evaluate(args):
    """Run ``evaluate`` with parsed arguments; return the exit status.

    On success, warnings (e.g. when no HIGH-RELIABILITY region exists, or
    when a saved row index was dropped) are written to stderr as
    ``warning: ...`` lines. An input problem is written as one
    ``... evaluate: error: ...`` line and nothing else, with exit status 2.

    Parameters
    ----------
    args : argparse.Namespace
        Arguments parsed by the parser of :func:`add_evaluate_parser`.

    Returns
    -------
    status : int
        0 on success, 2 for an input problem.
    """
    with warnings.catch_warnings(record=True) as caught:
        try:
            _evaluate(args)
        except InputError as error:
            # One line only: warnings raised before the error are dropped.
            print(f"{_PROG}: error: {_one_line(error)}", file=sys.stderr)
            return 2
    print_warnings(caught)
    return 0


def print_warnings(caught):
    """Caught warnings as ``warning: ...`` lines on stderr, one per warning.

    Parameters
    ----------
    caught : list of warnings.WarningMessage
        As recorded by ``warnings.catch_warnings(record=True)``.
    """
    for warning in caught:
        print(f"warning: {_one_line(warning.message)}", file=sys.stderr)
