"""SD3 (an MMDiT trained by flow matching) edits through the engine's loop: tiny models, built locally."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusion3Pipeline
from PIL import Image

from zerocon.direction import SD3TextEncoder, encode_prompts
from zerocon.editing import Editor, EditRequest, EditSettings, SD3Denoiser
from zerocon.testing import tiny_sd3_components

CAPTION, TARGET = "a red circle on a white background", "a blue circle on a white background"


def _editor(dual_attention: bool = False) -> Editor:
    c = tiny_sd3_components(dual_attention=dual_attention)
    encoder = SD3TextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2,
                             joint_attention_dim=c.transformer.config.joint_attention_dim, max_sequence_length=8)
    return Editor(c.transformer, c.vae, encoder, c.tokenizer, c.scheduler,
                  denoiser=SD3Denoiser(c.transformer, encoder.pooled_dim))


def _image() -> Image.Image:
    g = torch.Generator().manual_seed(0)
    return Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).to(torch.uint8).numpy())


def test_the_sd3_encoder_encodes_as_the_sd3_pipeline() -> None:
    c = tiny_sd3_components()
    pipe = StableDiffusion3Pipeline(**c.as_kwargs())
    embeds, _, pooled, _ = pipe.encode_prompt(CAPTION, CAPTION, CAPTION, do_classifier_free_guidance=False,
                                              max_sequence_length=8)
    encoder = SD3TextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2, joint_attention_dim=64,
                             max_sequence_length=8)
    packed = encode_prompts(encoder, c.tokenizer, [CAPTION])
    torch.testing.assert_close(packed[:, :-1], embeds)
    torch.testing.assert_close(packed[:, -1, : encoder.pooled_dim], pooled)


@pytest.mark.parametrize("method", ["pix2pix-zero", "zerocon++", "ddim", "sdedit"])
def test_every_method_edits_a_flow_model_to_a_finite_nonconstant_image(method) -> None:
    editor = _editor()
    plan = editor.plan(EditSettings(method))
    assert plan.flow_matching
    if plan.method.record_cross:
        assert plan.layers.cross == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    out = editor.edit([_image()], [EditRequest(TARGET, CAPTION)], EditSettings(method, num_inference_steps=4),
                      generator=torch.Generator().manual_seed(0), output_type="np", show_progress=False)
    pixels = torch.from_numpy(out.images[0])
    assert torch.isfinite(pixels).all() and pixels.std() > 0
    if plan.method.record_cross:
        losses = [step["CrossAttentionGuidance"] for step in out.guidance_losses[0]]
        assert len(losses) == 4 and all(loss >= 0 for loss in losses) and any(loss > 0 for loss in losses)
    assert out.parameters["prediction_type"] == "flow"


def test_zerocon_with_patch_nce_reads_sd35_self_attention_features() -> None:
    editor = _editor(dual_attention=True)
    settings = EditSettings("zerocon", num_inference_steps=3, nce_num_patches=8)
    plan = editor.plan(settings)
    assert plan.layers.self_attention == ["transformer_blocks.0.attn2", "transformer_blocks.1.attn2"]
    out = editor.edit([_image()], [EditRequest(TARGET, CAPTION)], settings, generator=torch.Generator().manual_seed(0),
                      output_type="np", show_progress=False)
    assert all(step["PatchNCEGuidance"] > 0 for step in out.guidance_losses[0])
    with pytest.raises(ValueError, match="selects no self-attention layer"):
        _editor().plan(settings)  # SD3 (not 3.5) has no self-attention layer to tap


def test_features_not_ported_to_flow_models_are_refused_before_any_model_runs() -> None:
    editor = _editor()
    for flat in ({"reference_from_inversion": True}, {"scene_renoise": 0.5}, {"lambda_tone": 1.0},
                 {"inject_self_attention": 0.5}):
        with pytest.raises(ValueError, match="not available on flow-matching models"):
            editor.plan(EditSettings("zerocon++", **flat))


def test_a_zero_edit_reconstructs_through_the_flow_inversion() -> None:
    """``ddim`` with a zero direction: Euler inversion then Euler sampling on the caption."""
    editor = _editor()
    source = _image()
    settings = EditSettings("ddim", num_inference_steps=50, guidance_scale=1.0, direction_scale=0.0)
    out = editor.edit([source], [EditRequest(TARGET, CAPTION)], settings, output_type="latent", show_progress=False)
    from zerocon.editing.preprocessing import image_to_tensor

    with torch.no_grad():
        x0 = editor.vae.encode(image_to_tensor(source)).latent_dist.mean * editor.vae.config.scaling_factor
    error = (out.images - x0).abs().mean() / x0.abs().mean()
    assert error < 0.1, float(error)


# ----------------------------------------------------------------------------- the pipeline and the CLI
def _sd3_pipe():
    from zerocon.pipelines import ZeroConPipeline

    return ZeroConPipeline.from_pipe(StableDiffusion3Pipeline(**tiny_sd3_components().as_kwargs()))


def test_from_pipe_gives_the_sd3_pipeline_sharing_the_components() -> None:
    from zerocon.pipelines import ZeroConPipeline, ZeroConSD3Pipeline

    c = tiny_sd3_components()
    sd3 = StableDiffusion3Pipeline(**c.as_kwargs())
    pipe = ZeroConPipeline.from_pipe(sd3)
    assert isinstance(pipe, ZeroConSD3Pipeline) and pipe.transformer is sd3.transformer
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"  # kept, not swapped for DDIM


def test_save_and_reload_give_the_same_pixels_and_a_stock_sd3_folder_loads(tmp_path) -> None:
    from zerocon.pipelines import ZeroConPipeline, ZeroConSD3Pipeline

    pipe = _sd3_pipe()
    kwargs = {"source_prompt": CAPTION, "method": "zerocon++", "num_inference_steps": 3,
              "generator": torch.Generator().manual_seed(0), "show_progress": False}
    first = np.asarray(pipe(_image(), TARGET, **kwargs).images[0])  # 8-bit pixels (floats differ by ~1e-6)
    pipe.save_pretrained(tmp_path / "saved")
    again = ZeroConPipeline.from_pretrained(tmp_path / "saved")
    assert isinstance(again, ZeroConSD3Pipeline)
    kwargs["generator"] = torch.Generator().manual_seed(0)
    assert (np.asarray(again(_image(), TARGET, **kwargs).images[0]) == first).all() and first.std() > 0
    StableDiffusion3Pipeline(**tiny_sd3_components().as_kwargs()).save_pretrained(tmp_path / "stock")
    assert isinstance(ZeroConPipeline.from_pretrained(tmp_path / "stock"), ZeroConSD3Pipeline)


def test_zerocon_edit_runs_on_an_sd3_folder(tmp_path) -> None:
    from zerocon.cli.main import main

    StableDiffusion3Pipeline(**tiny_sd3_components().as_kwargs()).save_pretrained(tmp_path / "sd3")
    _image().save(tmp_path / "in.png")
    code = main(["edit", str(tmp_path / "in.png"), "--model", str(tmp_path / "sd3"), "--target", TARGET,
                 "--source", CAPTION, "--method", "pix2pix-zero", "--steps", "2", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_an_unknown_transformer_pipeline_is_refused_with_one_message() -> None:
    from zerocon.pipelines import UnsupportedPipelineError, ZeroConPipeline

    with pytest.raises(UnsupportedPipelineError, match="HunyuanDiTPipeline is not supported"):
        ZeroConPipeline.from_pipe(type("HunyuanDiTPipeline", (), {"components": {"transformer": object()}})())


# ----------------------------------------------------------------------------- FlowEdit
def test_flowedit_follows_its_update_rule_and_edits() -> None:
    """One FlowEdit step by hand, from the same noise, equals the method's first step."""
    editor = _editor()
    settings = EditSettings("flowedit", num_inference_steps=4, strength=0.5)
    seen = {}

    from zerocon.editing import Callback

    class First(Callback):
        def on_edit_step(self, editor, state, step, timestep, latents, pred_x0):
            seen.setdefault(step, latents)

    out = editor.edit([_image()], [EditRequest(TARGET, CAPTION)], settings, generator=torch.Generator().manual_seed(3),
                      callbacks=[First()], output_type="np", show_progress=False)
    assert torch.isfinite(torch.from_numpy(out.images)).all() and out.images.std() > 0
    assert sorted(seen) == [0, 1]  # the last half of four steps
    # By hand: the source latent, noise from the same generator, the two guided velocities.
    from zerocon.editing.preprocessing import image_to_tensor, prepare_image

    image = prepare_image(_image(), editor.vae_scale_factor).image
    with torch.no_grad():
        x_src = editor.vae.encode(image_to_tensor(image)).latent_dist.mean * editor.vae.config.scaling_factor
        scheduler = editor.edit_scheduler(editor.plan(settings).method)
        scheduler.set_timesteps(4)
        sigma, sigma_next, t = scheduler.sigmas[2], scheduler.sigmas[3], scheduler.timesteps[2]
        noise = torch.randn(x_src.shape, generator=torch.Generator().manual_seed(3))
        z_src = (1 - sigma) * x_src + sigma * noise
        cond, target, empty = (editor.encode_text([p]) for p in (CAPTION, TARGET, ""))
        v_src = editor.model_output(z_src, t, cond, empty, 3.5)
        v_tar = editor.model_output(x_src + z_src - x_src, t, target, empty, settings.guidance_scale)
        expected = x_src + (sigma_next - sigma) * (v_tar - v_src)
    torch.testing.assert_close(seen[0], expected, rtol=1e-4, atol=1e-5)


