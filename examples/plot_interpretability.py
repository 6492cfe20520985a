"""
=====================================
Interpretability: the evidence behind
=====================================

Every quantity of the SDM activation comes from concrete training points:
the similarity ``q`` counts the nearest support points that are correctly
predicted with the same class, and the distance to the nearest one sets
``d``. :meth:`~sdm_sklearn.SDMClassifier.explain` names those support points
for any input, and :meth:`~sdm_sklearn.SDMClassifier.calibration_partition`
names the calibration points whose outcomes decided whether inputs like it
are admitted.

Three test digits are explained below: one the classifier admits, one it
rejects although it looks like a digit, and one made of shuffled pixels.
"""

# %%
# Fit, and pick three inputs
# --------------------------
# ``fit`` records identifiers of the training points (here their row
# positions in ``X_train``; pass ``ids=`` to use your own), so every support
# point can be traced back to its training image.
import matplotlib.pyplot as plt
import numpy as np

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits

X_train, y_train, test_sets = make_shifted_digits(random_state=0)
X_test, y_test = test_sets["in-distribution"]
X_noise, _ = test_sets["out-of-distribution"]
# ``alpha=0.9``: each class has about 63 calibration images here, and a
# class threshold needs ``ceil(1 / (1 - alpha))`` of them inside the region
# (10 at 0.9, 20 at 0.95; see the user guide on small data).
clf = SDMClassifier(alpha=0.9, random_state=0).fit(X_train, y_train)

frame = clf.predict_uncertainty(X_test)
admitted = np.flatnonzero(frame["admitted"])[0]
rejected = np.flatnonzero(~frame["admitted"] & ~frame["is_ood"]
                          & (frame["prediction"] != y_test))[0]
noise = clf.predict_uncertainty(X_noise)
ood = np.flatnonzero(noise["is_ood"])[0]
X_explained = np.vstack([X_test[[admitted, rejected]], X_noise[[ood]]])
names = ["admitted", "rejected", "shuffled pixels"]
true_labels = [y_test[admitted], y_test[rejected], None]
uncertainty = clf.predict_uncertainty(X_explained)
print(uncertainty[["prediction", "q", "d", "sdm_probability",
                   "rescaled_similarity", "is_ood", "admitted"]]
      .set_axis(names).to_string(float_format="{:.3f}".format))

# %%
# The nearest support points
# --------------------------
# ``explain`` returns one row per input and neighbour, nearest first. A
# neighbour ``is_good`` when it is correctly predicted with the input's
# predicted class: ``q`` is the length of the run of good neighbours at the
# start of this list.
explanation = clf.explain(X_explained, n_neighbors=5)
print(explanation.to_string(float_format="{:.2f}".format))

# %%
# The same evidence as images: each row shows an input, then its five
# nearest support points, framed green when good and red otherwise.
fig, axes = plt.subplots(3, 6, figsize=(9, 5.4))
for row, (name, true_label) in enumerate(zip(names, true_labels, strict=True)):
    prediction = uncertainty["prediction"].iloc[row]
    title = f"{name}\npred {prediction}"
    if true_label is not None:
        title += f", true {true_label}"
    axes[row, 0].imshow(X_explained[row].reshape(8, 8), cmap="gray_r")
    axes[row, 0].set_title(title, fontsize="small")
    neighbours = explanation[explanation["input"] == row]
    for ax, (_, neighbour) in zip(axes[row, 1:], neighbours.iterrows(),
                                  strict=True):
        ax.imshow(X_train[neighbour["support_id"]].reshape(8, 8), cmap="gray_r")
        ax.set_title(f"label {neighbour['label']}\ndist {neighbour['distance']:.1f}",
                     fontsize="small")
        colour = "tab:green" if neighbour["is_good"] else "tab:red"
        for spine in ax.spines.values():
            spine.set(edgecolor=colour, linewidth=3)
for ax in axes.ravel():
    ax.set(xticks=[], yticks=[])
fig.tight_layout()

# %%
# The calibration points behind the verdict
# -----------------------------------------
# Points with the same predicted class and the same ``floor(q')`` form a
# partition of the calibration set. How often its calibration points were
# right is the empirical evidence for trusting a new input in it. An input
# whose partition is empty has no row in ``calibration_partition``: no
# calibration point looked like it (shown below as 0 points).
partition = clf.calibration_partition(X_explained)
summary = partition.groupby("input").agg(
    calibration_points=("correct", "size"),
    accuracy=("correct", "mean"),
    mean_sdm_probability=("sdm_probability", "mean"),
)
summary = summary.reindex(range(len(names)))
summary["calibration_points"] = summary["calibration_points"].fillna(0).astype(int)
summary.index = names
print(summary.to_string(float_format="{:.3f}".format, na_rep="-"))
