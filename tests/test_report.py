"""The report: its JSON numbers against the estimator's own outputs, a
self-contained page, rendering in a real browser, and the command line."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from label_kinds import LABEL_KINDS, fitted_on_kind
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sdm_sklearn import SDMClassifier
from sdm_sklearn.metrics import selective_report
from sdm_sklearn.report import SCHEMA, build_report, render_html, write_report

TOP_KEYS = ["schema", "sdm_sklearn_version", "title", "model", "data",
            "selective_table", "reasons", "regions", "risk_coverage", "drift",
            "examples"]


@pytest.fixture(scope="module")
def fitted():
    X, y = make_classification(n_samples=900, n_features=6, n_informative=4,
                               class_sep=2.0, random_state=0)
    clf = SDMClassifier(n_iterations=1, alpha=0.9, random_state=0).fit(X[:600], y[:600])
    return clf, X[600:], y[600:]


def test_numbers_are_the_estimators(fitted):
    clf, X, y = fitted
    report = build_report(clf, X, y)
    assert list(report) == TOP_KEYS and report["schema"] == SCHEMA
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN
    frame = clf.predict_uncertainty(X)
    admitted = frame["admitted"].to_numpy()
    assert report["data"]["n_admitted"] == admitted.sum() > 0
    assert_allclose(report["data"]["accuracy_admitted"],
                    np.mean(frame["prediction"].to_numpy()[admitted] == y[admitted]))
    expected = selective_report(y, frame["prediction"], admitted,
                                labels=clf.classes_, reasons=frame["reason"])
    table = pd.DataFrame(report["selective_table"]).set_index("label")
    assert table.index.tolist() == [0, 1, "marginal"]
    assert_allclose(table["class_admitted"].to_numpy(dtype=float),
                    expected["class_admitted"].to_numpy(dtype=float))
    assert all(isinstance(row["class_admitted"], int)
               for row in report["selective_table"])
    assert report["reasons"] == frame["reason"].value_counts(sort=False).to_dict()
    assert sum(region["n"] for region in report["regions"].values()) == len(X)
    assert report["model"]["region_class_counts"] == clf.region_class_counts_.tolist()
    assert report["model"]["min_rescaled_similarity"] == clf.min_rescaled_similarity_
    examples = report["examples"]
    assert [e["admitted"] for e in examples] == [True] * 3 + [False] * 3
    first = examples[0]
    neighbours = clf.explain(X[first["row"]:first["row"] + 1], n_neighbors=3)
    assert [n["support_id"] for n in first["neighbors"]] == \
        neighbours["support_id"].tolist()
    assert first["prediction"] == frame["prediction"].iloc[first["row"]]
    # the same seed gives the same report
    assert build_report(clf, X, y) == report


def test_drift_section_sees_a_shift(fitted):
    clf, X, y = fitted
    assert not build_report(clf, X, y)["drift"]["alarm"]
    shifted = build_report(clf, X * 3.0, y)
    assert shifted["drift"]["alarm"]
    assert shifted["drift"]["ks_d_nearest"] > 0.5


def test_without_labels_and_without_a_region(fitted):
    clf, X, y = fitted
    report = build_report(clf, X)
    assert report["selective_table"] == [] and report["data"]["accuracy_all"] is None
    assert report["risk_coverage"]["coverage"] == []
    assert all(e["label"] is None for e in report["examples"])
    render_html(report)
    strict = SDMClassifier(n_iterations=1, alpha=1.0, random_state=0)
    with pytest.warns(UserWarning):
        strict.fit(*make_classification(n_samples=200, n_features=6,
                                        random_state=0))
    empty = build_report(strict, X, y)
    assert empty["model"]["min_rescaled_similarity"] is None
    assert empty["data"]["n_admitted"] == 0
    assert empty["data"]["accuracy_admitted"] is None
    assert empty["risk_coverage"]["admitted_risk"] is None
    json.dumps(empty, allow_nan=False)
    assert "no region" in render_html(empty)


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_label_kind(kind):
    clf, X_test, test_labels = fitted_on_kind(kind, 500, 350)
    report = build_report(clf, X_test, test_labels)
    json.dumps(report, allow_nan=False)
    expected = [value.item() if hasattr(value, "item") else value
                for value in clf.classes_]
    assert report["model"]["classes"] == expected
    assert [row["label"] for row in report["selective_table"]] == \
        expected + ["marginal"]


def test_pipeline_and_labels_that_are_markup(tmp_path):
    X, y = make_classification(n_samples=500, random_state=2)
    labels = np.array(["<b>bold</b>", "a & b"])[y]
    pipe = make_pipeline(StandardScaler(), SDMClassifier(
        n_iterations=1, alpha=0.9, random_state=0)).fit(X[:350], labels[:350])
    report = write_report(pipe, X[350:], labels[350:],
                          html_path=tmp_path / "r.html", json_path=tmp_path / "r.json")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "a &amp; b" in page
    assert json.loads((tmp_path / "r.json").read_text()) == report


def test_page_is_self_contained(fitted):
    clf, X, y = fitted
    page = render_html(build_report(clf, X, y))
    assert page.startswith("<!DOCTYPE html>")
    # no script, no stylesheet or image to fetch, no link out of the page
    assert not re.search(r"<script|<link|<img|<iframe|src=|href=|url\(", page)
    assert page.count("<svg") == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_page_renders_in_a_headless_browser(fitted, tmp_path):
    clf, X, y = fitted
    path = tmp_path / "report.html"
    write_report(clf, X * np.r_[np.ones(150), np.full(150, 3.0)][:, None], y,
                 html_path=path, title="Rendered report")
    screenshot = tmp_path / "report.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
              "--enable-logging=stderr", "--v=0"]
    shot = subprocess.run(
        [*common, "--window-size=1200,2400", f"--screenshot={screenshot}",
         path.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000  # a page was drawn, not a blank
    dom = subprocess.run([*common, "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    assert "<h1>Rendered report</h1>" in dom.stdout
    assert "The exchangeability test rejects" in dom.stdout
    for log in (shot.stderr, dom.stderr):
        assert "Failed to load resource" not in log
        assert "Uncaught" not in log and "CONSOLE" not in log


def test_command_line_writes_both(tmp_path, capsys):
    from sdm_sklearn.__main__ import main

    X, y = make_classification(n_samples=400, n_features=4, random_state=3)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]).assign(label=y)
    frame.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    status = main(["evaluate", "--train", str(tmp_path / "train.csv"), "--test",
                   str(tmp_path / "test.csv"), "--alpha", "0.8", "--report",
                   str(tmp_path / "r.html"), "--report-json", str(tmp_path / "r.json")])
    assert status == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema"] == SCHEMA and report["data"]["n_samples"] == 100
    assert "<h1>SDMClassifier on" in (tmp_path / "r.html").read_text()
    assert "Wrote the report to" in capsys.readouterr().out
    status = main(["evaluate", "--train", str(tmp_path / "train.csv"), "--test",
                   str(tmp_path / "test.csv"), "--report",
                   str(tmp_path / "missing" / "r.html")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the report to" in err



def test_examples_of_a_frame_with_a_repeated_index():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4,
                               class_sep=2.0, random_state=0)
    columns = [f"x{i}" for i in range(6)]
    frame = pd.DataFrame(X, columns=columns)
    clf = SDMClassifier(n_iterations=1, alpha=0.9, random_state=0)
    clf.fit(frame[:400], y[:400])
    test = frame[400:].set_axis(np.zeros(200, dtype=int))  # every label 0
    report = build_report(clf, test, y[400:])
    assert report["examples"]
    for example in report["examples"]:
        one = clf.explain(test.iloc[[example["row"]]], n_neighbors=3)
        assert [n["support_id"] for n in example["neighbors"]] == \
            one["support_id"].tolist()


def test_rows_that_cannot_be_placed_do_not_break_the_report(fitted):
    clf, X, y = fitted
    X = X.copy()
    X[:40, 0] = 1e39  # beyond float32 once standardized: rejected one by one
    report = build_report(clf, X, y, n_examples=50)
    assert report["reasons"]["out_of_distribution"] >= 40
    assert all(example["row"] >= 40 for example in report["examples"])
    assert report["drift"]["alarm"] in (True, False)
    json.dumps(report, allow_nan=False)
