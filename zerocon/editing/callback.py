"""``Callback``: Lightning-style hooks that observe an edit and may steer its guidance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from zerocon.attention import AttentionRecords
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


@dataclass
class GuidanceEvent:
    """One guidance computation, as [`on_guidance`][zerocon.editing.Callback.on_guidance] sees it.

    Attributes:
        step: the edit step index; ``timestep``: its timestep.
        loss: the weighted total loss; ``losses``: each term's weighted loss.
        grad_norm: the largest per-image norm of the latent gradient (before clipping).
        extras: free space for callbacks that talk to each other.

    Shape:
        No tensors: floats only.

    Examples:
        >>> GuidanceEvent(0, 981, 1.5, {"CrossAttentionGuidance": 1.5}, 0.2).loss
        1.5
    """

    step: int
    timestep: int
    loss: float
    losses: dict[str, float]
    grad_norm: float
    extras: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class of the engine's hooks; override the ones you need (all are no-ops here).

    The engine calls, in this order: ``on_edit_start`` once; per image ``on_image_start``,
    ``on_inversion_step`` per inversion step, then per edit step ``on_reference_step`` (methods
    with a reference pass), ``on_guidance`` (guided methods), ``on_edit_step``; then
    ``on_image_end``; finally ``on_edit_end`` — or ``on_exception`` when an image fails, before
    the error propagates. Several callbacks run in the order given. Images edited in one batch
    (see ``EditSettings.batch_size``) go through their phases together, so their hooks
    interleave — every image's ``on_image_start``, then each step's hook for every image in
    turn — while each image still sees its own sequence in the order above; key per-image state
    by ``state.index``. An exception raised by a
    hook propagates unchanged, with a note naming the callback's class and the hook.

    ``on_guidance`` may steer: return a factor that scales this step's latent move (``0``
    vetoes it, ``None`` leaves it). Factors of several callbacks multiply.

    Shape:
        - latents, pred_x0: ``(1, C, H/f, W/f)``.
        - records: an [`AttentionRecords`][zerocon.attention.AttentionRecords] of the reference forward.

    Examples:
        >>> class CountSteps(Callback):
        ...     def __init__(self):
        ...         self.steps = 0
        ...     def on_edit_step(self, editor, state, step, timestep, latents, pred_x0):
        ...         self.steps += 1
        >>> CountSteps().steps
        0
    """

    def on_edit_start(self, editor: Editor, plan: EditPlan, num_images: int) -> None:
        """Before the first image; ``plan`` holds the settings, the method and the step size."""

    def on_image_start(self, editor: Editor, state: ImageState) -> None:
        """Before an image's caption phase."""

    def on_inversion_step(
        self, editor: Editor, state: ImageState, step: int, timestep: int, latents: Float[Tensor, "..."]
    ) -> None:
        """After each DDIM inversion step, with the latent at the new noise level."""

    def on_reference_step(
        self,
        editor: Editor,
        state: ImageState,
        step: int,
        timestep: int,
        latents: Float[Tensor, "..."],
        records: AttentionRecords,
    ) -> None:
        """After the reference pass's forward at ``step``, with its (detached) records."""

    def on_guidance(self, editor: Editor, state: ImageState, event: GuidanceEvent) -> float | None:
        """After the guidance loss and gradient at a step; may return a move factor."""
        return None

    def on_edit_step(
        self,
        editor: Editor,
        state: ImageState,
        step: int,
        timestep: int,
        latents: Float[Tensor, "..."],
        pred_x0: Float[Tensor, "..."] | None,
    ) -> None:
        """After each edit step, with ``x_{t-1}`` and the scheduler's predicted ``x_0``.

        Setting ``state.latents`` to another tensor of the same shape makes the next step start
        from it (as diffusers' ``callback_on_step_end`` may).
        """

    def on_image_end(self, editor: Editor, state: ImageState, image: Any) -> None:
        """After an image is decoded (``image`` is what the output will hold)."""

    def on_edit_end(self, editor: Editor, output: Any) -> None:
        """After the last image, with the call's output."""

    def on_exception(self, editor: Editor, error: BaseException) -> None:
        """When an image's edit raised (the error then propagates); for cleaning up."""
