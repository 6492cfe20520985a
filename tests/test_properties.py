"""Property tests: the SDM building blocks against direct definitions.

Each property is checked on hypothesis-generated inputs (derandomized, so a
run is reproducible) against a literal implementation of the method page written
here, with small integer or few-valued inputs so that ties are common.
"""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax as scipy_softmax

from sdm_sklearn import SDMClassifier, sdm_activation
from sdm_sklearn._calibration import distance_quantile, high_reliability_region
from sdm_sklearn._exact import ExactSupport
from sdm_sklearn._labels import as_ids, resolve_rejection_label, selective_labels

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)

logit_values = st.floats(-50, 50, allow_nan=False)


@st.composite
def activation_inputs(draw):
    """Logits of shape (n, C) with q >= 0 and d in [0, 1] per row."""
    n_samples = draw(st.integers(1, 6))
    n_classes = draw(st.integers(2, 5))
    z = draw(arrays(np.float64, (n_samples, n_classes), elements=logit_values))
    q = draw(arrays(np.float64, n_samples, elements=st.floats(0, 1e4)))
    d = draw(arrays(np.float64, n_samples, elements=st.floats(0, 1)))
    return z, q, d


# ------------------------------------------------------------ SDM activation


@PROPERTY_SETTINGS
@given(activation_inputs())
def test_activation_is_a_distribution(inputs):
    probabilities = sdm_activation(*inputs)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


@PROPERTY_SETTINGS
@given(activation_inputs())
def test_activation_is_uniform_at_zero_distance(inputs):
    z, q, d = inputs
    probabilities = sdm_activation(z, q, np.zeros_like(d))
    assert_array_equal(probabilities, 1.0 / z.shape[1])


@PROPERTY_SETTINGS
@given(activation_inputs(), st.floats(0.0, 20.0), st.integers(0, 4))
def test_activation_is_monotone_in_logits(inputs, increase, column):
    z, q, d = inputs
    d = np.maximum(d, 1e-3)
    column %= z.shape[1]
    probabilities = sdm_activation(z, q, d)
    # A larger logit never gets a smaller probability ...
    larger = z[:, :, None] > z[:, None, :]
    assert np.all(
        (probabilities[:, :, None] >= probabilities[:, None, :]) | ~larger
    )
    # ... and raising one logit never lowers its probability.
    raised = z.copy()
    raised[:, column] += increase
    after = sdm_activation(raised, q, d)
    assert np.all(after[:, column] >= probabilities[:, column] - 1e-15)


@PROPERTY_SETTINGS
@given(activation_inputs())
def test_activation_is_softmax_at_e_minus_2_and_unit_distance(inputs):
    z, q, _ = inputs
    ones = np.ones(len(q))
    assert_allclose(
        sdm_activation(z, np.full(len(q), np.e - 2), ones),
        scipy_softmax(z, axis=1),
        rtol=1e-10,
        atol=1e-300,
    )


# ------------------------------------------------------------ eCDF quantile

small_distances = st.integers(0, 6).map(lambda v: v / 2)


@st.composite
def ecdf_inputs(draw):
    """Sorted per-class values (possibly empty) and query distances."""
    n_classes = draw(st.integers(1, 4))
    class_values = [
        np.sort(draw(arrays(np.float64, draw(st.integers(0, 8)),
                            elements=small_distances)))
        for _ in range(n_classes)
    ]
    queries = draw(arrays(np.float64, draw(st.integers(1, 10)),
                          elements=small_distances | st.just(np.inf)))
    return queries, class_values


def _direct_quantile(value, class_values):
    """d by definition: min over classes of 1 - #(stored < value) / n_c, 0 if empty."""
    quantiles = []
    for values in class_values:
        if len(values) == 0:
            return 0.0
        quantiles.append(1.0 - sum(v < value for v in values) / len(values))
    return min(quantiles)


@PROPERTY_SETTINGS
@given(ecdf_inputs())
def test_distance_quantile_matches_definition(inputs):
    queries, class_values = inputs
    expected = [_direct_quantile(value, class_values) for value in queries]
    d = distance_quantile(queries, class_values)
    assert_allclose(d, expected, rtol=0, atol=1e-12)
    assert np.all((d >= 0) & (d <= 1))


@PROPERTY_SETTINGS
@given(ecdf_inputs())
def test_distance_quantile_edges(inputs):
    _, class_values = inputs
    d = distance_quantile(np.array([0.0, np.inf]), class_values)
    if all(len(values) for values in class_values):
        # Distance 0 is below nothing stored: quantile 1; beyond all: 0.
        assert_array_equal(d, [1.0, 0.0])
    else:
        assert_array_equal(d, [0.0, 0.0])


