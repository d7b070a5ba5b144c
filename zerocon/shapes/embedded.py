"""Locate and load the embedded shapes-world model shipped inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPModel, CLIPProcessor

#: Where the trained weights live (``pipeline/`` is a standard diffusers folder, ``clip/`` a CLIPModel).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def embedded_model_path() -> Path:
    """The diffusers folder of the embedded text-to-image model (``StableDiffusionPipeline`` layout).

    Raises:
        FileNotFoundError: if the package was installed without its weights.
    """
    path = WEIGHTS_DIR / "pipeline"
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(
            f"the embedded model is missing at {path}; reinstall zerocon, or train it with "
            "`python -m zerocon.shapes.train --export zerocon/shapes/weights`"
        )
    return path


def embedded_clip_path() -> Path:
    """The folder of the embedded ``CLIPModel`` + ``CLIPProcessor``."""
    path = WEIGHTS_DIR / "clip"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the embedded CLIP model is missing at {path}")
    return path


def load_embedded_pipeline(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **kwargs: Any
) -> StableDiffusionPipeline:
    """``StableDiffusionPipeline.from_pretrained(embedded_model_path())``, offline, on ``device``.

    Example:
        >>> pipe = load_embedded_pipeline()  # doctest: +SKIP
        >>> pipe("a red circle on a white background", height=64, width=64).images[0]  # doctest: +SKIP
    """
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        embedded_model_path(), dtype=dtype, local_files_only=True, **kwargs
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_embedded_clip(device: str | torch.device = "cpu") -> tuple[CLIPModel, CLIPProcessor]:
    """The embedded ``CLIPModel`` (eval mode) and its ``CLIPProcessor``."""
    from transformers import CLIPModel, CLIPProcessor

    path = embedded_clip_path()
    model = CLIPModel.from_pretrained(path, local_files_only=True).eval().to(device)
    processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
    return model, processor
