"""Tests for sdm_sklearn._activation: the SDM activation, its loss and gradient.

Expected values are written out by hand or computed from the definitions of
the method page (eq. 6, eq. 7) inside the tests.
"""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sdm_sklearn import sdm_activation
from sdm_sklearn._activation import (
    limit_scores,
    sdm_loss,
    sdm_loss_gradient,
    softmax,
)

E_MINUS_2 = math.e - 2.0


def _plain_softmax(z):
    """Textbook softmax, fine for the moderate logits used here."""
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def test_sdm_activation_hand_values():
    # (2 + q)^(d z_i) / sum_c (2 + q)^(d z_c) with q = 2, d = 1/2, z = (2, 0):
    # 4^1 / (4^1 + 4^0) = 4 / 5.
    z = np.array([[2.0, 0.0]])
    assert_allclose(sdm_activation(z, np.array([2.0]), np.array([0.5])), [[0.8, 0.2]])
    # q = 7, d = 1, z = (1, 0, -1): 9^1, 9^0, 9^-1 over their sum 91/9.
    z = np.array([[1.0, 0.0, -1.0]])
    assert_allclose(
        sdm_activation(z, np.array([7.0]), np.array([1.0])),
        [[81 / 91, 9 / 91, 1 / 91]],
    )


def test_sdm_activation_reduces_to_softmax():
    rng = np.random.RandomState(0)
    z = rng.normal(scale=3.0, size=(20, 4))
    out = sdm_activation(z, np.full(20, E_MINUS_2), np.ones(20))
    assert_allclose(out, _plain_softmax(z), rtol=1e-12)
    # The logistic function for two classes: 1 / (1 + e^-2).
    out = sdm_activation(np.array([[2.0, 0.0]]), np.array([E_MINUS_2]), np.ones(1))
    assert_allclose(out[0, 0], 1.0 / (1.0 + math.exp(-2.0)), rtol=1e-14)


def test_sdm_activation_zero_distance_is_exactly_uniform():
    rng = np.random.RandomState(1)
    z = rng.normal(scale=100.0, size=(10, 3))
    out = sdm_activation(z, rng.uniform(0, 50, size=10), np.zeros(10))
    assert_array_equal(out, np.full((10, 3), 1.0 / 3.0))


def test_sdm_activation_rows_sum_to_one_and_argmax_is_kept():
    rng = np.random.RandomState(2)
    z = rng.normal(scale=5.0, size=(200, 5))
    q = rng.randint(0, 100, size=200).astype(float)
    d = rng.uniform(0.01, 1.0, size=200)
    out = sdm_activation(z, q, d)
    assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(out >= 0)
    assert_array_equal(out.argmax(axis=1), z.argmax(axis=1))


