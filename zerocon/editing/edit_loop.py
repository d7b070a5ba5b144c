"""``EditLoop``: one batch's edit, step by step; the method owns each step, features hook into it."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from zerocon.attention import AttentionRecords, AttentionStore, LayerSelector
from zerocon.editing.callback import GuidanceEvent
from zerocon.editing.edit_plan import EditPlan
from zerocon.editing.latent_checks import LATENT_LIMIT, check_in_range
from zerocon.editing.memory import lean_guidance
from zerocon.editing.step_context import StepContext
from zerocon.guidance import (
    GuidanceInputs,
    GuidanceResult,
    GuidedScheduler,
    NonFiniteGuidanceWarning,
)

if TYPE_CHECKING:
    from zerocon.attention import SelfAttentionInjection
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState

__all__ = ["EditLoop", "EditPlan"]


def reference_store(plan: EditPlan, injection: SelfAttentionInjection | None = None) -> AttentionStore | None:
    """The store that records the plan's layers (and carries ``injection``), or ``None`` without a reference pass."""
    if not plan.method.reference:
        return None
    exact = "^(?:" + "|".join(re.escape(name) for name in plan.layers.all) + ")$"
    return AttentionStore(
        LayerSelector(pattern=exact),
        record_cross=plan.method.record_cross,
        record_self=bool(plan.layers.self_attention),
        keep_graph=True,
        injection=injection,
    )


