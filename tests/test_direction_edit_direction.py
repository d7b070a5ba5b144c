"""Tests for zerocon.direction.EditDirection."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

from zerocon.direction import (
    EditDirection,
    FileSentences,
    TemplateSentences,
    encode_prompts,
)
from zerocon.testing import build_word_tokenizer, tiny_text_encoder

WORDS = ["a", "photo", "of", "the", "cat", "dog", "red", "blue", "on", "grass"]
L, D = 16, 32


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS, model_max_length=L)


@pytest.fixture(scope="module")
def enc(tok):
    return tiny_text_encoder(len(tok), hidden_size=D, max_length=L, seed=0)


@pytest.fixture(scope="module")
def cat2dog(enc, tok):
    return EditDirection.from_words(enc, tok, "cat", "dog")


sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
banks = st.lists(sentence, min_size=1, max_size=5)
scales = st.floats(-4.0, 4.0, allow_nan=False)


@settings(max_examples=8, deadline=None)
@given(bank=banks)
def test_identical_banks_give_exactly_zero(enc, tok, bank):
    direction = EditDirection.from_sentences(enc, tok, bank, list(bank))
    assert torch.equal(direction.delta, torch.zeros(1, L, D))


@settings(max_examples=8, deadline=None)
@given(source=banks, target=banks)
def test_swapping_banks_negates(enc, tok, source, target):
    forward = EditDirection.from_sentences(enc, tok, source, target, batch_size=3)
    backward = EditDirection.from_sentences(enc, tok, target, source, batch_size=3)
    assert torch.equal(forward.delta, -backward.delta)


def test_is_difference_of_means(enc, tok):
    source = ["a photo of the cat", "a red cat", "the cat on grass"]
    target = ["a photo of the dog", "a blue dog"]
    direction = EditDirection.from_sentences(enc, tok, source, target)
    expected = encode_prompts(enc, tok, target).mean(0, keepdim=True) - encode_prompts(
        enc, tok, source
    ).mean(0, keepdim=True)
    assert direction.shape == (1, L, D)
    torch.testing.assert_close(direction.delta, expected)
    assert direction.num_source_sentences == 3
    assert direction.num_target_sentences == 2
    assert direction.delta.abs().sum() > 0


def test_from_words_uses_templates_by_default(enc, tok, cat2dog):
    templates = TemplateSentences()
    expected = EditDirection.from_sentences(
        enc, tok, templates.sentences("cat"), templates.sentences("dog")
    )
    torch.testing.assert_close(cat2dog.delta, expected.delta)
    assert (cat2dog.source_word, cat2dog.target_word) == ("cat", "dog")
    assert cat2dog.num_source_sentences == len(templates.templates)
    assert cat2dog.encoder_name  # class name when the config has no _name_or_path


def test_from_words_with_a_file_source(enc, tok, tmp_path):
    (tmp_path / "cat.txt").write_text("a cat\na red cat\n", encoding="utf-8")
    (tmp_path / "dog.txt").write_text("a dog\n", encoding="utf-8")
    direction = EditDirection.from_words(enc, tok, "cat", "dog", FileSentences(tmp_path))
    expected = EditDirection.from_sentences(enc, tok, ["a cat", "a red cat"], ["a dog"])
    torch.testing.assert_close(direction.delta, expected.delta)
    assert (direction.num_source_sentences, direction.num_target_sentences) == (2, 1)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 3))
def test_apply_with_zero_scale_is_identity(cat2dog, seed, batch):
    e = torch.randn(batch, L, D, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(cat2dog.apply_to(e, 0.0), e)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), a=scales, b=scales)
def test_apply_is_linear_in_scale(cat2dog, seed, a, b):
    e = torch.randn(2, L, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    shift_a = cat2dog.apply_to(e, a) - e
    shift_b = cat2dog.apply_to(e, b) - e
    torch.testing.assert_close(cat2dog.apply_to(e, a + b) - e, shift_a + shift_b)
    torch.testing.assert_close(shift_a, a * cat2dog.delta.double().expand(2, L, D))


def test_apply_keeps_dtype_and_forward_matches(cat2dog):
    e = torch.randn(1, L, D, dtype=torch.float64)
    out = cat2dog.apply_to(e, 0.5)
    assert out.dtype == torch.float64
    torch.testing.assert_close(cat2dog(e, 0.5), out)
    torch.testing.assert_close(cat2dog(e), e + cat2dog.delta.double())


def test_apply_on_the_encoder_output(enc, tok, cat2dog):
    c = encode_prompts(enc, tok, ["a photo of the cat"])
    assert cat2dog.apply_to(c, 1.0).shape == (1, L, D)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, L + 1, D), "L=17"), ((1, L, D - 1), "D=31"), ((L, D), r"\(b, L, D\)")],
)
def test_apply_rejects_mismatched_embeddings(cat2dog, shape, message):
    with pytest.raises(ValueError, match=message):
        cat2dog.apply_to(torch.zeros(shape))


def test_module_apply_with_a_function_still_works(cat2dog):
    parent = nn.Sequential(nn.Linear(2, 2), cat2dog)
    visited: list[str] = []
    parent.apply(lambda module: visited.append(type(module).__name__))
    assert "EditDirection" in visited
    # nn.Module.apply is not shadowed: a tensor is not a function to it.
    assert type(cat2dog).apply is nn.Module.apply
    with pytest.raises(ValueError, match="finite"):
        cat2dog.apply_to(torch.zeros(1, L, D), float("nan"))


def test_reversed(cat2dog):
    back = cat2dog.reversed()
    assert torch.equal(back.delta, -cat2dog.delta)
    assert (back.source_word, back.target_word) == ("dog", "cat")
    assert back.num_source_sentences == cat2dog.num_target_sentences
    assert torch.equal(back.reversed().delta, cat2dog.delta)


def test_buffer_and_state_dict(cat2dog):
    assert "delta" in dict(cat2dog.named_buffers())
    assert set(cat2dog.state_dict()) == {"delta"}
    assert list(cat2dog.parameters()) == []
    assert cat2dog.delta.dtype == torch.float32


def test_repr_is_informative(cat2dog):
    text = repr(cat2dog)
    for piece in ("'cat' -> 'dog'", "(1, 16, 32)", "20/20", "CLIPTextModel"):
        assert piece in text


def test_save_load_round_trip(cat2dog, tmp_path):
    path = tmp_path / "sub" / "cat2dog.safetensors"
    cat2dog.save(path)
    loaded = EditDirection.load(path)
    assert torch.equal(loaded.delta, cat2dog.delta)
    for attribute in (
        "source_word",
        "target_word",
        "num_source_sentences",
        "num_target_sentences",
        "encoder_name",
    ):
        assert getattr(loaded, attribute) == getattr(cat2dog, attribute)
    assert EditDirection.load(path, device="cpu").delta.device.type == "cpu"


@settings(max_examples=10, deadline=None)
@given(
    length=st.integers(1, 6),
    dim=st.integers(1, 6),
    seed=st.integers(0, 1000),
    words=st.tuples(st.none() | st.sampled_from(["cat", "golden retriever", "émeu"]), st.none()),
)
def test_save_load_round_trip_property(tmp_path_factory, length, dim, seed, words):
    delta = torch.randn(1, length, dim, generator=torch.Generator().manual_seed(seed))
    direction = EditDirection(
        delta, source_word=words[0], target_word=words[1], num_source_sentences=seed
    )
    path = tmp_path_factory.mktemp("dir") / "d.safetensors"
    direction.save(path)
    loaded = EditDirection.load(path)
    assert torch.equal(loaded.delta, direction.delta)
    assert (loaded.source_word, loaded.target_word) == words
    assert loaded.num_source_sentences == seed
    assert loaded.metadata() == direction.metadata()


def test_load_without_the_tensor_key(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weights": torch.zeros(1, 2, 2)}, str(path))
    with pytest.raises(ValueError, match="no 'delta' tensor"):
        EditDirection.load(path)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_load_bare_file_and_corrupt_shape(tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file({"delta": torch.ones(1, 2, 3)}, str(bare))
    loaded = EditDirection.load(bare)
    assert loaded.source_word is None and loaded.shape == (1, 2, 3)

    corrupt = tmp_path / "corrupt.safetensors"
    save_file({"delta": torch.ones(1, 2, 3)}, str(corrupt), metadata={"shape": "[1, 2, 4]"})
    with pytest.raises(ValueError, match="differs from the recorded shape"):
        EditDirection.load(corrupt)

    wrong_rank = tmp_path / "rank.safetensors"
    save_file({"delta": torch.ones(2, 3)}, str(wrong_rank))
    with pytest.raises(ValueError, match=r"\(1, L, D\)"):
        EditDirection.load(wrong_rank)

    with pytest.raises(FileNotFoundError):
        EditDirection.load(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [([], ["a dog"], "source_sentences is empty"), (["a cat"], [], "target_sentences is empty")],
)
def test_empty_banks(enc, tok, source, target, message):
    with pytest.raises(ValueError, match=message):
        EditDirection.from_sentences(enc, tok, source, target)


@pytest.mark.parametrize(("source", "target"), [("", "dog"), ("cat", "  ")])
def test_empty_words(enc, tok, source, target):
    with pytest.raises(ValueError, match="non-empty"):
        EditDirection.from_words(enc, tok, source, target)


def test_encoder_tokenizer_mismatch(tok):
    small = tiny_text_encoder(len(tok) - 3, hidden_size=D, max_length=L)
    with pytest.raises(ValueError, match="vocabulary"):
        EditDirection.from_sentences(small, tok, ["a cat"], ["a dog"])
    long_tok = build_word_tokenizer(WORDS, model_max_length=L * 2)
    enc = tiny_text_encoder(len(long_tok), hidden_size=D, max_length=L)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        EditDirection.from_words(enc, long_tok, "cat", "dog")


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    "delta", [torch.zeros(2, 3, 4), torch.zeros(3, 4), torch.zeros(1, 3, 4, dtype=torch.long)]
)
def test_constructor_rejects_bad_deltas(delta):
    with pytest.raises(ValueError, match="delta"):
        EditDirection(delta)


def test_constructor_rejects_non_finite_and_empty_word():
    with pytest.raises(ValueError, match="NaN"):
        EditDirection(torch.full((1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="source_word"):
        EditDirection(torch.zeros(1, 2, 2), source_word="")


def test_a_saved_direction_names_the_encoder_not_a_local_path(tmp_path) -> None:
    from transformers import CLIPTextModel

    tok = build_word_tokenizer(["a", "red", "blue"], model_max_length=8)
    encoder = tiny_text_encoder(len(tok), hidden_size=16, max_length=8)
    encoder.save_pretrained(tmp_path / "my-model" / "text_encoder")
    local = CLIPTextModel.from_pretrained(tmp_path / "my-model" / "text_encoder")
    direction = EditDirection.from_words(local, tok, "red", "blue")
    assert direction.encoder_name == "my-model" and str(tmp_path) not in direction.encoder_name
