"""Tests for zerocon.captioning.ClipRetrievalCaptioner with a tiny random CLIP built offline."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from zerocon.captioning import Captioner, ClipRetrievalCaptioner
from zerocon.testing import build_word_tokenizer

WORDS = ["a", "photo", "of", "red", "green", "blue", "circle", "square", "on", "white", "black"]
CANDIDATES = [
    "a red circle",
    "a green square",
    "a blue circle on white",
    "a photo of a black square",
    "blue",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(WORDS, model_max_length=16)


@pytest.fixture(scope="module")
def image_processor():
    return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture(scope="module")
def model(tokenizer):
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    return CLIPModel(config).eval()


@pytest.fixture(scope="module")
def captioner(model, tokenizer, image_processor):
    return ClipRetrievalCaptioner(model, tokenizer, image_processor, CANDIDATES)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 36)) -> Image.Image:
    return Image.new("RGB", size, rgb)


colours = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))


def test_scores_shape_and_range(captioner):
    images = [solid((255, 0, 0)), solid((0, 0, 255), (20, 64)), Image.linear_gradient("L")]
    scores = captioner.scores(images)
    assert scores.shape == (3, len(CANDIDATES))
    assert scores.dtype == torch.float32
    assert bool((scores.abs() <= 1 + 1e-5).all())
    assert isinstance(captioner, Captioner)


def test_scores_agree_with_clip_logits(captioner, model, tokenizer, image_processor):
    images = [solid((255, 0, 0)), solid((10, 200, 30))]
    tokens = tokenizer(CANDIDATES, padding=True, return_tensors="pt")
    pixels = image_processor(images=images, return_tensors="pt").pixel_values
    with torch.no_grad():
        out = model(
            input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=pixels
        )
    expected = out.logits_per_image / model.logit_scale.exp()
    torch.testing.assert_close(captioner.scores(images), expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(
    pixels=st.lists(colours, min_size=1, max_size=3),
    chosen=st.lists(st.sampled_from(CANDIDATES), min_size=1, max_size=5, unique=True),
)
def test_caption_is_the_argmax_of_scores(model, tokenizer, image_processor, pixels, chosen):
    captioner = ClipRetrievalCaptioner(model, tokenizer, image_processor, chosen)
    images = [solid(p) for p in pixels]
    scores = captioner.scores(images)
    captions = captioner(images)
    assert len(captions) == len(images)
    for row, caption in zip(scores, captions, strict=True):
        assert caption == chosen[int(row.argmax())]
        assert row[chosen.index(caption)] == row.max()


@settings(max_examples=6, deadline=None)
@given(pixels=st.lists(colours, min_size=1, max_size=4), candidate=st.sampled_from(CANDIDATES))
def test_single_candidate_is_always_returned(model, tokenizer, image_processor, pixels, candidate):
    captioner = ClipRetrievalCaptioner(model, tokenizer, image_processor, [candidate])
    assert captioner([solid(p) for p in pixels]) == [candidate] * len(pixels)


def test_candidate_embeddings_are_computed_once(model, tokenizer, image_processor):
    calls: list[int] = []
    handle = model.text_model.register_forward_hook(lambda *_: calls.append(1))
    try:
        captioner = ClipRetrievalCaptioner(
            model, tokenizer, image_processor, CANDIDATES, batch_size=2
        )
        assert calls == []  # nothing computed before first use
        first = captioner.candidate_embeddings
        assert len(calls) == 3  # ceil(5 / 2) batches
        captioner([solid((1, 2, 3))])
        captioner([solid((4, 5, 6)), solid((7, 8, 9))])
        assert len(calls) == 3
        assert captioner.candidate_embeddings is first
        torch.testing.assert_close(first.norm(dim=-1), torch.ones(len(CANDIDATES)))
    finally:
        handle.remove()


def test_batch_size_does_not_change_scores(model, tokenizer, image_processor):
    images = [solid((i * 40, 255 - i * 30, 100)) for i in range(5)]
    small = ClipRetrievalCaptioner(model, tokenizer, image_processor, CANDIDATES, batch_size=1)
    large = ClipRetrievalCaptioner(model, tokenizer, image_processor, CANDIDATES, batch_size=64)
    torch.testing.assert_close(small.scores(images), large.scores(images), rtol=1e-5, atol=1e-6)


def test_non_rgb_images_and_empty_input(captioner):
    grey = Image.linear_gradient("L").resize((32, 32))
    torch.testing.assert_close(captioner.scores([grey]), captioner.scores([grey.convert("RGB")]))
    assert captioner([]) == []
    assert captioner.scores([]).shape == (0, len(CANDIDATES))


def test_from_pretrained_round_trip(model, tokenizer, image_processor, tmp_path):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    image_processor.save_pretrained(tmp_path)
    loaded = ClipRetrievalCaptioner.from_pretrained(
        str(tmp_path), CANDIDATES, local_files_only=True
    )
    original = ClipRetrievalCaptioner(model, tokenizer, image_processor, CANDIDATES)
    images = [solid((255, 0, 0)), solid((0, 255, 0))]
    torch.testing.assert_close(loaded.scores(images), original.scores(images))
    assert "candidates=5" in repr(loaded)


@pytest.mark.parametrize(
    ("candidates", "kwargs", "message"),
    [
        ([], {}, "candidates is empty"),
        (["a red circle", "  "], {}, r"candidates\[1\]"),
        ("a red circle", {}, "single string"),
        (["a red circle"], {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(model, tokenizer, image_processor, candidates, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipRetrievalCaptioner(model, tokenizer, image_processor, candidates, **kwargs)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_bad_images(captioner):
    with pytest.raises(ValueError, match="wrap a single image"):
        captioner(solid((0, 0, 0)))  # type: ignore[arg-type]
