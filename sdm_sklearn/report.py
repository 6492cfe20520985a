"""A report people read: what a fitted SDMClassifier admits on a data set.

:func:`build_report` gathers the numbers (plain JSON types, schema below);
:func:`render_html` turns them into one self-contained HTML page (inline
CSS and SVG charts: no script, no file or address outside the page);
:func:`write_report` does both and writes the files. The command line
writes the same with ``python -m sdm_sklearn evaluate ... --report
out.html``. The report reads the fitted model's public outputs only.

JSON schema (``"schema": "sdm_sklearn.report/1"``), every key always
present; labels are JSON numbers, booleans or strings as the classes are;
a value that cannot be computed (an accuracy with nothing admitted, or
without labels) is ``null``:

- ``schema``, ``sdm_sklearn_version``, ``title`` (str).
- ``model``: ``alpha``, ``confidence`` (null: the paper's Alg. 1),
  ``conservative`` (which admitted column ``predict_selective`` uses),
  ``classes`` (list), ``min_rescaled_similarity`` (q'_min; null when no
  region exists), ``class_thresholds`` and ``region_class_counts`` (lists
  in the order of ``classes``), ``n_support``, ``n_calibration``,
  ``calibration_admitted_share``.
- ``data``: ``n_samples``, ``labelled`` (bool), ``n_admitted``,
  ``admitted_share``, ``accuracy_admitted``, ``accuracy_all``.
- ``selective_table``: one object per true label, then ``"marginal"``,
  with the columns of :func:`~sdm_sklearn.metrics.selective_report`
  (``class_accuracy``, ``class_admitted``, ..., ``rejected_<reason>``);
  an empty list without labels.
- ``reasons``: number of inputs per ``reason`` (``admitted`` included).
- ``regions``: ``admitted``, ``rejected_in_distribution`` and
  ``out_of_distribution``, each ``{"n": int, "accuracy": float or null}``.
- ``risk_coverage``: ``coverage`` and ``risk`` (lists, at most 200 points
  of the curve of the SDM output) and the admitted set's point
  ``admitted_coverage`` / ``admitted_risk``; empty lists without labels.
- ``drift``: the one-batch statistics of
  :class:`~sdm_sklearn.monitoring.DriftMonitor` of the data against the
  calibration split (``admitted_share``, ``mean_rescaled_similarity``,
  ``median_d_nearest``, ``ks_rescaled_similarity``, ``ks_d_nearest``,
  ``class_shift``, both ``log10_martingale_*``, ``alarm``,
  ``alarm_level``) and ``calibration`` (the monitor's ``reference_``,
  class frequencies as a list).
- ``examples``: for a seeded sample of admitted and of rejected inputs
  (rejected rows that could not be placed, whose features are not finite,
  are left out: they have no neighbours),
  ``row`` (position in the data), ``admitted``, ``reason``, ``label`` (null
  without labels), ``prediction``, ``sdm_probability``,
  ``rescaled_similarity``, ``d_nearest`` and ``neighbors``: the nearest
  support points (``support_id``, ``label``, ``prediction``, ``distance``,
  ``is_good``).
"""

import html
import json
import math
import numbers

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state

from ._selective import check_sdm_estimator, final_sdm, sdm_and_inputs
from ._validation import check_y_against_classes
from ._version import __version__
from .metrics import risk_coverage_curve, selective_report

SCHEMA = "sdm_sklearn.report/1"
MAX_CURVE_POINTS = 200
DRIFT_KEYS = (
    "admitted_share", "mean_rescaled_similarity", "median_d_nearest",
    "ks_rescaled_similarity", "ks_d_nearest", "class_shift",
    "log10_martingale_rescaled_similarity", "log10_martingale_d_nearest",
    "alarm",
)


