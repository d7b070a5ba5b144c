"""Start phase: the latents the edit starts from (DDIM inversion, or SDEdit's noising).

The two functions are the built-in methods' ``start`` hooks
([`EditMethod.start`][zerocon.editing.EditMethod.start]); each sets ``loop.scheduler``, each
``state.timesteps`` and ``state.x_start``.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import torch
from diffusers.utils.torch_utils import randn_tensor

from zerocon.inversion import DDIMInverter, FlowMatchInverter, NoiseRegularizer

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop


def _edit_scheduler(loop: EditLoop) -> dict[str, Any]:
    """The edit's scheduler with its timesteps set; returns the family's extra arguments (FLUX's ``mu``)."""
    x0 = loop.states[0].x0
    assert x0 is not None
    extra = loop.editor.scheduler_kwargs(tuple(x0.shape))
    loop.scheduler = loop.editor.edit_scheduler(loop.plan.method)
    loop.scheduler.set_timesteps(loop.plan.settings.num_inference_steps, device=loop.editor.device, **extra)
    return extra


def _rows(loop: EditLoop, name: str) -> torch.Tensor:
    """One batched tensor of every image's ``state.<name>`` (``x0``, ``cond``)."""
    return torch.cat([getattr(state, name) for state in loop.states])


def _inversion_step(loop: EditLoop, index: int, timestep: int, latents: torch.Tensor) -> None:
    """After an inversion step: the features see the batch, the callbacks each image."""
    for feature in loop.features:
        feature.on_inversion_step(loop, index, timestep, latents)
    for row, state in enumerate(loop.states):
        loop.callbacks.fire("on_inversion_step", loop.editor, state, index, timestep, latents[row : row + 1])


def _start_at(loop: EditLoop, timesteps: torch.Tensor, latents: torch.Tensor) -> None:
    """Each image starts from its row of ``latents`` over ``timesteps``."""
    for row, state in enumerate(loop.states):
        state.timesteps, state.x_start = timesteps, latents[row : row + 1]


def invert_start(loop: EditLoop) -> None:
    """Start from the DDIM inversion of every image of the batch at once.

    Each image's noise is regularised alone with its own generator; ``on_inversion_step`` fires
    after each step, for each image, and the features see every step (the reference taken from
    the inversion records it).
    """
    editor, states, plan = loop.editor, loop.states, loop.plan
    assert all(state.x0 is not None and state.cond is not None for state in states)
    if editor.flow_matching:
        flow_invert_start(loop)
        return
    _edit_scheduler(loop)
    steps, reg = plan.settings.num_inference_steps, plan.settings.inversion
    regularizer = NoiseRegularizer(reg.lambda_ac, reg.lambda_kl, reg.num_reg_iterations, reg.num_reg_rolls)
    inverter = DDIMInverter(editor.denoiser.model, editor.edit_scheduler(plan.method), regularizer, denoiser=editor.denoiser)

    def on_step(index: int, timestep: int, latents: torch.Tensor) -> None:
        _inversion_step(loop, index, timestep, latents)

    with ExitStack() as stack:
        for feature in loop.features:
            context = feature.inversion_context(loop)
            if context is not None:
                stack.enter_context(context)
        result = inverter.invert(_rows(loop, "x0"), _rows(loop, "cond"), steps, generator=list(loop.generators),
                                 callback=on_step, show_progress=False)
    for feature in loop.features:
        feature.on_inversion_end(loop, list(result.trajectory))
    _start_at(loop, loop.scheduler.timesteps, result.latents)


def flow_invert_start(loop: EditLoop) -> None:
    """Start a flow-matching edit from the Euler inversion of every image (caption, no CFG).

    The inversion integrates ``dx/dσ = v`` upwards over the scheduler's own sigmas, first order,
    as the loop's Euler sampler integrates downwards; the noise regulariser (made for ε
    predictions) is not used. ``on_inversion_step`` fires after each step, for each image.
    """
    extra = _edit_scheduler(loop)
    inverter = FlowMatchInverter(loop.editor.denoiser, loop.editor.edit_scheduler(loop.plan.method), order=1)

    def on_step(index: int, sigma: float, latents: torch.Tensor) -> None:
        _inversion_step(loop, index, round(sigma * loop.scheduler.config.num_train_timesteps), latents)

    result = inverter.invert(_rows(loop, "x0"), _rows(loop, "cond"), loop.plan.settings.num_inference_steps,
                             mu=extra.get("mu"), callback=on_step, show_progress=False)
    _start_at(loop, loop.scheduler.timesteps, result.latents)


def noise_start(loop: EditLoop) -> None:
    """SDEdit's start: keep the last ``strength`` share of the timesteps and noise each ``x0``
    to the first of them with its image's generator."""
    editor, states, settings = loop.editor, loop.states, loop.plan.settings
    assert all(state.x0 is not None for state in states)
    _edit_scheduler(loop)
    steps = settings.num_inference_steps
    start = steps - min(steps, max(1, round(steps * settings.strength)))
    timesteps = loop.scheduler.timesteps[start:]
    x0 = _rows(loop, "x0")
    noise = torch.cat([
        randn_tensor(state.x0.shape, generator=generator, device=editor.device, dtype=x0.dtype)  # type: ignore[union-attr]
        for state, generator in zip(states, loop.generators, strict=True)
    ])
    if loop.editor.flow_matching:  # x_σ = (1 − σ)·x0 + σ·noise
        x_start = loop.scheduler.scale_noise(x0, timesteps[:1], noise)
    else:
        x_start = loop.scheduler.add_noise(x0, noise, timesteps[:1])
    _start_at(loop, timesteps, x_start)
