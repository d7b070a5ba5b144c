"""Gradient guidance of a diffusion sampler: ``GuidedScheduler`` and guidance terms."""

from zerocon.guidance.attention_terms import (
    CrossAttentionGuidance,
    FeatureL2Guidance,
    PatchNCEGuidance,
)
from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.guidance.guided_scheduler import (
    GuidanceForward,
    GuidanceResult,
    GuidedScheduler,
    GuidedStepOutput,
    NoiseForward,
    NonFiniteGuidanceWarning,
    PostStep,
)
from zerocon.guidance.local_blend import LocalBlend, blend_latents, blend_mask
from zerocon.guidance.tone_anchor import ToneAnchorGuidance
from zerocon.guidance.zerocon_step import ZeroConStep

__all__ = [
    "CrossAttentionGuidance",
    "FeatureL2Guidance",
    "GuidanceForward",
    "GuidanceInputs",
    "GuidanceResult",
    "GuidanceTerm",
    "GuidedScheduler",
    "GuidedStepOutput",
    "LocalBlend",
    "NoiseForward",
    "NonFiniteGuidanceWarning",
    "PatchNCEGuidance",
    "PostStep",
    "ToneAnchorGuidance",
    "ZeroConStep",
    "blend_latents",
    "blend_mask",
]
