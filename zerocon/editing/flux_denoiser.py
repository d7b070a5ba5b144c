"""``FluxDenoiser``: FLUX's transformer behind the model seam (packed 2×2 latent patches, velocity)."""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

from zerocon.direction.packed_conditioning import split_pooled
from zerocon.editing.denoiser import batched_timesteps


def pack_latents(latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b n c4"]:
    """FLUX's tokens: each 2×2 patch of latent pixels as one token of ``4·C`` features (diffusers' order).

    Examples:
        >>> x = torch.arange(2 * 4 * 4.).reshape(1, 2, 4, 4)
        >>> torch.equal(unpack_latents(pack_latents(x), 4, 4), x)
        True
    """
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: Float[Tensor, "b n c4"], height: int, width: int) -> Float[Tensor, "b c h w"]:
    """The inverse of [`pack_latents`][zerocon.editing.flux_denoiser.pack_latents] for an ``height × width`` latent."""
    b, _, channels = tokens.shape
    x = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels // 4, height, width)


class FluxDenoiser:
    """A diffusers ``FluxTransformer2DModel`` as a [`Denoiser`][zerocon.editing.Denoiser].

    Latents ``(B, C, h, w)`` are packed into 2×2-patch tokens with their position ids, the
    conditioning [`FluxTextEncoder`][zerocon.direction.FluxTextEncoder] packs is split into T5
    tokens and CLIP's pooled vector, the scheduler's timestep (``σ·1000``) is passed as ``σ``,
    and FLUX-dev's distilled guidance is passed as the transformer's ``guidance`` embedding (no
    CFG rows: run it with ``guidance_scale=1``). The velocity comes back unpacked. Every joint
    layer, double and single, is cross-attention for the loop; FLUX has no separate
    self-attention layers, so feature terms have no tap.

    Args:
        transformer: the transformer.
        pooled_dim: the pooled vector's width in the packed row.
        guidance: FLUX-dev's embedded guidance scale (ignored by a transformer without
            ``guidance_embeds``, such as schnell).

    Shape:
        ``(B, C, h, w)`` in and out with even ``h`` and ``w``; conditioning ``(B, L + 1, D)``.

    Raises:
        ValueError: for a latent with an odd side.

    Examples:
        >>> from zerocon.testing import tiny_flux_transformer
        >>> denoiser = FluxDenoiser(tiny_flux_transformer(), pooled_dim=32)
        >>> with torch.no_grad():
        ...     denoiser(torch.randn(1, 4, 8, 8), torch.tensor(500.0), torch.randn(1, 9, 32)).shape
        torch.Size([1, 4, 8, 8])
    """

    prediction_type = "flow"

    def __init__(self, transformer: nn.Module, pooled_dim: int, guidance: float = 3.5) -> None:
        self.model, self.pooled_dim, self.guidance = transformer, int(pooled_dim), float(guidance)

    def __call__(
        self, sample: Float[Tensor, "b c h w"], timestep: Shaped[Tensor, "*t"] | int | float,
        conditioning: Float[Tensor, "b l d"],
    ) -> Float[Tensor, "b c h w"]:
        b, _, h, w = sample.shape
        if h % 2 or w % 2:
            raise ValueError(f"FLUX packs 2x2 latent patches: the latent's sides must be even, got {h}x{w}")
        tokens, pooled = split_pooled(conditioning, self.pooled_dim)
        ids = torch.zeros(h // 2, w // 2, 3, device=sample.device, dtype=sample.dtype)
        ids[..., 1] += torch.arange(h // 2, device=sample.device, dtype=sample.dtype)[:, None]
        ids[..., 2] += torch.arange(w // 2, device=sample.device, dtype=sample.dtype)[None, :]
        steps = batched_timesteps(timestep, b, sample.device, sample.dtype) / 1000
        config: Any = getattr(self.model, "config", None)
        guidance = (torch.full((b,), self.guidance, device=sample.device, dtype=sample.dtype)
                    if getattr(config, "guidance_embeds", False) else None)
        out: Any = self.model(hidden_states=pack_latents(sample), encoder_hidden_states=tokens,
                              pooled_projections=pooled, timestep=steps, img_ids=ids.reshape(-1, 3),
                              txt_ids=torch.zeros(tokens.shape[1], 3, device=sample.device, dtype=sample.dtype),
                              guidance=guidance)
        return unpack_latents(out.sample, h, w)

    def layer_defaults(self) -> dict[str, str]:
        """Every joint layer as cross-attention; no feature taps (a pattern that selects nothing)."""
        return {
            "cross_attention_layers": r"^(single_)?transformer_blocks\.\d+\.attn$",
            "patch_nce_layers": r"^$",
            "injection_layers": r"^$",
        }

    def scheduler_kwargs(self, scheduler: Any, latent_shape: tuple[int, ...]) -> dict[str, Any]:
        """FLUX's dynamic shift: ``mu`` from the number of image tokens, as diffusers' ``FluxPipeline`` computes it."""
        config = scheduler.config
        if not config.get("use_dynamic_shifting", False):
            return {}
        tokens = (latent_shape[-2] // 2) * (latent_shape[-1] // 2)
        base, top = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
        low, high = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
        slope = (high - low) / (top - base)
        return {"mu": tokens * slope + low - slope * base}

    def __repr__(self) -> str:
        return f"FluxDenoiser({type(self.model).__name__})"
