"""The ``evaluate`` command: fit or load an SDMClassifier, tabulate a test file.

``python -m sdm_sklearn evaluate --train FILE --test FILE`` fits
:class:`~sdm_sklearn.SDMClassifier` on one file and prints the selective
tables of both variants on another; ``--model`` reuses a model saved with
``--save``. Problems with the user's files end the command with one line on
stderr and exit status 2.
"""

import argparse
import sys
import time
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .classifier import SDMClassifier
from .metrics import format_selective_report, selective_report

__all__ = ["add_evaluate_parser", "run_evaluate"]

_PROG = "python -m sdm_sklearn evaluate"
_DEFAULT_TARGETS = ("label", "target")
_NPZ_FEATURES = ("X", "features")
_NPZ_LABELS = ("y", "label", "target")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_VARIANTS = {
    "admitted": "SDM_HR (admitted)",
    "admitted_lower": "SDM_HR lower, DKW (admitted_lower)",
}


class InputError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


def _one_line(error):
    """The message of an exception with its whitespace runs collapsed."""
    return " ".join(str(error).split())


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
        "on --test. Files: .csv or .parquet (one row per sample, a header, "
        "numeric features, one label column) or .npz (arrays X and y).",
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
                        "column ('y', 'label' or 'target' for .npz)")
    parser.add_argument("--alpha", type=float,
                        help="target accuracy, in (0.5, 1] (default 0.95)")
    parser.add_argument("--set", type=parse_setting, action="append",
                        default=[], metavar="PARAM=VALUE", dest="settings",
                        help="an SDMClassifier hyper-parameter, e.g. "
                        "n_epochs=20 or random_state=0; repeat as needed")
    parser.add_argument("--predictions", type=Path, metavar="OUT.csv",
                        help="write every test row's predict_uncertainty "
                        "columns and its true label to this CSV file")
    parser.add_argument("--save", type=Path, metavar="MODEL",
                        help="save the fitted model with joblib")
    return parser


# ----------------------------------------------------------------- reading


def _read_frame(path):
    """A CSV or Parquet file as a DataFrame."""
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except ImportError as error:
            raise InputError(
                f"reading {path} needs pyarrow: pip install sdm_sklearn[io]"
            ) from error
        except (ValueError, OSError) as error:
            raise InputError(
                f"cannot read {path} as Parquet: {_one_line(error)}"
            ) from error
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as error:
        raise InputError(f"cannot read {path} as CSV: {_one_line(error)}") from error


def _split_frame(frame, path, target):
    """Features and labels of a table; features must be numeric and complete."""
    if frame.empty:
        raise InputError(f"{path} has no rows")
    columns = [str(column) for column in frame.columns]
    frame.columns = columns
    if target is None:
        target = next(
            (name for name in _DEFAULT_TARGETS if name in columns), columns[-1]
        )
    elif target not in columns:
        shown = ", ".join(columns[:10]) + (", ..." if len(columns) > 10 else "")
        raise InputError(f"{path} has no column {target!r}; its columns are: {shown}")
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
    labels = frame[target]
    if labels.isna().any():
        raise InputError(f"{path}: missing labels in column {target!r}")
    return features, labels.to_numpy()


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
    if features.ndim != 2 or features.dtype.kind not in "biuf":
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
    if np.isnan(features.astype(float)).any():
        raise InputError(f"{path}: missing values (NaN) in array {feature_name!r}")
    return features, labels


