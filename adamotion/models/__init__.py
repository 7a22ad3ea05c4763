"""Models (nn.Modules and small fitted estimators): the motion denoiser, the quality-feedback extractors,
the length estimator. No sampling logic here (see ``adamotion.diffusion``) and no inference glue (see
``adamotion.pipeline``)."""
from adamotion.models.denoiser import DenoiserConfig, MotionDenoiser
from adamotion.models.extractors import (
    ExtractorPair, MotionExtractor, MotionExtractorConfig, TextExtractor, TextExtractorConfig, contrastive_loss,
)
from adamotion.models.length import LengthEstimator, default_length

__all__ = [
    "DenoiserConfig", "MotionDenoiser", "ExtractorPair", "MotionExtractor", "MotionExtractorConfig", "TextExtractor",
    "TextExtractorConfig", "contrastive_loss", "LengthEstimator", "default_length",
]
