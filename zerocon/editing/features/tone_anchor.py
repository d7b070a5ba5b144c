"""The tone anchor's inputs as an edit feature: the predicted clean latent and the region to keep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxtyping import Float
from torch import Tensor

from zerocon.editing.feature import EditFeature
from zerocon.editing.features.local_blend import LocalBlendFeature
from zerocon.inversion import to_epsilon

if TYPE_CHECKING:
    from zerocon.attention import AttentionRecords
    from zerocon.editing.edit_loop import EditLoop, EditPlan
    from zerocon.editing.step_context import StepContext
    from zerocon.guidance import GuidanceInputs


class ToneAnchor(EditFeature):
    """Feeds [`ToneAnchorGuidance`][zerocon.guidance.ToneAnchorGuidance]: ``pred_x0`` and ``keep_mask``.

    The keep mask is the local blend's (1 outside each image's mask), read after the
    reference's maps of the step are added and before the edit's; the method's terms must
    include the tone anchor (``guidance.lambda_tone > 0``) and the local blend must be on.

    Shape:
        Latents and masks hold one row per image of the batch: ``(B, C, h, w)``, ``(B, 1, h, w)``.

    Examples:
        >>> ToneAnchor().needs_reference
        True
    """

    needs_reference = True
    supports_flow_matching = False
    setting = "lambda_tone"

    def __init__(self) -> None:
        self.blend: LocalBlendFeature | None = None
        self.keep_mask: Tensor | None = None

    def check(self, plan: EditPlan) -> None:
        super().check(plan)
        if not plan.settings.blend.enabled:
            raise ValueError("lambda_tone > 0 needs local_blend=True: the tone anchor keeps the region outside the blend")

    def setup(self, loop: EditLoop) -> None:
        self.blend = next((f for f in loop.features if isinstance(f, LocalBlendFeature)), None)

    def on_reference(self, loop: EditLoop, step: StepContext, records: AttentionRecords) -> None:
        self.keep_mask = None
        if self.blend is not None and self.blend.blending:
            self.keep_mask = self.blend.keep_masks(loop.latent_size, loop.x_edit.device)

    def guidance_inputs(self, loop: EditLoop, step: StepContext, inputs: GuidanceInputs,
                        output: Float[Tensor, "b c h w"]) -> GuidanceInputs:
        x, t = inputs.latents, step.t
        assert x is not None
        alpha = loop.scheduler.alphas_cumprod.to(device=x.device, dtype=x.dtype)[int(t)]
        eps = to_epsilon(output, x, alpha, loop.editor.prediction_type)
        inputs.pred_x0 = (x - (1 - alpha) ** 0.5 * eps) / alpha**0.5
        inputs.keep_mask = self.keep_mask
        return inputs