def test_flowedit_is_refused_on_a_noise_predicting_model() -> None:
    from zerocon.testing import tiny_components

    c = tiny_components()
    editor = Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler)
    with pytest.raises(ValueError, match="flowedit needs a flow-matching model"):
        editor.plan(EditSettings("flowedit"))


# ----------------------------------------------------------------------------- FLUX
def _flux_editor(guidance_embeds: bool = False) -> Editor:
    from zerocon.direction import FluxTextEncoder
    from zerocon.editing import FluxDenoiser
    from zerocon.testing import tiny_flux_components

    c = tiny_flux_components(guidance_embeds=guidance_embeds)
    encoder = FluxTextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2, max_sequence_length=16)
    return Editor(c.transformer, c.vae, encoder, c.tokenizer_2, c.scheduler,
                  denoiser=FluxDenoiser(c.transformer, encoder.pooled_dim))


def test_the_flux_encoder_encodes_as_the_flux_pipeline() -> None:
    from diffusers import FluxPipeline

    from zerocon.direction import FluxTextEncoder
    from zerocon.testing import tiny_flux_components

    c = tiny_flux_components()
    embeds, pooled, _ = FluxPipeline(**c.as_kwargs()).encode_prompt(CAPTION, CAPTION, max_sequence_length=16)
    packed = encode_prompts(FluxTextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2,
                                            max_sequence_length=16), c.tokenizer, [CAPTION])
    torch.testing.assert_close(packed[:, :-1], embeds)
    torch.testing.assert_close(packed[:, -1, :32], pooled)


