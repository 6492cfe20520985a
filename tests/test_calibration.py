"""Tests for sdm_sklearn._calibration (paper, sec. 3.1.3, eq. 8-9, Alg. 1, A.5).

Expected values are worked out by hand in the comments, or by a direct
implementation of the method's definitions written in this file.
"""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sdm_sklearn._calibration import (
    admit,
    class_distance_values,
    class_rescaled_values,
    distance_quantile,
    dkw_epsilon,
    effective_sample_size,
    high_reliability_region,
    rescaled_similarity,
)


def test_class_distance_values_keep_in_distribution_points_sorted():
    d_nearest = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2])
    y = np.array([0, 0, 1, 0, 1, 2])
    q = np.array([3, 1, 2, 0, 5, 0])
    values = class_distance_values(d_nearest, y, q, n_classes=4)
    # Point 3 (class 0) and point 5 (class 2) have q = 0 and are left out;
    # class 3 has no points.
    assert len(values) == 4
    assert_array_equal(values[0], [0.1, 0.5])
    assert_array_equal(values[1], [0.7, 0.9])
    assert values[2].size == 0 and values[3].size == 0


def test_distance_quantile_boundary_conventions():
    # Class 0 stores 1, 2, 3, 4; class 1 stores 2, 6.
    values = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 6.0])]
    d_nearest = np.array([0.0, 1.0, 2.0, 2.5, 4.0, 5.0, 6.0, 7.0])
    # Exclusionary eCDF: count of stored values strictly below.
    #   v    below_0  1-eCDF_0   below_1  1-eCDF_1   min
    #   0    0        1          0        1          1
    #   1    0        1          0        1          1
    #   2    1        3/4        0        1          3/4
    #   2.5  2        1/2        1        1/2        1/2
    #   4    3        1/4        1        1/2        1/4
    #   5    4        0          1        1/2        0
    #   6    4        0          1        1/2        0
    #   7    4        0          2        0          0
    expected = [1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0]
    assert_allclose(distance_quantile(d_nearest, values), expected, rtol=0, atol=0)


def test_distance_quantile_empty_class_gives_zero():
    values = [np.array([1.0, 2.0]), np.array([])]
    assert_array_equal(distance_quantile(np.array([0.0, 1.5, 9.0]), values), 0.0)


def test_distance_quantile_from_stored_in_distribution_points():
    # q = 0 points do not move the eCDF: with them, 1.5 would be below half of
    # class 0's values; without them it is below one of two.
    d_nearest = np.array([1.0, 2.0, 0.2, 0.3])
    y = np.array([0, 0, 0, 0])
    q = np.array([4, 2, 0, 0])
    values = class_distance_values(d_nearest, y, q, n_classes=1)
    assert_allclose(distance_quantile(np.array([1.5]), values), [0.5])


def test_rescaled_similarity_by_hand():
    q = np.array([0, 3, 1, 10, 2])
    p = np.array([0.9, 0.5, 0.9, 1.0, 0.0])
    # min(0, 2^0.9) = 0; min(3, 5^0.5); min(1, 3^0.9) = 1;
    # min(10, 12^1) = 10; min(2, 4^0) = 1.
    expected = [0.0, math.sqrt(5.0), 1.0, 10.0, 1.0]
    assert_allclose(rescaled_similarity(q, p), expected, rtol=1e-15)


# A calibration set of 7 points, 2 classes.
#   point  q'    SDM_0  SDM_1  y
#   A      0.5   0.60   0.40   0   (floor(q') = 0: out of distribution)
#   B      1.5   0.80   0.20   0
#   C      2.0   0.95   0.05   0
#   D      3.0   0.97   0.03   0
#   E      1.2   0.30   0.70   1
#   F      2.5   0.07   0.93   1
#   G      3.5   0.02   0.98   1
CRAFTED_Q_PRIME = np.array([0.5, 1.5, 2.0, 3.0, 1.2, 2.5, 3.5])
CRAFTED_PROBA = np.array(
    [[0.6, 0.4], [0.8, 0.2], [0.95, 0.05], [0.97, 0.03], [0.3, 0.7],
     [0.07, 0.93], [0.02, 0.98]]
)
CRAFTED_Y = np.array([0, 0, 0, 0, 1, 1, 1])
CRAFTED = (CRAFTED_Q_PRIME, CRAFTED_PROBA, CRAFTED_Y)


