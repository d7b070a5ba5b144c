"""The protocol every captioner follows: images in, one caption per image out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image


@runtime_checkable
class Captioner(Protocol):
    """Anything that turns images into captions (method §1: the source caption).

    Implementations: [`BlipCaptioner`][zerocon.captioning.BlipCaptioner],
    [`ClipRetrievalCaptioner`][zerocon.captioning.ClipRetrievalCaptioner]; a plain function with the same
    signature works wherever a ``Captioner`` is expected.

    Shape:
        No tensors: ``n`` PIL images (any size and mode) → ``list[str]`` of length ``n``.

    Examples:
        >>> class Constant:
        ...     def __call__(self, images):
        ...         return ["a photo" for _ in images]
        >>> isinstance(Constant(), Captioner)
        True
    """

    def __call__(self, images: Sequence[Image.Image]) -> list[str]:
        """Caption each image.

        Args:
            images: PIL images of any mode and size.

        Returns:
            One caption per image, in order.
        """
        ...
