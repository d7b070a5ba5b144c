"""Float32 latents around a half-precision UNet: the sampler's arithmetic stays in float32."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor


@contextmanager
def float32_latents(unet: Any) -> Iterator[None]:
    """Inside the block, ``unet`` takes float32 latents and returns a float32 ``sample``.

    With a float16 or bfloat16 UNet, the DDIM inversion, the scheduler steps, the guidance move
    and the regulariser would otherwise run in half precision too, where a timestep's
    ``ᾱ`` keeps about three digits (bfloat16) and fifty steps of rounding add up. Inside this
    block the UNet's input is cast to its own dtype on the way in (a differentiable cast, so
    guidance gradients arrive in float32) and its output back to float32 on the way out; the
    text embeddings stay in the UNet's dtype. A float32 UNet is left alone.

    Args:
        unet: a module called as ``unet(sample, timestep, encoder_hidden_states, ...)``
            returning an object with ``sample`` or a tuple.

    Shape:
        No tensors of its own.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> unet = tiny_unet().to(torch.bfloat16)
        >>> with float32_latents(unet):
        ...     out = unet(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 16, 32, dtype=torch.bfloat16)).sample
        >>> out.dtype
        torch.float32
    """
    dtype = getattr(unet, "dtype", torch.float32)
    if dtype == torch.float32:
        yield
        return

    def to_unet(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if args and isinstance(args[0], Tensor) and args[0].is_floating_point():
            args = (args[0].to(dtype), *args[1:])
        elif isinstance(kwargs.get("sample"), Tensor):
            kwargs = {**kwargs, "sample": kwargs["sample"].to(dtype)}
        return args, kwargs

    def to_float32(module: Any, args: Any, kwargs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (output[0].float(), *output[1:])
        if hasattr(output, "sample"):
            output.sample = output.sample.float()
        return output

    handles = [
        unet.register_forward_pre_hook(to_unet, with_kwargs=True),
        unet.register_forward_hook(to_float32, with_kwargs=True),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
