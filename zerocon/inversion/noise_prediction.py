"""Convert a UNet's output to the noise prediction ε, whatever its ``prediction_type``."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor


def to_epsilon(
    model_output: Float[Tensor, "b c h w"],
    sample: Float[Tensor, "b c h w"],
    alpha_prod: float | Float[Tensor, "*a"],
    prediction_type: str,
) -> Float[Tensor, "b c h w"]:
    """Return ε from an ``epsilon``, ``v_prediction`` or ``sample`` output.

    Args:
        model_output: the UNet output at ``sample``.
        sample: the noisy latent ``x_t``.
        alpha_prod: ``ᾱ_t`` of the scheduler at that timestep.
        prediction_type: the scheduler's ``config.prediction_type``.

    Shape:
        - model_output, sample: ``(B, C, H, W)``; alpha_prod: scalar or broadcastable.
        - output: ``(B, C, H, W)``.

    Raises:
        ValueError: for an unknown ``prediction_type``.

    Examples:
        >>> import torch
        >>> x = torch.randn(1, 4, 8, 8)
        >>> torch.equal(to_epsilon(x, x, 0.5, "epsilon"), x)
        True
    """
    if prediction_type == "epsilon":
        return model_output
    a = alpha_prod
    if prediction_type == "v_prediction":
        return a**0.5 * model_output + (1 - a) ** 0.5 * sample
    if prediction_type == "sample":
        return (sample - a**0.5 * model_output) / (1 - a) ** 0.5
    raise ValueError(
        f"unknown prediction_type {prediction_type!r}; expected 'epsilon', 'v_prediction' or 'sample'"
    )
