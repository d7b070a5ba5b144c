"""Edit metrics with exact ground truth: did the edit happen, and what did it keep?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from zerocon.shapes.checker import ShapeReading, read_shape
from zerocon.shapes.masks import dilate
from zerocon.shapes.palette import parse_caption
from zerocon.shapes.render import RenderedShape
from zerocon.shapes.texture import ORIENTATION_STEP, Texture, orientation_period


@dataclass(frozen=True)
class EditMetrics:
    """Metrics of one edit of a rendered source image.

    Attributes:
        edit_correct: the checker reads exactly the target caption's colour, shape, background
            colour and pattern.
        color_correct / shape_correct / background_correct / pattern_correct: each attribute
            alone.
        texture_kept: when source and target share a non-plain pattern, whether the edit kept
            the source texture's orientation (within half an orientation step) and period
            (within 10%); ``None`` otherwise.
        structure_iou: IoU of the edited object's mask with the source object's mask.
        background_psnr: PSNR (dB) between source and edit on pixels that are background in both
            (the union of both masks, dilated by 2 px, excluded).
        checker_confidence: the checker's confidence on the edited image.
    """

    edit_correct: bool
    color_correct: bool
    shape_correct: bool
    background_correct: bool
    pattern_correct: bool
    texture_kept: bool | None
    structure_iou: float
    background_psnr: float
    checker_confidence: float

    def as_dict(self) -> dict[str, float | bool | None]:
        return asdict(self)


def _texture_kept(texture: Texture, target_pattern: str, reading: ShapeReading) -> bool | None:
    if texture.pattern == "plain" or texture.pattern != target_pattern:
        return None
    if reading.pattern != texture.pattern:
        return False
    period = orientation_period(texture.pattern)
    turn = abs((reading.orientation - texture.orientation + period / 2) % period - period / 2)
    return bool(turn < ORIENTATION_STEP / 2 and abs(reading.period - texture.period) <= 0.1 * texture.period)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 images (optionally over ``mask`` pixels only); ``inf`` if equal."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        if not mask.any():
            return float("nan")
        diff = diff[mask]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def edit_metrics(
    source: RenderedShape,
    edited: np.ndarray | Image.Image,
    target_caption: str,
    reading: ShapeReading | None = None,
) -> EditMetrics:
    """Score ``edited`` (an edit of ``source``) against ``target_caption`` with the analytic checker.

    Args:
        source: the rendered source with its ground truth.
        edited: the edited image.
        target_caption: the caption the edit should match.
        reading: the checker's reading of ``edited`` when the caller already has it.

    Raises:
        ValueError: if ``target_caption`` is not a caption of the world, or sizes differ.
    """
    target = parse_caption(target_caption)
    image = np.asarray(edited.convert("RGB") if isinstance(edited, Image.Image) else edited)
    if image.shape != source.image.shape:
        raise ValueError(f"edited image shape {image.shape} != source shape {source.image.shape}")
    if reading is None:
        reading = read_shape(image)
    union = dilate(source.mask | reading.mask, 2)
    inter = float((source.mask & reading.mask).sum())
    iou = inter / max(float((source.mask | reading.mask).sum()), 1.0)
    ok = (
        reading.color == target.color,
        reading.shape == target.shape,
        reading.background == target.background,
        reading.pattern == target.pattern,
    )
    return EditMetrics(
        edit_correct=all(ok),
        color_correct=ok[0],
        shape_correct=ok[1],
        background_correct=ok[2],
        pattern_correct=ok[3],
        texture_kept=_texture_kept(source.spec.texture, target.pattern, reading),
        structure_iou=iou,
        background_psnr=psnr(source.image, image, ~union),
        checker_confidence=reading.confidence,
    )