# ------------------------------------------------------ q / d_nearest kernel


@st.composite
def search_inputs(draw):
    """Integer support and queries (exact float32 arithmetic, many ties)."""
    n_dims = draw(st.integers(1, 3))
    n_support = draw(st.integers(1, 14))
    coordinates = st.integers(-3, 3).map(float)
    support = draw(arrays(np.float64, (n_support, n_dims), elements=coordinates))
    good = draw(arrays(np.int64, n_support, elements=st.integers(-1, 2)))
    self_match = draw(st.booleans())
    if self_match:
        queries = support
    else:
        queries = draw(arrays(np.float64, (draw(st.integers(1, 8)), n_dims),
                              elements=coordinates))
    predictions = draw(arrays(np.int64, len(queries), elements=st.integers(0, 2)))
    max_similarity = draw(st.integers(1, 16))
    return support, good, queries, predictions, max_similarity, self_match


def _brute_force_search(support, good, query, prediction, max_similarity, skip):
    """The definition of q by sorting: the run of good points, bad first on ties.

    Returns q, the distance to the nearest support point and the indices of
    all the support points at that distance.
    """
    keep = [j for j in range(len(support)) if j != skip]
    if not keep:
        return 0, np.inf, []
    distances = {
        j: math.sqrt(sum((a - b) ** 2 for a, b in zip(query, support[j], strict=True)))
        for j in keep
    }
    # Bad points sort before good points at the same distance (pessimistic).
    order = sorted(keep, key=lambda j: (distances[j], good[j] == prediction))
    q = 0
    for j in order:
        if good[j] != prediction:
            break
        q += 1
    nearest_distance = distances[order[0]]
    tied = [j for j in keep if distances[j] == nearest_distance]
    return min(q, max_similarity), nearest_distance, tied


@PROPERTY_SETTINGS
@given(search_inputs(), st.sampled_from([None, 64]), st.sampled_from([1, 10]),
       st.sampled_from([1, 2]))
def test_exact_search_matches_brute_force(inputs, block_bytes, repeat, n_jobs):
    support, good, queries, predictions, max_similarity, self_match = inputs
    if not self_match:
        # up to 80 queries: several blocks of 32 rows with block_bytes=64
        queries = np.tile(queries, (repeat, 1))
        predictions = np.tile(predictions, repeat)
    index = ExactSupport(support, good, block_bytes=block_bytes)
    self_indices = np.arange(len(queries)) if self_match else None
    q, nearest, d_nearest = index.search(
        queries, predictions, max_similarity, self_indices=self_indices,
        n_jobs=n_jobs,
    )
    for i, (query, prediction) in enumerate(zip(queries, predictions, strict=True)):
        expected_q, expected_distance, tied = _brute_force_search(
            support, good, query, prediction, max_similarity,
            i if self_match else None,
        )
        assert q[i] == expected_q
        assert d_nearest[i] == expected_distance
        if not tied:
            assert nearest[i] == -1
            continue
        assert nearest[i] in tied
        # Among exactly tied nearest points, one that is not good wins.
        if any(good[j] != prediction for j in tied):
            assert good[nearest[i]] != prediction


# ------------------------------------------------------------------ Alg. 1


def _literal_region(q_prime, probabilities, y, alpha):
    """Alg. 1 step by step; alpha read as the decimal it prints as."""
    gap = 1 - Fraction(repr(alpha))
    n_classes = probabilities.shape[1]
    candidates = sorted({v for v in q_prime if math.floor(v) > 0})
    for candidate in candidates:
        psi = []
        for c in range(n_classes):
            values = sorted(
                probabilities[i, c]
                for i in range(len(y))
                if q_prime[i] >= candidate and y[i] == c
            )
            n = len(values)
            psi.append(values[min(math.floor(gap * n), n - 1)] if n else 0.0)
        if all(value >= alpha for value in psi):
            return candidate, np.array(psi)
    return math.inf, np.full(n_classes, np.inf)


