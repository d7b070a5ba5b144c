"""The reference taken from the inversion, as an edit feature: no separate reconstruction pass."""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from typing import TYPE_CHECKING, Any

from jaxtyping import Float
from torch import Tensor

from zerocon.editing.feature import EditFeature

if TYPE_CHECKING:
    from zerocon.attention import AttentionRecords
    from zerocon.editing.edit_loop import EditLoop
    from zerocon.editing.step_context import StepContext


class ReferenceFromInversion(EditFeature):
    """The DDIM inversion records the caption's rows at each timestep; the edit reads them backwards.

    During the inversion the loop's attention store is attached (and the injection records,
    when one is on); at edit step ``i`` the records of the inversion step at the same timestep
    stand in for the reference pass, and the inversion's latent stands in for the reference
    latent. It saves the reference rows of every step. Fused calls are off (there is no
    reference forward to fuse).

    Shape:
        Latents and masks hold one row per image of the batch: ``(B, C, h, w)``, ``(B, 1, h, w)``.

    Examples:
        >>> ReferenceFromInversion().allows_fused_calls
        False
    """

    needs_reference = True
    supports_flow_matching = False
    setting = "reference_from_inversion"
    allows_fused_calls = False

    def __init__(self) -> None:
        self.records: list[AttentionRecords] = []
        self.latents: list[Tensor] = []
        self.injected: list[dict[str, Any]] = []

    def inversion_context(self, loop: EditLoop) -> AbstractContextManager[Any] | None:
        store = loop.store
        assert store is not None
        stack = ExitStack()
        stack.enter_context(store.attach(loop.editor.denoiser.model))
        if store.injection is not None:
            stack.enter_context(store.injection.recording())
        return stack

    def on_inversion_step(self, loop: EditLoop, index: int, timestep: int, latents: Float[Tensor, "b c h w"]) -> None:
        store = loop.store
        assert store is not None
        self.records.insert(0, store.snapshot(detach=True))
        if store.injection is not None:
            self.injected.insert(0, store.injection.saved())

    def on_inversion_end(self, loop: EditLoop, trajectory: list[Float[Tensor, "b c h w"]]) -> None:
        steps = loop.plan.settings.num_inference_steps
        self.latents = [trajectory[steps - 1 - j] for j in range(steps)]

    def reference(self, loop: EditLoop, step: StepContext) -> tuple[AttentionRecords, Float[Tensor, "b c h w"]] | None:
        if loop.injecting(step):
            assert loop.store is not None and loop.store.injection is not None
            loop.store.injection.restore(self.injected[step.index])
        return self.records[step.index], self.latents[step.index]
