"""The main job: SDMClassifier against softmax calibration under shift.

``python -m sdm_sklearn demo`` fits every estimator on the same digits
features and prints, for an in-distribution, a covariate-shifted and a far
out-of-distribution test set, a summary of what each admits, a legend of its
columns and a conclusion drawn from the numbers; ``--tables`` adds the
selective table of every estimator on every test set.
"""

import re
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._model import admitted_column
from .classifier import SDMClassifier
from .datasets import make_shifted_digits
from .exceptions import NoHighReliabilityRegionWarning
from .metrics import format_selective_report, selective_report

_WIDTH = 88
_LEGEND = (
    "Columns: admitted = fraction of the test set admitted; n admitted = "
    "their number; accuracy = accuracy among the admitted points; worst class "
    "acc = the lowest accuracy among the admitted points of one true class; "
    "worst prediction acc = the same for one predicted class; '-' = nothing "
    "admitted. SDMClassifier admits the points of its HIGH-RELIABILITY region "
    "(the conservative variant by the lower, DKW, bound); the softmax peers "
    "admit a prediction when its top probability reaches alpha."
)


def _has_temperature_scaling():
    """Whether CalibratedClassifierCV offers method="temperature" (>= 1.8)."""
    major, minor = re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups()
    return (int(major), int(minor)) >= (1, 8)


def _softmax_baselines():
    """Peers that admit a prediction when its top probability reaches alpha.

    Temperature scaling is left out, with a printed note, when the installed
    scikit-learn lacks it.
    """

    def logistic():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    methods = ["sigmoid", "isotonic"]
    if _has_temperature_scaling():
        methods.append("temperature")
    else:
        print("note: CalibratedClassifierCV(temperature) is left out: "
              f"scikit-learn {sklearn.__version__} lacks method='temperature' "
              "(scikit-learn >= 1.8 has it)")
    baselines = {"softmax threshold": logistic()}
    for method in methods:
        baselines[f"CalibratedClassifierCV({method})"] = CalibratedClassifierCV(
            logistic(), method=method, cv=5
        )
    return baselines


def _threshold_selector(estimator, alpha):
    def select(X):
        proba = estimator.predict_proba(X)
        prediction = estimator.classes_[np.argmax(proba, axis=1)]
        return prediction, proba.max(axis=1) >= alpha

    return select


def _sdm_selector(estimator, conservative):
    column = admitted_column(conservative)

    def select(X):
        frame = estimator.predict_uncertainty(X)
        return frame["prediction"].to_numpy(), frame[column].to_numpy()

    return select


def summary_row(report):
    """Admitted fraction and count, marginal and worst conditional accuracy.

    Parameters
    ----------
    report : pandas.DataFrame
        Output of :func:`sdm_sklearn.metrics.selective_report`.

    Returns
    -------
    row : dict
        ``admitted`` (fraction), ``n admitted``, ``accuracy`` (among the
        admitted), ``worst class acc`` and ``worst prediction acc`` (the
        lowest class- and prediction-conditional accuracy among the admitted;
        NaN when nothing is admitted).
    """
    classes = report.drop(index="marginal")
    return {
        "admitted": report.loc["marginal", "class_fraction"],
        "n admitted": int(report.loc["marginal", "class_admitted"]),
        "accuracy": report.loc["marginal", "class_accuracy"],
        "worst class acc": classes["class_accuracy"].min(),
        "worst prediction acc": classes["prediction_accuracy"].min(),
    }


