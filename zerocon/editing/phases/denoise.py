"""Denoise phase: the reference pass and the guided edit pass, step by step together."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
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
    count = len(states)
    first = states[0]
    assert first.timesteps is not None and all(s.x_start is not None and s.cond is not None for s in states)
    settings, counter, timesteps = plan.settings, first.counter, first.timesteps
    assert counter is not None
    cond = torch.cat([s.cond for s in states])  # type: ignore[misc]
    target_cond = torch.cat([s.target_cond for s in states])  # type: ignore[misc]
    uncond = torch.cat([s.uncond for s in states])  # type: ignore[misc]
    ref_uncond = uncond if settings.reference_cfg else cond
    source_x0 = torch.cat([s.x0 for s in states])  # type: ignore[misc]
    row_generators = list(generators)
    guided = GuidedScheduler(
        scheduler, plan.terms, step_size=plan.step_size, max_grad_norm=settings.max_grad_norm, per_sample=True
    )
    inverted = first.extras.pop("inverted_reference", None)
    store = inverted.store if inverted is not None else reference_store(plan)
    injection = store.injection if store is not None else None
    attach: AbstractContextManager[Any] = store.attach(editor.unet) if store is not None else nullcontext()
    ref_scheduler = copy.deepcopy(scheduler)
    blends = [_local_blend(editor, state, plan) for state in states]
    blending = any(blend is not None for blend in blends)
    latent_blends = [blend if blend is not None and _blends_latents(s, plan) else None for s, blend in zip(states, blends, strict=True)]
    latent_blending = any(blend is not None for blend in latent_blends)
    tone = any(isinstance(term, ToneAnchorGuidance) for term in plan.terms)
    token_weights = _token_weights(editor, states, plan)
    # Scene edits may move at another rate (a per-row factor on η).
    row_scales = [settings.scene_step_factor if _is_scene(state) else 1.0 for state in states]
    scaled_rows = any(scale != 1.0 for scale in row_scales)
    blend_from = round(settings.blend_start * len(timesteps))
    inject_until = round(settings.inject_self_attention * len(timesteps))
    x_ref = x_edit = torch.cat([s.x_start for s in states])  # type: ignore[misc]
    scale = settings.guidance_scale
    size = (int(x_edit.shape[-2]), int(x_edit.shape[-1]))
    with attach, lean_guidance(editor.unet, settings.gradient_checkpointing), warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteGuidanceWarning)
        fuse = store is not None and settings.fuse_unet_calls and inverted is None and injection is None
        fused: tuple[Tensor, Any] | None = None  # the next step's reference output and records
        for step_index, t in enumerate(timesteps):
            guided.step_size = plan.step_size * _step_factor(settings.guidance_schedule, step_index, len(timesteps))
            injecting = injection is not None and step_index < inject_until
            reference = None
            if inverted is not None:
                reference = inverted.records[step_index]
                if injecting:
                    injection.restore(inverted.injected[step_index])  # type: ignore[union-attr]
            elif store is not None:
                if fused is None:
                    record: Any = injection.recording() if injecting else nullcontext()  # type: ignore[union-attr]
                    with counter.phase("reference"), record:
                        ref_in = guided.scale_model_input(x_ref, t)
                        ref_out = editor.model_output(ref_in, t, cond, ref_uncond, scale, record=store)
                    reference = store.snapshot(detach=True)
                else:
                    ref_out, reference = fused
                    fused = None
            if reference is not None:
                for row, (state, part) in enumerate(zip(states, _rows(reference, count), strict=True)):
                    if blends[row] is not None:
                        blends[row].add(part)  # type: ignore[union-attr]
                    callbacks.fire(
                        "on_reference_step", editor, state, step_index, int(t), x_ref[row : row + 1], part
                    )
                if inverted is not None:
                    x_ref = inverted.latents[step_index]
                else:
                    x_ref = ref_scheduler.step(ref_out, t, x_ref).prev_sample
            t_next = timesteps[step_index + 1] if step_index + 1 < len(timesteps) else None
            keep_mask = None
            if tone and blending:
                keep_mask = torch.cat([
                    torch.zeros(1, 1, *size, device=x_edit.device) if blend is None else 1.0 - blend.mask(size)
                    for blend in blends
                ])

            def forward(x: Tensor, t: Tensor = t, reference: Any = reference, keep_mask: Tensor | None = keep_mask,
                        injecting: bool = injecting) -> GuidanceInputs:
                assert store is not None
                inject = injection.injecting() if injecting else nullcontext()  # type: ignore[union-attr]
                with counter.phase("guidance"), inject:
                    output = editor.denoiser(guided.scale_model_input(x, t), t, target_cond)
                edit = store.snapshot()
                if blending:
                    for blend, part in zip(blends, _rows(edit, count), strict=True):
                        if blend is not None:
                            blend.add(part)
                pred_x0 = _pred_x0(editor, scheduler, output, x, t) if tone else None
                return GuidanceInputs(
                    edit=edit, reference=reference, latents=x, timestep=t, generator=row_generators,
                    pred_x0=pred_x0, source_x0=source_x0, keep_mask=keep_mask, token_weights=token_weights,
                )

            def model_output(x: Tensor, t: Tensor = t, t_next: Tensor | None = t_next, x_ref: Tensor = x_ref,
                             injecting: bool = injecting) -> Tensor:
                nonlocal fused
                if fuse and t_next is not None:
                    assert store is not None
                    edit_out, ref_out, records = _fused_output(
                        editor, store, guided.scale_model_input(x, t), t,
                        guided.scale_model_input(x_ref, t_next), t_next, (cond, target_cond, ref_uncond, uncond), scale,
                        counter,
                    )
                    fused = (ref_out, records)
                    return edit_out
                paused = store.paused() if store is not None else nullcontext()
                inject = injection.injecting() if injecting else nullcontext()  # type: ignore[union-attr]
                with paused, inject, counter.phase("denoise"):
                    return editor.model_output(guided.scale_model_input(x, t), t, target_cond, uncond, scale)

            def steer(preview: GuidanceResult, step: int = step_index, t: Tensor = t) -> list[float] | None:
                factors: list[float | None] = []
                for row, state in enumerate(states):
                    if row in preview.skipped_rows or not len(callbacks):  # skipped rows: no callback sees them alone
                        factors.append(None)
                        continue
                    losses = preview.sample_losses[row]
                    loss = preview.loss if count == 1 else sum(losses.values())
                    event = GuidanceEvent(step, int(t), loss, losses, preview.sample_grad_norms[row])
                    factors.append(callbacks.steer(editor, state, event))
                    if factors[-1] == 0:
                        state.vetoed.append(step)
                if all(factor is None for factor in factors) and not scaled_rows:
                    return None
                return [(1.0 if factor is None else factor) * scale for factor, scale in zip(factors, row_scales, strict=True)]

            def post_step(x: Tensor, x_ref: Tensor = x_ref) -> Tensor:
                rows = [
                    x[row : row + 1] if blend is None else blend(x[row : row + 1], x_ref[row : row + 1])
                    for row, blend in enumerate(latent_blends)
                ]
                return torch.cat(rows)

            out = guided.guided_step(
                x_edit, t, forward, model_output,
                steer=steer if len(callbacks) or scaled_rows else None,
                post_step=post_step if latent_blending and step_index >= blend_from else None,
            )
            images = [state.index for state in states]
            check_in_range(
                out.guidance.latents, LATENT_LIMIT, f"the latent after the guidance move of step {step_index}",
                f"guidance_step_size={guided.step_size:g} with lambda_xa={settings.lambda_xa:g}, "
                f"lambda_nce={settings.lambda_nce:g}", images,
            )
            check_in_range(
                out.prev_sample, LATENT_LIMIT, f"the latent after step {step_index}",
                f"guidance_scale={settings.guidance_scale:g} (or the edit direction)", images,
            )
            x_edit = out.prev_sample
            pred_x0 = getattr(out.scheduler_output, "pred_original_sample", None)
            for row, state in enumerate(states):
                if plan.terms:
                    state.losses.append(out.guidance.sample_losses[row])
                    if row in out.guidance.skipped_rows:
                        state.skipped.append(step_index)
                state.latents = x_edit[row : row + 1]
                row_x0 = pred_x0[row : row + 1] if pred_x0 is not None else None
                callbacks.fire("on_edit_step", editor, state, step_index, int(t), state.latents, row_x0)
            # A callback may have replaced an image's latent (diffusers' callback_on_step_end).
            x_edit = torch.cat([state.latents for state in states])  # type: ignore[misc]
    for row, (state, blend) in enumerate(zip(states, blends, strict=True)):
        if blend is not None and settings.blend_pixels:
            state.extras["pixel_blend"] = (blend.mask(size), x_ref[row : row + 1])
        if state.skipped:
            message = (
                f"image {state.index}: guidance was NaN/Inf at steps {state.skipped}; those moves were skipped"
            )
            state.notices.append(message)
            warnings.warn(message, NonFiniteGuidanceWarning, stacklevel=4)
