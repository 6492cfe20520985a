"""Tests for ``python -m sdm_sklearn evaluate`` (run in-process via ``main``)."""

import re
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sdm_sklearn import SDMClassifier
from sdm_sklearn.__main__ import main
from sdm_sklearn._cli import parse_setting
from sdm_sklearn.classifier import UNCERTAINTY_COLUMNS
from sdm_sklearn.metrics import format_selective_report, selective_report

ERROR_PREFIX = "python -m sdm_sklearn evaluate: error: "
FAST = ["--set", "n_iterations=1", "--set", "n_epochs=3", "--set", "random_state=0"]
N_TRAIN = 160
N_FEATURES = 5


@pytest.fixture(scope="module")
def table():
    X, y = make_classification(
        n_samples=240, n_features=N_FEATURES, n_informative=4, n_redundant=0,
        n_classes=3, random_state=0,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(N_FEATURES)])
    # The label column is not last: the default must find it by name.
    frame.insert(2, "label", np.array(["ant", "bee", "cat"])[y])
    return frame


@pytest.fixture
def csv_files(table, tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    table[:N_TRAIN].to_csv(train, index=False)
    table[N_TRAIN:].to_csv(test, index=False)
    return train, test


def _features_and_labels(frame):
    # Fixed-width strings: NPZ files refuse object arrays without pickle.
    return frame.drop(columns="label").to_numpy(), frame["label"].to_numpy(str)


def _error_line(capsys):
    """The whole stderr, checked to be one error line without a traceback."""
    err = capsys.readouterr().err
    assert err.startswith(ERROR_PREFIX), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _expected_tables(model, X, y, name):
    frame = model.predict_uncertainty(X)
    return [
        format_selective_report(
            selective_report(y, frame["prediction"], frame[column]),
            title=f"{title} | {name}",
        )
        for column, title in (
            ("admitted", "SDM_HR (admitted)"),
            ("admitted_lower", "SDM_HR lower, DKW (admitted_lower)"),
        )
    ]


@pytest.mark.parametrize(
    "value, expected",
    [("3", 3), ("0.25", 0.25), ("1e-3", 1e-3), ("True", True), ("false", False),
     ("None", None), ("global", "global")],
)
def test_parse_setting_types(value, expected):
    name, parsed = parse_setting(f"param={value}")
    assert name == "param"
    assert parsed == expected and type(parsed) is type(expected)


def test_parse_setting_needs_equals_sign(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--train", "a.csv", "--test", "b.csv", "--set", "alpha"])
    assert exit_info.value.code == 2
    assert "expected PARAM=VALUE" in capsys.readouterr().err


def test_csv_fit_tables_predictions_and_save(csv_files, table, tmp_path, capsys):
    train, test = csv_files
    out, saved = tmp_path / "predictions.csv", tmp_path / "model.joblib"
    status = main(["evaluate", "--train", str(train), "--test", str(test),
                   "--alpha", "0.9", *FAST, "--predictions", str(out),
                   "--save", str(saved)])
    captured = capsys.readouterr()
    assert status == 0, captured.err

    model = joblib.load(saved)
    assert isinstance(model, SDMClassifier)
    assert model.alpha == 0.9 and model.n_epochs == 3 and model.n_iterations == 1
    assert_array_equal(model.classes_, ["ant", "bee", "cat"])
    assert list(model.feature_names_in_) == ["x0", "x1", "x2", "x3", "x4"]

    test_frame = table[N_TRAIN:].reset_index(drop=True)
    X_test = test_frame.drop(columns="label")
    for expected in _expected_tables(model, X_test, test_frame["label"], test):
        assert expected in captured.out

    written = pd.read_csv(out)
    assert list(written.columns) == ["true_label", *UNCERTAINTY_COLUMNS]
    assert_array_equal(written["true_label"], test_frame["label"])
    expected = model.predict_uncertainty(X_test)
    assert_frame_equal(
        written[list(UNCERTAINTY_COLUMNS)], expected, check_dtype=False,
        check_exact=False, rtol=1e-6,
    )


def test_saved_model_is_reused(csv_files, tmp_path, capsys):
    train, test = csv_files
    saved = tmp_path / "model.joblib"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 "--save", str(saved), "--predictions", str(first)]) == 0
    fitted_output = capsys.readouterr().out
    assert main(["evaluate", "--model", str(saved), "--test", str(test),
                 "--predictions", str(second)]) == 0
    reused_output = capsys.readouterr().out
    assert_frame_equal(pd.read_csv(first), pd.read_csv(second))
    assert reused_output.startswith(f"Loaded {saved}: SDMClassifier with 3 classes")

    def region_and_tables(output):
        return output[output.index("HIGH-RELIABILITY"):output.index("\nWrote")]

    assert region_and_tables(fitted_output) == region_and_tables(reused_output)