def test_the_flux_denoiser_predicts_as_the_flux_pipeline_calls_its_transformer() -> None:
    from diffusers import FluxPipeline

    from zerocon.editing import FluxDenoiser
    from zerocon.testing import tiny_flux_components

    c = tiny_flux_components(guidance_embeds=True)
    g = torch.Generator().manual_seed(0)
    latents, tokens, pooled = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 5, 32, generator=g), torch.randn(1, 32, generator=g)
    packed = torch.cat([tokens, torch.nn.functional.pad(pooled, (0, 0))[:, None]], dim=1)
    with torch.no_grad():
        ours = FluxDenoiser(c.transformer, 32, guidance=3.5)(latents, torch.tensor(700.0), packed)
        ids = FluxPipeline._prepare_latent_image_ids(1, 4, 4, "cpu", torch.float32)
        theirs = c.transformer(hidden_states=FluxPipeline._pack_latents(latents, 1, 4, 8, 8), timestep=torch.tensor([0.7]),
                               guidance=torch.tensor([3.5]), pooled_projections=pooled, encoder_hidden_states=tokens,
                               txt_ids=torch.zeros(5, 3), img_ids=ids).sample
    torch.testing.assert_close(ours, FluxPipeline._unpack_latents(theirs, 16, 16, 2))


@pytest.mark.parametrize("method", ["pix2pix-zero", "zerocon++", "ddim", "sdedit", "flowedit"])
def test_every_method_edits_a_flux_model(method) -> None:
    editor = _flux_editor()
    plan = editor.plan(EditSettings(method))
    if plan.method.record_cross:
        assert plan.layers.cross == ["transformer_blocks.0.attn", "single_transformer_blocks.0.attn"]
    settings = EditSettings(method, num_inference_steps=4)
    out = editor.edit([_image()], [EditRequest(TARGET, CAPTION)], settings,
                      generator=torch.Generator().manual_seed(0), output_type="np", show_progress=False)
    pixels = torch.from_numpy(out.images[0])
    assert torch.isfinite(pixels).all() and pixels.std() > 0
    if plan.method.record_cross:
        assert any(step["CrossAttentionGuidance"] > 0 for step in out.guidance_losses[0])
    with pytest.raises(ValueError, match="selects no self-attention layer"):
        editor.plan(EditSettings("zerocon"))  # FLUX has no feature taps for PatchNCE


