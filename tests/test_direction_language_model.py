"""Tests for zerocon.direction.LanguageModelSentences with a tiny, biased GPT-2."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from zerocon.direction import (
    EditDirection,
    LanguageModelSentences,
    SentenceSource,
    contains_word,
    dedupe,
    split_sentences,
)
from zerocon.testing import build_word_tokenizer, tiny_text_encoder

WORDS = ["a", "the", "photo", "of", "cat", "dog", "on", "grass", "red", "blue", "sofa", "sleeping"]


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS, model_max_length=16)


def biased_lm(tok, seed: int = 0) -> GPT2LMHeadModel:
    """A 1-layer GPT-2 whose output bias favours whole vocabulary words, '.', and 'cat'.

    Without the bias a random LM over ~530 byte-level tokens would almost never spell a word;
    with it, roughly half the sampled sentences contain 'cat' and half do not, so the filter
    has real work to do.
    """
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=1,
        n_embd=32,
        n_head=2,
        vocab_size=len(tok),
        n_positions=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    lm = GPT2LMHeadModel(config).eval()
    head = nn.Linear(32, len(tok), bias=True)
    head.weight.data.copy_(lm.lm_head.weight.data)
    bias = torch.full((len(tok),), -4.0)
    for word in WORDS:
        bias[tok.convert_tokens_to_ids(word + "</w>")] = 2.0
    bias[tok.convert_tokens_to_ids("cat</w>")] = 2.5
    bias[tok.convert_tokens_to_ids(".</w>")] = 2.5
    bias[tok.eos_token_id] = 1.0
    head.bias.data.copy_(bias)
    lm.lm_head = head
    return lm


@pytest.fixture(scope="module")
def lm(tok):
    return biased_lm(tok)


def make_source(lm, tok, seed: int, **kwargs) -> LanguageModelSentences:
    options: dict[str, Any] = {
        "num_sentences": 10,
        "prompt": "a photo of the {word}",
        "max_new_tokens": 16,
        "batch_size": 4,
    }
    options.update(kwargs)
    return LanguageModelSentences(lm, tok, generator=torch.Generator().manual_seed(seed), **options)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), word=st.sampled_from(["cat", "dog"]))
def test_kept_sentences_are_exactly_the_filtered_samples(lm, tok, seed, word):
    texts = make_source(lm, tok, seed).generate_texts(word)
    assert len(texts) == 10
    candidates = [s for text in texts for s in split_sentences(text)]
    expected = dedupe(s for s in candidates if contains_word(s, word))
    if not expected:
        with pytest.raises(ValueError, match="none of the"):
            make_source(lm, tok, seed).sentences(word)
        return
    kept = make_source(lm, tok, seed).sentences(word)
    assert kept == expected
    assert all(contains_word(s, word) for s in kept)


def test_the_filter_really_drops_sentences(lm, tok):
    texts = make_source(lm, tok, 0).generate_texts("cat")
    candidates = [s for text in texts for s in split_sentences(text)]
    kept = make_source(lm, tok, 0).sentences("cat")
    dropped = [s for s in candidates if not contains_word(s, "cat")]
    assert kept and dropped  # both outcomes occur under this seed
    assert not set(dropped) & set(kept)


def test_same_seed_same_sentences_other_seed_differs(lm, tok):
    first = make_source(lm, tok, 123).sentences("cat")
    again = make_source(lm, tok, 123).sentences("cat")
    other = make_source(lm, tok, 124).sentences("cat")
    assert first == again
    assert first != other


def test_reproducible_even_if_the_model_is_in_train_mode(tok):
    model = biased_lm(tok)
    model.train()  # dropout would use the global RNG; the source switches to eval mode
    torch.manual_seed(1)
    first = make_source(model, tok, 5).generate_texts("cat")
    torch.manual_seed(2)
    second = make_source(model, tok, 5).generate_texts("cat")
    assert first == second
    assert model.training


def test_cache_and_no_cache_sample_the_same(lm, tok):
    cached = make_source(lm, tok, 7, use_cache=True).generate_texts("dog")
    uncached = make_source(lm, tok, 7, use_cache=False).generate_texts("dog")
    assert cached == uncached


def test_generator_state_advances_between_calls(lm, tok):
    source = make_source(lm, tok, 9)
    assert source.generate_texts("cat") != source.generate_texts("cat")


def test_default_prompt_and_full_vocabulary_sampling(lm, tok):
    source = LanguageModelSentences(
        lm,
        tok,
        num_sentences=3,
        max_new_tokens=6,
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
        top_k=None,
        temperature=0.7,
        show_progress=True,
    )
    assert isinstance(source, SentenceSource)
    assert source.prompt_for(" cat ") == "Provide many captions for images containing cat."
    assert len(source.generate_texts("cat")) == 3
    assert "GPT2LMHeadModel" in repr(source)


def test_no_matching_sentence_raises(lm, tok):
    # 'zebra' is not in the vocabulary: the biased LM cannot spell it in 8 tokens.
    with pytest.raises(ValueError, match=r"none of the .* contains 'zebra'"):
        make_source(lm, tok, 0, max_new_tokens=8).sentences("zebra")


def test_feeds_an_edit_direction(lm, tok):
    encoder = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
    direction = EditDirection.from_words(encoder, tok, "cat", "dog", make_source(lm, tok, 0))
    assert direction.shape == (1, 16, 32)
    assert direction.num_source_sentences > 0 and direction.num_target_sentences > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_sentences": 0}, "num_sentences"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"batch_size": 0}, "batch_size"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"prompt": "captions please"}, "placeholder"),
    ],
)
def test_bad_arguments(lm, tok, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_source(lm, tok, 0, **kwargs)


def test_empty_word(lm, tok):
    with pytest.raises(ValueError, match="non-empty"):
        make_source(lm, tok, 0).sentences("  ")