def test_saved_model_on_reordered_columns_and_npz(csv_files, table, tmp_path,
                                                  capsys):
    train, test = csv_files
    saved = tmp_path / "model.joblib"
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 "--save", str(saved)]) == 0
    reordered = tmp_path / "reordered.csv"
    test_frame = table[N_TRAIN:]
    test_frame[test_frame.columns[::-1]].to_csv(reordered, index=False)
    X_test, y_test = _features_and_labels(test_frame)
    npz = tmp_path / "test.npz"
    np.savez(npz, X=X_test, y=y_test)
    capsys.readouterr()

    model = joblib.load(saved)
    for path in (reordered, npz):
        assert main(["evaluate", "--model", str(saved), "--test", str(path)]) == 0
        out = capsys.readouterr().out
        frame = pd.DataFrame(X_test, columns=model.feature_names_in_)
        for expected in _expected_tables(model, frame, y_test, path):
            assert expected in out


@pytest.mark.parametrize("feature_name, label_name", [("X", "y"),
                                                     ("features", "label")])
def test_npz_fit(table, tmp_path, capsys, feature_name, label_name):
    X, y = _features_and_labels(table)
    train, test = tmp_path / "train.npz", tmp_path / "test.npz"
    np.savez(train, **{feature_name: X[:N_TRAIN], label_name: y[:N_TRAIN]})
    np.savez(test, **{feature_name: X[N_TRAIN:], label_name: y[N_TRAIN:]})
    saved = tmp_path / "model.joblib"
    status = main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                   "--save", str(saved)])
    out = capsys.readouterr().out
    assert status == 0
    assert f"{N_TRAIN} rows, {N_FEATURES} features, 3 classes" in out
    model = joblib.load(saved)
    assert not hasattr(model, "feature_names_in_")
    for expected in _expected_tables(model, X[N_TRAIN:], y[N_TRAIN:], test):
        assert expected in out


def test_npz_explicit_target_array(table, tmp_path, capsys):
    X, y = _features_and_labels(table)
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=np.zeros(len(y)), kind=y)
    assert main(["evaluate", "--train", str(path), "--test", str(path), *FAST,
                 "--target", "kind"]) == 0
    assert "cat " in capsys.readouterr().out  # classes come from "kind"


def test_parquet_fit(table, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    table[:N_TRAIN].to_parquet(train)
    table[N_TRAIN:].to_parquet(test)
    status = main(["evaluate", "--train", str(train), "--test", str(test), *FAST])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"SDM_HR (admitted) | {test}" in captured.out


@pytest.mark.parametrize("target, classes", [
    (None, ["0", "1"]),  # a "target" column wins over the last column
    ("x0", None),  # an explicit column
])
def test_default_and_explicit_target(tmp_path, capsys, target, classes):
    rng = np.random.default_rng(0)
    n = 120
    labels = np.repeat([0, 1], n // 2)
    frame = pd.DataFrame({
        "x0": np.tile([5, 6], n // 2),
        "target": labels,
        "x1": rng.normal(size=n) + 3 * labels,
        "last": rng.normal(size=n),
    })
    path, saved = tmp_path / "data.csv", tmp_path / "model.joblib"
    frame.to_csv(path, index=False)
    argv = ["evaluate", "--train", str(path), "--test", str(path), *FAST,
            "--save", str(saved)]
    if target is not None:
        argv += ["--target", target]
    assert main(argv) == 0
    model = joblib.load(saved)
    expected_label = "target" if target is None else target
    assert expected_label not in model.feature_names_in_
    assert model.n_features_in_ == 3
    if classes is not None:
        assert [str(label) for label in model.classes_] == classes


def test_last_column_is_the_default_target(tmp_path, capsys):
    path, saved = tmp_path / "data.csv", tmp_path / "model.joblib"
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) ** 2,
                          "kind": np.repeat(["u", "v"], 20)})
    frame.to_csv(path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(path), *FAST,
                 "--save", str(saved)]) == 0
    assert_array_equal(joblib.load(saved).classes_, ["u", "v"])


