"""zerocon++: its preset, and every structure component on the engine's loop (tiny models)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from zerocon.editing import EditSettings, ZeroConPlusPlusMethod, get_method
from zerocon.pipelines import ZeroConPipeline

FAST: dict[str, Any] = {"num_inference_steps": 3, "num_reg_iterations": 1, "show_progress": False}
CAPTION = "a red circle on a white background"
OBJECT_TARGET = "a blue circle on a white background"
SCENE_TARGET = "a red circle on a black background"


def _edit(pipe: ZeroConPipeline, target: str = OBJECT_TARGET, **kwargs: Any) -> Any:
    g = torch.Generator().manual_seed(0)
    image = Image.fromarray((torch.rand(16, 16, 3, generator=g) * 255).to(torch.uint8).numpy(), mode="RGB")
    return pipe(image, target, source_prompt=CAPTION, generator=torch.Generator().manual_seed(0),
                **{**FAST, "output_type": "np", **kwargs})


def test_the_preset_is_valid_and_recorded(pipe) -> None:
    method = get_method("zerocon++")
    assert isinstance(method, ZeroConPlusPlusMethod)
    settings = EditSettings.for_method("zerocon++")
    for key, value in method.defaults.items():
        assert settings.get(key) == value
    assert EditSettings.for_method("zerocon") == EditSettings("zerocon")
    assert EditSettings() == settings  # one default method: the settings' default is zerocon++'s preset
    out = _edit(pipe)  # the pipeline's default method
    assert out.parameters["method"] == "zerocon++"
    assert EditSettings.from_dict(out.parameters["settings"]) == settings.replace(**{
        k: v for k, v in FAST.items() if k != "show_progress"})
    assert np.isfinite(out.images).all()


def test_paper_method_is_unchanged_by_the_new_settings(pipe) -> None:
    paper = _edit(pipe, method="zerocon")
    explicit = _edit(pipe, settings=EditSettings("zerocon", **{k: v for k, v in FAST.items() if k != "show_progress"}),
                     show_progress=False)
    assert (paper.images == explicit.images).all()
    recorded = paper.parameters["settings"]
    assert recorded["guidance"]["feature_term"] == "patch-nce" and recorded["blend"]["enabled"] is False


@pytest.mark.parametrize(("target", "kind", "words"), [
    (OBJECT_TARGET, "object", "['red']"), (SCENE_TARGET, "scene", "['red', 'circle']"),
])
def test_the_scope_is_read_from_the_words(pipe, target, kind, words) -> None:
    out = _edit(pipe, target)
    assert f"edit scope: {kind} (blend words {words})" in out.notices[0]


def test_a_scene_edit_keeps_the_subject_pixels_only_by_default(pipe) -> None:
    plain = _edit(pipe, SCENE_TARGET, local_blend=False, output_type="latent")
    pixels = _edit(pipe, SCENE_TARGET, output_type="latent")
    latents = _edit(pipe, SCENE_TARGET, scene_blend_latents=True, output_type="latent")
    assert torch.equal(plain.images, pixels.images)  # latents untouched; the blend is at decode
    assert not torch.equal(plain.images, latents.images)


def test_injecting_self_attention_changes_the_edit_and_counts_no_extra_rows(pipe) -> None:
    plain = _edit(pipe, method="zerocon")
    injected = _edit(pipe, method="zerocon", inject_self_attention=1.0)
    assert abs(plain.images - injected.images).max() > 1e-4
    assert plain.unet_evals[0] == injected.unet_evals[0]


def test_reference_from_inversion_drops_the_reference_rows(pipe) -> None:
    separate = _edit(pipe, method="zerocon")
    merged = _edit(pipe, method="zerocon", reference_from_inversion=True)
    assert separate.unet_evals[0].get("reference", 0) == FAST["num_inference_steps"]
    assert merged.unet_evals[0].get("reference", 0) == 0
    assert merged.unet_evals[0]["inversion"] == separate.unet_evals[0]["inversion"]
    assert np.isfinite(merged.images).all()
    with_injection = _edit(pipe, method="zerocon", reference_from_inversion=True, inject_self_attention=1.0)
    assert abs(with_injection.images - merged.images).max() > 1e-4


@pytest.mark.parametrize("changes", [
    {"edit_condition": "target"}, {"edit_condition": "prompt-difference"}, {"guidance_schedule": "linear"},
    {"feature_term": "centered-patch-nce"}, {"feature_term": "feature-l2", "balance_features": True},
    {"lambda_tone": 5.0, "local_blend": True},
])
def test_each_option_changes_the_paper_edit(pipe, changes) -> None:
    plain = _edit(pipe, method="zerocon", output_type="latent")
    changed = _edit(pipe, method="zerocon", output_type="latent", **changes)
    assert torch.isfinite(changed.images).all()
    assert not torch.equal(plain.images, changed.images)


def test_a_constant_schedule_and_a_blend_of_all_ones_leave_the_edit_alone(pipe) -> None:
    plain = _edit(pipe, method="zerocon", output_type="latent")
    same = _edit(pipe, method="zerocon", output_type="latent", guidance_schedule="constant",
                 local_blend=True, blend_threshold=0.0, blend_pixels=False, lambda_tone=5.0)
    # All-ones blend: nothing outside the edit region, so the tone anchor has nowhere to act.
    assert torch.equal(plain.images, same.images)


@pytest.mark.parametrize(("changes", "message"), [
    ({"lambda_tone": 1.0}, "needs local_blend"),
    ({"method": "sdedit", "inject_self_attention": 0.5}, "reference pass"),
    ({"method": "ddim", "reference_from_inversion": True}, "reference pass"),
])
def test_contradictions_are_refused_before_any_model_runs(pipe, changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        _edit(pipe, **{"method": "zerocon", **changes})


@pytest.mark.parametrize(("field", "value"), [
    ("edit_condition", "words"), ("guidance_schedule", "cosine"), ("feature_term", "nce"),
    ("blend_scope", "magic"), ("tone_pool", 4), ("inject_self_attention", 1.5), ("scene_words", "background"),
    ("lambda_tone", float("inf")),
])
def test_new_settings_are_validated(field, value, unchecked) -> None:
    with pytest.raises(ValueError, match=field):
        EditSettings(**{field: value})


def test_token_weights_release_a_tokens_map() -> None:
    from types import SimpleNamespace as R

    from zerocon.guidance import CrossAttentionGuidance, GuidanceInputs

    g = torch.Generator().manual_seed(0)
    ref = torch.softmax(torch.randn(2, 16, 5, generator=g), -1)  # one image, two heads
    edit = ref.clone()
    edit[:, :, 3] += 0.2  # only token 3 differs
    records = R(cross_attention={"l": edit}, heads={"l": 2})
    reference = R(cross_attention={"l": ref}, heads={"l": 2})
    term = CrossAttentionGuidance()
    plain = term(GuidanceInputs(records, reference))
    ones = term(GuidanceInputs(records, reference, token_weights=torch.ones(1, 5)))
    released = term(GuidanceInputs(records, reference, token_weights=torch.tensor([[1.0, 1, 1, 0, 1]])))
    torch.testing.assert_close(plain, ones)
    assert float(plain) > 0 and float(released) == pytest.approx(0.0, abs=1e-12)


def test_releasing_the_edited_words_changes_the_guided_edit(pipe) -> None:
    held = _edit(pipe, method="pix2pix-zero", output_type="latent")
    released = _edit(pipe, method="pix2pix-zero", output_type="latent", release_edited_tokens="all")
    scene_only = _edit(pipe, method="pix2pix-zero", output_type="latent", release_edited_tokens="scene")
    assert not torch.equal(held.images, released.images)
    assert torch.equal(held.images, scene_only.images)  # an object edit: nothing released


def test_fused_calls_keep_the_reference_and_edit_unconditional_rows_apart(pipe) -> None:
    """zerocon++'s reference runs on the caption alone while its edit takes the empty prompt."""
    separate = _edit(pipe, output_type="latent", fuse_unet_calls=False)
    fused = _edit(pipe, output_type="latent", fuse_unet_calls=True)
    torch.testing.assert_close(separate.images, fused.images, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- artefact features (#25)
def test_a_feathered_mask_is_the_hard_mask_away_from_its_edge() -> None:
    from zerocon.guidance import blend_mask

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        maps = torch.rand(2, 2, 6, 6, generator=g)
        hard = blend_mask(maps, (12, 12), threshold=0.5, dilation=1)
        soft = blend_mask(maps, (12, 12), threshold=0.5, dilation=1, feather=2)
        assert torch.equal(blend_mask(maps, (12, 12), threshold=0.5, dilation=1, feather=0), hard)
        assert soft.min() >= 0 and soft.max() <= 1
        # Where the hard mask is constant over the window, the soft mask equals it.
        window = torch.nn.functional.max_pool2d(hard, 5, 1, 2) - (-torch.nn.functional.max_pool2d(-hard, 5, 1, 2))
        flat = window == 0
        assert torch.allclose(soft[flat], hard[flat])
        assert ((soft > 0) & (soft < 1)).any() == ((hard == 0).any() and (hard == 1).any())


def test_scene_renoise_regenerates_scene_edits_only(pipe) -> None:
    plain = _edit(pipe, SCENE_TARGET, method="zerocon++", output_type="latent")
    renoised = _edit(pipe, SCENE_TARGET, method="zerocon++", scene_renoise=0.5, output_type="latent")
    assert not torch.equal(plain.images, renoised.images)
    assert torch.isfinite(renoised.images).all()
    assert renoised.parameters["resolved"]["features"] == ["LocalBlendFeature", "SceneHandling", "SceneRenoise"]
    obj = _edit(pipe, OBJECT_TARGET, method="zerocon++", output_type="latent")
    obj_renoised = _edit(pipe, OBJECT_TARGET, method="zerocon++", scene_renoise=0.5, output_type="latent")
    assert torch.equal(obj.images, obj_renoised.images)  # object edits are left alone
    with pytest.raises(ValueError, match="scene_renoise needs local_blend=True"):
        _edit(pipe, SCENE_TARGET, method="zerocon", scene_renoise=0.5)
    with pytest.raises(ValueError, match="scene_renoise must be < 1"):
        EditSettings(scene_renoise=1.0)
