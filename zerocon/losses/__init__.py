"""Losses of zero-shot image translation: PatchNCE, cross-attention and noise regularisation.

- :func:`patch_nce_loss`, :class:`PatchSampler`, :class:`PatchNCELoss` — CUT's
  patch-wise contrastive loss (with CDS's multi-scale option).
- :func:`cross_attention_loss`, :class:`CrossAttentionLoss` — pix2pix-zero's L2 between
  edit and reference cross-attention maps.
- :class:`FeatureL2Loss` — positives-only feature distance at shared locations.
- :func:`tone_anchor_loss`, :class:`ToneAnchorLoss` — mean and low-pass of an image against a
  reference's, inside a mask.
- :func:`auto_correlation_loss`, :func:`sample_roll_shift`, :func:`kl_divergence_loss` (and
  their closed-form gradients :func:`auto_correlation_grad`, :func:`kl_divergence_grad`) —
  pix2pix-zero's regularisers of the predicted noise during DDIM inversion.
"""

from zerocon.losses.cross_attention import CrossAttentionLoss, cross_attention_loss
from zerocon.losses.feature_l2 import FeatureL2Loss
from zerocon.losses.noise_regularization import (
    auto_correlation_grad,
    auto_correlation_loss,
    kl_divergence_grad,
    kl_divergence_loss,
    sample_roll_shift,
)
from zerocon.losses.patch_nce import patch_nce_loss
from zerocon.losses.patch_nce_module import PatchNCELoss
from zerocon.losses.patch_sampler import PatchSampler, center_locations
from zerocon.losses.tone_anchor import ToneAnchorLoss, tone_anchor_loss

__all__ = [
    "CrossAttentionLoss",
    "FeatureL2Loss",
    "PatchNCELoss",
    "PatchSampler",
    "ToneAnchorLoss",
    "auto_correlation_grad",
    "auto_correlation_loss",
    "center_locations",
    "cross_attention_loss",
    "kl_divergence_grad",
    "kl_divergence_loss",
    "patch_nce_loss",
    "sample_roll_shift",
    "tone_anchor_loss",
]
