"""Automatic edit words: what differs between the source caption and the target prompt."""

from __future__ import annotations

import difflib
import re

_WORD = re.compile(r"[\w'-]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def derive_edit_words(caption: str, target_prompt: str) -> list[tuple[str, str]]:
    """Pair up the words that differ between ``caption`` and ``target_prompt``.

    The two texts are lower-cased, split into words and aligned (``difflib``). A replaced span
    of equal length on both sides gives one pair per word (``"red circle" → "blue square"``:
    ``red → blue`` and ``circle → square``); any other non-matching span gives one pair of
    phrases, with ``""`` on the side of a pure insertion or deletion. Callers build word
    directions from single-word pairs and fall back to ``E(target) − E(caption)`` otherwise.
    This is the paper's automatic direction: the caption against the user's target prompt.

    Args:
        caption: the source caption, e.g. ``"a red circle on a white background"``.
        target_prompt: the target prompt, e.g. ``"a blue circle on a white background"``.

    Returns:
        The differing spans in reading order, e.g. ``[("red", "blue")]``.

    Raises:
        ValueError: if the target prompt is empty or has the same words as the caption.

    Examples:
        >>> derive_edit_words("a red circle on a white background",
        ...                   "a blue circle on a white background")
        [('red', 'blue')]
        >>> derive_edit_words("a red triangle on a white background",
        ...                   "a blue circle on a white background")
        [('red', 'blue'), ('triangle', 'circle')]
        >>> derive_edit_words("a red circle on a white background",
        ...                   "a red circle on a white striped background")
        [('', 'striped')]
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
        if tag == "replace" and i2 - i1 == j2 - j1:
            pairs += [(s, t) for s, t in zip(source_words[i1:i2], target_words[j1:j2], strict=True) if s != t]
        else:
            pairs.append((" ".join(source_words[i1:i2]), " ".join(target_words[j1:j2])))
    return pairs


def single_words(pairs: list[tuple[str, str]]) -> bool:
    """Whether every pair is one word on each side (so word directions can be built).

    Examples:
        >>> single_words([("red", "blue")]), single_words([("red triangle", "blue")])
        (True, False)
    """
    return bool(pairs) and all(s and t and " " not in s and " " not in t for s, t in pairs)


def swap_words(caption: str, pairs: list[tuple[str, str]]) -> str | None:
    """Replace each source word of ``pairs`` in ``caption`` by its target word.

    Args:
        caption: the source caption.
        pairs: ``(source, target)`` word pairs.

    Returns:
        The edited caption, or ``None`` if some source word does not occur in the caption
        (whole word, case-insensitive).

    Examples:
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
