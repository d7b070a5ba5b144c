"""Private helpers shared by the captioners."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from PIL import Image
from torch import nn


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


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter; CPU for a module without parameters."""
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")


def module_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter; float32 if none."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the ``with`` block, then restore its previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
