"""Automatic edit words: what differs between the source caption and the target prompt."""

from __future__ import annotations

import difflib
import re

_WORD = re.compile(r"[\w'-]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def derive_edit_words(caption: str, target_prompt: str) -> list[tuple[str, str]]:
    """Pair up the words that differ between ``caption`` and ``target_prompt``.

    The two texts are lower-cased, split into words and aligned (``difflib``); every
    non-matching span gives one ``(source, target)`` pair of phrases. A side is ``""`` when the
    span is a pure insertion or deletion. This is the paper's automatic direction: the caption
    of the source image against the user's target prompt.

    Args:
        caption: the source caption, e.g. ``"a red circle on a white background"``.
        target_prompt: the target prompt, e.g. ``"a blue circle on a white background"``.

    Returns:
        The differing spans in reading order, e.g. ``[("red", "blue")]``.

    Raises:
        ValueError: if the target prompt is empty or has the same words as the caption.

    Example:
        >>> derive_edit_words("a red circle on a white background",
        ...                   "a blue circle on a white background")
        [('red', 'blue')]
    """
    if not isinstance(target_prompt, str) or not target_prompt.strip():
        raise ValueError("the target prompt is empty; give the text the edited image should match")
    source_words = _words(caption)
    target_words = _words(target_prompt)
    if source_words == target_words:
        raise ValueError(
            f"the target prompt {target_prompt!r} has the same words as the source caption "
            f"{caption!r}: there is nothing to edit"
        )
    matcher = difflib.SequenceMatcher(a=source_words, b=target_words, autojunk=False)
    pairs: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs.append((" ".join(source_words[i1:i2]), " ".join(target_words[j1:j2])))
    return pairs


def swap_words(caption: str, pairs: list[tuple[str, str]]) -> str | None:
    """Replace each source word of ``pairs`` in ``caption`` by its target word.

    Args:
        caption: the source caption.
        pairs: ``(source, target)`` word pairs.

    Returns:
        The edited caption, or ``None`` if some source word does not occur in the caption
        (whole word, case-insensitive).

    Example:
        >>> swap_words("a red circle", [("red", "blue")])
        'a blue circle'
    """
    text = caption
    for source, target in pairs:
        if not source:
            return None
        pattern = re.compile(rf"\b{re.escape(source)}\b", re.IGNORECASE)
        if not pattern.search(text):
            return None
        text = pattern.sub(target, text)
    return text
