"""Noise regularisation of pix2pix-zero's DDIM inversion: auto-correlation and KL losses."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from zerocon.losses._checks import at_least_float32, check_finite, check_floating

__all__ = [
    "auto_correlation_grad",
    "auto_correlation_loss",
    "kl_divergence_grad",
    "kl_divergence_loss",
    "sample_roll_shift",
]

_VAR_EPS = 1e-7


def _draw_roll_shifts(
    size: int, count: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``count`` roll shifts for a side of ``size``, uniform on ``{1, …, size//2 − 1}``.

    When ``size // 2 <= 1`` every shift is 1 and nothing is drawn. Otherwise one
    ``torch.randint`` call draws all ``count`` shifts on the generator's device (or
    on ``device`` with torch's default generator when ``generator`` is ``None``).
    """
    high = size // 2
    if high <= 1:
        return torch.ones(count, dtype=torch.long, device=device)
    draw_device = generator.device if generator is not None else device
    shifts = torch.randint(1, high, (count,), generator=generator, device=draw_device)
    return shifts.to(device)


def sample_roll_shift(size: int, generator: torch.Generator | None = None) -> int:
    """Draw one roll shift ``δ`` for a map side of ``size``: uniform on ``[1, size/2)``, never 0.

    Concretely ``δ ∈ {1, …, ⌊size/2⌋ − 1}``, or ``δ = 1`` when ``⌊size/2⌋ ≤ 1`` (then
    nothing is drawn). pix2pix-zero draws from ``[0, size/2)``; a shift of 0 turns
    the auto-correlation term into ``mean(ε²)²``, which is why 0 is excluded here.

    Args:
        size: the side of the map (>= 1).
        generator: source of randomness; ``None`` uses torch's default CPU generator.

    Returns:
        The shift, a Python ``int``.

    Raises:
        ValueError: if ``size`` is not an integer >= 1.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> 1 <= sample_roll_shift(64, g) < 32
        True
        >>> sample_roll_shift(3)
        1
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    device = generator.device if generator is not None else torch.device("cpu")
    return int(_draw_roll_shifts(size, 1, generator, device).item())


def _roll_per_row(maps: Tensor, shifts: Tensor, dim: int) -> Tensor:
    """``torch.roll(maps[r], shifts[r], dim)`` for every row ``r`` of ``(m, h, w)`` maps."""
    length = maps.shape[dim]
    positions = torch.arange(length, device=maps.device)
    source = (positions.unsqueeze(0) - shifts.unsqueeze(1)) % length  # (m, length)
    index = source[:, :, None] if dim == 1 else source[:, None, :]
    return torch.gather(maps, dim, index.expand_as(maps))


def _check_pyramid_input(noise: Tensor, min_size: int) -> None:
    check_floating(noise, "noise")
    if noise.ndim != 4:
        raise ValueError(f"noise must have shape (b, c, h, w), got {tuple(noise.shape)}")
    if noise.numel() == 0:
        raise ValueError(f"noise must be non-empty, got shape {tuple(noise.shape)}")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")


def auto_correlation_loss(
    noise: Float[Tensor, "b c h w"],
    generator: torch.Generator | None = None,
    min_size: int = 8,
) -> Float[Tensor, ""]:
    """Pyramid auto-correlation penalty of pix2pix-zero (docs/method.md §2).

    Every ``(b, c)`` map is treated on its own. At each pyramid level, one shift
    ``δ`` per map is drawn as in [`sample_roll_shift`][zerocon.losses.sample_roll_shift] from the level's side
    ``s = min(h, w)`` (all ``b·c`` shifts of a level in one ``torch.randint`` call,
    in row-major ``(b, c)`` order), and the map adds
    ``mean(ε · roll(ε, δ, H))² + mean(ε · roll(ε, δ, W))²``. Then, if ``s > min_size``,
    the maps are 2×2 average-pooled and the next level follows; otherwise the pyramid
    stops (a 64×64 map gives levels 64, 32, 16, 8). The result is the **sum** over
    maps and levels (pix2pix-zero sums over channels; here also over the batch).
    Half-precision inputs are computed in float32.

    Args:
        noise: the noise prediction ``ε``.
        generator: source of randomness for the shifts, used on its own device; ``None``
            uses torch's default generator of ``noise``'s device.
        min_size: the pyramid stops at the first level whose side is ``<= min_size``.

    Shape:
        - noise: ``(b, c, h, w)``.
        - output: scalar.

    Returns:
        The loss (0 for an uncorrelated map in expectation, larger when neighbouring
        values are correlated).

    Raises:
        ValueError: if ``noise`` is not a 4-D floating tensor with non-empty maps, or
            ``min_size < 1``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> white = torch.randn(1, 4, 64, 64, generator=g)
        >>> smooth = torch.ones(1, 4, 64, 64)
        >>> bool(auto_correlation_loss(white, g) < auto_correlation_loss(smooth, g))
        True
    """
    _check_pyramid_input(noise, min_size)
    check_finite(noise, "noise")

    maps = rearrange(at_least_float32(noise), "b c h w -> (b c) h w")
    total = maps.new_zeros(())
    while True:
        side = min(maps.shape[1], maps.shape[2])
        shifts = _draw_roll_shifts(side, maps.shape[0], generator, maps.device)
        along_h = (maps * _roll_per_row(maps, shifts, dim=1)).mean(dim=(1, 2))
        along_w = (maps * _roll_per_row(maps, shifts, dim=2)).mean(dim=(1, 2))
        total = total + along_h.pow(2).sum() + along_w.pow(2).sum()
        if side <= min_size:
            break
        maps = F.avg_pool2d(maps.unsqueeze(1), kernel_size=2).squeeze(1)
    return total


def _unpool_into(grad: Tensor, shape: tuple[int, int]) -> Tensor:
    """The gradient through ``avg_pool2d(kernel 2)``: each coarse value spread over its 2×2 block
    (divided by 4); rows and columns the pooling dropped (odd sides) get 0."""
    h, w = shape
    fine = F.interpolate(grad.unsqueeze(1), scale_factor=2.0, mode="nearest").squeeze(1) * 0.25
    if fine.shape[1:] == (h, w):
        return fine
    return F.pad(fine, (0, w - fine.shape[2], 0, h - fine.shape[1]))


def auto_correlation_grad(
    noise: Float[Tensor, "b c h w"],
    generator: torch.Generator | None = None,
    min_size: int = 8,
) -> Float[Tensor, "b c h w"]:
    """The gradient of [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss] in closed form, without autograd.

    With ``a = mean(m · roll(m, δ))`` over a map of ``N`` values, ``∂a²/∂m = 2a/N ·
    (roll(m, δ) + roll(m, −δ))``; the gradient of a pooled level reaches the finer one by
    spreading each value over its 2×2 block, divided by 4. The shifts are drawn exactly as
    [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss] draws them, so the same generator state gives the same
    gradient as autograd on that loss (up to rounding).

    Args:
        noise: the noise prediction ``ε``.
        generator: source of randomness for the shifts (as in [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss]).
        min_size: as in [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss].

    Shape:
        - noise: ``(b, c, h, w)``; output: the same shape and dtype.

    Raises:
        ValueError: as [`auto_correlation_loss`][zerocon.losses.auto_correlation_loss].

    Examples:
        >>> x = torch.randn(1, 2, 16, 16, requires_grad=True)
        >>> (auto,) = torch.autograd.grad(auto_correlation_loss(x, torch.Generator().manual_seed(0)), x)
        >>> closed = auto_correlation_grad(x.detach(), torch.Generator().manual_seed(0))
        >>> torch.allclose(auto, closed, atol=1e-7)
        True
    """
    _check_pyramid_input(noise, min_size)
    b, c, h, w = noise.shape
    maps = at_least_float32(noise.detach()).reshape(b * c, h, w)
    return pyramid_grad(maps, generator, min_size).reshape(b, c, h, w).to(noise.dtype)


def pyramid_grad(maps: Tensor, generator: torch.Generator | None, min_size: int = 8) -> Tensor:
    """[`auto_correlation_grad`][zerocon.losses.auto_correlation_grad] of ``(M, h, w)`` floating maps, without input checks.

    For loops that call it many times on inputs they have checked once (the
    [`NoiseRegularizer`][zerocon.inversion.NoiseRegularizer]): at latent sizes the time is the number of
    tensor operations, so this path keeps to a handful per pyramid level.

    Shape:
        - maps: ``(M, h, w)``; output: the same.
    """
    rows = maps.shape[0]
    grads: list[tuple[Tensor, tuple[int, int]]] = []
    current = maps
    while True:
        h, w = current.shape[1], current.shape[2]
        side, count = min(h, w), h * w
        shifts = _draw_roll_shifts(side, rows, generator, current.device)
        flat = current.reshape(rows, count)
        index = _roll_indices(h, w, shifts)
        rolled = torch.gather(flat, 1, index).view(rows, 2, 2, count)
        # a_d = mean(m · roll(m, δ, d)); ∂a_d²/∂m = 2·a_d/N · (roll(m, δ) + roll(m, −δ)).
        value = (flat.unsqueeze(1) * rolled[:, :, 0]).sum(dim=2).mul_(2.0 / count**2)
        grads.append(((rolled * value.view(rows, 2, 1, 1)).sum(dim=(1, 2)).view(rows, h, w), (h, w)))
        if side <= min_size:
            break
        current = F.avg_pool2d(current.unsqueeze(1), kernel_size=2).squeeze(1)
    total = grads[-1][0]
    for grad, finer in reversed(grads[:-1]):
        total = grad + _unpool_into(total, finer)
    return total


#: Maps with at most this many values look their roll indices up in a cached table (the table
#: holds ``min(h, w)/2 · 4·h·w`` indices: 0.5 MB at 32 × 32, 4 MB at 64 × 64); larger maps build
#: the indices of the drawn shifts on the fly, where the few extra operations do not matter.
_TABLE_LIMIT = 64 * 64


def _roll_indices(height: int, width: int, shifts: Tensor) -> Tensor:
    """``(M, 4·h·w)`` flat gather indices of the four rolls ``±δ`` of each of ``M`` maps."""
    if height * width <= _TABLE_LIMIT:
        return torch.index_select(_roll_table(height, width, shifts.device), 0, shifts)
    return _roll_index_rows(height, width, shifts)


def _roll_index_rows(height: int, width: int, shifts: Tensor) -> Tensor:
    """Row ``r``: the flat indices of the four rolls by ``shifts[r]`` (see ``_roll_table``)."""
    device = shifts.device
    i = torch.arange(height, device=device).view(1, 1, height, 1)
    j = torch.arange(width, device=device).view(1, 1, 1, width)
    signed = (shifts.view(-1, 1) * torch.tensor([-1, 1], device=device)).view(-1, 2, 1, 1)
    along_h = ((i + signed) % height) * width + j
    along_w = i * width + (j + signed) % width
    return torch.cat([along_h, along_w], dim=1).reshape(len(shifts), 4 * height * width)


@functools.lru_cache(maxsize=8)
def _roll_table(height: int, width: int, device: torch.device) -> Tensor:
    """Row ``δ``: flat gather indices of the four rolls ``±δ`` along each axis of an ``h×w`` map.

    ``roll(m, δ)[i] = m[i − δ]`` and ``roll(m, −δ)[i] = m[i + δ]``; entries are ordered
    (height +δ, height −δ, width +δ, width −δ). Shape ``(max(2, min(h, w)//2), 4·h·w)``,
    covering every shift ``_draw_roll_shifts`` can draw.
    """
    return _roll_index_rows(height, width, torch.arange(max(2, min(height, width) // 2), device=device))


def kl_divergence_grad(noise: Float[Tensor, "..."]) -> Float[Tensor, "..."]:
    """The gradient of [`kl_divergence_loss`][zerocon.losses.kl_divergence_loss] in closed form, without autograd.

    With ``μ`` the mean, ``v`` the unbiased variance and ``N`` the count:
    ``∂L/∂x = (1 − 1/(v + 1e−7)) · 2(x − μ)/(N − 1) + 2μ/N``.

    Shape:
        - noise: ``(*)``; output: the same shape and dtype.

    Raises:
        ValueError: as [`kl_divergence_loss`][zerocon.losses.kl_divergence_loss].

    Examples:
        >>> x = torch.randn(2, 8, 8, requires_grad=True)
        >>> (auto,) = torch.autograd.grad(kl_divergence_loss(x), x)
        >>> torch.allclose(auto, kl_divergence_grad(x.detach()), atol=1e-7)
        True
    """
    check_floating(noise, "noise")
    if noise.numel() < 2:
        raise ValueError(f"noise needs at least 2 elements for a variance, got {noise.numel()}")
    values = at_least_float32(noise.detach())
    n = values.numel()
    mean = values.mean()
    var = values.var()
    grad = (1 - 1 / (var + _VAR_EPS)) * 2 * (values - mean) / (n - 1) + 2 * mean / n
    return grad.to(noise.dtype)


def kl_divergence_loss(noise: Float[Tensor, "..."]) -> Float[Tensor, ""]:
    """KL-style penalty pulling ``noise`` towards N(0, 1) (pix2pix-zero).

    ``var + mean² − 1 − log(var + 1e-7)`` with the mean and the (unbiased) variance
    taken over the whole tensor. It is 0 exactly at mean 0, variance 1 (up to the
    1e-7), and grows as the statistics move away. Half-precision inputs are computed
    in float32.

    Args:
        noise: any floating tensor with at least two elements.

    Shape:
        - noise: ``(*)``.
        - output: scalar.

    Returns:
        The loss.

    Raises:
        ValueError: if ``noise`` is not a finite floating tensor with at least two elements.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> abs(float(kl_divergence_loss(torch.randn(4, 64, 64, generator=g)))) < 1e-3
        True
    """
    check_floating(noise, "noise")
    if noise.numel() < 2:
        raise ValueError(f"noise needs at least 2 elements for a variance, got {noise.numel()}")
    check_finite(noise, "noise")
    values = at_least_float32(noise)
    var = values.var()
    mean = values.mean()
    return var + mean.pow(2) - 1 - torch.log(var + _VAR_EPS)
