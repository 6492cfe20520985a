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
    # a CSV file has no categorical type: the reasons come back as strings
    expected["reason"] = expected["reason"].astype(str)
    written["reason"] = written["reason"].astype(str)
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
    # the rejections of the fitted admission are counted by reason
    assert "rejected: " in captured.out
    assert " below_region" in captured.out.split("rejected: ")[1]


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
        (lambda tmp: _write_bytes(tmp / "t.csv", b""), "t.csv is empty"),
        (lambda tmp: _write_bytes(tmp / "t.csv", b"\xff\xfe\x00\x81,\x90\n\x00"),
         "cannot read .* UTF-16 byte-order mark; save it as UTF-8"),
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
    (b"garbage, not a pickle", "is not a model saved by sdm_sklearn"),
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
    ("warmup_fraction=True", "'warmup_fraction' parameter of SDMClassifier "
     "must be a number, not a bool"),
    ("search=dask", "search=dask needs a running dask.distributed client"),
    ("search=dask-faiss",
     "search=dask-faiss needs a running dask.distributed client"),
])
def test_invalid_hyper_parameters(csv_files, capsys, setting, message):
    train, test = csv_files
    assert main(["evaluate", "--train", str(train), "--test", str(test),
                 "--set", setting]) == 2
    assert message in _error_line(capsys)


@pytest.mark.parametrize("search, module", [("faiss", "faiss"),
                                            ("approximate", "pynndescent")])
def test_search_backend_without_its_package(csv_files, capsys, monkeypatch,
                                            search, module):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module
                        else find_spec(name, *a))
    train, test = csv_files
    assert main(["evaluate", "--train", str(train), "--test", str(test),
                 "--set", f"search={search}"]) == 2
    assert f'search="{search}" needs {module}: pip install' in _error_line(capsys)


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


# ------------------------------------------------------ saved-model files


@pytest.mark.parametrize("content", [
    b"model,label\n1,a\n",  # joblib reads the 'm' as a pickle opcode: KeyError 109
    b"x0,x1,label\n1,2,a\n",
    b"cat,label\n1,a\n",  # 'c' imports a module named 'at,label': not a model
    "npz",
])
def test_file_that_is_not_a_model(csv_files, tmp_path, capsys, content):
    _, test = csv_files
    path = tmp_path / "model.joblib"
    if content == "npz":
        with open(path, "wb") as handle:
            np.savez(handle, X=np.ones((2, 2)))
    else:
        path.write_bytes(content)
    assert main(["evaluate", "--model", str(path), "--test", str(test)]) == 2
    err = _error_line(capsys)
    assert err == (f"{ERROR_PREFIX}{path} is not a model saved by sdm_sklearn "
                   "(evaluate --save)\n")


# ------------------------------------------- checks before the (long) fit


@pytest.fixture
def no_fit(monkeypatch):
    """Make any fit fail the test: the error must come before it."""

    def fit(self, X, y):
        pytest.fail("SDMClassifier.fit was called before the input error")

    monkeypatch.setattr(SDMClassifier, "fit", fit)


@pytest.mark.parametrize("change, message", [
    (lambda frame: frame.drop(columns="x4"),
     "has 4 feature columns, but {train} has 5; missing: ['x4']"),
    (lambda frame: frame.assign(x5=1.0),
     "has 6 feature columns, but {train} has 5; extra: ['x5']"),
    (lambda frame: frame.rename(columns={"x0": "width"}),
     "lacks {train}'s feature columns ['x0'] (it has ['width'] instead)"),
    (lambda frame: frame.assign(
        label=frame["label"].map({"ant": 0, "bee": 1, "cat": 2})),
     "the labels are numbers, but {train}'s labels are strings: ant, bee, cat"),
    (lambda frame: frame.assign(label=frame["label"] == "ant"),
     "the labels are booleans, but {train}'s labels are strings"),
    (lambda frame: frame.drop(columns="label"),
     "has no label column 'label' (the label column of {train}); its columns "
     "are: x0, x1, x2, x3, x4"),
])
def test_test_file_is_checked_before_fitting(csv_files, table, tmp_path, capsys,
                                             no_fit, change, message):
    train, _ = csv_files
    path = tmp_path / "changed.csv"
    change(table[N_TRAIN:]).to_csv(path, index=False)
    assert main(["evaluate", "--train", str(train), "--test", str(path),
                 *FAST]) == 2
    assert message.format(train=train) in _error_line(capsys)


