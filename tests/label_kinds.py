"""Labels of every kind users send, for the metrics and plotting tests."""

import numpy as np
import pandas as pd

LABEL_KINDS = ["int", "bool", "str", "object", "pandas-str", "pandas-category"]


def as_labels(codes, kind):
    """The 0/1 ``codes`` as labels of ``kind``, in the same sorted order."""
    codes = np.asarray(codes)
    if kind == "int":
        return codes * 5 + 2
    if kind == "bool":
        return codes.astype(bool)
    names = np.array(["neg", "pos"], dtype=object if kind == "object" else str)
    if kind in ("str", "object"):
        return names[codes]
    return pd.Series(names[codes], dtype=kind.removeprefix("pandas-"))


def fitted_on_kind(kind, n_samples, n_fit, **params):
    """An SDMClassifier fitted on ``n_fit`` rows labelled of ``kind``.

    Returns the classifier, then the other rows' features and labels.
    """
    from sklearn.datasets import make_classification

    from sdm_sklearn import SDMClassifier

    X, y = make_classification(n_samples=n_samples, random_state=1)
    labels = as_labels(y, kind)
    clf = SDMClassifier(n_iterations=1, alpha=0.9, random_state=0, **params)
    clf.fit(X[:n_fit], labels[:n_fit])
    return clf, X[n_fit:], labels[n_fit:]
