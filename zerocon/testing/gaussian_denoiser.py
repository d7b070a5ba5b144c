"""An exact noise predictor for Gaussian data: a "UNet" whose DDIM ODE is known in closed form."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from jaxtyping import Float, Shaped
from torch import Tensor, nn


class GaussianDenoiser(nn.Module):
    """Optimal ε-prediction when the clean latents are ``N(0, data_variance·I)``.

    ``ε(x_t, t) = √(1−ᾱ_t)·x_t / (ᾱ_t·σ² + 1 − ᾱ_t)``. It is smooth in ``x_t`` and ``t``, so
    DDIM inversion followed by DDIM sampling must return to the start (the error shrinks with
    the step count): a reference to test inversion and samplers against. Called like a
    ``UNet2DConditionModel`` (``model(x, t, encoder_hidden_states).sample``); the text
    embeddings are ignored.

    Args:
        alphas_cumprod: the scheduler's ``ᾱ`` table, ``(num_train_timesteps,)``.
        data_variance: σ² of the clean latents (default 1.0).

    Shape:
        - sample: ``(B, C, H, W)``; timestep: an int or 0-d tensor; encoder_hidden_states: ignored.
        - output: an object whose ``.sample`` is ε, ``(B, C, H, W)``.

    Examples:
        >>> import torch
        >>> from diffusers import DDIMScheduler
        >>> model = GaussianDenoiser(DDIMScheduler().alphas_cumprod)
        >>> model(torch.zeros(1, 4, 8, 8), 10, None).sample.shape
        torch.Size([1, 4, 8, 8])
    """

    def __init__(self, alphas_cumprod: Float[Tensor, " n"], data_variance: float = 1.0) -> None:
        super().__init__()
        self.alphas_cumprod: Tensor
        self.register_buffer("alphas_cumprod", alphas_cumprod.detach().clone().float())
        self.data_variance = data_variance

    def forward(self, sample: Float[Tensor, "b c h w"], timestep: int | Shaped[Tensor, "*t"], encoder_hidden_states: Any = None, **_: Any) -> SimpleNamespace:
        a = self.alphas_cumprod[int(timestep)].to(sample.dtype)
        eps = (1 - a).sqrt() * sample / (a * self.data_variance + 1 - a)
        return SimpleNamespace(sample=eps)
