"""Turning a call's arguments into one [`EditRequest`][zerocon.editing.EditRequest] per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from zerocon.direction import EditDirection
from zerocon.editing.state import EditRequest


def _per_image(value: str | Sequence[str] | None, n: int, name: str) -> list[str | None]:
    if value is None:
        return [None] * n
    if isinstance(value, str):
        return [value] * n
    values: list[str | None] = list(value)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} images")
    return values


def build_requests(
    n: int,
    target_prompt: str | Sequence[str] | None = None,
    source_prompt: str | Sequence[str] | None = None,
    source_word: str | None = None,
    target_word: str | None = None,
    direction: EditDirection | str | Path | None = None,
) -> list[EditRequest]:
    """One request per image from prompts (one, or one per image), a word pair or a direction.

    Raises:
        ValueError: for an empty target prompt, half a word pair, no edit at all, or lists
            whose length is not ``n``.
        FileNotFoundError: for a direction file that does not exist.

    Examples:
        >>> requests = build_requests(2, "a blue circle")
        >>> len(requests), requests[1].target_prompt
        (2, 'a blue circle')
        >>> build_requests(1, source_word="red", target_word="blue")[0].word_pairs
        [('red', 'blue')]
    """
    targets = _per_image(target_prompt, n, "target_prompt")
    sources = _per_image(source_prompt, n, "source_prompt")
    for text in targets:
        if text is not None and not text.strip():
            raise ValueError("the target prompt is empty; give the text the edit should match")
    if (source_word is None) != (target_word is None):
        raise ValueError("give both source_word and target_word, or neither")
    pairs = None
    if source_word is not None and target_word is not None:
        if not source_word.strip() or not target_word.strip():
            raise ValueError("source_word and target_word must be non-empty")
        pairs = [(source_word.strip(), target_word.strip())]
    loaded = EditDirection.load(direction) if isinstance(direction, (str, Path)) else direction
    requests = [EditRequest(t, s, pairs, loaded) for t, s in zip(targets, sources, strict=True)]
    for index, request in enumerate(requests):
        check_request(request, index)
    return requests


def check_request(request: EditRequest, index: int = 0) -> None:
    """Raise ``ValueError`` unless the request says what to edit towards.

    Examples:
        >>> check_request(EditRequest(target_prompt="a cat"))
    """
    if request.target_prompt is None and request.word_pairs is None and request.direction is None:
        raise ValueError(
            f"image {index}: no edit given: pass target_prompt, source_word and target_word, or direction"
        )
