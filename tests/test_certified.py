"""The certified region, the nested ladder and the rejection reasons."""

import numpy as np
import pytest
from scipy.stats import binom

from sdm_sklearn._calibration import (
    REASONS,
    certified_thresholds,
    region_ladder,
    zero_error_count,
)


def test_zero_error_count_matches_the_binomial_tail():
    assert zero_error_count(0.95, 0.95) == 59
    assert zero_error_count(0.9, 0.95) == 29
    for alpha, confidence in [(0.95, 0.95), (0.9, 0.99), (0.8, 0.9)]:
        n = zero_error_count(alpha, confidence)
        assert alpha**n <= 1 - confidence < alpha ** (n - 1)


def _calibration(seed, n=3000, n_classes=3):
    """q' and SDM outputs whose accuracy rises with q' (known by design)."""
    rng = np.random.default_rng(seed)
    q_prime = rng.uniform(1, 50, n)
    y = rng.integers(n_classes, size=n)
    right = rng.random(n) < 0.85 + 0.15 * (q_prime / 50)
    predictions = np.where(right, y, (y + 1) % n_classes)
    probabilities = np.full((n, n_classes), 0.01)
    probabilities[np.arange(n), predictions] = rng.uniform(0.9, 1.0, n)
    return q_prime, probabilities, y, predictions


@pytest.mark.parametrize("seed", range(5))
def test_certified_region_passes_every_cell_test(seed):
    q_prime, probabilities, y, predictions = _calibration(seed)
    alpha, confidence = 0.9, 0.95
    (q_min,) = certified_thresholds(q_prime, probabilities, y, [alpha], confidence)
    assert np.isfinite(q_min)
    p_hat = probabilities.max(axis=1)
    inside = (q_prime >= q_min) & (p_hat >= alpha)
    for c in range(probabilities.shape[1]):
        for cell in (inside & (y == c), inside & (predictions == c)):
            n, wrong = cell.sum(), (cell & (predictions != y)).sum()
            assert binom.cdf(wrong, n, 1 - alpha) <= 1 - confidence


@pytest.mark.parametrize("confidence", [None, 0.95])
def test_ladder_regions_are_nested(confidence):
    q_prime, probabilities, y, predictions = _calibration(0)
    levels = (0.97, 0.95, 0.9, 0.8)
    regions = region_ladder(q_prime, probabilities, y, levels, confidence)
    p_hat = probabilities.max(axis=1)
    admitted = np.zeros(len(y), dtype=bool)
    previous = admitted.copy()
    for q_min, psi in regions:
        admitted = admitted | ((q_prime >= q_min) & (p_hat >= psi[predictions]))
        assert not np.any(previous & ~admitted)
        previous = admitted
    assert admitted.any()


def test_reason_column_is_categorical_with_documented_values():
    from sklearn.datasets import make_blobs

    from sdm_sklearn import SDMClassifier

    X, y = make_blobs(n_samples=400, centers=3, random_state=0)
    clf = SDMClassifier(alpha=0.9, n_iterations=1, n_epochs=10,
                        random_state=0).fit(X, y)
    frame = clf.predict_uncertainty(np.vstack([X, 50 * X[:20]]))
    assert list(frame["reason"].cat.categories) == list(REASONS)
    assert_admitted = (frame["reason"] == "admitted").to_numpy()
    np.testing.assert_array_equal(assert_admitted, frame["admitted"].to_numpy())
    ood = (frame["reason"] == "out_of_distribution").to_numpy()
    np.testing.assert_array_equal(ood, frame["is_ood"].to_numpy() & ~assert_admitted)
