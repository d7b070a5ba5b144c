"""The vocabulary of the shapes world: object colours, shapes and backgrounds."""

from __future__ import annotations

from typing import Final

#: Object colours (RGB, 0-255). Chosen far apart from each other and from every background.
OBJECT_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "red": (215, 38, 38),
    "green": (34, 160, 60),
    "blue": (40, 70, 215),
    "yellow": (240, 205, 30),
}

#: Plain background colours (RGB, 0-255).
BACKGROUND_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
}

#: Shapes the renderer can draw.
SHAPES: Final[tuple[str, ...]] = ("circle", "square", "triangle")

CAPTION_TEMPLATE: Final[str] = "a {color} {shape} on a {background} background"


def caption_for(color: str, shape: str, background: str) -> str:
    """The world's canonical caption, e.g. ``"a red circle on a white background"``.

    Example:
        >>> caption_for("blue", "square", "black")
        'a blue square on a black background'
    """
    return CAPTION_TEMPLATE.format(color=color, shape=shape, background=background)


def all_captions() -> list[str]:
    """Every caption of the world (``len(OBJECT_COLORS) * len(SHAPES) * len(BACKGROUND_COLORS)``).

    Example:
        >>> captions = all_captions()
        >>> len(captions), captions[0]
        (36, 'a red circle on a white background')
    """
    return [
        caption_for(c, s, b) for c in OBJECT_COLORS for s in SHAPES for b in BACKGROUND_COLORS
    ]


def parse_caption(caption: str) -> tuple[str, str, str]:
    """Inverse of :func:`caption_for`.

    Returns:
        ``(color, shape, background)``.

    Raises:
        ValueError: if ``caption`` is not one of the world's captions.

    Example:
        >>> parse_caption("a red circle on a white background")
        ('red', 'circle', 'white')
    """
    words = caption.strip().lower().split()
    if (
        len(words) != 7
        or words[0] != "a"
        or words[1] not in OBJECT_COLORS
        or words[2] not in SHAPES
        or words[3:5] != ["on", "a"]
        or words[5] not in BACKGROUND_COLORS
        or words[6] != "background"
    ):
        raise ValueError(f"not a shapes-world caption: {caption!r}")
    return words[1], words[2], words[5]
