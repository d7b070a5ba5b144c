"""``SD3Denoiser``: Stable Diffusion 3's MMDiT behind the model seam (flow matching, velocity form)."""

from __future__ import annotations

from typing import Any

from jaxtyping import Float, Shaped
from torch import Tensor, nn

from zerocon.direction.packed_conditioning import split_pooled
from zerocon.editing.denoiser import batched_timesteps


class SD3Denoiser:
    """A diffusers ``SD3Transformer2DModel`` as a [`Denoiser`][zerocon.editing.Denoiser].

    The conditioning is what [`SD3TextEncoder`][zerocon.direction.SD3TextEncoder] packs: the
    token rows, then one row holding the pooled vector; this adapter splits them into the
    transformer's ``encoder_hidden_states`` and ``pooled_projections``. The transformer predicts
    a velocity (``prediction_type = "flow"``) and takes the scheduler's timestep (``σ·1000``).
    Its joint-attention layers are the cross-attention the loop records (image→text maps,
    recomputed by the attention store); SD3.5's extra self-attention layers (``attn2``) are its
    feature taps.

    Args:
        transformer: the transformer.
        pooled_dim: the width of the pooled vector in the packed row (``SD3TextEncoder.pooled_dim``).

    Shape:
        ``(B, C, h, w)`` in and out; conditioning ``(B, L + 1, D)``.

    Examples:
        >>> import torch
        >>> from zerocon.testing import tiny_sd3_transformer
        >>> denoiser = SD3Denoiser(tiny_sd3_transformer(), pooled_dim=64)
        >>> with torch.no_grad():
        ...     denoiser(torch.randn(1, 4, 8, 8), torch.tensor(500.0), torch.randn(1, 9, 64)).shape
        torch.Size([1, 4, 8, 8])
    """

    prediction_type = "flow"

    def __init__(self, transformer: nn.Module, pooled_dim: int) -> None:
        self.model = transformer
        self.pooled_dim = int(pooled_dim)

    def __call__(
        self, sample: Float[Tensor, "b c h w"], timestep: Shaped[Tensor, "*t"] | int | float,
        conditioning: Float[Tensor, "b l d"],
    ) -> Float[Tensor, "b c h w"]:
        tokens, pooled = split_pooled(conditioning, self.pooled_dim)
        steps = batched_timesteps(timestep, sample.shape[0], sample.device)
        out: Any = self.model(hidden_states=sample, timestep=steps, encoder_hidden_states=tokens,
                              pooled_projections=pooled)
        return out.sample  # type: ignore[no-any-return]

    def layer_defaults(self) -> dict[str, str]:
        """The joint layers as cross-attention; SD3.5's self-attention layers as features and injection."""
        return {
            "cross_attention_layers": r"^transformer_blocks\.\d+\.attn$",
            "patch_nce_layers": r"^transformer_blocks\.\d+\.attn2$",
            "injection_layers": r"^transformer_blocks\.\d+\.attn2$",
        }

    def __repr__(self) -> str:
        return f"SD3Denoiser({type(self.model).__name__})"
