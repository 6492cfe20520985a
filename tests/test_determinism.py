"""Bit-identical outputs: same seed, any thread count, concurrent callers.

``random_state`` fixes the splits, initializations and mini-batch orders;
nothing else (BLAS or numba thread counts, threads calling the same fitted
model) may change a single bit of the outputs.
"""

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from sdm_sklearn import SDMClassifier

N_THREADS = 4


@pytest.fixture(scope="module")
def data():
    return make_blobs(
        n_samples=300, n_features=5, centers=3, cluster_std=2.0, random_state=1
    )


def _fit(data, random_state=0):
    X, y = data
    return SDMClassifier(
        n_iterations=2, n_epochs=5, random_state=random_state
    ).fit(X, y)


def _outputs(model, X):
    """Everything a fitted model says about ``X`` and about itself."""
    return {
        "predict_proba": model.predict_proba(X),
        "decision_function": model.decision_function(X),
        "predict_selective": model.predict_selective(X),
        "predict_uncertainty": model.predict_uncertainty(X),
        "exemplars": model.exemplars(X),
        "support_exemplars_": model.support_exemplars_,
        "calibration_loss_": model.calibration_loss_,
        "region": np.r_[model.min_rescaled_similarity_, model.class_thresholds_],
    }


def _assert_identical(left, right):
    assert left.keys() == right.keys()
    for name in left:
        if isinstance(left[name], pd.DataFrame):
            pd.testing.assert_frame_equal(left[name], right[name], check_exact=True)
        else:
            assert_array_equal(left[name], right[name], err_msg=name, strict=True)


@pytest.fixture(scope="module")
def reference(data):
    return _outputs(_fit(data), data[0])


def test_reference_admits_some_points(reference):
    # Otherwise the selective outputs would compare nothing but rejections.
    admitted = reference["predict_uncertainty"]["admitted"]
    assert 0 < admitted.mean() < 1


def test_same_seed_same_bits(data, reference):
    _assert_identical(_outputs(_fit(data), data[0]), reference)


def test_other_seed_other_model(data, reference):
    # The comparisons above are not vacuous: the seed does change the model.
    other = _outputs(_fit(data, random_state=1), data[0])
    assert not np.array_equal(other["predict_proba"], reference["predict_proba"])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_blas_thread_count_does_not_change_outputs(n_threads, data, reference):
    with threadpool_limits(limits=n_threads):
        outputs = _outputs(_fit(data), data[0])
    _assert_identical(outputs, reference)


@pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="numba has a single thread"
)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_numba_thread_count_does_not_change_outputs(n_threads, data, reference):
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        outputs = _outputs(_fit(data), data[0])
    finally:
        numba.set_num_threads(previous)
    _assert_identical(outputs, reference)


def test_concurrent_predictions_match_sequential(data):
    X = data[0]
    model = _fit(data)
    # Blocks of different sizes, each asked for twice.
    blocks = [X[start : start + size] for start, size in
              [(0, 300), (0, 1), (17, 60), (100, 150), (250, 50)]] * 2
    sequential = [
        (model.predict_proba(block), model.predict_uncertainty(block))
        for block in blocks
    ]

    def predict(block):
        return model.predict_proba(block), model.predict_uncertainty(block)

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        concurrent = list(pool.map(predict, blocks))
    for (proba, frame), (expected_proba, expected_frame) in zip(
        concurrent, sequential, strict=True
    ):
        assert_array_equal(proba, expected_proba, strict=True)
        pd.testing.assert_frame_equal(frame, expected_frame, check_exact=True)


def test_random_state_seeds_an_unseeded_base_estimator(data):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    X_test = X[:50]

    def fit(forest_seed):
        base = make_pipeline(StandardScaler(),
                             RandomForestClassifier(10, random_state=forest_seed))
        return SDMClassifier(base, n_iterations=1, n_epochs=5,
                             random_state=4).fit(X, y)

    first, second = fit(None), fit(None)
    assert_array_equal(first.predict_proba(X_test), second.predict_proba(X_test))
    # the seed goes to a clone: the user's estimator stays unseeded
    assert first.estimator.get_params()["randomforestclassifier__random_state"] is None
    fitted = first.estimator_.get_params()["randomforestclassifier__random_state"]
    assert isinstance(fitted, int)
    # a seed the user set is kept
    kept = fit(11).estimator_.get_params()["randomforestclassifier__random_state"]
    assert kept == 11
