"""Quality gates of the embedded textured shapes-world model. Writes JSON + the sample grid.

Run: ``.venv/bin/python benchmarks/embedded_model_gates.py [--model DIR] [--samples-per-caption 2]``

Gates: samples follow their prompt (every caption; checker: colour ≥ 90%, shape ≥ 80%,
background colour ≥ 90%, pattern ≥ 85%); VAE reconstruction of textured renders ≥ 28 dB;
DDIM inversion → reconstruction of textured renders (50 steps) ≥ 25 dB overall and ≥ 25 dB on
the background (the texture's phase kept); CLIP retrieval over all captions ≥ 90%.
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
from transformers import AutoTokenizer, CLIPModel, CLIPProcessor

from zerocon.inversion import DDIMInverter, NoiseRegularizer
from zerocon.shapes import (
    PATTERNS,
    RenderedShape,
    all_captions,
    images_to_tensor,
    parse_caption,
    read_shape,
    render_random,
    tensor_to_images,
)
from zerocon.shapes.masks import dilate
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


ATTRIBUTES = ("color", "shape", "background", "pattern")


def gate_samples(pipe: StableDiffusionPipeline, per_caption: int, steps: int, cfg: float, seed: int) -> tuple[dict, list[np.ndarray], list[str]]:
    prompts = all_captions() * per_caption
    images: list[np.ndarray] = []
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for i in range(0, len(prompts), 48):
        out = pipe(prompts[i : i + 48], num_inference_steps=steps, guidance_scale=cfg, height=64, width=64, generator=g, output_type="np")
        images += [np.rint(x * 255).astype(np.uint8) for x in out.images]
    seconds = time.perf_counter() - t0
    hits = dict.fromkeys([*ATTRIBUTES, "all"], 0)
    by_pattern = {p: dict.fromkeys(ATTRIBUTES, 0) for p in PATTERNS}
    for prompt, im in zip(prompts, images, strict=True):
        want = parse_caption(prompt)
        r = read_shape(im)
        ok = [getattr(r, key) == getattr(want, key) for key in ATTRIBUTES]
        for key, good in zip(ATTRIBUTES, ok, strict=True):
            hits[key] += good
            by_pattern[want.pattern][key] += good
        hits["all"] += all(ok)
    n = len(prompts)
    per = n // len(PATTERNS)
    return {
        "n": n, "steps": steps, "guidance_scale": cfg, "seconds": seconds, **{k: v / n for k, v in hits.items()},
        "by_pattern": {p: {k: v / per for k, v in counts.items()} for p, counts in by_pattern.items()},
    }, images, prompts


def _renders(n: int, seed: int, textured_only: bool) -> list[RenderedShape]:
    """``n`` fresh renders; with ``textured_only`` the patterns cycle through the non-plain ones."""
    g = torch.Generator().manual_seed(seed)
    patterns = [p for p in PATTERNS if p != "plain"]
    return [render_random(g, pattern=patterns[i % len(patterns)] if textured_only else None) for i in range(n)]


def _by_pattern(shapes: list[RenderedShape], values: list[float]) -> dict[str, float]:
    return {p: float(np.mean([v for s, v in zip(shapes, values, strict=True) if s.spec.pattern == p]))
            for p in PATTERNS if any(s.spec.pattern == p for s in shapes)}


def _background(shape: RenderedShape) -> np.ndarray:
    return ~dilate(shape.mask, 2)


def gate_vae(pipe: StableDiffusionPipeline, n: int, seed: int, textured_only: bool) -> dict:
    shapes = _renders(n, seed, textured_only)
    with torch.no_grad():
        x = images_to_tensor([s.image for s in shapes])
        recon = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
    values = [psnr(s.image, r) for s, r in zip(shapes, tensor_to_images(recon), strict=True)]
    return {"n": n, "textured_only": textured_only, "psnr_mean": float(np.mean(values)),
            "psnr_min": float(np.min(values)), "psnr_by_pattern": _by_pattern(shapes, values)}


def gate_inversion(pipe: StableDiffusionPipeline, n: int, steps: int, seed: int, regularize: bool) -> dict:
    shapes = _renders(n, seed, textured_only=True)
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    reg = NoiseRegularizer() if regularize else NoiseRegularizer(num_iterations=0)
    inverter = DDIMInverter(pipe.unet, scheduler, regularizer=reg)
    sf = pipe.vae.config.scaling_factor
    values, vae_values, background_values = [], [], []
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
        background_values.append(psnr(s.image, r, _background(s)))
    return {
        "n": n, "textured_only": True, "steps": steps, "noise_regularization": regularize, "seconds": time.perf_counter() - t0,
        "psnr_mean": float(np.mean(values)), "psnr_min": float(np.min(values)), "vae_only_psnr_mean": float(np.mean(vae_values)),
        "background_psnr_mean": float(np.mean(background_values)), "background_psnr_min": float(np.min(background_values)),
        "psnr_by_pattern": _by_pattern(shapes, values),
    }


def gate_clip(clip: CLIPModel, processor: CLIPProcessor, n: int, seed: int) -> dict:
    shapes = _renders(n, seed, textured_only=False)
    captions = all_captions()
    with torch.no_grad():
        inputs = processor(text=captions, images=[s.to_pil() for s in shapes], return_tensors="pt", padding="max_length", max_length=processor.tokenizer.model_max_length)
        logits = clip(**inputs).logits_per_image
    picked = [captions[i] for i in logits.argmax(1).tolist()]
    return {"n": n, "n_captions": len(captions), "accuracy": float(np.mean([p == s.caption for p, s in zip(picked, shapes, strict=True)]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (pipeline layout, CLIP in captioner/; default: embedded)")
    parser.add_argument("--samples-per-caption", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embedded_model_gates.json")
    parser.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "img")
    args = parser.parse_args()
    from zerocon.captioning._utils import pil_image_processor
    from zerocon.shapes import embedded_model_path

    root = args.model or embedded_model_path()
    pipe = StableDiffusionPipeline.from_pretrained(root, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    clip = CLIPModel.from_pretrained(root / "captioner").eval()
    processor = CLIPProcessor(
        image_processor=pil_image_processor("CLIPImageProcessor").from_pretrained(root / "captioner"),
        tokenizer=AutoTokenizer.from_pretrained(root / "captioner"),
    )
    results: dict = {"model": str(root), "torch_threads": torch.get_num_threads()}
    samples, images, _prompts = gate_samples(pipe, args.samples_per_caption, args.steps, args.guidance_scale, args.seed)
    results["samples"] = samples
    print("samples", samples, flush=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    # One row per object colour and shape (12 rows), one column per background (12 columns).
    grid(images[:144], columns=12).save(args.figures / "embedded_samples.png")
    results["vae"] = gate_vae(pipe, 256, args.seed + 1, textured_only=True)
    results["vae_all_patterns"] = gate_vae(pipe, 256, args.seed + 1, textured_only=False)
    print("vae", results["vae"], results["vae_all_patterns"], flush=True)
    results["inversion"] = gate_inversion(pipe, 48, args.steps, args.seed + 2, regularize=False)
    print("inversion", results["inversion"], flush=True)
    results["inversion_regularized"] = gate_inversion(pipe, 48, args.steps, args.seed + 2, regularize=True)
    print("inversion (regularized)", results["inversion_regularized"], flush=True)
    results["clip"] = gate_clip(clip, processor, 720, args.seed + 3)
    print("clip", results["clip"], flush=True)
    results["gates"] = {
        "color>=0.90": samples["color"] >= 0.90,
        "shape>=0.80": samples["shape"] >= 0.80,
        "background>=0.90": samples["background"] >= 0.90,
        "pattern>=0.85": samples["pattern"] >= 0.85,
        "vae_textured_psnr>=28": results["vae"]["psnr_mean"] >= 28,
        "inversion_psnr>=25": results["inversion"]["psnr_mean"] >= 25,
        "inversion_background_psnr>=25": results["inversion"]["background_psnr_mean"] >= 25,
        "clip>=0.90": results["clip"]["accuracy"] >= 0.90,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["gates"], indent=2))


if __name__ == "__main__":
    main()
