"""Small picture helpers shared by the picture-writing callbacks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

# A perceptually ordered dark-to-bright ramp (black, purple, red, orange, yellow, white).
_RAMP = np.array(
    [[0, 0, 0], [80, 18, 123], [190, 45, 70], [245, 125, 20], [250, 220, 60], [255, 255, 255]],
    dtype=np.float32,
)


def image_file_name(prefix: str | Sequence[str], index: int, what: str) -> str:
    """The picture file name of image ``index``.

    ``{prefix}{index:04d}_{what}.png`` for one prefix; ``{prefix[index]}{what}.png`` for one
    prefix per image (the prefix names the image, so its position in the call does not).
    """
    if isinstance(prefix, str):
        return f"{prefix}{index:04d}_{what}.png"
    if index >= len(prefix):
        raise ValueError(f"{len(prefix)} file prefixes but an image with index {index}")
    return f"{prefix[index]}{what}.png"


def heat(values: np.ndarray) -> np.ndarray:
    """Map values in ``[0, 1]`` to RGB uint8 colours (``(h, w)`` → ``(h, w, 3)``)."""
    x = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(x).astype(int).clip(0, len(_RAMP) - 2)
    frac = (x - low)[..., None]
    return (_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).astype(np.uint8)


def labelled_grid(tiles: list[list[Image.Image]], column_labels: list[str], row_labels: list[str]) -> Image.Image:
    """Paste equally sized tiles in rows, with a text label above each column and left of each row."""
    tile_w, tile_h = tiles[0][0].size
    left, top = 64, 14
    columns = max(len(row) for row in tiles)
    canvas = Image.new("RGB", (left + columns * tile_w, top + len(tiles) * tile_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(column_labels):
        draw.text((left + c * tile_w + 2, 1), label[: max(1, tile_w // 6)], fill=(0, 0, 0))
    for r, row in enumerate(tiles):
        draw.text((2, top + r * tile_h + tile_h // 2 - 5), row_labels[r][:10], fill=(0, 0, 0))
        for c, tile in enumerate(row):
            canvas.paste(tile, (left + c * tile_w, top + r * tile_h))
    return canvas


def upscale(image: Image.Image, minimum: int = 96) -> Image.Image:
    """Nearest-neighbour upscale so the shorter side is at least ``minimum`` pixels."""
    factor = max(1, -(-minimum // min(image.size)))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
