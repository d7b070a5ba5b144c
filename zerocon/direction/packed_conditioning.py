"""``PackedConditioning``: an SDXL UNet that accepts the packed conditionings of ``DualTextEncoder``.

A forward pre-hook: when the UNet is called without ``added_cond_kwargs`` (as every zerocon pass
calls it: ``unet(x, t, cond)``), the last row of ``encoder_hidden_states`` is taken as the
pooled text embedding and the ``L`` rows before it as the tokens; ``time_ids`` are computed from
the latent's size as diffusers computes them by default (original size = target size = the
image's, no crop). Calls that pass ``added_cond_kwargs`` themselves are left alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def needs_added_conditioning(unet: nn.Module) -> bool:
    """Whether a UNet expects SDXL's pooled text embedding and time ids (``addition_embed_type="text_time"``).

    Examples:
        >>> from zerocon.testing import tiny_sdxl_unet, tiny_unet
        >>> needs_added_conditioning(tiny_sdxl_unet()), needs_added_conditioning(tiny_unet())
        (True, False)
    """
    config = getattr(unet, "config", None)
    return getattr(config, "addition_embed_type", None) == "text_time"


class PackedConditioning:
    """The pre-hook that unpacks ``(B, L + 1, D)`` conditionings for an SDXL UNet.

    Args:
        vae_scale_factor: pixels per latent pixel (``time_ids`` are in pixels).
        pooled_dim: ``P``, the width of the pooled embedding in the packed row.

    Shape:
        - encoder_hidden_states in: ``(B, L + 1, D)``; out: ``(B, L, D)``.
        - added_cond_kwargs: ``text_embeds`` ``(B, P)``, ``time_ids`` ``(B, 6)``.

    Examples:
        >>> from zerocon.testing import tiny_sdxl_components
        >>> c = tiny_sdxl_components()
        >>> _ = PackedConditioning.attach(c.unet, vae_scale_factor=2, pooled_dim=32)
        >>> with torch.no_grad():
        ...     out = c.unet(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 17, 64)).sample
        >>> out.shape
        torch.Size([1, 4, 8, 8])
    """

    #: The attribute of a UNet that holds its hook (so attaching twice updates, never stacks).
    ATTRIBUTE = "_zerocon_packed_conditioning"

    def __init__(self, vae_scale_factor: int, pooled_dim: int) -> None:
        self.vae_scale_factor = int(vae_scale_factor)
        self.pooled_dim = int(pooled_dim)
        self.handle: Any = None

    @classmethod
    def attach(cls, unet: nn.Module, vae_scale_factor: int, pooled_dim: int) -> PackedConditioning:
        """Register the hook on ``unet`` (or update the one already there); returns it.

        Raises:
            ValueError: for a UNet that takes no added text-time conditioning.
        """
        if not needs_added_conditioning(unet):
            raise ValueError("this UNet takes no pooled text embedding or time ids (not an SDXL UNet)")
        hook = getattr(unet, cls.ATTRIBUTE, None)
        if isinstance(hook, PackedConditioning):
            hook.vae_scale_factor, hook.pooled_dim = int(vae_scale_factor), int(pooled_dim)
            return hook
        hook = cls(vae_scale_factor, pooled_dim)
        hook.handle = unet.register_forward_pre_hook(hook, with_kwargs=True)
        object.__setattr__(unet, cls.ATTRIBUTE, hook)
        return hook

    @classmethod
    def detach(cls, unet: nn.Module) -> None:
        """Remove the hook from ``unet`` if it has one."""
        hook = getattr(unet, cls.ATTRIBUTE, None)
        if isinstance(hook, PackedConditioning):
            hook.handle.remove()
            object.__delattr__(unet, cls.ATTRIBUTE)

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("added_cond_kwargs") is not None:
            return None
        args = list(args)  # type: ignore[assignment]
        sample = args[0] if args else kwargs["sample"]
        positional = len(args) > 2
        packed = args[2] if positional else kwargs["encoder_hidden_states"]
        tokens, added = unpack_conditioning(packed, sample, self.vae_scale_factor, self.pooled_dim)
        if positional:
            args[2] = tokens  # type: ignore[index]
        else:
            kwargs["encoder_hidden_states"] = tokens
        kwargs["added_cond_kwargs"] = added
        return tuple(args), kwargs


def split_pooled(packed: torch.Tensor, pooled_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L + 1, D)`` packed conditionings → the token rows ``(B, L, D)`` and the pooled vector ``(B, P)``.

    The packing of [`DualTextEncoder`][zerocon.direction.DualTextEncoder] and of SD3's and FLUX's
    encoders: the last row holds the pooled vector in its first ``pooled_dim`` features.

    Examples:
        >>> tokens, pooled = split_pooled(torch.zeros(2, 5, 8), 3)
        >>> tuple(tokens.shape), tuple(pooled.shape)
        ((2, 4, 8), (2, 3))
    """
    return packed[:, :-1], packed[:, -1, :pooled_dim]


def unpack_conditioning(
    packed: torch.Tensor, sample: torch.Tensor, vae_scale_factor: int, pooled_dim: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Split ``(B, L + 1, D)`` packed conditionings into SDXL's tokens and ``added_cond_kwargs``.

    The last row holds the pooled text embedding (its first ``pooled_dim`` values); ``time_ids``
    are computed from the latent's size as diffusers computes them by default (original size =
    target size = the image's, no crop).

    Returns:
        ``(tokens (B, L, D), {"text_embeds": (B, P), "time_ids": (B, 6)})``.

    Raises:
        ValueError: for conditionings that are not ``(B, L + 1, D)`` with ``L >= 1``.
    """
    if packed.ndim != 3 or packed.shape[1] < 2:
        raise ValueError(
            f"an SDXL UNet called without added_cond_kwargs needs packed conditionings (B, L + 1, D) "
            f"from DualTextEncoder; got {tuple(packed.shape)}"
        )
    tokens, pooled = split_pooled(packed, pooled_dim)
    height, width = (int(side) * vae_scale_factor for side in sample.shape[-2:])
    time_ids = torch.tensor([height, width, 0, 0, height, width], device=packed.device, dtype=packed.dtype)
    return tokens, {"text_embeds": pooled, "time_ids": time_ids.expand(packed.shape[0], 6)}
