"""Measures of the artefacts a user sees at once in a shapes-world edit.

Each one reads the edited image against the source's ground truth:

- [`object_shift`][zerocon.shapes.artefact_measures.object_shift]: how far the object moved (pixels);
- [`area_ratio`][zerocon.shapes.artefact_measures.area_ratio]: how much it grew or shrank;
- [`old_background_ring_share`][zerocon.shapes.artefact_measures.old_background_ring_share]:
  for background edits, how much of a ring around the object still shows the old background
  (the "block of old background" artefact);
- [`target_colour_share`][zerocon.shapes.artefact_measures.target_colour_share]: for colour
  edits, the share of the object's pixels that read as the target colour (a partial, blotchy
  recolour or a wrong hue scores low).
"""

from __future__ import annotations

import math

import numpy as np

from zerocon.shapes.checker import FOREGROUND_THRESHOLD, background_distance
from zerocon.shapes.masks import dilate
from zerocon.shapes.palette import BACKGROUND_COLORS, OBJECT_COLORS, PATTERN_TONES

#: The ring around the object: from ``RING_GAP`` to ``RING_GAP + RING_WIDTH`` pixels outside
#: its source outline (the gap skips the VAE's blurred edge).
RING_GAP = 2
RING_WIDTH = 6


def _centre(mask: np.ndarray, box: bool) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    if box:
        return np.array([(ys.min() + ys.max()) / 2.0, (xs.min() + xs.max()) / 2.0])
    return np.array([ys.mean(), xs.mean()])


def _box_area(mask: np.ndarray) -> int:
    ys, xs = np.nonzero(mask)
    return int((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


def object_shift(source_mask: np.ndarray, edited_mask: np.ndarray, box: bool = False) -> float:
    """Distance in pixels between the object's centre before and after the edit.

    Args:
        source_mask: the source object's pixels.
        edited_mask: the object the checker reads in the edited image.
        box: use the bounding boxes' centres (for shape edits, whose outline and so whose
            centroid is meant to change) instead of the centroids.

    Shape:
        source_mask, edited_mask: ``(H, W)`` bool.

    Returns:
        The distance; ``inf`` when either mask is empty (no object: as far off as can be).

    Examples:
        >>> a = np.zeros((16, 16), bool); a[2:6, 2:6] = True
        >>> object_shift(a, np.roll(a, 3, axis=1)), object_shift(a, np.zeros_like(a))
        (3.0, inf)
    """
    if not source_mask.any() or not edited_mask.any():
        return math.inf
    return float(np.linalg.norm(_centre(edited_mask, box) - _centre(source_mask, box)))


def area_ratio(source_mask: np.ndarray, edited_mask: np.ndarray, box: bool = False) -> float:
    """The edited object's area over the source's (bounding-box areas with ``box``).

    Shape:
        source_mask, edited_mask: ``(H, W)`` bool.

    Returns:
        The ratio (1.0: same size); 0.0 when the edit has no object, NaN when the source has none.

    Examples:
        >>> a = np.zeros((16, 16), bool); a[2:6, 2:6] = True
        >>> b = np.zeros((16, 16), bool); b[2:10, 2:6] = True
        >>> area_ratio(a, b), area_ratio(a, np.zeros_like(a))
        (2.0, 0.0)
    """
    if not source_mask.any():
        return math.nan
    if not edited_mask.any():
        return 0.0
    if box:
        return _box_area(edited_mask) / _box_area(source_mask)
    return float(edited_mask.sum() / source_mask.sum())


def ring(source_mask: np.ndarray, gap: int = RING_GAP, width: int = RING_WIDTH) -> np.ndarray:
    """The ring of pixels ``gap`` to ``gap + width`` pixels outside the object's outline.

    Shape:
        source_mask: ``(H, W)`` bool; output: ``(H, W)`` bool.

    Examples:
        >>> a = np.zeros((9, 9), bool); a[4, 4] = True
        >>> int(ring(a, gap=0, width=1).sum())
        4
    """
    return dilate(source_mask, gap + width) & ~dilate(source_mask, gap)


def old_background_ring_share(
    image: np.ndarray, source_mask: np.ndarray, old_background: str, new_background: str
) -> float:
    """The share of the ring around the object that still reads as the old background colour.

    A ring pixel reads as a background colour when its RGB distance to that colour's two-tone
    segment (plain tone and pattern tone) is the smaller of the two; pixels near neither (the
    object, a smear) count as not old.

    Args:
        image: the edited image.
        source_mask: the source object's pixels (the ring is drawn around them).
        old_background: the source's background colour word.
        new_background: the target's.

    Shape:
        image: ``(H, W, 3)`` uint8; source_mask: ``(H, W)`` bool.

    Returns:
        The share in ``[0, 1]`` (0: the new background reaches the object); NaN for an empty ring.

    Examples:
        >>> from zerocon.shapes import ShapeSpec, render
        >>> src = render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 10.0))
        >>> old_background_ring_share(src.image, src.mask, "white", "black")
        1.0
        >>> new = render(ShapeSpec("red", "circle", "black", (32.0, 32.0), 10.0))
        >>> old_background_ring_share(new.image, src.mask, "white", "black")
        0.0
    """
    band = ring(source_mask)
    if not band.any():
        return math.nan
    pixels = np.asarray(image, dtype=np.float32)[band]
    old, new = background_distance(pixels, old_background), background_distance(pixels, new_background)
    return float(((old < new) & (old <= FOREGROUND_THRESHOLD)).mean())


def target_colour_share(image: np.ndarray, source_mask: np.ndarray, target_colour: str, background: str) -> float:
    """The share of the object's pixels whose colour reads as ``target_colour``.

    Each pixel of the source object (shrunk by 1 px, leaving the VAE's blurred edge out) is
    given the nearest of the four object colours and the background's two tones; the share is
    the fraction given ``target_colour``. A flat, complete recolour scores 1; an old rim, a
    blotchy inside or a wrong hue lower.

    Args:
        image: the edited image.
        source_mask: the source object's pixels.
        target_colour: the colour word the edit asks for.
        background: the image's background colour word.

    Shape:
        image: ``(H, W, 3)`` uint8; source_mask: ``(H, W)`` bool.

    Returns:
        The share in ``[0, 1]``; NaN when the shrunk object is empty.

    Examples:
        >>> from zerocon.shapes import ShapeSpec, render
        >>> src = render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 10.0))
        >>> target_colour_share(src.image, src.mask, "red", "white"), target_colour_share(src.image, src.mask, "blue", "white")
        (1.0, 0.0)
    """
    inner = ~dilate(~source_mask, 1)
    if not inner.any():
        return math.nan
    names = [*OBJECT_COLORS, "background", "background-tone"]
    palette = np.asarray([*OBJECT_COLORS.values(), BACKGROUND_COLORS[background], PATTERN_TONES[background]],
                         dtype=np.float32)
    pixels = np.asarray(image, dtype=np.float32)[inner]
    nearest = np.linalg.norm(pixels[:, None, :] - palette[None], axis=-1).argmin(axis=1)
    return float((nearest == names.index(target_colour)).mean())
