"""Denoise phase: the reference pass and the guided edit pass, step by step together."""

from __future__ import annotations

import copy
import re
import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from zerocon.attention import AttentionStore, LayerSelector
from zerocon.editing.callback import GuidanceEvent
from zerocon.editing.memory import lean_guidance
from zerocon.editing.token_positions import word_token_positions
from zerocon.guidance import (
    GuidanceInputs,
    GuidanceResult,
    GuidedScheduler,
    LocalBlend,
    NonFiniteGuidanceWarning,
)

if TYPE_CHECKING:
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


def _store(plan: EditPlan) -> AttentionStore | None:
    if not plan.method.reference:
        return None
    exact = "^(?:" + "|".join(re.escape(name) for name in plan.layers.all) + ")$"
    return AttentionStore(
        LayerSelector(pattern=exact),
        record_cross=plan.method.record_cross,
        record_self=plan.method.record_self,
        keep_graph=True,
    )


def _local_blend(editor: Editor, state: ImageState, plan: EditPlan) -> LocalBlend | None:
    settings = plan.settings
    if not settings.local_blend:
        return None
    assert state.caption is not None
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
    return LocalBlend(
        positions, settings.blend_threshold, settings.blend_dilation,
        layers=plan.layers.cross, invert=settings.blend_invert,
    )


def denoise_phase(
    editor: Editor,
    state: ImageState,
    plan: EditPlan,
    generator: torch.Generator | None,
    callbacks: CallbackList,
) -> None:
    """Run the edit from ``state.x_start`` over ``state.timesteps``; sets ``state.latents``.

    Per step: the reference forward at ``x_ref`` records attention (``on_reference_step``) and
    steps ``x_ref``; the guided step moves ``x_edit`` down the guidance gradient
    (``on_guidance`` may scale or veto the move) and takes the scheduler step at the moved
    latent with classifier-free guidance (``on_edit_step``). Only one step's records are held.
    With ``local_blend`` the stepped edit latent is then put back to the stepped reference
    latent outside the edited words' attention; with ``blend_pixels`` the final mask and
    reference latent are left in ``state.extras["pixel_blend"]`` for the decode phase.
    """
    assert state.x_start is not None and state.timesteps is not None
    settings, counter = plan.settings, state.counter
    assert counter is not None and state.cond is not None and state.target_cond is not None
    cond, target_cond, uncond = state.cond, state.target_cond, state.uncond
    scheduler = state.extras.pop("scheduler")
    guided = GuidedScheduler(
        scheduler, plan.terms, step_size=plan.step_size, max_grad_norm=settings.max_grad_norm
    )
    store = _store(plan)
    attach: AbstractContextManager[Any] = store.attach(editor.unet) if store is not None else nullcontext()
    ref_scheduler = copy.deepcopy(scheduler)
    blend = _local_blend(editor, state, plan)
    blend_from = round(settings.blend_start * len(state.timesteps))
    x_ref = x_edit = state.x_start
    scale = settings.guidance_scale
    with attach, lean_guidance(editor.unet, settings.gradient_checkpointing), warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteGuidanceWarning)
        for step_index, t in enumerate(state.timesteps):
            reference = None
            if store is not None:
                with counter.phase("reference"):
                    ref_in = guided.scale_model_input(x_ref, t)
                    ref_out = editor.model_output(ref_in, t, cond, uncond, scale, record=store)
                reference = store.snapshot(detach=True)
                if blend is not None:
                    blend.add(reference)
                callbacks.fire("on_reference_step", editor, state, step_index, int(t), x_ref, reference)
                x_ref = ref_scheduler.step(ref_out, t, x_ref).prev_sample

            def forward(x: Tensor, t: Tensor = t, reference: Any = reference) -> GuidanceInputs:
                assert store is not None
                with counter.phase("guidance"):
                    editor.unet(guided.scale_model_input(x, t), t, target_cond)
                edit = store.snapshot()
                if blend is not None:
                    blend.add(edit)
                return GuidanceInputs(edit=edit, reference=reference, latents=x, timestep=t, generator=generator)

            def model_output(x: Tensor, t: Tensor = t) -> Tensor:
                paused = store.paused() if store is not None else nullcontext()
                with paused, counter.phase("denoise"):
                    return editor.model_output(guided.scale_model_input(x, t), t, target_cond, uncond, scale)

            def steer(preview: GuidanceResult, step: int = step_index, t: Tensor = t) -> float | None:
                event = GuidanceEvent(step, int(t), preview.loss, preview.losses, preview.grad_norm)
                return callbacks.steer(editor, state, event)

            def post_step(x: Tensor, x_ref: Tensor = x_ref) -> Tensor:
                assert blend is not None
                return blend(x, x_ref)

            out = guided.guided_step(
                x_edit, t, forward, model_output,
                steer=steer if len(callbacks) else None,
                post_step=post_step if blend is not None and step_index >= blend_from else None,
            )
            x_edit = out.prev_sample
            if plan.terms:
                state.losses.append(out.guidance.losses)
                if out.guidance.skipped:
                    state.skipped.append(step_index)
            pred_x0 = getattr(out.scheduler_output, "pred_original_sample", None)
            state.latents = x_edit
            callbacks.fire("on_edit_step", editor, state, step_index, int(t), x_edit, pred_x0)
    if blend is not None and plan.settings.blend_pixels:
        state.extras["pixel_blend"] = (blend.mask((int(x_edit.shape[-2]), int(x_edit.shape[-1]))), x_ref)
    if state.skipped:
        message = f"image {state.index}: guidance was NaN/Inf at steps {state.skipped}; those moves were skipped"
        state.notices.append(message)
        warnings.warn(message, NonFiniteGuidanceWarning, stacklevel=4)
