"""Every kind of label users send, through fit, every warning and every method.

Labels: numpy ints, bools, ``<U`` strings, object arrays, pandas ``str``
and ``category`` Series (string and integer categories), plain lists. Each
goes through fit (including the SmallRegionWarning and
NoHighReliabilityRegionWarning paths, whose messages name the classes),
predict, predict_proba, decision_function, predict_selective,
predict_uncertainty, explain, calibration_partition and add_support.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_wine

from sdm_sklearn import (
    NoHighReliabilityRegionWarning,
    SDMClassifier,
    SmallRegionWarning,
)

WINE = load_wine()
NAMES = np.asarray(WINE.target_names)


def _label_kinds():
    codes = WINE.target
    text = NAMES[codes]
    return {
        "int": codes,
        "bool": codes == 0,
        "unicode": text,
        "object": text.astype(object),
        "pandas_str": pd.Series(text, dtype="str"),
        "pandas_category": pd.Series(text, dtype="category"),
        "pandas_int_category": pd.Series(codes, dtype="category"),
        "list": text.tolist(),
    }


KINDS = _label_kinds()


def _as_values(labels):
    return labels.to_numpy() if hasattr(labels, "to_numpy") else np.asarray(labels)


@pytest.mark.parametrize("kind", KINDS, ids=list(KINDS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_label_kind_through_every_method(kind, seed):
    y = KINDS[kind]
    values = _as_values(y)
    X = WINE.data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = SDMClassifier(random_state=seed, n_iterations=1).fit(X, y)
    # any region warning names the classes as the user wrote them
    for warning in caught:
        if issubclass(warning.category, SmallRegionWarning):
            message = str(warning.message)
            assert any(repr(label.item() if hasattr(label, "item") else label)
                       in message for label in clf.classes_)
    assert set(clf.classes_.tolist()) == set(np.unique(values).tolist())

    predictions = clf.predict(X)
    assert set(predictions.tolist()) <= set(clf.classes_.tolist())
    proba = clf.predict_proba(X)
    assert_array_equal(clf.classes_[proba.argmax(axis=1)], predictions)
    assert clf.decision_function(X).shape[0] == len(X)
    frame = clf.predict_uncertainty(X)
    assert_array_equal(frame["prediction"].to_numpy(), predictions)
    selective = clf.predict_selective(X)
    admitted = frame["admitted"].to_numpy()
    assert_array_equal(selective[admitted], predictions[admitted])
    assert all(value == clf.rejection_label_ and value not in clf.classes_.tolist()
               for value in selective[~admitted].tolist())
    explained = clf.explain(X[:2], n_neighbors=2)
    assert set(explained["label"].tolist()) <= set(clf.classes_.tolist())
    partition = clf.calibration_partition(X[:2])
    assert set(partition["label"].tolist()) <= set(clf.classes_.tolist())
    clf.add_support(X[:3], values[:3])
    assert_array_equal(clf.support_labels_[-3:], values[:3])
    assert_array_equal(clf.predict(X), predictions)


def test_string_wine_warns_instead_of_crashing():
    # the reported crash: object labels at random_state 0, 1 and 2
    y = pd.Series(NAMES[WINE.target], dtype="str")
    for seed in (0, 1, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SDMClassifier(random_state=seed).fit(WINE.data, y)
        assert all(issubclass(w.category, (SmallRegionWarning,
                                           NoHighReliabilityRegionWarning))
                   for w in caught if "region" in str(w.message).lower())


def test_small_region_message_names_string_classes():
    y = NAMES[WINE.target].astype(object)
    messages = []
    for seed in range(6):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # the paper's rule, which alone can rest on a small region
            SDMClassifier(random_state=seed, alpha=0.95,
                          confidence=None).fit(WINE.data, y)
        messages += [str(w.message) for w in caught
                     if issubclass(w.category, SmallRegionWarning)]
    assert messages, "no seed gave a small region; pick other data"
    assert all("'class_" in message for message in messages)


def test_unknown_labels_in_add_support_keep_their_kind():
    y = NAMES[WINE.target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SDMClassifier(random_state=0, n_iterations=1).fit(WINE.data, y)
    clf.add_support(WINE.data[:2], np.array([7, 8]))
    assert clf.support_labels_.dtype == object
    assert clf.support_labels_[-2:].tolist() == [7, 8]
    assert isinstance(clf.support_labels_[0], str)
