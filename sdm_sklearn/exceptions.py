"""Warnings raised by sdm_sklearn."""

__all__ = ["NoHighReliabilityRegionWarning"]


class NoHighReliabilityRegionWarning(UserWarning):
    """No HIGH-RELIABILITY region exists at the requested ``alpha``.

    Raised by :meth:`SDMClassifier.fit` when no rescaled-similarity threshold
    makes every class reach ``alpha`` on the calibration split. The model is
    fitted: ``predict`` and ``predict_proba`` work, but
    ``predict_selective`` rejects every input. More data, a stronger feature
    producer or a lower ``alpha`` may create a region.
    """