def test_npz_test_file_is_checked_before_fitting(csv_files, tmp_path, capsys,
                                                 no_fit):
    train, _ = csv_files
    path = tmp_path / "wide.npz"
    np.savez(path, X=np.ones((4, 7)), y=np.array(["ant"] * 4))
    assert main(["evaluate", "--train", str(train), "--test", str(path)]) == 2
    assert f"has 7 feature columns, but {train} has 5" in _error_line(capsys)


def test_saved_model_and_test_file_without_label_column(saved_model, table,
                                                        tmp_path, capsys):
    # Without a 'label' column, the last column would be taken as the label.
    path = tmp_path / "unlabelled.csv"
    table.drop(columns="label").to_csv(path, index=False)
    assert main(["evaluate", "--model", str(saved_model), "--test", str(path)]) == 2
    assert "has no label column: none is named 'label' or 'target', and its " \
        "last column 'x4' is one of the model's features" in _error_line(capsys)


def test_npz_model_and_table_without_label_column(table, tmp_path, capsys):
    X, y = _features_and_labels(table)
    train, saved = tmp_path / "train.npz", tmp_path / "model.joblib"
    np.savez(train, X=X, y=y)
    assert main(["evaluate", "--train", str(train), "--test", str(train), *FAST,
                 "--save", str(saved)]) == 0
    path = tmp_path / "unlabelled.csv"
    pd.DataFrame(X, columns=list("abcde")).to_csv(path, index=False)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(saved), "--test", str(path)]) == 2
    assert "no label column named 'label' or 'target', and its 5 columns are " \
        "as many as the model's features" in _error_line(capsys)


def test_label_named_marginal_is_refused_before_fitting(table, tmp_path, capsys,
                                                        no_fit):
    path = tmp_path / "marginal.csv"
    table.replace({"label": {"cat": "marginal"}}).to_csv(path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(path)]) == 2
    assert "'marginal' cannot be a label" in _error_line(capsys)


def test_infinite_feature_values(table, tmp_path, capsys, no_fit):
    path = tmp_path / "inf.csv"
    table.assign(x2=table["x2"].where(table.index != 3, np.inf)).to_csv(
        path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(path)]) == 2
    assert "infinite values in feature columns ['x2']" in _error_line(capsys)


# --------------------------------------------------- a saved row index


@pytest.mark.parametrize("shuffle", [False, True])
def test_saved_row_index_is_dropped_with_a_warning(table, tmp_path, capsys,
                                                   shuffle):
    frame = table.sample(frac=1, random_state=0) if shuffle else table
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    saved = tmp_path / "model.joblib"
    frame[:N_TRAIN].to_csv(train)  # with the index, as pandas does by default
    frame[N_TRAIN:].to_csv(test)
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 "--save", str(saved)]) == 0
    captured = capsys.readouterr()
    assert list(joblib.load(saved).feature_names_in_) == [
        "x0", "x1", "x2", "x3", "x4"]
    assert f"{N_TRAIN} rows, 5 features, 3 classes" in captured.out
    for path in (train, test):
        assert (f"warning: {path}: ignored the first column 'Unnamed: 0', a row "
                "index saved with the data") in captured.err
    assert "Traceback" not in captured.err


def test_first_column_that_is_not_an_index_is_kept(table, tmp_path, capsys):
    path, saved = tmp_path / "data.csv", tmp_path / "model.joblib"
    # Named "index" but with repeated values: a feature, not a row index.
    table.assign(index=np.arange(len(table)) % 7)[
        ["index", *table.columns]].to_csv(path, index=False)
    assert main(["evaluate", "--train", str(path), "--test", str(path), *FAST,
                 "--save", str(saved)]) == 0
    assert "index" in joblib.load(saved).feature_names_in_
    assert "ignored the first column" not in capsys.readouterr().err


# ------------------------------------------------------- seed, progress


def _without_fit_time(output):
    return re.sub(r"Fitted in [0-9.]+ s", "Fitted in _ s", output)


