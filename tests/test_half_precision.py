"""Half-precision models end to end (bfloat16 on the CPU): latents and losses in float32."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from zerocon.direction import TemplateSentences
from zerocon.editing.precision import float32_latents
from zerocon.pipelines import ZeroConPipeline
from zerocon.testing import tiny_components, tiny_unet

SOURCE = "a red circle on a white background"
TARGET = "a blue circle on a white background"
STEPS = {"num_inference_steps": 4, "num_reg_iterations": 1, "show_progress": False}


def _pipe(dtype: torch.dtype) -> ZeroConPipeline:
    c = tiny_components()
    pipe = ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler,
                           sentence_source=TemplateSentences(["a photo of a {}", "a {} on a background"]))
    for model in (pipe.unet, pipe.vae, pipe.text_encoder):
        model.to(dtype)
    return pipe


def _image(seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(16, 16, 3, generator=g) * 255).to(torch.uint8).numpy())


@pytest.fixture(scope="module")
def pipes() -> tuple[ZeroConPipeline, ZeroConPipeline]:
    return _pipe(torch.float32), _pipe(torch.bfloat16)


@pytest.mark.parametrize(
    "options",
    [{"method": "zerocon"}, {"method": "pix2pix-zero", "local_blend": True}, {"method": "ddim"}, {"method": "sdedit"}],
    ids=lambda o: o["method"],
)
def test_bfloat16_models_edit_end_to_end_close_to_float32(pipes, options) -> None:
    full, half = pipes
    images = [_image(1), _image(2)]

    def edit(pipe: ZeroConPipeline, output_type: str):
        return pipe(images, TARGET, source_prompt=SOURCE, output_type=output_type,
                    generator=torch.Generator().manual_seed(3), **STEPS, **options)

    latents = edit(half, "latent")
    # The sampler's arithmetic stays in float32 around the bfloat16 UNet.
    assert latents.images.dtype == torch.float32 and latents.start_latents[0].dtype == torch.float32
    ours, reference = edit(half, "np"), edit(full, "np")
    assert ours.images.dtype == np.float32 and np.isfinite(ours.images).all()
    difference = np.abs(ours.images - reference.images)
    # bfloat16 keeps about 3 significant digits; measured mean 0.004-0.008 and max 0.025-0.067.
    assert difference.mean() < 0.02 and difference.max() < 0.2
    for losses in ours.guidance_losses[0]:
        assert all(math.isfinite(value) for value in losses.values())


def test_float32_latents_casts_in_and_out_and_keeps_gradients() -> None:
    unet = tiny_unet().to(torch.bfloat16)
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    text = torch.randn(1, 16, 32, dtype=torch.bfloat16)
    with float32_latents(unet), torch.enable_grad():
        out = unet(x, 10, text).sample
        out.pow(2).sum().backward()
    assert out.dtype == torch.float32 and x.grad is not None and x.grad.dtype == torch.float32
    with pytest.raises(RuntimeError):  # outside the block the bfloat16 UNet refuses float32 input
        unet(torch.randn(1, 4, 8, 8), 10, text)
    full = tiny_unet()
    with float32_latents(full):
        assert not full._forward_pre_hooks and not full._forward_hooks  # nothing to do at float32
