"""The model seam: what the editing loop calls for a prediction, whatever the network is.

The engine never calls a network directly: it calls a [`Denoiser`][zerocon.editing.Denoiser],
``denoiser(sample, timestep, conditioning) -> prediction``, and hooks attention on
``denoiser.model``. [`UNetDenoiser`][zerocon.editing.UNetDenoiser] serves the UNet families
(SD 1.x, 2.x and XL). For SDXL it unpacks the conditioning rows that
[`DualTextEncoder`][zerocon.direction.DualTextEncoder] packs (tokens, then one row holding the
pooled embedding) and passes the pooled embedding and the time ids to the UNet itself, so
nothing is left installed on the user's UNet.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

from zerocon.direction.packed_conditioning import needs_added_conditioning, unpack_conditioning
from zerocon.editing.model_layers import model_layer_defaults


@runtime_checkable
class Denoiser(Protocol):
    """What the editing loop calls for a prediction.

    Attributes:
        model: the network whose attention layers are recorded and guided (``set_attn_processor``).

    A denoiser may also have ``layer_defaults() -> dict[str, str]``: the family's layer patterns
    (``cross_attention_layers``: the cross-attention maps the guidance and the blend read;
    ``patch_nce_layers``: the self-attention outputs that serve as features;
    ``injection_layers``), used wherever the settings keep the generic defaults. The loop asks
    nothing else of a model family: a transformer whose attention layers are diffusers
    ``Attention`` modules edits through the same loop.

    Shape:
        - sample: ``(B, C, h, w)`` latents; conditioning: ``(B, L, D)`` (SDXL: ``L + 1`` rows).
        - output: ``(B, C, h, w)``.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> isinstance(UNetDenoiser(tiny_unet()), Denoiser)
        True
    """

    model: nn.Module

    def __call__(
        self, sample: Float[Tensor, "b c h w"], timestep: Shaped[Tensor, "*t"] | int,
        conditioning: Float[Tensor, "b l d"],
    ) -> Float[Tensor, "b c h w"]:
        """The network's raw prediction (in its scheduler's ``prediction_type``)."""
        ...


def batched_timesteps(
    timestep: Shaped[Tensor, "*t"] | float, batch: int, device: torch.device, dtype: torch.dtype | None = None
) -> Shaped[Tensor, " b"]:
    """One timestep per row: a scalar repeated ``batch`` times, or the given per-row timesteps.

    Examples:
        >>> batched_timesteps(torch.tensor(500.0), 3, torch.device("cpu")).tolist()
        [500.0, 500.0, 500.0]
    """
    steps = torch.as_tensor(timestep, device=device, dtype=dtype).reshape(-1)
    return steps.expand(batch) if steps.numel() == 1 else steps


class UNetDenoiser:
    """A diffusers ``UNet2DConditionModel`` as a [`Denoiser`][zerocon.editing.Denoiser].

    Args:
        unet: the UNet.
        vae_scale_factor: pixels per latent pixel (SDXL's time ids are in pixels).
        pooled_dim: for an SDXL UNet, the width of the pooled text embedding packed as the last
            conditioning row (``DualTextEncoder.pooled_dim``); ``None`` for SD 1.x / 2.x.

    Shape:
        As [`Denoiser`][zerocon.editing.Denoiser]: ``(B, C, h, w)`` in and out, conditioning
        ``(B, L, D)`` (SDXL: ``(B, L + 1, D)``, the last row the packed pooled embedding).

    Raises:
        ValueError: for an SDXL UNet without ``pooled_dim``, or ``pooled_dim`` for a UNet that
            takes no pooled embedding.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> denoiser = UNetDenoiser(tiny_unet(), vae_scale_factor=2)
        >>> with torch.no_grad():
        ...     denoiser(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 16, 32)).shape
        torch.Size([1, 4, 8, 8])
    """

    def __init__(self, unet: nn.Module, vae_scale_factor: int = 8, pooled_dim: int | None = None) -> None:
        sdxl = needs_added_conditioning(unet)
        if sdxl and pooled_dim is None:
            raise ValueError("an SDXL UNet needs pooled_dim (its conditioning packs the pooled text embedding)")
        if pooled_dim is not None and not sdxl:
            raise ValueError("pooled_dim is for SDXL UNets; this UNet takes no pooled text embedding")
        self.model = unet
        self.vae_scale_factor = int(vae_scale_factor)
        self.pooled_dim = pooled_dim

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def layer_defaults(self) -> dict[str, str]:
        """SDXL's layer patterns (its 64×64 level at 1024 px); none of its own for SD 1.x / 2.x."""
        return model_layer_defaults(self.model)

    def __call__(
        self, sample: Float[Tensor, "b c h w"], timestep: Shaped[Tensor, "*t"] | int,
        conditioning: Float[Tensor, "b l d"],
    ) -> Float[Tensor, "b c h w"]:
        if self.pooled_dim is None:
            return self.model(sample, timestep, conditioning).sample  # type: ignore[no-any-return]
        tokens, added = unpack_conditioning(conditioning, sample, self.vae_scale_factor, self.pooled_dim)
        return self.model(sample, timestep, tokens, added_cond_kwargs=added).sample  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        family = "SDXL" if self.pooled_dim is not None else "SD"
        return f"UNetDenoiser({type(self.model).__name__}, {family})"
