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
#:
#: Each peer runs in two forms. ``…-own-defaults``: every argument at the pipeline's own
#: default in diffusers (its classifier-free guidance scale 7.5, pix2pix-zero's guidance amount
#: 0.1 and no negative prompt, img2img's and DiffEdit's strength 0.8, LEDITS++'s edit guidance
#: and thresholds; its intersect mask is the one exception: it fails on this model), the
#: required inputs as its documentation shows them (pix2pix-zero's direction from the source and
#: target captions' embeddings), and only the step count set, to the benchmark's. The other
#: rows run at this benchmark's settings: CFG as ours, pix2pix-zero with our sentence banks, the
#: caption as negative prompt and our guidance step η as its guidance amount.
PEERS: dict[str, tuple[str, dict[str, Any]]] = {
    "diffusers-pix2pix-zero": ("pix2pix_zero", {}),
    "img2img-0.5": ("img2img", {"strength": 0.5}),
    "img2img-0.75": ("img2img", {"strength": 0.75}),
    "diffedit": ("diffedit", {}),
    "ledits++": ("ledits", {}),
    "diffusers-pix2pix-zero-own-defaults": ("pix2pix_zero", {"own_defaults": True}),
    "img2img-own-defaults": ("img2img", {"own_defaults": True}),
    "diffedit-own-defaults": ("diffedit", {"own_defaults": True}),
    "ledits++-own-defaults": ("ledits", {"own_defaults": True}),
}

#: The peer each label is a form of (for "the best row of each peer").
PEER_OF: dict[str, str] = {label: label.removesuffix("-own-defaults").removesuffix("-0.5").removesuffix("-0.75")
                           for label in PEERS}


def _ours(own_defaults: bool, **values: Any) -> dict[str, Any]:
    """``values`` at this benchmark's settings; nothing (the pipeline's defaults) in the own-defaults form."""
    return {} if own_defaults else values


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
    own = bool(options.get("own_defaults", False))
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
            if own:  # its documentation's recipe: the direction between the two captions' embeddings
                source_embeds = encode_prompts(pipe.text_encoder, pipe.tokenizer, [caption])
                target_embeds = encode_prompts(pipe.text_encoder, pipe.tokenizer, [case.target])
            else:
                source_embeds = encode_prompts(pipe.text_encoder, pipe.tokenizer, bank.sentences(case.source_word))
                target_embeds = encode_prompts(pipe.text_encoder, pipe.tokenizer, bank.sentences(case.target_word))
            return p2p(
                prompt=caption,
                source_embeds=source_embeds,
                target_embeds=target_embeds,
                num_inference_steps=steps,
                latents=inverted,
                generator=generator,
                **_ours(own, guidance_scale=guidance_scale, negative_prompt=caption,
                        cross_attention_guidance_amount=step_size),
            ).images[0]

        return _counted(p2p.unet, run_p2p)
    if kind == "img2img":
        img2img = StableDiffusionImg2ImgPipeline(
            **_parts(pipe, own_unet=False), scheduler=DDIMScheduler.from_config(config)
        )
        img2img.set_progress_bar_config(disable=True)

        def run_img2img(case: EditCase, steps: int, generator: torch.Generator) -> Image.Image:
            return img2img(
                prompt=case.target,
                image=case.source.to_pil(),
                num_inference_steps=steps,
                generator=generator,
                **_ours(own, strength=options.get("strength"), guidance_scale=guidance_scale),
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
                num_inference_steps=steps, generator=generator, **_ours(own, guidance_scale=guidance_scale),
            )
            inverted = diffedit.invert(
                prompt=caption, image=source, num_inference_steps=steps, generator=generator,
                **_ours(own, guidance_scale=1.0),
            ).latents
            return diffedit(
                prompt=case.target, mask_image=mask, image_latents=inverted,
                num_inference_steps=steps, generator=generator,
                **_ours(own, negative_prompt=caption, guidance_scale=guidance_scale),
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
                generator=generator,
                # At its own defaults LEDITS++ intersects its masks with cross-attention maps read at
                # a resolution this UNet does not have (ValueError in aggregate_attention): that one
                # default is turned off in both forms.
                use_intersect_mask=False,
                **_ours(own, edit_guidance_scale=[guidance_scale, guidance_scale], edit_threshold=[0.9, 0.9],
                        use_cross_attn_mask=False),
            ).images[0]

        return _counted(ledits.unet, run_ledits)
    raise ValueError(f"unknown peer {label!r}")
