"""The local blend: its mask, the latent mix, the scheduler hook and the engine option."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.attention import AttentionRecords
from zerocon.editing import EditSettings
from zerocon.editing.token_positions import word_token_positions
from zerocon.guidance import GuidanceInputs, GuidedScheduler, LocalBlend, blend_latents, blend_mask
from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes.word_tokenizer import build_word_tokenizer

FAST: dict[str, Any] = {"num_inference_steps": 3, "num_reg_iterations": 1, "show_progress": False}
CAPTION = "a red circle on a white background"
TARGET = "a blue circle on a white background"


def _edit(pipe: ZeroConPipeline, **kwargs: Any) -> Any:
    g = torch.Generator().manual_seed(0)
    image = Image.fromarray((torch.rand(16, 16, 3, generator=g) * 255).to(torch.uint8).numpy(), mode="RGB")
    return pipe(image, TARGET, source_prompt=CAPTION, generator=torch.Generator().manual_seed(0),
                **{**FAST, "output_type": "np", **kwargs})


maps_strategy = st.builds(
    lambda seed, k: torch.rand(2, k, 4, 4, generator=torch.Generator().manual_seed(seed)),
    st.integers(0, 10_000), st.integers(1, 3),
)


@settings(max_examples=40, deadline=None)
@given(maps=maps_strategy, threshold=st.floats(0.0, 1.0), dilation=st.integers(0, 2))
def test_blend_mask_is_binary_grows_with_dilation_and_inverts(maps, threshold, dilation) -> None:
    mask = blend_mask(maps, (8, 8), threshold, dilation)
    assert mask.shape == (2, 1, 8, 8)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (mask >= blend_mask(maps, (8, 8), threshold, 0)).all()
    flipped = blend_mask(maps, (8, 8), threshold, 0, invert=True)
    assert torch.equal(flipped, 1 - blend_mask(maps, (8, 8), threshold, 0))
    # The strongest location of each row is always kept by the plain mask.
    assert blend_mask(maps, (8, 8), threshold, 0).flatten(1).amax(1).eq(1).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 1.5}, "threshold"), ({"dilation": -1}, "dilation"),
])
def test_blend_mask_rejects_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        blend_mask(torch.rand(1, 1, 4, 4), (4, 4), **kwargs)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_blend_latents_takes_edit_inside_and_reference_outside(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    edit, ref = torch.randn(1, 4, 6, 6, generator=g), torch.randn(1, 4, 6, 6, generator=g)
    mask = (torch.rand(1, 1, 6, 6, generator=g) > 0.5).float()
    mixed = blend_latents(edit, ref, mask)
    inside = mask.expand_as(edit).bool()
    assert torch.equal(mixed[inside], edit[inside])
    assert torch.allclose(mixed[~inside], ref[~inside])


def test_local_blend_needs_tokens_and_records() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LocalBlend([])
    with pytest.raises(ValueError, match="no attention yet"):
        LocalBlend([1])(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2))
    blend = LocalBlend([5])
    blend.add(AttentionRecords({"l": torch.full((1, 4, 3), 1 / 3)}, {}, {"l": 1}))
    with pytest.raises(ValueError, match="beyond the 3 tokens"):
        blend(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2))


def test_post_step_hook_changes_the_stepped_latent_and_checks_its_shape() -> None:
    guided = GuidedScheduler(DDIMScheduler())
    guided.set_timesteps(4)
    t = guided.timesteps[0]
    args = (torch.randn(1, 4, 4, 4), t, lambda x: GuidanceInputs(None, latents=x), torch.zeros_like)
    out = guided.guided_step(*args, post_step=lambda x: x * 0)
    assert torch.equal(out.prev_sample, torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="post_step returned shape"):
        guided.guided_step(*args, post_step=lambda x: x[:, :2])


@settings(max_examples=25, deadline=None)
@given(words=st.lists(st.sampled_from(["a", "red", "circle", "on", "white", "reddish", "xq"]), min_size=1, max_size=8),
       pick=st.integers(0, 7))
def test_word_positions_point_at_the_words_tokens(words, pick) -> None:
    tok = build_word_tokenizer(["a", "red", "circle", "on", "white"], model_max_length=64)
    word = words[pick % len(words)]
    prompt = " ".join(words)
    positions = word_token_positions(tok, prompt, [word])
    ids = tok(prompt).input_ids
    own = tok(word, add_special_tokens=False).input_ids
    assert positions, "every occurrence of a word has at least one token"
    assert len(positions) == own.__len__() * words.count(word)
    assert [ids[p] for p in positions[: len(own)]] == own


def test_blend_everywhere_is_the_plain_edit_and_blend_nowhere_is_the_reconstruction(pipe) -> None:
    plain = _edit(pipe, method="zerocon")
    everywhere = _edit(pipe, method="zerocon", local_blend=True, blend_threshold=0.0)
    assert abs(plain.images - everywhere.images).max() < 1e-5  # the pixel blend decodes in a batch of two
    latent_only = _edit(pipe, method="zerocon", local_blend=True, blend_threshold=0.0, blend_pixels=False)
    assert (plain.images == latent_only.images).all()
    nowhere = _edit(pipe, method="zerocon", local_blend=True, blend_threshold=0.0, blend_invert=True)
    reconstruction = _edit(pipe, method="pix2pix-zero", direction_scale=0.0, guidance_step_size=0.0)
    assert abs(nowhere.images - reconstruction.images).max() < 1e-4
    assert abs(nowhere.images - plain.images).max() > 1e-3
    assert nowhere.parameters["settings"]["blend"]["enabled"] is True
    assert nowhere.parameters["resolved"]["features"] == ["LocalBlendFeature"]


def test_a_late_start_leaves_the_latents_of_the_plain_edit(pipe) -> None:
    plain = _edit(pipe, method="pix2pix-zero", output_type="latent")
    late = _edit(pipe, method="pix2pix-zero", output_type="latent", local_blend=True,
                 blend_threshold=0.0, blend_invert=True, blend_start=1.0)
    early = _edit(pipe, method="pix2pix-zero", output_type="latent", local_blend=True,
                  blend_threshold=0.0, blend_invert=True, blend_start=0.0)
    assert torch.equal(plain.images, late.images)
    assert not torch.allclose(plain.images, early.images)


def test_local_blend_is_refused_without_recorded_attention_and_notices_missing_words(pipe) -> None:
    with pytest.raises(ValueError, match="local_blend needs a method"):
        _edit(pipe, method="ddim", local_blend=True)
    with pytest.warns(UserWarning, match="local blend is off"):
        out = _edit(pipe, method="pix2pix-zero", local_blend=True, blend_words=("giraffe",))
    assert any("local blend is off" in n for n in out.notices[0])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("blend_threshold", 2.0, "blend_threshold"), ("blend_dilation", -1, "blend_dilation"),
    ("blend_words", "red", "blend_words"), ("local_blend", "yes", "local_blend"),
    ("blend_start", 1.5, "blend_start"), ("blend_pixels", 1, "blend_pixels"),
])
def test_blend_settings_are_validated(field, value, message, unchecked) -> None:
    with pytest.raises(ValueError, match=message):
        EditSettings(**{field: value})


def test_blend_settings_round_trip() -> None:
    s = EditSettings(local_blend=True, blend_words=("red", "circle"), blend_invert=True)
    assert EditSettings.from_json(s.to_json()) == s
