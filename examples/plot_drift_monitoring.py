"""
=========================================
Monitoring a stream for drift
=========================================

A selective classifier's promise holds for inputs like its calibration
data. Once deployed, it sees a stream, and the question becomes: *does the
stream still look like the calibration data?*
:class:`~sdm_sklearn.monitoring.DriftMonitor` answers with a sequential
test: a conformal test martingale on the rescaled similarity ``q'`` and on
the distance to the support set, with an alarm whose false-alarm
probability over the whole stream is at most ``alarm_level``.

Here a model fitted on digits watches a stream of held-out digits whose
later batches are shifted by one pixel, the covariate shift of
:func:`~sdm_sklearn.datasets.make_shifted_digits`.
"""

# %%
# A model and a stream
# --------------------
import matplotlib.pyplot as plt
import numpy as np

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.monitoring import DriftMonitor
from sdm_sklearn.plotting import DriftDisplay

X_train, y_train, test_sets = make_shifted_digits(random_state=0)
clf = SDMClassifier(alpha=0.9, random_state=0).fit(X_train, y_train)

rng = np.random.default_rng(0)
clean = test_sets["in-distribution"][0][rng.permutation(540)]
shifted = test_sets["shifted"][0][rng.permutation(540)]
# six batches of 40 held-out digits, then six batches of shifted ones
batches = [clean[40 * i : 40 * i + 40] for i in range(6)]
batches += [shifted[40 * i : 40 * i + 40] for i in range(6)]

# %%
# Watching the stream
# -------------------
# Each call of :meth:`~sdm_sklearn.monitoring.DriftMonitor.update` tests
# one batch. The alarm goes off during the first shifted batch; the
# clean batches before it keep the martingales low.
monitor = DriftMonitor(clf, alarm_level=0.01, random_state=0)
for batch in batches:
    monitor.update(batch)
print(f"alarm during batch {monitor.alarm_batch_} (the first shifted batch "
      f"is batch 6), after {monitor.alarm_sample_ + 1} inputs")

# %%
# The history of the batches
# --------------------------
# Besides the test, each row describes the batch against the calibration
# split: the admitted share falls and the distances of ``q'`` and
# ``d_nearest`` to the calibration split jump with the shift.
columns = ["n_seen", "admitted_share", "ks_rescaled_similarity",
           "ks_d_nearest", "class_shift", "log10_martingale_d_nearest", "alarm"]
print(monitor.history_[columns].round(3).to_string())

# %%
# The display
# -----------
DriftDisplay.from_monitor(monitor)
plt.show()
