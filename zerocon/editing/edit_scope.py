"""``EditScope``: whether an edit changes an object or the scene around it, read from its words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Nouns that name the scene behind the subject. General English, not one model's vocabulary;
#: ``EditSettings.scene_words`` replaces the list.
SCENE_WORDS: tuple[str, ...] = ("background", "backdrop", "backgrounds", "scenery", "scene", "surroundings")

#: Function words: they close a noun phrase when reading forward, and never mark a region.
FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "this", "that", "these", "those", "on", "in", "of", "with", "and", "or", "at", "over", "under", "near", "by", "to", "from", "behind", "beside", "above", "below", "into", "onto", "its", "his", "her", "their", "some", "is", "are", "photo", "photography", "picture", "image"]
)

_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class EditScope:
    """What an edit changes, and which words' attention draws the region to keep.

    Attributes:
        kind: ``"object"`` (the edited words name the subject: keep everything else) or
            ``"scene"`` (they describe the scene noun, e.g. ``"white striped background"``:
            keep the subject).
        blend_words: the words whose cross-attention draws the blend mask: the edited words
            for an object edit, the caption's other content words (the subject) for a scene
            edit. Empty when no word is left to draw it.
        invert: whether ``blend_words`` mark the region to keep (scene edits) rather than the
            region to edit.

    Shape:
        No tensors.

    Examples:
        >>> edit_scope("a red circle on a white striped background", [("white", "black")])
        EditScope(kind='scene', blend_words=('red', 'circle'), invert=True)
        >>> edit_scope("a red circle on a white striped background", [("red", "blue")])
        EditScope(kind='object', blend_words=('red',), invert=False)
    """

    kind: str
    blend_words: tuple[str, ...]
    invert: bool


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _scene_positions(words: list[str], scene_words: frozenset[str]) -> set[int]:
    """Indices of the words that belong to a scene noun phrase (the scene noun included).

    Reading backwards from each scene noun, the phrase runs until a function word.
    """
    inside: set[int] = set()
    for index, word in enumerate(words):
        if word not in scene_words:
            continue
        inside.add(index)
        before = index - 1
        while before >= 0 and words[before] not in FUNCTION_WORDS and words[before] not in scene_words:
            inside.add(before)
            before -= 1
    return inside


def edit_scope(
    caption: str,
    pairs: Sequence[tuple[str, str]],
    target_prompt: str | None = None,
    scene_words: Sequence[str] = SCENE_WORDS,
) -> EditScope:
    """Decide whether the word pairs edit an object or the scene, and what the blend keeps.

    An edited word that sits in a noun phrase ending with a scene noun (reading forward from
    the word, the scene noun comes before any function word) makes a scene edit; a pure
    insertion (``("", "striped")``) is located in the target prompt instead. Any other edit is
    an object edit.

    Args:
        caption: the source caption.
        pairs: the edit's ``(source, target)`` word pairs (phrases allowed).
        target_prompt: the target prompt, to place inserted words.
        scene_words: the scene nouns.

    Returns:
        The [`EditScope`][zerocon.editing.EditScope].

    Raises:
        ValueError: for no pair, or a scene word list with an empty entry.

    Examples:
        >>> edit_scope("a red circle on a white background", [("", "striped")],
        ...            "a red circle on a white striped background").kind
        'scene'
    """
    if not pairs:
        raise ValueError("edit_scope needs at least one (source, target) word pair")
    scene = frozenset(w.strip().lower() for w in scene_words)
    if any(not w for w in scene):
        raise ValueError(f"scene_words must be non-empty words, got {list(scene_words)!r}")
    caption_words = _words(caption)
    caption_scene = _scene_positions(caption_words, scene)
    target_words = _words(target_prompt) if target_prompt else []
    target_scene = _scene_positions(target_words, scene)
    edited: list[str] = []
    is_scene = False
    for source, target in pairs:
        source_words, target_only = _words(source), _words(target)
        edited += source_words
        if source_words:
            hits = [i for i, w in enumerate(caption_words) if w in source_words]
            is_scene |= any(i in caption_scene for i in hits)
        else:
            hits = [i for i, w in enumerate(target_words) if w in target_only]
            is_scene |= any(i in target_scene for i in hits)
    if not is_scene:
        return EditScope("object", tuple(dict.fromkeys(edited)), invert=False)
    subject = [
        w for i, w in enumerate(caption_words)
        if i not in caption_scene and w not in FUNCTION_WORDS and w not in edited
    ]
    return EditScope("scene", tuple(dict.fromkeys(subject)), invert=True)
