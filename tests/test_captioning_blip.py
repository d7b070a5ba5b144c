"""Tests for zerocon.captioning.BlipCaptioner with a tiny random BLIP built offline."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
)

from zerocon.captioning import BlipCaptioner, Captioner

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "photography", "of", "photo", "cat", "dog", "red", "blue", "circle", "square"]
VOCAB = [*SPECIAL, *WORDS, "on", "the", "background", "grass"]


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    return BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def model(processor):
    tokenizer = processor.tokenizer
    vocab_size = len(tokenizer) + 1  # one extra id for BLIP's decoder BOS token
    config = BlipConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": vocab_size - 1,
            "pad_token_id": tokenizer.pad_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            # a large init so that the image visibly changes the greedy caption
            "initializer_range": 0.5,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "initializer_range": 0.02,  # BLIP's default 1e-10 zeroes the position embeddings
        },
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(0)
    return BlipForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def images():
    gradient = Image.linear_gradient("L").resize((40, 30))
    return [
        Image.new("RGB", (48, 48), (200, 30, 30)),
        gradient,  # mode "L"
        Image.new("RGBA", (20, 64), (10, 200, 90, 128)),
        Image.new("RGB", (32, 32), (0, 0, 255)).convert("P"),
    ]


def test_one_string_per_image(model, processor, images):
    captioner = BlipCaptioner(model, processor, max_new_tokens=8)
    captions = captioner(images)
    assert isinstance(captioner, Captioner)
    assert len(captions) == len(images)
    assert all(isinstance(c, str) and c == c.strip() for c in captions)
    assert captioner([]) == []


def test_deterministic_and_batch_independent(model, processor, images):
    first = BlipCaptioner(model, processor, max_new_tokens=8, batch_size=4)(images)
    again = BlipCaptioner(model, processor, max_new_tokens=8, batch_size=4)(images)
    one_by_one = BlipCaptioner(model, processor, max_new_tokens=8, batch_size=1)(images)
    assert first == again == one_by_one


def test_prefix_starts_every_caption(model, processor, images):
    captioner = BlipCaptioner(model, processor, prefix="a photography of ", max_new_tokens=6)
    captions = captioner(images)
    assert all(c.startswith("a photography of") for c in captions)
    assert captioner.prefix == "a photography of"


def test_prefix_kept_verbatim_even_if_the_tokenizer_lowercases(model, processor, images):
    captions = BlipCaptioner(model, processor, prefix="A Photo of", max_new_tokens=4)(images[:1])
    assert captions[0].startswith("A Photo of")


class RecordingProcessor:
    """Delegates to a BlipProcessor and records the modes of the images it is given."""

    def __init__(self, inner: BlipProcessor) -> None:
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.modes: list[str] = []

    def __call__(self, images, **kwargs):
        self.modes.extend(image.mode for image in images)
        return self.inner(images=images, **kwargs)


def test_non_rgb_images_are_converted(model, processor, images):
    recording = RecordingProcessor(processor)
    captioner = BlipCaptioner(model, recording, prefix="a photography of", max_new_tokens=8)  # type: ignore[arg-type]
    captions = captioner(images)
    assert recording.modes == ["RGB"] * len(images)
    assert len(set(captions)) > 1  # the tiny model does look at the image
    assert captions == captioner([image.convert("RGB") for image in images])


def test_max_new_tokens_bounds_the_length(model, processor, images):
    captions = BlipCaptioner(model, processor, max_new_tokens=3)(images)
    for caption in captions:
        assert len(processor.tokenizer(caption, add_special_tokens=False).input_ids) <= 3


def test_model_mode_restored(processor, model, images):
    model.train()
    try:
        BlipCaptioner(model, processor, max_new_tokens=2)(images[:1])
        assert model.training
    finally:
        model.eval()


def test_from_pretrained_round_trip(model, processor, images, tmp_path):
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = BlipCaptioner.from_pretrained(
        str(tmp_path), prefix="a photography of", max_new_tokens=8, local_files_only=True
    )
    original = BlipCaptioner(model, processor, prefix="a photography of", max_new_tokens=8)
    assert loaded(images) == original(images)
    assert "a photography of" in repr(loaded)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments(model, processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BlipCaptioner(model, processor, **kwargs)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_bad_images(model, processor, images):
    captioner = BlipCaptioner(model, processor, max_new_tokens=2)
    with pytest.raises(ValueError, match="wrap a single image"):
        captioner(images[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"images\[1\]"):
        captioner([images[0], torch.zeros(3, 8, 8)])  # type: ignore[list-item]
