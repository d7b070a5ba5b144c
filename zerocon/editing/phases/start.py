"""Start phase: the latent the edit starts from (DDIM inversion, or SDEdit's noising)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from diffusers.utils.torch_utils import randn_tensor

from zerocon.inversion import DDIMInverter, NoiseRegularizer

if TYPE_CHECKING:
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


def start_phase(
    editor: Editor,
    state: ImageState,
    plan: EditPlan,
    generator: torch.Generator | None,
    callbacks: CallbackList,
) -> None:
    """Set ``state.timesteps`` and ``state.x_start``.

    Inverting methods run :class:`~zerocon.inversion.DDIMInverter` with the noise regulariser
    (``on_inversion_step`` fires after each step); SDEdit keeps the last ``strength`` share of
    the timesteps and noises ``x0`` to the first of them with ``generator``.
    """
    assert state.x0 is not None and state.cond is not None
    settings, steps = plan.settings, plan.settings.num_inference_steps
    scheduler = editor.edit_scheduler(plan.method)
    scheduler.set_timesteps(steps, device=editor.device)
    timesteps = scheduler.timesteps
    if plan.method.invert:
        regularizer = NoiseRegularizer(
            settings.lambda_ac, settings.lambda_kl, settings.num_reg_iterations, settings.num_reg_rolls
        )
        inverter = DDIMInverter(editor.unet, editor.edit_scheduler(plan.method), regularizer)

        def on_step(index: int, timestep: int, latents: torch.Tensor) -> None:
            callbacks.fire("on_inversion_step", editor, state, index, timestep, latents)

        x_start = inverter.invert(
            state.x0, state.cond, steps, generator=generator, callback=on_step, show_progress=False
        ).latents
    else:
        start = steps - min(steps, max(1, round(steps * settings.strength)))
        timesteps = timesteps[start:]
        noise = randn_tensor(state.x0.shape, generator=generator, device=editor.device, dtype=state.x0.dtype)
        x_start = scheduler.add_noise(state.x0, noise, timesteps[:1])
    state.timesteps, state.x_start = timesteps, x_start
    state.extras["scheduler"] = scheduler
