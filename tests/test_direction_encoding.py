"""Tests for zerocon.direction.encode_prompts and check_encoder_tokenizer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.direction import check_encoder_tokenizer, encode_prompts
from zerocon.testing import build_word_tokenizer, tiny_text_encoder

WORDS = ["a", "photo", "of", "the", "cat", "dog", "red", "blue", "on", "grass"]


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS, model_max_length=16)


@pytest.fixture(scope="module")
def enc(tok):
    return tiny_text_encoder(len(tok), hidden_size=32, max_length=16, seed=0)


prompt_lists = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=20).map(" ".join),
    min_size=1,
    max_size=10,
)


def test_shape_device_dtype(enc, tok):
    out = encode_prompts(enc, tok, ["a photo of the cat", "dog"])
    assert out.shape == (2, 16, 32)
    assert out.dtype == torch.float32
    assert out.device == enc.device
    assert not out.requires_grad


def test_matches_a_direct_encoder_call(enc, tok):
    prompts = ["a photo of the cat", "a red dog on grass"]
    ids = tok(prompts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = enc(ids.input_ids)[0]
    torch.testing.assert_close(encode_prompts(enc, tok, prompts), expected)


def test_batch_size_1_and_7_agree(enc, tok):
    prompts = [f"a photo of the {w}" for w in WORDS] + ["", "cat " * 30]
    one = encode_prompts(enc, tok, prompts, batch_size=1)
    seven = encode_prompts(enc, tok, prompts, batch_size=7)
    torch.testing.assert_close(one, seven, rtol=1e-5, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(prompts=prompt_lists, batch_size=st.integers(1, 12))
def test_batching_is_invisible(enc, tok, prompts, batch_size):
    whole = encode_prompts(enc, tok, prompts, batch_size=len(prompts))
    chunked = encode_prompts(enc, tok, prompts, batch_size=batch_size)
    assert chunked.shape == (len(prompts), 16, 32)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-6)


def test_long_prompts_are_truncated(enc, tok):
    out = encode_prompts(enc, tok, ["cat " * 100])
    assert out.shape == (1, 16, 32)


def test_encoder_mode_is_restored(tok):
    encoder = tiny_text_encoder(len(tok), hidden_size=32, max_length=16).train()
    encode_prompts(encoder, tok, ["a cat"])
    assert encoder.training


def test_progress_bar_option_runs(enc, tok):
    assert (
        encode_prompts(enc, tok, ["a", "cat", "dog"], batch_size=2, show_progress=True).shape[0]
        == 3
    )


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("prompts", "batch_size", "message"),
    [
        ([], 32, "at least one prompt"),
        ("a cat", 32, "not a single string"),
        (["a cat"], 0, "batch_size"),
        (["a cat", 3], 32, r"prompts\[1\]"),
    ],
)
def test_bad_arguments(enc, tok, prompts, batch_size, message):
    with pytest.raises(ValueError, match=message):
        encode_prompts(enc, tok, prompts, batch_size=batch_size)


def test_vocabulary_mismatch(tok):
    small = tiny_text_encoder(len(tok) - 5, hidden_size=32, max_length=16)
    with pytest.raises(ValueError, match="vocabulary"):
        encode_prompts(small, tok, ["a cat"])


def test_length_mismatch(enc):
    long_tok = build_word_tokenizer(WORDS, model_max_length=32)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        encode_prompts(enc, long_tok, ["a cat"])


def test_unset_model_max_length(enc):
    unset = build_word_tokenizer(WORDS, model_max_length=16)
    unset.model_max_length = int(1e30)
    with pytest.raises(ValueError, match="model_max_length"):
        check_encoder_tokenizer(enc, unset)


def test_check_returns_length(enc, tok):
    assert check_encoder_tokenizer(enc, tok) == 16
