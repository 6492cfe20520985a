"""Similarity-Distance-Magnitude activations and selective classification."""

from ._activation import sdm_activation
from ._version import __version__
from .classifier import SDMClassifier
from .exceptions import (
    InconsistentVersionWarning,
    NoHighReliabilityRegionWarning,
    SmallRegionWarning,
)

__all__ = [
    "InconsistentVersionWarning",
    "NoHighReliabilityRegionWarning",
    "SDMClassifier",
    "SmallRegionWarning",
    "__version__",
    "sdm_activation",
]