def test_sdm_activation_is_stable_for_extreme_inputs():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1.0, -2e4], [3e4, 3e4, 3e4]])
    q = np.array([1e6, 1e6, 1e6])
    d = np.array([1.0, 0.5, 1.0])
    out = sdm_activation(z, q, d)
    assert np.all(np.isfinite(out))
    assert_allclose(out.sum(axis=1), 1.0)
    # Row 0: the first logit dominates by 1e4 * ln(1e6 + 2); row 1: the second
    # by 0.5 * ln(1e6 + 2) (exp(-6.9) ~ 1e-3 left for the first); row 2: ties.
    # Scores of size ~1e5 carry absolute rounding errors ~1e-11, hence rtol.
    assert_allclose(out[0], [1.0, 0.0, 0.0])
    second = 1.0 / (1.0 + (1e6 + 2.0) ** -0.5)
    assert_allclose(out[1], [1.0 - second, second, 0.0], rtol=1e-9, atol=1e-300)
    assert_allclose(out[2], [1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize(
    "z, q, d, match",
    [
        (np.zeros(3), np.ones(3), np.ones(3), "shape"),
        (np.zeros((3, 2)), np.ones(2), np.ones(3), "shape"),
        (np.zeros((3, 2)), np.ones(3), np.ones((3, 1)), "shape"),
        (np.zeros((2, 2)), np.array([1.0, -0.5]), np.ones(2), "non-negative"),
        (np.zeros((2, 2)), np.ones(2), np.array([0.5, 1.5]), r"\[0, 1\]"),
        (np.zeros((2, 2)), np.ones(2), np.array([-0.1, 0.5]), r"\[0, 1\]"),
        (np.zeros((2, 2)), np.ones(2), np.array([np.nan, 0.5]), r"\[0, 1\]"),
        (np.array([[0.0, np.nan], [0, 0]]), np.ones(2), np.ones(2), "finite"),
        (np.zeros((2, 2)), np.array([np.nan, 1.0]), np.ones(2), "finite"),
        (np.array([[0.0, np.inf], [0, 0]]), np.ones(2), np.ones(2), "finite"),
    ],
)
def test_sdm_activation_validates_inputs(z, q, d, match):
    with pytest.raises(ValueError, match=match):
        sdm_activation(z, q, d)


def test_limit_scores_keeps_positive_scale_rows():
    rng = np.random.RandomState(3)
    z = rng.normal(size=(6, 3))
    q = np.array([0.0, 1.0, 2.0, 5.0, 10.0, 100.0])
    d = np.array([1.0, 0.5, 0.25, 1.0, 0.1, 0.7])
    assert_allclose(limit_scores(z, q, d), np.log(2.0 + q)[:, None] * d[:, None] * z)


@pytest.mark.parametrize(
    "z",
    [
        [[3.0, -1.0, 0.5]],
        [[1e4, -1e4, 2.0]],
        [[0.1, 0.2, 0.15]],
        [[-250.0, -250.5, -249.0]],
        [[1.0, 1.0 + 1e-3, 0.5]],
    ],
)
def test_limit_scores_zero_distance_is_uniform_and_ordered_like_z(z):
    z = np.asarray(z)
    probabilities = softmax(limit_scores(z, np.array([7.0]), np.array([0.0])))
    assert_allclose(probabilities, 1.0 / 3.0, rtol=0, atol=1e-12)
    # Strictly ordered like z: every pair of distinct logits keeps its order.
    order = np.argsort(z[0])
    assert np.all(np.diff(probabilities[0, order]) > 0)


@pytest.mark.parametrize("gap", [1e-5, 1e-7])
def test_limit_scores_zero_distance_resolves_small_logit_gaps(gap):
    # float32 logits of a fitted adaptor may differ by ~1e-7 relative; the
    # documented promise is that the argmax of the probabilities is the
    # argmax of z at d = 0, so the small gap must survive.
    z = np.array([[1.0, 1.0 + gap, 0.5]])
    probabilities = softmax(limit_scores(z, np.array([3.0]), np.array([0.0])))
    assert probabilities.argmax() == 1


def test_sdm_loss_equals_cross_entropy_at_softmax_point():
    rng = np.random.RandomState(4)
    z = rng.normal(size=(15, 3))
    y = rng.randint(0, 3, size=15)
    expected = -np.mean(np.log(_plain_softmax(z)[np.arange(15), y]))
    assert_allclose(sdm_loss(z, y, np.full(15, E_MINUS_2), np.ones(15)), expected)


def test_sdm_loss_class_balanced_by_hand():
    # Point A: y=0, d=0 -> uniform over 2 classes, loss ln 2 / ln(2 + 2) = 1/2.
    # Point B: y=0, q=e-2, d=1, z=(0, 0) -> p=1/2, loss ln 2 / ln e = ln 2.
    # Point C: y=1, q=6, d=1, z=(0, 1) -> p=8/9, loss (ln 9 - ln 8) / ln 8.
    z = np.array([[5.0, -3.0], [0.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 0, 1])
    q = np.array([2.0, E_MINUS_2, 6.0])
    d = np.array([0.0, 1.0, 1.0])
    loss_a, loss_b = 0.5, math.log(2.0)
    loss_c = (math.log(9.0) - math.log(8.0)) / math.log(8.0)
    assert_allclose(sdm_loss(z, y, q, d), (loss_a + loss_b + loss_c) / 3)
    balanced = ((loss_a + loss_b) / 2 + loss_c) / 2
    assert_allclose(sdm_loss(z, y, q, d, class_balanced=True), balanced)
    # With a third (empty) class the rows get a third logit: A is uniform over
    # 3 classes, B and C are computed from their definitions; class 2 has no
    # points and is left out of the balanced mean.
    z3 = np.column_stack([z, np.full(3, -2.0)])
    balanced3 = (
        (math.log(3.0) / math.log(4.0) + _cross_entropy(z3[1], 0)) / 2
        + _sdm_loss_d1(z3[2], 1, 6.0)
    ) / 2
    assert_allclose(sdm_loss(z3, y, q, d, class_balanced=True), balanced3)
    assert_allclose(
        sdm_loss(z, y, q, d, class_balanced=True, n_classes=3), balanced
    )


def _cross_entropy(z_row, label):
    """Cross entropy of one row with the natural logarithm."""
    return -math.log(math.exp(z_row[label]) / np.exp(z_row).sum())


def _sdm_loss_d1(z_row, label, q):
    """-log_{2+q} SDM_label for d = 1, written with powers of 2 + q."""
    powers = (2.0 + q) ** z_row
    return -math.log(powers[label] / powers.sum()) / math.log(2.0 + q)


def _central_differences(function, z, step=1e-6):
    grad = np.zeros_like(z)
    for index in np.ndindex(*z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (function(plus) - function(minus)) / (2 * step)
    return grad


def test_sdm_loss_gradient_matches_finite_differences():
    rng = np.random.RandomState(5)
    n, n_classes = 8, 3
    z = rng.normal(scale=2.0, size=(n, n_classes))
    y = rng.randint(0, n_classes, size=n)
    q = np.array([0.0, E_MINUS_2, 1.0, 3.0, 10.0, 250.0, 5.0, 40.0])
    d = np.array([0.0, 1.0, 0.3, 0.0, 0.9, 0.05, 1.0, 0.5])
    numeric = _central_differences(lambda zz: sdm_loss(zz, y, q, d), z)
    analytic = sdm_loss_gradient(z, y, q, d)
    assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    # d = 0 rows carry no gradient at all.
    assert_array_equal(analytic[d == 0], 0.0)


def test_sdm_loss_gradient_at_softmax_point_is_cross_entropy_gradient():
    rng = np.random.RandomState(6)
    z = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 1, 2])
    onehot = np.eye(4)[y]
    expected = (_plain_softmax(z) - onehot) / 5
    assert_allclose(
        sdm_loss_gradient(z, y, np.full(5, E_MINUS_2), np.ones(5)), expected,
        rtol=1e-12, atol=1e-15,
    )
