"""EditScope: object or scene edits, read from the caption and the edited words."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.editing import SCENE_WORDS, edit_scope
from zerocon.editing.edit_scope import FUNCTION_WORDS

CAPTION = "a red circle on a white striped background"


@pytest.mark.parametrize(("pairs", "kind", "words", "invert"), [
    ([("red", "blue")], "object", ("red",), False),
    ([("circle", "square")], "object", ("circle",), False),
    ([("white", "black")], "scene", ("red", "circle"), True),
    ([("striped", "dotted")], "scene", ("red", "circle"), True),
    ([("red", "blue"), ("white", "black")], "scene", ("circle",), True),
])
def test_scope_of_the_suite_edits(pairs, kind, words, invert) -> None:
    scope = edit_scope(CAPTION, pairs)
    assert (scope.kind, scope.blend_words, scope.invert) == (kind, words, invert)


def test_inserted_words_are_placed_in_the_target_prompt() -> None:
    caption = "a red circle on a white background"
    assert edit_scope(caption, [("", "striped")], "a red circle on a white striped background").kind == "scene"
    assert edit_scope(caption, [("", "big")], "a big red circle on a white background").kind == "object"


def test_scene_words_are_configurable_and_checked() -> None:
    assert edit_scope("a cat on green grass", [("green", "dry")]).kind == "object"
    assert edit_scope("a cat on green grass", [("green", "dry")], scene_words=["grass"]).kind == "scene"
    with pytest.raises(ValueError, match="scene_words"):
        edit_scope(CAPTION, [("red", "blue")], scene_words=[" "])
    with pytest.raises(ValueError, match="at least one"):
        edit_scope(CAPTION, [])


content = st.sampled_from(["red", "blue", "circle", "square", "dog", "tall", "shiny"])


@settings(max_examples=60, deadline=None)
@given(subject=st.lists(content, min_size=1, max_size=3, unique=True),
       scene=st.lists(st.sampled_from(["white", "striped", "dark", "misty"]), min_size=1, max_size=2, unique=True),
       noun=st.sampled_from(SCENE_WORDS), pick=st.integers(0, 10))
def test_scene_edits_keep_exactly_the_subject(subject, scene, noun, pick) -> None:
    caption = f"a {' '.join(subject)} on a {' '.join(scene)} {noun}"
    edited = scene[pick % len(scene)]
    scope = edit_scope(caption, [(edited, "other")])
    assert scope.kind == "scene" and scope.invert
    assert scope.blend_words == tuple(subject)
    # An edit of a subject word is an object edit that blends on that word alone.
    word = subject[pick % len(subject)]
    object_scope = edit_scope(caption, [(word, "other")])
    assert (object_scope.kind, object_scope.blend_words, object_scope.invert) == ("object", (word,), False)
    assert not set(scope.blend_words) & FUNCTION_WORDS