def test_flux_pipelines_load_edit_save_and_reload(tmp_path) -> None:
    from diffusers import FluxPipeline

    from zerocon.cli.main import main
    from zerocon.pipelines import ZeroConFluxPipeline, ZeroConPipeline
    from zerocon.testing import tiny_flux_components

    flux = FluxPipeline(**tiny_flux_components(guidance_embeds=True).as_kwargs())
    pipe = ZeroConPipeline.from_pipe(flux)
    assert isinstance(pipe, ZeroConFluxPipeline) and pipe.transformer is flux.transformer
    kwargs = {"source_prompt": CAPTION, "method": "zerocon++", "num_inference_steps": 3, "show_progress": False}
    out = pipe(_image(), TARGET, generator=torch.Generator().manual_seed(0), **kwargs)
    assert out.parameters["settings"]["guidance_scale"] == 1.0 and out.parameters["embedded_guidance"] == 3.5
    first = np.asarray(out.images[0])
    assert first.std() > 0
    stronger = np.asarray(pipe(_image(), TARGET, generator=torch.Generator().manual_seed(0), guidance_scale=7.0,
                               **kwargs).images[0])
    assert not np.array_equal(stronger, first)  # the embedded guidance reaches the transformer
    pipe.save_pretrained(tmp_path / "saved")
    again = ZeroConPipeline.from_pretrained(tmp_path / "saved")
    assert isinstance(again, ZeroConFluxPipeline)
    assert np.array_equal(np.asarray(again(_image(), TARGET, generator=torch.Generator().manual_seed(0),
                                           **kwargs).images[0]), first)
    flux.save_pretrained(tmp_path / "stock")
    _image().save(tmp_path / "in.png")
    code = main(["edit", str(tmp_path / "in.png"), "--model", str(tmp_path / "stock"), "--target", TARGET,
                 "--source", CAPTION, "--method", "flowedit", "--steps", "4", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == 0 and len(list((tmp_path / "out").glob("*.png"))) == 1


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_gradient_checkpointing_of_the_transformer_keeps_the_edit(family) -> None:
    from zerocon.editing import RuntimeOptions

    editor = _editor() if family == "sd3" else _flux_editor()
    settings = EditSettings("pix2pix-zero", num_inference_steps=3)
    outs = [editor.edit([_image()], [EditRequest(TARGET, CAPTION)], settings, output_type="latent", show_progress=False,
                        runtime=RuntimeOptions(gradient_checkpointing=flag)).images for flag in (False, True)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    assert not editor.denoiser.model.is_gradient_checkpointing  # switched off again after the edit


def test_saved_directions_name_their_encoders_and_another_family_is_refused(tmp_path) -> None:
    from zerocon.direction import EditDirection
    from zerocon.direction.edit_direction import check_direction_encoder

    sd3 = _editor()
    direction = EditDirection.from_words(sd3.text_encoder, sd3.tokenizer, "red", "blue")
    assert direction.encoder_name.startswith("sd3[") and "no-t5" in direction.encoder_name
    direction.save(tmp_path / "red-blue.safetensors")
    loaded = EditDirection.load(tmp_path / "red-blue.safetensors")
    assert loaded.encoder_name == direction.encoder_name
    flux = _flux_editor()
    assert flux.text_encoder.encoder_name.startswith("flux[")
    with pytest.raises(ValueError, match=r"built by another model's text encoders \(sd3\["):
        check_direction_encoder(loaded.encoder_name, flux.text_encoder)
    check_direction_encoder(loaded.encoder_name, sd3.text_encoder)  # its own family: accepted
    # Through the editor: a direction of the same shape but another family stops the edit.
    alien = EditDirection(torch.zeros_like(loaded.delta), encoder_name="flux[clip|t5]")
    with pytest.raises(ValueError, match="another model's text encoders"):
        sd3.edit([_image()], [EditRequest(TARGET, CAPTION, direction=alien)], EditSettings("ddim", num_inference_steps=2),
                 show_progress=False)


def test_zerocon_evaluate_scores_flow_model_edits(tmp_path) -> None:
    import json

    from test_cli_evaluate import _pie_dataset, _random_squeezenet, _tiny_dino

    from zerocon.cli.main import main
    from zerocon.shapes import embedded_model_path

    StableDiffusion3Pipeline(**tiny_sd3_components().as_kwargs()).save_pretrained(tmp_path / "sd3")
    out = tmp_path / "eval"
    argv = ["evaluate", str(_pie_dataset(tmp_path / "pie")), "--model", str(tmp_path / "sd3"), "--size", "32",
            "--out", str(out), "--methods", "zerocon++", "flowedit", "--steps", "3",
            "--clip", str(embedded_model_path() / "captioner"), "--dino", str(_tiny_dino(tmp_path / "dino")),
            "--lpips", str(_random_squeezenet(tmp_path / "squeezenet1_1.pth")), "--no-progress"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["method"] for r in rows} == {"zerocon++", "flowedit"}
    assert all(np.isfinite(r["background_psnr"]) and r["structure_distance"] >= 0 for r in rows)


def test_the_web_page_offers_what_a_flow_model_can_run() -> None:
    from zerocon.web.app import runnable_methods

    methods = runnable_methods(_sd3_pipe())
    assert {"pix2pix-zero", "zerocon++", "sdedit", "ddim", "flowedit"} <= set(methods)
    assert "zerocon" not in methods  # SD3 has no feature taps for PatchNCE
