"""Edit masks: PIE-Bench's run-length encoding, or a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Shaped
from PIL import Image
from torch import Tensor


def encode_rle_mask(mask: Shaped[Tensor, "..."] | np.ndarray) -> list[int]:
    """Encode a mask (non-zero: edited) as PIE-Bench's ``start, length`` pairs, row-major.

    The inverse of [`decode_rle_mask`][zerocon.metrics.decode_rle_mask] with ``border=False``; for writing datasets in
    PIE-Bench's layout.

    Shape:
        mask: ``(H, W)`` (or ``(1, H, W)``).

    Examples:
        >>> encode_rle_mask(np.array([[0, 1, 1], [1, 0, 0]]))
        [1, 3]
    """
    flat = (np.asarray(mask) > 0).ravel()
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flat, [False]]).astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    return [int(v) for pair in zip(starts, stops - starts, strict=True) for v in pair]


def decode_rle_mask(encoded: Sequence[int], height: int = 512, width: int = 512, border: bool = True) -> Float[Tensor, "1 h w"]:
    """Decode PIE-Bench's mask encoding into a ``(1, H, W)`` float mask (1: the edited region).

    The encoding is a flat list of ``start, length`` pairs over the image's pixels in row-major
    order: each pair marks ``length`` pixels from index ``start`` as edited (runs are cut at the
    image's end). PIE-Bench also counts the outermost row and column of pixels as edited, to be
    lenient with annotations at the border; ``border=False`` leaves them as encoded.

    Args:
        encoded: the ``start, length`` pairs, flattened.
        height: the image height the encoding refers to (PIE-Bench: 512).
        width: the image width (PIE-Bench: 512).
        border: mark the outermost pixels as edited, as PIE-Bench does.

    Shape:
        output: ``(1, H, W)`` of 0.0 and 1.0.

    Raises:
        ValueError: for an odd number of values, negative entries or a start past the image.

    Examples:
        >>> decode_rle_mask([5, 2], 3, 4, border=False)[0]
        tensor([[0., 0., 0., 0.],
                [0., 1., 1., 0.],
                [0., 0., 0., 0.]])
    """
    values = [int(v) for v in encoded]
    if len(values) % 2:
        raise ValueError(f"a run-length mask needs start, length pairs; got {len(values)} values")
    total = height * width
    flat = np.zeros(total, dtype=np.float32)
    for start, length in zip(values[::2], values[1::2], strict=True):
        if start < 0 or length < 0:
            raise ValueError(f"run ({start}, {length}) has a negative entry")
        if start >= total:
            raise ValueError(f"run ({start}, {length}) starts past the {height}x{width} image")
        flat[start : min(start + length, total)] = 1.0
    mask = flat.reshape(height, width)
    if border:
        mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 1.0
    return torch.from_numpy(mask)[None]


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> Float[Tensor, "1 h w"]:
    """Read a PNG mask (any mode; non-zero pixels are the edited region) as ``(1, H, W)``.

    Args:
        path: the file.
        size: ``(height, width)`` to resize to (nearest neighbour), e.g. the images' size.

    Shape:
        output: ``(1, H, W)`` of 0.0 and 1.0.

    Raises:
        FileNotFoundError: naming a missing file.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
        >>> Image.fromarray(np.eye(4, dtype=np.uint8) * 255).save(path)
        >>> load_mask(path).sum().item()
        4.0
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {str(path)!r} does not exist")
    with Image.open(path) as handle:
        image = handle.convert("L")
        if size is not None:
            image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
        array = (np.asarray(image) > 0).astype(np.float32)
    return torch.from_numpy(array)[None]
