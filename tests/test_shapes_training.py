"""The training recipe: every stage runs, resumes, and yields a loadable diffusers folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from transformers import CLIPModel

from zerocon.editing import ModelDefaults
from zerocon.shapes import sentence_bank
from zerocon.shapes.train import TrainConfig, run


def test_smoke_training_produces_a_standard_pipeline_folder(tmp_path: Path) -> None:
    cfg = TrainConfig.smoke()
    folder = run(cfg, tmp_path / "run", export=tmp_path / "export")
    assert folder == tmp_path / "export"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} >= {"vae", "unet", "clip"}
    assert all(np.isfinite(r.get("loss", 0.0)) for r in log)
    pipe = StableDiffusionPipeline.from_pretrained(folder / "pipeline", local_files_only=True)
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"
    assert pipe.scheduler.config.num_train_timesteps == 1000
    assert pipe.vae.config.scaling_factor != 0.18215
    image = pipe(
        "a red circle on a white background", num_inference_steps=2, height=64, width=64,
        generator=torch.Generator().manual_seed(0), output_type="np",
    ).images
    assert image.shape == (1, 64, 64, 3)
    # The folder carries zerocon's defaults and its CLIP captioner.
    assert isinstance(CLIPModel.from_pretrained(folder / "pipeline" / "captioner"), CLIPModel)
    defaults = ModelDefaults.read(folder / "pipeline")
    assert defaults.captioner is not None and defaults.guidance_step_size is not None
    assert defaults.build_sentence_source().sentences("plain") == sentence_bank("plain")


def test_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    cfg = TrainConfig.smoke()
    cfg.vae_steps, cfg.checkpoint_every = 4, 2
    # Run the VAE stage for 2 steps only, then resume to 4: the checkpoint must be picked up.
    from zerocon.shapes.train import _Log, train_vae

    out = tmp_path / "run"
    cfg_short = TrainConfig.smoke()
    cfg_short.vae_steps, cfg_short.checkpoint_every = 2, 2
    train_vae(cfg_short, out, _Log(out / "log.jsonl"))
    ckpt = torch.load(out / "checkpoints" / "vae.pt", weights_only=False)
    assert ckpt["step"] == 2
    shutil.rmtree(out / "stages" / "vae")  # pretend the stage did not finish
    train_vae(cfg, out, _Log(out / "log.jsonl"))
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]  # resumed at 2, no step repeated


def test_stages_are_published_atomically_and_the_global_rng_is_untouched(tmp_path: Path) -> None:
    from zerocon.shapes.train import _Log, train_vae

    cfg = TrainConfig.smoke()
    state = torch.random.get_rng_state()
    final = train_vae(cfg, tmp_path, _Log(tmp_path / "log.jsonl"))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert (final / "config.json").exists() and any(final.glob("*.safetensors"))
    assert not list(tmp_path.rglob("*.partial"))
