"""The protocol for anything that supplies example sentences about a word."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class SentenceSource(Protocol):
    """Supplies sentences that mention a word; the edit direction averages their embeddings.

    Implementations: [`TemplateSentences`][zerocon.direction.TemplateSentences],
    [`FileSentences`][zerocon.direction.FileSentences],
    [`LanguageModelSentences`][zerocon.direction.LanguageModelSentences].

    Shape:
        No tensors: ``sentences(word)`` maps a ``str`` to a non-empty ``list[str]``.

    Examples:
        >>> class Fixed:
        ...     def sentences(self, word: str) -> list[str]:
        ...         return [f"a photo of a {word}"]
        >>> isinstance(Fixed(), SentenceSource)
        True
    """

    def sentences(self, word: str) -> list[str]:
        """Return at least one sentence about ``word``.

        Args:
            word: the word (or phrase) the sentences must be about.

        Returns:
            A non-empty list of sentences.

        Raises:
            ValueError: if ``word`` is empty or no sentence can be produced.
        """
        ...
