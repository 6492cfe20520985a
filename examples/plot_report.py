"""
=====================================
A report to show what a model admits
=====================================

:func:`~sdm_sklearn.report.write_report` writes one self-contained HTML
page (no script, nothing fetched from elsewhere) and the same numbers as
JSON: the HIGH-RELIABILITY region and its calibration counts, the
selective table per class, where the inputs fall and the risk-coverage
curve, the rejection reasons, the drift of the data against the
calibration split, and a few admitted and rejected inputs with their
nearest support points. ``python -m sdm_sklearn evaluate ... --report
out.html --report-json out.json`` writes the same from the command line.

Here two reports of one digits model: on held-out digits and on digits
shifted by one pixel.
"""

# %%
# A model and two data sets
# -------------------------
import json
import tempfile
from pathlib import Path

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.report import render_html, write_report

X_train, y_train, test_sets = make_shifted_digits(random_state=0)
clf = SDMClassifier(alpha=0.9, random_state=0).fit(X_train, y_train)

# %%
# Writing the reports
# -------------------
# Written to a temporary folder here; pass your own paths.
with tempfile.TemporaryDirectory() as folder:
    reports = {}
    for name in ("in-distribution", "shifted"):
        X, y = test_sets[name]
        reports[name] = write_report(
            clf, X, y, title=f"Digits, {name}",
            html_path=Path(folder) / f"{name}.html",
            json_path=Path(folder) / f"{name}.json",
        )
        size = (Path(folder) / f"{name}.html").stat().st_size
        print(f"{name}: wrote {size:,} bytes of HTML")

# %%
# What the JSON says
# ------------------
# The numbers behind the page, in a documented schema (see
# :mod:`sdm_sklearn.report`): on the shifted digits the admitted share
# collapses, most rejections are out of distribution or below the class
# thresholds, and the drift test rejects exchangeability.
for name, report in reports.items():
    data, drift = report["data"], report["drift"]
    print(f"{name}: admitted {data['admitted_share']:.1%} at accuracy "
          f"{data['accuracy_admitted']:.3f}; drift alarm: {drift['alarm']}")
    print("  reasons:", json.dumps(report["reasons"]))

# %%
# The page
# --------
# :func:`~sdm_sklearn.report.render_html` gives the page as a string, for
# a web application or an e-mail; its first lines:
print("\n".join(render_html(reports["shifted"]).splitlines()[:4]))
