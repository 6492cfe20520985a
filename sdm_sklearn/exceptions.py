"""Warnings raised by sdm_sklearn."""

__all__ = [
    "InconsistentVersionWarning",
    "NoHighReliabilityRegionWarning",
    "SmallRegionWarning",
]


class NoHighReliabilityRegionWarning(UserWarning):
    """No HIGH-RELIABILITY region exists at the requested ``alpha``.

    Raised by :meth:`SDMClassifier.fit` when no rescaled-similarity threshold
    makes every class reach ``alpha`` on the calibration split. The model is
    fitted: ``predict`` and ``predict_proba`` work, but
    ``predict_selective`` rejects every input. More data, a stronger feature
    producer or a lower ``alpha`` may create a region.
    """


class InconsistentVersionWarning(UserWarning):
    """A model saved by one version of sdm_sklearn is loaded by another.

    Fitted models record the version that fitted them. Loading with another
    version may work, but outputs are only guaranteed to be identical with
    the same version: refit, or install the version named in the message.
    """


class SmallRegionWarning(UserWarning):
    """The HIGH-RELIABILITY region rests on few calibration points of a class.

    Alg. 1 sets no minimum count: with fewer than ``ceil(1 / (1 - alpha))``
    calibration points of a class at or above q'_min, that class's threshold
    is the smallest of a handful of values, and the class-conditional
    accuracy of admitted points can fall well below ``alpha`` on new data.
    ``region_class_counts_`` has the counts. More calibration data, or
    ``conservative=True``, make admission safer.
    """
