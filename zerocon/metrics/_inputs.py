"""Input checks shared by the metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def check_images(edited: Tensor, source: Tensor | None = None) -> None:
    """Raise ``ValueError`` unless the images are float ``(N, 3, H, W)`` in ``[0, 1]`` (and alike)."""
    for name, images in (("edited", edited), ("source", source)):
        if images is None:
            continue
        if not isinstance(images, Tensor) or not images.is_floating_point() or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{name} images must be a float tensor (N, 3, H, W), got {shape}")
        if not bool(torch.isfinite(images).all()):
            raise ValueError(f"{name} images hold NaN or infinite values")
        if bool((images < -1e-6).any()) or bool((images > 1 + 1e-6).any()):
            raise ValueError(f"{name} images must lie in [0, 1] (torchmetrics' convention); got values outside")
    if source is not None and edited.shape != source.shape:
        raise ValueError(f"edited {tuple(edited.shape)} and source {tuple(source.shape)} images differ in shape")


def keep_weights(mask: Tensor | None, images: Tensor) -> Tensor:
    """``(N, 1, H, W)`` weights of the pixels outside the edit mask (1 where nothing was edited).

    ``mask`` marks the edited region (non-zero), as ``(H, W)``, ``(1, H, W)``, ``(N, H, W)`` or
    ``(N, 1, H, W)``; another size is resized (nearest). ``None``: every pixel counts.
    """
    n, _, h, w = images.shape
    if mask is None:
        return torch.ones(n, 1, h, w, device=images.device, dtype=images.dtype)
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be a tensor, got {type(mask).__name__}")
    m = mask.to(device=images.device, dtype=images.dtype)
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[:, None] if m.shape[0] == n and n > 1 else m[None] if m.shape[0] == 1 else m[:, None]
    if m.ndim != 4 or m.shape[1] != 1 or m.shape[0] not in (1, n):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit {n} images")
    if tuple(m.shape[-2:]) != (h, w):
        m = F.interpolate(m, size=(h, w), mode="nearest")
    return (m <= 0).to(images.dtype).expand(n, 1, h, w)
