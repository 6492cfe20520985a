"""DriftMonitor: false alarms on exchangeable streams, delay under shift.

Usage: ``python benchmarks/bench_monitoring.py [--seeds N] [--shift-seeds M]``.

Three measurements, each against a plain baseline in the same run, a
two-sample Kolmogorov-Smirnov test of each batch's softmax confidence (the
top ``predict_proba`` of a logistic regression fitted on the first half of
the training rows) against that of the second half, at the monitor's
``alarm_level`` per batch (``ks``) and at ``alarm_level / n_batches`` per
batch (``ks bonferroni``, a family-wise level of ``alarm_level`` over a
stream whose number of batches is known in advance):

1. **False alarms.** ``make_classification`` (2 classes, 20 features, 3,000
   rows), a new draw per seed; ``SDMClassifier(n_iterations=1)`` on 1,000
   training rows; a stream of 20 batches of 50 rows of the same draw. The
   share of seeds whose alarm ever went off, for ``alarm_level`` 0.05 and
   0.01, with its 95 % Clopper-Pearson upper bound.
2. **Digits under a one-pixel shift** (``make_shifted_digits``): 4 batches
   of 50 in-distribution images, then 10 batches of 50 shifted images. The
   delay is the number of shifted batches seen when the alarm goes off (1:
   during the first shifted batch); ``before`` counts alarms during the
   in-distribution batches.
3. **A real covariate shift, breast cancer** (scikit-learn's copy of the
   Wisconsin diagnostic data, 569 rows): the training and calibration rows
   and the first 2 batches of 40 are drawn from the tumours whose
   ``mean radius`` is below its 70th percentile, the next 4 batches of 40
   from those above it (the larger tumours, a shift of the inputs that
   also moves the class mix).

Defaults (``DriftMonitor(alarm_level=0.05)``, ``jump=0.01``) unless stated.
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import beta, ks_2samp
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sdm_sklearn import SDMClassifier
from sdm_sklearn.datasets import make_shifted_digits
from sdm_sklearn.monitoring import DriftMonitor

LEVEL = 0.05


def _upper_bound(k, n, level=0.05):
    """One-sided Clopper-Pearson upper bound of a binomial proportion."""
    return 1.0 if k == n else float(beta.ppf(1 - level, k + 1, n - k))


def _softmax_baseline(X_train, y_train, seed):
    """A logistic regression on half the rows; confidences of the other half."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_train))
    fit_rows, reference_rows = order[: len(order) // 2], order[len(order) // 2:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X_train[fit_rows], y_train[fit_rows])
    reference = model.predict_proba(X_train[reference_rows]).max(axis=1)
    return model, reference


def _first_alarms(clf, baseline, reference, batches, alarm_level, seed):
    """Batch (from 0) of the first alarm of each method; None when none."""
    monitor = DriftMonitor(clf, alarm_level=alarm_level, random_state=seed)
    first = {"sdm": None, "ks": None, "ks bonferroni": None}
    for index, batch in enumerate(batches):
        monitor.update(batch)
        if first["sdm"] is None and monitor.alarm_:
            first["sdm"] = index
        p_value = ks_2samp(baseline.predict_proba(batch).max(axis=1),
                           reference).pvalue
        if first["ks"] is None and p_value < alarm_level:
            first["ks"] = index
        if first["ks bonferroni"] is None and p_value < alarm_level / len(batches):
            first["ks bonferroni"] = index
    return first


def false_alarms(n_seeds):
    rows = []
    for alarm_level in (0.05, 0.01):
        alarms = {"sdm": 0, "ks": 0, "ks bonferroni": 0}
        for seed in range(n_seeds):
            X, y = make_classification(n_samples=3000, n_features=20,
                                       n_informative=6, random_state=seed)
            clf = SDMClassifier(n_iterations=1, alpha=0.9,
                                random_state=seed).fit(X[:1000], y[:1000])
            baseline, reference = _softmax_baseline(X[:1000], y[:1000], seed)
            batches = [X[1000 + 50 * i: 1050 + 50 * i] for i in range(20)]
            first = _first_alarms(clf, baseline, reference, batches,
                                  alarm_level, seed)
            for name, batch in first.items():
                alarms[name] += batch is not None
        for name, count in alarms.items():
            rows.append({"alarm_level": alarm_level, "method": name,
                         "seeds": n_seeds, "false alarms": count,
                         "rate": count / n_seeds,
                         "95% upper": _upper_bound(count, n_seeds)})
    return pd.DataFrame(rows)


def _delays(stream_of_seed, n_seeds, n_before):
    records = []
    for seed in range(n_seeds):
        clf, baseline, reference, batches = stream_of_seed(seed)
        first = _first_alarms(clf, baseline, reference, batches, LEVEL, seed)
        for name, batch in first.items():
            records.append({
                "method": name, "seed": seed,
                "alarm before shift": batch is not None and batch < n_before,
                "delay": (np.nan if batch is None or batch < n_before
                          else batch - n_before + 1),
            })
    frame = pd.DataFrame(records)
    grouped = frame.groupby("method", sort=False)
    return pd.DataFrame({
        "seeds": grouped["seed"].count(),
        "before": grouped["alarm before shift"].sum(),
        "detected": grouped["delay"].count(),
        "median delay": grouped["delay"].median(),
        "max delay": grouped["delay"].max(),
    })


def _digits_stream(seed):
    X_train, y_train, test_sets = make_shifted_digits(random_state=seed)
    clf = SDMClassifier(alpha=0.9, random_state=seed).fit(X_train, y_train)
    baseline, reference = _softmax_baseline(X_train, y_train, seed)
    rng = np.random.default_rng(seed)
    clean = test_sets["in-distribution"][0][rng.permutation(540)[:200]]
    shifted = test_sets["shifted"][0][rng.permutation(540)[:500]]
    batches = ([clean[50 * i: 50 * i + 50] for i in range(4)]
               + [shifted[50 * i: 50 * i + 50] for i in range(10)])
    return clf, baseline, reference, batches


def _cancer_stream(seed):
    data = load_breast_cancer()
    X, y = data.data, data.target
    radius = X[:, list(data.feature_names).index("mean radius")]
    small = np.flatnonzero(radius < np.quantile(radius, 0.7))
    large = np.flatnonzero(radius >= np.quantile(radius, 0.7))
    rng = np.random.default_rng(seed)
    small, large = rng.permutation(small), rng.permutation(large)
    train, clean = small[:-80], small[-80:]
    clf = SDMClassifier(estimator=StandardScaler(), alpha=0.9,
                        random_state=seed).fit(X[train], y[train])
    baseline, reference = _softmax_baseline(X[train], y[train], seed)
    batches = ([X[clean[40 * i: 40 * i + 40]] for i in range(2)]
               + [X[large[40 * i: 40 * i + 40]] for i in range(4)])
    return clf, baseline, reference, batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--shift-seeds", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    print(f"1. False alarms, exchangeable streams of 20 batches of 50 "
          f"({args.seeds} seeds):")
    print(false_alarms(args.seeds).to_string(index=False,
                                             float_format="{:.3f}".format))
    print(f"\n2. Digits, 4 clean batches then 10 shifted batches of 50 "
          f"(alarm_level {LEVEL}, {args.shift_seeds} seeds):")
    print(_delays(_digits_stream, args.shift_seeds, 4).to_string())
    print(f"\n3. Breast cancer, 2 batches of 40 small tumours then 4 of "
          f"large ones (alarm_level {LEVEL}, {args.shift_seeds} seeds):")
    print(_delays(_cancer_stream, args.shift_seeds, 2).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
