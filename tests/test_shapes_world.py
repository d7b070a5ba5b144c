"""The shapes world: renderer ground truth, analytic checker, vocabulary, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.shapes import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    PATTERN_TONES,
    PATTERNS,
    SHAPES,
    ShapeSpec,
    Texture,
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
from zerocon.shapes.texture import ORIENTATION_STEP, ORIENTATIONS, PERIOD_RANGE, orientation_period
from zerocon.shapes.texture_reader import read_texture


def test_world_has_the_required_vocabulary() -> None:
    assert {"circle", "square", "triangle"} <= set(SHAPES)
    assert len(OBJECT_COLORS) >= 4 and len(BACKGROUND_COLORS) >= 3
    assert set(PATTERNS) == {"plain", "striped", "checkered", "dotted"}
    assert len(ORIENTATIONS["striped"]) >= 4
    # Both tones of every background are far from every object colour (the checker relies on it),
    # and the two tones of one background are clearly apart.
    for name, base in BACKGROUND_COLORS.items():
        assert 40 <= np.linalg.norm(np.subtract(base, PATTERN_TONES[name])) / np.sqrt(3) <= 50
        for bg in (base, PATTERN_TONES[name]):
            for fg in OBJECT_COLORS.values():
                assert np.linalg.norm(np.subtract(bg, fg)) > 100
    captions = all_captions()
    assert len(set(captions)) == len(OBJECT_COLORS) * len(SHAPES) * len(BACKGROUND_COLORS) * len(PATTERNS) == 144
    assert "a red circle on a white striped background" in captions
    assert "a red circle on a white background" in captions
    assert all(parse_caption(c) == parse_caption(c.upper()) for c in captions)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_renders_are_seeded_inside_the_frame_and_carry_their_ground_truth(seed: int) -> None:
    a = render_random(torch.Generator().manual_seed(seed))
    b = render_random(torch.Generator().manual_seed(seed))
    assert a.spec == b.spec and np.array_equal(a.image, b.image)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    ys, xs = np.nonzero(a.mask)
    assert ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63  # fully inside
    # Away from the antialiased edge, background pixels are exactly the texture's two-tone blend.
    base = np.asarray(BACKGROUND_COLORS[a.spec.background], np.float32)
    tone = np.asarray(PATTERN_TONES[a.spec.background], np.float32)
    expected = np.rint(base + a.spec.texture.coverage(64)[..., None] * (tone - base)).astype(np.uint8)
    away = ~_dilate(_dilate(_dilate(a.mask)))
    assert (a.image[away] == expected[away]).all()
    assert parse_caption(a.caption) == (a.spec.color, a.spec.shape, a.spec.background, a.spec.pattern)
    texture = a.spec.texture
    if texture.pattern != "plain":
        assert PERIOD_RANGE[0] <= texture.period <= PERIOD_RANGE[1]
        assert texture.orientation in ORIENTATIONS[texture.pattern]
        assert all(0 <= p < 1 for p in texture.phase)


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _orientation_error(pattern: str, read: float, true: float) -> float:
    period = orientation_period(pattern)
    return abs((read - true + period / 2) % period - period / 2)


def test_checker_reads_at_least_99_percent_of_fresh_renders_per_attribute() -> None:
    g = torch.Generator().manual_seed(2024)
    n, ious = 600, []
    right = dict.fromkeys(["color", "shape", "background", "pattern"], 0)
    textured = orientation_ok = period_ok = 0
    for _ in range(n):
        r = render_random(g)
        reading = read_shape(r.image)
        for key in right:
            right[key] += getattr(reading, key) == getattr(r.spec, key)
        ious.append((reading.mask & r.mask).sum() / (reading.mask | r.mask).sum())
        if r.spec.pattern != "plain":
            textured += 1
            orientation_ok += _orientation_error(r.spec.pattern, reading.orientation, r.spec.texture.orientation) <= ORIENTATION_STEP
            period_ok += abs(reading.period - r.spec.texture.period) <= 0.1 * r.spec.texture.period
    assert all(count / n >= 0.99 for count in right.values()), right
    assert textured > 300 and orientation_ok / textured >= 0.95 and period_ok / textured >= 0.9
    assert np.mean(ious) > 0.9


@settings(max_examples=60, deadline=None)
@example(pattern="checkered", period=10.0, angle_index=0, phase=(0.25, 0.25), background="black")  # half-covered edges
@given(
    pattern=st.sampled_from(["striped", "checkered", "dotted"]),
    period=st.floats(*PERIOD_RANGE),
    angle_index=st.integers(0, 7),
    phase=st.tuples(st.floats(0, 0.999), st.floats(0, 0.999)),
    background=st.sampled_from(sorted(BACKGROUND_COLORS)),
)
def test_texture_reader_recovers_pattern_orientation_and_period(
    pattern: str, period: float, angle_index: int, phase: tuple[float, float], background: str
) -> None:
    angles = ORIENTATIONS[pattern]
    texture = Texture(pattern, period, angles[angle_index % len(angles)], phase)
    cover = texture.coverage(64)
    share = float(cover.mean())
    assert abs(share - (0.25 if pattern == "dotted" else 0.5)) < 0.08
    base = np.asarray(BACKGROUND_COLORS[background], np.float32)
    image = base + cover[..., None] * (np.asarray(PATTERN_TONES[background], np.float32) - base)
    reading = read_texture(image, background, np.ones((64, 64), bool))
    assert reading.pattern == pattern
    assert _orientation_error(pattern, reading.orientation, texture.orientation) < ORIENTATION_STEP / 2
    assert abs(reading.period - period) <= 0.1 * period
    plain = read_texture(np.broadcast_to(base, (64, 64, 3)), background, np.ones((64, 64), bool))
    assert plain.pattern == "plain" and plain.period == 0.0


def test_checker_reports_no_object_on_a_plain_image_and_rejects_bad_shapes() -> None:
    plain = np.full((64, 64, 3), BACKGROUND_COLORS["gray"], dtype=np.uint8)
    reading = read_shape(plain)
    assert not reading.found_object and reading.shape == "none" and reading.background == "gray"
    with pytest.raises(ValueError, match="h, w, 3"):
        read_shape(np.zeros((64, 64)))
    assert read_shape(Image.fromarray(plain).convert("RGBA")).background == "gray"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_checker_is_robust_to_blur_and_noise(shape: str, pattern: str) -> None:
    texture = Texture(pattern, 12.0, 22.5, (0.3, 0.6)) if pattern != "plain" else Texture()
    spec = ShapeSpec("blue", shape, "white", (32.0, 30.0), 13.0, texture)
    image = render(spec).image.astype(np.float32)
    blurred = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1) + np.roll(image, (1, 1), (0, 1))) / 4
    noisy = blurred + np.random.default_rng(0).normal(0, 8, image.shape)
    reading = read_shape(np.clip(noisy, 0, 255).astype(np.uint8))
    assert (reading.color, reading.shape, reading.background, reading.pattern) == ("blue", shape, "white", pattern)


def test_render_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="colour"):
        render(ShapeSpec("purple", "circle", "white", (32, 32), 10))
    with pytest.raises(ValueError, match="fit"):
        render(ShapeSpec("red", "circle", "white", (5, 32), 10))
    with pytest.raises(ValueError, match="caption"):
        parse_caption("a red circle")
    with pytest.raises(ValueError, match="caption"):
        parse_caption("a red circle on a white plain background")
    with pytest.raises(ValueError, match="pattern"):
        Texture("wavy", 12.0)
    with pytest.raises(ValueError, match="period"):
        Texture("striped", 0.0)
    with pytest.raises(ValueError, match="pattern"):
        sample_spec(torch.Generator().manual_seed(0), pattern="wavy")


def test_sample_spec_respects_fixed_fields() -> None:
    spec = sample_spec(torch.Generator().manual_seed(0), color="green", shape="square", pattern="dotted")
    assert (spec.color, spec.shape, spec.pattern) == ("green", "square", "dotted")


def test_sentence_banks_contain_their_word_and_the_tokenizer_words() -> None:
    assert all(parse_caption(s).pattern == "plain" for s in sentence_bank("plain"))
    assert len(sentence_bank("plain")) == len(sentence_bank("striped")) == 36
    for word in ["red", "circle", "white", "striped"]:
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


def test_edit_metrics_see_whether_the_texture_was_kept() -> None:
    stripes = Texture("striped", 12.0, 45.0, (0.2, 0.0))
    src = render(ShapeSpec("red", "circle", "gray", (32.0, 32.0), 12.0, stripes))
    target = "a blue circle on a gray striped background"
    kept = render(ShapeSpec("blue", "circle", "gray", (32.0, 32.0), 12.0, stripes))
    turned = render(ShapeSpec("blue", "circle", "gray", (32.0, 32.0), 12.0, Texture("striped", 12.0, 90.0)))
    assert edit_metrics(src, kept.image, target).texture_kept is True
    lost = edit_metrics(src, turned.image, target)
    assert lost.edit_correct and lost.pattern_correct and lost.texture_kept is False
    assert lost.background_psnr < 25
    plain = edit_metrics(src, kept.image, "a blue circle on a gray background")
    assert plain.texture_kept is None and not plain.pattern_correct and not plain.edit_correct
