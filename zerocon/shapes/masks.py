"""Binary-mask helpers shared by the checker and the metrics."""

from __future__ import annotations

import numpy as np


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels (4-neighbourhood, repeated).

    Shape:
        - mask: ``(H, W)`` bool; output: ``(H, W)`` bool.

    Examples:
        >>> mask = np.zeros((5, 5), bool); mask[2, 2] = True
        >>> int(dilate(mask, 1).sum()), int(dilate(mask, 2).sum())
        (5, 13)
    """
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the bounding boxes of two masks (0 when either is empty).

    A shape edit changes the outline but should keep where the object is and how big it is:
    the boxes measure exactly that.

    Shape:
        - a, b: ``(H, W)`` bool.

    Examples:
        >>> a = np.zeros((8, 8), bool); a[2:6, 2:6] = True
        >>> b = np.zeros((8, 8), bool); b[2:6, 4:8] = True
        >>> box_iou(a, a), round(box_iou(a, b), 3)
        (1.0, 0.333)
    """
    if not a.any() or not b.any():
        return 0.0

    def box(mask: np.ndarray) -> tuple[int, int, int, int]:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1

    (r0, c0, r1, c1), (s0, d0, s1, d1) = box(a), box(b)
    inter = max(0, min(r1, s1) - max(r0, s0)) * max(0, min(c1, d1) - max(c0, d0))
    union = (r1 - r0) * (c1 - c0) + (s1 - s0) * (d1 - d0) - inter
    return inter / union
