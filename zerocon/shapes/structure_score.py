"""Score one edit of the suite: success, object structure, background fidelity, texture."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from zerocon.shapes.artefact_measures import (
    area_ratio,
    object_shift,
    old_background_ring_share,
    target_colour_share,
)
from zerocon.shapes.checker import read_shape
from zerocon.shapes.edit_suite import EditCase
from zerocon.shapes.masks import box_iou, dilate
from zerocon.shapes.metrics import edit_metrics, psnr
from zerocon.shapes.ssim import masked_ssim

#: Strict success: the object may move at most this many pixels ...
MAX_SHIFT = 4.0
#: ... and a background-colour edit may leave at most this share of old background around it.
MAX_RING_SHARE = 0.1


@dataclass(frozen=True)
class StructureScore:
    """The structure benchmark's measures of one edit.

    Attributes:
        success: the checker reads exactly the target caption, and, when source and target
            share a texture, its orientation and period are kept.
        edit_correct: the checker reads the target caption (each attribute alone in
            ``color_correct``, ``shape_correct``, ``background_correct``, ``pattern_correct``,
            and ``texture_kept``, as in ``EditMetrics``).
        mask_iou: IoU of the edited object's mask with the source's (bounding boxes for
            shape edits, whose outline is meant to change).
        background_psnr / background_ssim: fidelity to the source on pixels that are
            background in both images (union of masks dilated by 2 px excluded); object edits
            only (NaN for background edits, whose background is meant to change). SSIM sees the
            texture's phase: a stripe shifted by half a period scores low.
        object_psnr: fidelity to the source inside the source object (its mask shrunk by 2 px);
            background edits only (NaN for object edits).
        target_psnr: PSNR of the whole image against the exact target render (colour and
            background-colour edits; NaN otherwise).
        object_shift: pixels the object's centre moved (bounding-box centres for shape edits,
            centroids otherwise; ``inf`` when no object is read).
        area_ratio: the object's area over the source's (bounding boxes for shape edits).
        ring_share: background-colour edits: the share of a ring 2–8 px around the object that
            still reads as the old background (NaN for other edits).
        target_colour_share: colour edits: the share of the object's pixels that read as the
            target colour (NaN for other edits).
        strict_success: ``success``, the object within ``MAX_SHIFT`` pixels, and for
            background-colour edits a ring share under ``MAX_RING_SHARE``.

    Shape:
        No arrays: numbers and flags.

    Examples:
        >>> from zerocon.shapes.edit_suite import edit_case
        >>> score = score_edit(edit_case("tuning", "shape", 0), edit_case("tuning", "shape", 0).source.image)
        >>> score.success, score.shape_correct
        (False, False)
    """

    success: bool
    edit_correct: bool
    color_correct: bool
    shape_correct: bool
    background_correct: bool
    pattern_correct: bool
    texture_kept: bool | None
    mask_iou: float
    background_psnr: float
    background_ssim: float
    object_psnr: float
    target_psnr: float
    object_shift: float = math.nan
    area_ratio: float = math.nan
    ring_share: float = math.nan
    target_colour_share: float = math.nan
    strict_success: bool = False

    def as_dict(self) -> dict[str, float | bool | None]:
        return asdict(self)


def score_edit(case: EditCase, edited: np.ndarray | Image.Image) -> StructureScore:
    """Score ``edited`` as the result of ``case``.

    Shape:
        edited: ``(H, W, 3)`` uint8 array or a PIL image of the source's size.

    Raises:
        ValueError: when the image's size differs from the source's.

    Examples:
        >>> from zerocon.shapes.edit_suite import edit_case
        >>> case = edit_case("tuning", "color", 0)
        >>> perfect = score_edit(case, case.expected.image)
        >>> perfect.success, perfect.mask_iou > 0.99, perfect.background_psnr, perfect.target_psnr
        (True, True, inf, inf)
        >>> math.isnan(perfect.object_psnr)
        True
        >>> score_edit(case, case.source.image).success
        False
    """
    image = np.asarray(edited.convert("RGB") if isinstance(edited, Image.Image) else edited)
    reading = read_shape(image)
    metrics = edit_metrics(case.source, image, case.target, reading)
    if case.edit_type == "shape":
        iou = box_iou(case.source.mask, reading.mask)
    else:
        iou = metrics.structure_iou
    bg_psnr = bg_ssim = object_psnr = math.nan
    if case.edit_type in ("color", "shape"):
        bg_psnr = metrics.background_psnr
        bg_ssim = masked_ssim(case.source.image, image, ~dilate(case.source.mask | reading.mask, 2))
    else:
        object_psnr = psnr(case.source.image, image, ~dilate(~case.source.mask, 2))
    target = psnr(case.expected.image, image) if case.expected is not None else math.nan
    success = metrics.edit_correct and metrics.texture_kept is not False
    shape_edit = case.edit_type == "shape"
    shift = object_shift(case.source.mask, reading.mask, box=shape_edit)
    ring_share = target_share = math.nan
    if case.edit_type == "background":
        ring_share = old_background_ring_share(image, case.source.mask, case.source_word, case.target_word)
    if case.edit_type == "color":
        target_share = target_colour_share(image, case.source.mask, case.target_word, case.source.spec.background)
    strict = success and shift <= MAX_SHIFT and not (case.edit_type == "background" and not ring_share < MAX_RING_SHARE)
    return StructureScore(
        success=success,
        edit_correct=metrics.edit_correct,
        color_correct=metrics.color_correct,
        shape_correct=metrics.shape_correct,
        background_correct=metrics.background_correct,
        pattern_correct=metrics.pattern_correct,
        texture_kept=metrics.texture_kept,
        mask_iou=float(iou),
        background_psnr=bg_psnr,
        background_ssim=bg_ssim,
        object_psnr=object_psnr,
        target_psnr=target,
        object_shift=shift,
        area_ratio=area_ratio(case.source.mask, reading.mask, box=shape_edit),
        ring_share=ring_share,
        target_colour_share=target_share,
        strict_success=bool(strict),
    )
