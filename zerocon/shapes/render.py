"""Seeded renderer of the shapes world: one antialiased object on a plain or textured background."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image, ImageDraw

from zerocon.shapes.palette import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    PATTERN_TONES,
    PATTERNS,
    SHAPES,
    caption_for,
)
from zerocon.shapes.texture import ORIENTATIONS, PERIOD_RANGE, Texture

IMAGE_SIZE = 64
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class ShapeSpec:
    """What to draw. ``radius`` is half the object's extent in pixels; centre in pixels.

    Args:
        color: a key of ``OBJECT_COLORS``.
        shape: one of ``SHAPES``.
        background: a key of ``BACKGROUND_COLORS``.
        center: ``(x, y)`` of the object's centre, in pixels.
        radius: half the object's extent, in pixels.
        texture: the background's pattern and its hidden parameters (plain by default).

    Shape:
        No arrays: ``render`` turns it into a ``(size, size, 3)`` uint8 image and a
        ``(size, size)`` bool mask.

    Examples:
        >>> spec = ShapeSpec("red", "circle", "white", center=(32.0, 32.0), radius=12.0)
        >>> spec.caption
        'a red circle on a white background'
        >>> ShapeSpec("red", "circle", "white", (32.0, 32.0), 12.0, Texture("dotted", 12.0)).caption
        'a red circle on a white dotted background'
    """

    color: str
    shape: str
    background: str
    center: tuple[float, float]
    radius: float
    texture: Texture = field(default_factory=Texture)

    @property
    def pattern(self) -> str:
        """The background's pattern name (captioned)."""
        return self.texture.pattern

    @property
    def caption(self) -> str:
        """The world's caption for this spec."""
        return caption_for(self.color, self.shape, self.background, self.texture.pattern)


@dataclass(frozen=True)
class RenderedShape:
    """A rendered image with its ground truth.

    Shape:
        image: ``(size, size, 3)`` uint8; mask: ``(size, size)`` bool (object coverage ≥ 0.5).

    Examples:
        >>> shape = render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 12.0))
        >>> shape.image.shape, shape.mask.shape, shape.caption
        ((64, 64, 3), (64, 64), 'a red circle on a white background')
        >>> shape.to_pil().size
        (64, 64)
    """

    image: np.ndarray
    mask: np.ndarray
    spec: ShapeSpec

    @property
    def caption(self) -> str:
        return self.spec.caption

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.image, mode="RGB")


def _polygon(spec: ShapeSpec, scale: float) -> list[tuple[float, float]] | None:
    cx, cy = spec.center[0] * scale, spec.center[1] * scale
    r = spec.radius * scale
    if spec.shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if spec.shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    return None


def render(spec: ShapeSpec, size: int = IMAGE_SIZE) -> RenderedShape:
    """Draw ``spec`` antialiased (4× supersampling) and return image + exact mask.

    Args:
        spec: what to draw.
        size: the side of the square image, in pixels.

    Shape:
        - image: ``(size, size, 3)`` uint8; mask: ``(size, size)`` bool.

    Raises:
        ValueError: for unknown vocabulary or an object that is not fully inside the frame.

    Examples:
        >>> shape = render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 12.0))
        >>> shape.image[32, 32].tolist(), shape.image[0, 0].tolist()
        ([215, 38, 38], [245, 245, 245])
    """
    if spec.color not in OBJECT_COLORS:
        raise ValueError(f"unknown colour {spec.color!r}; known: {sorted(OBJECT_COLORS)}")
    if spec.shape not in SHAPES:
        raise ValueError(f"unknown shape {spec.shape!r}; known: {list(SHAPES)}")
    if spec.background not in BACKGROUND_COLORS:
        raise ValueError(f"unknown background {spec.background!r}; known: {sorted(BACKGROUND_COLORS)}")
    cx, cy = spec.center
    if min(cx - spec.radius, cy - spec.radius) < 0 or max(cx + spec.radius, cy + spec.radius) > size:
        raise ValueError(f"object does not fit in a {size}x{size} frame: {spec}")
    big = size * _SUPERSAMPLE
    coverage = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(coverage)
    poly = _polygon(spec, _SUPERSAMPLE)
    if poly is None:
        r = spec.radius * _SUPERSAMPLE
        x, y = cx * _SUPERSAMPLE, cy * _SUPERSAMPLE
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    else:
        draw.polygon(poly, fill=255)
    alpha = np.asarray(coverage.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0
    fg = np.asarray(OBJECT_COLORS[spec.color], dtype=np.float32)
    base = np.asarray(BACKGROUND_COLORS[spec.background], dtype=np.float32)
    tone = np.asarray(PATTERN_TONES[spec.background], dtype=np.float32)
    bg = base + spec.texture.coverage(size, _SUPERSAMPLE)[..., None] * (tone - base)
    image = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    return RenderedShape(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8), mask=alpha >= 0.5, spec=spec
    )


