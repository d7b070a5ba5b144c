"""Gradient guidance of a diffusion sampler: ``GuidedScheduler`` and guidance terms."""

from zerocon.guidance.attention_terms import CrossAttentionGuidance, PatchNCEGuidance
from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.guidance.guided_scheduler import (
    GuidanceForward,
    GuidanceResult,
    GuidedScheduler,
    GuidedStepOutput,
    NoiseForward,
    NonFiniteGuidanceWarning,
)

__all__ = [
    "CrossAttentionGuidance",
    "GuidanceForward",
    "GuidanceInputs",
    "GuidanceResult",
    "GuidanceTerm",
    "GuidedScheduler",
    "GuidedStepOutput",
    "NoiseForward",
    "NonFiniteGuidanceWarning",
    "PatchNCEGuidance",
]
