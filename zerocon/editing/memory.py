"""What the guidance backward keeps: frozen UNet weights, optional activation checkpointing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def lean_guidance(unet: Any, checkpointing: bool = False) -> Iterator[None]:
    """Freeze ``unet``'s parameters (and optionally checkpoint its blocks) for the ``with`` block.

    The guidance gradient is taken with respect to the latent only, so the weights need no
    gradient: with ``requires_grad`` off, autograd neither fills ``.grad`` nor keeps the inputs
    that only a weight gradient would need. With ``checkpointing`` the UNet's blocks keep only
    their inputs and recompute the rest during the backward (diffusers' gradient checkpointing,
    which acts only while gradients are enabled, so the no-grad forwards are unchanged). Both
    are restored on exit, also after an error.

    Args:
        unet: an ``nn.Module`` (a diffusers model for ``checkpointing``).
        checkpointing: turn on the model's gradient checkpointing inside the block.

    Shape:
        No tensors.

    Raises:
        ValueError: for ``checkpointing`` on a model that does not support it.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> unet = tiny_unet()
        >>> with lean_guidance(unet, checkpointing=True):
        ...     frozen = not any(p.requires_grad for p in unet.parameters())
        ...     checkpointed = unet.is_gradient_checkpointing
        >>> frozen, checkpointed, all(p.requires_grad for p in unet.parameters()), unet.is_gradient_checkpointing
        (True, True, True, False)
    """
    was_checkpointing = bool(getattr(unet, "is_gradient_checkpointing", False))
    if checkpointing and not getattr(unet, "_supports_gradient_checkpointing", False):
        raise ValueError(f"{type(unet).__name__} does not support gradient checkpointing")
    flags = [(p, p.requires_grad) for p in unet.parameters()]
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        if checkpointing and not was_checkpointing:
            unet.enable_gradient_checkpointing()
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        if checkpointing and not was_checkpointing:
            unet.disable_gradient_checkpointing()