def sample_spec(
    generator: torch.Generator,
    size: int = IMAGE_SIZE,
    min_radius: float = 8.0,
    max_radius: float = 16.0,
    color: str | None = None,
    shape: str | None = None,
    background: str | None = None,
    pattern: str | None = None,
) -> ShapeSpec:
    """Draw a random spec (vocabulary, position, size, texture) from ``generator``.

    Fixed fields stay fixed. A texture's period is uniform in ``PERIOD_RANGE``, its orientation
    one of ``ORIENTATIONS[pattern]`` and its phase uniform in ``[0, 1)²``; all drawn from
    ``generator``.

    Shape:
        No arrays: returns a [`ShapeSpec`][zerocon.shapes.ShapeSpec] whose object fits inside ``size × size``.

    Examples:
        >>> spec = sample_spec(torch.Generator().manual_seed(0), shape="square")
        >>> spec.shape, 8.0 <= spec.radius <= 16.0
        ('square', True)
    """

    def pick(options: list[str] | tuple[str, ...]) -> str:
        return options[int(torch.randint(len(options), (1,), generator=generator))]

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    color = color or pick(list(OBJECT_COLORS))
    shape = shape or pick(SHAPES)
    background = background or pick(list(BACKGROUND_COLORS))
    pattern = pattern or pick(PATTERNS)
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; known: {list(PATTERNS)}")
    radius = uniform(min_radius, max_radius)
    margin = radius + 1.0
    center = (uniform(margin, size - margin), uniform(margin, size - margin))
    texture = Texture()
    if pattern != "plain":
        angles = ORIENTATIONS[pattern]
        texture = Texture(
            pattern,
            period=uniform(*PERIOD_RANGE),
            orientation=angles[int(torch.randint(len(angles), (1,), generator=generator))],
            phase=(uniform(0.0, 1.0), uniform(0.0, 1.0)),
        )
    return ShapeSpec(color, shape, background, center, radius, texture)


def render_random(
    generator: torch.Generator,
    size: int = IMAGE_SIZE,
    color: str | None = None,
    shape: str | None = None,
    background: str | None = None,
    pattern: str | None = None,
) -> RenderedShape:
    """``render(sample_spec(generator, ...))``: a random render; given fields stay fixed.

    Shape:
        - image: ``(size, size, 3)`` uint8; mask: ``(size, size)`` bool.

    Examples:
        >>> shape = render_random(torch.Generator().manual_seed(0), color="red")
        >>> shape.spec.color, shape.image.shape
        ('red', (64, 64, 3))
    """
    spec = sample_spec(
        generator, size=size, color=color, shape=shape, background=background, pattern=pattern
    )
    return render(spec, size=size)


def images_to_tensor(images: list[np.ndarray]) -> Float[torch.Tensor, "n 3 h w"]:
    """uint8 ``(h, w, 3)`` images → float ``(n, 3, h, w)`` in [-1, 1].

    Shape:
        - images: ``n`` arrays ``(H, W, 3)`` uint8.
        - output: ``(n, 3, H, W)`` float32.

    Examples:
        >>> images_to_tensor([np.zeros((64, 64, 3), np.uint8)]).shape
        torch.Size([1, 3, 64, 64])
    """
    arr = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def tensor_to_images(tensor: Float[torch.Tensor, "n 3 h w"]) -> list[np.ndarray]:
    """float ``(n, 3, h, w)`` in [-1, 1] → uint8 ``(h, w, 3)`` images.

    Shape:
        - tensor: ``(n, 3, H, W)``, values clamped to ``[-1, 1]``.
        - output: ``n`` arrays ``(H, W, 3)`` uint8.

    Examples:
        >>> images = tensor_to_images(torch.ones(2, 3, 8, 8))
        >>> len(images), images[0].shape, int(images[0].max())
        (2, (8, 8, 3), 255)
    """
    arr = ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return list(arr.permute(0, 2, 3, 1).cpu().numpy())


