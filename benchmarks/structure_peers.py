"""diffusers' own editors, built on the embedded model's components, for the structure benchmark.

Each peer is ``run(case, steps, generator) -> (PIL image, UNet evaluations)``. They share the
UNet, VAE, text encoder and tokenizer with the zerocon pipeline (pix2pix-zero and LEDITS++ swap
attention processors, so they get their own copy of the UNet).

Obstacles met on this model, and what is done about them:

* ``LEditsPPPipelineStableDiffusion``: its cross-attention masks are read at the latent size / 4
  (4×4 here), a resolution at which this UNet has no attention layer, so the peer runs with
  ``use_cross_attn_mask=False`` and ``use_intersect_mask=False`` (its noise-quantile mask
  only). It needs a DPM-Solver++ (SDE) or DDIM scheduler; with DDIM its ``invert`` raises
  ``IndexError: tensors used as indices must be long, int, byte or bool tensors`` (diffusers
  0.42, checked on this model), so DPM-Solver++ (SDE) is used.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from diffusers import (
    DDIMInverseScheduler,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    LEditsPPPipelineStableDiffusion,
    StableDiffusionDiffEditPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPix2PixZeroPipeline,
)
from PIL import Image

from zerocon.direction import encode_prompts
from zerocon.editing.accounting import UNetEvalCounter
from zerocon.shapes.edit_suite import EditCase

PeerRun = Callable[[EditCase, int, torch.Generator], tuple[Image.Image, int]]

#: Peers by benchmark label; each label's value is (builder name, keyword settings).
PEERS: dict[str, tuple[str, dict[str, float]]] = {
    "diffusers-pix2pix-zero": ("pix2pix_zero", {}),
    "img2img-0.5": ("img2img", {"strength": 0.5}),
    "img2img-0.75": ("img2img", {"strength": 0.75}),
    "diffedit": ("diffedit", {}),
    "ledits++": ("ledits", {}),
}


def _counted(unet: torch.nn.Module, edit: Callable[[EditCase, int, torch.Generator], Image.Image]) -> PeerRun:
    """``edit`` plus the UNet evaluations it made (counted only while it runs)."""

    def run(case: EditCase, steps: int, generator: torch.Generator) -> tuple[Image.Image, int]:
        counter = UNetEvalCounter(unet)
        with counter.watching():
            image = edit(case, steps, generator)
        return image, counter.total

    return run


def _parts(pipe: Any, own_unet: bool) -> dict[str, Any]:
    return {
        "vae": pipe.vae,
        "text_encoder": pipe.text_encoder,
        "tokenizer": pipe.tokenizer,
        "unet": copy.deepcopy(pipe.unet) if own_unet else pipe.unet,
        "feature_extractor": None,
        "safety_checker": None,
        "requires_safety_checker": False,
    }


def build_peer(label: str, pipe: Any, guidance_scale: float, step_size: float) -> PeerRun:
    """The ``run`` function of the peer ``label`` on ``pipe``'s components.

    Args:
        label: a key of :data:`PEERS`.
        pipe: a loaded :class:`~zerocon.pipelines.ZeroConPipeline`.
        guidance_scale: classifier-free guidance scale of every peer (the same as ours).
        step_size: pix2pix-zero's cross-attention guidance amount (the same η as ours).
    """
    kind, options = PEERS[label]
    config = pipe.scheduler.config
    if kind == "pix2pix_zero":
        p2p = StableDiffusionPix2PixZeroPipeline(
            **_parts(pipe, own_unet=True),
            scheduler=DDIMScheduler.from_config(config),
            inverse_scheduler=DDIMInverseScheduler.from_config(config),
            caption_generator=None,
            caption_processor=None,
        )
        p2p.set_progress_bar_config(disable=True)
        bank = pipe.sentence_source

        def run_p2p(case: EditCase, steps: int, generator: torch.Generator) -> Image.Image:
            caption = case.source.caption
            inverted = p2p.invert(
                caption, image=case.source.to_pil(), num_inference_steps=steps, generator=generator
            ).latents
            enc = lambda word: encode_prompts(pipe.text_encoder, pipe.tokenizer, bank.sentences(word))  # noqa: E731
            return p2p(
                prompt=caption,
                source_embeds=enc(case.source_word),
                target_embeds=enc(case.target_word),
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                negative_prompt=caption,
                latents=inverted,
                cross_attention_guidance_amount=step_size,
                generator=generator,
            ).images[0]

        return _counted(p2p.unet, run_p2p)
    if kind == "img2img":
        img2img = StableDiffusionImg2ImgPipeline(
            **_parts(pipe, own_unet=False), scheduler=DDIMScheduler.from_config(config)
        )
        img2img.set_progress_bar_config(disable=True)
        strength = options["strength"]

        def run_img2img(case: EditCase, steps: int, generator: torch.Generator) -> Image.Image:
            return img2img(
                prompt=case.target,
                image=case.source.to_pil(),
                strength=strength,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=generator,
            ).images[0]

        return _counted(img2img.unet, run_img2img)
    if kind == "diffedit":
        diffedit = StableDiffusionDiffEditPipeline(
            **_parts(pipe, own_unet=False),
            scheduler=DDIMScheduler.from_config(config),
            inverse_scheduler=DDIMInverseScheduler.from_config(config),
        )
        diffedit.set_progress_bar_config(disable=True)

        def run_diffedit(case: EditCase, steps: int, generator: torch.Generator) -> Image.Image:
            source, caption = case.source.to_pil(), case.source.caption
            mask = diffedit.generate_mask(
                image=source, source_prompt=caption, target_prompt=case.target,
                guidance_scale=guidance_scale, num_inference_steps=steps, generator=generator,
            )
            inverted = diffedit.invert(
                prompt=caption, image=source, num_inference_steps=steps, guidance_scale=1.0,
                generator=generator,
            ).latents
            return diffedit(
                prompt=case.target, mask_image=mask, image_latents=inverted,
                negative_prompt=caption, guidance_scale=guidance_scale,
                num_inference_steps=steps, generator=generator,
            ).images[0]

        return _counted(diffedit.unet, run_diffedit)
    if kind == "ledits":
        ledits = LEditsPPPipelineStableDiffusion(
            **_parts(pipe, own_unet=True),
            scheduler=DPMSolverMultistepScheduler.from_config(
                config, algorithm_type="sde-dpmsolver++", solver_order=2
            ),
        )
        ledits.set_progress_bar_config(disable=True)

        def run_ledits(case: EditCase, steps: int, generator: torch.Generator) -> Image.Image:
            ledits.invert(
                image=case.source.to_pil(), source_prompt=case.source.caption,
                num_inversion_steps=steps, generator=generator,
            )
            return ledits(
                editing_prompt=[case.target_word, case.source_word],
                reverse_editing_direction=[False, True],
                edit_guidance_scale=[guidance_scale, guidance_scale],
                edit_threshold=[0.9, 0.9],
                use_cross_attn_mask=False,
                use_intersect_mask=False,
                generator=generator,
            ).images[0]

        return _counted(ledits.unet, run_ledits)
    raise ValueError(f"unknown peer {label!r}")
