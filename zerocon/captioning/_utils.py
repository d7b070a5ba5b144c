"""Private helpers shared by the captioners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image


def to_rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Check the inputs are PIL images and convert any non-RGB ones to RGB.

    Args:
        images: the images.

    Returns:
        RGB images (the same objects where already RGB).

    Raises:
        ValueError: if ``images`` is a single image or holds something else than PIL images.
    """
    if isinstance(images, Image.Image):
        raise ValueError("images must be a sequence of PIL images; wrap a single image in a list")
    converted: list[Image.Image] = []
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise ValueError(
                f"images[{index}] is {type(image).__name__}, expected a PIL.Image.Image"
            )
        converted.append(image if image.mode == "RGB" else image.convert("RGB"))
    return converted


def pil_image_processor(name: str) -> Any:
    """The PIL-backed image processor class ``{name}Pil`` where transformers has one, else ``name``.

    transformers 5 defaults to torchvision-backed processors and, without torchvision, prints
    a warning while falling back to the PIL ones; naming the PIL class avoids both.
    """
    import transformers

    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)