def _plain(value):
    """A JSON value: numpy scalars unwrapped, NaN and infinity as None."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _plain_list(values):
    return [_plain(value) for value in np.asarray(values, dtype=object)]


def _accuracy(correct):
    return float(np.mean(correct)) if len(correct) else None


def build_report(estimator, X, y=None, *, title=None, n_examples=3,
                 n_neighbors=3, alarm_level=0.01, random_state=0):
    """The numbers of the report, as plain JSON types (module docstring).

    Predicts once on ``X`` (``predict_uncertainty`` of the final
    SDMClassifier) and gathers the model's region, the admitted share and
    accuracies, the selective table and the risk-coverage curve (with
    ``y``), the rejection reasons, a one-batch drift test of ``X`` against
    the calibration split, and a seeded sample of admitted and rejected
    inputs with their nearest support points. Nothing is written.

    Parameters
    ----------
    estimator : SDMClassifier or Pipeline ending in one
        Fitted.
    X : array-like of shape (n_samples, n_features), or producer input
        The data to report on.
    y : array-like of shape (n_samples,), default=None
        True labels, of the kind of ``classes_``; None: the report has no
        accuracies and no selective table.
    title : str, default=None
        The page's title; None: "SDMClassifier report".
    n_examples : int, default=3
        Admitted and rejected inputs shown with their nearest support
        points (each up to this many).
    n_neighbors : int, default=3
        Support points per example.
    alarm_level : float, default=0.01
        Of the drift test.
    random_state : int, RandomState instance or None, default=0
        Draws the examples and the drift test's tie-breaking.

    Returns
    -------
    report : dict
        The keys and values of the schema in the module docstring
        (``"schema": "sdm_sklearn.report/1"``), as plain JSON types: ready
        for :func:`json.dump` and :func:`render_html`.
    """
    from .monitoring import DriftMonitor

    sdm = final_sdm(estimator)
    check_sdm_estimator(sdm, "build_report")
    sdm_step, inputs = sdm_and_inputs(estimator, X)
    frame = sdm_step.predict_uncertainty(inputs)
    column = "admitted_lower" if sdm.conservative else "admitted"
    admitted = frame[column].to_numpy()
    prediction = frame["prediction"].to_numpy()
    labelled = y is not None
    if labelled:
        y = check_y_against_classes(y, sdm.classes_, stacklevel=3)
        if len(y) != len(frame):
            raise ValueError(
                f"y has {len(y)} labels for {len(frame)} inputs."
            )
        correct = prediction == y
    classes = sdm.classes_
    threshold = sdm.min_rescaled_similarity_
    calibration = sdm.calibration_uncertainty_
    model = {
        "alpha": float(sdm.alpha),
        "confidence": None if sdm.confidence is None else float(sdm.confidence),
        "conservative": bool(sdm.conservative),
        "classes": _plain_list(classes),
        "min_rescaled_similarity": _plain(threshold),
        "class_thresholds": _plain_list(sdm.class_thresholds_),
        "region_class_counts": _plain_list(sdm.region_class_counts_),
        "n_support": int(len(sdm.support_ids_)),
        "n_calibration": int(len(calibration)),
        "calibration_admitted_share": float(calibration["admitted"].mean()),
    }
    data = {
        "n_samples": int(len(frame)),
        "labelled": labelled,
        "n_admitted": int(admitted.sum()),
        "admitted_share": float(admitted.mean()),
        "accuracy_admitted": _accuracy(correct[admitted]) if labelled else None,
        "accuracy_all": _accuracy(correct) if labelled else None,
    }
    table, curve = [], {"coverage": [], "risk": [], "admitted_coverage": None,
                        "admitted_risk": None}
    if labelled:
        selective = selective_report(y, prediction, admitted, labels=classes,
                                     reasons=frame["reason"])
        # column by column, so that counts stay integers
        columns = {name: _plain_list(selective[name].to_numpy())
                   for name in selective.columns}
        table = [{"label": _plain(label),
                  **{name: values[i] for name, values in columns.items()}}
                 for i, label in enumerate(selective.index)]
        rc = risk_coverage_curve(y, prediction, frame["sdm_probability"])
        keep = np.unique(np.linspace(0, len(rc) - 1,
                                     min(len(rc), MAX_CURVE_POINTS)).astype(int))
        curve = {
            "coverage": _plain_list(rc["coverage"].to_numpy()[keep]),
            "risk": _plain_list(rc["risk"].to_numpy()[keep]),
            "admitted_coverage": data["admitted_share"],
            "admitted_risk": (None if data["accuracy_admitted"] is None
                              else 1.0 - data["accuracy_admitted"]),
        }
    reasons = frame["reason"].value_counts(sort=False)
    ood = frame["is_ood"].to_numpy() & ~admitted
    in_distribution = ~admitted & ~ood
    regions = {
        name: {"n": int(mask.sum()),
               "accuracy": _accuracy(correct[mask]) if labelled else None}
        for name, mask in (("admitted", admitted),
                           ("rejected_in_distribution", in_distribution),
                           ("out_of_distribution", ood))
    }
    monitor = DriftMonitor(estimator, alarm_level=alarm_level,
                           random_state=random_state).update_uncertainty(frame)
    drift = {key: _plain(monitor.history_[key].iloc[0]) for key in DRIFT_KEYS}
    drift["alarm_level"] = float(alarm_level)
    reference = dict(monitor.reference_)
    reference["class_frequencies"] = _plain_list(reference["class_frequencies"])
    drift["calibration"] = {key: _plain(value) if key != "class_frequencies"
                            else value for key, value in reference.items()}
    return {
        "schema": SCHEMA,
        "sdm_sklearn_version": __version__,
        "title": "SDMClassifier report" if title is None else str(title),
        "model": model,
        "data": data,
        "selective_table": table,
        "reasons": {str(reason): int(count) for reason, count in reasons.items()},
        "regions": regions,
        "risk_coverage": curve,
        "drift": drift,
        "examples": _examples(sdm_step, inputs, frame, admitted,
                              y if labelled else None, n_examples, n_neighbors,
                              check_random_state(random_state)),
    }


def _examples(sdm, inputs, frame, admitted, y, n_examples, n_neighbors, rng):
    """Seeded samples of admitted and rejected inputs with their neighbours."""
    rows = []
    # rows that could not be placed (nearest_support_index -1) have no
    # neighbours to show
    placed = frame["nearest_support_index"].to_numpy() >= 0
    for mask in (admitted, ~admitted & placed):
        candidates = np.flatnonzero(mask)
        chosen = np.sort(rng.choice(candidates, min(n_examples, len(candidates)),
                                    replace=False)) if len(candidates) else []
        rows.extend(int(row) for row in chosen)
    if not rows:
        return []
    sample = _safe_indexing(inputs, np.array(rows))
    if hasattr(sample, "reset_index"):
        # explain names a DataFrame's rows by their index: make it positions
        sample = sample.reset_index(drop=True)
    neighbours = sdm.explain(sample,
                             n_neighbors=min(n_neighbors, len(sdm.support_ids_)))
    examples = []
    for position, row in enumerate(rows):
        record = frame.iloc[row]
        near = neighbours[neighbours["input"] == position]
        examples.append({
            "row": row,
            "admitted": bool(admitted[row]),
            "reason": str(record["reason"]),
            "label": None if y is None else _plain(y[row]),
            "prediction": _plain(record["prediction"]),
            "sdm_probability": _plain(record["sdm_probability"]),
            "rescaled_similarity": _plain(record["rescaled_similarity"]),
            "d_nearest": _plain(record["d_nearest"]),
            "neighbors": [
                {"support_id": _plain(n["support_id"]), "label": _plain(n["label"]),
                 "prediction": _plain(n["prediction"]),
                 "distance": _plain(n["distance"]), "is_good": bool(n["is_good"])}
                for _, n in near.iterrows()
            ],
        })
    return examples


# ------------------------------------------------------------------ HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.text, th.text { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 2em; }
.alarm { color: #b00020; font-weight: bold; } .ok { color: #1b5e20; }
.note { color: #555; font-size: 0.9em; }
.scroll { overflow-x: auto; }
"""


