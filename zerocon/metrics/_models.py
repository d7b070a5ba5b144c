"""Loading metric models from objects or local folders (never from the hub) and feeding them images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def local_model(model: Any, loader: Any, what: str) -> Any:
    """``model`` itself, or ``loader.from_pretrained(folder, local_files_only=True)`` for a local folder.

    Raises:
        FileNotFoundError: for a path that is not an existing folder (naming it); nothing is
            ever downloaded.
    """
    if isinstance(model, (str, Path)):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{what} folder {str(model)!r} does not exist (metrics load models from local folders only)"
            )
        return loader.from_pretrained(str(folder), local_files_only=True)
    return model


def prepare_pixels(images: Tensor, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``[0, 1]`` images resized (bicubic) to ``size × size`` and normalised for a vision model."""
    resized = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (resized - mean_t) / std_t
