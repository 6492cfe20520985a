"""
===================================================
Updatability: new evidence without retraining
===================================================

The support set of an :class:`~sdm_sklearn.SDMClassifier` is data, not
weights. :meth:`~sdm_sklearn.SDMClassifier.add_support` appends labeled
points to it after training: the adaptor, hence every prediction, stays as
it is, but the similarity ``q`` and the distance ``d`` of later inputs now
take the new points into account (paper, appendix A.6).

Two updates are shown on digits:

1. labeled examples of a covariate shift (digits moved by one pixel): where
   the classifier predicts them correctly they vouch for similar inputs,
   where it does not they count against them;
2. examples of noise (shuffled pixels) under a label that is not a class:
   such points are never "good" for any input, so inputs near them get
   ``q = 0`` and are flagged out of distribution.
"""

# %%
# A classifier, and data it has not seen
# --------------------------------------
# The shifted and the shuffled test images are each split in two halves:
# one to update the support set, one to evaluate.
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.plotting import RegionAccuracyDisplay

X_train, y_train, test_sets = make_shifted_digits(random_state=0)
# ``alpha=0.9``: each class has about 63 calibration images here, and a
# class threshold needs ``ceil(1 / (1 - alpha))`` of them inside the region
# (10 at 0.9, 20 at 0.95; see the user guide on small data).
clf = SDMClassifier(alpha=0.9, random_state=0).fit(X_train, y_train)

X_shifted, y_shifted = test_sets["shifted"]
X_noise, y_noise = test_sets["out-of-distribution"]
rng = np.random.default_rng(0)
pool, evaluation = np.array_split(rng.permutation(len(y_shifted)), 2)


def describe(model, X, y):
    """Mean q and d, share out of distribution, admitted, and their accuracy."""
    frame = model.predict_uncertainty(X)
    admitted = frame["admitted"].to_numpy()
    correct = frame["prediction"].to_numpy() == y
    return {
        "mean q": frame["q"].mean(),
        "mean d": frame["d"].mean(),
        "out of distribution": frame["is_ood"].mean(),
        "admitted": admitted.mean(),
        "admitted accuracy": correct[admitted].mean() if admitted.any() else np.nan,
        "accuracy of predict": correct.mean(),
    }


# %%
# Update 1: labeled shifted digits
# --------------------------------
# ``add_support`` changes the model in place; a copy keeps the original for
# comparison. The identifiers name the new points in ``explain``.
shift_updated = copy.deepcopy(clf).add_support(
    X_shifted[pool], y_shifted[pool], ids=[f"shifted-{i}" for i in pool]
)
print(f"support set: {len(clf.support_labels_)} -> "
      f"{len(shift_updated.support_labels_)} points")
assert np.array_equal(clf.predict(X_shifted), shift_updated.predict(X_shifted))
rows = {
    "before": describe(clf, X_shifted[evaluation], y_shifted[evaluation]),
    "after": describe(shift_updated, X_shifted[evaluation], y_shifted[evaluation]),
}
print(pd.DataFrame(rows).T.to_string(float_format="{:.3f}".format))

# %%
# The predictions did not change (the assertion above checks it), so the
# accuracy of ``predict`` is the same. Most shifted digits are predicted
# wrongly, so most of the new points are not good for the inputs near them:
# ``q`` falls and many more shifted inputs are flagged out of distribution.
# The update makes the estimator more cautious exactly where its
# predictions are poor; improving the predictions themselves takes
# retraining, or a feature producer that is robust to the shift. The new
# points appear as evidence in ``explain``:
explanation = shift_updated.explain(X_shifted[evaluation[:1]], n_neighbors=3)
print(explanation[["rank", "support_id", "distance", "label", "prediction",
                   "is_good"]].to_string(float_format="{:.2f}".format))

# %%
# Update 2: noise under a label outside the classes
# --------------------------------------------------
# The label ``"noise"`` is not one of ``classes_``: the points enter the
# support set as out-of-distribution exemplars. Nothing was admitted before
# either, but now almost every shuffled image is recognised as out of
# distribution rather than merely rejected.
noise_updated = copy.deepcopy(clf).add_support(
    X_noise[pool], np.full(len(pool), "noise")
)
rows = {
    "before": describe(clf, X_noise[evaluation], y_noise[evaluation]),
    "after": describe(noise_updated, X_noise[evaluation], y_noise[evaluation]),
}
print(pd.DataFrame(rows).T.to_string(float_format="{:.3f}".format, na_rep="-"))

# %%
# Regions before and after each update
# ------------------------------------
fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharey=True)
for row, (model, X, y, title) in enumerate([
    (shift_updated, X_shifted, y_shifted, "shifted digits"),
    (noise_updated, X_noise, y_noise, "shuffled pixels"),
]):
    for ax, (when, estimator) in zip(axes[row], [("before", clf), ("after", model)],
                                     strict=True):
        RegionAccuracyDisplay.from_estimator(
            estimator, X[evaluation], y[evaluation], ax=ax,
            name=f"{title}, {when} the update",
        )
fig.tight_layout()