def test_high_reliability_region_crafted():
    # alpha = 0.9: with fewer than 10 points per class the quantile index
    # min(floor(0.1 n), n - 1) is 0, so psi_c is the smallest SDM_c.
    # Candidates: 1.2, 1.5, 2.0, 2.5, 3.0, 3.5 (0.5 has floor 0).
    #   1.2: class 0 {B, C, D} -> psi_0 = 0.80 < 0.9, fails.
    #   1.5: same points, fails.
    #   2.0: class 0 {C, D} -> 0.95; class 1 {F, G} -> 0.93: passes.
    q_min, psi = high_reliability_region(*CRAFTED, 0.9)
    assert q_min == 2.0
    assert_allclose(psi, [0.95, 0.93], rtol=0, atol=0)
    # alpha = 0.96: candidate 3.0 keeps D (0.97) and G (0.98).
    q_min, psi = high_reliability_region(*CRAFTED, 0.96)
    assert q_min == 3.0
    assert_allclose(psi, [0.97, 0.98], rtol=0, atol=0)


def test_high_reliability_region_absent():
    # alpha = 0.99: no class-0 point reaches 0.99, so no candidate passes.
    q_min, psi = high_reliability_region(*CRAFTED, 0.99)
    assert q_min == np.inf
    assert psi.shape == (2,)
    assert np.all(psi == np.inf)
    # A class with no point at or above any candidate also blocks the region:
    # here the only class-1 point is out of distribution.
    q_prime = np.array([2.0, 3.0, 0.7])
    proba = np.array([[0.99, 0.01], [0.99, 0.01], [0.01, 0.99]])
    q_min, psi = high_reliability_region(q_prime, proba, np.array([0, 0, 1]), 0.9)
    assert q_min == np.inf and np.all(psi == np.inf)


def test_high_reliability_region_uses_quantile_index():
    # 8 class-0 points, alpha = 0.75: index min(floor(0.25 * 8), 7) = 2, so
    # the two smallest values may sit below alpha; psi_0 is the third.
    # One class-1 point at 0.99.
    q_prime = np.full(9, 5.0)
    sdm0 = np.array([0.5, 0.6, 0.8, 0.85, 0.9, 0.92, 0.95, 0.99, 0.01])
    proba = np.column_stack([sdm0, 1.0 - sdm0])
    y = np.array([0] * 8 + [1])
    q_min, psi = high_reliability_region(q_prime, proba, y, 0.75)
    assert q_min == 5.0
    assert_allclose(psi, [0.8, 0.99])
    # Three values below alpha are too many.
    proba[2] = [0.7, 0.3]
    assert high_reliability_region(q_prime, proba, y, 0.75)[0] == np.inf


def reference_region(q_prime, probabilities, y, alpha):
    """Alg. 1 literally: loop over candidates, sort per class."""
    n_classes = probabilities.shape[1]
    for candidate in sorted(set(q_prime[np.floor(q_prime) > 0].tolist())):
        selected = q_prime >= candidate
        psi = np.zeros(n_classes)
        for c in range(n_classes):
            values = sorted(probabilities[selected & (y == c), c].tolist())
            n = len(values)
            if n:
                psi[c] = values[min(math.floor((1 - alpha) * n), n - 1)]
        if all(psi[c] >= alpha for c in range(n_classes)):
            return candidate, psi
    return math.inf, np.full(n_classes, math.inf)


def _random_calibration_set(seed):
    """q' on a coarse grid (ties, some out of distribution), SDM outputs
    concentrated on the true class more often at high q', and a few outputs
    exactly at alpha to test the ">=" boundary."""
    rng = np.random.RandomState(seed)
    n, n_classes = rng.randint(20, 120), rng.randint(2, 4)
    alpha = [0.6, 0.8, 0.9, 0.95, 1.0][seed % 5]
    y = rng.randint(0, n_classes, size=n)
    q_prime = rng.randint(0, 12, size=n) / 2.0
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += rng.uniform(0, 1, size=n) * q_prime
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba[rng.rand(n) < 0.05, 0] = alpha
    return q_prime, proba, y, alpha