def read_dataset(path, target=None):
    """Features and labels of a CSV, Parquet or NPZ file.

    Parameters
    ----------
    path : pathlib.Path
        The file; its suffix selects the format.
    target : str, default=None
        Label column (array for NPZ). None: "label" or "target", else the
        last column; for NPZ "y", "label" or "target".

    Returns
    -------
    features : pandas.DataFrame or ndarray of shape (n_samples, n_features)
        A DataFrame (string column names) for tables, an array for NPZ.
    labels : ndarray of shape (n_samples,)

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
    if suffix == ".csv" or suffix in _PARQUET_SUFFIXES:
        return _split_frame(_read_frame(path), path, target)
    raise InputError(
        f"{path}: unknown file type {path.suffix!r}; use .csv, .parquet or .npz"
    )


def _align_features(features, model, path):
    """Test features in the layout the model was fitted on."""
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and features.shape[1] != expected:
        raise InputError(
            f"{path} has {features.shape[1]} feature columns, but the model "
            f"was fitted on {expected}"
        )
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return np.asarray(features)
    if not isinstance(features, pd.DataFrame):
        return pd.DataFrame(features, columns=names)
    missing = sorted(set(names) - set(features.columns))
    if missing:
        raise InputError(
            f"{path} lacks the model's feature columns {missing[:10]}"
        )
    return features[list(names)]


def _label_kind(labels):
    return "numbers" if np.issubdtype(labels.dtype, np.number) else "strings"


def _check_label_kind(labels, classes, path):
    """Test labels comparable with the classes: both numbers or both not."""
    if _label_kind(labels) != _label_kind(classes):
        raise InputError(
            f"{path}: the labels are {_label_kind(labels)}, but the model's "
            f"classes are {_label_kind(classes)} ({classes[:5].tolist()}...)"
        )


# ------------------------------------------------------------------ model


def _load_model(path):
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        model = joblib.load(path)
    # Unpickling a file that is not a saved model can raise nearly any error.
    except Exception as error:
        raise InputError(
            f"cannot load a model from {path}: {type(error).__name__}: "
            f"{_one_line(error)}"
        ) from error
    if not isinstance(model, SDMClassifier):
        raise InputError(
            f"{path} holds a {type(model).__name__}, not an SDMClassifier"
        )
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise InputError(f"{path} holds an SDMClassifier that is not fitted") from error
    return model


def _fit_model(args, features, labels):
    params = dict(args.settings)
    if args.alpha is not None:
        params["alpha"] = args.alpha
    try:
        return SDMClassifier().set_params(**params).fit(features, labels)
    # Invalid hyper-parameters and unusable labels raise ValueError (the
    # estimator's InvalidParameterError is one); anything else is a bug.
    except ValueError as error:
        raise InputError(f"cannot fit SDMClassifier: {_one_line(error)}") from error


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


def _evaluate(args):
    _check_combination(args)
    if args.model is not None:
        model = _load_model(args.model)
        test_features, test_labels = read_dataset(args.test, args.target)
        print(f"Loaded {args.model}: SDMClassifier with "
              f"{len(model.classes_)} classes, alpha={model.alpha}")
    else:
        features, labels = read_dataset(args.train, args.target)
        # Read the test file before fitting: a bad file fails fast.
        test_features, test_labels = read_dataset(args.test, args.target)
        start = time.perf_counter()
        model = _fit_model(args, features, labels)
        print(f"Fitted SDMClassifier on {args.train}: {len(labels)} rows, "
              f"{features.shape[1]} features, {len(model.classes_)} classes "
              f"({time.perf_counter() - start:.1f} s)")
        if args.save is not None:
            _write("the model", args.save, lambda path: joblib.dump(model, path))
            print(f"Saved the model to {args.save}")
    test_features = _align_features(test_features, model, args.test)
    _check_label_kind(test_labels, model.classes_, args.test)
    try:
        frame = model.predict_uncertainty(test_features)
    except ValueError as error:
        raise InputError(
            f"cannot predict on {args.test}: {_one_line(error)}"
        ) from error

    if np.isfinite(model.min_rescaled_similarity_):
        region = f"q'_min = {model.min_rescaled_similarity_:.4g}"
    else:
        region = "none exists, every input is rejected"
    print(f"HIGH-RELIABILITY region at alpha={model.alpha}: {region}")
    print(f"Test file {args.test}: {len(test_labels)} rows")
    prediction = frame["prediction"].to_numpy()
    for column, title in _VARIANTS.items():
        report = selective_report(test_labels, prediction, frame[column].to_numpy())
        print()
        print(format_selective_report(report, title=f"{title} | {args.test}"))

    if args.predictions is not None:
        output = frame.reset_index(drop=True)
        output.insert(0, "true_label", test_labels)
        _write("the predictions", args.predictions,
               lambda path: output.to_csv(path, index=False))
        print(f"\nWrote {len(output)} rows to {args.predictions}")


def run_evaluate(args):
    """Run ``evaluate`` with parsed arguments; return the exit status.

    On success, warnings (e.g. when no HIGH-RELIABILITY region exists) are
    written to stderr as ``warning: ...`` lines. An input problem is written
    as one ``... evaluate: error: ...`` line and nothing else, with exit
    status 2.

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
    for warning in caught:
        print(f"warning: {_one_line(warning.message)}", file=sys.stderr)
    return 0