def test_evaluate_is_seeded_by_default(csv_files, tmp_path, capsys):
    train, test = csv_files
    outputs = []
    for run in range(2):
        out = tmp_path / f"predictions{run}.csv"
        assert main(["evaluate", "--train", str(train), "--test", str(test),
                     "--set", "n_iterations=1", "--set", "n_epochs=3",
                     "--predictions", str(out)]) == 0
        outputs.append(_without_fit_time(capsys.readouterr().out))
    assert "3 classes, random_state=0\n" in outputs[0]
    assert outputs[0].replace("predictions0", "predictions1") == outputs[1]
    assert_frame_equal(pd.read_csv(tmp_path / "predictions0.csv"),
                       pd.read_csv(tmp_path / "predictions1.csv"))


def test_user_seed_is_used_and_printed(csv_files, tmp_path, capsys):
    train, test = csv_files
    saved = tmp_path / "model.joblib"
    assert main(["evaluate", "--train", str(train), "--test", str(test),
                 "--set", "n_iterations=1", "--set", "n_epochs=3",
                 "--set", "random_state=7", "--save", str(saved)]) == 0
    assert "random_state=7\n" in capsys.readouterr().out
    assert joblib.load(saved).random_state == 7
    assert main(["evaluate", "--model", str(saved), "--test", str(test)]) == 0
    assert "alpha=0.95, random_state=7\n" in capsys.readouterr().out


@pytest.mark.parametrize("threshold, settings, progress", [
    (None, [], False),  # 160 x 5 values: far below the default threshold
    (800, [], True),  # 160 x 5 = 800 values reach it
    (800, ["--set", "verbose=0"], False),  # the user's choice wins
    (None, ["--set", "verbose=1"], True),
])
def test_progress_of_large_fits(csv_files, capsys, monkeypatch, threshold,
                                settings, progress):
    from sdm_sklearn import _cli

    if threshold is not None:
        monkeypatch.setattr(_cli, "PROGRESS_VALUES", threshold)
    train, test = csv_files
    assert main(["evaluate", "--train", str(train), "--test", str(test), *FAST,
                 *settings]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[SDMClassifier]")]
    assert bool(lines) is progress
    if progress:  # between the announcement of the fit and its end
        assert out.index("Fitting SDMClassifier") < out.index(lines[0])
        assert out.index(lines[-1]) < out.index("Fitted in")


# --------------------------------------------------------------- label kinds


@pytest.fixture(scope="module")
def digits_frame():
    from sklearn.datasets import load_digits

    return load_digits(as_frame=True).frame[:400]


@pytest.mark.parametrize("kind", ["int", "str", "bool", "category", "pd-str"])
def test_label_kinds(digits_frame, tmp_path, capsys, kind):
    # 400 digits at alpha 0.8 (the default 3 iterations): a tested region
    # exists although each class has only about 20 calibration points.
    frame = digits_frame.copy()
    suffix = ".csv"
    if kind == "str":
        frame["target"] = "digit " + frame["target"].astype(str)
    elif kind == "bool":
        frame["target"] = frame["target"] < 5
    elif kind in ("category", "pd-str"):
        pytest.importorskip("pyarrow")
        suffix = ".parquet"
        text = "digit " + frame["target"].astype(str)
        frame["target"] = (text.astype("category") if kind == "category"
                           else text.astype("str"))
    path = tmp_path / f"digits{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    status = main(["evaluate", "--train", str(path), "--test", str(path),
                   "--alpha", "0.8"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert all(line.startswith("warning: ") for line in captured.err.splitlines())
    assert "region at alpha=0.8: q'_min = " in captured.out
    expected = {"int": ["0", "9"], "str": ["digit 0", "digit 9"],
                "bool": ["False", "True"]}.get(kind, ["digit 0", "digit 9"])
    rows = captured.out.splitlines()
    for label in expected:
        assert any(row.startswith(f"{label} ") for row in rows), label


# ------------------------------------------------------- usage errors, demo


def _usage_error(capsys, argv, prog):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m sdm_sklearn {prog}: error: "), err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "2"], "argument --alpha: expected a target accuracy in (0.5, 1]"),
    (["--alpha", "0.5"], "argument --alpha: expected a target accuracy"),
    (["--alpha", "nan"], "argument --alpha: expected a target accuracy"),
    (["--alpha", "high"], "argument --alpha: expected a target accuracy"),
    (["--random-state", "-1"],
     "argument --random-state: expected an integer seed in [0, 2**32 - 1]; got '-1'"),
    (["--random-state", "4294967296"], "argument --random-state: expected"),
    (["--random-state", "0.5"], "argument --random-state: expected"),
])
def test_demo_rejects_bad_options(capsys, argv, message):
    assert message in _usage_error(capsys, ["demo", *argv], "demo")


