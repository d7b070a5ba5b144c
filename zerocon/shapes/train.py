"""Training recipe of the embedded shapes-world model.

Stages (each resumable from its checkpoint, each skipped when already finished):

1. ``vae``  — ``AutoencoderKL`` on fresh renders (MSE + 1e-6·KL); scaling factor = 1/std of latents.
2. ``unet`` — ``UNet2DConditionModel`` + ``CLIPTextModel`` jointly on cached latents: ε-prediction,
   SD's scaled-linear schedule, offset noise, min-SNR weighting, 10% caption dropout, EMA.
3. ``clip`` — a small ``CLIPModel`` trained contrastively (image vs all of the world's captions).

Run ``python -m zerocon.shapes.train --out runs/shapes --export zerocon/shapes/weights``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import StableDiffusionPipeline
from tqdm.auto import tqdm
from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

from zerocon.captioning._utils import pil_image_processor
from zerocon.shapes.model_folder import write_model_defaults
from zerocon.shapes.models import (
    ModelSizes,
    build_clip,
    build_sample_scheduler,
    build_text_encoder,
    build_tokenizer,
    build_train_scheduler,
    build_unet,
    build_vae,
)
from zerocon.shapes.palette import all_captions
from zerocon.shapes.render import images_to_tensor, render_random

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TrainConfig:
    """Every number of the recipe. Defaults are the shipped model's."""

    seed: int = 0
    sizes: ModelSizes = field(default_factory=ModelSizes)
    vae_steps: int = 3000
    vae_batch: int = 16
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    cache_size: int = 24_000
    unet_steps: int = 7000
    unet_batch: int = 16
    unet_lr: float = 4e-4
    text_lr: float = 4e-4
    offset_noise: float = 0.2
    min_snr_gamma: float = 5.0
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    clip_steps: int = 2000
    clip_batch: int = 64
    clip_lr: float = 1e-3
    warmup: int = 100
    checkpoint_every: int = 250
    log_every: int = 10
    threads: int = 0

    @classmethod
    def smoke(cls) -> TrainConfig:
        """A few steps of every stage on tiny networks (for CI)."""
        return cls(
            sizes=ModelSizes.tiny(),
            vae_steps=3,
            vae_batch=2,
            cache_size=8,
            unet_steps=3,
            unet_batch=2,
            clip_steps=3,
            clip_batch=4,
            warmup=1,
            checkpoint_every=2,
            log_every=1,
        )


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: float | int | str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _publish(partial: Path, final: Path) -> None:
    """Move a fully written folder into place (an interrupted save never looks finished)."""
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def _partial(final: Path) -> Path:
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    return partial


def _init_seeded(seed: int, build):  # type: ignore[no-untyped-def]
    """Build a model under a forked global RNG seeded with ``seed`` (the caller's RNG is untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


class _Checkpoint:
    """Saves and restores a stage's modules, optimiser, data generator and step count."""

    def __init__(
        self, path: Path, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer, data: torch.Generator
    ) -> None:
        self.path, self.modules, self.opt, self.data = path, modules, opt, data

    def restore(self) -> int:
        """Load the checkpoint if there is one; returns the step to start from."""
        if not self.path.exists():
            return 0
        state = torch.load(self.path, weights_only=True)
        for key, module in self.modules.items():
            module.load_state_dict(state[key])
        self.opt.load_state_dict(state["opt"])
        self.data.set_state(state["data"])
        return int(state["step"])

    def save(self, step: int) -> None:
        state = {key: module.state_dict() for key, module in self.modules.items()}
        _save_checkpoint(self.path, {**state, "opt": self.opt.state_dict(), "data": self.data.get_state(), "step": step})


def _render_batch(generator: torch.Generator, n: int, size: int) -> tuple[torch.Tensor, list[str]]:
    shapes = [render_random(generator, size=size) for _ in range(n)]
    return images_to_tensor([s.image for s in shapes]), [s.caption for s in shapes]


def _steps(stage: str, total: int, start: int) -> Iterator[tuple[int, tqdm]]:
    bar = tqdm(range(start, total), initial=start, total=total, desc=f"train {stage}", dynamic_ncols=True)
    for step in bar:
        yield step, bar
    bar.close()


def train_vae(cfg: TrainConfig, out: Path, log: _Log) -> Path:
    """Stage 1. Returns the folder of the trained ``AutoencoderKL``."""
    final = out / "stages" / "vae"
    if final.is_dir():
        return final
    vae = _init_seeded(cfg.seed, lambda: build_vae(cfg.sizes)).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    data = torch.Generator().manual_seed(cfg.seed + 1)
    checkpoint = _Checkpoint(out / "checkpoints" / "vae.pt", {"model": vae}, opt, data)
    start = checkpoint.restore()
    t0 = time.perf_counter()
    for step, bar in _steps("vae", cfg.vae_steps, start):
        for g in opt.param_groups:
            g["lr"] = cfg.vae_lr * _lr_factor(step, cfg.vae_steps, cfg.warmup)
        images, _ = _render_batch(data, cfg.vae_batch, cfg.sizes.image_size)
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample(generator=data)).sample
        mse = F.mse_loss(recon, images)
        loss = mse + cfg.vae_kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.1f}")
        if step % cfg.log_every == 0:
            log.write(stage="vae", step=step, loss=loss.item(), psnr=psnr, seconds=time.perf_counter() - t0)
        if (step + 1) % cfg.checkpoint_every == 0:
            checkpoint.save(step + 1)
    vae.eval()
    # Scaling factor = 1 / std of the latent means (SD convention: unit-variance latents).
    with torch.no_grad():
        images, _ = _render_batch(torch.Generator().manual_seed(cfg.seed + 2), 256, cfg.sizes.image_size)
        std = vae.encode(images).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    partial = _partial(final)
    vae.save_pretrained(partial)
    _publish(partial, final)
    return final


