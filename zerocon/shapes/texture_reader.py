"""Reads a background's pattern, orientation and period from an image, analytically.

Each background pixel is placed on the line between its background colour's two tones (0 = base,
1 = pattern tone). The windowed, zero-padded 2-D spectrum of that map has its strongest peak at
the pattern's fundamental frequency. Stripes have one peak direction; checkers and dots have a
second, equally strong peak at 90°. Checkers cover half the background with the second tone and
dots a quarter, which separates the two lattices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from zerocon.shapes.palette import BACKGROUND_COLORS, PATTERN_TONES

#: Fundamental amplitude (of a 0/1 map) below which a background counts as plain. A 50% square
#: wave has 2/π·0.5 ≈ 0.32; the dots ≈ 0.16.
PLAIN_AMPLITUDE: Final[float] = 0.05
#: Second-peak / first-peak ratio above which a pattern counts as a lattice.
LATTICE_RATIO: Final[float] = 0.5
#: Share of pattern-tone pixels that separates dots (~0.25) from checkers (~0.5).
DOT_SHARE: Final[float] = 0.37
_PAD: Final[int] = 256
_PERIODS: Final[tuple[float, float]] = (6.0, 26.0)


@dataclass(frozen=True)
class TextureReading:
    """What [`read_texture`][zerocon.shapes.read_texture] found.

    Attributes:
        pattern: ``plain``, ``striped``, ``checkered`` or ``dotted``.
        orientation: degrees, in ``[0, 180)`` for stripes and ``[0, 90)`` for lattices (0 for
            plain), as ``Texture`` defines it.
        period: pixels (0 for plain).
        amplitude: the fundamental's amplitude; ``second_ratio``: the 90° peak over it.
        tone_share: mean coverage of the background by the pattern tone (0 to 1).
        confidence: margin of the pattern decision in ``[0, 1]``.

    Shape:
        No arrays: scalars only.

    Examples:
        >>> TextureReading("plain", 0.0, 0.0, 0.0, 0.0, 0.0, 1.0).pattern
        'plain'
    """

    pattern: str
    orientation: float
    period: float
    amplitude: float
    second_ratio: float
    tone_share: float
    confidence: float


def tone_position(pixels: np.ndarray, background: str) -> np.ndarray:
    """Where each pixel lies between ``background``'s base tone (0) and pattern tone (1).

    Shape:
        - pixels: ``(..., 3)`` float; output: ``(...)`` float in ``[0, 1]``.

    Examples:
        >>> tone_position(np.array([[245.0, 245, 245], [200, 200, 200]]), "white").tolist()
        [0.0, 1.0]
    """
    base = np.asarray(BACKGROUND_COLORS[background], dtype=np.float32)
    tone = np.asarray(PATTERN_TONES[background], dtype=np.float32)
    axis = tone - base
    return np.clip((pixels - base) @ axis / float(axis @ axis), 0.0, 1.0)


def _peak(power: np.ndarray, keep: np.ndarray) -> tuple[int, int]:
    masked = np.where(keep, power, -1.0)
    iy, ix = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return int(iy), int(ix)


def read_texture(image: np.ndarray, background: str, background_mask: np.ndarray) -> TextureReading:
    """Read the pattern of ``image``'s background.

    Args:
        image: ``(h, w, 3)`` uint8 or float RGB.
        background: the background colour's name (chooses the two tones).
        background_mask: pixels to read (the object and its edge excluded).

    Shape:
        - image: ``(H, W, 3)``; background_mask: ``(H, W)`` bool.

    Raises:
        ValueError: on mismatched shapes or an unknown background.

    Examples:
        >>> from zerocon.shapes.texture import Texture
        >>> cover = Texture("striped", period=12.0, orientation=45.0).coverage(64)[..., None]
        >>> image = 245 + cover * (200 - 245) * np.ones(3)
        >>> reading = read_texture(image, "white", np.ones((64, 64), bool))
        >>> reading.pattern, round(reading.orientation), round(reading.period)
        ('striped', 45, 12)
    """
    if background not in BACKGROUND_COLORS:
        raise ValueError(f"unknown background {background!r}; known: {sorted(BACKGROUND_COLORS)}")
    if image.ndim != 3 or image.shape[2] != 3 or background_mask.shape != image.shape[:2]:
        raise ValueError(f"expected an (h, w, 3) image and an (h, w) mask, got {image.shape}, {background_mask.shape}")
    h, w = background_mask.shape
    if background_mask.sum() < 16:
        return TextureReading("plain", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    position = tone_position(image.astype(np.float32), background)
    share = float(position[background_mask].mean())  # mean coverage: blur and antialiasing keep it
    signal = np.where(background_mask, position - position[background_mask].mean(), 0.0)
    window = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1])
    weight = float((window * background_mask).sum())
    pad = max(_PAD, 1 << (max(h, w) - 1).bit_length())  # never crops a larger image
    spectrum = np.fft.rfft2(signal * window, s=(pad, pad))
    power = np.abs(spectrum) / weight  # amplitude of a unit cosine is 0.5
    fy = np.fft.fftfreq(pad)[:, None]
    fx = np.fft.rfftfreq(pad)[None, :]
    radius = np.hypot(fx, fy)
    keep = (radius >= 1.0 / _PERIODS[1]) & (radius <= 1.0 / _PERIODS[0])
    iy, ix = _peak(power, keep)
    amplitude = float(power[iy, ix])
    kx, ky = float(fx[0, ix]), float(fy[iy, 0])
    angle = float(np.degrees(np.arctan2(ky, kx)) % 180.0)
    period = 1.0 / float(radius[iy, ix])
    # The same frequency turned by 90°: (kx, ky) -> (-ky, kx), folded onto the stored half-plane.
    ox, oy = -ky, kx
    if ox < 0:
        ox, oy = -ox, -oy
    near = keep & (np.hypot(fx - ox, fy - oy) <= 3.0 / pad)
    second = float(power[near].max()) if near.any() else 0.0
    ratio = second / max(amplitude, 1e-12)
    if amplitude < PLAIN_AMPLITUDE:
        return TextureReading("plain", 0.0, 0.0, amplitude, ratio, share, 1.0 - amplitude / PLAIN_AMPLITUDE)
    if ratio < LATTICE_RATIO:
        margin = min(1.0 - ratio / LATTICE_RATIO, amplitude / PLAIN_AMPLITUDE - 1.0)
        return TextureReading("striped", angle, period, amplitude, ratio, share, float(np.clip(margin, 0, 1)))
    lattice_margin = (ratio - LATTICE_RATIO) / (1.0 - LATTICE_RATIO)
    if share >= DOT_SHARE:  # checkers: the fundamentals lie on the diagonals of the lattice
        orientation, pattern, period = (angle + 45.0) % 90.0, "checkered", period * np.sqrt(2.0)
        share_margin = (share - DOT_SHARE) / (0.5 - DOT_SHARE)
    else:
        orientation, pattern = angle % 90.0, "dotted"
        share_margin = (DOT_SHARE - share) / (DOT_SHARE - 0.25)
    margin = min(lattice_margin, share_margin, amplitude / PLAIN_AMPLITUDE - 1.0)
    return TextureReading(pattern, orientation, float(period), amplitude, ratio, share, float(np.clip(margin, 0, 1)))
