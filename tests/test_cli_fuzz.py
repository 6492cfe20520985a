"""Malformed files for ``python -m sdm_sklearn evaluate``: never a traceback.

Every case ends either in a successful run (exit status 0, stderr holding
only ``warning: ...`` lines) or in exit status 2 with exactly one line on
stderr, ``python -m sdm_sklearn evaluate: error: ...``. The cases with a
known answer also check which of the two it is, and the message.
"""

import csv
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdm_sklearn.__main__ import main

ERROR_PREFIX = "python -m sdm_sklearn evaluate: error: "
FAST = ["--set", "n_iterations=1", "--set", "n_epochs=2"]
N_ROWS = 90


def _frame(n_rows=N_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array(["ant", "bee", "cat"])[np.arange(n_rows) % 3]
    frame = pd.DataFrame(
        rng.normal(size=(n_rows, 4)).round(4), columns=["x0", "x1", "x2", "x3"]
    )
    frame["x1"] += 3 * (np.arange(n_rows) % 3)
    frame["label"] = labels
    return frame


def _csv(frame, *, encoding="utf-8", sep=",", index=False):
    return frame.to_csv(sep=sep, index=index).encode(encoding)


def _run(capsys, train_bytes, test_bytes, tmp_path, suffix=".csv"):
    """Run evaluate on two files; check the exit contract; return the outcome."""
    train, test = tmp_path / f"train{suffix}", tmp_path / f"test{suffix}"
    train.write_bytes(train_bytes)
    test.write_bytes(test_bytes)
    status = main(["evaluate", "--train", str(train), "--test", str(test), *FAST])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if status == 0:
        assert all(line.startswith("warning: ")
                   for line in captured.err.splitlines()), captured.err
        assert "SDM_HR (admitted) | " in captured.out
        return "ok", captured.err
    assert status == 2, (status, captured.err)
    assert captured.err.startswith(ERROR_PREFIX), captured.err
    assert captured.err.count("\n") == 1, captured.err
    return "error", captured.err


def _with_value(value, column="x0", row=3):
    frame = _frame().astype({column: object})
    frame.loc[row, column] = value
    return _csv(frame)


GOOD = _csv(_frame())
NON_ASCII = _frame().rename(columns={"x0": "größe"})


def _ragged(extra):
    lines = _csv(_frame()).decode().splitlines()
    lines[5] += ",7" if extra else ""
    if not extra:
        lines[5] = lines[5].rsplit(",", 2)[0]
    return ("\n".join(lines) + "\n").encode()


# (name, train bytes, test bytes, expected: "ok" or a part of the error line)
CASES = [
    ("latin-1", _csv(NON_ASCII), _csv(NON_ASCII, encoding="latin-1"),
     "it is not UTF-8 text (invalid start byte); save it as UTF-8"),
    ("latin-1-ascii-only", GOOD, _csv(_frame(), encoding="latin-1"), "ok"),
    ("utf-8-bom", _csv(NON_ASCII, encoding="utf-8-sig"),
     _csv(NON_ASCII, encoding="utf-8-sig"), "ok"),
    ("utf-16", GOOD, _csv(_frame(), encoding="utf-16"),
     "starts with a UTF-16 byte-order mark; save it as UTF-8"),
    ("semicolon", _csv(_frame(), sep=";"), _csv(_frame(), sep=";"), "ok"),
    ("tab", GOOD, _csv(_frame(), sep="\t"), "ok"),
    ("crlf", GOOD, GOOD.replace(b"\n", b"\r\n"), "ok"),
    ("decimal-comma", GOOD, _csv(_frame(), sep=";").replace(b".", b","),
     "non-numeric feature columns ['x0', 'x1', 'x2', 'x3']"),
    ("index-column", _csv(_frame(), index=True), _csv(_frame(), index=True), "ok"),
    ("index-column-test-only", GOOD,
     _csv(_frame().sample(frac=1, random_state=0), index=True), "ok"),
    ("missing-column", GOOD, _csv(_frame().drop(columns="x2")),
     "has 3 feature columns, but"),
    ("extra-column", GOOD, _csv(_frame().assign(x4=1.0)), "extra: ['x4']"),
    ("missing-label-column", GOOD, _csv(_frame().drop(columns="label")),
     "has no label column 'label'"),
    ("missing-label-column-train", _csv(_frame().drop(columns="label")), GOOD,
     "the labels in 'x3' are continuous numbers, not classes (e.g. "),
    ("empty", GOOD, b"", "is empty"),
    ("blank", GOOD, b"\n \n", "is empty"),
    ("header-only", GOOD, b"x0,x1,x2,x3,label\n", "has no rows"),
    ("empty-train", b"", GOOD, "is empty"),
    # a row beyond the float32 range is rejected, the others predicted
    ("huge-value", GOOD, _with_value("1e308"), "ok"),
    ("huge-value-train", _with_value("-1e308"), GOOD,
     "cannot fit SDMClassifier: Some inputs are too large"),
    ("overflowing-value", GOOD, _with_value("1e999"),
     "infinite values in feature columns ['x0']"),
    ("inf-text", _with_value("-inf", column="x2"), GOOD,
     "infinite values in feature columns ['x2']"),
    ("duplicated-names", GOOD, GOOD.replace(b"x0,x1", b"x0,x0", 1),
     "the column names ['x0'] appear more than once"),
    ("non-numeric-feature", GOOD, _with_value("abc"),
     "non-numeric feature columns ['x0']"),
    ("nan-label", GOOD, GOOD.replace(b",ant\n", b",\n", 1),
     "missing labels in column 'label'"),
    ("nan-label-text", GOOD.replace(b",bee\n", b",NaN\n", 1), GOOD,
     "missing labels in column 'label'"),
    ("single-class", _csv(_frame().assign(label="ant")), GOOD,
     "at least 2 classes"),
    ("unseen-test-class", GOOD, GOOD.replace(b",cat\n", b",dog\n"), "ok"),
    ("ragged-long", GOOD, _ragged(extra=True), "Expected 5 fields in line 6, saw 6"),
    ("ragged-short", GOOD, _ragged(extra=False), "missing values in feature"),
    ("quoted-numbers", GOOD,
     _frame().to_csv(index=False, quoting=csv.QUOTE_ALL).encode(), "ok"),
    ("only-commas", GOOD, b",,,\n,,,\n", "test.csv has no label column 'label'"),
    ("bool-features", _csv(_frame().assign(x3=_frame()["x3"] > 0)),
     _csv(_frame().assign(x3=_frame()["x3"] > 0)), "ok"),
    ("label-kind", GOOD, _csv(_frame().assign(label=np.arange(N_ROWS) % 3)),
     "the labels are numbers, but"),
    ("binary-garbage", GOOD, bytes(range(256)) * 4, "cannot read"),
]


@pytest.mark.parametrize("name, train, test, expected", CASES,
                         ids=[case[0] for case in CASES])
def test_malformed_files(capsys, tmp_path, name, train, test, expected):
    outcome, err = _run(capsys, train, test, tmp_path)
    if expected == "ok":
        assert outcome == "ok", err
    else:
        expected = expected.format(test=tmp_path / "test.csv")
        assert outcome == "error" and expected in err, err


def test_saved_index_column_is_reported(capsys, tmp_path):
    _, err = _run(capsys, GOOD, _csv(_frame(), index=True), tmp_path)
    assert (f"warning: {tmp_path / 'test.csv'}: ignored the first column "
            "'Unnamed: 0', a row index saved with the data (distinct integers); "
            "write tables with to_csv(..., index=False) to leave it out"
            ) in err.splitlines()


# Cells a CSV might hold, good and bad: numbers, blanks, text, separators,
# quotes, non-ASCII letters and the spellings of infinity and NaN.
CELLS = st.sampled_from([
    "0", "1", "-2.5", "3e2", "1e308", "1e999", "", " ", "nan", "NA", "inf",
    "-inf", "True", "x", "ant", "bee", "é", '"', '"1,5"', ";", "1;2", "\t",
])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.sampled_from(["x0", "x1", "x2", "label", "", "é"]),
                    min_size=1, max_size=5),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=6), min_size=0,
                  max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
    role=st.sampled_from(["train", "test"]),
)
def test_generated_files_never_crash(capsys, tmp_path, header, rows, encoding,
                                     role):
    text = io.StringIO()
    text.write(",".join(header) + "\n")
    for row in rows:
        text.write(",".join(row) + "\n")
    data = text.getvalue().encode(encoding)
    train, test = (data, GOOD) if role == "train" else (GOOD, data)
    _run(capsys, train, test, tmp_path)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, N_ROWS - 1), st.integers(0, 4), CELLS),
        min_size=1, max_size=4,
    ),
    role=st.sampled_from(["train", "test"]),
)
def test_edited_cells_never_crash(capsys, tmp_path, edits, role):
    # A good file with a few cells replaced: the run goes on to the fit and
    # the predictions more often than with files made from scratch.
    frame = _frame().astype(object)
    for row, column, cell in edits:
        frame.iloc[row, column] = cell
    data = _csv(frame)
    train, test = (data, GOOD) if role == "train" else (GOOD, data)
    _run(capsys, train, test, tmp_path)