def _format(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.3g}"
    return html.escape(str(value))


def _table(header, rows, text_columns=1):
    cells = "".join(
        f'<th class="text">{html.escape(str(name))}</th>' if i < text_columns
        else f"<th>{html.escape(str(name))}</th>" for i, name in enumerate(header))
    body = "".join(
        "<tr>" + "".join(
            f'<td class="text">{_format(value)}</td>' if i < text_columns
            else f"<td>{_format(value)}</td>" for i, value in enumerate(row)
        ) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{cells}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _svg_frame(width, height, title, x_label, y_label, content):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="{html.escape(title)}">'
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="14">'
        f"{html.escape(title)}</text>"
        f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle" '
        f'font-size="12">{html.escape(x_label)}</text>'
        f'<text x="12" y="{height / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 12 {height / 2})">{html.escape(y_label)}</text>'
        f"{content}</svg>"
    )


def _risk_coverage_svg(curve, width=420, height=300):
    left, right, top, bottom = 50, 15, 28, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    max_risk = max([r for r in curve["risk"] if r is not None] + [0.05])

    def point(coverage, risk):
        return (left + coverage * inner_w,
                top + inner_h - (risk / max_risk) * inner_h)

    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (
        point(c, r) for c, r in zip(curve["coverage"], curve["risk"], strict=True)
        if r is not None))
    axes = (f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" '
            'fill="none" stroke="#999"/>')
    ticks = "".join(
        f'<text x="{left + t * inner_w:.1f}" y="{top + inner_h + 14}" '
        f'text-anchor="middle" font-size="10">{t:.1f}</text>'
        for t in (0, 0.25, 0.5, 0.75, 1.0))
    ticks += "".join(
        f'<text x="{left - 4}" y="{top + inner_h - t * inner_h + 3:.1f}" '
        f'text-anchor="end" font-size="10">{t * max_risk:.2f}</text>'
        for t in (0, 0.5, 1.0))
    line = (f'<polyline points="{pts}" fill="none" stroke="#1f77b4" '
            'stroke-width="1.5"/>') if pts else ""
    mark = ""
    if curve["admitted_risk"] is not None:
        x, y = point(curve["admitted_coverage"], curve["admitted_risk"])
        mark = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d62728">'
                "<title>admitted by the region</title></circle>")
    return _svg_frame(width, height, "Risk-coverage (SDM output)", "coverage",
                      "risk", axes + ticks + line + mark)


