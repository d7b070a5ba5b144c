"""The demo's edits of the shapes world (``zerocon demo``, the serve page's examples)."""

from __future__ import annotations

import torch

from zerocon.shapes.palette import OBJECT_COLORS, SHAPES, caption_for
from zerocon.shapes.render import RenderedShape, render_random


def demo_edits(count: int, seed: int) -> list[tuple[RenderedShape, str]]:
    """The demo's sources and target captions: colour edits, every third a shape edit.

    The sources' backgrounds cycle through striped, plain, checkered and dotted, so most edits
    must keep a texture that no caption describes.

    Args:
        count: how many sources.
        seed: source ``i`` is rendered from ``torch.Generator().manual_seed(seed + i)``.

    Returns:
        ``(source, target caption)`` pairs.

    Examples:
        >>> source, target = demo_edits(1, 0)[0]
        >>> source.caption != target
        True
    """
    colors, edits = list(OBJECT_COLORS), []
    patterns = ("striped", "plain", "checkered", "dotted")
    for i in range(count):
        source = render_random(torch.Generator().manual_seed(seed + i), pattern=patterns[i % len(patterns)])
        spec = source.spec
        if i % 3 == 2:
            shape = SHAPES[(SHAPES.index(spec.shape) + 1) % len(SHAPES)]
            target = caption_for(spec.color, shape, spec.background, spec.pattern)
        else:
            color = colors[(colors.index(spec.color) + 1 + i % 2) % len(colors)]
            target = caption_for(color, spec.shape, spec.background, spec.pattern)
        edits.append((source, target))
    return edits
