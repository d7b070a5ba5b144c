"""Real checkpoint layouts end to end on tiny random models: SDXL, SD 2.x v-prediction, SD 1.x.

For each: loading keeps every component, each method gives a finite edit, the DDIM round trip
(zero guidance, equal conditioning) reconstructs the source latent as closely as diffusers' own
DDIM inversion + sampling on the same model and conditioning, and the recorded maps have the
expected shapes. SDXL also: the packed conditioning equals diffusers' ``encode_prompt`` and
``_get_add_time_ids``, and unsupported pipelines are refused at load time.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMInverseScheduler,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image

from zerocon.direction import DualTextEncoder, EditDirection, PackedConditioning
from zerocon.editing import Callback, available_methods
from zerocon.pipelines import UnsupportedPipelineError, ZeroConPipeline
from zerocon.testing import tiny_components, tiny_sdxl_components

CAPTION = "a red circle on a white background"
TARGET = "a blue circle on a white background"


def _sdxl() -> StableDiffusionXLPipeline:
    return StableDiffusionXLPipeline(**tiny_sdxl_components().as_kwargs())


def _sd(prediction_type: str) -> StableDiffusionPipeline:
    c = tiny_components()
    return StableDiffusionPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=DDIMScheduler.from_config(c.scheduler.config, prediction_type=prediction_type),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


FAMILIES = {"sdxl": _sdxl, "sd2-v": lambda: _sd("v_prediction"), "sd1": lambda: _sd("epsilon")}


def _image(seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(16, 16, 3, generator=g).numpy() * 255).astype(np.uint8))


def _diffusers_conditioning(reference, prompt: str) -> tuple[torch.Tensor, dict | None]:
    """diffusers' own conditioning of ``prompt`` (and SDXL's added conditioning for 16-pixel images)."""
    if isinstance(reference, StableDiffusionXLPipeline):
        embeds, _, pooled, _ = reference.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
        time_ids = reference._get_add_time_ids((16, 16), (0, 0), (16, 16), dtype=embeds.dtype,
                                               text_encoder_projection_dim=reference.text_encoder_2.config.projection_dim)
        return embeds, {"text_embeds": pooled, "time_ids": time_ids}
    embeds, _ = reference.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                        do_classifier_free_guidance=False)
    return embeds, None


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_method_edits_to_a_finite_image(family, tmp_path) -> None:
    reference = FAMILIES[family]()
    reference.save_pretrained(tmp_path / family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the folder's scheduler converted to DDIM
        pipe = ZeroConPipeline.from_pretrained(tmp_path / family, local_files_only=True)
    if family == "sdxl":
        assert type(pipe.text_encoder_2).__name__ == "CLIPTextModelWithProjection" and pipe.tokenizer_2 is not None
    for method in available_methods():
        if method == "flowedit":  # flow-matching models only: refused before any model runs
            with pytest.raises(ValueError, match="flowedit needs a flow-matching model"):
                pipe(_image(), TARGET, source_prompt=CAPTION, method=method, num_inference_steps=3)
            continue
        out = pipe(_image(), TARGET, source_prompt=CAPTION, method=method, num_inference_steps=3,
                   num_reg_iterations=1, show_progress=False, output_type="np",
                   generator=torch.Generator().manual_seed(0))
        assert out.images.shape == (1, 16, 16, 3) and np.isfinite(out.images).all(), method
        assert out.images.std() > 0, method


def test_sdxl_from_pipe_keeps_both_encoders_and_converts_the_scheduler() -> None:
    reference = _sdxl()
    reference.scheduler = EulerDiscreteScheduler.from_config(reference.scheduler.config)
    with pytest.warns(UserWarning, match="EulerDiscreteScheduler replaced by DDIMScheduler"):
        pipe = ZeroConPipeline.from_pipe(reference)
    assert pipe.text_encoder_2 is reference.text_encoder_2 and pipe.tokenizer_2 is reference.tokenizer_2
    assert isinstance(pipe.scheduler, DDIMScheduler)
    out = pipe(_image(), TARGET, source_prompt=CAPTION, num_inference_steps=2, show_progress=False)
    assert out.parameters["settings"]["guidance"]["cross_attention_layers"] == r"^(down_blocks\.1|up_blocks\.0)\..*attn2$"


def test_sdxl_packed_conditioning_is_diffusers_conditioning() -> None:
    reference = _sdxl()
    encoder = DualTextEncoder(reference.text_encoder, reference.tokenizer, reference.text_encoder_2,
                              reference.tokenizer_2)
    packed = encoder.encode_batch([CAPTION])
    embeds, added = _diffusers_conditioning(reference, CAPTION)
    assert added is not None
    assert torch.equal(packed[:, :-1], embeds) and torch.equal(packed[:, -1, :32], added["text_embeds"])
    assert not packed[:, -1, 32:].any()
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference.unet(x, 10, embeds, added_cond_kwargs=added).sample
        PackedConditioning.attach(reference.unet, vae_scale_factor=2, pooled_dim=32)
        PackedConditioning.attach(reference.unet, vae_scale_factor=2, pooled_dim=32)  # once only
        assert torch.equal(reference.unet(x, 10, packed).sample, expected)
        assert torch.equal(reference.unet(x, 10, embeds, added_cond_kwargs=added).sample, expected)
    PackedConditioning.detach(reference.unet)
    assert not reference.unet._forward_pre_hooks
    # The editor's model seam unpacks the same way, without any hook on the UNet.
    from zerocon.editing import UNetDenoiser

    with torch.no_grad():
        assert torch.equal(UNetDenoiser(reference.unet, vae_scale_factor=2, pooled_dim=32)(x, 10, packed), expected)
    assert not reference.unet._forward_pre_hooks


def test_an_edit_leaves_nothing_installed_on_the_users_unet() -> None:
    """from_pipe shares the UNet with the user's pipeline: an edit must not change how it runs."""
    reference = _sdxl()
    pipe = ZeroConPipeline.from_pipe(reference)
    assert pipe.unet is reference.unet
    pipe(_image(), TARGET, source_prompt=CAPTION, num_inference_steps=2, show_progress=False)
    assert not reference.unet._forward_pre_hooks and not hasattr(reference.unet, PackedConditioning.ATTRIBUTE)
    embeds, added = _diffusers_conditioning(reference, CAPTION)
    with torch.no_grad():  # the user's own call works as before
        reference.unet(torch.randn(1, 4, 8, 8), 10, embeds, added_cond_kwargs=added)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_ddim_round_trip_matches_diffusers(family) -> None:
    """Zero guidance, equal conditioning: our inversion + sampling vs diffusers' DDIM inverse + DDIM."""
    reference = FAMILIES[family]()
    pipe = ZeroConPipeline.from_pipe(reference)
    steps, image = 10, _image(3)
    width = pipe.prompt_encoder.encode_batch([CAPTION]).shape if family == "sdxl" else (1, 16, 32)
    zero = EditDirection(torch.zeros(1, *width[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a zero direction warns
        ours = pipe(image, CAPTION, source_prompt=CAPTION, direction=zero, method="ddim", guidance_scale=1.0,
                    num_inference_steps=steps, num_reg_iterations=0, output_type="latent", show_progress=False,
                    generator=torch.Generator().manual_seed(0)).images
    PackedConditioning.detach(reference.unet)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    embeds, added = _diffusers_conditioning(reference, CAPTION)
    inverse = DDIMInverseScheduler.from_config(reference.scheduler.config)
    forward = DDIMScheduler.from_config(reference.scheduler.config)
    inverse.set_timesteps(steps)
    forward.set_timesteps(steps)
    with torch.no_grad():
        source = reference.vae.encode(pixels).latent_dist.mean * reference.vae.config.scaling_factor
        x = source.clone()
        for schedule in (inverse, forward):
            for t in schedule.timesteps:
                output = reference.unet(x, t, embeds, added_cond_kwargs=added).sample
                x = schedule.step(output, t, x).prev_sample
    ours_error = (ours - source).abs().mean().item()
    diffusers_error = (x - source).abs().mean().item()
    assert ours_error <= diffusers_error * 1.01 + 1e-5, (ours_error, diffusers_error)
    assert torch.allclose(ours, x, atol=1e-3), (ours - x).abs().max()


class _MapShapes(Callback):
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.heads: dict[str, int] = {}

    def on_reference_step(self, editor, state, step, timestep, latents, records) -> None:
        for name, value in records.cross_attention.items():
            self.shapes[name] = tuple(value.shape)
            self.heads[name] = records.heads[name]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_recorded_maps_have_the_expected_shapes(family) -> None:
    pipe = ZeroConPipeline.from_pipe(FAMILIES[family]())
    maps = _MapShapes()
    pipe(_image(), TARGET, source_prompt=CAPTION, method="zerocon", num_inference_steps=2, num_reg_iterations=1,
         show_progress=False, callbacks=[maps])
    tokens = 16  # the tokenizer's length: SDXL's packed pooled row never reaches attention
    if family == "sdxl":
        # SDXL's defaults: the first level with attention, down_blocks.1 (1 attention x 2 transformer
        # layers) and its mirror up_blocks.0 (2 x 2), at 4x4 latents; 4 heads there.
        assert sorted({n.split(".attentions")[0] for n in maps.shapes}) == ["down_blocks.1", "up_blocks.0"]
        expected = dict.fromkeys(maps.shapes, (4, 4 * 4, tokens))
        assert len(maps.shapes) == 6
    else:
        # every attn2: down_blocks.0 and up_blocks.1 (2 attentions) at 8x8, the mid block at 4x4; 2 heads
        expected = {name: (2, 4 * 4 if name.startswith("mid_block") else 8 * 8, tokens) for name in maps.shapes}
        assert len(maps.shapes) == 4 and all(n.endswith("attn2") for n in maps.shapes)
    assert maps.shapes == expected
    for name, shape in maps.shapes.items():
        assert shape[0] == maps.heads[name]  # one row (the reference's) times its heads


def test_unsupported_pipelines_are_refused_at_load_time(tmp_path) -> None:
    folder = tmp_path / "refiner"
    reference = _sdxl()
    reference.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    index.update(_class_name="StableDiffusionXLImg2ImgPipeline", text_encoder=[None, None], tokenizer=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedPipelineError, match=r"StableDiffusionXLImg2ImgPipeline is not supported.*no text_encoder"):
        ZeroConPipeline.from_pretrained(folder, local_files_only=True)
    inpaint = tmp_path / "inpaint"
    _sd("epsilon").save_pretrained(inpaint)
    config = json.loads((inpaint / "unet" / "config.json").read_text())
    (inpaint / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 9}))
    with pytest.raises(UnsupportedPipelineError, match="9 input channels"):
        ZeroConPipeline.from_pretrained(inpaint, local_files_only=True)
    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text(json.dumps({
        "_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}))
    with pytest.raises(UnsupportedPipelineError,
                       match=r"FluxPipeline cannot be edited: its folder has no text_encoder, tokenizer, text_encoder_2"):
        ZeroConPipeline.from_pretrained(flux, local_files_only=True)


def test_an_sdxl_unet_without_its_second_encoder_says_so() -> None:
    c = tiny_sdxl_components()
    pipe = ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler)
    with pytest.raises(UnsupportedPipelineError, match="no text_encoder_2"):
        pipe(_image(), TARGET, source_prompt=CAPTION, num_inference_steps=2, show_progress=False)


def test_an_sdxl_pipeline_saves_and_reloads_with_both_encoders(tmp_path: Path) -> None:
    pipe = ZeroConPipeline.from_pipe(_sdxl())
    pipe.save_pretrained(tmp_path / "saved")
    again = ZeroConPipeline.from_pretrained(tmp_path / "saved", local_files_only=True)
    assert again.text_encoder_2 is not None and again.tokenizer_2 is not None
    kwargs = dict(source_prompt=CAPTION, num_inference_steps=2, show_progress=False, output_type="np",
                  generator=torch.Generator().manual_seed(0))
    first = pipe(_image(), TARGET, **kwargs).images
    kwargs["generator"] = torch.Generator().manual_seed(0)
    assert np.allclose(first, again(_image(), TARGET, **kwargs).images, atol=1e-5)
