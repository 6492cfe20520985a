"""Saving and loading a fitted SDMClassifier: pickle, joblib and skops.

A loaded model must give outputs identical to the saved one, and a model
saved by another version of sdm_sklearn must say so when it is loaded.
"""

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification

import sdm_sklearn
from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import InconsistentVersionWarning

skops_io = pytest.importorskip("skops.io")

# The types skops does not trust by default in a saved SDMClassifier; a
# user loads with ``trusted=SKOPS_TRUSTED_TYPES`` after reviewing them.
SKOPS_TRUSTED_TYPES = [
    "sdm_sklearn._adaptor.ExemplarAdaptor",
    "sdm_sklearn._evaluation.SupportIndex",
    "sdm_sklearn._exact.ExactSupport",
    "sdm_sklearn._model.CalibrationRecord",
    "sdm_sklearn._model.SDMModel",
    "sdm_sklearn.classifier.SDMClassifier",
]

OTHER_VERSION = "0.0.0.dev-saved"


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=400, n_features=6, n_informative=4, n_classes=3,
        class_sep=2.0, random_state=0,
    )
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    # alpha 0.9: a region that admits part of X (test_fixture_admits_some_points)
    return SDMClassifier(n_iterations=1, n_epochs=10, alpha=0.9,
                         random_state=0).fit(X, y)


def _assert_same_outputs(loaded, original, X):
    assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    assert_array_equal(loaded.predict_selective(X), original.predict_selective(X))
    pd.testing.assert_frame_equal(
        loaded.predict_uncertainty(X), original.predict_uncertainty(X)
    )


def test_fixture_admits_some_points(fitted, data):
    # Otherwise predict_selective would compare nothing but markers.
    X, _ = data
    admitted = fitted.predict_uncertainty(X)["admitted"]
    assert 0 < admitted.mean() < 1


def test_pickle_round_trip(fitted, data):
    loaded = pickle.loads(pickle.dumps(fitted))
    _assert_same_outputs(loaded, fitted, data[0])


def test_joblib_round_trip(fitted, data, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    _assert_same_outputs(joblib.load(path), fitted, data[0])


def test_pickle_loads_in_a_fresh_interpreter(fitted, data, tmp_path):
    X = data[0]
    model_path, X_path = tmp_path / "model.pkl", tmp_path / "X.npy"
    model_path.write_bytes(pickle.dumps(fitted))
    np.save(X_path, X)
    script = (
        "import pickle, sys, numpy as np\n"
        "model = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "sys.stdout.buffer.write(model.predict_proba(np.load(sys.argv[2])).tobytes())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(model_path), str(X_path)],
        capture_output=True, check=True, timeout=300,
    ).stdout
    assert out == fitted.predict_proba(X).tobytes()


def test_skops_untrusted_types_are_documented(fitted):
    untrusted = skops_io.get_untrusted_types(data=skops_io.dumps(fitted))
    assert sorted(untrusted) == SKOPS_TRUSTED_TYPES


def test_skops_round_trip(fitted, data):
    loaded = skops_io.loads(skops_io.dumps(fitted), trusted=SKOPS_TRUSTED_TYPES)
    _assert_same_outputs(loaded, fitted, data[0])


def test_skops_refuses_untrusted_types_by_default(fitted):
    from skops.io.exceptions import UntrustedTypesFoundException

    with pytest.raises(UntrustedTypesFoundException, match="SDMClassifier"):
        skops_io.loads(skops_io.dumps(fitted))


def test_fitted_model_records_the_version(fitted):
    assert fitted._sdm_version == sdm_sklearn.__version__


def _saved_by_other_version(model):
    """A copy of ``model`` stamped as fitted by another version."""
    copy = pickle.loads(pickle.dumps(model))
    copy._sdm_version = OTHER_VERSION
    return copy


def _assert_version_warning(record):
    messages = [
        str(w.message) for w in record if w.category is InconsistentVersionWarning
    ]
    assert len(messages) == 1
    assert OTHER_VERSION in messages[0]
    assert sdm_sklearn.__version__ in messages[0]


@pytest.mark.parametrize("saver", ["pickle", "joblib", "skops"])
def test_loading_another_version_warns(saver, fitted, data, tmp_path):
    old = _saved_by_other_version(fitted)
    path = tmp_path / "model"
    if saver == "pickle":
        path.write_bytes(pickle.dumps(old))
        load = lambda: pickle.loads(path.read_bytes())  # noqa: E731
    elif saver == "joblib":
        joblib.dump(old, path)
        load = lambda: joblib.load(path)  # noqa: E731
    else:
        skops_io.dump(old, path)
        load = lambda: skops_io.load(path, trusted=SKOPS_TRUSTED_TYPES)  # noqa: E731
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = load()
    _assert_version_warning(record)
    # The warning informs; the model still loads whole.
    _assert_same_outputs(loaded, fitted, data[0])


def test_loading_the_same_version_is_silent(fitted):
    data = pickle.dumps(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(data)
