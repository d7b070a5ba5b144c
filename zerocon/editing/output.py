"""``ZeroConPipelineOutput``: the edited images and everything needed to reproduce them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers.utils import BaseOutput


@dataclass
class ZeroConPipelineOutput(BaseOutput):
    """What [`Editor`][zerocon.editing.Editor] and [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline] return, one entry per input image.

    Attributes:
        images: the edited images (PIL, or a ``(B, H, W, 3)`` float array in ``[0, 1]`` for
            ``output_type="np"``, or latents for ``output_type="latent"``).
        captions: the source caption of each image (given or from the captioner).
        target_prompts: the target prompt of each image (``None`` when only words or a
            direction file were given and no word swap of the caption was possible).
        edit_words: the ``(source, target)`` word pairs of each image's direction (empty for a
            loaded direction without words).
        parameters: every argument of the call (method, steps, scales, weights, layers, seed).
        timings: seconds per phase for each image (``caption``, ``encode``, ``inversion``,
            ``direction``, ``edit``, ``decode``, ``total``); images edited in one batch share
            its time equally.
        unet_evals: UNet evaluations per phase for each image (``inversion``, ``reference``,
            ``guidance``, ``denoise``, ``total``); one latent through the UNet is one evaluation
            (a batch's rows are shared equally by its images).
        guidance_losses: per image, per step: the guidance terms' weighted losses.
        skipped_guidance_steps: per image, the step indices whose guidance move was skipped
            because the loss or gradient was NaN/Inf.
        vetoed_guidance_steps: per image, the step indices whose guidance move a callback's
            ``on_guidance`` vetoed (returned 0).
        notices: per image, what the preprocessing and word derivation changed or decided.
        batch_sizes: per image, how many images went through the UNet calls together with it
            (itself included).
        start_latents: per image, the latent the edit started from: the DDIM inversion ``x_T``
            (or SDEdit's noised latent), ``(1, C, H/f, W/f)``.

    Shape:
        ``start_latents[i]``: ``(1, C, H/f, W/f)``; ``images`` as described above.

    Examples:
        >>> out = ZeroConPipelineOutput(images=[])
        >>> out.unet_evals
        []
    """

    images: Any
    captions: list[str] = field(default_factory=list)
    target_prompts: list[str | None] = field(default_factory=list)
    edit_words: list[list[tuple[str, str]]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    timings: list[dict[str, float]] = field(default_factory=list)
    unet_evals: list[dict[str, int]] = field(default_factory=list)
    guidance_losses: list[list[dict[str, float]]] = field(default_factory=list)
    skipped_guidance_steps: list[list[int]] = field(default_factory=list)
    vetoed_guidance_steps: list[list[int]] = field(default_factory=list)
    notices: list[list[str]] = field(default_factory=list)
    start_latents: list[Any] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    def add(self, state: Any) -> None:
        """Append one finished image's record (an [`ImageState`][zerocon.editing.ImageState])."""
        self.captions.append(state.caption)
        self.target_prompts.append(state.target_prompt)
        self.edit_words.append(list(state.pairs))
        self.timings.append(state.timings())
        self.unet_evals.append(state.unet_evals())
        self.guidance_losses.append(state.losses)
        self.skipped_guidance_steps.append(state.skipped)
        self.vetoed_guidance_steps.append(state.vetoed)
        self.notices.append(state.notices)
        self.start_latents.append(state.x_start)
        self.batch_sizes.append(state.batch_size)

    def record(self, index: int) -> dict[str, Any]:
        """A JSON-ready summary of image ``index`` (no image data).

        Args:
            index: which image.

        Returns:
            caption, target prompt, words, parameters, timings, UNet evals, skipped and vetoed steps,
            notices, the batch size it was edited in and the guidance losses of every step (a list of ``{term: loss}`` dicts,
            one per edit step; empty for unguided methods).

        Raises:
            IndexError: if ``index`` is out of range.
        """
        losses = self.guidance_losses[index] if self.guidance_losses else []
        return {
            "caption": self.captions[index],
            "target_prompt": self.target_prompts[index],
            "edit_words": [list(p) for p in self.edit_words[index]],
            "parameters": self.parameters,
            "timings": self.timings[index],
            "unet_evals": self.unet_evals[index],
            "skipped_guidance_steps": self.skipped_guidance_steps[index],
            "vetoed_guidance_steps": self.vetoed_guidance_steps[index] if self.vetoed_guidance_steps else [],
            "notices": self.notices[index],
            "guidance_losses": losses,
            "batch_size": self.batch_sizes[index] if self.batch_sizes else 1,
        }
