"""``DirectionBuilder``: word-pair edit directions for one text encoder, cached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from zerocon.direction import EditDirection, SentenceSource, TemplateSentences

#: One default source, so that directions built without a source share one cache entry.
_DEFAULT_SOURCE = TemplateSentences()


class DirectionBuilder:
    """Builds Δc for ``(source word, target word)`` pairs and caches each pair per source.

    Args:
        text_encoder: the CLIP text encoder the directions live in.
        tokenizer: its tokenizer.

    Shape:
        ``build(...).delta``: ``(1, L, D)``.

    Raises:
        ValueError: (from [`build`][zerocon.editing.DirectionBuilder.build]) for empty words or words the source has no
            sentences for.

    Examples:
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> builder = DirectionBuilder(c.text_encoder, c.tokenizer)
        >>> builder.build([("cat", "dog")]).delta.shape[0]
        1
    """

    def __init__(self, text_encoder: Any, tokenizer: Any) -> None:
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        # (words, id(source)) -> (source, direction); the entry holds the source, so its id
        # cannot be reused by another object while the entry exists.
        self._cache: dict[tuple[str, int], tuple[SentenceSource, EditDirection]] = {}

    def build(
        self, pairs: Sequence[tuple[str, str]], sentence_source: SentenceSource | None = None
    ) -> EditDirection:
        """Δc for word pairs: the sum of ``EditDirection.from_words`` over the pairs.

        Args:
            pairs: ``(source word, target word)`` pairs (both non-empty).
            sentence_source: the sentence source (default: templates).

        Returns:
            The direction.

        Raises:
            ValueError: if a word is empty or the source cannot give sentences for it.
        """
        if not pairs:
            raise ValueError("no word pair to build a direction from")
        source = sentence_source or _DEFAULT_SOURCE
        directions = []
        for src, tgt in pairs:
            if not src.strip() or not tgt.strip():
                raise ValueError(f"cannot build a direction for the word pair {(src, tgt)!r}")
            key = (f"{src}\x00{tgt}", id(source))
            if key not in self._cache:
                try:
                    built = EditDirection.from_words(self.text_encoder, self.tokenizer, src, tgt, source)
                except (ValueError, FileNotFoundError) as error:
                    raise ValueError(f"cannot build the direction {src!r} -> {tgt!r}: {error}") from error
                self._cache[key] = (source, built)
            directions.append(self._cache[key][1])
        if len(directions) == 1:
            return directions[0]
        delta = torch.stack([d.delta for d in directions]).sum(0)
        return EditDirection(
            delta,
            source_word=" + ".join(p[0] for p in pairs),
            target_word=" + ".join(p[1] for p in pairs),
            num_source_sentences=sum(d.num_source_sentences for d in directions),
            num_target_sentences=sum(d.num_target_sentences for d in directions),
            encoder_name=directions[0].encoder_name,
        )