def conclusion(summary, alpha):
    """Which estimators kept ``alpha`` on which test set, in words.

    An estimator keeps ``alpha`` on a test set when it admits something and
    both its worst class- and its worst prediction-conditional accuracy
    among the admitted points reach ``alpha``.

    Parameters
    ----------
    summary : pandas.DataFrame
        Indexed by (estimator, test set), with the columns of
        :func:`summary_row`.
    alpha : float

    Returns
    -------
    lines : list of str
        A heading, then one paragraph per test set, wrapped.
    """
    lines = textwrap.wrap(
        f"Conclusion at alpha = {alpha}. An estimator kept alpha when the "
        "worst class- and the worst prediction-conditional accuracy among its "
        "admitted points both reach alpha; in brackets: the admitted share, "
        "their number and those two accuracies.", width=_WIDTH,
    )
    for test_name, rows in summary.groupby(level="test set", sort=False):
        rows = rows.droplevel("test set")
        worst = rows[["worst class acc", "worst prediction acc"]].min(axis=1)
        groups = {
            "kept alpha": rows.index[worst >= alpha],
            "fell below": rows.index[worst < alpha],
            "admitted nothing": rows.index[rows["n admitted"] == 0],
        }
        parts = []
        for heading, names in groups.items():
            entries = [
                name if heading == "admitted nothing" else
                f"{name} ({rows.loc[name, 'admitted']:.1%}, "
                f"n={rows.loc[name, 'n admitted']}, "
                f"{rows.loc[name, 'worst class acc']:.3f}/"
                f"{rows.loc[name, 'worst prediction acc']:.3f})"
                for name in names
            ]
            if entries:
                parts.append(f"{heading}: {', '.join(entries)}")
        lines.append(textwrap.fill(
            f"{test_name}: {'; '.join(parts)}.", width=_WIDTH,
            initial_indent="  ", subsequent_indent="    ",
        ))
    return lines


def run_demo(*, alpha=0.9, random_state=0, tables=False):
    """Fit SDMClassifier and softmax-calibration peers; summarize admissions.

    Prints one line on what is compared, the summary table, its legend,
    (with ``tables``) every selective table, and the :func:`conclusion`.

    Parameters
    ----------
    alpha : float, default=0.9
        Target accuracy: SDMClassifier's alpha, and the probability threshold
        of the softmax-based peers. 0.9, not 0.95: each class of the demo's
        calibration split has about 63 images, and the default test of a
        region needs at least 7 of them in it at 0.9 and 14 at 0.95 (more
        when any is wrong); at 0.95, 3 of 20 seeds find no region
        (``benchmarks/demo_seeds.py``), at 0.9 none of 10.
    random_state : int, default=0
        Seeds the data split, the corruptions and SDMClassifier.
    tables : bool, default=False
        Also print the selective table of every estimator on every test set.

    Returns
    -------
    summary : pandas.DataFrame
        One row per (estimator, test set), with the columns of
        :func:`summary_row`.
    """
    X_train, y_train, test_sets = make_shifted_digits(random_state=random_state)
    n_test = len(next(iter(test_sets.values()))[1])
    print(f"SDMClassifier versus softmax-probability thresholds at alpha = "
          f"{alpha}, on digits (8x8 pixels): {len(y_train)} training images; "
          f"{n_test} test images in distribution, shifted by one pixel, and "
          "with shuffled pixels.")
    sdm = SDMClassifier(alpha=alpha, random_state=random_state)
    baselines = _softmax_baselines()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("always", NoHighReliabilityRegionWarning)
        sdm.fit(X_train, y_train)
    fit_seconds = {"SDMClassifier": time.perf_counter() - start}
    selectors = {
        "SDMClassifier": _sdm_selector(sdm, conservative=False),
        "SDMClassifier(conservative)": _sdm_selector(sdm, conservative=True),
    }
    for name, estimator in baselines.items():
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_seconds[name] = time.perf_counter() - start
        selectors[name] = _threshold_selector(estimator, alpha)

    rows, reports = [], []
    for name, select in selectors.items():
        for test_name, (X, y) in test_sets.items():
            prediction, admitted = select(X)
            report = selective_report(y, prediction, admitted, labels=sdm.classes_)
            reports.append(format_selective_report(report,
                                                   title=f"{name} | {test_name}"))
            rows.append({"estimator": name, "test set": test_name,
                         **summary_row(report)})
    summary = pd.DataFrame(rows).set_index(["estimator", "test set"])
    print()
    print(summary.to_string(float_format="{:.3f}".format, na_rep="-"))
    print()
    print(textwrap.fill(_LEGEND, width=_WIDTH))
    print(textwrap.fill(
        f"SDMClassifier's region: q'_min = {sdm.min_rescaled_similarity_:.3g}. "
        "Fit seconds: " + ", ".join(
            f"{name} {seconds:.2f}" for name, seconds in fit_seconds.items()),
        width=_WIDTH,
    ))
    if tables:
        for text in reports:
            print()
            print(text)
    print()
    print("\n".join(conclusion(summary, alpha)))
    return summary
