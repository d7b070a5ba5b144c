"""The embedded shapes-world model ships in the package and loads offline like any SD folder."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from zerocon.shapes import (
    WEIGHTS_DIR,
    all_captions,
    embedded_model_path,
    load_embedded_clip,
    load_embedded_pipeline,
    parse_caption,
    read_shape,
)


def test_weights_are_in_the_package_within_40_megabytes() -> None:
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".safetensors") for p in files)
    total = sum(p.stat().st_size for p in files)
    assert total <= 40 * 1000 * 1000, f"{total / 1e6:.1f} MB"


def test_stock_stable_diffusion_pipeline_loads_it_offline() -> None:
    code = (
        "from diffusers import StableDiffusionPipeline; import torch;"
        f"p = StableDiffusionPipeline.from_pretrained({str(embedded_model_path())!r});"
        "p.set_progress_bar_config(disable=True);"
        "im = p('a red circle on a white background', num_inference_steps=2, height=64, width=64,"
        " generator=torch.Generator().manual_seed(0), output_type='np').images;"
        "print(im.shape)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1, 64, 64, 3)" in out.stdout


def test_scheduler_and_vae_follow_stable_diffusion_conventions() -> None:
    pipe = load_embedded_pipeline()
    assert isinstance(pipe.scheduler, DDIMScheduler)
    cfg = pipe.scheduler.config
    assert (cfg.beta_schedule, cfg.num_train_timesteps, cfg.prediction_type) == ("scaled_linear", 1000, "epsilon")
    assert pipe.vae.config.scaling_factor != 0.18215  # measured on the world's latents
    assert pipe.tokenizer.model_max_length == pipe.text_encoder.config.max_position_embeddings


@pytest.mark.slow
def test_samples_follow_their_prompt() -> None:
    """A small version of the benchmark's gate (benchmarks/embedded_model_gates.py has the real one)."""
    pipe = load_embedded_pipeline()
    prompts = all_captions()
    images = pipe(prompts, num_inference_steps=25, guidance_scale=5.0, height=64, width=64,
                  generator=torch.Generator().manual_seed(0), output_type="np").images
    right = {"color": 0, "shape": 0, "background": 0, "pattern": 0}
    for prompt, im in zip(prompts, images, strict=True):
        want = parse_caption(prompt)
        r = read_shape(np.rint(im * 255).astype(np.uint8))
        for key in right:
            right[key] += getattr(r, key) == getattr(want, key)
    n = len(prompts)
    assert right["color"] / n >= 0.8 and right["background"] / n >= 0.8, right
    assert right["shape"] / n >= 0.6 and right["pattern"] / n >= 0.7, right


@pytest.mark.slow
def test_embedded_clip_retrieves_captions() -> None:
    from zerocon.shapes import render_random

    model, processor = load_embedded_clip()
    g = torch.Generator().manual_seed(3)
    shapes = [render_random(g) for _ in range(64)]
    captions = all_captions()
    with torch.no_grad():
        inputs = processor(text=captions, images=[s.to_pil() for s in shapes], return_tensors="pt", padding=True)
        picked = model(**inputs).logits_per_image.argmax(1)
    accuracy = np.mean([captions[i] == s.caption for i, s in zip(picked.tolist(), shapes, strict=True)])
    assert accuracy >= 0.9
