"""Quality gates of the embedded shapes-world model (issue 3). Writes JSON + figures.

Run: ``.venv/bin/python benchmarks/embedded_model_gates.py [--model DIR] [--samples-per-combo 3]``

Gates: samples follow their prompt (checker: colour ≥ 90%, shape ≥ 80%, background ≥ 90%);
VAE reconstruction ≥ 30 dB; DDIM inversion + reconstruction ≥ 22 dB; CLIP retrieval ≥ 95%.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from zerocon.inversion import DDIMInverter, NoiseRegularizer
from zerocon.shapes import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    SHAPES,
    all_captions,
    caption_for,
    images_to_tensor,
    read_shape,
    render_random,
    tensor_to_images,
)
from zerocon.shapes.metrics import psnr

HERE = Path(__file__).resolve().parent


def _encode(pipe: StableDiffusionPipeline, prompts: list[str]) -> torch.Tensor:
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def grid(images: list[np.ndarray], columns: int, scale: int = 2) -> Image.Image:
    h, w, _ = images[0].shape
    rows = math.ceil(len(images) / columns)
    canvas = Image.new("RGB", (columns * w, rows * h), (255, 255, 255))
    for i, im in enumerate(images):
        canvas.paste(Image.fromarray(im), ((i % columns) * w, (i // columns) * h))
    return canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.NEAREST)


def gate_samples(pipe: StableDiffusionPipeline, per_combo: int, steps: int, cfg: float, seed: int) -> tuple[dict, list[np.ndarray], list[str]]:
    prompts = [caption_for(c, s, b) for c in OBJECT_COLORS for s in SHAPES for b in BACKGROUND_COLORS] * per_combo
    images: list[np.ndarray] = []
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for i in range(0, len(prompts), 36):
        out = pipe(prompts[i : i + 36], num_inference_steps=steps, guidance_scale=cfg, height=64, width=64, generator=g, output_type="np")
        images += [np.rint(x * 255).astype(np.uint8) for x in out.images]
    seconds = time.perf_counter() - t0
    hits = {"color": 0, "shape": 0, "background": 0, "all": 0}
    for prompt, im in zip(prompts, images, strict=True):
        words = prompt.split()
        r = read_shape(im)
        ok = (r.color == words[1], r.shape == words[2], r.background == words[5])
        hits["color"] += ok[0]
        hits["shape"] += ok[1]
        hits["background"] += ok[2]
        hits["all"] += all(ok)
    n = len(prompts)
    return {"n": n, "steps": steps, "guidance_scale": cfg, "seconds": seconds, **{k: v / n for k, v in hits.items()}}, images, prompts


def gate_vae(pipe: StableDiffusionPipeline, n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = [render_random(g) for _ in range(n)]
    with torch.no_grad():
        x = images_to_tensor([s.image for s in shapes])
        recon = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
    values = [psnr(s.image, r) for s, r in zip(shapes, tensor_to_images(recon), strict=True)]
    return {"n": n, "psnr_mean": float(np.mean(values)), "psnr_min": float(np.min(values))}


def gate_inversion(pipe: StableDiffusionPipeline, n: int, steps: int, seed: int, regularize: bool) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = [render_random(g) for _ in range(n)]
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    reg = NoiseRegularizer() if regularize else NoiseRegularizer(num_iterations=0)
    inverter = DDIMInverter(pipe.unet, scheduler, regularizer=reg)
    sf = pipe.vae.config.scaling_factor
    values, vae_values = [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        x = images_to_tensor([s.image for s in shapes])
        latents = pipe.vae.encode(x).latent_dist.mean * sf
        embeds = _encode(pipe, [s.caption for s in shapes])
        inv = inverter.invert(latents, embeds, steps, generator=torch.Generator().manual_seed(seed), show_progress=False)
        z = inv.latents
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            z = scheduler.step(pipe.unet(z, t, embeds).sample, t, z).prev_sample
        recon = tensor_to_images(pipe.vae.decode(z / sf).sample)
        vae_only = tensor_to_images(pipe.vae.decode(latents / sf).sample)
    for s, r, v in zip(shapes, recon, vae_only, strict=True):
        values.append(psnr(s.image, r))
        vae_values.append(psnr(s.image, v))
    return {
        "n": n, "steps": steps, "noise_regularization": regularize, "seconds": time.perf_counter() - t0,
        "psnr_mean": float(np.mean(values)), "psnr_min": float(np.min(values)), "vae_only_psnr_mean": float(np.mean(vae_values)),
    }


def gate_clip(clip: CLIPModel, processor: CLIPProcessor, n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = [render_random(g) for _ in range(n)]
    captions = all_captions()
    with torch.no_grad():
        inputs = processor(text=captions, images=[s.to_pil() for s in shapes], return_tensors="pt", padding="max_length", max_length=processor.tokenizer.model_max_length)
        logits = clip(**inputs).logits_per_image
    picked = [captions[i] for i in logits.argmax(1).tolist()]
    return {"n": n, "n_captions": len(captions), "accuracy": float(np.mean([p == s.caption for p, s in zip(picked, shapes, strict=True)]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder with pipeline/ and clip/ (default: embedded)")
    parser.add_argument("--samples-per-combo", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embedded_model_gates.json")
    parser.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "img")
    args = parser.parse_args()
    from zerocon.shapes.embedded import WEIGHTS_DIR

    root = args.model or WEIGHTS_DIR
    pipe = StableDiffusionPipeline.from_pretrained(root / "pipeline", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    clip = CLIPModel.from_pretrained(root / "clip").eval()
    processor = CLIPProcessor.from_pretrained(root / "clip")
    results: dict = {"model": str(root), "torch_threads": torch.get_num_threads()}
    samples, images, _prompts = gate_samples(pipe, args.samples_per_combo, args.steps, args.guidance_scale, args.seed)
    results["samples"] = samples
    print("samples", samples, flush=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    grid(images[:36], columns=9).save(args.figures / "embedded_samples.png")
    results["vae"] = gate_vae(pipe, 256, args.seed + 1)
    print("vae", results["vae"], flush=True)
    results["inversion"] = gate_inversion(pipe, 48, args.steps, args.seed + 2, regularize=False)
    print("inversion", results["inversion"], flush=True)
    results["inversion_regularized"] = gate_inversion(pipe, 48, args.steps, args.seed + 2, regularize=True)
    print("inversion (regularized)", results["inversion_regularized"], flush=True)
    results["clip"] = gate_clip(clip, processor, 500, args.seed + 3)
    print("clip", results["clip"], flush=True)
    results["gates"] = {
        "color>=0.90": samples["color"] >= 0.90,
        "shape>=0.80": samples["shape"] >= 0.80,
        "background>=0.90": samples["background"] >= 0.90,
        "vae_psnr>=30": results["vae"]["psnr_mean"] >= 30,
        "inversion_psnr>=22": results["inversion"]["psnr_mean"] >= 22,
        "clip>=0.95": results["clip"]["accuracy"] >= 0.95,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["gates"], indent=2))


if __name__ == "__main__":
    main()
