"""Words and sentence banks of the shapes world (for the tokenizer and edit directions)."""

from __future__ import annotations

import re

from zerocon.shapes.palette import BACKGROUND_COLORS, OBJECT_COLORS, SHAPES, all_captions

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

    Example:
        >>> words = world_words()
        >>> words[:4], "circle" in words
        (['a', 'an', 'background', 'black'], True)
    """
    words: set[str] = set()
    for sentence in [*all_captions(), *(t.format("") for t in SENTENCE_TEMPLATES)]:
        words.update(w for w in re.findall(r"[a-z]+", sentence.lower()))
    words.update(OBJECT_COLORS, SHAPES, BACKGROUND_COLORS)
    return sorted(words)


def sentence_bank(word: str, include_templates: bool = False) -> list[str]:
    """Sentences of the world that contain ``word``: every caption with it (plus the templates).

    Captions only is the default: with the embedded text encoder, which was trained on captions,
    the caption-only direction ``c + Δc`` lands about twice as close to the target caption's
    embedding as one whose banks also hold the templates (relative error 0.17–0.29 vs 0.40–0.45
    on red→green, yellow→red, circle→square, white→black; ``benchmarks/direction_banks.py``).

    Args:
        word: a colour, shape or background of the world.
        include_templates: also add ``SENTENCE_TEMPLATES`` filled with ``word``.

    Raises:
        ValueError: if ``word`` is not a colour, shape or background of the world.

    Example:
        >>> bank = sentence_bank("red")
        >>> len(bank), bank[0]
        (9, 'a red circle on a white background')
        >>> sentence_bank("red", include_templates=True)[-1]
        'the red'
    """
    word = word.strip().lower()
    if word not in {*OBJECT_COLORS, *SHAPES, *BACKGROUND_COLORS}:
        raise ValueError(
            f"{word!r} is not a word of the shapes world; known: "
            f"{sorted({*OBJECT_COLORS, *SHAPES, *BACKGROUND_COLORS})}"
        )
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    captions = [c for c in all_captions() if pattern.search(c)]
    if include_templates:
        return captions + [t.format(word) for t in SENTENCE_TEMPLATES]
    return captions