def _regions_svg(regions, width=420, height=300):
    left, top, bottom = 50, 28, 56
    inner_h = height - top - bottom
    names = {"admitted": "admitted", "rejected_in_distribution":
             "rejected, in distribution", "out_of_distribution":
             "out of distribution"}
    total = max(sum(region["n"] for region in regions.values()), 1)
    bar_w = (width - left - 20) / len(regions)
    bars = ""
    for i, (key, region) in enumerate(regions.items()):
        share = region["n"] / total
        x = left + i * bar_w + bar_w * 0.15
        h = share * inner_h
        accuracy = ("" if region["accuracy"] is None
                    else f", accuracy {region['accuracy']:.3f}")
        bars += (
            f'<rect x="{x:.1f}" y="{top + inner_h - h:.1f}" width="{bar_w * 0.7:.1f}" '
            f'height="{h:.1f}" fill="#1f77b4"><title>{region["n"]} inputs'
            f"{accuracy}</title></rect>"
            f'<text x="{x + bar_w * 0.35:.1f}" y="{top + inner_h - h - 4:.1f}" '
            f'text-anchor="middle" font-size="11">{share:.1%}</text>'
            f'<text x="{x + bar_w * 0.35:.1f}" y="{top + inner_h + 14}" '
            f'text-anchor="middle" font-size="10">{html.escape(names[key])}</text>'
        )
        if region["accuracy"] is not None:
            bars += (f'<text x="{x + bar_w * 0.35:.1f}" y="{top + inner_h + 28}" '
                     f'text-anchor="middle" font-size="10">acc '
                     f'{region["accuracy"]:.3f}</text>')
    axis = (f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 20}" '
            f'y2="{top + inner_h}" stroke="#999"/>')
    return _svg_frame(width, height, "Where the inputs fall", "",
                      "share of inputs", axis + bars)


