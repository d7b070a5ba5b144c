"""Start phase: the latents the edit starts from (DDIM inversion, or SDEdit's noising)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from zerocon.attention import AttentionRecords, AttentionStore
from zerocon.editing.phases.denoise import reference_store
from zerocon.inversion import DDIMInverter, NoiseRegularizer

if TYPE_CHECKING:
    from zerocon.editing.callback_list import CallbackList
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


@dataclass
class InvertedReference:
    """The reference pass as the DDIM inversion recorded it, in the edit's step order.

    Attributes:
        store: the store that recorded it (attached again for the edit pass).
        records: the attention records of each edit step (the inversion step at the same
            timestep, read backwards).
        latents: the reference latent after each edit step (the inversion's trajectory, read
            backwards; the last one is the source latent).
        injected: the self-attention queries and keys of each edit step, when injecting.

    Shape:
        latents[i]: ``(B, C, H, W)``.
    """

    store: AttentionStore
    records: list[AttentionRecords] = field(default_factory=list)
    latents: list[Tensor] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)


def start_phase(
    editor: Editor,
    states: Sequence[ImageState],
    plan: EditPlan,
    generators: Sequence[torch.Generator | None],
    callbacks: CallbackList,
) -> Any:
    """Set each ``state.timesteps`` and ``state.x_start``; returns the edit pass's scheduler.

    Inverting methods run [`DDIMInverter`][zerocon.inversion.DDIMInverter] on all images at once, each
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
        inverter = DDIMInverter(editor.unet, editor.edit_scheduler(plan.method), regularizer, denoiser=editor.denoiser)

        def on_step(index: int, timestep: int, latents: torch.Tensor) -> None:
            for row, state in enumerate(states):
                callbacks.fire("on_inversion_step", editor, state, index, timestep, latents[row : row + 1])

        cond = torch.cat([state.cond for state in states])  # type: ignore[misc]
        store = reference_store(plan) if settings.reference_from_inversion else None
        inverted = InvertedReference(store) if store is not None else None
        injection = store.injection if store is not None else None

        def on_inverted_step(index: int, timestep: int, latents: torch.Tensor) -> None:
            if inverted is not None:
                inverted.records.insert(0, inverted.store.snapshot(detach=True))
                if injection is not None:
                    inverted.injected.insert(0, injection.saved())
            on_step(index, timestep, latents)

        attach: Any = store.attach(editor.unet) if store is not None else nullcontext()
        record: Any = injection.recording() if injection is not None else nullcontext()
        with attach, record:
            result = inverter.invert(
                x0, cond, steps, generator=list(generators), callback=on_inverted_step, show_progress=False
            )
        x_start = result.latents
        if inverted is not None:
            inverted.latents = [result.trajectory[steps - 1 - j] for j in range(steps)]
            states[0].extras["inverted_reference"] = inverted
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
