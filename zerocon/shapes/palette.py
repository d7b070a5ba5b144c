"""The vocabulary of the shapes world: object colours, shapes, background colours and patterns."""

from __future__ import annotations

from typing import Final, NamedTuple

#: Object colours (RGB, 0-255). Chosen far apart from each other and from every background tone.
OBJECT_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "red": (215, 38, 38),
    "green": (34, 160, 60),
    "blue": (40, 70, 215),
    "yellow": (240, 205, 30),
}

#: Background colours (RGB, 0-255): the base tone of each background (a plain background is
#: this colour alone).
BACKGROUND_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
}

#: The second tone of each background colour, used by the patterned backgrounds. Every pair is
#: achromatic with a 42–45 level contrast: enough for the VAE to keep and the checker to read,
#: and far (> 100 RGB units) from every object colour.
PATTERN_TONES: Final[dict[str, tuple[int, int, int]]] = {
    "white": (200, 200, 200),
    "black": (60, 60, 60),
    "gray": (170, 170, 170),
}

#: Background patterns. ``plain`` is the original world; the others are drawn in two tones.
PATTERNS: Final[tuple[str, ...]] = ("plain", "striped", "checkered", "dotted")

#: Shapes the renderer can draw.
SHAPES: Final[tuple[str, ...]] = ("circle", "square", "triangle")

CAPTION_TEMPLATE: Final[str] = "a {color} {shape} on a {background} background"


class CaptionParts(NamedTuple):
    """The four captioned attributes of a shapes-world image.

    Shape:
        No arrays: four vocabulary words.

    Examples:
        >>> CaptionParts("red", "circle", "white", "striped").pattern
        'striped'
    """

    color: str
    shape: str
    background: str
    pattern: str


def caption_for(color: str, shape: str, background: str, pattern: str = "plain") -> str:
    """The world's canonical caption; a plain background has no pattern word.

    Examples:
        >>> caption_for("blue", "square", "black")
        'a blue square on a black background'
        >>> caption_for("red", "circle", "white", "striped")
        'a red circle on a white striped background'
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; known: {list(PATTERNS)}")
    ground = background if pattern == "plain" else f"{background} {pattern}"
    return CAPTION_TEMPLATE.format(color=color, shape=shape, background=ground)


def all_captions() -> list[str]:
    """Every caption of the world: colours × shapes × background colours × patterns.

    Examples:
        >>> captions = all_captions()
        >>> len(captions), captions[0], captions[1]
        (144, 'a red circle on a white background', 'a red circle on a white striped background')
    """
    return [
        caption_for(c, s, b, p)
        for c in OBJECT_COLORS
        for s in SHAPES
        for b in BACKGROUND_COLORS
        for p in PATTERNS
    ]


def parse_caption(caption: str) -> CaptionParts:
    """Inverse of [`caption_for`][zerocon.shapes.caption_for].

    Returns:
        ``CaptionParts(color, shape, background, pattern)``; ``pattern`` is ``"plain"`` when the
        caption names none.

    Raises:
        ValueError: if ``caption`` is not one of the world's captions.

    Examples:
        >>> parse_caption("a red circle on a white background")
        CaptionParts(color='red', shape='circle', background='white', pattern='plain')
        >>> parse_caption("a red circle on a white dotted background").pattern
        'dotted'
    """
    words = caption.strip().lower().split()
    pattern = "plain"
    if len(words) == 8 and words[6] in PATTERNS and words[6] != "plain":
        pattern = words.pop(6)
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
    return CaptionParts(words[1], words[2], words[5], pattern)
