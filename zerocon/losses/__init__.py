"""Losses of zero-shot image translation: PatchNCE, cross-attention and noise regularisation.

- [`patch_nce_loss`][zerocon.losses.patch_nce_loss], [`PatchSampler`][zerocon.losses.PatchSampler], [`PatchNCELoss`][zerocon.losses.PatchNCELoss] — CUT's
  patch-wise contrastive loss (with CDS's multi-scale option).
- [`cross_attention_loss`][zerocon.losses.cross_attention_loss], [`CrossAttentionLoss`][zerocon.losses.CrossAttentionLoss] — pix2pix-zero's L2 between
  edit and reference cross-attention maps.
- [`FeatureL2Loss`][zerocon.losses.FeatureL2Loss] — positives-only feature distance at shared locations.
- [`tone_anchor_loss`][zerocon.losses.tone_anchor_loss], [`ToneAnchorLoss`][zerocon.losses.ToneAnchorLoss] — mean and low-pass of an image against a
  reference's, inside a mask.
- [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss], [`sample_roll_shift`][zerocon.losses.sample_roll_shift], [`kl_divergence_loss`][zerocon.losses.kl_divergence_loss] (and
  their closed-form gradients [`auto_correlation_grad`][zerocon.losses.auto_correlation_grad], [`kl_divergence_grad`][zerocon.losses.kl_divergence_grad]) —
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
