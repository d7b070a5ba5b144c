"""Shapes-world metrics for the command line, when the ground truth is known."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from zerocon.shapes import RenderedShape, ShapeSpec, parse_caption, read_shape
from zerocon.shapes.metrics import edit_metrics


def source_as_rendered(image: Image.Image) -> RenderedShape | None:
    """Read a shapes-world source image with the analytic checker, as a ``RenderedShape``.

    The checker's reading (object mask, colour, shape, background) stands in for the
    renderer's ground truth; centre and radius are estimated from the mask.

    Args:
        image: the source image.

    Returns:
        The reading, or ``None`` if the checker cannot read the image.
    """
    array = np.asarray(image.convert("RGB"))
    try:
        reading = read_shape(array)
    except ValueError:
        return None
    mask = reading.mask
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    spec = ShapeSpec(
        reading.color,
        reading.shape,
        reading.background,
        (float(xs.mean()), float(ys.mean())),
        float(np.sqrt(mask.sum() / np.pi)),
    )
    return RenderedShape(array, mask, spec)


def metrics_if_known(
    source: RenderedShape | Image.Image, edited: Image.Image, target_prompt: str | None
) -> dict[str, Any] | None:
    """``edit_metrics`` when the target is a shapes-world caption and sizes agree.

    Args:
        source: the rendered source (exact ground truth) or a source image (read by the
            checker).
        edited: the edited image.
        target_prompt: the target prompt.

    Returns:
        The metrics as a dict, or ``None`` when the ground truth is not known.
    """
    if target_prompt is None:
        return None
    try:
        parse_caption(target_prompt)
    except ValueError:
        return None
    rendered = source if isinstance(source, RenderedShape) else source_as_rendered(source)
    if rendered is None or rendered.image.shape[:2] != (edited.size[1], edited.size[0]):
        return None
    return edit_metrics(rendered, edited, target_prompt).as_dict()
