"""ZeroConPipeline on tiny random components: every method, determinism, counts, errors."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from PIL import Image

from zerocon.direction import EditDirection, TemplateSentences
from zerocon.guidance import CrossAttentionGuidance, NonFiniteGuidanceWarning
from zerocon.pipelines import ZeroConPipeline
from zerocon.testing import tiny_components

STEPS = 3
FAST: dict[str, Any] = {
    "num_inference_steps": STEPS,
    "num_reg_iterations": 1,
    "show_progress": False,
}


@pytest.fixture(scope="module")
def pipe() -> ZeroConPipeline:
    c = tiny_components()
    return ZeroConPipeline(
        c.vae,
        c.text_encoder,
        c.tokenizer,
        c.unet,
        c.scheduler,
        captioner=lambda images: ["a red circle on a white background"] * len(images),
        sentence_source=TemplateSentences(["a photo of a {}", "a {} on a background"]),
    )


def _image(seed: int = 0, size: int = 16) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    array = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(array, mode="RGB")


@pytest.mark.parametrize(
    ("method", "per_step"),
    [("zerocon", 5), ("pix2pix-zero", 5), ("ddim", 3), ("sdedit", 2)],
)
def test_every_method_runs_and_counts_unet_evals(
    pipe: ZeroConPipeline, method: str, per_step: int
) -> None:
    out = pipe(
        _image(),
        "a blue circle on a white background",
        method=method,
        generator=torch.Generator().manual_seed(0),
        strength=1.0,
        **FAST,
    )
    assert out.images[0].size == (16, 16) and out.images[0].mode == "RGB"
    assert out.captions == ["a red circle on a white background"]
    assert out.edit_words == [[("red", "blue")]]
    evals = out.unet_evals[0]
    assert evals["total"] == per_step * STEPS
    if method in ("zerocon", "pix2pix-zero"):
        assert evals == {"inversion": 3, "reference": 3, "guidance": 3, "denoise": 6, "total": 15}
        assert len(out.guidance_losses[0]) == STEPS
        names = set(out.guidance_losses[0][0])
        assert ("PatchNCEGuidance" in names) == (method == "zerocon")
    assert out.parameters["method"] == method and out.parameters["seed"] == 0
    assert {"caption", "direction", "encode", "inversion", "edit", "decode", "total"} <= set(
        out.timings[0]
    )


def test_same_seed_same_pixels_and_other_seed_differs(pipe: ZeroConPipeline) -> None:
    def run(seed: int) -> torch.Tensor:
        out = pipe(
            _image(),
            "a blue circle on a white background",
            output_type="latent",
            generator=torch.Generator().manual_seed(seed),
            **FAST,
        )
        return out.images

    first, second = run(0), run(0)
    assert torch.equal(first, second)
    assert not torch.equal(first, run(1))  # PatchNCE locations and regulariser rolls differ


def test_batch_of_images_matches_single_calls(pipe: ZeroConPipeline) -> None:
    images = [_image(1), _image(2)]
    out = pipe(
        images,
        "a blue circle on a white background",
        method="pix2pix-zero",
        output_type="np",
        generator=torch.Generator().manual_seed(3),
        **FAST,
    )
    assert out.images.shape == (2, 16, 16, 3)
    assert len(out.unet_evals) == len(out.captions) == 2
    single = pipe(
        images[0],
        "a blue circle on a white background",
        method="pix2pix-zero",
        output_type="np",
        generator=torch.Generator().manual_seed(3),
        **FAST,
    )
    # Edited together, not one after another: equal up to float rounding (tests/test_batched_edits.py).
    assert abs(single.images[0] - out.images[0]).max() < 1e-3


def test_resize_notice_and_rgba_input(pipe: ZeroConPipeline) -> None:
    rgba = _image(size=17).convert("RGBA")
    with pytest.warns(UserWarning, match="resized 17x17 to 16x16"):
        out = pipe(rgba, "a blue circle on a white background", method="ddim", **FAST)
    assert out.images[0].size == (16, 16)
    assert any("converted RGBA" in n for n in out.notices[0])


def test_direction_inputs_words_file_and_added_word(pipe: ZeroConPipeline, tmp_path) -> None:
    g = torch.Generator
    words = pipe(
        _image(),
        source_word="red",
        target_word="green",
        method="ddim",
        generator=g().manual_seed(0),
        **FAST,
    )
    assert words.target_prompts == ["a green circle on a white background"]
    path = tmp_path / "d.safetensors"
    pipe.build_direction([("red", "green")]).save(path)
    loaded = pipe(_image(), direction=path, method="ddim", generator=g().manual_seed(0), **FAST)
    assert torch.equal(
        torch.tensor(words.images[0].getdata()), torch.tensor(loaded.images[0].getdata())
    )
    added = pipe(_image(), "a big red circle on a white background", method="ddim", **FAST)
    assert any("E(target) - E(caption)" in n for n in added.notices[0])
    given = pipe(
        _image(),
        direction=EditDirection(torch.zeros(1, 16, 32)),
        method="ddim",
        source_prompt="a cat",
        **FAST,
    )
    assert given.captions == ["a cat"]


def test_nan_guidance_is_skipped_and_reported(pipe: ZeroConPipeline, monkeypatch) -> None:
    monkeypatch.setattr(
        CrossAttentionGuidance,
        "loss",
        lambda self, inputs: torch.tensor(float("nan")) + inputs.latents.sum() * 0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe(_image(), "a blue circle on a white background", method="pix2pix-zero", **FAST)
    assert out.skipped_guidance_steps == [[0, 1, 2]]
    assert sum(issubclass(w.category, NonFiniteGuidanceWarning) for w in caught) == 1
    assert any("NaN/Inf" in n for n in out.notices[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_prompt": ""}, "target prompt is empty"),
        ({"target_prompt": "a red circle on a white background"}, "nothing to edit"),
        ({}, "no edit given"),
        ({"source_word": "red"}, "both source_word and target_word"),
        ({"target_prompt": "a cat", "method": "nope"}, "unknown method"),
        ({"target_prompt": "a cat", "num_inference_steps": 0}, "num_inference_steps"),
        ({"target_prompt": "a cat", "strength": 0.0}, "strength"),
        ({"target_prompt": "a cat", "source_prompt": ["a", "b"]}, "2 entries for 1 images"),
        ({"target_prompt": "a cat", "patch_nce_layers": "nowhere", "method": "zerocon"}, "selects no self-attention"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    pipe: ZeroConPipeline, kwargs: dict, message: str
) -> None:
    args = {**FAST, **kwargs}
    target = args.pop("target_prompt", None)
    with pytest.raises(ValueError, match=message):
        pipe(_image(), target, **args)


def test_no_captioner_and_no_source_prompt() -> None:
    c = tiny_components()
    bare = ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler)
    with pytest.raises(ValueError, match="no captioner"):
        bare(_image(), "a cat", **FAST)
    with pytest.raises(FileNotFoundError):
        bare(_image(), direction="/no/such/direction.safetensors", source_prompt="a cat", **FAST)


def test_zerocon_on_a_non_square_image(pipe: ZeroConPipeline) -> None:
    # 24x16 pixels -> an 8x12 latent: the decoder's self-attention features have 96 locations,
    # not a square, and PatchNCE pools them (pool sizes (1, 2)).
    g = torch.Generator().manual_seed(0)
    array = (torch.rand(16, 24, 3, generator=g) * 255).to(torch.uint8)
    image = Image.fromarray(array.numpy(), mode="RGB")
    out = pipe(
        image,
        "a blue circle on a white background",
        method="zerocon",
        generator=torch.Generator().manual_seed(0),
        **FAST,
    )
    assert out.images[0].size == (24, 16)
    assert out.parameters["settings"]["guidance"]["nce_pool_sizes"] == [1, 2]
    assert all(step["PatchNCEGuidance"] > 0 for step in out.guidance_losses[0])
    assert out.skipped_guidance_steps == [[]]


def test_direction_cache_tells_equal_looking_sources_apart(pipe: ZeroConPipeline) -> None:
    first = TemplateSentences(["a photo of a {}", "a {} on a background"])
    second = TemplateSentences(["the {}", "a {} with a circle"])
    assert repr(first) == repr(second)  # what the cache used to be keyed on
    a = pipe.build_direction([("red", "blue")], first)
    b = pipe.build_direction([("red", "blue")], second)
    assert not torch.allclose(a.delta, b.delta)
    assert pipe.build_direction([("red", "blue")], first) is a  # still cached per source


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cross_attention_layers": "nowhere"}, "selects no cross-attention"),
        ({"patch_nce_layers": "nowhere", "method": "zerocon"}, "selects no self-attention"),
        ({"nce_num_patches": 0}, "num_patches"),
        ({"nce_pool_sizes": (0,)}, "pool_sizes"),
        ({"nce_temperature": 0.0}, "temperature"),
        ({"guidance_step_size": -1.0}, "guidance_step_size"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
    ],
)
def test_bad_guidance_settings_fail_before_any_model_runs(
    pipe: ZeroConPipeline, monkeypatch, kwargs: dict, message: str
) -> None:
    unet_calls: list[int] = []
    captions: list[int] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: unet_calls.append(1))

    def captioner(images):
        captions.append(1)
        return ["a red circle on a white background"] * len(images)

    monkeypatch.setattr(pipe, "captioner", captioner)
    try:
        with pytest.raises(ValueError, match=message):
            pipe(_image(), "a blue circle on a white background", **FAST, **kwargs)
    finally:
        handle.remove()
    assert unet_calls == [] and captions == []


@pytest.mark.parametrize("fuse", [False, True])
def test_direction_reaches_only_the_conditional_branch(pipe: ZeroConPipeline, fuse: bool) -> None:
    caption, negative = "a red circle on a white background", "a photo"
    seen: list[torch.Tensor] = []

    def capture(module, args, kwargs):
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        seen.append(states.detach().clone())

    handle = pipe.unet.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        pipe(
            _image(),
            source_prompt=caption,
            source_word="red",
            target_word="blue",
            negative_prompt=negative,
            method="pix2pix-zero",
            guidance_scale=5.0,
            generator=torch.Generator().manual_seed(0),
            fuse_unet_calls=fuse,
            **FAST,
        )
    finally:
        handle.remove()
    uncond = pipe.encode_text([negative])
    edit_cond = pipe.build_direction([("red", "blue")]).apply_to(pipe.encode_text([caption]))
    # The edit pass's [uncond, cond] rows end a call; fused, the next step's reference rows
    # [caption, uncond] come first in the same call (all steps but the last).
    cfg_batches = [s for s in seen if s.shape[0] == 2 and not torch.equal(s[1:], pipe.encode_text([caption]))]
    if fuse:
        cfg_batches += [s for s in seen if s.shape[0] == 4]
    assert len(cfg_batches) == STEPS
    for states in cfg_batches:
        torch.testing.assert_close(states[-2:-1], uncond, rtol=0, atol=0)
        torch.testing.assert_close(states[-1:], edit_cond)
    assert not torch.allclose(edit_cond, pipe.encode_text([caption]))


def test_tensors_go_to_the_execution_device_not_the_unets(
    pipe: ZeroConPipeline, monkeypatch
) -> None:
    # With model CPU offload the UNet's weights sit on the CPU while it runs on the
    # accelerator; only ``_execution_device`` knows where inputs must go. Simulate a UNet that
    # reports another device than the one the pipeline executes on.
    from diffusers import UNet2DConditionModel

    monkeypatch.setattr(UNet2DConditionModel, "device", property(lambda self: torch.device("meta")))
    monkeypatch.setattr(
        ZeroConPipeline, "_execution_device", property(lambda self: torch.device("cpu"))
    )
    assert pipe.encode_text(["a red circle"]).device == torch.device("cpu")
    out = pipe(_image(), "a blue circle on a white background", method="ddim", **FAST)
    assert out.images[0].size == (16, 16)