def test_demo_brief_is_gone(capsys):
    # The summary is now the default output; --tables adds the tables.
    with pytest.raises(SystemExit):
        main(["demo", "--brief"])
    assert capsys.readouterr().err == (
        "python -m sdm_sklearn: error: unrecognized arguments: --brief\n")


@pytest.mark.parametrize("argv, message", [
    (["--train", "a.csv", "--test", "b.csv", "--alpha", "1.5"],
     "argument --alpha: expected a target accuracy in (0.5, 1], e.g. 0.95; got "
     "'1.5'"),
    (["--train", "a.csv"], "the following arguments are required: --test"),
])
def test_evaluate_usage_errors_are_one_line(capsys, argv, message):
    assert message in _usage_error(capsys, ["evaluate", *argv], "evaluate")


@pytest.fixture
def fast_demo(monkeypatch):
    """The demo on 400 training and 60 test images, with one cheap peer."""
    import functools

    from sklearn.naive_bayes import GaussianNB

    from sdm_sklearn import _demo
    from sdm_sklearn.datasets import make_shifted_digits

    def small_digits(random_state):
        X_train, y_train, test_sets = make_shifted_digits(random_state=random_state)
        return X_train[:400], y_train[:400], {
            name: (X[:60], y[:60]) for name, (X, y) in test_sets.items()
        }

    monkeypatch.setattr(_demo, "make_shifted_digits", small_digits)
    monkeypatch.setattr(_demo, "SDMClassifier",
                        functools.partial(SDMClassifier, n_iterations=1))
    monkeypatch.setattr(_demo, "_softmax_baselines",
                        lambda: {"softmax threshold": GaussianNB()})
    return _demo


DEMO_COLUMNS = ("admitted", "n admitted", "accuracy", "worst class acc",
                "worst prediction acc")
DEMO_TEST_SETS = ("in-distribution", "shifted", "out-of-distribution")


@pytest.mark.filterwarnings("ignore::sdm_sklearn.SmallRegionWarning")
@pytest.mark.parametrize("tables", [False, True])
def test_demo_output_layout(fast_demo, capsys, tables):
    assert main(["demo", "--alpha", "0.9", *(["--tables"] if tables else [])]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        "SDMClassifier versus softmax-probability thresholds at alpha = 0.9, on "
        "digits (8x8 pixels): 400 training images; 60 test images in "
        "distribution, shifted by one pixel, and with shuffled pixels.")
    # The summary comes first, then its legend naming every column once.
    assert lines[1] == ""
    assert lines[2].split() == " ".join(DEMO_COLUMNS).split()
    legend = out[out.index("Columns: "):out.index("SDMClassifier's region")]
    defined = re.findall(r"(?:Columns: |; )([a-z ]+) = ", legend.replace("\n", " "))
    assert defined == list(DEMO_COLUMNS)
    titles = [line for line in lines if " | " in line]
    estimators = ("SDMClassifier", "SDMClassifier(conservative)",
                  "softmax threshold")
    if tables:
        assert titles == [f"{name} | {test}" for name in estimators
                          for test in DEMO_TEST_SETS]
        assert out.index("Columns: ") < out.index(titles[0])
        assert out.index(titles[-1]) < out.index("Conclusion")
    else:
        assert titles == [] and len(lines) < 40
    # The conclusion ends the output, one paragraph per test set.
    conclusion = out[out.index("Conclusion at alpha = 0.9."):]
    assert out.endswith(conclusion)
    for test in DEMO_TEST_SETS:
        assert f"\n  {test}: " in conclusion


