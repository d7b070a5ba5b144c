"""Sentences made by filling a word into fixed photo-caption templates."""

from __future__ import annotations

from collections.abc import Sequence

from zerocon.direction.sentence_text import dedupe

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of the {}.",
    "a photograph of the {}.",
    "a close-up photo of the {}.",
    "a cropped photo of the {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a blurry photo of the {}.",
    "a sharp photo of the {}.",
    "a good photo of the {}.",
    "a low resolution photo of the {}.",
    "a high resolution photo of the {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a centered photo of the {}.",
    "a picture of the {}.",
    "an image showing the {}.",
    "a snapshot of the {}.",
    "a photo of the {} indoors.",
    "a photo of the {} outdoors.",
    "the {} in the photo.",
)
"""Twenty photo-caption templates; ``{}`` stands for the word. Articles are avoided on purpose
(``"the {}"``) so that no template reads wrongly for words starting with a vowel."""

_PLACEHOLDERS = ("{word}", "{}")


class TemplateSentences:
    """A [`SentenceSource`][zerocon.direction.SentenceSource] that fills the word into templates.

    Args:
        templates: strings holding ``{}`` or ``{word}`` where the word goes (every occurrence is
            replaced; other braces are left alone). Defaults to [`DEFAULT_TEMPLATES`][zerocon.direction.DEFAULT_TEMPLATES].

    Shape:
        No tensors: ``sentences(word)`` returns a ``list[str]`` of at most
        ``len(templates)`` sentences (one per distinct filled template).

    Raises:
        ValueError: if no template is given, or one lacks a placeholder.

    Examples:
        >>> TemplateSentences(["a photo of a {word}", "a {} on grass"]).sentences("dog")
        ['a photo of a dog', 'a dog on grass']
    """

    def __init__(self, templates: Sequence[str] = DEFAULT_TEMPLATES) -> None:
        if isinstance(templates, str):
            raise ValueError("templates must be a sequence of strings, not a single string")
        if len(templates) == 0:
            raise ValueError("templates must hold at least one template")
        for template in templates:
            if not any(p in template for p in _PLACEHOLDERS):
                raise ValueError(
                    f"template {template!r} has no placeholder; write '{{}}' or '{{word}}' "
                    "where the word goes"
                )
        self.templates: tuple[str, ...] = tuple(templates)

    def sentences(self, word: str) -> list[str]:
        """Fill ``word`` into every template (duplicates removed, order kept).

        Args:
            word: the word or phrase; surrounding whitespace is stripped.

        Returns:
            One sentence per distinct filled template.

        Raises:
            ValueError: if ``word`` is empty.
        """
        word = word.strip()
        if not word:
            raise ValueError("word must be a non-empty string")
        filled = [
            template.replace("{word}", word).replace("{}", word) for template in self.templates
        ]
        return dedupe(filled)

    def __repr__(self) -> str:
        return f"TemplateSentences({len(self.templates)} templates)"
