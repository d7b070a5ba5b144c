"""The editing engine: settings, method registry, callbacks and steering, scheduler policy."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from diffusers import EulerDiscreteScheduler
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.editing import (
    AttentionMapsCallback,
    Callback,
    EditMethod,
    EditSettings,
    GuidanceEvent,
    JsonlLogger,
    ModelDefaults,
    X0PreviewCallback,
    get_method,
    register_method,
    unregister_method,
)
from zerocon.guidance import GuidanceInputs, GuidanceTerm
from zerocon.pipelines import ZeroConPipeline
from zerocon.testing import tiny_components

FAST: dict[str, Any] = {"num_inference_steps": 3, "num_reg_iterations": 1, "show_progress": False}
CAPTION = "a red circle on a white background"
TARGET = "a blue circle on a white background"


def _image(seed: int = 0, size: int = 16) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy(), mode="RGB")


def _edit(pipe: ZeroConPipeline, seed: int = 0, **kwargs: Any) -> Any:
    values = {**FAST, **kwargs}
    return pipe(_image(), TARGET, source_prompt=CAPTION, generator=torch.Generator().manual_seed(seed),
                output_type="np", **values)


# ----------------------------------------------------------------------------- settings
finite = st.floats(0.0, 100.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 500), scale=st.floats(1.0, 20.0), step_size=st.none() | finite,
    lambda_nce=finite, pools=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    negative=st.none() | st.text(max_size=20), direction_scale=st.floats(-3, 3),
)
def test_settings_round_trip_through_json(steps, scale, step_size, lambda_nce, pools, negative, direction_scale) -> None:
    s = EditSettings(num_inference_steps=steps, guidance_scale=scale, guidance_step_size=step_size,
                     lambda_nce=lambda_nce, nce_pool_sizes=tuple(pools), negative_prompt=negative,
                     direction_scale=direction_scale)
    assert EditSettings.from_json(s.to_json()) == s
    assert EditSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("guidance_scale", float("nan"), "finite"),
        ("guidance_scale", float("inf"), "finite"),
        ("guidance_scale", 0.5, ">= 1"),
        ("guidance_step_size", float("inf"), "finite"),
        ("guidance_step_size", -1.0, ">= 0"),
        ("direction_scale", float("nan"), "finite"),
        ("num_inference_steps", 2.5, "whole number"),
        ("num_inference_steps", 0, ">= 1"),
        ("num_inference_steps", True, "whole number"),
        ("strength", 0.0, "> 0"),
        ("strength", 1.5, "<= 1"),
        ("nce_temperature", 0.0, "> 0"),
        ("nce_pool_sizes", (), "at least one"),
        ("max_grad_norm", 0.0, "> 0"),
        ("lambda_nce", "3", "number"),
    ],
)
def test_settings_reject_bad_values_at_once(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EditSettings(**{field: value})


def test_settings_reject_unknown_keys_and_the_pipeline_unknown_arguments(pipe) -> None:
    with pytest.raises(ValueError, match="unknown edit settings"):
        EditSettings.from_dict({"num_steps": 3})
    with pytest.raises(TypeError, match="unknown argument"):
        _edit(pipe, num_steps=3)
    with pytest.raises(ValueError, match="finite"):
        _edit(pipe, direction_scale=float("nan"))


def test_settings_object_and_keywords_give_the_same_edit(pipe) -> None:
    a = _edit(pipe, method="pix2pix-zero", lambda_xa=2.0)
    s = EditSettings(method="pix2pix-zero", lambda_xa=2.0, num_inference_steps=3, num_reg_iterations=1)
    b = pipe(_image(), TARGET, source_prompt=CAPTION, settings=s, generator=torch.Generator().manual_seed(0),
             output_type="np", show_progress=False)
    assert (a.images == b.images).all()
    assert EditSettings.from_dict(b.parameters["settings"]) == s


# ----------------------------------------------------------------------------- methods
class TowardsReferenceAttention(GuidanceTerm):
    """A user's term: pull only the edited token's cross-attention towards the reference."""

    def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
        total = torch.zeros(())
        for name, edit in inputs.edit.cross_attention.items():
            total = total + (edit[..., 2] - inputs.reference.cross_attention[name][..., 2]).pow(2).sum()
        return total


class TokenMethod(EditMethod):
    name = "token-attention"
    record_cross = True
    description = "a user's method: one token's cross-attention L2"

    def guidance_terms(self, settings, layers):
        return [TowardsReferenceAttention(settings.extras.get("weight", 1.0))]


def test_a_user_registers_a_method_from_their_own_terms(pipe) -> None:
    register_method(TokenMethod)
    try:
        out = _edit(pipe, method="token-attention", extras={"weight": 5.0})
        ddim = _edit(pipe, method="ddim")
        assert out.parameters["method"] == "token-attention"
        assert all("TowardsReferenceAttention" in step for step in out.guidance_losses[0])
        assert out.unet_evals[0]["guidance"] == 3 and out.unet_evals[0]["reference"] == 3
        assert not (out.images == ddim.images).all()  # the term moved the latent
        with pytest.raises(ValueError, match="already registered"):
            register_method(TokenMethod)
    finally:
        unregister_method("token-attention")
    with pytest.raises(ValueError, match="unknown method"):
        _edit(pipe, method="token-attention")


def test_an_unregistered_method_object_runs_too(pipe) -> None:
    out = _edit(pipe, method=TokenMethod())
    assert out.parameters["method_details"]["class"] == "TokenMethod"


# ----------------------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_edit_start(self, editor, plan, num_images):
        self.calls.append("edit_start")

    def on_image_start(self, editor, state):
        self.calls.append("image_start")

    def on_inversion_step(self, editor, state, step, timestep, latents):
        self.calls.append(f"inversion{step}")

    def on_reference_step(self, editor, state, step, timestep, latents, records):
        assert records.cross_attention and all(not v.requires_grad for v in records.cross_attention.values())
        assert set(records.heads) == set(records.cross_attention)
        self.calls.append(f"reference{step}")

    def on_guidance(self, editor, state, event):
        assert math.isfinite(event.loss) and event.grad_norm >= 0 and event.losses
        self.calls.append(f"guidance{event.step}")
        return None

    def on_edit_step(self, editor, state, step, timestep, latents, pred_x0):
        assert pred_x0 is not None and pred_x0.shape == latents.shape
        self.calls.append(f"edit{step}")

    def on_image_end(self, editor, state, image):
        self.calls.append("image_end")

    def on_edit_end(self, editor, output):
        self.calls.append("edit_end")


def test_hooks_fire_in_order_for_every_phase_and_step(pipe) -> None:
    first, second = Recorder(), Recorder()
    _edit(pipe, method="pix2pix-zero", callbacks=[first, second])
    per_step = [f"{kind}{k}" for k in range(3) for kind in ("reference", "guidance", "edit")]
    expected = ["edit_start", "image_start", "inversion0", "inversion1", "inversion2", *per_step, "image_end", "edit_end"]
    assert first.calls == second.calls == expected


def test_a_failing_hook_propagates_with_its_name(pipe) -> None:
    class Boom(Callback):
        def on_edit_step(self, editor, state, step, timestep, latents, pred_x0):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        _edit(pipe, method="ddim", callbacks=[Boom()])
    assert "Boom.on_edit_step" in " ".join(getattr(info.value, "__notes__", [str(info.value)]))


class Factor(Callback):
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def on_guidance(self, editor, state, event: GuidanceEvent) -> float:
        return self.factor


def test_vetoing_every_move_gives_the_unguided_edit(pipe) -> None:
    vetoed = _edit(pipe, method="pix2pix-zero", callbacks=[Factor(0.0)], fuse_unet_calls=False)
    unguided = _edit(pipe, method="ddim")
    assert (vetoed.images == unguided.images).all()
    # Fused with the next reference rows, the CFG rows round differently: equal up to that.
    fused = _edit(pipe, method="pix2pix-zero", callbacks=[Factor(0.0)], fuse_unet_calls=True)
    assert abs(fused.images - unguided.images).max() < 1e-4


def test_steering_factors_multiply_and_scale_the_step(pipe) -> None:
    steered = _edit(pipe, method="pix2pix-zero", guidance_step_size=0.05, callbacks=[Factor(2.0), Factor(3.0)])
    direct = _edit(pipe, method="pix2pix-zero", guidance_step_size=0.3)
    torch.testing.assert_close(torch.from_numpy(steered.images), torch.from_numpy(direct.images), atol=1e-6, rtol=0)


def test_built_in_callbacks_write_their_files(pipe, tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    maps, previews = AttentionMapsCallback(tmp_path / "maps"), X0PreviewCallback(tmp_path / "x0", every=2)
    _edit(pipe, method="zerocon", callbacks=[JsonlLogger(log), maps, previews])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 1, 2]
    assert set(lines[0]["losses"]) == {"CrossAttentionGuidance", "PatchNCEGuidance"}
    for path in [*maps.written, *previews.written]:
        assert path.is_file() and Image.open(path).size[0] > 64
    assert len(maps.written) == len(previews.written) == 1
    with pytest.raises(ValueError, match="reference pass"):
        _edit(pipe, method="ddim", callbacks=[AttentionMapsCallback(tmp_path / "none")])


# ----------------------------------------------------------------------------- scheduler policy
def test_a_non_ddim_scheduler_is_refused_for_inversion_and_used_for_sdedit() -> None:
    c = tiny_components()
    euler = EulerDiscreteScheduler.from_config(c.scheduler.config)
    pipe = ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, euler)
    with pytest.raises(ValueError, match=r"needs a DDIMScheduler.*EulerDiscreteScheduler"):
        _edit(pipe, method="zerocon")
    out = _edit(pipe, method="sdedit")
    assert out.parameters["scheduler"] == "EulerDiscreteScheduler"
    assert get_method("sdedit").invert is False


# ----------------------------------------------------------------------------- model defaults
def test_model_defaults_reject_malformed_files(tmp_path) -> None:
    (tmp_path / "zerocon.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        ModelDefaults.read(tmp_path)
    (tmp_path / "zerocon.json").write_text(json.dumps({"guidance_step_size": "fast"}))
    with pytest.raises(ValueError, match="finite number"):
        ModelDefaults.read(tmp_path)
    (tmp_path / "zerocon.json").write_text(json.dumps({"sentences": "missing"}))
    with pytest.raises(ValueError, match="does not exist"):
        ModelDefaults.read(tmp_path)
    (tmp_path / "zerocon.json").write_text(json.dumps({"speed": 1}))
    with pytest.raises(ValueError, match="keys"):
        ModelDefaults.read(tmp_path)


@pytest.mark.usefixtures("unchecked")  # a list with a gap is outside the annotation
def test_requests_without_an_edit_are_refused_before_any_model_runs(pipe) -> None:
    with pytest.raises(ValueError, match="image 1: no edit given"):
        pipe([_image(), _image(1)], ["a blue circle", None], source_prompt=CAPTION, **FAST)


def test_directions_built_without_a_source_are_cached_once(pipe) -> None:
    from zerocon.editing import DirectionBuilder

    builder = DirectionBuilder(pipe.text_encoder, pipe.tokenizer)
    first = builder.build([("red", "blue")])
    assert builder.build([("red", "blue")]) is first and len(builder._cache) == 1


def test_on_exception_fires_when_an_image_fails(pipe) -> None:
    class Watch(Callback):
        def __init__(self):
            self.errors = []

        def on_exception(self, editor, error):
            self.errors.append(type(error).__name__)

    watch = Watch()
    with pytest.raises(ValueError, match="nothing to edit"):
        pipe(_image(), CAPTION, source_prompt=CAPTION, callbacks=[watch], **FAST)
    assert watch.errors == ["ValueError"]


def test_model_defaults_need_captions_for_retrieval(tmp_path) -> None:
    (tmp_path / "clip").mkdir()
    (tmp_path / "zerocon.json").write_text(json.dumps({"captioner": {"type": "clip_retrieval", "model": "clip"}}))
    with pytest.raises(ValueError, match="captions"):
        ModelDefaults.read(tmp_path)


def test_settings_extras_must_be_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        EditSettings(extras={"weight": float("nan")})


def test_every_prediction_goes_through_the_editors_denoiser(pipe) -> None:
    """The model seam: a Denoiser the engine is given serves the inversion, the reference and the
    guided pass alike (here one that counts its calls around the tiny UNet)."""
    from zerocon.editing import Denoiser, Editor, EditRequest, UNetDenoiser

    class Counting:
        def __init__(self, inner):
            self.inner, self.model, self.calls = inner, inner.model, 0

        def __call__(self, sample, timestep, conditioning):
            self.calls += 1
            return self.inner(sample, timestep, conditioning)

    counting = Counting(UNetDenoiser(pipe.unet, vae_scale_factor=pipe.vae_scale_factor))
    assert isinstance(counting, Denoiser)
    editor = pipe.editor()
    seamed = Editor(pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.scheduler,
                    sentence_source=editor.sentence_source, denoiser=counting)
    requests = [EditRequest(target_prompt=TARGET, source_prompt=CAPTION, word_pairs=[("red", "blue")])]
    settings = EditSettings.for_method("zerocon", num_inference_steps=3, num_reg_iterations=1)
    ours = seamed.edit([_image()], requests, settings, generator=torch.Generator().manual_seed(0), output_type="np",
                       show_progress=False)
    plain = editor.edit([_image()], requests, settings, generator=torch.Generator().manual_seed(0), output_type="np",
                        show_progress=False)
    assert counting.calls >= 3 * 3  # inversion, reference and guided forwards of 3 steps
    assert (ours.images == plain.images).all()
