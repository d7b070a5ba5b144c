"""Private input checks and dtype helpers shared by the loss modules."""

from __future__ import annotations

import torch
from torch import Tensor

_REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    """Raise ``ValueError`` if ``reduction`` is not one of ``allowed``."""
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")


def check_temperature(temperature: float) -> None:
    """Raise ``ValueError`` unless ``temperature`` is a finite number > 0."""
    if not (isinstance(temperature, (int, float)) and 0.0 < float(temperature) < float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def check_floating(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_finite(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values")


def at_least_float32(x: Tensor) -> Tensor:
    """Upcast half/bfloat16 to float32; leave float32/float64 untouched."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def reduce(values: Tensor, reduction: str) -> Tensor:
    """Apply a checked ``"mean"``/``"sum"``/``"none"`` reduction over all elements."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