class EditLoop:
    """The edit of one batch of same-size images: the engine side of a method's hooks.

    The editor makes one loop per batch and calls ``method.start(loop)`` (which sets
    ``loop.scheduler``, each ``state.timesteps`` and ``state.x_start``), then
    [`run`][zerocon.editing.EditLoop.run], which calls ``method.step(loop, step)`` for every
    timestep and ``method.end(loop)`` after the last. The default step is
    [`guided_step`][zerocon.editing.EditLoop.guided_step]: the reference step, the guided move
    down the method's terms, the classifier-free-guided scheduler step at the moved latent, the
    features' changes and the callbacks. Its parts are methods a custom step can call on their
    own. The features ([`EditFeature`][zerocon.editing.EditFeature]) are the method's, made
    fresh for this batch.

    Attributes:
        editor, states, plan, callbacks: the call's editor, the batch's images, the plan and hooks.
        features: this batch's features, in the order their hooks run.
        store: the attention store of the reference and guided forwards (``None`` without a
            reference pass).
        scheduler: the edit pass's scheduler (set by the method's start).
        x_edit / x_ref: the edit and reference latents of the batch, ``(B, C, h, w)``.
        fused: the next step's reference output and records when calls are fused.

    Shape:
        One row per image in every batched tensor.

    Examples:
        >>> from PIL import Image
        >>> from zerocon.editing import Editor, EditMethod, EditRequest, EditSettings, register_method, unregister_method
        >>> from zerocon.testing import tiny_components
        >>> class Halfway(EditMethod):  # the default step, then half of each step's change undone
        ...     name, reference = "doc-halfway", False
        ...     def step(self, loop, step):
        ...         before = loop.x_edit
        ...         loop.guided_step(step)
        ...         loop.x_edit = (before + loop.x_edit) / 2
        ...         for row, state in enumerate(loop.states):
        ...             state.latents = loop.x_edit[row : row + 1]
        >>> _ = register_method(Halfway)
        >>> c = tiny_components()
        >>> editor = Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler)
        >>> out = editor.edit([Image.new("RGB", (32, 32))], [EditRequest("a cat", "a dog")],
        ...                   EditSettings("doc-halfway", num_inference_steps=2), show_progress=False)
        >>> out.images[0].size
        (32, 32)
        >>> unregister_method("doc-halfway")
    """

    def __init__(
        self,
        editor: Editor,
        states: Sequence[ImageState],
        plan: EditPlan,
        generators: Sequence[torch.Generator | None],
        callbacks: CallbackList,
    ) -> None:
        self.editor, self.states, self.plan, self.callbacks = editor, list(states), plan, callbacks
        self.generators = list(generators)
        self.count = len(self.states)
        counter = self.states[0].counter
        assert counter is not None
        self.counter = counter
        self.features = plan.method.features(plan.settings)
        injection = next((i for f in self.features if (i := f.attention_injection()) is not None), None)
        self.store = reference_store(plan, injection)
        self.scheduler: Any = None
        self.fused: tuple[Tensor, Any] | None = None

    # ------------------------------------------------------------------ helpers for steps and features
    @property
    def timesteps(self) -> Shaped[Tensor, " s"]:
        """The edit pass's timesteps (shared by the batch)."""
        timesteps = self.states[0].timesteps
        assert timesteps is not None, "the method's start sets the timesteps"
        return timesteps

    @property
    def latent_size(self) -> tuple[int, int]:
        return int(self.x_edit.shape[-2]), int(self.x_edit.shape[-1])

    def rows(self, records: AttentionRecords) -> list[AttentionRecords]:
        """One record per image (the records themselves for a batch of one)."""
        return [records] if self.count == 1 else [records.rows(row, row + 1) for row in range(self.count)]

    def injecting(self, step: StepContext) -> bool:
        """Whether a feature injects self-attention at this step."""
        return any(feature.injects(self, step) for feature in self.features)

    def forward_context(self, step: StepContext, role: str) -> AbstractContextManager[Any]:
        """The features' contexts around a model call of ``role`` (``"reference"``, ``"guided"``, ``"edit"``)."""
        contexts = [c for f in self.features if (c := f.forward_context(self, step, role)) is not None]
        if not contexts:
            return nullcontext()
        stack = ExitStack()
        for context in contexts:
            stack.enter_context(context)
        return stack

    def set_latents(self, latents: Float[Tensor, "b c h w"]) -> None:
        """Make ``latents`` the batch's edit latents (``x_edit`` and each ``state.latents``)."""
        self.x_edit = latents
        for row, state in enumerate(self.states):
            state.latents = latents[row : row + 1]

    # ------------------------------------------------------------------ the loop
    def begin(self) -> None:
        """After the start: the batch's tensors, the guided scheduler and the features' setup."""
        states, settings = self.states, self.plan.settings
        assert all(s.x_start is not None and s.cond is not None for s in states)
        self.cond = torch.cat([s.cond for s in states])  # type: ignore[misc]
        self.target_cond = torch.cat([s.target_cond for s in states])  # type: ignore[misc]
        self.uncond = torch.cat([s.uncond for s in states])  # type: ignore[misc]
        self.ref_uncond = self.uncond if settings.reference.cfg else self.cond
        self.source_x0 = torch.cat([s.x0 for s in states])  # type: ignore[misc]
        self.guided = GuidedScheduler(self.scheduler, self.plan.terms, step_size=self.plan.step_size,
                                      max_grad_norm=settings.guidance.max_grad_norm, per_sample=True)
        self.ref_scheduler = copy.deepcopy(self.scheduler)
        self.x_ref = self.x_edit = torch.cat([s.x_start for s in states])  # type: ignore[misc]
        self.scale = settings.guidance_scale
        self.fuse = (self.store is not None and self.plan.runtime.fuse_unet_calls
                     and all(feature.allows_fused_calls for feature in self.features))
        for feature in self.features:
            feature.setup(self)
        scales = [1.0] * self.count
        for feature in self.features:
            for row, factor in enumerate(feature.move_scales(self) or ()):
                scales[row] *= factor
        self.row_scales = scales
        self.scaled_rows = any(scale != 1.0 for scale in scales)

    def run(self) -> None:
        """``method.step`` for every timestep, then ``method.end``; sets each ``state.latents``."""
        self.begin()
        model = self.editor.denoiser.model
        attach: AbstractContextManager[Any] = self.store.attach(model) if self.store is not None else nullcontext()
        timesteps = self.timesteps
        with attach, lean_guidance(model, self.plan.runtime.gradient_checkpointing), warnings.catch_warnings():
            warnings.simplefilter("ignore", NonFiniteGuidanceWarning)
            for index, t in enumerate(timesteps):
                t_next = timesteps[index + 1] if index + 1 < len(timesteps) else None
                self.plan.method.step(self, StepContext(index, t, t_next))
        self.plan.method.end(self)

    def guided_step(self, step: StepContext) -> None:
        """The default step: reference, guided move, scheduler step, features, callbacks."""
        schedule = self.plan.settings.guidance.schedule
        factor = 1.0 if schedule == "constant" else 1.0 - step.index / len(self.timesteps)
        self.guided.step_size = self.plan.step_size * factor
        self.reference_step(step)
        step.output = self.guided.guided_step(
            self.x_edit, step.t,
            partial(self.guided_forward, step=step),
            partial(self.edit_output, step=step),
            steer=partial(self.steer, step=step) if len(self.callbacks) or self.scaled_rows else None,
            post_step=partial(self.after_scheduler_step, step=step),
        )
        self.after_step(step)

    def reference_step(self, step: StepContext) -> None:
        """This step's reference records (recorded, fused from the last step, or a feature's
        stand-in), handed to the features and callbacks; steps ``x_ref``."""
        stand_in = next((r for f in self.features if (r := f.reference(self, step)) is not None), None)
        reference = ref_out = None
        if stand_in is not None:
            reference = stand_in[0]
        elif self.store is not None:
            if self.fused is None:
                with self.counter.phase("reference"), self.forward_context(step, "reference"):
                    ref_in = self.guided.scale_model_input(self.x_ref, step.t)
                    ref_out = self.editor.model_output(ref_in, step.t, self.cond, self.ref_uncond, self.scale,
                                                       record=self.store)
                reference = self.store.snapshot(detach=True)
            else:
                (ref_out, reference), self.fused = self.fused, None
        if reference is not None:
            for feature in self.features:
                feature.on_reference(self, step, reference)
            for row, (state, part) in enumerate(zip(self.states, self.rows(reference), strict=True)):
                self.callbacks.fire("on_reference_step", self.editor, state, step.index, int(step.t),
                                    self.x_ref[row : row + 1], part)
            self.x_ref = stand_in[1] if stand_in is not None else self.ref_scheduler.step(ref_out, step.t,
                                                                                         self.x_ref).prev_sample
        step.x_ref, step.reference = self.x_ref, reference

    def guided_forward(self, x: Float[Tensor, "b c h w"], *, step: StepContext) -> GuidanceInputs:
        """The forward the guidance differentiates: the edit's records against the reference's."""
        store = self.store
        assert store is not None
        with self.counter.phase("guidance"), self.forward_context(step, "guided"):
            output = self.editor.denoiser(self.guided.scale_model_input(x, step.t), step.t, self.target_cond)
        edit = store.snapshot()
        for feature in self.features:
            feature.on_edit_records(self, step, edit)
        inputs = GuidanceInputs(edit=edit, reference=step.reference, latents=x, timestep=step.t,
                                generator=self.generators, source_x0=self.source_x0)
        for feature in self.features:
            inputs = feature.guidance_inputs(self, step, inputs, output)
        return inputs

    def edit_output(self, x: Float[Tensor, "b c h w"], *, step: StepContext) -> Float[Tensor, "b c h w"]:
        """The classifier-free-guided output at the moved latent (with the next reference rows when fused)."""
        store, t = self.store, step.t
        if self.fuse and step.t_next is not None:
            assert store is not None and step.x_ref is not None
            edit_out, ref_out, records = fused_output(
                self.editor, store, self.guided.scale_model_input(x, t), t,
                self.guided.scale_model_input(step.x_ref, step.t_next), step.t_next,
                (self.cond, self.target_cond, self.ref_uncond, self.uncond), self.scale, self.counter,
            )
            self.fused = (ref_out, records)
            return edit_out
        paused = store.paused() if store is not None else nullcontext()
        with paused, self.forward_context(step, "edit"), self.counter.phase("denoise"):
            return self.editor.model_output(self.guided.scale_model_input(x, t), t, self.target_cond, self.uncond,
                                            self.scale)

    def steer(self, preview: GuidanceResult, *, step: StepContext) -> list[float] | None:
        """Each image's factor for its move: its callbacks' ``on_guidance`` times the features' scales."""
        factors: list[float | None] = []
        for row, state in enumerate(self.states):
            if row in preview.skipped_rows or not len(self.callbacks):  # skipped rows: no callback sees them alone
                factors.append(None)
                continue
            losses = preview.sample_losses[row]
            loss = preview.loss if self.count == 1 else sum(losses.values())
            event = GuidanceEvent(step.index, int(step.t), loss, losses, preview.sample_grad_norms[row])
            factors.append(self.callbacks.steer(self.editor, state, event))
            if factors[-1] == 0:
                state.vetoed.append(step.index)
        if all(factor is None for factor in factors) and not self.scaled_rows:
            return None
        return [(1.0 if factor is None else factor) * scale for factor, scale in zip(factors, self.row_scales, strict=True)]

    def after_scheduler_step(self, latents: Float[Tensor, "b c h w"], *,
                             step: StepContext) -> Float[Tensor, "b c h w"]:
        """The features' changes to the stepped latents (the local blend's, for one)."""
        for feature in self.features:
            latents = feature.after_scheduler_step(self, step, latents)
        return latents

    def end_step(self, step: StepContext, latents: Float[Tensor, "b c h w"],
                 pred_x0: Float[Tensor, "b c h w"] | None = None) -> None:
        """Close a step: range check, ``x_edit`` and each ``state.latents``, ``on_edit_step`` per image."""
        check_in_range(
            latents, LATENT_LIMIT, f"the latent after step {step.index}",
            f"guidance_scale={self.plan.settings.guidance_scale:g} (or the edit direction)",
            [state.index for state in self.states],
        )
        self.set_latents(latents)
        for row, state in enumerate(self.states):
            row_x0 = pred_x0[row : row + 1] if pred_x0 is not None else None
            self.callbacks.fire("on_edit_step", self.editor, state, step.index, int(step.t), state.latents, row_x0)
        # A callback may have replaced an image's latent (diffusers' callback_on_step_end).
        self.x_edit = torch.cat([state.latents for state in self.states])  # type: ignore[misc]

    def after_step(self, step: StepContext) -> None:
        """The guided step's bookkeeping: the move's range check, each image's losses and skipped steps, then
        [`end_step`][zerocon.editing.EditLoop.end_step]."""
        out, settings = step.output, self.plan.settings
        check_in_range(
            out.guidance.latents, LATENT_LIMIT, f"the latent after the guidance move of step {step.index}",
            f"guidance_step_size={self.guided.step_size:g} with lambda_xa={settings.lambda_xa:g}, "
            f"lambda_nce={settings.lambda_nce:g}", [state.index for state in self.states],
        )
        if self.plan.terms:
            for row, state in enumerate(self.states):
                state.losses.append(out.guidance.sample_losses[row])
                if row in out.guidance.skipped_rows:
                    state.skipped.append(step.index)
        self.end_step(step, out.prev_sample, getattr(out.scheduler_output, "pred_original_sample", None))

    def finish(self) -> None:
        """The default end: the features' ``finish``, then notices of skipped steps."""
        for feature in self.features:
            feature.finish(self)
        for state in self.states:
            if state.skipped:
                message = (
                    f"image {state.index}: guidance was NaN/Inf at steps {state.skipped}; those moves were skipped"
                )
                state.notices.append(message)
                warnings.warn(message, NonFiniteGuidanceWarning, stacklevel=2)


