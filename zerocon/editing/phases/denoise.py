"""Denoise phase: the reference pass and the guided edit pass, step by step together."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from zerocon.attention import AttentionStore, LayerSelector, SelfAttentionInjection
from zerocon.editing.callback import GuidanceEvent
from zerocon.editing.latent_checks import LATENT_LIMIT, check_in_range
from zerocon.editing.memory import lean_guidance
from zerocon.editing.token_positions import word_token_positions
from zerocon.guidance import (
    GuidanceInputs,
    GuidanceResult,
    GuidedScheduler,
    LocalBlend,
    NonFiniteGuidanceWarning,
    ToneAnchorGuidance,
)
from zerocon.inversion import to_epsilon

if TYPE_CHECKING:
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


def reference_store(plan: EditPlan) -> AttentionStore | None:
    """The store that records the plan's layers (and injects, when the settings ask), or ``None``."""
    if not plan.method.reference:
        return None
    exact = "^(?:" + "|".join(re.escape(name) for name in plan.layers.all) + ")$"
    injection = None
    if plan.settings.inject_self_attention > 0:
        injection = SelfAttentionInjection(LayerSelector(pattern=plan.settings.injection_layers, kind="self"))
    return AttentionStore(
        LayerSelector(pattern=exact),
        record_cross=plan.method.record_cross,
        record_self=bool(plan.layers.self_attention),
        keep_graph=True,
        injection=injection,
    )


def _local_blend(editor: Editor, state: ImageState, plan: EditPlan) -> LocalBlend | None:
    settings = plan.settings
    if not settings.local_blend:
        return None
    assert state.caption is not None
    invert = settings.blend_invert
    if state.scope is not None:
        words, invert = list(state.scope.blend_words), state.scope.invert
    else:
        words = list(settings.blend_words) or [word for source, _ in state.pairs for word in source.split()]
    positions = word_token_positions(editor.tokenizer, state.caption, words)
    if not positions:
        message = (
            f"image {state.index}: local blend is off for this image: none of the blend words "
            f"{words} is in the caption {state.caption!r}"
        )
        state.notices.append(message)
        warnings.warn(message, UserWarning, stacklevel=4)
        return None
    dilation = settings.blend_dilation
    if _is_scene(state) and settings.scene_blend_dilation is not None:
        dilation = settings.scene_blend_dilation
    return LocalBlend(positions, settings.blend_threshold, dilation, layers=plan.layers.cross, invert=invert)


def _token_weights(editor: Editor, states: Sequence[ImageState], plan: EditPlan) -> Tensor | None:
    """Per-image token weights of the cross-attention term: 0 at released edited words, else 1."""
    mode = plan.settings.release_edited_tokens
    if mode == "none" or not plan.method.record_cross:
        return None
    rows = []
    length = int(states[0].cond.shape[1])  # type: ignore[union-attr]
    for state in states:
        weights = torch.ones(length, device=editor.device)
        if mode == "all" or _is_scene(state):
            assert state.caption is not None
            words = [word for source, _ in state.pairs for word in source.split()]
            positions = word_token_positions(editor.tokenizer, state.caption, words)
            weights[[p for p in positions if p < length]] = 0.0
        rows.append(weights)
    return torch.stack(rows)


def _is_scene(state: ImageState) -> bool:
    return state.scope is not None and state.scope.kind == "scene"


def _blends_latents(state: ImageState, plan: EditPlan) -> bool:
    """Whether the image's blend acts on the latent at each step (else on the pixels only)."""
    return not _is_scene(state) or plan.settings.scene_blend_latents


def _step_factor(schedule: str, step_index: int, steps: int) -> float:
    """η's factor at ``step_index`` of ``steps`` under the guidance schedule."""
    return 1.0 if schedule == "constant" else 1.0 - step_index / steps


