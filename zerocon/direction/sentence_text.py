"""Plain-text helpers for sentence banks: whole-word matching, sentence splitting, dedupe."""

from __future__ import annotations

import re
from collections.abc import Iterable

_LIST_MARKER = re.compile(r"^\s*(?:[-*•]+|\(?\d+[.):]|[a-zA-Z][.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUOTES = "\"'“”‘’`"


def word_pattern(word: str) -> re.Pattern[str]:
    """A case-insensitive regex matching ``word`` as a whole word (or whole phrase).

    Args:
        word: a word or a phrase such as ``"golden retriever"`` (inner whitespace matches any run
            of whitespace).

    Returns:
        A compiled pattern; ``"cat"`` matches ``"A Cat."`` but not ``"category"``.

    Raises:
        ValueError: if ``word`` is empty or only whitespace.

    Examples:
        >>> bool(word_pattern("cat").search("A Cat sleeps."))
        True
        >>> bool(word_pattern("cat").search("concatenate"))
        False
    """
    parts = word.split()
    if not parts:
        raise ValueError("word must be a non-empty string")
    body = r"\s+".join(re.escape(part) for part in parts)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def contains_word(sentence: str, word: str) -> bool:
    """Whether ``sentence`` contains ``word`` as a whole word, ignoring case.

    Args:
        sentence: the text to search.
        word: the word or phrase to find.

    Returns:
        ``True`` on a whole-word match.

    Raises:
        ValueError: if ``word`` is empty.

    Examples:
        >>> contains_word("Two dogs and a dog.", "dog"), contains_word("hotdog", "dog")
        (True, False)
    """
    return word_pattern(word).search(sentence) is not None


def split_sentences(text: str) -> list[str]:
    """Split generated text into sentences.

    Lines are split first; list markers (``"1."``, ``"-"``, ``"a)"``) are dropped; each line is
    then split after ``.``, ``!`` or ``?`` followed by whitespace. Surrounding quotes and
    whitespace are stripped; pieces without any letter or digit (e.g. a lone ``"."``) are
    dropped.

    Args:
        text: free text, e.g. a language model's output.

    Returns:
        The sentences, in order.

    Examples:
        >>> split_sentences("1. A cat sleeps. A dog runs!\\n- \\"A bird.\\"")
        ['A cat sleeps.', 'A dog runs!', 'A bird.']
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line, count=1)
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip().strip(_QUOTES).strip()
            if any(ch.isalnum() for ch in piece):
                sentences.append(piece)
    return sentences


def dedupe(sentences: Iterable[str]) -> list[str]:
    """Drop repeated sentences (ignoring case and runs of whitespace), keeping first occurrences.

    Args:
        sentences: the sentences to filter.

    Returns:
        The unique sentences in their original order (as first written).

    Examples:
        >>> dedupe(["A cat.", "a  cat.", "A dog."])
        ['A cat.', 'A dog.']
    """
    seen: set[str] = set()
    unique: list[str] = []
    for sentence in sentences:
        key = " ".join(sentence.lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(sentence)
    return unique
