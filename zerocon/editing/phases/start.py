"""Start phase: the latents the edit starts from (DDIM inversion, or SDEdit's noising)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from diffusers.utils.torch_utils import randn_tensor

from zerocon.inversion import DDIMInverter, NoiseRegularizer

if TYPE_CHECKING:
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


def start_phase(
    editor: Editor,
    states: Sequence[ImageState],
    plan: EditPlan,
    generators: Sequence[torch.Generator | None],
    callbacks: CallbackList,
) -> Any:
    """Set each ``state.timesteps`` and ``state.x_start``; returns the edit pass's scheduler.

    Inverting methods run :class:`~zerocon.inversion.DDIMInverter` on all images at once, each
    image's noise regularised alone with its own generator (``on_inversion_step`` fires after
    each step, for each image); SDEdit keeps the last ``strength`` share of the timesteps and
    noises each ``x0`` to the first of them with its image's generator.
    """
    assert all(state.x0 is not None and state.cond is not None for state in states)
    settings, steps = plan.settings, plan.settings.num_inference_steps
    scheduler = editor.edit_scheduler(plan.method)
    scheduler.set_timesteps(steps, device=editor.device)
    timesteps = scheduler.timesteps
    x0 = torch.cat([state.x0 for state in states])  # type: ignore[misc]
    if plan.method.invert:
        regularizer = NoiseRegularizer(
            settings.lambda_ac, settings.lambda_kl, settings.num_reg_iterations, settings.num_reg_rolls
        )
        inverter = DDIMInverter(editor.unet, editor.edit_scheduler(plan.method), regularizer)

        def on_step(index: int, timestep: int, latents: torch.Tensor) -> None:
            for row, state in enumerate(states):
                callbacks.fire("on_inversion_step", editor, state, index, timestep, latents[row : row + 1])

        cond = torch.cat([state.cond for state in states])  # type: ignore[misc]
        x_start = inverter.invert(
            x0, cond, steps, generator=list(generators), callback=on_step, show_progress=False
        ).latents
    else:
        start = steps - min(steps, max(1, round(steps * settings.strength)))
        timesteps = timesteps[start:]
        noise = torch.cat([
            randn_tensor(state.x0.shape, generator=generator, device=editor.device, dtype=x0.dtype)  # type: ignore[union-attr]
            for state, generator in zip(states, generators, strict=True)
        ])
        x_start = scheduler.add_noise(x0, noise, timesteps[:1])
    for row, state in enumerate(states):
        state.timesteps, state.x_start = timesteps, x_start[row : row + 1]
    return scheduler
