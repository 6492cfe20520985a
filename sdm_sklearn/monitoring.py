"""Drift monitoring: is a stream of inputs still like the calibration data?

The promise of ``predict_selective`` holds for inputs exchangeable with the
calibration split. :class:`DriftMonitor` watches a deployed model's inputs,
batch by batch, and raises an alarm with a stated false-alarm guarantee
when they stop being so. It reads the fitted model's public outputs only:
``predict_uncertainty`` of every batch and ``calibration_uncertainty_``.
"""

from numbers import Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._selective import check_sdm_estimator, final_sdm, sdm_and_inputs

# Nonconformity scores (larger: stranger), one test martingale each.
SCORES = {
    "rescaled_similarity": lambda frame: -frame["rescaled_similarity"].to_numpy(
        dtype=np.float64),
    "d_nearest": lambda frame: frame["d_nearest"].to_numpy(dtype=np.float64),
}

HISTORY_COLUMNS = (
    "batch", "n_samples", "n_seen", "admitted_share", "admitted_share_stream",
    "mean_rescaled_similarity", "median_d_nearest", "ks_rescaled_similarity",
    "ks_d_nearest", "class_shift", "log10_martingale_rescaled_similarity",
    "log10_martingale_d_nearest", "alarm",
)


def _class_frequencies(predictions, classes):
    """Share of each of ``classes`` among ``predictions``."""
    counts = np.array([np.sum(predictions == label) for label in classes],
                      dtype=np.float64)
    return counts / max(len(predictions), 1)


def _fingerprint(sdm):
    """What changes when the estimator is refitted (its calibration losses),
    recalibrated (its region) or gets support points: the monitor's
    reference is then stale. Small, so every batch can check it."""
    return (float(sdm.alpha), sdm.confidence, len(sdm.support_ids_),
            float(sdm.min_rescaled_similarity_),
            np.asarray(sdm.calibration_loss_).tobytes())