def test_demo_warnings_are_one_line_each(fast_demo, capsys):
    # alpha 0.99 on 400 images: no region, so the fit warns
    assert main(["demo", "--alpha", "0.99"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), err
    assert any("No HIGH-RELIABILITY region exists at alpha=0.99" in line
               for line in lines)
    assert "classifier.py" not in err and "Warning:" not in err


@pytest.mark.filterwarnings("ignore::sdm_sklearn.SmallRegionWarning")
def test_demo_conclusion_is_drawn_from_the_summary(fast_demo, capsys):
    summary = fast_demo.run_demo(alpha=0.9, random_state=1)
    out = capsys.readouterr().out
    assert out.endswith("\n".join(fast_demo.conclusion(summary, 0.9)) + "\n")
    assert list(summary.columns) == list(DEMO_COLUMNS)
    assert summary.index.get_level_values("test set").unique().tolist() == list(
        DEMO_TEST_SETS)


def test_demo_conclusion_groups():
    from sdm_sklearn._demo import conclusion

    index = pd.MultiIndex.from_tuples(
        [("A", "near"), ("B", "near"), ("C", "near"), ("A", "far")],
        names=["estimator", "test set"],
    )
    summary = pd.DataFrame(
        {"admitted": [0.5, 0.8, 0.0, 0.01], "n admitted": [50, 80, 0, 1],
         "accuracy": [1.0, 0.97, np.nan, 1.0],
         "worst class acc": [0.96, 0.97, np.nan, 1.0],
         "worst prediction acc": [0.95, 0.94, np.nan, 1.0]},
        index=index,
    )
    lines = conclusion(summary, 0.95)
    assert lines[0].startswith("Conclusion at alpha = 0.95. An estimator kept alpha")
    assert lines[-2:] == [
        "  near: kept alpha: A (50.0%, n=50, 0.960/0.950); fell below: B (80.0%, "
        "n=80,\n    0.970/0.940); admitted nothing: C.",
        "  far: kept alpha: A (1.0%, n=1, 1.000/1.000).",
    ]


@pytest.mark.parametrize("version, has_temperature", [
    ("1.6.1", False), ("1.7.2", False), ("1.8.0", True), ("1.10.0rc1", True),
])
def test_demo_temperature_peer_needs_scikit_learn_1_8(monkeypatch, capsys,
                                                      version, has_temperature):
    import sklearn

    from sdm_sklearn import _demo

    monkeypatch.setattr(sklearn, "__version__", version)
    names = list(_demo._softmax_baselines())
    out = capsys.readouterr().out
    assert names[:3] == ["softmax threshold", "CalibratedClassifierCV(sigmoid)",
                         "CalibratedClassifierCV(isotonic)"]
    assert ("CalibratedClassifierCV(temperature)" in names) is has_temperature
    if has_temperature:
        assert out == ""
    else:
        assert out == ("note: CalibratedClassifierCV(temperature) is left out: "
                       f"scikit-learn {version} lacks method='temperature' "
                       "(scikit-learn >= 1.8 has it)\n")


@pytest.mark.slow
def test_demo_end_to_end(capsys):
    from sdm_sklearn._demo import conclusion, run_demo

    summary = run_demo()
    out = capsys.readouterr().out
    assert out.startswith("SDMClassifier versus softmax-probability thresholds "
                          "at alpha = 0.9, on digits (8x8 pixels): 1257 "
                          "training images; 540 test images")
    assert out.endswith("\n".join(conclusion(summary, 0.9)) + "\n")
    assert len(out.splitlines()) < 60
    assert len(summary) == 3 * len(summary.index.unique("estimator"))


def test_model_saved_with_other_library_versions(csv_files, tmp_path, capsys):
    _, test = csv_files
    path = tmp_path / "model.joblib"
    # A protocol-4 pickle of a class whose module this environment lacks.
    path.write_bytes(b"\x80\x04cvanished_module\nSDMClassifier\n.")
    assert main(["evaluate", "--model", str(path), "--test", str(test)]) == 2
    assert _error_line(capsys) == (
        f"{ERROR_PREFIX}cannot load the model in {path} (No module named "
        "'vanished_module'); was it saved with other versions of sdm_sklearn "
        "or scikit-learn?\n")


@pytest.mark.slow  # a fresh interpreter imports the package: seconds
def test_console_script_help():
    # The ``sdm-sklearn`` console script ([project.scripts] in pyproject.toml)
    # runs the same command line as ``python -m sdm_sklearn``.
    import os
    import shutil
    import subprocess
    import sysconfig

    # The scripts directory of this interpreter first: the script installed
    # with the package under test (a venv's bin/ need not be on PATH).
    script = shutil.which("sdm-sklearn", path=os.pathsep.join(
        [sysconfig.get_path("scripts"), os.environ.get("PATH", "")]))
    if script is None:
        pytest.skip("the sdm-sklearn console script is not installed "
                    "(pip install . installs it)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "{demo,evaluate}" in result.stdout
