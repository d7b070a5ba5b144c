"""Analytic checker: reads a (generated) shapes-world image and says what is in it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from zerocon.shapes.masks import dilate
from zerocon.shapes.palette import BACKGROUND_COLORS, OBJECT_COLORS, PATTERN_TONES, SHAPES
from zerocon.shapes.texture_reader import read_texture, tone_position

#: Min RGB distance from the background's tones for a pixel to count as object.
FOREGROUND_THRESHOLD = 60.0


@dataclass(frozen=True)
class ShapeReading:
    """What the checker read from one image.

    Shape:
        mask: ``(h, w)`` bool — the object's pixels (largest connected component).

    ``*_confidence`` are margins in ``[0, 1]``: 0 means a tie with the runner-up.
    ``color`` and ``shape`` are ``"none"`` when no object was found. ``pattern``,
    ``orientation`` (degrees) and ``period`` (pixels) describe the background's texture as
    ``read_texture`` reads it.

    Examples:
        >>> from zerocon.shapes import ShapeSpec, render
        >>> reading = read_shape(render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 12.0)).image)
        >>> reading.color, reading.shape, reading.background, reading.pattern, reading.found_object
        ('red', 'circle', 'white', 'plain', True)
    """

    background: str
    color: str
    shape: str
    mask: np.ndarray
    background_confidence: float
    color_confidence: float
    shape_confidence: float
    pattern: str = "plain"
    orientation: float = 0.0
    period: float = 0.0
    pattern_confidence: float = 1.0

    @property
    def confidence(self) -> float:
        """The weakest of the four confidences."""
        return min(
            self.background_confidence, self.color_confidence, self.shape_confidence, self.pattern_confidence
        )

    @property
    def found_object(self) -> bool:
        return bool(self.mask.any())


def background_distance(pixels: np.ndarray, background: str) -> np.ndarray:
    """RGB distance of each pixel to the segment between a background colour's two tones
    (its plain tone and its pattern tone).

    Shape:
        pixels ``(..., 3)`` float; output ``(...)``.

    Examples:
        >>> background_distance(np.array([[222.0, 222.0, 222.0]]), "white").tolist()
        [0.0]
    """
    base = np.asarray(BACKGROUND_COLORS[background], dtype=np.float32)
    axis = np.asarray(PATTERN_TONES[background], dtype=np.float32) - base
    t = tone_position(pixels, background)
    return np.linalg.norm(pixels - base - t[..., None] * axis, axis=-1)


def _read_background(border: np.ndarray) -> tuple[str, float]:
    """The background colour whose tone segment lies nearest the border's pixels (median)."""
    names = list(BACKGROUND_COLORS)
    dist = np.asarray([np.median(background_distance(border, n)) for n in names])
    order = np.argsort(dist)
    best, second = float(dist[order[0]]), float(dist[order[1]])
    margin = 1.0 - best / second if second > 0 else 0.0
    return names[int(order[0])], float(np.clip(margin, 0.0, 1.0))


def _nearest(color: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> tuple[str, float]:
    names = list(palette)
    dist = np.linalg.norm(np.asarray([palette[n] for n in names], dtype=np.float32) - color, axis=1)
    order = np.argsort(dist)
    best, second = float(dist[order[0]]), float(dist[order[1]]) if len(order) > 1 else np.inf
    margin = 1.0 - best / second if second > 0 else 0.0
    return names[int(order[0])], float(np.clip(margin, 0.0, 1.0))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    best_label, best_size, current = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    queue.append((ny, nx))
        if size > best_size:
            best_label, best_size = current, size
    return labels == best_label if best_size else np.zeros_like(mask)


def _ideal_shapes(height: int, width: int) -> dict[str, np.ndarray]:
    """Ideal masks of every shape fitted to a ``height × width`` bounding box."""
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height  # 0..1 top to bottom
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return {
        "square": np.ones((height, width), dtype=bool),
        "circle": (xx - 0.5) ** 2 + (yy - 0.5) ** 2 <= 0.25,
        "triangle": np.abs(xx - 0.5) <= yy / 2,
    }


def read_shape(image: np.ndarray | Image.Image) -> ShapeReading:
    """Read background colour, object mask, colour and shape of a shapes-world image.

    Background colour = the palette entry whose two tones lie nearest the pixels of the 2-pixel
    border; object = largest connected region farther than ``FOREGROUND_THRESHOLD`` from those
    tones; object colour = nearest palette entry to the mean of its core pixels; shape = the
    ideal shape with the best IoU against the mask inside its bounding box; pattern, orientation
    and period = ``read_texture`` on the background outside
    the object (dilated by 2 px).

    Args:
        image: ``(h, w, 3)`` uint8 array or an RGB PIL image.

    Shape:
        - image: ``(H, W, 3)`` uint8 (or a PIL image of size ``W × H``).
        - output: a [`ShapeReading`][zerocon.shapes.ShapeReading] with ``mask`` ``(H, W)`` bool.

    Raises:
        ValueError: if the image is not ``(h, w, 3)``.

    Examples:
        >>> from zerocon.shapes import ShapeSpec, render
        >>> image = render(ShapeSpec("blue", "square", "black", (20.0, 40.0), 10.0)).to_pil()
        >>> reading = read_shape(image)
        >>> reading.color, reading.shape, reading.background, reading.mask.shape
        ('blue', 'square', 'black', (64, 64))
    """
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) image, got shape {arr.shape}")
    pixels = arr.astype(np.float32)
    border = np.concatenate(
        [pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3), pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)]
    )
    background, bg_conf = _read_background(border)
    distance = background_distance(pixels, background)
    mask = _largest_component(distance > FOREGROUND_THRESHOLD)
    texture = read_texture(pixels, background, ~dilate(mask, 2))
    found = (texture.pattern, texture.orientation, texture.period, texture.confidence)
    if mask.sum() < 4:
        return ShapeReading(background, "none", "none", mask, bg_conf, 0.0, 0.0, *found)
    core = mask & (distance >= np.quantile(distance[mask], 0.5))
    color, color_conf = _nearest(pixels[core].mean(axis=0), OBJECT_COLORS)
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    ious = {}
    for name, ideal in _ideal_shapes(*crop.shape).items():
        ious[name] = float((crop & ideal).sum() / max((crop | ideal).sum(), 1))
    ranked = sorted(SHAPES, key=lambda n: ious[n], reverse=True)
    shape_conf = ious[ranked[0]] - ious[ranked[1]]
    shape_margin = float(np.clip(shape_conf * 4, 0, 1))
    return ShapeReading(background, color, ranked[0], mask, bg_conf, color_conf, shape_margin, *found)