class DriftMonitor:
    """Sequential test that new inputs are exchangeable with the calibration.

    Every input of a batch passed to :meth:`update` gets two nonconformity
    scores, ``-q'`` (a low rescaled similarity is strange) and
    ``d_nearest`` (a point far from the support set is strange), and for
    each a conformal p-value against the calibration split's scores and
    every earlier input of the stream. Each p-value stream drives a Simple
    Jumper test martingale (Vovk et al., 2021). The alarm goes off when
    either martingale reaches ``2 / alarm_level``: if the calibration points
    and the stream are exchangeable, the probability that the alarm ever
    goes off, however long the stream, is at most ``alarm_level`` (Ville's
    inequality, a union bound over the two). Under a shift that lowers q'
    or raises ``d_nearest``, the p-values concentrate near 0 and the
    martingale grows geometrically.

    Alongside the test, :attr:`history_` describes each batch against the
    calibration split: the admitted share, the mean q', the median
    ``d_nearest``, Kolmogorov-Smirnov distances of q' and ``d_nearest``,
    and the total variation distance of the predicted-class frequencies.
    These describe; only the martingales carry the guarantee.

    Parameters
    ----------
    estimator : SDMClassifier or Pipeline ending in one
        Fitted. Read, never changed; after ``fit``, ``recalibrate`` or
        ``add_support`` on it, :meth:`update` raises: start a new monitor.
    alarm_level : float, default=0.01
        The false-alarm probability over the whole stream, in (0, 1).
    jump : float, default=0.01
        The Simple Jumper's jump rate, in (0, 1): larger recovers faster
        after a long exchangeable stretch and grows more slowly under a
        lasting shift.
    random_state : int, RandomState instance or None, default=None
        Breaks ties among equal scores (q' takes few values). The same
        value gives the same p-values and alarms; the stream's n-th input
        gets the same draw however the stream is cut into batches.

    Attributes
    ----------
    history_ : pandas.DataFrame
        One row per :meth:`update`: ``batch``, ``n_samples``, ``n_seen``
        (inputs so far), ``admitted_share`` (of the batch) and
        ``admitted_share_stream`` (so far; both of the ``admitted`` column,
        the standard variant, as in ``calibration_uncertainty_``),
        ``mean_rescaled_similarity``,
        ``median_d_nearest``, ``ks_rescaled_similarity`` and
        ``ks_d_nearest`` (two-sample Kolmogorov-Smirnov statistics, batch
        against calibration), ``class_shift`` (total variation distance
        between the batch's predicted-class frequencies and the
        calibration split's), ``log10_martingale_rescaled_similarity`` and
        ``log10_martingale_d_nearest`` (after the batch) and ``alarm``
        (gone off by the end of the batch).
    reference_ : dict
        The calibration split's ``admitted_share``,
        ``mean_rescaled_similarity``, ``median_d_nearest`` and
        ``class_frequencies``.
    log10_martingales_ : dict of str to ndarray of shape (n_seen,)
        ``log10`` of each martingale after every input so far.
    p_values_ : dict of str to ndarray of shape (n_seen,)
        The conformal p-values of every input so far.
    log10_threshold_ : float
        ``log10(2 / alarm_level)``.
    alarm_ : bool
        Whether the alarm has gone off.
    alarm_batch_ : int or None
        The batch during which it went off first.
    alarm_sample_ : int or None
        The position in the stream (from 0) of the input that set it off.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sdm_sklearn import SDMClassifier
    >>> from sdm_sklearn.monitoring import DriftMonitor
    >>> X, y = make_classification(n_samples=800, random_state=0)
    >>> clf = SDMClassifier(alpha=0.9, random_state=0).fit(X[:600], y[:600])
    >>> monitor = DriftMonitor(clf, random_state=0)
    >>> monitor.update(X[600:700]).alarm_
    False
    >>> monitor.update(X[700:] + 3.0).alarm_
    True
    """

    @validate_params(
        {
            "alarm_level": [Interval(Real, 0, 1, closed="neither")],
            "jump": [Interval(Real, 0, 1, closed="neither")],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def __init__(self, estimator, *, alarm_level=0.01, jump=0.01,
                 random_state=None):
        import pandas as pd

        final = final_sdm(estimator)
        check_sdm_estimator(final, "DriftMonitor")
        self.estimator = estimator
        self.alarm_level = alarm_level
        self.jump = jump
        self.random_state = random_state
        calibration = final.calibration_uncertainty_
        self._fingerprint = _fingerprint(final)
        self._classes = final.classes_
        self._calibration = calibration
        self._earlier = {name: np.sort(score(calibration))
                         for name, score in SCORES.items()}
        self._capital = {name: (np.full(3, 1 / 3), 0.0) for name in SCORES}
        self._rng = np.random.default_rng(
            check_random_state(random_state).randint(np.iinfo(np.int32).max)
        )
        self._admitted_seen = 0
        self.reference_ = {
            "admitted_share": float(calibration["admitted"].mean()),
            "mean_rescaled_similarity": float(
                calibration["rescaled_similarity"].mean()),
            "median_d_nearest": float(calibration["d_nearest"].median()),
            "class_frequencies": _class_frequencies(
                calibration["prediction"].to_numpy(), self._classes),
        }
        self.log10_threshold_ = float(np.log10(2 / alarm_level))
        self.log10_martingales_ = {name: np.empty(0) for name in SCORES}
        self.p_values_ = {name: np.empty(0) for name in SCORES}
        self.history_ = pd.DataFrame(columns=list(HISTORY_COLUMNS))
        self.alarm_ = False
        self.alarm_batch_ = None
        self.alarm_sample_ = None

    def _check_unchanged(self):
        """Raise when the estimator is not the one the reference came from."""
        if _fingerprint(final_sdm(self.estimator)) != self._fingerprint:
            raise ValueError(
                "The estimator has changed since this DriftMonitor was "
                "created (fit, recalibrate or add_support): its calibration "
                "split is no longer the monitor's reference. Start a new "
                "DriftMonitor."
            )

    def update(self, X):
        """Test one batch of inputs, in stream order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or producer input
            The batch, in memory, as the estimator's ``predict`` takes it (a
            dask collection: compute it first; a batch is small).

        Returns
        -------
        self : DriftMonitor
            This monitor, updated in place: one more row of ``history_``,
            the batch's p-values and martingale values appended, and
            ``alarm_`` set if either martingale reached the threshold.
        """
        final, inputs = sdm_and_inputs(self.estimator, X)
        # nothing changes before the estimator has accepted the batch
        return self.update_uncertainty(final.predict_uncertainty(inputs))

    def update_uncertainty(self, frame):
        """Test one batch given its ``predict_uncertainty`` frame.

        The same as :meth:`update` on the batch, without predicting it
        again when its frame is at hand.

        Parameters
        ----------
        frame : pandas.DataFrame
            ``predict_uncertainty`` of the batch by the monitored estimator.

        Returns
        -------
        self : DriftMonitor
            This monitor, updated in place as by :meth:`update`.
        """
        import pandas as pd
        from scipy.stats import ks_2samp

        from ._conformal import conformal_p_values, jumper_path

        self._check_unchanged()
        n_samples = len(frame)
        if n_samples == 0:
            raise ValueError("update_uncertainty needs a frame with at least one row.")
        uniforms = self._rng.random(n_samples)
        n_before = len(self.log10_martingales_["d_nearest"])
        ends = {}
        for name, score in SCORES.items():
            scores = score(frame)
            p_values = conformal_p_values(self._earlier[name], scores, uniforms)
            capital, log_scale = self._capital[name]
            path, capital, log_scale = jumper_path(p_values, capital, log_scale,
                                                   float(self.jump))
            self._capital[name] = (capital, log_scale)
            self._earlier[name] = np.sort(np.concatenate([self._earlier[name],
                                                          scores]))
            self.p_values_[name] = np.concatenate([self.p_values_[name], p_values])
            self.log10_martingales_[name] = np.concatenate(
                [self.log10_martingales_[name], path])
            ends[name] = path[-1]
        batch = len(self.history_)
        if not self.alarm_:
            highest = np.max([self.log10_martingales_[name][n_before:]
                              for name in SCORES], axis=0)
            crossed = np.flatnonzero(highest >= self.log10_threshold_)
            if len(crossed):
                self.alarm_ = True
                self.alarm_batch_ = batch
                self.alarm_sample_ = n_before + int(crossed[0])
        admitted = frame["admitted"].to_numpy()
        self._admitted_seen += int(admitted.sum())
        calibration = self._calibration
        q_prime = frame["rescaled_similarity"].to_numpy()
        d_nearest = frame["d_nearest"].to_numpy()
        row = {
            "batch": batch,
            "n_samples": n_samples,
            "n_seen": n_before + n_samples,
            "admitted_share": float(admitted.mean()),
            "admitted_share_stream": self._admitted_seen / (n_before + n_samples),
            "mean_rescaled_similarity": float(q_prime.mean()),
            "median_d_nearest": float(np.median(d_nearest)),
            "ks_rescaled_similarity": float(ks_2samp(
                q_prime, calibration["rescaled_similarity"]).statistic),
            "ks_d_nearest": float(ks_2samp(
                d_nearest, calibration["d_nearest"]).statistic),
            "class_shift": float(0.5 * np.abs(
                _class_frequencies(frame["prediction"].to_numpy(), self._classes)
                - self.reference_["class_frequencies"]).sum()),
            "log10_martingale_rescaled_similarity": ends["rescaled_similarity"],
            "log10_martingale_d_nearest": ends["d_nearest"],
            "alarm": self.alarm_,
        }
        history = pd.DataFrame([row], columns=list(HISTORY_COLUMNS))
        self.history_ = (history if batch == 0 else
                         pd.concat([self.history_, history], ignore_index=True))
        return self