def test_no_region_is_reported_as_a_warning_line(csv_files, capsys):
    train, test = csv_files
    status = main(["evaluate", "--train", str(train), "--test", str(test),
                   "--alpha", "1", "--set", "n_iterations=1",
                   "--set", "n_epochs=1", "--set", "random_state=0"])
    captured = capsys.readouterr()
    assert status == 0
    assert "region at alpha=1.0: none exists" in captured.out
    assert captured.err.startswith("warning: No HIGH-RELIABILITY region exists")
    assert "Traceback" not in captured.err


# ---------------------------------------------------------------- bad input


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_test_file, message",
    [
        (lambda tmp: tmp / "missing.csv", "missing.csv: no such file"),
        (lambda tmp: tmp, "is not a file"),
        (lambda tmp: _write_bytes(tmp / "t.txt", b"x0,label\n1,a\n"),
         "unknown file type '\\.txt'"),
        (lambda tmp: _write_bytes(tmp / "t.csv", b""), "cannot read"),
        (lambda tmp: _write_bytes(tmp / "t.csv", b"\xff\xfe\x00\x81,\x90\n\x00"),
         "cannot read"),
        (lambda tmp: _write_bytes(tmp / "t.csv", b"x0,label\n"), "has no rows"),
        (lambda tmp: _write_bytes(tmp / "t.npz", b"not a zip archive"),
         "is not an NPZ archive"),
        (lambda tmp: _write_bytes(tmp / "t.parquet", b"not parquet"),
         "cannot read .* as Parquet|needs pyarrow"),
    ],
    ids=["missing", "directory", "unknown-suffix", "empty-csv", "binary-csv",
         "header-only", "bad-npz", "bad-parquet"],
)
def test_unreadable_test_file(csv_files, tmp_path, capsys, make_test_file,
                              message):
    train, _ = csv_files
    bad = make_test_file(tmp_path)
    status = main(["evaluate", "--train", str(train), "--test", str(bad), *FAST])
    assert status == 2
    assert re.search(message, _error_line(capsys))


@pytest.mark.parametrize("content", ["npy", "zip"])
def test_npz_that_is_not_an_archive_of_arrays(csv_files, tmp_path, capsys,
                                              content):
    train, _ = csv_files
    path = tmp_path / "data.npz"
    if content == "npy":
        # np.save writes a single .npy array, whatever the file is called.
        with open(path, "wb") as handle:
            np.save(handle, np.ones((3, 2)))
        expected = "is not an NPZ archive"
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("X.txt", "1 2 3")
        expected = "needs a feature array 'X'"
    assert main(["evaluate", "--train", str(train), "--test", str(path)]) == 2
    assert expected in _error_line(capsys)


def test_npz_with_object_arrays_is_rejected(csv_files, tmp_path, capsys):
    train, _ = csv_files
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array(["a", "b", "a", "b"], dtype=object))
    assert main(["evaluate", "--train", str(train), "--test", str(path)]) == 2
    assert "Object arrays cannot be loaded" in _error_line(capsys)


def test_npz_without_expected_arrays(csv_files, tmp_path, capsys):
    train, _ = csv_files
    path = tmp_path / "arrays.npz"
    np.savez(path, data=np.ones((4, 2)), labels=np.arange(4))
    assert main(["evaluate", "--train", str(train), "--test", str(path)]) == 2
    err = _error_line(capsys)
    assert "needs a feature array 'X'" in err and "it holds: data, labels" in err


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.array(["a", "b"]).reshape(2, 1), "y": np.arange(2)},
     "must be a 2-D numeric array"),
    ({"X": np.ones((3, 2)), "y": np.arange(2)}, "one label per row"),
    ({"X": np.array([[np.nan, 1.0], [0.0, 1.0]]), "y": np.arange(2)},
     "missing values"),
])
def test_npz_malformed_arrays(csv_files, tmp_path, capsys, arrays, message):
    train, _ = csv_files
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert main(["evaluate", "--train", str(train), "--test", str(path)]) == 2
    assert message in _error_line(capsys)


def test_missing_target_column(csv_files, capsys):
    train, test = csv_files
    assert main(["evaluate", "--train", str(train), "--test", str(test),
                 "--target", "species"]) == 2
    err = _error_line(capsys)
    assert "has no column 'species'" in err and "x0, x1, label" in err


def test_non_numeric_features(table, csv_files, tmp_path, capsys):
    train, _ = csv_files
    bad = table.assign(x1=table["x1"].astype(str) + "cm")
    path = tmp_path / "text.csv"
    bad.to_csv(path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(train)]) == 2
    assert "non-numeric feature columns ['x1']" in _error_line(capsys)


