"""The tone anchor: mean and low-pass of an image, outside a mask, against a reference's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.losses._checks import at_least_float32, check_finite, check_floating

__all__ = ["ToneAnchorLoss", "tone_anchor_loss"]


def tone_anchor_loss(
    image: Float[Tensor, "b c h w"],
    reference: Float[Tensor, "b c h w"],
    mask: Float[Tensor, "b 1 h w"],
    pool: int = 3,
) -> Float[Tensor, ""]:
    """How far ``image``'s tone is from ``reference``'s where ``mask`` is on.

    Two parts, both inside the (soft) mask ``m``:

    - the per-channel weighted means: ``Σ_c (mean_m(x_c) − mean_m(r_c))²``;
    - the low-pass images: ``Σ m · ‖lp(x) − lp(r)‖² / Σ m``, with ``lp`` a ``pool × pool``
      box filter (stride 1, borders averaged over the pixels inside).

    The first catches a global tone or tint shift (what a text-embedding edit does to a
    background it never names), the second a slow drift. Detail finer than the window is
    free to change, so texture and noise are not held. The reference is detached. Both parts
    and their gradient are zero when the statistics match.

    Args:
        image: the image (or latent) being steered, e.g. the edit's predicted x0.
        reference: the image whose tone to keep, e.g. the source latent.
        mask: weights in ``[0, 1]`` (1: keep the tone there).
        pool: the low-pass window (odd, ≥ 1).

    Shape:
        - image, reference: ``(B, C, H, W)``; mask: ``(B, 1, H, W)``.
        - output: scalar (summed over the batch).

    Returns:
        The loss; ``0`` (still differentiable) for an all-zero mask.

    Raises:
        ValueError: for non-floating or non-finite inputs, mismatched shapes, a mask outside
            ``[0, 1]``, an even or non-positive ``pool``, or values so large the loss overflows.

    Examples:
        >>> float(tone_anchor_loss(torch.zeros(1, 4, 8, 8), torch.ones(1, 4, 8, 8), torch.ones(1, 1, 8, 8)))
        8.0
    """
    check_floating(image, "image")
    check_floating(reference, "reference")
    check_floating(mask, "mask")
    if image.ndim != 4 or image.shape != reference.shape:
        raise ValueError(
            f"image and reference must be (b, c, h, w) of one shape, got {tuple(image.shape)} and {tuple(reference.shape)}"
        )
    if mask.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ValueError(f"mask must be {(image.shape[0], 1, *image.shape[2:])}, got {tuple(mask.shape)}")
    check_finite(image, "image")
    check_finite(reference, "reference")
    if bool((mask < 0).any()) or bool((mask > 1).any()):
        raise ValueError("mask values must lie in [0, 1]")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1 or pool % 2 == 0:
        raise ValueError(f"pool must be an odd whole number >= 1, got {pool!r}")
    x = at_least_float32(image)
    r = at_least_float32(reference).detach().to(x.dtype)
    m = at_least_float32(mask).detach().to(x.dtype)
    area = m.sum(dim=(2, 3)).clamp_min(1e-6)  # (b, 1)
    mean_gap = (x * m).sum(dim=(2, 3)) / area - (r * m).sum(dim=(2, 3)) / area
    means = mean_gap.pow(2).sum(dim=1)
    if pool > 1:
        def low_pass(t: Tensor) -> Tensor:
            return F.avg_pool2d(t, pool, stride=1, padding=pool // 2, count_include_pad=False)
        x, r = low_pass(x), low_pass(r)
    local = ((x - r).pow(2).sum(dim=1, keepdim=True) * m).sum(dim=(1, 2, 3)) / area[:, 0]
    has_mask = (area[:, 0] > 1e-6).to(x.dtype)
    loss = ((means + local) * has_mask).sum()
    if not bool(torch.isfinite(loss.detach())):
        raise ValueError("the tone anchor loss overflowed: the image and reference values are too large")
    return loss


class ToneAnchorLoss(nn.Module):
    """[`tone_anchor_loss`][zerocon.losses.tone_anchor_loss] as a module (``pool`` fixed at construction).

    Args:
        pool: the low-pass window (odd, ≥ 1).

    Shape:
        See [`tone_anchor_loss`][zerocon.losses.tone_anchor_loss].

    Raises:
        ValueError: for an even or non-positive ``pool``.

    Examples:
        >>> loss = ToneAnchorLoss(pool=3)
        >>> float(loss(torch.ones(1, 4, 8, 8), torch.ones(1, 4, 8, 8), torch.ones(1, 1, 8, 8)))
        0.0
    """

    def __init__(self, pool: int = 3) -> None:
        super().__init__()
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1 or pool % 2 == 0:
            raise ValueError(f"pool must be an odd whole number >= 1, got {pool!r}")
        self.pool = pool

    def forward(
        self, image: Float[Tensor, "b c h w"], reference: Float[Tensor, "b c h w"], mask: Float[Tensor, "b 1 h w"]
    ) -> Float[Tensor, ""]:
        return tone_anchor_loss(image, reference, mask, self.pool)

    def extra_repr(self) -> str:
        return f"pool={self.pool}"
