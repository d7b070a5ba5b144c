"""Tests for the template and file sentence sources and the text helpers."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.direction import (
    DEFAULT_TEMPLATES,
    FileSentences,
    SentenceSource,
    TemplateSentences,
    contains_word,
    dedupe,
    split_sentences,
)

word_strategy = st.from_regex(r"[a-zA-Zé]{1,10}( [a-z]{1,8})?", fullmatch=True)


# ---------------------------------------------------------------- text helpers
@pytest.mark.parametrize(
    ("sentence", "word", "expected"),
    [
        ("A Cat sleeps.", "cat", True),
        ("a photo of the CAT", "Cat", True),
        ("concatenate", "cat", False),
        ("the category", "cat", False),
        ("cats on a mat", "cat", False),
        ("a hot-dog stand", "dog", True),
        ("a golden   retriever runs", "golden retriever", True),
        ("a golden dog", "golden retriever", False),
    ],
)
def test_contains_word(sentence, word, expected):
    assert contains_word(sentence, word) is expected


def test_contains_word_rejects_empty_word():
    with pytest.raises(ValueError, match="non-empty"):
        contains_word("a cat", " ")


def test_split_sentences():
    text = '1. A cat sleeps. A dog runs!\n\n- "A bird."\n  2) Is it a cat?  Yes'
    assert split_sentences(text) == [
        "A cat sleeps.",
        "A dog runs!",
        "A bird.",
        "Is it a cat?",
        "Yes",
    ]
    assert split_sentences("") == []


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.from_regex(r"[A-Za-z][a-z ]{0,20}[a-z]", fullmatch=True), min_size=1, max_size=6)
)
def test_split_sentences_recovers_joined_sentences(parts):
    text = " ".join(f"{p}." for p in parts)
    assert split_sentences(text) == [f"{p}." for p in parts]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["A cat.", "a cat.", "a  CAT.", "A dog.", "x"]), max_size=10))
def test_dedupe_keeps_first_of_each_normalised_form(sentences):
    unique = dedupe(sentences)
    keys = [" ".join(s.lower().split()) for s in unique]
    assert len(keys) == len(set(keys))
    assert set(keys) == {" ".join(s.lower().split()) for s in sentences}
    assert all(sentences.index(s) <= sentences.index(t) for s, t in itertools.pairwise(unique))


# ---------------------------------------------------------------- templates
def test_default_templates():
    assert 15 <= len(DEFAULT_TEMPLATES) <= 30
    assert all("{}" in t for t in DEFAULT_TEMPLATES)
    assert len(set(DEFAULT_TEMPLATES)) == len(DEFAULT_TEMPLATES)


@settings(max_examples=30, deadline=None)
@given(word=word_strategy)
def test_template_sentences_all_contain_the_word(word):
    source = TemplateSentences()
    sentences = source.sentences(word)
    assert len(sentences) == len(DEFAULT_TEMPLATES)
    assert all(contains_word(s, word) for s in sentences)
    assert all("{" not in s for s in sentences)


def test_custom_templates_and_both_placeholders():
    source = TemplateSentences(["a {word} and a {}", "{}", "{}"])
    assert source.sentences("  dog ") == ["a dog and a dog", "dog"]
    assert isinstance(source, SentenceSource)
    assert "3 templates" in repr(source)


@pytest.mark.parametrize(
    ("templates", "message"),
    [([], "at least one"), (["a photo"], "no placeholder"), ("a {}", "single string")],
)
def test_template_errors(templates, message):
    with pytest.raises(ValueError, match=message):
        TemplateSentences(templates)


def test_template_rejects_empty_word():
    with pytest.raises(ValueError, match="non-empty"):
        TemplateSentences().sentences("")


# ---------------------------------------------------------------- files
def test_file_sentences_folder_mode(tmp_path):
    (tmp_path / "cat.txt").write_text(
        "a cat on a sofa\n\n   \n  a black cat  \na cat on a sofa\nkitten asleep\n",
        encoding="utf-8",
    )
    source = FileSentences(tmp_path)
    assert isinstance(source, SentenceSource)
    # Folder mode keeps every non-blank line of {word}.txt (no word filter), once.
    assert source.sentences("cat") == ["a cat on a sofa", "a black cat", "kitten asleep"]
    assert source.file_for("cat") == tmp_path / "cat.txt"
    with pytest.raises(FileNotFoundError, match=r"dog\.txt"):
        source.sentences("dog")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no non-blank line"):
        source.sentences("empty")


def test_file_sentences_single_file_mode(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text(
        "A Cat on a sofa\na dog in a park\n\nthe category page\ntwo cats\na cat and a dog\n",
        encoding="utf-8",
    )
    source = FileSentences(path)
    assert source.sentences("cat") == ["A Cat on a sofa", "a cat and a dog"]
    assert source.sentences("dog") == ["a dog in a park", "a cat and a dog"]
    with pytest.raises(ValueError, match=r"no line .* contains the word 'zebra'"):
        source.sentences("zebra")


@settings(max_examples=15, deadline=None)
@given(
    lines=st.lists(
        st.lists(
            st.sampled_from(["a", "cat", "dog", "category", "Cat", "cats", ""]), max_size=5
        ).map(" ".join),
        max_size=12,
    )
)
def test_file_single_mode_keeps_exactly_the_matching_lines(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("f") / "captions.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    expected = dedupe(line.strip() for line in lines if contains_word(line, "cat"))
    source = FileSentences(path)
    if expected:
        assert source.sentences("cat") == expected
    else:
        with pytest.raises(ValueError):
            source.sentences("cat")


def test_file_sentences_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FileSentences(tmp_path / "nope.txt")
