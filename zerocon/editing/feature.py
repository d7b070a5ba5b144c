"""``EditFeature``: an optional part of an edit, composed by its method and called at fixed points of the loop.

A feature is what a Lightning callback is to a training loop, for the parts that change the
result: the local blend, scene handling, the tone anchor, self-attention injection, the
reference taken from the inversion. A method lists its features
([`EditMethod.features`][zerocon.editing.EditMethod.features]); the loop
([`EditLoop`][zerocon.editing.EditLoop]) calls every feature's hooks in that order. Each hook has
a default that does nothing, so a feature overrides only the points it needs. A feature object
lives for one batch of images: it may keep that batch's state on itself.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from zerocon.attention import AttentionRecords, SelfAttentionInjection
    from zerocon.editing.edit_loop import EditLoop, EditPlan
    from zerocon.editing.step_context import StepContext
    from zerocon.guidance import GuidanceInputs


class EditFeature:
    """Base class of the loop's optional parts; every hook defaults to doing nothing.

    Class attributes:
        needs_reference: the feature reads the reference pass ([`check`][zerocon.editing.EditFeature.check]
            refuses a method without one).
        needs_cross_attention: the feature reads recorded cross-attention.
        allows_fused_calls: the loop may fuse a step's rows with the next step's reference rows
            while this feature is on (``RuntimeOptions.fuse_unet_calls``).
        setting: the setting that switches the feature on, named in its messages (default: the
            class name).
        supports_flow_matching: the feature runs on flow-matching models (SD3, FLUX).

    Hooks, in the order the loop calls them:
        ``check(plan)`` once per call before any model runs; ``attention_injection()`` when the
        loop builds its attention store; ``inversion_context`` / ``on_inversion_step`` /
        ``on_inversion_end`` around an inverting start; ``setup(loop)`` once the start is known;
        then per step ``reference`` (a stand-in for the reference pass), ``forward_context``
        around every model call, ``on_reference``, ``on_edit_records``, ``guidance_inputs``,
        ``after_scheduler_step``; ``finish(loop)`` after the last step. ``move_scales`` gives
        per-image factors on the guidance move.

    Shape:
        Batched tensors hold one row per image of the batch: latents ``(B, C, h, w)``.

    Examples:
        >>> class CountSteps(EditFeature):
        ...     def setup(self, loop): self.steps = 0
        ...     def on_reference(self, loop, step, records): self.steps += 1
        >>> CountSteps().needs_reference
        False
    """

    needs_reference: ClassVar[bool] = False
    needs_cross_attention: ClassVar[bool] = False
    allows_fused_calls: ClassVar[bool] = True
    setting: ClassVar[str] = ""
    supports_flow_matching: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The feature's name in the result's record."""
        return type(self).__name__

    def check(self, plan: EditPlan) -> None:
        """Refuse a plan this feature cannot run with (``ValueError``), before any model runs."""
        method, label = plan.method, self.setting or self.name
        if self.needs_cross_attention and not (method.reference and method.record_cross):
            raise ValueError(f"{label} needs a method with a reference pass and recorded cross-attention; "
                             f"{method.name!r} has none")
        if self.needs_reference and not method.reference:
            raise ValueError(f"{label} needs a method with a reference pass; {method.name!r} has none")
        if plan.flow_matching and not self.supports_flow_matching:
            raise ValueError(f"{label} is not available on flow-matching models (SD3, FLUX) yet")

    def attention_injection(self) -> SelfAttentionInjection | None:
        """An injection the loop's attention store should carry (default: none)."""
        return None

    def inversion_context(self, loop: EditLoop) -> AbstractContextManager[Any] | None:
        """A context the inversion runs inside (default: none)."""
        return None

    def on_inversion_step(self, loop: EditLoop, index: int, timestep: int,
                          latents: Float[Tensor, "b c h w"]) -> None:
        """After each inversion step, for the whole batch."""

    def on_inversion_end(self, loop: EditLoop, trajectory: list[Float[Tensor, "b c h w"]]) -> None:
        """After the inversion, with its latents from the first step to ``x_T``."""

    def setup(self, loop: EditLoop) -> None:
        """Once per batch, after the start: the batch's conditioning and latents are known."""

    def reference(self, loop: EditLoop,
                  step: StepContext) -> tuple[AttentionRecords, Float[Tensor, "b c h w"]] | None:
        """A stand-in for the reference pass at this step: ``(records, next reference latent)``."""
        return None

    def injects(self, loop: EditLoop, step: StepContext) -> bool:
        """Whether self-attention injection is on at this step."""
        return False

    def forward_context(self, loop: EditLoop, step: StepContext, role: str) -> AbstractContextManager[Any] | None:
        """A context around a model call of this step; ``role`` is ``"reference"``, ``"guided"`` or ``"edit"``."""
        return None

    def on_reference(self, loop: EditLoop, step: StepContext, records: AttentionRecords) -> None:
        """The reference's records of this step (all images' rows), before the guided move."""

    def on_edit_records(self, loop: EditLoop, step: StepContext, records: AttentionRecords) -> None:
        """The edit's records of the guided forward (all images' rows, with their graph)."""

    def guidance_inputs(self, loop: EditLoop, step: StepContext, inputs: GuidanceInputs,
                        output: Float[Tensor, "b c h w"]) -> GuidanceInputs:
        """Add to what the guidance terms read; ``output`` is the guided forward's prediction."""
        return inputs

    def move_scales(self, loop: EditLoop) -> list[float] | None:
        """Per-image factors on the guidance move, fixed for the batch (default: none)."""
        return None

    def after_scheduler_step(self, loop: EditLoop, step: StepContext,
                             latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        """The edit latents after the scheduler step; return them, changed or not."""
        return latents

    def finish(self, loop: EditLoop) -> None:
        """After the last step, before decoding."""

    def __repr__(self) -> str:
        return f"{self.name}()"