def test_missing_feature_values(table, tmp_path, capsys):
    path = tmp_path / "holes.csv"
    table.assign(x3=table["x3"].where(table.index != 5)).to_csv(path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(path)]) == 2
    assert "missing values in feature columns ['x3']" in _error_line(capsys)


def test_only_a_label_column(tmp_path, capsys):
    path = _write_bytes(tmp_path / "labels.csv", b"label\na\nb\n")
    assert main(["evaluate", "--train", str(path), "--test", str(path)]) == 2
    assert "no feature columns besides 'label'" in _error_line(capsys)


@pytest.fixture
def saved_model(csv_files, tmp_path, capsys):
    train, test = csv_files
    path = tmp_path / "model.joblib"
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 "--save", str(path)]) == 0
    capsys.readouterr()
    return path


def test_feature_count_mismatch_with_saved_model(saved_model, table, tmp_path,
                                                 capsys):
    path = tmp_path / "fewer.csv"
    table.drop(columns="x4").to_csv(path, index=False)
    assert main(["evaluate", "--model", str(saved_model), "--test", str(path)]) == 2
    assert "has 4 feature columns, but the model was fitted on 5" in _error_line(
        capsys
    )
    npz = tmp_path / "wide.npz"
    np.savez(npz, X=np.ones((4, 7)), y=np.array(["ant"] * 4))
    assert main(["evaluate", "--model", str(saved_model), "--test", str(npz)]) == 2
    assert "has 7 feature columns" in _error_line(capsys)


def test_label_kind_mismatch_with_saved_model(saved_model, table, tmp_path,
                                               capsys):
    path = tmp_path / "numbered.csv"
    codes = table["label"].map({"ant": 0, "bee": 1, "cat": 2})
    table.assign(label=codes).to_csv(path, index=False)
    assert main(["evaluate", "--model", str(saved_model), "--test", str(path)]) == 2
    assert "the labels are numbers, but the model's classes are strings" in (
        _error_line(capsys)
    )


def test_renamed_columns_with_saved_model(saved_model, table, tmp_path, capsys):
    path = tmp_path / "renamed.csv"
    table.rename(columns={"x0": "width"}).to_csv(path, index=False)
    assert main(["evaluate", "--model", str(saved_model), "--test", str(path)]) == 2
    assert "lacks the model's feature columns ['x0']" in _error_line(capsys)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"garbage, not a pickle", "cannot load a model from"),
    ("logistic", "holds a LogisticRegression, not an SDMClassifier"),
    ("unfitted", "holds an SDMClassifier that is not fitted"),
])
def test_bad_model_file(csv_files, tmp_path, capsys, content, message):
    _, test = csv_files
    path = tmp_path / "model.joblib"
    if content == "logistic":
        joblib.dump(LogisticRegression(), path)
    elif content == "unfitted":
        joblib.dump(SDMClassifier(), path)
    elif content is not None:
        path.write_bytes(content)
    assert main(["evaluate", "--model", str(path), "--test", str(test)]) == 2
    assert message in _error_line(capsys)


@pytest.mark.parametrize("setting, message", [
    ("n_epochs=0", "'n_epochs' parameter of SDMClassifier must be"),
    ("colour=red", "Invalid parameter 'colour'"),
    ("standardize=median", "'standardize' parameter of SDMClassifier must be"),
    ("alpha=0.4", "'alpha' parameter of SDMClassifier must be"),
])
def test_invalid_hyper_parameters(csv_files, capsys, setting, message):
    train, test = csv_files
    assert main(["evaluate", "--train", str(train), "--test", str(test),
                 "--set", setting]) == 2
    assert message in _error_line(capsys)


def test_fit_error_on_single_class(tmp_path, capsys):
    path = _write_bytes(tmp_path / "one.csv", b"x,label\n1,a\n2,a\n3,a\n")
    assert main(["evaluate", "--train", str(path), "--test", str(path)]) == 2
    assert "at least 2 classes" in _error_line(capsys)


def test_fitting_options_with_model_are_rejected(saved_model, csv_files, capsys):
    _, test = csv_files
    assert main(["evaluate", "--model", str(saved_model), "--test", str(test),
                 "--alpha", "0.9", "--set", "n_epochs=2"]) == 2
    assert "--alpha, --set apply to fitting with --train" in _error_line(capsys)


def test_unwritable_predictions(csv_files, tmp_path, capsys):
    train, test = csv_files
    out = tmp_path / "no" / "such" / "dir.csv"
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 "--predictions", str(out)]) == 2
    assert "cannot write the predictions to" in _error_line(capsys)


def test_train_and_model_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--train", "a.csv", "--model", "m.joblib",
              "--test", "b.csv"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
