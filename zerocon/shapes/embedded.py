"""Locate and load the embedded shapes-world model shipped inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPModel, CLIPProcessor

#: Where the trained weights live: ``pipeline/`` is a standard diffusers folder that also carries
#: zerocon's defaults (``zerocon.json``) and the embedded CLIP as ``pipeline/captioner/``.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def embedded_model_path() -> Path:
    """The diffusers folder of the embedded text-to-image model (``StableDiffusionPipeline`` layout).

    Raises:
        FileNotFoundError: if the package was installed without its weights.

    Examples:
        >>> path = embedded_model_path()  # doctest: +SKIP
        >>> (path.name, (path / "model_index.json").is_file())  # doctest: +SKIP
        ('pipeline', True)
    """
    path = WEIGHTS_DIR / "pipeline"
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(
            f"the embedded model is missing at {path}; reinstall zerocon, or train it with "
            "`python -m zerocon.shapes.train --export zerocon/shapes/weights`"
        )
    return path


def embedded_clip_path() -> Path:
    """The folder of the embedded ``CLIPModel`` + ``CLIPProcessor`` (inside the model folder).

    Raises:
        FileNotFoundError: if the package was installed without its weights.

    Examples:
        >>> embedded_clip_path().name  # doctest: +SKIP
        'captioner'
    """
    path = WEIGHTS_DIR / "pipeline" / "captioner"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the embedded CLIP model is missing at {path}")
    return path


def load_embedded_pipeline(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **kwargs: Any
) -> StableDiffusionPipeline:
    """``StableDiffusionPipeline.from_pretrained(embedded_model_path())``, offline, on ``device``.

    Shape:
        The pipeline makes ``64 × 64`` RGB images (PIL, or ``(n, 3, 64, 64)`` tensors with
        ``output_type="pt"``), one per prompt.

    Raises:
        FileNotFoundError: if the package was installed without its weights.

    Examples:
        >>> pipe = load_embedded_pipeline()  # doctest: +SKIP
        >>> image = pipe("a red circle on a white background").images[0]  # doctest: +SKIP
        >>> image.size  # doctest: +SKIP
        (64, 64)
    """
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        embedded_model_path(), dtype=dtype, local_files_only=True, **kwargs
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_embedded_clip(device: str | torch.device = "cpu") -> tuple[CLIPModel, CLIPProcessor]:
    """The embedded ``CLIPModel`` (eval mode) and its ``CLIPProcessor``.

    Shape:
        ``model(**processor(text=..., images=..., ...)).logits_per_image``:
        ``(n_images, n_texts)``.

    Raises:
        FileNotFoundError: if the package was installed without its weights.

    Examples:
        >>> from zerocon.shapes import all_captions, render_random
        >>> image = render_random(torch.Generator().manual_seed(0)).to_pil()
        >>> model, processor = load_embedded_clip()  # doctest: +SKIP
        >>> inputs = processor(text=all_captions(), images=[image], return_tensors="pt",
        ...                    padding=True)  # doctest: +SKIP
        >>> model(**inputs).logits_per_image.shape  # doctest: +SKIP
        torch.Size([1, 144])
    """
    from transformers import AutoTokenizer, CLIPModel, CLIPProcessor

    from zerocon.captioning._utils import pil_image_processor

    path = embedded_clip_path()
    model = CLIPModel.from_pretrained(path, local_files_only=True).eval().to(device)
    image_processor = pil_image_processor("CLIPImageProcessor").from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model, processor
