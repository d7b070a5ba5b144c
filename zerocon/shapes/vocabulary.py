"""Words and sentence banks of the shapes world (for the tokenizer and edit directions)."""

from __future__ import annotations

import re

from zerocon.shapes.palette import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    PATTERNS,
    SHAPES,
    all_captions,
    parse_caption,
)

#: Sentence templates for edit-direction banks; ``{}`` is replaced by a word of the world.
SENTENCE_TEMPLATES: tuple[str, ...] = (
    "a {}",
    "a photo of a {}",
    "a picture of a {}",
    "an image of a {}",
    "a drawing of a {}",
    "a {} shape",
    "a small {}",
    "a large {}",
    "a {} object",
    "the {}",
)


def world_words() -> list[str]:
    """Every word used by the world's captions and templates (sorted, unique).

    Examples:
        >>> words = world_words()
        >>> words[:4], "circle" in words
        (['a', 'an', 'background', 'black'], True)
    """
    words: set[str] = set()
    for sentence in [*all_captions(), *(t.format("") for t in SENTENCE_TEMPLATES)]:
        words.update(w for w in re.findall(r"[a-z]+", sentence.lower()))
    words.update(OBJECT_COLORS, SHAPES, BACKGROUND_COLORS, PATTERNS)
    return sorted(words)


def sentence_bank(word: str, include_templates: bool = False) -> list[str]:
    """Sentences of the world that describe ``word``: every caption with it (plus the templates).

    A caption describes ``plain`` when its background has no pattern word ("a red circle on a
    white background"), so a pattern edit such as ``striped -> plain`` has a bank on both sides.

    Captions only is the default: with the embedded text encoder, which was trained on captions,
    a caption-only direction lands closer to the target caption's embedding than one whose banks
    also hold the templates (``benchmarks/direction_banks.py`` measures both).

    Args:
        word: a colour, shape, background colour or pattern of the world.
        include_templates: also add ``SENTENCE_TEMPLATES`` filled with ``word``.

    Raises:
        ValueError: if ``word`` is not a colour, shape, background colour or pattern of the world.

    Examples:
        >>> bank = sentence_bank("red")
        >>> len(bank), bank[0]
        (36, 'a red circle on a white background')
        >>> sentence_bank("plain")[1]
        'a red circle on a black background'
        >>> sentence_bank("red", include_templates=True)[-1]
        'the red'
    """
    word = word.strip().lower()
    known = {*OBJECT_COLORS, *SHAPES, *BACKGROUND_COLORS, *PATTERNS}
    if word not in known:
        raise ValueError(f"{word!r} is not a word of the shapes world; known: {sorted(known)}")
    captions = [c for c in all_captions() if word in parse_caption(c)]
    if include_templates:
        return captions + [t.format(word) for t in SENTENCE_TEMPLATES]
    return captions
