"""``ToneAnchorGuidance``: keep the tone of what the edit should leave alone."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.losses import ToneAnchorLoss


class ToneAnchorGuidance(GuidanceTerm):
    """Pull the mean and low-pass of the edit's predicted x0 outside the edit region to the source's.

    An edit direction shifts every token's embedding, so a background the edit never names
    drifts in tone and tint (a global shift, not a change of its geometry). This term reads
    ``inputs.pred_x0`` (the edit forward's prediction of the clean latent), ``inputs.source_x0``
    and ``inputs.keep_mask`` (1 where the image should stay), and returns
    [`tone_anchor_loss`][zerocon.losses.tone_anchor_loss] between them. Without a mask it is zero (and
    still differentiable), so an edit whose region is not known yet is not pulled anywhere.

    Args:
        weight: λ_tone.
        pool: the low-pass window in latent pixels (odd).

    Shape:
        - ``inputs.pred_x0``, ``inputs.source_x0``: ``(B, C, H, W)``;
          ``inputs.keep_mask``: ``(B, 1, H, W)``.

    Raises:
        ValueError: (on call) when ``pred_x0`` or ``source_x0`` is missing, or for mismatched
            shapes.

    Examples:
        >>> import torch
        >>> x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> term = ToneAnchorGuidance(weight=2.0)
        >>> inputs = GuidanceInputs(None, pred_x0=x0 + 1, source_x0=x0, keep_mask=torch.ones(1, 1, 8, 8))
        >>> round(float(term(inputs)), 4)
        16.0
    """

    def __init__(self, weight: float = 1.0, pool: int = 3) -> None:
        super().__init__(weight)
        self.criterion = ToneAnchorLoss(pool)

    def loss(self, inputs: GuidanceInputs) -> Float[Tensor, "*r"]:
        if inputs.pred_x0 is None or inputs.source_x0 is None:
            raise ValueError("ToneAnchorGuidance needs inputs.pred_x0 and inputs.source_x0")
        if inputs.keep_mask is None:
            return inputs.pred_x0.sum() * 0.0
        return self.criterion(inputs.pred_x0, inputs.source_x0, inputs.keep_mask.to(inputs.pred_x0.dtype))
