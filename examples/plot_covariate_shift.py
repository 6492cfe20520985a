"""
=======================================================
Under covariate shift: SDM, calibration and conformal
=======================================================

Calibration methods and conformal prediction promise accuracy or coverage
*on average over data like the calibration data*. When the test data move
away from it, their promises lapse, and what a user sees is confident,
wrong answers. The SDM estimator conditions on how similar and how close a
test input is to correctly predicted training points, so it rejects what it
has not seen.

Four selective classifiers, all asked for 90% accuracy
(``alpha = 0.9``), on three test sets from
:func:`~sdm_sklearn.datasets.make_shifted_digits`: held-out digits as they
are, the same digits moved by one pixel, and the same digits with their
pixels shuffled (no digit left):

- :class:`~sdm_sklearn.SDMClassifier`, standard and conservative (lower)
  variant;
- :class:`~sklearn.calibration.CalibratedClassifierCV` around a logistic
  regression, with sigmoid and isotonic calibration, admitting a prediction
  when its calibrated probability reaches ``alpha``;
- split-conformal prediction with the same logistic regression, admitting a
  prediction when its conformal prediction set is a single class.
"""

# %%
# Data and estimators
# -------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.metrics import format_selective_report, selective_report
from sdm_sklearn.plotting import RiskCoverageDisplay

ALPHA = 0.9
X_train, y_train, test_sets = make_shifted_digits(random_state=0)


def logistic():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


sdm = SDMClassifier(alpha=ALPHA, random_state=0).fit(X_train, y_train)
calibrated = {
    method: CalibratedClassifierCV(logistic(), method=method, cv=5).fit(
        X_train, y_train
    )
    for method in ("sigmoid", "isotonic")
}

# %%
# Split-conformal prediction
# --------------------------
# Fit on one part of the training data; on the held-out calibration part,
# score each point by ``1 - p_y`` (one minus the probability of its true
# class). With ``k = ceil((n + 1)(1 - eps))`` (here ``1 - eps = alpha``),
# the threshold below is numpy's "higher" quantile at level ``k / n``. For
# ``k < n``, as here, that is the ``(k + 1)``-th smallest of the ``n``
# scores, one order statistic above the ``k``-th of the textbook recipe, so
# its sets are at least as large (for ``k >= n`` it is the largest score;
# for ``k > n`` the textbook threshold admits every class). The prediction set
# of a new input holds every class whose score is at most the threshold;
# with the ``k``-th it contains the true class with probability at least
# ``1 - eps`` on exchangeable data, and the larger sets keep that guarantee.
# A prediction is admitted when the set is a single class.
X_proper, X_calibration, y_proper, y_calibration = train_test_split(
    X_train, y_train, test_size=0.5, stratify=y_train, random_state=0
)
conformal_model = logistic().fit(X_proper, y_proper)
proba = conformal_model.predict_proba(X_calibration)
class_position = np.searchsorted(conformal_model.classes_, y_calibration)
scores = 1 - proba[np.arange(len(y_calibration)), class_position]
n_calibration = len(scores)
level = np.ceil((n_calibration + 1) * ALPHA) / n_calibration
conformal_threshold = np.quantile(scores, min(level, 1.0), method="higher")
print(f"conformal score threshold: {conformal_threshold:.4f}")

# %%
# Every method as (prediction, admitted mask, confidence)
# --------------------------------------------------------
# The confidence ranks predictions for the risk-coverage curves below: the
# SDM probability of the prediction for SDM, the largest probability for
# the others.


def sdm_outputs(X, column):
    frame = sdm.predict_uncertainty(X)
    confidence_column = column.replace("admitted", "sdm_probability")
    return (frame["prediction"].to_numpy(), frame[column].to_numpy(),
            frame[confidence_column].to_numpy())


def threshold_outputs(model, X):
    proba = model.predict_proba(X)
    confidence = proba.max(axis=1)
    return model.classes_[proba.argmax(axis=1)], confidence >= ALPHA, confidence


def conformal_outputs(X):
    proba = conformal_model.predict_proba(X)
    set_size = np.sum(1 - proba <= conformal_threshold, axis=1)
    prediction = conformal_model.classes_[proba.argmax(axis=1)]
    return prediction, set_size == 1, proba.max(axis=1)


