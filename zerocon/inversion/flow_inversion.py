"""Inversion for flow-matching models (SD3, FLUX): the velocity ODE run from the image to noise.

Flow matching (rectified flow) writes a noisy latent as ``x_σ = (1 − σ)·x₀ + σ·ε`` and trains the
network to predict the velocity ``v = ε − x₀``, so ``dx/dσ = v``. Sampling integrates from
``σ = 1`` down to ``0``; diffusers' ``FlowMatchEulerDiscreteScheduler`` takes the Euler step
``x ← x + (σ_next − σ)·v``. Inversion integrates the same ODE upwards, from the clean latent at
``σ = 0`` to noise, over the scheduler's own sigmas read backwards (so a static shift, SD3's,
and a dynamic one, FLUX's ``mu``, are both honoured).

Two integrators:

- ``order=1``: Euler, one model call per step, first-order accurate.
- ``order=2``: the midpoint rule with the midpoint velocity of each step reused as the next
  step's starting velocity (FireFlow's trick): after the first step, one model call per step,
  with the midpoint's accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

#: ``velocity(x, timestep, conditioning) -> v``; the timestep in the scheduler's units (σ · 1000 for
#: ``FlowMatchEulerDiscreteScheduler``), as diffusers' SD3 pipeline passes it.
Velocity = Callable[[Float[Tensor, "b c h w"], Float[Tensor, " b"], Any], Float[Tensor, "b c h w"]]


@dataclass
class FlowInversionOutput:
    """The inverted latents and the path to them.

    Attributes:
        latents: the latents at the highest sigma (the noise the image maps to).
        trajectory: every latent along the way, clean first.
        sigmas: the sigmas of the trajectory, ascending (``0`` first).

    Shape:
        latents ``(B, C, H, W)``; trajectory ``(steps + 1, B, C, H, W)``; sigmas ``(steps + 1,)``.

    Examples:
        >>> from diffusers import FlowMatchEulerDiscreteScheduler
        >>> inverter = FlowMatchInverter(lambda x, t, c: -x, FlowMatchEulerDiscreteScheduler())
        >>> out = inverter.invert(torch.ones(1, 1, 2, 2), None, num_inference_steps=3, show_progress=False)
        >>> out.trajectory.shape, out.sigmas.shape
        (torch.Size([4, 1, 1, 2, 2]), torch.Size([4]))
    """

    latents: Float[Tensor, "b c h w"]
    trajectory: Float[Tensor, "n b c h w"]
    sigmas: Float[Tensor, " n"]


class FlowMatchInverter:
    """Invert clean latents to noise along a flow-matching model's velocity field.

    Args:
        velocity: ``velocity(x, timestep, conditioning) -> v`` (e.g. a transformer wrapped to
            return its ``.sample``); the conditioning is passed through untouched.
        scheduler: a ``FlowMatchEulerDiscreteScheduler`` (or anything with ``set_timesteps(n,
            mu=...)``, ``sigmas`` and ``config.num_train_timesteps``); its sigmas are used backwards.
        order: 1 (Euler) or 2 (midpoint with the velocity reused: one call per step after the first).

    Shape:
        latents ``(B, C, H, W)`` (clean, VAE-scaled); the output as ``FlowInversionOutput``.

    Raises:
        ValueError: for an ``order`` other than 1 or 2.

    Examples:
        >>> from diffusers import FlowMatchEulerDiscreteScheduler
        >>> constant = lambda x, t, c: torch.ones_like(x)   # v = 1: x_σ = x₀ + σ
        >>> inverter = FlowMatchInverter(constant, FlowMatchEulerDiscreteScheduler())
        >>> out = inverter.invert(torch.zeros(1, 4, 2, 2), None, num_inference_steps=4, show_progress=False)
        >>> round(float(out.latents.mean()), 4), round(float(out.sigmas[-1]), 4)
        (1.0, 1.0)
    """

    def __init__(self, velocity: Velocity, scheduler: Any, order: int = 1) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 (Euler) or 2 (midpoint with reuse), got {order!r}")
        self.velocity, self.scheduler, self.order = velocity, scheduler, order

    def sigmas(self, num_inference_steps: int, mu: float | None = None,
               device: torch.device | None = None) -> Float[Tensor, " n"]:
        """The scheduler's sigmas for ``num_inference_steps`` (with ``mu`` for dynamic shifting), ascending.

        Raises:
            ValueError: for a step count below 1.
        """
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        kwargs = {"mu": mu} if mu is not None else {}
        self.scheduler.set_timesteps(num_inference_steps, device=device, **kwargs)
        return self.scheduler.sigmas.to(device=device, dtype=torch.float32).flip(0)

    def _v(self, x: Tensor, sigma: Tensor, conditioning: Any) -> Tensor:
        timestep = (sigma * self.scheduler.config.num_train_timesteps).to(x.dtype).expand(x.shape[0])
        return self.velocity(x, timestep, conditioning)

    def integrate(self, latents: Float[Tensor, "b c h w"], conditioning: Any, sigmas: Float[Tensor, " n"],
                  callback: Callable[[int, float, Float[Tensor, "b c h w"]], None] | None = None,
                  show_progress: bool = False) -> list[Float[Tensor, "b c h w"]]:
        """Integrate ``dx/dσ = v`` along ``sigmas`` (either direction) with this inverter's order."""
        x, path, carried = latents, [latents], None
        for i in tqdm(range(len(sigmas) - 1), desc="flow inversion", disable=not show_progress):
            sigma, step = sigmas[i], sigmas[i + 1] - sigmas[i]
            if self.order == 1:
                x = x + step.to(x.dtype) * self._v(x, sigma, conditioning)
            else:
                start = carried if carried is not None else self._v(x, sigma, conditioning)
                midpoint = self._v(x + (step / 2).to(x.dtype) * start, sigma + step / 2, conditioning)
                x = x + step.to(x.dtype) * midpoint
                carried = midpoint
            path.append(x)
            if callback is not None:
                callback(i, float(sigmas[i + 1]), x)
        return path

    @torch.no_grad()
    def invert(
        self,
        latents: Float[Tensor, "b c h w"],
        conditioning: Any,
        num_inference_steps: int = 28,
        mu: float | None = None,
        callback: Callable[[int, float, Float[Tensor, "b c h w"]], None] | None = None,
        show_progress: bool = True,
    ) -> FlowInversionOutput:
        """Invert ``latents`` from ``σ = 0`` to the scheduler's highest sigma.

        Args:
            latents: clean latents.
            conditioning: whatever ``velocity`` takes (e.g. the caption's embeddings; no CFG).
            num_inference_steps: steps (the sampling schedule's count).
            mu: FLUX's dynamic-shift parameter, if the scheduler uses one.
            callback: ``callback(step_index, sigma, latents)`` after each step.
            show_progress: show a tqdm bar.

        Raises:
            ValueError: for latents that are not ``(B, C, H, W)`` or a step count below 1.
        """
        if latents.ndim != 4:
            raise ValueError(f"latents must be (b, c, h, w), got shape {tuple(latents.shape)}")
        sigmas = self.sigmas(num_inference_steps, mu, latents.device)
        path = self.integrate(latents, conditioning, sigmas, callback, show_progress)
        return FlowInversionOutput(latents=path[-1], trajectory=torch.stack(path), sigmas=sigmas)

    @torch.no_grad()
    def sample(
        self, noise: Float[Tensor, "b c h w"], conditioning: Any, num_inference_steps: int = 28, mu: float | None = None
    ) -> Float[Tensor, "b c h w"]:
        """The same integrator run downwards, from the highest sigma to ``0`` (a reconstruction).

        With ``order=1`` this is exactly diffusers' ``FlowMatchEulerDiscreteScheduler`` loop.
        """
        sigmas = self.sigmas(num_inference_steps, mu, noise.device).flip(0)
        return self.integrate(noise, conditioning, sigmas)[-1]