def cache_latents(cfg: TrainConfig, out: Path, vae_dir: Path) -> Path:
    """Encode ``cache_size`` fresh renders once (VAE means × scaling factor) with their captions."""
    path = out / "cache" / "latents.pt"
    if path.exists():
        return path
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    data = torch.Generator().manual_seed(cfg.seed + 3)
    latents: list[torch.Tensor] = []
    captions: list[str] = []
    for _ in tqdm(range(0, cfg.cache_size, 256), desc="cache latents", dynamic_ncols=True):
        n = min(256, cfg.cache_size - len(captions))
        images, caps = _render_batch(data, n, cfg.sizes.image_size)
        with torch.no_grad():
            latents.append(vae.encode(images).latent_dist.mean * vae.config.scaling_factor)
        captions += caps
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_checkpoint(path, {"latents": torch.cat(latents), "captions": captions})
    return path


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 1.0 - decay)


def train_unet(cfg: TrainConfig, out: Path, log: _Log, cache_path: Path) -> Path:
    """Stage 2: UNet + text encoder. Returns the folder holding ``unet``/``text_encoder``/``tokenizer``."""
    final = out / "stages" / "denoiser"
    if final.is_dir():
        return final
    cache = torch.load(cache_path, weights_only=True)
    latents: torch.Tensor = cache["latents"]
    tokenizer = build_tokenizer(cfg.sizes)
    unique = [*sorted(set(cache["captions"])), ""]
    ids_of = {c: i for i, c in enumerate(unique)}
    token_ids = tokenizer(unique, padding="max_length", max_length=cfg.sizes.max_length, truncation=True, return_tensors="pt").input_ids
    caption_index = torch.tensor([ids_of[c] for c in cache["captions"]])
    empty = ids_of[""]

    unet, text_encoder = _init_seeded(
        cfg.seed + 10, lambda: (build_unet(cfg.sizes), build_text_encoder(cfg.sizes, len(tokenizer)))
    )
    unet, text_encoder = unet.train(), text_encoder.train()
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    opt = torch.optim.AdamW(
        [
            {"params": unet.parameters(), "lr": cfg.unet_lr, "base": cfg.unet_lr},
            {"params": text_encoder.parameters(), "lr": cfg.text_lr, "base": cfg.text_lr},
        ],
        weight_decay=1e-2,
    )
    noise_scheduler = build_train_scheduler()
    alphas = noise_scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    data = torch.Generator().manual_seed(cfg.seed + 11)
    modules = {"unet": unet, "text": text_encoder, "ema_unet": ema_unet, "ema_text": ema_text}
    checkpoint = _Checkpoint(out / "checkpoints" / "unet.pt", modules, opt, data)
    start = checkpoint.restore()
    t0 = time.perf_counter()
    for step, bar in _steps("unet", cfg.unet_steps, start):
        for g in opt.param_groups:
            g["lr"] = g["base"] * _lr_factor(step, cfg.unet_steps, cfg.warmup)
        idx = torch.randint(len(latents), (cfg.unet_batch,), generator=data)
        x0 = latents[idx]
        cap = caption_index[idx]
        drop = torch.rand(cfg.unet_batch, generator=data) < cfg.caption_dropout
        cap = torch.where(drop, torch.full_like(cap, empty), cap)
        noise = torch.randn(x0.shape, generator=data)
        noise = noise + cfg.offset_noise * torch.randn((x0.shape[0], x0.shape[1], 1, 1), generator=data)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=data)
        xt = noise_scheduler.add_noise(x0, noise, t)
        cond = text_encoder(token_ids[cap])[0]
        pred = unet(xt, t, cond).sample
        weight = torch.clamp(snr[t], max=cfg.min_snr_gamma) / snr[t]
        loss = (weight * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*unet.parameters(), *text_encoder.parameters()], 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        _ema_update(ema_unet, unet, decay)
        _ema_update(ema_text, text_encoder, decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.log_every == 0:
            log.write(stage="unet", step=step, loss=loss.item(), seconds=time.perf_counter() - t0)
        if (step + 1) % cfg.checkpoint_every == 0:
            checkpoint.save(step + 1)
    partial = _partial(final)
    ema_unet.save_pretrained(partial / "unet")
    ema_text.save_pretrained(partial / "text_encoder")
    tokenizer.save_pretrained(partial / "tokenizer")
    _publish(partial, final)
    return final


def clip_image_processor(sizes: ModelSizes) -> CLIPImageProcessor:
    """The image processor of the embedded CLIP (no resize needed for 64×64 renders)."""
    return pil_image_processor("CLIPImageProcessor")(
        size={"shortest_edge": sizes.image_size},
        crop_size={"height": sizes.image_size, "width": sizes.image_size},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    )


def train_clip(cfg: TrainConfig, out: Path, log: _Log) -> Path:
    """Stage 3: contrastive CLIP; each image is scored against every caption of the world."""
    final = out / "stages" / "clip"
    if final.is_dir():
        return final
    tokenizer = build_tokenizer(cfg.sizes)
    captions = all_captions()
    ids = tokenizer(captions, padding="max_length", max_length=cfg.sizes.max_length, truncation=True, return_tensors="pt")
    clip = _init_seeded(cfg.seed + 20, lambda: build_clip(cfg.sizes, len(tokenizer))).train()
    opt = torch.optim.AdamW(clip.parameters(), lr=cfg.clip_lr, weight_decay=1e-2)
    data = torch.Generator().manual_seed(cfg.seed + 21)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    checkpoint = _Checkpoint(out / "checkpoints" / "clip.pt", {"model": clip}, opt, data)
    start = checkpoint.restore()
    t0 = time.perf_counter()
    for step, bar in _steps("clip", cfg.clip_steps, start):
        for g in opt.param_groups:
            g["lr"] = cfg.clip_lr * _lr_factor(step, cfg.clip_steps, cfg.warmup)
        images, caps = _render_batch(data, cfg.clip_batch, cfg.sizes.image_size)
        pixels = ((images + 1) / 2 - mean) / std
        target = torch.tensor([captions.index(c) for c in caps])
        out_ = clip(input_ids=ids.input_ids, attention_mask=ids.attention_mask, pixel_values=pixels)
        logits = out_.logits_per_image  # (batch, n_captions)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = (logits.argmax(1) == target).float().mean().item()
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
        if step % cfg.log_every == 0:
            log.write(stage="clip", step=step, loss=loss.item(), acc=acc, seconds=time.perf_counter() - t0)
        if (step + 1) % cfg.checkpoint_every == 0:
            checkpoint.save(step + 1)
    partial = _partial(final)
    clip.eval().save_pretrained(partial)
    CLIPProcessor(image_processor=clip_image_processor(cfg.sizes), tokenizer=tokenizer).save_pretrained(partial)
    _publish(partial, final)
    return final


def assemble(out: Path, vae_dir: Path, denoiser_dir: Path, clip_dir: Path, export: Path | None) -> Path:
    """Write a standard diffusers folder (``pipeline/``) that carries zerocon's defaults and the
    CLIP captioner (see ``write_model_defaults``); optionally
    copy it to ``export``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    target = out / "model"
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(vae_dir),
        text_encoder=CLIPTextModel.from_pretrained(denoiser_dir / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(denoiser_dir / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(denoiser_dir / "unet"),
        scheduler=build_sample_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    partial = _partial(target)
    pipe.save_pretrained(partial / "pipeline")
    write_model_defaults(partial / "pipeline", clip_dir)
    _publish(partial, target)
    if export is not None:
        export_partial = _partial(export)
        shutil.copytree(target, export_partial)
        # Swap in the new folder; the old one is removed only once the new one is in place.
        old = export.with_name(export.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if export.exists():
            export.rename(old)
        export_partial.rename(export)
        if old.exists():
            shutil.rmtree(old)
        return export
    return target


def run(cfg: TrainConfig, out: Path, export: Path | None = None) -> Path:
    """Run (or resume) every stage and assemble the model folder; returns it."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log = _Log(out / "log.jsonl")
    t0 = time.perf_counter()
    vae_dir = train_vae(cfg, out, log)
    log.write(stage="timing", step=0, name="vae_done", seconds=time.perf_counter() - t0)
    cache = cache_latents(cfg, out, vae_dir)
    denoiser_dir = train_unet(cfg, out, log, cache)
    log.write(stage="timing", step=0, name="unet_done", seconds=time.perf_counter() - t0)
    clip_dir = train_clip(cfg, out, log)
    log.write(stage="timing", step=0, name="clip_done", seconds=time.perf_counter() - t0)
    return assemble(out, vae_dir, denoiser_dir, clip_dir, export)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zerocon.shapes.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/shapes"), help="run folder (checkpoints, logs)")
    parser.add_argument("--export", type=Path, default=None, help="copy the final model folder here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny networks, a few steps per stage")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    for name in ("vae_steps", "unet_steps", "clip_steps", "cache_size"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    args = parser.parse_args(argv)
    cfg = TrainConfig.smoke() if args.smoke else TrainConfig()
    cfg.seed, cfg.threads = args.seed, args.threads
    for name in ("vae_steps", "unet_steps", "clip_steps", "cache_size"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    folder = run(cfg, args.out, args.export)
    print(f"model written to {folder}")


if __name__ == "__main__":
    main()