methods = {
    "SDM_HR": lambda X: sdm_outputs(X, "admitted"),
    "SDM_HR lower": lambda X: sdm_outputs(X, "admitted_lower"),
    "CalibratedClassifierCV(sigmoid)": lambda X: threshold_outputs(
        calibrated["sigmoid"], X),
    "CalibratedClassifierCV(isotonic)": lambda X: threshold_outputs(
        calibrated["isotonic"], X),
    "split conformal (singletons)": conformal_outputs,
}

# %%
# What each method admits
# -----------------------
# One row per method and test set: the fraction of inputs admitted, the
# accuracy among them, and the worst accuracy over true classes and over
# predicted classes (the paper's conditional view: an average over classes
# hides a class that fails).
rows, outputs = [], {}
for test_name, (X, y) in test_sets.items():
    for name, method in methods.items():
        prediction, admitted, confidence = method(X)
        outputs[name, test_name] = (prediction, admitted, confidence)
        report = selective_report(y, prediction, admitted, labels=sdm.classes_)
        per_class = report.drop(index="marginal")
        rows.append({
            "test set": test_name,
            "method": name,
            "admitted": report.loc["marginal", "class_fraction"],
            "accuracy": report.loc["marginal", "class_accuracy"],
            "worst class acc": per_class["class_accuracy"].min(),
            "worst prediction acc": per_class["prediction_accuracy"].min(),
        })
summary = pd.DataFrame(rows).set_index(["test set", "method"])
with pd.option_context("display.width", 120):
    print(summary.to_string(float_format="{:.3f}".format, na_rep="-"))

# %%
# Read the table by test set. In distribution, every method is close to its
# promise, at very different coverages: sigmoid calibration reaches a
# probability of 0.9 least often, and conformal singletons trade accuracy for coverage
# (their guarantee is about the prediction set, marginally). On the shifted
# digits, isotonic calibration and conformal singletons keep admitting many
# inputs at an accuracy far below 0.9, while SDM admits very few: the
# standard variant a handful (at this seed all right; under shift that is
# not guaranteed), the lower variant, which the paper recommends for
# applications, even fewer. On the shuffled pixels,
# which hold no digit, any admitted input is an error. The full selective
# tables of two methods on the shifted set:
X_shifted, y_shifted = test_sets["shifted"]
for name in ("SDM_HR", "CalibratedClassifierCV(isotonic)"):
    prediction, admitted, _ = outputs[name, "shifted"]
    report = selective_report(y_shifted, prediction, admitted, labels=sdm.classes_)
    print(format_selective_report(report, title=f"{name} | shifted"))
    print()

# %%
# Risk-coverage curves
# --------------------
# Each curve admits the most confident inputs first; the stars mark the set
# each method actually admits at ``alpha = 0.9``. A star high above the
# dashed line (risk ``1 - alpha``) is a promise broken.
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
styles = {"SDM_HR": "-", "CalibratedClassifierCV(sigmoid)": "--",
          "CalibratedClassifierCV(isotonic)": "-.",
          "split conformal (singletons)": ":"}
for ax, (test_name, (_, y)) in zip(axes, test_sets.items(), strict=True):
    curves = []
    for name, linestyle in styles.items():
        prediction, admitted, confidence = outputs[name, test_name]
        display = RiskCoverageDisplay.from_predictions(
            y, prediction, confidence, admitted=admitted, name=name, ax=ax,
            linestyle=linestyle,
        )
        curves.append(display.line_)
    target = ax.axhline(1 - ALPHA, color="black", linewidth=0.8, linestyle="--")
    ax.set_title(test_name)
    # The per-axes legend repeats each panel's numbers; one legend for all.
    ax.get_legend().remove()
star = plt.Line2D([], [], marker="*", markersize=12, linestyle="none",
                  color="gray", markeredgecolor="black")
fig.legend(curves + [star, target],
           list(styles) + ["admitted at alpha", "risk = 1 - alpha"],
           loc="lower center", ncol=3, fontsize="small")
fig.tight_layout(rect=(0, 0.14, 1, 1))

# %%
# The same comparison straight from fitted estimators: ``from_estimator``
# takes an :class:`~sdm_sklearn.SDMClassifier` or any classifier with
# ``predict_proba``.
fig, ax = plt.subplots(figsize=(6, 4.5))
RiskCoverageDisplay.from_estimator(sdm, X_shifted, y_shifted, ax=ax)
RiskCoverageDisplay.from_estimator(calibrated["isotonic"], X_shifted, y_shifted,
                                   ax=ax, name="CalibratedClassifierCV(isotonic)")
ax.set_title("shifted digits")
fig.tight_layout()
