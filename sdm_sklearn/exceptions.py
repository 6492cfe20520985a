"""Warnings raised by sdm_sklearn."""

__all__ = ["InconsistentVersionWarning", "NoHighReliabilityRegionWarning"]


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
