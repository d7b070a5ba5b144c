"""Deterministic DDIM inversion of a latent, with pix2pix-zero's noise regularisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from jaxtyping import Float, Shaped
from torch import Tensor, nn
from tqdm.auto import tqdm

from zerocon.inversion.noise_prediction import to_epsilon
from zerocon.inversion.noise_regularizer import NoiseRegularizer

#: ``callback(step_index, timestep, latents)`` after each inversion step.
InversionCallback = Callable[[int, int, Tensor], None]


@dataclass
class InversionOutput:
    """Result of [`invert`][zerocon.inversion.DDIMInverter.invert].

    Shape:
        - latents: ``(b, c, h, w)`` — the inverted noise ``x_T``.
        - trajectory: ``(steps + 1, b, c, h, w)`` — ``x_0`` first, ``x_T`` last.
        - timesteps: ``(steps,)`` — the sampling timesteps, descending (as ``scheduler.timesteps``).

    Examples:
        >>> from diffusers import DDIMScheduler
        >>> from zerocon.testing import GaussianDenoiser
        >>> scheduler = DDIMScheduler()
        >>> inverter = DDIMInverter(GaussianDenoiser(scheduler.alphas_cumprod), scheduler)
        >>> out = inverter.invert(torch.randn(2, 4, 8, 8), torch.zeros(2, 1, 1),
        ...                       num_inference_steps=5, show_progress=False)
        >>> out.latents.shape, out.trajectory.shape, out.timesteps.tolist()
        (torch.Size([2, 4, 8, 8]), torch.Size([6, 2, 4, 8, 8]), [800, 600, 400, 200, 0])
    """

    latents: Float[Tensor, "b c h w"]
    trajectory: Float[Tensor, "n b c h w"]
    timesteps: Shaped[Tensor, " s"]


class DDIMInverter:
    """DDIM inversion ``x_0 → x_T`` (guidance scale 1 by default), regularising ε at each step.

    The update mirrors ``diffusers.DDIMScheduler`` exactly, so DDIM sampling with the same
    scheduler, step count and prompt retraces the trajectory (up to the UNet's local change).

    Args:
        unet: any diffusers ``UNet2DConditionModel`` (or a module with the same call signature).
        scheduler: a scheduler with ``alphas_cumprod``, ``set_timesteps`` and a ``config`` holding
            ``num_train_timesteps`` and ``prediction_type`` (DDIM's is the natural choice).
        regularizer: ε regularisation (default: [`NoiseRegularizer`][zerocon.inversion.NoiseRegularizer] with docs/method.md's
            defaults); pass ``NoiseRegularizer(num_iterations=0)`` to turn it off.
        denoiser: what to call for a prediction, ``denoiser(x, t, conditioning) -> Tensor``
            (the editor's [`Denoiser`][zerocon.editing.Denoiser]); default: ``unet(x, t, c).sample``.

    Shape:
        - latents: ``(B, C, H, W)`` (clean, VAE-scaled); prompt_embeds: ``(B, L, D)``.
        - output: [`InversionOutput`][zerocon.inversion.InversionOutput] — latents ``(B, C, H, W)``, trajectory
          ``(steps + 1, B, C, H, W)``, timesteps ``(steps,)``.

    Examples:
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> inverter = DDIMInverter(c.unet, c.scheduler)
        >>> out = inverter.invert(torch.randn(1, 4, 8, 8), torch.randn(1, 16, 32),
        ...                       num_inference_steps=2, show_progress=False)
        >>> out.trajectory.shape
        torch.Size([3, 1, 4, 8, 8])
    """

    def __init__(
        self,
        unet: nn.Module,
        scheduler: SchedulerMixin,
        regularizer: NoiseRegularizer | None = None,
        denoiser: Callable[[Float[Tensor, "b c h w"], Shaped[Tensor, "*t"], Float[Tensor, "b l d"]],
                           Float[Tensor, "b c h w"]] | None = None,
    ) -> None:
        for attr in ("alphas_cumprod", "set_timesteps", "config"):
            if not hasattr(scheduler, attr):
                raise TypeError(f"scheduler must have {attr!r} (a DDIM-like diffusers scheduler)")
        self.unet = unet
        self.scheduler = scheduler
        self.regularizer = regularizer if regularizer is not None else NoiseRegularizer()
        self.denoiser = denoiser

    def _predict(self, x: Tensor, t: Tensor, conditioning: Tensor) -> Tensor:
        if self.denoiser is not None:
            return self.denoiser(x, t, conditioning)
        return self.unet(x, t, conditioning).sample  # type: ignore[no-any-return]

    def _alpha(self, timestep: int) -> Tensor:
        alphas = self.scheduler.alphas_cumprod  # type: ignore[attr-defined]
        if timestep >= 0:
            return alphas[timestep]
        return getattr(self.scheduler, "final_alpha_cumprod", alphas[0])

    @torch.no_grad()
    def invert(
        self,
        latents: Float[Tensor, "b c h w"],
        prompt_embeds: Float[Tensor, "b l d"],
        num_inference_steps: int = 50,
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
        guidance_scale: float = 1.0,
        negative_prompt_embeds: Float[Tensor, "b l d"] | None = None,
        callback: InversionCallback | None = None,
        show_progress: bool = True,
    ) -> InversionOutput:
        """Invert ``latents`` (already scaled by the VAE's ``scaling_factor``) to noise.

        Args:
            latents: clean latents ``x_0``.
            prompt_embeds: text embeddings of the caption, one row per latent.
            num_inference_steps: DDIM steps (default 50).
            generator: drives the random rolls of the regulariser; a sequence of one generator
                per latent regularises each latent alone (see [`NoiseRegularizer`][zerocon.inversion.NoiseRegularizer]).
            guidance_scale: CFG scale (default 1.0: no CFG, as pix2pix-zero).
            negative_prompt_embeds: unconditional embeddings; required if ``guidance_scale != 1``.
            callback: called as ``callback(step_index, timestep, latents)`` after each step.
            show_progress: show a tqdm bar.

        Raises:
            ValueError: for mismatched batch sizes, bad ranks or a non-positive step count.
        """
        if latents.ndim != 4:
            raise ValueError(f"latents must be (b, c, h, w), got shape {tuple(latents.shape)}")
        if prompt_embeds.ndim != 3 or prompt_embeds.shape[0] != latents.shape[0]:
            raise ValueError(
                f"prompt_embeds must be (b, l, d) with b = {latents.shape[0]}, got {tuple(prompt_embeds.shape)}"
            )
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        use_cfg = guidance_scale != 1.0
        if use_cfg and negative_prompt_embeds is None:
            raise ValueError("negative_prompt_embeds is required when guidance_scale != 1")
        self.scheduler.set_timesteps(num_inference_steps, device=latents.device)  # type: ignore[operator]
        timesteps: Tensor = self.scheduler.timesteps  # type: ignore[attr-defined]
        step_ratio = self.scheduler.config.num_train_timesteps // num_inference_steps  # type: ignore[attr-defined]
        prediction_type = self.scheduler.config.prediction_type  # type: ignore[attr-defined]

        x = latents
        trajectory = [x]
        ascending = timesteps.flip(0)
        for i, t in enumerate(tqdm(ascending, desc="DDIM inversion", disable=not show_progress)):
            t_int = int(t)
            if use_cfg:
                assert negative_prompt_embeds is not None
                out = self._predict(torch.cat([x, x]), t, torch.cat([negative_prompt_embeds, prompt_embeds]))
                uncond, cond = out.chunk(2)
                out = uncond + guidance_scale * (cond - uncond)
            else:
                out = self._predict(x, t, prompt_embeds)
            alpha_t = self._alpha(t_int).to(x.dtype)
            alpha_prev = self._alpha(t_int - step_ratio).to(x.dtype)
            # x is at noise level t - step_ratio: a v- or x0-prediction is read at x's own level,
            # as diffusers' DDIMInverseScheduler does (for ε the level does not enter).
            eps = to_epsilon(out, x, alpha_prev, prediction_type)
            if self.regularizer.enabled:
                eps = self.regularizer(eps, generator=generator)
            # x is at noise level t - step_ratio; DDIM's update run backwards.
            x0 = (x - (1 - alpha_prev) ** 0.5 * eps) / alpha_prev**0.5
            x = alpha_t**0.5 * x0 + (1 - alpha_t) ** 0.5 * eps
            trajectory.append(x)
            if callback is not None:
                callback(i, t_int, x)
        return InversionOutput(latents=x, trajectory=torch.stack(trajectory), timesteps=timesteps)
