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