def render_html(report):
    """The report as one self-contained HTML page.

    The page has inline CSS and SVG charts and no script: it loads no file
    or address outside itself. Its sections are the summary, the region,
    the charts (where the inputs fall; the risk-coverage curve with
    labels), the selective table (with labels), the rejection reasons, the
    drift against the calibration split and the examples.

    Parameters
    ----------
    report : dict
        As returned by :func:`build_report`.

    Returns
    -------
    page : str
        The HTML document, to be written as UTF-8.
    """
    model, data, drift = report["model"], report["data"], report["drift"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report['title'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report['title'])}</h1>",
        f'<p class="note">sdm_sklearn {html.escape(report["sdm_sklearn_version"])}; '
        f"{data['n_samples']} inputs; alpha = {_format(model['alpha'])}, "
        f"confidence = {_format(model['confidence'])}"
        f"{', conservative variant' if model['conservative'] else ''}.</p>",
        "<h2>Summary</h2>",
        _table(["", "value"], [
            ["admitted", f"{data['n_admitted']} of {data['n_samples']} "
                         f"({data['admitted_share']:.1%})"],
            ["accuracy of admitted inputs", data["accuracy_admitted"]],
            ["accuracy of all inputs", data["accuracy_all"]],
            ["drift alarm (level " + _format(drift["alarm_level"]) + ")",
             "ALARM" if drift["alarm"] else "none"],
        ]),
        "<h2>The region</h2>",
        "<p>q'<sub>min</sub> = " + _format(model["min_rescaled_similarity"])
        + (" (no region: every input is rejected)"
           if model["min_rescaled_similarity"] is None else "")
        + f"; {model['n_support']} support and {model['n_calibration']} "
        "calibration points.</p>",
        _table(["class", "class threshold", "calibration points in the region"],
               [[label, threshold, count] for label, threshold, count in zip(
                   model["classes"], model["class_thresholds"],
                   model["region_class_counts"], strict=True)]),
        '<div class="charts">',
        _regions_svg(report["regions"]),
    ]
    if data["labelled"]:
        parts.append(_risk_coverage_svg(report["risk_coverage"]))
    parts.append("</div>")
    if data["labelled"]:
        header = list(report["selective_table"][0])
        parts += ["<h2>Selective table</h2>",
                  '<p class="note">Per true class (class_*) and per predicted '
                  "class (prediction_*): accuracy and number of admitted "
                  "inputs, the admitted fraction, and the rejections by "
                  "reason.</p>",
                  _table(header, [list(row.values())
                                  for row in report["selective_table"]])]
    parts += ["<h2>Rejection reasons</h2>",
              _table(["reason", "inputs"], list(report["reasons"].items())),
              "<h2>Drift against the calibration split</h2>",
              f'<p class="{"alarm" if drift["alarm"] else "ok"}">'
              + ("The exchangeability test rejects: these inputs do not look "
                 "like the calibration data, and the region's promise does "
                 "not carry over to them." if drift["alarm"] else
                 "The exchangeability test does not reject.") + "</p>",
              _table(["statistic", "data", "calibration"], [
                  ["admitted share", drift["admitted_share"],
                   drift["calibration"]["admitted_share"]],
                  ["mean q'", drift["mean_rescaled_similarity"],
                   drift["calibration"]["mean_rescaled_similarity"]],
                  ["median d_nearest", drift["median_d_nearest"],
                   drift["calibration"]["median_d_nearest"]],
                  ["KS distance of q'", drift["ks_rescaled_similarity"], None],
                  ["KS distance of d_nearest", drift["ks_d_nearest"], None],
                  ["TV distance of predicted classes", drift["class_shift"], None],
                  ["log10 martingale, q'",
                   drift["log10_martingale_rescaled_similarity"], None],
                  ["log10 martingale, d_nearest",
                   drift["log10_martingale_d_nearest"], None],
              ]),
              "<h2>Examples and their nearest support points</h2>"]
    for example in report["examples"]:
        status = ("admitted" if example["admitted"]
                  else f"rejected ({example['reason']})")
        parts.append(
            f"<h3>Row {example['row']}: {html.escape(status)}</h3>"
            f"<p>prediction {_format(example['prediction'])}, label "
            f"{_format(example['label'])}, SDM output "
            f"{_format(example['sdm_probability'])}, q' "
            f"{_format(example['rescaled_similarity'])}, d_nearest "
            f"{_format(example['d_nearest'])}</p>")
        parts.append(_table(
            ["support_id", "label", "prediction", "distance", "counts in q"],
            [[n["support_id"], n["label"], n["prediction"], n["distance"],
              n["is_good"]] for n in example["neighbors"]]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(estimator, X, y=None, *, html_path=None, json_path=None,
                 **kwargs):
    """Build the report and write it as HTML and/or JSON.

    The report of :func:`build_report` is written to ``html_path`` as
    rendered by :func:`render_html` and to ``json_path`` as indented JSON
    (no NaN: values that cannot be computed are ``null``). An existing file
    is overwritten.

    Parameters
    ----------
    estimator : SDMClassifier or Pipeline ending in one
        Fitted.
    X : array-like of shape (n_samples, n_features), or producer input
        The data to report on.
    y : array-like of shape (n_samples,), default=None
        True labels; see :func:`build_report`.
    html_path, json_path : str or path-like, default=None
        Files to write (UTF-8); None: not written.
    **kwargs
        Passed to :func:`build_report`.

    Returns
    -------
    report : dict
        The report that was written, as returned by :func:`build_report`
        (returned even when neither file is written).
    """
    report = build_report(estimator, X, y, **kwargs)
    if html_path is not None:
        with open(html_path, "w", encoding="utf-8") as file:
            file.write(render_html(report))
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2, allow_nan=False)
    return report
