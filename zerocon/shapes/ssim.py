"""Structural similarity (SSIM) maps of uint8 images, averaged over a mask if asked."""

from __future__ import annotations

import numpy as np

#: The usual constants: K1 = 0.01, K2 = 0.03 of the 255 range; an 11-tap Gaussian of σ = 1.5.
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _gaussian(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable filter with reflected borders, so the map keeps the image's size."""
    radius = len(kernel) // 2
    padded = np.pad(image, ((radius, radius), (radius, radius)) + ((0, 0),) * (image.ndim - 2), mode="reflect")
    rows = sum(kernel[i] * padded[i : i + image.shape[0]] for i in range(len(kernel)))
    return sum(kernel[j] * rows[:, j : j + image.shape[1]] for j in range(len(kernel)))


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of two images, averaged over colour channels.

    Args:
        a: a uint8 (or 0–255 float) image.
        b: another of the same shape.
        sigma: the Gaussian window's standard deviation (radius ``3σ``, rounded up).

    Shape:
        - a, b: ``(H, W)`` or ``(H, W, C)``.
        - output: ``(H, W)`` float64, 1 where the images agree.

    Raises:
        ValueError: when the shapes differ or are not 2-D/3-D.

    Examples:
        >>> img = (np.arange(64 * 64 * 3) % 251).reshape(64, 64, 3).astype(np.uint8)
        >>> float(ssim_map(img, img).min())
        1.0
    """
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {a.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    kernel = _gaussian(sigma, int(np.ceil(3 * sigma)))
    mu_x, mu_y = _blur(x, kernel), _blur(y, kernel)
    var_x = _blur(x * x, kernel) - mu_x**2
    var_y = _blur(y * y, kernel) - mu_y**2
    cov = _blur(x * y, kernel) - mu_x * mu_y
    value = ((2 * mu_x * mu_y + _C1) * (2 * cov + _C2)) / ((mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2))
    return value.mean(-1) if value.ndim == 3 else value


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM over ``mask`` pixels (all pixels when ``None``); NaN for an empty mask.

    The windows still see the pixels around the mask, so a texture shifted by half a period
    scores low even where each pixel's colour is one of the right two tones.

    Shape:
        - a, b: ``(H, W, C)`` or ``(H, W)``; mask: ``(H, W)`` bool.

    Examples:
        >>> img = np.zeros((32, 32, 3), np.uint8); img[:, ::8] = 255
        >>> shifted = np.roll(img, 4, axis=1)
        >>> masked_ssim(img, img), masked_ssim(img, shifted) < 0.5
        (1.0, True)
    """
    value = ssim_map(a, b)
    if mask is None:
        return float(value.mean())
    if mask.shape != value.shape:
        raise ValueError(f"mask shape {mask.shape} != image shape {value.shape}")
    return float(value[mask].mean()) if mask.any() else float("nan")
