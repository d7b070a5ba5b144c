"""Binary-mask helpers shared by the checker and the metrics."""

from __future__ import annotations

import numpy as np


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels (4-neighbourhood, repeated).

    Shape:
        - mask: ``(H, W)`` bool; output: ``(H, W)`` bool.

    Example:
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
