"""
===========
Quick start
===========

Fit an :class:`~sdm_sklearn.SDMClassifier`, let it abstain where it is not
reliable, read its per-prediction diagnostics and tabulate what it admits.

The data are scikit-learn's 8x8 handwritten digits; the 64 pixel values are
the features (no feature producer is needed).
"""

# %%
# Fit
# ---
# ``fit`` splits the training data into a support set and a calibration set,
# trains the exemplar adaptor with the SDM loss and finds the
# HIGH-RELIABILITY region on the calibration set. ``alpha`` is the target
# accuracy, per true class and per predicted class, of the admitted
# predictions: 0.9 here, since each class has only about 60 calibration
# digits and a class threshold needs ``ceil(1 / (1 - alpha))`` of them
# inside the region (10 at 0.9, 20 at 0.95).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sdm_sklearn import SDMClassifier
from sdm_sklearn.metrics import format_selective_report, selective_report
from sdm_sklearn.plotting import RegionAccuracyDisplay, SDMDistributionDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
clf = SDMClassifier(alpha=0.9, random_state=0).fit(X_train, y_train)
print(f"q'_min = {clf.min_rescaled_similarity_:.3g}")
print("psi per class:", clf.class_thresholds_.round(3))

# %%
# Predict, with and without abstention
# ------------------------------------
# ``predict`` always answers. ``predict_selective`` answers only inside the
# HIGH-RELIABILITY region and returns ``rejection_label_`` (here -1)
# elsewhere.
y_pred = clf.predict(X_test)
y_selective = clf.predict_selective(X_test)
admitted = y_selective != clf.rejection_label_
print(f"accuracy of predict: {np.mean(y_pred == y_test):.3f}")
print(f"admitted: {admitted.mean():.1%} of the test digits, accuracy "
      f"{np.mean(y_selective[admitted] == y_test[admitted]):.3f}")

# %%
# What stands behind each prediction
# ----------------------------------
# ``predict_uncertainty`` returns one row per input: the similarity ``q``
# (how many correctly predicted support points of the same class come before
# the first one that is not), the distance quantile ``d``, the magnitude
# (logit of the prediction), the SDM probability, the rescaled similarity
# ``q'``, whether the input is out of distribution and whether it is
# admitted, in the standard and in the conservative (``_lower``) variant.
frame = clf.predict_uncertainty(X_test)
columns = ["prediction", "q", "d", "magnitude", "sdm_probability",
           "rescaled_similarity", "is_ood", "admitted", "admitted_lower"]
print(frame[columns].head(8).to_string(float_format="{:.3f}".format))

# %%
# The selective table
# -------------------
# :func:`~sdm_sklearn.metrics.selective_report` gives, for every class, the
# accuracy and the number of admitted points among those of that true class
# (``class``) and among those predicted as that class (``prediction``). The
# conservative variant, recommended by the paper for applications, admits
# fewer points.
for column, title in [("admitted", "SDM_HR"), ("admitted_lower", "SDM_HR lower")]:
    report = selective_report(y_test, frame["prediction"], frame[column])
    print(format_selective_report(report, title=title))
    print()

# %%
# Where the test digits fall
# --------------------------
# Admitted digits should be right at least ``alpha`` of the time; rejected
# ones are where the errors concentrate.
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
RegionAccuracyDisplay.from_estimator(clf, X_test, y_test, ax=axes[0],
                                     name="SDM_HR")
RegionAccuracyDisplay.from_estimator(clf, X_test, y_test, ax=axes[1],
                                     conservative=True, name="SDM_HR lower")
fig.tight_layout()

# %%
# Wrong predictions have small rescaled similarity q' and small distance
# quantile d; the dashed line is the lower edge q'_min of the region.
display = SDMDistributionDisplay.from_estimator(clf, X_test, y_test, bins=25)
display.figure_.tight_layout()
