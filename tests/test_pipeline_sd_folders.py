"""ZeroConPipeline.from_pretrained on ordinary Stable Diffusion folders (ε- and v-prediction)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from PIL import Image

from zerocon.pipelines import ZeroConPipeline
from zerocon.testing import tiny_components


def _save_sd_folder(folder: Path, prediction_type: str) -> Path:
    c = tiny_components()
    scheduler = DDIMScheduler.from_config(c.scheduler.config, prediction_type=prediction_type)
    StableDiffusionPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("prediction_type", "default_step"), [("epsilon", 0.1), ("v_prediction", 0.01)])
def test_from_pretrained_on_an_sd_folder_edits_with_the_right_defaults(
    tmp_path: Path, prediction_type: str, default_step: float
) -> None:
    folder = _save_sd_folder(tmp_path / "sd", prediction_type)
    pipe = ZeroConPipeline.from_pretrained(folder, local_files_only=True)
    assert pipe.captioner is None and pipe.default_guidance_step_size is None
    assert pipe.scheduler.config.prediction_type == prediction_type
    image = Image.new("RGB", (16, 16), (200, 30, 30))
    out = pipe(
        image, "a blue circle on a white background", source_prompt="a red circle on a white background",
        method="zerocon", num_inference_steps=3, num_reg_iterations=1, show_progress=False,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.parameters["resolved"]["guidance_step_size"] == default_step
    assert out.images[0].size == (16, 16)
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in out.guidance_losses[0])


def test_from_pretrained_without_caption_or_captioner_says_so(tmp_path: Path) -> None:
    pipe = ZeroConPipeline.from_pretrained(_save_sd_folder(tmp_path / "sd", "epsilon"), local_files_only=True)
    with pytest.raises(ValueError, match="caption"):
        pipe(Image.new("RGB", (16, 16)), "a blue circle", num_inference_steps=2, show_progress=False)