def fused_output(
    editor: Editor,
    store: AttentionStore,
    x_edit: Tensor,
    t: Tensor,
    x_ref: Tensor,
    t_ref: Tensor,
    conds: tuple[Tensor, Tensor, Tensor, Tensor],
    scale: float,
    counter: Any,
) -> tuple[Tensor, Tensor, Any]:
    """One model call for this step's CFG rows and the next step's reference rows.

    Rows: the reference's conditional rows (at ``t_ref``, recorded), its unconditional rows
    (``ref_uncond``) when the reference uses CFG, then the edit's unconditional (``uncond``) and
    conditional rows (at ``t``). Returns the edit's CFG output, the reference's CFG output and
    the reference rows' records: the same numbers as the two separate calls, up to float rounding.
    """
    cond, target_cond, ref_uncond, uncond = conds
    count = x_edit.shape[0]
    ref_cfg = not (scale == 1.0 or torch.equal(ref_uncond, cond))
    edit_cfg = not (scale == 1.0 or torch.equal(uncond, target_cond))
    samples = [x_ref] + ([x_ref] if ref_cfg else []) + ([x_edit] if edit_cfg else []) + [x_edit]
    embeds = [cond] + ([ref_uncond] if ref_cfg else []) + ([uncond] if edit_cfg else []) + [target_cond]
    ref_rows = count * (2 if ref_cfg else 1)
    steps = torch.cat([t_ref.reshape(1).expand(ref_rows), t.reshape(1).expand(len(samples) * count - ref_rows)])
    with counter.phase("denoise"):
        out = editor.denoiser(torch.cat(samples), steps, torch.cat(embeds))
    counter.move(ref_rows, "denoise", "reference")
    records = store.snapshot(detach=True).rows(0, count)
    parts = list(out.split(count))
    ref_out = parts[0] if not ref_cfg else parts[1] + scale * (parts[0] - parts[1])
    edit_out = parts[-1] if not edit_cfg else parts[-2] + scale * (parts[-1] - parts[-2])
    return edit_out, ref_out, records
