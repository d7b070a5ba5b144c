"""Unit tests of the pipeline's helpers: presets, edit words, preprocessing, accounting."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.editing import EditMethod, available_methods, get_method
from zerocon.editing.words import single_words
from zerocon.pipelines import (
    PhaseTimer,
    UNetEvalCounter,
    derive_edit_words,
    prepare_image,
    swap_words,
    tensor_to_pil,
    to_rgb,
    vae_scale_factor,
)
from zerocon.testing import tiny_unet, tiny_vae


def test_registry_covers_the_four_methods() -> None:
    assert {"zerocon", "pix2pix-zero", "ddim", "sdedit"} <= set(available_methods())
    assert get_method("zerocon").record_self and get_method("zerocon").record_cross
    assert get_method("pix2pix_zero") is get_method("pix2pix-zero")
    assert not get_method("ddim").guided and get_method("ddim").invert
    assert not get_method("sdedit").invert
    with pytest.raises(ValueError, match="unknown method"):
        get_method("prompt2prompt")

    class Broken(EditMethod):
        name = "broken"
        reference = False
        record_cross = True

    with pytest.raises(ValueError, match="reference"):
        get_method(Broken())


def test_derive_edit_words_finds_the_differing_words() -> None:
    caption = "a red circle on a white background"
    assert derive_edit_words(caption, "a blue circle on a white background") == [("red", "blue")]
    assert derive_edit_words(caption, "A Blue square on a white background") == [
        ("red", "blue"), ("circle", "square")
    ]
    assert derive_edit_words(caption, "a big blue square on a white background") == [
        ("red circle", "big blue square")
    ]
    assert not single_words(derive_edit_words(caption, "a big blue square on a white background"))
    assert derive_edit_words(caption, "a red circle on a black background") == [("white", "black")]
    assert derive_edit_words("a circle", "a big circle") == [("", "big")]
    with pytest.raises(ValueError, match="empty"):
        derive_edit_words(caption, "  ")
    with pytest.raises(ValueError, match="nothing to edit"):
        derive_edit_words(caption, "A red circle on a white background.")


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["red", "blue", "circle", "square", "on", "a", "white"]), min_size=2, max_size=7,
                   unique=True),
    swaps=st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["green", "dotted", "big"])), min_size=1, max_size=3),
)
def test_equal_length_replacements_pair_word_by_word(words, swaps) -> None:
    target = list(words)
    for index, new in swaps:
        target[index % len(words)] = new
    if target == words:
        return
    pairs = derive_edit_words(" ".join(words), " ".join(target))
    changed = [(s, t) for s, t in zip(words, target, strict=True) if s != t]
    assert single_words(pairs) and pairs == changed
    assert swap_words(" ".join(words), pairs) == " ".join(target)


def test_swap_words() -> None:
    assert swap_words("a red circle", [("red", "blue")]) == "a blue circle"
    assert swap_words("a red circle", [("green", "blue")]) is None
    assert swap_words("a redder circle", [("red", "blue")]) is None


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "I;16", "1", "CMYK"])
def test_to_rgb_converts_every_mode(mode: str) -> None:
    image = Image.new(mode, (6, 4))
    assert to_rgb(image).mode == "RGB"
    assert to_rgb(image).size == (6, 4)


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_prepare_image_resizes_to_the_vae_multiple_with_a_notice() -> None:
    assert vae_scale_factor(tiny_vae()) == 2
    prepared = prepare_image(Image.new("P", (37, 20)), 8)
    assert prepared.image.size == (32, 16) and prepared.image.mode == "RGB"
    assert prepared.resized and prepared.original_size == (37, 20)
    assert any("resized 37x20 to 32x16" in n for n in prepared.notices)
    assert any("converted P" in n for n in prepared.notices)
    assert prepare_image(Image.new("RGB", (3, 3)), 8).image.size == (8, 8)
    assert prepare_image(Image.new("RGB", (16, 16)), 8).notices == ()
    with pytest.raises(ValueError, match="PIL"):
        prepare_image("not an image", 8)  # type: ignore[arg-type]


def test_tensor_to_pil_round_trip() -> None:
    assert tensor_to_pil(torch.ones(2, 3, 4, 4))[1].getpixel((0, 0)) == (255, 255, 255)


def test_unet_eval_counter_counts_latents_per_phase() -> None:
    unet = tiny_unet()
    counter = UNetEvalCounter(unet)
    with counter.watching(), torch.no_grad():
        with counter.phase("a"):
            unet(torch.randn(2, 4, 8, 8), 1, torch.randn(2, 16, 32))
        with counter.phase("b"):
            unet(
                sample=torch.randn(1, 4, 8, 8),
                timestep=1,
                encoder_hidden_states=torch.randn(1, 16, 32),
            )
    unet(torch.randn(1, 4, 8, 8), 1, torch.randn(1, 16, 32))  # not watched
    assert counter.as_dict() == {"a": 2, "b": 1, "total": 3}
    timer = PhaseTimer()
    with timer("x"):
        pass
    with timer("x"):
        pass
    assert set(timer.as_dict()) == {"x", "total"}