def _pred_x0(editor: Editor, scheduler: Any, output: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """The clean latent a model output at ``(x, t)`` predicts (differentiable)."""
    alpha = scheduler.alphas_cumprod.to(device=x.device, dtype=x.dtype)[int(t)]
    eps = to_epsilon(output, x, alpha, editor.prediction_type)
    return (x - (1 - alpha) ** 0.5 * eps) / alpha**0.5


def _fused_output(
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
    """One UNet call for this step's CFG rows and the next step's reference rows.

    Rows: the reference's conditional rows (at ``t_ref``, recorded), its unconditional rows
    (``ref_uncond``) when the reference uses CFG, then the edit's unconditional (``uncond``) and
    conditional rows (at ``t``). Returns
    the edit's CFG output, the reference's CFG output and the reference rows' records: the same
    numbers as the two separate calls, up to float rounding.
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


def _rows(records: Any, count: int) -> list[Any]:
    """One record per batch row (the records themselves for a batch of one)."""
    return [records] if count == 1 else [records.rows(row, row + 1) for row in range(count)]


def denoise_phase(
    editor: Editor,
    states: Sequence[ImageState],
    plan: EditPlan,
    scheduler: Any,
    generators: Sequence[torch.Generator | None],
    callbacks: CallbackList,
) -> None:
    """Run the edit of a batch from each ``state.x_start`` over the shared timesteps.

    Per step, for all images at once: the reference forward at ``x_ref`` records attention
    (``on_reference_step`` per image) and steps ``x_ref``; the guided step moves ``x_edit`` down
    the guidance gradient, each image's terms evaluated on its own rows with its own generator
    (``on_guidance`` per image may scale or veto that image's move), and takes the scheduler
    step at the moved latents with classifier-free guidance (``on_edit_step`` per image). With
    ``fuse_unet_calls``, the classifier-free-guidance rows of a step and the reference rows of
    the next step (both known by then) go through one UNet call; hooks still see the reference
    step at the start of its own step. With ``reference_from_inversion`` the records and
    latents the inversion left (``states[0].extras["inverted_reference"]``) stand in for the
    reference pass. Only one step's records are held otherwise. With ``local_blend`` each
    image's stepped edit latent is put back to its stepped reference latent outside its edited
    words' attention (scene edits under ``blend_scope="auto"``: only with
    ``scene_blend_latents``); with ``blend_pixels`` the final mask and reference latent are
    left in ``state.extras["pixel_blend"]`` for the decode phase. With
    ``inject_self_attention`` the edit's forwards attend with the reference's self-attention
    queries and keys in the first share of the steps. Sets each ``state.latents``.
    """
    BatchDenoise(editor, states, plan, scheduler, generators, callbacks).run()


class BatchDenoise:
    """One batch's reference and guided passes, a step at a time (see ``denoise_phase``).

    The state of the loop lives on the object (the two latents, the fused reference output of
    the next step); each step is [`step`][zerocon.editing.phases.denoise.BatchDenoise.step], and
    its parts are methods: the reference, the guided forward, the classifier-free-guided
    output, the callbacks' steering, the blend after the scheduler step and the bookkeeping.
    """

    def __init__(
        self,
        editor: Editor,
        states: Sequence[ImageState],
        plan: EditPlan,
        scheduler: Any,
        generators: Sequence[torch.Generator | None],
        callbacks: CallbackList,
    ) -> None:
        self.editor, self.states, self.plan, self.scheduler, self.callbacks = editor, states, plan, scheduler, callbacks
        self.count = len(states)
        first = states[0]
        assert first.timesteps is not None and all(s.x_start is not None and s.cond is not None for s in states)
        self.settings, counter, self.timesteps = plan.settings, first.counter, first.timesteps
        assert counter is not None
        self.counter = counter
        self.cond = torch.cat([s.cond for s in states])  # type: ignore[misc]
        self.target_cond = torch.cat([s.target_cond for s in states])  # type: ignore[misc]
        self.uncond = torch.cat([s.uncond for s in states])  # type: ignore[misc]
        self.ref_uncond = self.uncond if self.settings.reference_cfg else self.cond
        self.source_x0 = torch.cat([s.x0 for s in states])  # type: ignore[misc]
        self.row_generators = list(generators)
        self.guided = GuidedScheduler(
            scheduler, plan.terms, step_size=plan.step_size, max_grad_norm=self.settings.max_grad_norm, per_sample=True
        )
        self.inverted = first.extras.pop("inverted_reference", None)
        self.store = self.inverted.store if self.inverted is not None else reference_store(plan)
        self.injection = self.store.injection if self.store is not None else None
        self.ref_scheduler = copy.deepcopy(scheduler)
        self._prepare_blends()
        # Scene edits may move at another rate (a per-row factor on η).
        self.row_scales = [self.settings.scene_step_factor if _is_scene(state) else 1.0 for state in states]
        self.scaled_rows = any(scale != 1.0 for scale in self.row_scales)
        self.blend_from = round(self.settings.blend_start * len(self.timesteps))
        self.inject_until = round(self.settings.inject_self_attention * len(self.timesteps))
        self.x_ref = self.x_edit = torch.cat([s.x_start for s in states])  # type: ignore[misc]
        self.scale = self.settings.guidance_scale
        self.size = (int(self.x_edit.shape[-2]), int(self.x_edit.shape[-1]))
        self.fuse = (self.store is not None and self.settings.fuse_unet_calls and self.inverted is None
                     and self.injection is None)
        self.fused: tuple[Tensor, Any] | None = None  # the next step's reference output and records

    def _prepare_blends(self) -> None:
        editor, states, plan = self.editor, self.states, self.plan
        self.blends = [_local_blend(editor, state, plan) for state in states]
        self.blending = any(blend is not None for blend in self.blends)
        self.latent_blends = [blend if blend is not None and _blends_latents(s, plan) else None
                              for s, blend in zip(states, self.blends, strict=True)]
        self.latent_blending = any(blend is not None for blend in self.latent_blends)
        self.tone = any(isinstance(term, ToneAnchorGuidance) for term in plan.terms)
        self.token_weights = _token_weights(editor, states, plan)

    def run(self) -> None:
        """Every step, then what the decode phase needs; sets each ``state.latents``."""
        attach: AbstractContextManager[Any] = (
            self.store.attach(self.editor.denoiser.model) if self.store is not None else nullcontext()
        )
        with attach, lean_guidance(self.editor.unet, self.settings.gradient_checkpointing), warnings.catch_warnings():
            warnings.simplefilter("ignore", NonFiniteGuidanceWarning)
            for step_index, t in enumerate(self.timesteps):
                self.step(step_index, t)
        self.finish()

    def step(self, step_index: int, t: Tensor) -> None:
        """One step: the reference, the guided move and the scheduler step, the callbacks."""
        settings, timesteps = self.settings, self.timesteps
        self.guided.step_size = self.plan.step_size * _step_factor(settings.guidance_schedule, step_index, len(timesteps))
        injecting = self.injection is not None and step_index < self.inject_until
        reference = self.reference_step(step_index, t, injecting)
        t_next = timesteps[step_index + 1] if step_index + 1 < len(timesteps) else None
        keep_mask = None
        if self.tone and self.blending:
            keep_mask = torch.cat([
                torch.zeros(1, 1, *self.size, device=self.x_edit.device) if blend is None else 1.0 - blend.mask(self.size)
                for blend in self.blends
            ])
        x_ref = self.x_ref
        out = self.guided.guided_step(
            self.x_edit, t,
            partial(self.guided_forward, t=t, reference=reference, keep_mask=keep_mask, injecting=injecting),
            partial(self.edit_output, t=t, t_next=t_next, x_ref=x_ref, injecting=injecting),
            steer=partial(self.steer, step=step_index, t=t) if len(self.callbacks) or self.scaled_rows else None,
            post_step=(partial(self.blend_latents, x_ref=x_ref)
                       if self.latent_blending and step_index >= self.blend_from else None),
        )
        self.after_step(step_index, t, out)

    def reference_step(self, step_index: int, t: Tensor, injecting: bool) -> Any:
        """The reference records of this step (recorded, fused from the last step, or the
        inversion's), handed to the blends and callbacks; steps ``x_ref``."""
        store, injection, inverted = self.store, self.injection, self.inverted
        reference = None
        if inverted is not None:
            reference = inverted.records[step_index]
            if injecting:
                injection.restore(inverted.injected[step_index])  # type: ignore[union-attr]
        elif store is not None:
            if self.fused is None:
                record: Any = injection.recording() if injecting else nullcontext()  # type: ignore[union-attr]
                with self.counter.phase("reference"), record:
                    ref_in = self.guided.scale_model_input(self.x_ref, t)
                    ref_out = self.editor.model_output(ref_in, t, self.cond, self.ref_uncond, self.scale, record=store)
                reference = store.snapshot(detach=True)
            else:
                ref_out, reference = self.fused
                self.fused = None
        if reference is not None:
            for row, (state, part) in enumerate(zip(self.states, _rows(reference, self.count), strict=True)):
                if self.blends[row] is not None:
                    self.blends[row].add(part)  # type: ignore[union-attr]
                self.callbacks.fire(
                    "on_reference_step", self.editor, state, step_index, int(t), self.x_ref[row : row + 1], part
                )
            if inverted is not None:
                self.x_ref = inverted.latents[step_index]
            else:
                self.x_ref = self.ref_scheduler.step(ref_out, t, self.x_ref).prev_sample
        return reference

    def guided_forward(self, x: Tensor, *, t: Tensor, reference: Any, keep_mask: Tensor | None,
                       injecting: bool) -> GuidanceInputs:
        """The forward the guidance differentiates: the edit's records against the reference's."""
        store = self.store
        assert store is not None
        inject = self.injection.injecting() if injecting else nullcontext()  # type: ignore[union-attr]
        with self.counter.phase("guidance"), inject:
            output = self.editor.denoiser(self.guided.scale_model_input(x, t), t, self.target_cond)
        edit = store.snapshot()
        if self.blending:
            for blend, part in zip(self.blends, _rows(edit, self.count), strict=True):
                if blend is not None:
                    blend.add(part)
        pred_x0 = _pred_x0(self.editor, self.scheduler, output, x, t) if self.tone else None
        return GuidanceInputs(
            edit=edit, reference=reference, latents=x, timestep=t, generator=self.row_generators,
            pred_x0=pred_x0, source_x0=self.source_x0, keep_mask=keep_mask, token_weights=self.token_weights,
        )

    def edit_output(self, x: Tensor, *, t: Tensor, t_next: Tensor | None, x_ref: Tensor, injecting: bool) -> Tensor:
        """The classifier-free-guided output at the moved latent (with the next reference rows when fused)."""
        store = self.store
        if self.fuse and t_next is not None:
            assert store is not None
            edit_out, ref_out, records = _fused_output(
                self.editor, store, self.guided.scale_model_input(x, t), t,
                self.guided.scale_model_input(x_ref, t_next), t_next,
                (self.cond, self.target_cond, self.ref_uncond, self.uncond), self.scale, self.counter,
            )
            self.fused = (ref_out, records)
            return edit_out
        paused = store.paused() if store is not None else nullcontext()
        inject = self.injection.injecting() if injecting else nullcontext()  # type: ignore[union-attr]
        with paused, inject, self.counter.phase("denoise"):
            return self.editor.model_output(self.guided.scale_model_input(x, t), t, self.target_cond, self.uncond,
                                            self.scale)

    def steer(self, preview: GuidanceResult, *, step: int, t: Tensor) -> list[float] | None:
        """Each image's factor for its move: its callbacks' ``on_guidance`` times its row scale."""
        factors: list[float | None] = []
        for row, state in enumerate(self.states):
            if row in preview.skipped_rows or not len(self.callbacks):  # skipped rows: no callback sees them alone
                factors.append(None)
                continue
            losses = preview.sample_losses[row]
            loss = preview.loss if self.count == 1 else sum(losses.values())
            event = GuidanceEvent(step, int(t), loss, losses, preview.sample_grad_norms[row])
            factors.append(self.callbacks.steer(self.editor, state, event))
            if factors[-1] == 0:
                state.vetoed.append(step)
        if all(factor is None for factor in factors) and not self.scaled_rows:
            return None
        return [(1.0 if factor is None else factor) * scale for factor, scale in zip(factors, self.row_scales, strict=True)]

    def blend_latents(self, x: Tensor, *, x_ref: Tensor) -> Tensor:
        """Each blended image's stepped latent put back to the reference's outside its mask."""
        rows = [
            x[row : row + 1] if blend is None else blend(x[row : row + 1], x_ref[row : row + 1])
            for row, blend in enumerate(self.latent_blends)
        ]
        return torch.cat(rows)

    def after_step(self, step_index: int, t: Tensor, out: Any) -> None:
        """Range checks, each image's losses and skipped steps, ``on_edit_step``; ``x_edit`` moves on."""
        settings, states = self.settings, self.states
        images = [state.index for state in states]
        check_in_range(
            out.guidance.latents, LATENT_LIMIT, f"the latent after the guidance move of step {step_index}",
            f"guidance_step_size={self.guided.step_size:g} with lambda_xa={settings.lambda_xa:g}, "
            f"lambda_nce={settings.lambda_nce:g}", images,
        )
        check_in_range(
            out.prev_sample, LATENT_LIMIT, f"the latent after step {step_index}",
            f"guidance_scale={settings.guidance_scale:g} (or the edit direction)", images,
        )
        x_edit = out.prev_sample
        pred_x0 = getattr(out.scheduler_output, "pred_original_sample", None)
        for row, state in enumerate(states):
            if self.plan.terms:
                state.losses.append(out.guidance.sample_losses[row])
                if row in out.guidance.skipped_rows:
                    state.skipped.append(step_index)
            state.latents = x_edit[row : row + 1]
            row_x0 = pred_x0[row : row + 1] if pred_x0 is not None else None
            self.callbacks.fire("on_edit_step", self.editor, state, step_index, int(t), state.latents, row_x0)
        # A callback may have replaced an image's latent (diffusers' callback_on_step_end).
        self.x_edit = torch.cat([state.latents for state in states])  # type: ignore[misc]

    def finish(self) -> None:
        """The pixel blend's mask and reference latent for the decode phase; notices of skipped steps."""
        for row, (state, blend) in enumerate(zip(self.states, self.blends, strict=True)):
            if blend is not None and self.settings.blend_pixels:
                state.extras["pixel_blend"] = (blend.mask(self.size), self.x_ref[row : row + 1])
            if state.skipped:
                message = (
                    f"image {state.index}: guidance was NaN/Inf at steps {state.skipped}; those moves were skipped"
                )
                state.notices.append(message)
                warnings.warn(message, NonFiniteGuidanceWarning, stacklevel=6)  # the caller of denoise_phase's caller
