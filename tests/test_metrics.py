"""Tests for sdm_sklearn.metrics.

Expected values are worked out by hand in the comments next to each case.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from label_kinds import LABEL_KINDS, as_labels
from numpy.testing import assert_allclose, assert_array_equal

from sdm_sklearn.metrics import (
    coverage_at_accuracy,
    format_selective_report,
    risk_coverage_auc,
    risk_coverage_curve,
    selective_report,
)

REPORT_COLUMNS = [
    "class_accuracy",
    "class_admitted",
    "class_fraction",
    "prediction_accuracy",
    "prediction_admitted",
    "prediction_fraction",
]

# Integer example; -1 marks rejected predictions.
#   position:  0  1  2   3  4  5   6   7
Y_TRUE_INT = [0, 0, 0, 0, 1, 1, 1, 2]
Y_PRED_INT = [0, 0, 1, -1, 1, 0, -1, -1]
ADMITTED_INT = [True, True, True, False, True, True, False, False]


def test_selective_report_integer_labels_every_column():
    report = selective_report(Y_TRUE_INT, Y_PRED_INT, ADMITTED_INT)

    # Rows: sorted union of y_true {0, 1, 2} and admitted y_pred {0, 1}; the
    # marker -1 only appears at rejected positions, so it is not a label.
    assert report.index.tolist() == [0, 1, 2, "marginal"]
    assert report.columns.tolist() == REPORT_COLUMNS
    # True label 0: positions 0-3; admitted 0, 1, 2; correct 0, 1.
    # True label 1: positions 4-6; admitted 4, 5; correct 4.
    # True label 2: position 7; not admitted.
    # Marginal: 5 admitted (0, 1, 2, 4, 5), 3 correct (0, 1, 4), 8 in total.
    assert_allclose(report["class_accuracy"], [2 / 3, 1 / 2, np.nan, 3 / 5])
    assert_array_equal(report["class_admitted"], [3, 2, 0, 5])
    assert_allclose(report["class_fraction"], [3 / 4, 2 / 3, 0.0, 5 / 8])
    # Predicted 0 and admitted: positions 0, 1, 5; correct 0, 1.
    # Predicted 1 and admitted: positions 2, 4; correct 4.
    # Predicted 2: never.
    assert_allclose(report["prediction_accuracy"], [2 / 3, 1 / 2, np.nan, 3 / 5])
    assert_array_equal(report["prediction_admitted"], [3, 2, 0, 5])
    assert_allclose(report["prediction_fraction"], [3 / 8, 2 / 8, 0.0, 5 / 8])


def test_selective_report_index_and_dtypes():
    report = selective_report(Y_TRUE_INT, Y_PRED_INT, ADMITTED_INT)

    assert report.index.name == "label"
    assert report.index.dtype == object
    assert report.index[-1] == "marginal"
    assert report["class_admitted"].dtype.kind == "i"
    assert report["prediction_admitted"].dtype.kind == "i"


def test_selective_report_string_labels_with_rejection_marker():
    # A string marker among string labels, passed as a plain list.
    y_true = ["b", "a", "a", "b", "c"]
    y_pred = ["b", "a", "reject", "a", "reject"]
    admitted = [True, True, False, True, False]

    report = selective_report(y_true, y_pred, admitted)

    # "reject" is only at rejected positions, hence not a row.
    assert report.index.tolist() == ["a", "b", "c", "marginal"]
    # True "a": positions 1, 2; admitted 1 (correct).
    # True "b": positions 0, 3; admitted 0 (correct), 3 (wrong).
    # True "c": position 4; not admitted.
    assert_allclose(report["class_accuracy"], [1.0, 0.5, np.nan, 2 / 3])
    assert_array_equal(report["class_admitted"], [1, 2, 0, 3])
    assert_allclose(report["class_fraction"], [1 / 2, 2 / 2, 0.0, 3 / 5])
    # Predicted "a": positions 1 (correct), 3 (wrong); predicted "b": 0.
    assert_allclose(report["prediction_accuracy"], [0.5, 1.0, np.nan, 2 / 3])
    assert_array_equal(report["prediction_admitted"], [2, 1, 0, 3])
    assert_allclose(report["prediction_fraction"], [2 / 5, 1 / 5, 0.0, 3 / 5])


@pytest.mark.parametrize("marker", [None, "reject", np.nan, -1])
def test_selective_report_marker_at_rejected_positions_is_ignored(marker):
    # Integer labels; the marker may be of another type than the labels.
    y_true = [0, 1, 1, 0]
    y_pred = [0, marker, 1, marker]
    admitted = [True, False, True, False]

    report = selective_report(y_true, y_pred, admitted)

    assert report.index.tolist() == [0, 1, "marginal"]
    # Both admitted predictions (positions 0 and 2) are correct.
    assert_allclose(report["class_accuracy"], [1.0, 1.0, 1.0])
    assert_array_equal(report["class_admitted"], [1, 1, 2])
    assert_allclose(report["class_fraction"], [1 / 2, 1 / 2, 2 / 4])
    assert_array_equal(report["prediction_admitted"], [1, 1, 2])
    assert_allclose(report["prediction_fraction"], [1 / 4, 1 / 4, 2 / 4])


def test_selective_report_predicted_label_absent_from_y_true():
    # Label 5 is only predicted (and admitted): it gets a row, with a NaN
    # class accuracy and class fraction since no point has true label 5.
    report = selective_report([0, 0, 1], [0, 5, 1], [True, True, True])

    assert report.index.tolist() == [0, 1, 5, "marginal"]
    row = report.loc[5]
    assert np.isnan(row["class_accuracy"])
    assert row["class_admitted"] == 0
    assert np.isnan(row["class_fraction"])
    assert row["prediction_accuracy"] == 0.0
    assert row["prediction_admitted"] == 1
    assert row["prediction_fraction"] == pytest.approx(1 / 3)


def test_selective_report_nothing_admitted():
    with warnings.catch_warnings():
        # NaN accuracies must not come from a 0 / 0 division warning.
        warnings.simplefilter("error")
        report = selective_report(["x", "y", "y"], ["x", "y", "x"], [0, 0, 0])

    assert report.index.tolist() == ["x", "y", "marginal"]
    assert report["class_accuracy"].isna().all()
    assert report["prediction_accuracy"].isna().all()
    assert_array_equal(report["class_admitted"], [0, 0, 0])
    assert_array_equal(report["prediction_admitted"], [0, 0, 0])
    # There are points with each true label, so the fractions are 0, not NaN.
    assert_array_equal(report["class_fraction"], [0.0, 0.0, 0.0])
    assert_array_equal(report["prediction_fraction"], [0.0, 0.0, 0.0])


def test_selective_report_marginal_row():
    # 6 points, 4 admitted (positions 0, 1, 2, 4), 3 of them correct (0, 2, 4).
    y_true = [1, 2, 3, 1, 2, 3]
    y_pred = [1, 3, 3, 0, 2, 0]
    admitted = np.array([1, 1, 1, 0, 1, 0])

    marginal = selective_report(y_true, y_pred, admitted).loc["marginal"]

    assert marginal["class_accuracy"] == pytest.approx(3 / 4)
    assert marginal["prediction_accuracy"] == pytest.approx(3 / 4)
    assert marginal["class_admitted"] == 4
    assert marginal["prediction_admitted"] == 4
    assert marginal["class_fraction"] == pytest.approx(4 / 6)
    assert marginal["prediction_fraction"] == pytest.approx(4 / 6)


def test_selective_report_integer_mask_matches_boolean_mask():
    as_int = selective_report(Y_TRUE_INT, Y_PRED_INT, np.array(ADMITTED_INT, int))
    as_bool = selective_report(Y_TRUE_INT, Y_PRED_INT, ADMITTED_INT)

    pd.testing.assert_frame_equal(as_int, as_bool)


def test_selective_report_explicit_labels():
    # Rows follow the given order, an unseen label gets a row of zeros, and
    # the marginal row still describes all admitted points (also label 0's).
    report = selective_report(Y_TRUE_INT, Y_PRED_INT, ADMITTED_INT, labels=[2, 1, 7])

    assert report.index.tolist() == [2, 1, 7, "marginal"]
    assert_array_equal(report["class_admitted"], [0, 2, 0, 5])
    assert_array_equal(report["prediction_admitted"], [0, 2, 0, 5])
    # 7 has no point with that true label: the class fraction is NaN.
    assert np.isnan(report.loc[7, "class_fraction"])
    assert report.loc[7, "prediction_fraction"] == 0.0
    assert report.loc[1, "class_accuracy"] == pytest.approx(1 / 2)


def test_selective_report_pandas_inputs():
    y_true = pd.Series(["spam", "ham", "ham"])
    y_pred = pd.Series(["spam", None, "spam"])
    admitted = pd.Series([True, False, True])

    report = selective_report(y_true, y_pred, admitted)

    assert report.index.tolist() == ["ham", "spam", "marginal"]
    # True "ham": positions 1 (rejected), 2 (admitted, wrong).
    assert_allclose(report["class_accuracy"], [0.0, 1.0, 1 / 2])
    assert_allclose(report["prediction_accuracy"], [np.nan, 1 / 2, 1 / 2])


def test_selective_report_length_mismatch():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        selective_report([0, 1, 1], [0, 1], [True, True, True])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        selective_report([0, 1], [0, 1], [True])


@pytest.mark.parametrize(
    "admitted, match",
    [
        ([0.0, 1.0, 1.0], "dtype float64"),
        (["yes", "no", "yes"], "dtype <U3"),
        ([0, 2, 1], r"integer values \[2\]"),
        ([-1, 1, 1], r"integer values \[-1\]"),
    ],
)
def test_selective_report_rejects_non_boolean_mask(admitted, match):
    with pytest.raises(ValueError, match=match):
        selective_report([0, 1, 1], [0, 1, 0], admitted)


def test_selective_report_empty_input():
    with pytest.raises(ValueError, match="Found empty input"):
        selective_report([], [], [])


def test_selective_report_rejects_marginal_label():
    with pytest.raises(ValueError, match="'marginal' is reserved"):
        selective_report(["marginal", "a"], ["a", "a"], [True, True])
    with pytest.raises(ValueError, match="'marginal' is reserved"):
        selective_report(["a", "b"], ["a", "a"], [True, True], labels=["marginal"])


def test_selective_report_rejects_duplicate_labels():
    with pytest.raises(ValueError, match="duplicates"):
        selective_report([0, 1], [0, 1], [True, True], labels=[0, 1, 0])


def test_selective_report_rejects_mixed_label_kinds():
    # A string prediction at an admitted position, with integer true labels.
    with pytest.raises(ValueError, match="Mix of label input types"):
        selective_report([0, 1], [0, "reject"], [True, True])


def test_selective_report_counts_rejections_by_reason_and_true_label():
    y_true = ["a", "a", "b", "b", "b", "a"]
    y_pred = ["a", "b", "b", "a", "b", "a"]
    admitted = [True, False, True, False, False, False]
    reasons = pd.Categorical(
        ["admitted", "below_region", "admitted", "out_of_distribution",
         "below_region", "below_region"],
        categories=["admitted", "out_of_distribution", "no_region",
                    "below_region"],
    )
    report = selective_report(y_true, y_pred, admitted, reasons=reasons)
    # one column per rejection reason, in the categories' order, unused ones too
    assert list(report.columns[6:]) == [
        "rejected_out_of_distribution", "rejected_no_region",
        "rejected_below_region",
    ]
    assert report["rejected_below_region"].tolist() == [2, 1, 3]
    assert report["rejected_out_of_distribution"].tolist() == [0, 1, 1]
    assert report["rejected_no_region"].tolist() == [0, 0, 0]
    # every rejected point has exactly one reason
    rejected_total = report.filter(like="rejected_").sum(axis=1)
    assert_array_equal(rejected_total, [2, 2, 4])
    text = format_selective_report(report)
    assert text.splitlines()[-1] == (
        "rejected: 1 out_of_distribution, 0 no_region, 3 below_region"
    )
    # plain strings: sorted reasons
    plain = selective_report(y_true, y_pred, admitted,
                             reasons=np.asarray(reasons, dtype=object))
    assert list(plain.columns[6:]) == [
        "rejected_below_region", "rejected_out_of_distribution",
    ]


def test_selective_report_refuses_reasons_of_another_admission():
    with pytest.raises(ValueError, match="disagree at 1 positions"):
        selective_report([0, 1], [0, 1], [True, False],
                         reasons=["admitted", "admitted"])
    with pytest.raises(ValueError, match="must hold strings"):
        selective_report([0, 1], [0, 1], [True, False], reasons=["admitted", 3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        selective_report([0, 1], [0, 1], [True, False], reasons=["admitted"])


def test_format_selective_report_layout():
    report = selective_report(Y_TRUE_INT, Y_PRED_INT, ADMITTED_INT)

    text = format_selective_report(report, title="Held-out")
    lines = text.splitlines()

    # Title, two header lines, then one line per row of the report.
    assert lines[0] == "Held-out"
    assert len(lines) == 3 + len(report)
    assert lines[1].split() == ["class", "prediction"]
    assert lines[2].split() == ["label", "acc", "n", "frac", "acc", "n", "frac"]
    # Label 0: accuracy 2/3, 3 admitted, 3/4 of class 0, predicted 3/8 of all.
    assert lines[3].split() == ["0", "0.667", "3", "0.75", "0.667", "3", "0.38"]
    # Label 2: no admitted point, so both accuracies are shown as "-".
    assert lines[5].split() == ["2", "-", "0", "0.00", "-", "0", "0.00"]
    assert lines[6].split() == [
        "marginal",
        "0.600",
        "5",
        "0.62",
        "0.600",
        "5",
        "0.62",
    ]
    # Fixed width: the rows of the table all have the same length.
    assert len({len(line) for line in lines[2:]}) == 1
    assert not text.endswith("\n")


def test_format_selective_report_without_title():
    report = selective_report([0, 1], [0, 1], [True, True])

    lines = format_selective_report(report).splitlines()

    assert len(lines) == 2 + len(report)
    assert lines[1].split()[0] == "label"


def test_format_selective_report_missing_columns():
    report = selective_report([0, 1], [0, 1], [True, True])

    with pytest.raises(ValueError, match=r"missing the columns \['class_fraction'\]"):
        format_selective_report(report.drop(columns="class_fraction"))


# Curve example with ties; correct predictions: [T, T, F, T, T, F].
Y_TRUE_TIES = [1, 1, 0, 1, 0, 0]
Y_PRED_TIES = [1, 1, 1, 1, 0, 1]
CONF_TIES = [0.9, 0.7, 0.7, 0.7, 0.2, 0.2]


def test_risk_coverage_curve_with_ties():
    curve = risk_coverage_curve(Y_TRUE_TIES, Y_PRED_TIES, CONF_TIES)

    assert curve.columns.tolist() == ["threshold", "coverage", "risk", "n_admitted"]
    # One row per distinct confidence, tied points admitted together:
    #   >= 0.9: point 0           -> 1 admitted, 0 errors
    #   >= 0.7: points 0-3        -> 4 admitted, 1 error (point 2)
    #   >= 0.2: all six points    -> 6 admitted, 2 errors (points 2, 5)
    assert_allclose(curve["threshold"], [0.9, 0.7, 0.2])
    assert_array_equal(curve["n_admitted"], [1, 4, 6])
    assert_allclose(curve["coverage"], [1 / 6, 4 / 6, 6 / 6])
    assert_allclose(curve["risk"], [0 / 1, 1 / 4, 2 / 6])


def test_risk_coverage_curve_does_not_depend_on_input_order():
    permutation = [3, 5, 0, 4, 2, 1]
    shuffled = risk_coverage_curve(
        np.array(Y_TRUE_TIES)[permutation],
        np.array(Y_PRED_TIES)[permutation],
        np.array(CONF_TIES)[permutation],
    )

    expected = risk_coverage_curve(Y_TRUE_TIES, Y_PRED_TIES, CONF_TIES)
    pd.testing.assert_frame_equal(shuffled, expected)


def test_risk_coverage_curve_string_labels():
    # Sorted by confidence: "a" (right), "b" (wrong), "b" (right).
    curve = risk_coverage_curve(["a", "b", "b"], ["a", "a", "b"], [3, 2, 1])

    assert_allclose(curve["risk"], [0.0, 1 / 2, 1 / 3])
    assert_allclose(curve["threshold"], [3.0, 2.0, 1.0])


def test_risk_coverage_curve_errors():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        risk_coverage_curve([0, 1], [0, 1], [0.5])
    with pytest.raises(ValueError, match="Found empty input"):
        risk_coverage_curve([], [], [])
    with pytest.raises(ValueError, match="confidence contains NaN"):
        risk_coverage_curve([0, 1], [0, 1], [0.5, np.nan])
    with pytest.raises(ValueError, match="Mix of label input types"):
        risk_coverage_curve([0, 1], ["0", "1"], [0.5, 0.4])


# Four distinct confidences; sorted by decreasing confidence the predictions
# are wrong (0.9), right (0.6), right (0.4), wrong (0.1).
Y_TRUE_4 = [0, 0, 1, 1]
Y_PRED_4 = [0, 1, 1, 0]
CONF_4 = [0.4, 0.9, 0.6, 0.1]


def test_risk_coverage_auc_four_points():
    # Risks 1/1, 1/2, 1/3, 2/4, each over a coverage step of 1/4:
    # (1 + 1/2 + 1/3 + 1/2) / 4 = (14/6) / 4 = 7/12.
    assert risk_coverage_auc(Y_TRUE_4, Y_PRED_4, CONF_4) == pytest.approx(7 / 12)


def test_risk_coverage_auc_with_ties():
    # Risks 0, 1/4, 1/3 over coverage steps 1/6, 3/6, 2/6:
    # 0 + 1/8 + 1/9 = 17/72.
    auc = risk_coverage_auc(Y_TRUE_TIES, Y_PRED_TIES, CONF_TIES)
    assert auc == pytest.approx(17 / 72)


def test_risk_coverage_auc_extremes():
    # All correct: zero risk everywhere. All wrong: risk one everywhere.
    assert risk_coverage_auc([0, 1, 1], [0, 1, 1], [0.1, 0.5, 0.9]) == 0.0
    assert risk_coverage_auc([0, 1, 1], [1, 0, 0], [0.1, 0.5, 0.9]) == 1.0


@pytest.mark.parametrize(
    "target, expected",
    [
        # Accuracies by coverage 1/4, 2/4, 3/4, 4/4: 0, 1/2, 2/3, 1/2.
        (0.0, 1.0),
        (0.5, 1.0),  # exact tie at full coverage
        (0.6, 0.75),
        (2 / 3, 0.75),  # exact tie
        (0.7, 0.0),  # never reached
        (1.0, 0.0),
    ],
)
def test_coverage_at_accuracy(target, expected):
    assert coverage_at_accuracy(Y_TRUE_4, Y_PRED_4, CONF_4, target) == expected


def test_coverage_at_accuracy_with_ties():
    # Accuracies 1, 3/4, 2/3 at coverages 1/6, 4/6, 1.
    coverage = coverage_at_accuracy(Y_TRUE_TIES, Y_PRED_TIES, CONF_TIES, 0.75)
    assert coverage == pytest.approx(4 / 6)
    assert coverage_at_accuracy(Y_TRUE_TIES, Y_PRED_TIES, CONF_TIES, 1.0) == 1 / 6


@pytest.mark.parametrize("target", [-0.1, 1.5, np.nan, "0.5"])
def test_coverage_at_accuracy_target_out_of_range(target):
    with pytest.raises(ValueError, match=r"target must be a number in \[0, 1\]"):
        coverage_at_accuracy(Y_TRUE_4, Y_PRED_4, CONF_4, target)


# --- Input validation: no silent wrong answer -------------------------------

MISSING_OR_INFINITE = [np.nan, None, pd.NA, np.inf]


@pytest.mark.parametrize("bad", MISSING_OR_INFINITE)
def test_selective_report_rejects_missing_true_labels(bad):
    # Before: a NaN label got a row of its own whose points were counted
    # nowhere, so the per-class counts did not add up to the marginal.
    with pytest.raises(ValueError, match="Input y_true contains missing or infinite"):
        selective_report(np.array([0, 1, bad, 1], dtype=object), [0, 1, 1, 1],
                         [True, True, True, True])


def test_selective_report_rejects_nan_in_float_true_labels():
    with pytest.raises(ValueError, match=r"Input y_true contains .*\(nan\)"):
        selective_report([0, 1, np.nan, 1], [0, 1, 1, 1], [True, True, True, True])


@pytest.mark.parametrize("bad", MISSING_OR_INFINITE)
def test_selective_report_rejects_missing_prediction_at_admitted_position(bad):
    with pytest.raises(ValueError, match="Input y_pred .* at admitted positions"):
        selective_report([0, 1, 1], [0, bad, 1], [True, True, True])


@pytest.mark.parametrize("bad", MISSING_OR_INFINITE)
def test_risk_coverage_rejects_missing_labels(bad):
    # Before: a NaN pair (NaN != NaN) was counted as an error.
    y = np.array([0, bad, 1], dtype=object)
    with pytest.raises(ValueError, match="Input y_true contains missing"):
        risk_coverage_curve(y, [0, 1, 1], [0.9, 0.5, 0.1])
    with pytest.raises(ValueError, match="Input y_pred contains missing"):
        risk_coverage_auc([0, 1, 1], y, [0.9, 0.5, 0.1])
    with pytest.raises(ValueError, match="Input y_pred contains missing"):
        coverage_at_accuracy([0, 1, 1], y, [0.9, 0.5, 0.1], 0.5)


def test_risk_coverage_rejects_nan_pair():
    with pytest.raises(ValueError, match="Input y_true contains missing"):
        risk_coverage_curve([0.0, np.nan], [0.0, np.nan], [0.9, 0.5])


@pytest.mark.parametrize(
    "confidence, match",
    [
        ([0.9, np.inf], "Input confidence contains infinity"),
        ([0.9, -np.inf], "Input confidence contains infinity"),
        ([0.9, np.nan], "Input confidence contains NaN"),
        (["high", "low"], "could not convert string to float"),
    ],
)
def test_risk_coverage_rejects_bad_confidence(confidence, match):
    for metric in (risk_coverage_curve, risk_coverage_auc):
        with pytest.raises(ValueError, match=match):
            metric([0, 1], [0, 1], confidence)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [(["a", "b"], [0, 1]), ([0, 1], ["0", "1"]), ([True, False], ["a", "b"])],
)
def test_metrics_reject_labels_of_different_kinds(y_true, y_pred):
    match = "Mix of label input types"
    with pytest.raises(ValueError, match=match):
        selective_report(y_true, y_pred, [True, True])
    with pytest.raises(ValueError, match=match):
        risk_coverage_auc(y_true, y_pred, [0.9, 0.1])


def test_mixed_label_kinds_message_names_the_kinds():
    with pytest.raises(
        ValueError, match=r"\(y_true: strings; y_pred: numbers\)"
    ):
        risk_coverage_curve(["a", "b"], [0, 1], [0.9, 0.1])


@pytest.mark.parametrize(
    "y_true, labels",
    [(["a", "b"], [0, 1]), ([0, 1], ["0", "1"]), ([0, 1], [0, "unseen"])],
)
def test_selective_report_rejects_labels_of_another_kind(y_true, labels):
    # Before: string labels against integer rows gave rows of zeros that did
    # not add up to the marginal row.
    with pytest.raises(ValueError, match=r"Mix of label input types .*labels: "):
        selective_report(y_true, y_true, [True, True], labels=labels)


def test_selective_report_rejects_missing_labels_argument():
    with pytest.raises(ValueError, match="Input labels contains missing"):
        selective_report([0, 1], [0, 1], [True, True], labels=[0, np.nan])


@pytest.mark.parametrize(
    "admitted, match",
    [
        (["False", "False"], "dtype <U5"),
        ([0.5, 0.0], "dtype float64"),
        (np.array([True, False], dtype=object), "dtype object"),
        (pd.Series([True, pd.NA], dtype="boolean"), r"missing values \(pd.NA\)"),
    ],
)
def test_selective_report_mask_rule(admitted, match):
    with pytest.raises(ValueError, match=match):
        selective_report([0, 1], [0, 1], admitted)


@pytest.mark.parametrize("dtype", ["boolean", "Int64"])
def test_selective_report_accepts_pandas_nullable_masks(dtype):
    # Before: pandas' nullable dtypes became float64 and were refused.
    admitted = pd.Series([1, 0, 1], dtype=dtype)
    report = selective_report([0, 1, 1], [0, 1, 0], admitted)
    pd.testing.assert_frame_equal(
        report, selective_report([0, 1, 1], [0, 1, 0], [True, False, True])
    )


# --- Every kind of label, through every metric ------------------------------



# y_true, y_pred as 0/1 codes; predictions 2 and 5 are wrong.
CODES_TRUE = [0, 0, 1, 1, 1, 0]
CODES_PRED = [0, 1, 1, 1, 0, 0]
CODES_ADMITTED = [True, True, True, False, True, False]
CODES_CONFIDENCE = [0.9, 0.3, 0.8, 0.8, 0.2, 0.6]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_every_metric_with_every_label_kind(kind):
    y_true, y_pred = as_labels(CODES_TRUE, kind), as_labels(CODES_PRED, kind)

    report = selective_report(y_true, y_pred, CODES_ADMITTED)
    expected = selective_report(CODES_TRUE, CODES_PRED, CODES_ADMITTED)
    sorted_labels = sorted(set(np.asarray(y_true).tolist()))
    assert report.index.tolist() == [*sorted_labels, "marginal"]
    assert_allclose(report.to_numpy(float), expected.to_numpy(float))
    explicit = selective_report(y_true, y_pred, CODES_ADMITTED,
                                labels=sorted_labels[::-1])
    assert_allclose(explicit.to_numpy(float),
                    expected.to_numpy(float)[[1, 0, 2]])
    text = format_selective_report(report)
    assert text.splitlines()[2].split()[0] == str(sorted_labels[0])

    pd.testing.assert_frame_equal(
        risk_coverage_curve(y_true, y_pred, CODES_CONFIDENCE),
        risk_coverage_curve(CODES_TRUE, CODES_PRED, CODES_CONFIDENCE),
    )
    assert risk_coverage_auc(y_true, y_pred, CODES_CONFIDENCE) == (
        risk_coverage_auc(CODES_TRUE, CODES_PRED, CODES_CONFIDENCE)
    )
    assert coverage_at_accuracy(y_true, y_pred, CODES_CONFIDENCE, 0.75) == (
        coverage_at_accuracy(CODES_TRUE, CODES_PRED, CODES_CONFIDENCE, 0.75)
    )


@pytest.mark.parametrize("kind", ["str", "object", "pandas-str", "pandas-category"])
def test_string_labels_against_integer_labels_are_refused(kind):
    y_true = as_labels(CODES_TRUE, kind)
    with pytest.raises(ValueError, match="Mix of label input types"):
        selective_report(y_true, CODES_PRED, CODES_ADMITTED)
    with pytest.raises(ValueError, match="Mix of label input types"):
        selective_report(y_true, y_true, CODES_ADMITTED, labels=[0, 1])
    with pytest.raises(ValueError, match="Mix of label input types"):
        risk_coverage_curve(y_true, CODES_PRED, CODES_CONFIDENCE)


@pytest.mark.parametrize("kind", ["pandas-str", "pandas-category"])
def test_pandas_missing_labels_are_refused(kind):
    y_true = as_labels(CODES_TRUE, kind)
    y_true.iloc[0] = np.nan
    with pytest.raises(ValueError, match="Input y_true contains missing"):
        selective_report(y_true, as_labels(CODES_PRED, kind), CODES_ADMITTED)
    with pytest.raises(ValueError, match="Input y_true contains missing"):
        risk_coverage_auc(y_true, as_labels(CODES_PRED, kind), CODES_CONFIDENCE)
