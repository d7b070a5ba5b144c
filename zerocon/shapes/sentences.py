"""A sentence source backed by the shapes world's own sentence banks."""

from __future__ import annotations

from zerocon.shapes.vocabulary import sentence_bank


class ShapesWorldSentences:
    """A [`SentenceSource`][zerocon.direction.SentenceSource] for the embedded shapes model.

    ``sentences(word)`` is [`sentence_bank`][zerocon.shapes.sentence_bank]: every world caption containing
    the word (captions only; see its ``include_templates``). It is the default sentence source
    of the pipeline when it runs the embedded model.

    Raises:
        ValueError: (from ``sentences``) if the word is not a colour, shape or background of
            the world.

    Shape:
        No tensors: ``sentences(word)`` returns a ``list[str]``.

    Examples:
        >>> ShapesWorldSentences().sentences("red")[0]
        'a red circle on a white background'
    """

    def sentences(self, word: str) -> list[str]:
        """The shapes world's sentences about ``word``.

        Args:
            word: a colour, shape or background word.

        Returns:
            The sentences.

        Raises:
            ValueError: if the word is not one of the world's.
        """
        return sentence_bank(word)

    def __repr__(self) -> str:
        return "ShapesWorldSentences()"
