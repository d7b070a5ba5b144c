"""Self-attention injection as an edit feature: the edit attends with the reference's queries and keys."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from zerocon.attention import LayerSelector, SelfAttentionInjection
from zerocon.editing.feature import EditFeature
from zerocon.editing.settings_groups import ReferenceSettings

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop
    from zerocon.editing.step_context import StepContext


class SelfAttentionInjectionFeature(EditFeature):
    """Plug-and-Play's map injection for the first ``reference.inject_self_attention`` share of the steps.

    The reference's forward records the queries and keys of ``reference.injection_layers``;
    the edit's guided and classifier-free-guided forwards of the same step attend with them.
    The attention store carries the [`SelfAttentionInjection`][zerocon.attention.SelfAttentionInjection];
    fused calls are off while it runs (the reference and the edit would share one forward).

    Args:
        reference: the reference settings (share and layers).

    Shape:
        Latents and masks hold one row per image of the batch: ``(B, C, h, w)``, ``(B, 1, h, w)``.

    Examples:
        >>> feature = SelfAttentionInjectionFeature(ReferenceSettings(inject_self_attention=0.5))
        >>> feature.attention_injection() is feature.injection
        True
    """

    needs_reference = True
    supports_flow_matching = False
    setting = "inject_self_attention"
    allows_fused_calls = False

    def __init__(self, reference: ReferenceSettings) -> None:
        self.settings = reference
        self.injection = SelfAttentionInjection(LayerSelector(pattern=reference.injection_layers, kind="self"))
        self.until = 0

    def attention_injection(self) -> SelfAttentionInjection:
        return self.injection

    def setup(self, loop: EditLoop) -> None:
        self.until = round(self.settings.inject_self_attention * len(loop.timesteps))

    def injects(self, loop: EditLoop, step: StepContext) -> bool:
        return step.index < self.until

    def forward_context(self, loop: EditLoop, step: StepContext, role: str) -> AbstractContextManager[Any] | None:
        if not self.injects(loop, step):
            return None
        return self.injection.recording() if role == "reference" else self.injection.injecting()
