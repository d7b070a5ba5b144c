"""Background textures of the shapes world: two-tone stripes, checkers and dots.

The pattern's name is captioned; its period, orientation and phase are not. They are the
structure an edit has to keep and no caption describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from zerocon.shapes.palette import PATTERNS

#: Period range of the textures, in pixels (one full repeat: a light and a dark band).
PERIOD_RANGE: Final[tuple[float, float]] = (10.0, 16.0)

#: Orientations (degrees) the sampler draws from. Stripes repeat every 180°, the checker and dot
#: lattices every 90°: stripes get eight angles 22.5° apart, lattices the four distinct ones.
ORIENTATION_STEP: Final[float] = 22.5
ORIENTATIONS: Final[dict[str, tuple[float, ...]]] = {
    "plain": (0.0,),
    "striped": tuple(ORIENTATION_STEP * i for i in range(8)),
    "checkered": tuple(ORIENTATION_STEP * i for i in range(4)),
    "dotted": tuple(ORIENTATION_STEP * i for i in range(4)),
}

#: Dot radius as a share of the period: the dots cover π·0.28² ≈ 25% of the background.
DOT_RADIUS: Final[float] = 0.28


def orientation_period(pattern: str) -> float:
    """The angle (degrees) after which a pattern looks the same: 180 for stripes, else 90.

    Examples:
        >>> orientation_period("striped"), orientation_period("dotted")
        (180.0, 90.0)
    """
    return 180.0 if pattern == "striped" else 90.0


@dataclass(frozen=True)
class Texture:
    """The hidden parameters of a background pattern.

    Args:
        pattern: one of ``PATTERNS``.
        period: one repeat of the pattern along its axis, in pixels (ignored for ``plain``).
        orientation: degrees; the direction in which stripes alternate (x right, y down), or
            the first axis of the checker/dot lattice.
        phase: offsets along the two axes, in periods, each in ``[0, 1)``.

    Shape:
        No arrays: [`coverage`][zerocon.shapes.Texture.coverage] turns it into a ``(size, size)`` float map.

    Examples:
        >>> Texture("striped", period=12.0, orientation=45.0, phase=(0.25, 0.0)).pattern
        'striped'
        >>> float(Texture.plain().coverage(8).max())
        0.0
    """

    pattern: str = "plain"
    period: float = 0.0
    orientation: float = 0.0
    phase: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def plain(cls) -> Texture:
        return cls()

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r}; known: {list(PATTERNS)}")
        if self.pattern != "plain" and not self.period > 0:
            raise ValueError(f"a {self.pattern} texture needs a positive period, got {self.period}")

    def coverage(self, size: int, supersample: int = 4) -> np.ndarray:
        """Share of each pixel covered by the pattern's second tone, antialiased.

        Shape:
            - output: ``(size, size)`` float32 in ``[0, 1]``.

        Examples:
            >>> cover = Texture("checkered", period=16.0).coverage(64)
            >>> cover.shape, round(float(cover.mean()), 2)
            ((64, 64), 0.5)
        """
        if self.pattern == "plain":
            return np.zeros((size, size), dtype=np.float32)
        n = size * supersample
        coords = (np.arange(n, dtype=np.float32) + 0.5) / supersample
        yy, xx = np.meshgrid(coords, coords, indexing="ij")
        angle = np.deg2rad(self.orientation)
        a = (xx * np.cos(angle) + yy * np.sin(angle)) / self.period + self.phase[0]
        b = (-xx * np.sin(angle) + yy * np.cos(angle)) / self.period + self.phase[1]
        if self.pattern == "striped":
            on = np.mod(a, 1.0) < 0.5
        elif self.pattern == "checkered":
            on = (np.mod(a, 1.0) < 0.5) ^ (np.mod(b, 1.0) < 0.5)
        else:  # dotted: a dot at every lattice point
            da, db = np.mod(a, 1.0) - 0.5, np.mod(b, 1.0) - 0.5
            on = da * da + db * db < DOT_RADIUS**2
        fine = on.astype(np.float32).reshape(size, supersample, size, supersample)
        return fine.mean(axis=(1, 3))