@st.composite
def region_inputs(draw):
    """Calibration q', SDM outputs and labels drawn from few values."""
    n_samples = draw(st.integers(1, 30))
    n_classes = draw(st.integers(2, 3))
    alpha = draw(st.sampled_from([0.55, 0.8, 0.9, 0.95, 1.0]))
    q_prime = draw(arrays(np.float64, n_samples, elements=st.sampled_from(
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.7, 3.0, 5.0])))
    probabilities = draw(arrays(
        np.float64, (n_samples, n_classes),
        elements=st.sampled_from([0.2, 0.55, 0.8, 0.9, 0.95, 0.97, 1.0]),
    ))
    y = draw(arrays(np.int64, n_samples, elements=st.integers(0, n_classes - 1)))
    return q_prime, probabilities, y, alpha


@PROPERTY_SETTINGS
@given(region_inputs())
def test_high_reliability_region_matches_algorithm_1(inputs):
    q_prime, probabilities, y, alpha = inputs
    q_min, psi = high_reliability_region(q_prime, probabilities, y, alpha)
    expected_q_min, expected_psi = _literal_region(q_prime, probabilities, y, alpha)
    assert q_min == expected_q_min
    assert_array_equal(psi, expected_psi)


# ------------------------------------------- silent wrong answers, generated


@pytest.fixture(scope="module")
def small_model():
    """A small fitted model with a region, for the generated checks below."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(loc=c, size=(120, 4)) for c in (-2.0, 0.0, 2.0)])
    y = np.repeat([0, 1, 2], 120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SDMClassifier(n_exemplar_dims=6, n_iterations=1, n_epochs=6,
                            learning_rate=3e-2, alpha=0.9, random_state=0).fit(X, y)
    queries = np.vstack([X[::3], rng.normal(scale=3.0, size=(60, 4))])
    whole = clf.predict_uncertainty(queries).to_numpy().astype(str)
    return clf, queries, whole


@PROPERTY_SETTINGS
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6),
       st.sampled_from(["C", "F", "float32", "strided"]), st.sampled_from([1, 2]))
def test_a_row_answers_the_same_in_any_batch_layout_and_threads(
        small_model, sizes, layout, n_jobs):
    clf, queries, whole = small_model
    clf.set_params(n_jobs=n_jobs)
    start = 0
    for size in sizes:
        rows = np.arange(start, min(start + size, len(queries)))
        start += size
        if len(rows) == 0:
            break
        part = queries[rows]
        if layout == "F":
            part = np.asfortranarray(part)
        elif layout == "float32":
            part = part.astype(np.float32).astype(np.float64)
            expected = clf.predict_uncertainty(part).to_numpy().astype(str)
            got = clf.predict_uncertainty(part.astype(np.float32))
            assert_array_equal(got.to_numpy().astype(str), expected)
            continue
        elif layout == "strided":
            wide = np.repeat(part, 2, axis=1)
            part = wide[:, ::2]
        got = clf.predict_uncertainty(part).to_numpy().astype(str)
        assert_array_equal(got, whole[rows])
    clf.set_params(n_jobs=None)


LABEL_SETS = [
    np.array([0, 1, 2]), np.array([-1, 0, 1], dtype=np.int8),
    np.array([0, 255], dtype=np.uint8), np.array([0.0, 2.5]),
    np.array([False, True]), np.array(["0", "1", "2"]), np.array(["a", "b"]),
    np.array(["x", 3], dtype=object),
]


@PROPERTY_SETTINGS
@given(st.sampled_from(range(len(LABEL_SETS))),
       st.one_of(st.none(), st.integers(-300, 300), st.text(max_size=3),
                 st.floats(allow_nan=False, allow_infinity=False, width=32)),
       st.lists(st.booleans(), min_size=1, max_size=30))
def test_rejection_marker_stays_distinguishable(label_set, marker, admitted):
    classes = LABEL_SETS[label_set]
    try:
        resolved = resolve_rejection_label(marker, classes)
    except ValueError:
        assert np.any(classes == np.asarray(marker, dtype=object))
        return
    admitted = np.array(admitted)
    predictions = classes[np.arange(len(admitted)) % len(classes)]
    out = selective_labels(predictions, admitted, resolved, classes)
    for value, admit, prediction in zip(out.tolist(), admitted, predictions.tolist(),
                                        strict=True):
        if admit:
            assert value == prediction and type(value) is type(prediction)
        else:
            assert value == resolved and value not in classes.tolist()


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.integers(-5, 10**6), st.text(max_size=4),
                          st.floats(allow_nan=False, width=32)),
                min_size=3, max_size=3))
def test_ids_keep_their_values_and_kinds(values):
    ids = as_ids(values, 3)
    assert [type(v) for v in ids.tolist()] == [type(v) for v in values] or (
        ids.dtype != object and len({type(v) for v in values}) == 1
    )
    assert ids.tolist() == values