@pytest.mark.parametrize("seed", range(30))
def test_high_reliability_region_matches_reference(seed):
    q_prime, proba, y, alpha = _random_calibration_set(seed)
    q_min, psi = high_reliability_region(q_prime, proba, y, alpha)
    ref_q_min, ref_psi = reference_region(q_prime, proba, y, alpha)
    assert q_min == ref_q_min
    assert_array_equal(psi, ref_psi)


def test_high_reliability_region_reference_cases_include_both_outcomes():
    # The random cases above are only informative if some have a region and
    # some do not.
    outcomes = {
        bool(np.isfinite(reference_region(*_random_calibration_set(seed))[0]))
        for seed in range(30)
    }
    assert outcomes == {True, False}


def test_effective_sample_size_by_hand():
    # Class 0: 1, 2, 3 (n_0 = 3, cap 2); class 1: 0.5, 4 (n_1 = 2, cap 1).
    values = class_rescaled_values(
        np.array([2.0, 1.0, 3.0, 4.0, 0.5]), np.array([0, 0, 0, 1, 1]), 2
    )
    assert_array_equal(values[0], [1.0, 2.0, 3.0])
    assert_array_equal(values[1], [0.5, 4.0])
    q_prime = np.array([0.0, 0.5, 1.0, 2.5, 3.0, 10.0])
    #   q'    below_0 (cap 2)   below_1 (cap 1)   min
    #   0     0                 0                 0
    #   0.5   0                 0                 0
    #   1     0                 1                 0
    #   2.5   2                 1                 1
    #   3     2                 1                 1
    #   10    3 -> 2            2 -> 1            1
    assert_array_equal(effective_sample_size(q_prime, values), [0, 0, 0, 1, 1, 1])
    # Class 1 replaced by 0, 1, 2, 3, 4 (cap 4): q' = 10 gives min(2, 4) = 2
    # and q' = 2.5 gives min(2, 3) = 2.
    values_3 = [values[0], np.array([0.0, 1.0, 2.0, 3.0, 4.0])]
    assert_array_equal(effective_sample_size(np.array([10.0, 2.5]), values_3), [2, 2])
    # An empty class gives 0.
    assert_array_equal(
        effective_sample_size(np.array([10.0]), [values[0], np.array([])]), [0]
    )


def test_dkw_epsilon_by_hand():
    n_min = np.array([0, 1, 5, 100])
    # alpha = 0.9: sqrt(ln(20) / (2 n)); n = 1 gives 1.22 -> capped at 1.
    expected = [1.0, 1.0, math.sqrt(math.log(20) / 10), math.sqrt(math.log(20) / 200)]
    assert_allclose(dkw_epsilon(n_min, 0.9), expected, rtol=1e-14)
    # alpha = 0.6: ln(5) / 2 = 0.80 -> sqrt = 0.897 for n = 1.
    assert_allclose(dkw_epsilon(np.array([1]), 0.6), [math.sqrt(math.log(5) / 2)])
    assert_array_equal(dkw_epsilon(n_min, 1.0), 1.0)


def test_admit_each_condition_fails_alone():
    thresholds = np.array([0.9, 0.8])
    q_min = 2.0
    #   row  q'    p     yhat   reason
    #   0    3.0   0.95  0      admitted
    #   1    0.9   0.95  0      floor(q') = 0 (with q_min lowered to 0.5)
    #   2    1.5   0.95  0      q' < q_min
    #   3    3.0   0.85  0      p < psi_0 (0.85 would pass psi_1)
    #   4    2.0   0.80  1      admitted: both boundaries are inclusive
    q_prime = np.array([3.0, 0.9, 1.5, 3.0, 2.0])
    p = np.array([0.95, 0.95, 0.95, 0.85, 0.80])
    yhat = np.array([0, 0, 0, 0, 1])
    assert_array_equal(
        admit(q_prime, p, yhat, q_min, thresholds), [True, False, False, False, True]
    )
    # Row 1 fails on floor(q') = 0 alone: it passes the other two with a
    # lower q_min.
    assert_array_equal(
        admit(q_prime, p, yhat, 0.5, thresholds), [True, False, True, False, True]
    )
    # No region: nothing is admitted.
    assert not np.any(admit(q_prime, p, yhat, np.inf, np.full(2, np.inf)))
