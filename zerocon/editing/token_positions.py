"""Where a prompt's words sit in its token sequence (for per-word attention maps)."""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"[\w'-]+")


def word_token_positions(tokenizer: Any, prompt: str, words: list[str]) -> list[int]:
    """Token positions (in the encoder's padded sequence) of every occurrence of ``words``.

    The prompt is split into words; each word's tokens are found by tokenizing growing
    prefixes, so any tokenizer (CLIP's BPE, a word-level one) gives the right positions,
    including words split into several tokens. Positions count the start token.

    Args:
        tokenizer: a Hugging Face tokenizer.
        prompt: the text, e.g. the source caption.
        words: the words to find (case-insensitive).

    Returns:
        Sorted positions; empty when no word occurs (or all fall past the length limit).

    Examples:
        >>> from zerocon.shapes.word_tokenizer import build_word_tokenizer
        >>> tok = build_word_tokenizer(["a", "red", "circle"])
        >>> word_token_positions(tok, "a red circle", ["red"])
        [2]
        >>> word_token_positions(tok, "a reddish circle", ["reddish"])  # spelt letter by letter
        [2, 3, 4, 5, 6, 7]
    """
    wanted = {w.lower() for w in words}
    found = _WORD.findall(prompt)
    limit = int(getattr(tokenizer, "model_max_length", 77))
    # One start token when the tokenizer adds special tokens (CLIP adds a start and an end).
    start = int(len(tokenizer("").input_ids) > len(tokenizer("", add_special_tokens=False).input_ids))
    positions: list[int] = []
    before = 0
    for index, word in enumerate(found):
        count = len(tokenizer(" ".join(found[: index + 1]), add_special_tokens=False).input_ids)
        if word.lower() in wanted:
            positions.extend(p for p in range(start + before, start + count) if p < limit - 1)
        before = count
    return positions
