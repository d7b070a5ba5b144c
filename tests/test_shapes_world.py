"""The shapes world: renderer ground truth, analytic checker, vocabulary, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.shapes import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    SHAPES,
    ShapeSpec,
    all_captions,
    caption_for,
    images_to_tensor,
    parse_caption,
    read_shape,
    render,
    render_random,
    sample_spec,
    sentence_bank,
    tensor_to_images,
    world_words,
)
from zerocon.shapes.metrics import edit_metrics, psnr


def test_world_has_the_required_vocabulary() -> None:
    assert {"circle", "square", "triangle"} <= set(SHAPES)
    assert len(OBJECT_COLORS) >= 4 and len(BACKGROUND_COLORS) >= 3
    # Backgrounds are far from every object colour (the checker relies on it).
    for bg in BACKGROUND_COLORS.values():
        for fg in OBJECT_COLORS.values():
            assert np.linalg.norm(np.subtract(bg, fg)) > 100
    assert len(all_captions()) == len(OBJECT_COLORS) * len(SHAPES) * len(BACKGROUND_COLORS)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_renders_are_seeded_inside_the_frame_and_carry_their_ground_truth(seed: int) -> None:
    a = render_random(torch.Generator().manual_seed(seed))
    b = render_random(torch.Generator().manual_seed(seed))
    assert a.spec == b.spec and np.array_equal(a.image, b.image)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    ys, xs = np.nonzero(a.mask)
    assert ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63  # fully inside
    # Away from the antialiased edge, background pixels have exactly the background colour.
    assert (a.image[~_dilate(_dilate(_dilate(a.mask)))] == BACKGROUND_COLORS[a.spec.background]).all()
    assert parse_caption(a.caption) == (a.spec.color, a.spec.shape, a.spec.background)


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def test_checker_reads_at_least_99_percent_of_fresh_renders() -> None:
    g = torch.Generator().manual_seed(2024)
    n, right, ious = 600, 0, []
    for _ in range(n):
        r = render_random(g)
        reading = read_shape(r.image)
        right += (reading.color, reading.shape, reading.background) == (r.spec.color, r.spec.shape, r.spec.background)
        ious.append((reading.mask & r.mask).sum() / (reading.mask | r.mask).sum())
    assert right / n >= 0.99
    assert np.mean(ious) > 0.9


def test_checker_reports_no_object_on_a_plain_image_and_rejects_bad_shapes() -> None:
    plain = np.full((64, 64, 3), BACKGROUND_COLORS["gray"], dtype=np.uint8)
    reading = read_shape(plain)
    assert not reading.found_object and reading.shape == "none" and reading.background == "gray"
    with pytest.raises(ValueError, match="h, w, 3"):
        read_shape(np.zeros((64, 64)))
    assert read_shape(Image.fromarray(plain).convert("RGBA")).background == "gray"


@pytest.mark.parametrize("shape", SHAPES)
def test_checker_is_robust_to_blur_and_noise(shape: str) -> None:
    spec = ShapeSpec("blue", shape, "white", (32.0, 30.0), 13.0)
    image = render(spec).image.astype(np.float32)
    blurred = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1) + np.roll(image, (1, 1), (0, 1))) / 4
    noisy = blurred + np.random.default_rng(0).normal(0, 8, image.shape)
    reading = read_shape(np.clip(noisy, 0, 255).astype(np.uint8))
    assert (reading.color, reading.shape, reading.background) == ("blue", shape, "white")


def test_render_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="colour"):
        render(ShapeSpec("purple", "circle", "white", (32, 32), 10))
    with pytest.raises(ValueError, match="fit"):
        render(ShapeSpec("red", "circle", "white", (5, 32), 10))
    with pytest.raises(ValueError, match="caption"):
        parse_caption("a red circle")


def test_sample_spec_respects_fixed_fields() -> None:
    spec = sample_spec(torch.Generator().manual_seed(0), color="green", shape="square")
    assert (spec.color, spec.shape) == ("green", "square")


def test_sentence_banks_contain_their_word_and_the_tokenizer_words() -> None:
    for word in ["red", "circle", "white"]:
        bank = sentence_bank(word)
        assert bank and all(word in s.split() for s in bank)
        assert set(bank) <= set(all_captions())
        with_templates = sentence_bank(word, include_templates=True)
        assert with_templates[: len(bank)] == bank and len(with_templates) > len(bank)
        assert all(word in s.split() for s in with_templates)
    assert set(caption_for("red", "circle", "white").split()) <= set(world_words())
    with pytest.raises(ValueError, match="not a word"):
        sentence_bank("dog")


def test_tensor_round_trip_is_lossless() -> None:
    r = render_random(torch.Generator().manual_seed(5))
    assert np.array_equal(tensor_to_images(images_to_tensor([r.image]))[0], r.image)


def test_edit_metrics_on_a_perfect_and_a_wrong_edit() -> None:
    src = render(ShapeSpec("red", "circle", "white", (32.0, 32.0), 12.0))
    blue = render(ShapeSpec("blue", "circle", "white", (32.0, 32.0), 12.0))
    m = edit_metrics(src, blue.image, "a blue circle on a white background")
    assert m.edit_correct and m.structure_iou > 0.95 and m.background_psnr == float("inf")
    m2 = edit_metrics(src, src.image, "a blue circle on a white background")
    assert not m2.edit_correct and not m2.color_correct and m2.shape_correct
    assert psnr(src.image, src.image) == float("inf")
