"""``Editor``: the engine that runs an editing method's phases over a batch of images."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler
from jaxtyping import Float, Shaped
from PIL import Image
from torch import Tensor

from zerocon.attention import AttentionStore, LayerSelector
from zerocon.captioning import Captioner
from zerocon.direction import SentenceSource, TemplateSentences, encode_prompts
from zerocon.direction.packed_conditioning import needs_added_conditioning
from zerocon.editing.accounting import PhaseTimer, UNetEvalCounter
from zerocon.editing.callback import Callback
from zerocon.editing.callback_list import CallbackList
from zerocon.editing.callbacks.progress_bar import ProgressBar
from zerocon.editing.denoiser import Denoiser, UNetDenoiser
from zerocon.editing.direction_builder import DirectionBuilder
from zerocon.editing.edit_loop import EditLoop
from zerocon.editing.edit_plan import EditPlan
from zerocon.editing.methods import EditMethod, RecordedLayers, get_method
from zerocon.editing.model_layers import resolve_layer_defaults
from zerocon.editing.output import ZeroConPipelineOutput
from zerocon.editing.phases import caption_phase, condition_phase, decode_phase, encode_phase
from zerocon.editing.precision import float32_latents
from zerocon.editing.preprocessing import prepare_image, vae_scale_factor
from zerocon.editing.requests import check_request
from zerocon.editing.runtime_options import RuntimeOptions
from zerocon.editing.settings import LONG_RUN_STEPS, EditSettings
from zerocon.editing.state import EditRequest, ImageState
from zerocon.guidance import CrossAttentionGuidance, PatchNCEGuidance

OUTPUT_TYPES = ("pil", "np", "latent")


class Editor:
    """Runs caption → condition → encode → start → denoise → decode for each image.

    The editor owns no method: [`EditMethod`][zerocon.editing.EditMethod] strategies say what runs,
    [`EditSettings`][zerocon.editing.EditSettings] holds the numbers, and
    [`Callback`][zerocon.editing.Callback] objects observe and steer. ``ZeroConPipeline`` is a
    diffusers façade over this class.

    Args:
        unet: the denoiser (ε- or v-prediction).
        vae: the autoencoder.
        text_encoder: the CLIP text encoder.
        tokenizer: its tokenizer.
        scheduler: the sampling scheduler (DDIM for inverting methods).
        captioner: turns source images into captions (optional when prompts are given).
        sentence_source: sentences of word directions (default: templates).
        default_guidance_step_size: η when the settings leave it ``None`` (a model folder's
            default); else 0.1 for ε-prediction and 0.01 for v-prediction.
        device: where latents live (default: the UNet's device).
        directions: a [`DirectionBuilder`][zerocon.editing.DirectionBuilder] to share its cache (default: a new one).

    Shape:
        Images of any size; latents ``(1, C, H/f, W/f)`` per image.

    Raises:
        ValueError: (from [`edit`][zerocon.editing.Editor.edit]) for bad inputs, before any model runs.

    Examples:
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> editor = Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler)
        >>> out = editor.edit([Image.new("RGB", (32, 32))], [EditRequest("a dog", "a cat")],
        ...                   EditSettings(method="ddim", num_inference_steps=2), show_progress=False)
        >>> out.images[0].size
        (32, 32)
    """

    def __init__(
        self,
        unet: Any,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        scheduler: Any,
        *,
        captioner: Captioner | None = None,
        sentence_source: SentenceSource | None = None,
        default_guidance_step_size: float | None = None,
        device: torch.device | str | None = None,
        directions: DirectionBuilder | None = None,
        denoiser: Denoiser | None = None,
    ) -> None:
        self.unet, self.vae, self.scheduler = unet, vae, scheduler
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.captioner = captioner
        self.sentence_source = sentence_source
        self.default_guidance_step_size = default_guidance_step_size
        self.device = torch.device(device) if device is not None else next(unet.parameters()).device
        self.directions = directions or DirectionBuilder(text_encoder, tokenizer)
        if denoiser is None:
            pooled = getattr(text_encoder, "pooled_dim", None) if needs_added_conditioning(unet) else None
            denoiser = UNetDenoiser(unet, vae_scale_factor(vae), pooled)
        #: The model seam: every prediction of every pass goes through it.
        self.denoiser = denoiser

    # ------------------------------------------------------------------ model helpers
    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.vae)

    @property
    def vae_shift(self) -> float:
        return float(getattr(self.vae.config, "shift_factor", None) or 0.0)

    def decode(self, latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b 3 H W"]:
        """Latents (scaled by the VAE's ``scaling_factor``) to pixels in ``[-1, 1]``, ``(B, 3, H, W)``."""
        vae = self.vae
        return vae.decode((latents / vae.config.scaling_factor + self.vae_shift).to(vae.dtype)).sample

    @property
    def prediction_type(self) -> str:
        """``"epsilon"``, ``"v_prediction"`` or ``"sample"`` (the scheduler's), or ``"flow"`` (a velocity denoiser's)."""
        own = getattr(self.denoiser, "prediction_type", None)
        return str(own) if own else str(self.scheduler.config.get("prediction_type", "epsilon"))

    def scheduler_kwargs(self, latent_shape: tuple[int, ...]) -> dict[str, Any]:
        """Extra ``set_timesteps`` arguments the model family asks for at this latent size (FLUX's ``mu``)."""
        ask = getattr(self.denoiser, "scheduler_kwargs", None)
        return dict(ask(self.scheduler, tuple(latent_shape))) if callable(ask) else {}

    @property
    def flow_matching(self) -> bool:
        """Whether the model predicts a flow-matching velocity (SD3, FLUX)."""
        return self.prediction_type == "flow"

    def encode_text(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        """``(n, L, D)`` embeddings in the UNet's dtype on the editor's device."""
        embeds = encode_prompts(self.text_encoder, self.tokenizer, list(prompts))
        return embeds.to(device=self.device, dtype=next(self.denoiser.model.parameters()).dtype)

    def edit_scheduler(self, method: EditMethod) -> Any:
        """A fresh copy of the scheduler the edit pass uses.

        Raises:
            ValueError: if the method inverts and the scheduler is not a ``DDIMScheduler``
                (DDIM inversion only reconstructs under DDIM sampling; nothing is swapped
                silently).
        """
        if self.flow_matching:
            if not hasattr(self.scheduler, "scale_noise"):
                raise ValueError(
                    f"a flow-matching model needs a flow-matching scheduler (FlowMatchEulerDiscreteScheduler), "
                    f"got {type(self.scheduler).__name__}"
                )
            return copy.deepcopy(self.scheduler)
        if method.invert and not isinstance(self.scheduler, DDIMScheduler):
            raise ValueError(
                f"method {method.name!r} inverts with DDIM and needs a DDIMScheduler, but the "
                f"scheduler is {type(self.scheduler).__name__}; set "
                "pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config), or use a "
                "method without inversion (sdedit)"
            )
        return copy.deepcopy(self.scheduler)

    def model_output(
        self,
        x: Float[Tensor, "b c h w"],
        t: Shaped[Tensor, "*t"],
        cond: Float[Tensor, "b l d"],
        uncond: Float[Tensor, "b l d"] | None,
        scale: float,
        record: AttentionStore | None = None,
    ) -> Float[Tensor, "b c h w"]:
        """Classifier-free guided model output; with ``record``, only the cond forward records."""
        if uncond is None or scale == 1.0 or torch.equal(uncond, cond):
            return self.denoiser(x, t, cond)
        if record is not None:
            with record.paused():
                out_uncond = self.denoiser(x, t, uncond)
            out_cond = self.denoiser(x, t, cond)
        else:
            both = self.denoiser(torch.cat([x, x]), t, torch.cat([uncond, cond]))
            out_uncond, out_cond = both.chunk(2)
        return out_uncond + scale * (out_cond - out_uncond)

    # ------------------------------------------------------------------ planning
    def _select(self, pattern: str, kind: str) -> list[str]:
        names = LayerSelector(pattern=pattern, kind=kind).select(self.denoiser.model)  # type: ignore[arg-type]
        if not names:
            what = "cross_attention_layers" if kind == "cross" else "patch_nce_layers"
            raise ValueError(f"{what}={pattern!r} selects no {kind}-attention layer of the model")
        return names

    def plan(self, settings: EditSettings, method: str | EditMethod | None = None,
             runtime: RuntimeOptions | None = None) -> EditPlan:
        """Resolve the method, layers, terms, features and step size (raises before any model runs).

        Args:
            settings: the edit's settings.
            method: a method object overriding ``settings.method`` (e.g. an unregistered one).
            runtime: how the call runs (default: ``RuntimeOptions()``).

        Raises:
            ValueError: for an unknown method, layer patterns that select nothing, a feature the
                method cannot run, or bad PatchNCE settings.
        """
        strategy = get_method(method if method is not None else settings.method)
        family = getattr(self.denoiser, "layer_defaults", None)
        settings = resolve_layer_defaults(settings, family() if callable(family) else {})
        guidance = settings.guidance
        layers = RecordedLayers(
            cross=self._select(guidance.cross_attention_layers, "cross") if strategy.record_cross else [],
            self_attention=(
                self._select(guidance.patch_nce_layers, "self") if strategy.records_self_attention(settings) else []
            ),
        )
        terms = strategy.guidance_terms(settings, layers)
        if terms and not strategy.reference:
            raise ValueError(f"method {strategy.name!r} has guidance terms but no reference pass")
        step_size = settings.guidance_step_size
        if step_size is None:
            step_size = self.default_guidance_step_size
        if step_size is None:
            step_size = 0.01 if self.prediction_type == "v_prediction" else 0.1
        plan = EditPlan(settings, strategy, layers, list(terms), float(step_size), runtime or RuntimeOptions(),
                        self.flow_matching)
        strategy.check(plan)
        for feature in strategy.features(settings):
            feature.check(plan)
        return plan

    def call_record(
        self, plan: EditPlan, generator: torch.Generator | Sequence[torch.Generator] | None
    ) -> dict[str, Any]:
        """The record of a call: the settings (once), the runtime options and what was resolved from them.

        ``record["settings"]`` re-creates the settings (``EditSettings.from_dict``); the layer
        patterns in it are the ones the model used. ``record["resolved"]`` holds what the
        settings leave open: the step size used, the weight each term actually had (0 for a
        term the method does not run), the strength (SDEdit-style starts only) and the features.
        """
        s, method = plan.settings, plan.method
        weights = {type(term).__name__: term.weight for term in plan.terms}
        return {
            "settings": s.to_dict(),
            "runtime": plan.runtime.to_dict(),
            "method": method.name,
            "method_details": method.describe(),
            "resolved": {
                "guidance_step_size": plan.step_size,
                "lambda_xa": s.lambda_xa if any(isinstance(t, CrossAttentionGuidance) for t in plan.terms) else 0.0,
                "lambda_nce": s.lambda_nce if any(isinstance(t, PatchNCEGuidance) for t in plan.terms) else 0.0,
                "terms": weights,
                "strength": s.strength if not method.invert else None,
                "features": [feature.name for feature in method.features(s)],
            },
            "seed": _seeds(generator),
            "prediction_type": self.prediction_type,
            "scheduler": type(self.scheduler).__name__,
            "sentence_source": repr(self.sentence_source or TemplateSentences()),
        }

    # ------------------------------------------------------------------ running
    def min_latent_side(self) -> int:
        """The smallest latent side at which every UNet level still has 2×2 positions for its attention maps.

        Examples:
            >>> from zerocon.testing import tiny_components
            >>> c = tiny_components()
            >>> Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler).min_latent_side()
            4
        """
        levels = len(getattr(getattr(self.denoiser.model, "config", None), "block_out_channels", (0,)))
        return 2 ** max(levels - 1, 0) * 2

    def _check_large_enough(self, prepared: Sequence[Any], plan: EditPlan) -> None:
        """Guided methods read attention maps at every level: a tiny image has no map to read."""
        if not plan.method.reference:
            return
        side = self.min_latent_side()
        for index, image in enumerate(prepared):
            width, height = image.image.size
            if min(width, height) // self.vae_scale_factor < side:
                pixels = side * self.vae_scale_factor
                raise ValueError(
                    f"image {index} is too small for {plan.method.name!r}: {image.original_size[0]}x"
                    f"{image.original_size[1]} px; this model needs at least {pixels}x{pixels} px for its "
                    "attention maps (sdedit and ddim take smaller images)"
                )

    def _check_call(self, images: Sequence[Any], requests: Sequence[EditRequest], output_type: str) -> None:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be 'pil', 'np' or 'latent', got {output_type!r}")
        if len(images) != len(requests):
            raise ValueError(f"{len(images)} images but {len(requests)} requests")
        if not images:
            raise ValueError("no image to edit")
        for index, request in enumerate(requests):
            check_request(request, index)
        if any(r.source_prompt is None for r in requests) and self.captioner is None:
            raise ValueError("no source prompt and no captioner: pass source_prompt= or a captioner")

    def edit(
        self,
        images: Sequence[Image.Image],
        requests: Sequence[EditRequest],
        settings: EditSettings,
        *,
        method: EditMethod | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        output_type: str = "pil",
        callbacks: Iterable[Callback] = (),
        show_progress: bool = True,
        runtime: RuntimeOptions | None = None,
    ) -> ZeroConPipelineOutput:
        """Edit each image with its request; returns images plus the full record.

        Images of the same size are edited together, up to ``runtime.batch_size`` at a time:
        every UNet call of the inversion, the reference, the guidance and the classifier-free
        guidance carries one row per image. Each image's randomness comes from its own
        generator and each image's guidance is computed on its rows alone, so an image's result
        does not depend on which images share its batch (up to the float rounding of a larger
        matrix product).

        Args:
            images: PIL images (any mode; converted to RGB, sides rounded down to the VAE's
                multiple with a notice).
            requests: one [`EditRequest`][zerocon.editing.EditRequest] per image.
            settings: the numbers.
            method: a method object overriding ``settings.method``.
            generator: the only source of randomness (regulariser rolls, PatchNCE locations,
                SDEdit noise): one generator per image, or one generator that every image
                starts from (the first image uses it; the others use copies of its state at
                the start of the call, so each image sees what it would see alone).
            output_type: ``"pil"``, ``"np"`` or ``"latent"``.
            callbacks: hooks, run in order (a progress bar is added unless
                ``show_progress=False``).
            show_progress: show a progress bar over images and steps.
            runtime: batching, fused calls and gradient checkpointing (default: ``RuntimeOptions()``).

        Raises:
            ValueError: for bad inputs (checked before any model runs).
        """
        self._check_call(images, requests, output_type)
        plan = self.plan(settings, method, runtime)
        generators = image_generators(generator, len(images))
        if settings.num_inference_steps > LONG_RUN_STEPS:
            warnings.warn(
                f"num_inference_steps={settings.num_inference_steps} is a very long run "
                f"(each step costs several UNet evaluations); 20-50 steps are usual",
                UserWarning,
                stacklevel=2,
            )
        hooks = CallbackList([*callbacks, *([ProgressBar()] if show_progress else [])])
        prepared = [prepare_image(image, self.vae_scale_factor) for image in images]
        self._check_large_enough(prepared, plan)
        states = [
            ImageState(index, image, request, notices=list(image.notices))
            for index, (image, request) in enumerate(zip(prepared, requests, strict=True))
        ]
        output = ZeroConPipelineOutput(images=[], parameters=self.call_record(plan, generator))
        hooks.fire("on_edit_start", self, plan, len(images))
        try:
            for group in batches([state.prepared.image.size for state in states], plan.runtime.batch_size):
                members = [states[index] for index in group]
                for state in members:
                    for notice in state.prepared.notices:
                        if notice.startswith("resized"):
                            warnings.warn(f"image {state.index}: {notice}", UserWarning, stacklevel=2)
                self._edit_batch(members, plan, [generators[i] for i in group], output_type, hooks)
        except BaseException as error:
            hooks.fire("on_exception", self, error)
            raise
        for state in states:
            output.add(state)
        output.images = _collect([state.result for state in states], output_type)
        hooks.fire("on_edit_end", self, output)
        return output

    @torch.no_grad()
    def _edit_batch(
        self,
        states: list[ImageState],
        plan: EditPlan,
        generators: list[torch.Generator | None],
        output_type: str,
        hooks: CallbackList,
    ) -> None:
        """Run every phase for images of one size together; ``on_image_end`` fires in order."""
        counter = UNetEvalCounter(self.denoiser.model)
        timer = PhaseTimer()
        for state in states:
            state.counter, state.timer, state.batch_size = counter, timer, len(states)
            hooks.fire("on_image_start", self, state)
        with counter.watching(), float32_latents(self.denoiser.model):
            with timer("caption"):
                caption_phase(self, states)
            with timer("direction"):
                for state in states:
                    condition_phase(self, state, plan)
            with timer("encode"):
                encode_phase(self, states)
            loop = EditLoop(self, states, plan, generators, hooks)
            with timer("inversion"), counter.phase("inversion"):
                plan.method.start(loop)
            with timer("edit"):
                loop.run()
            with timer("decode"):
                decode_phase(self, states, output_type)
        for state in states:
            hooks.fire("on_image_end", self, state, state.result)


def image_generators(
    generator: torch.Generator | Sequence[torch.Generator] | None, count: int
) -> list[torch.Generator | None]:
    """One generator per image: the given list, or the given generator and copies of its state.

    Args:
        generator: ``None``, one ``torch.Generator``, or a sequence of ``count`` of them.
        count: the number of images.

    Returns:
        ``count`` entries; with one generator, the first is that generator and the others are
        new generators (on its device) holding its current state. A generator object repeated
        in the list is treated the same way: its later entries become copies of its state.

    Raises:
        ValueError: for a sequence of the wrong length or with an entry that is not a
            ``torch.Generator``.

    Examples:
        >>> g = torch.Generator().manual_seed(3)
        >>> first, second = image_generators(g, 2)
        >>> first is g, torch.equal(torch.rand(2, generator=first), torch.rand(2, generator=second))
        (True, True)
    """
    if generator is None:
        return [None] * count
    given = [generator] * count if isinstance(generator, torch.Generator) else list(generator)
    if len(given) != count:
        raise ValueError(f"{len(given)} generators for {count} images: pass one, or one per image")
    for index, entry in enumerate(given):
        if not isinstance(entry, torch.Generator):
            raise ValueError(f"generator {index} is a {type(entry).__name__}, not a torch.Generator")
    # The same generator object twice would make images draw from one stream, so each would
    # depend on the others: a repeat gets a copy of the object's state at the call's start.
    result: list[torch.Generator | None] = []
    seen: set[int] = set()
    for entry in given:
        if id(entry) in seen:
            twin = torch.Generator(device=entry.device)
            twin.set_state(entry.get_state())
            entry = twin
        seen.add(id(entry))
        result.append(entry)
    return result


def batches(sizes: Sequence[tuple[int, int]], batch_size: int | None) -> list[list[int]]:
    """Indices of images edited together: equal sizes, at most ``batch_size`` per batch.

    Batches come in the order of their first image; within a batch, images keep their order.

    Examples:
        >>> batches([(64, 64), (32, 32), (64, 64), (64, 64)], 2)
        [[0, 2], [1], [3]]
        >>> batches([(64, 64), (32, 32), (64, 64)], None)
        [[0, 2], [1]]
    """
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        by_size.setdefault(tuple(size), []).append(index)  # type: ignore[arg-type]
    limit = batch_size or len(sizes)
    groups = [members[i : i + limit] for members in by_size.values() for i in range(0, len(members), limit)]
    return sorted(groups, key=lambda group: group[0])


def _seeds(generator: torch.Generator | Sequence[torch.Generator] | None) -> int | list[int] | None:
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        return generator.initial_seed()
    return [g.initial_seed() for g in generator]


def _collect(results: list[Any], output_type: str) -> Any:
    """PIL images as a list; arrays or latents stacked when all sizes agree, else a list."""
    if output_type == "latent":
        return torch.cat(results) if len({tuple(r.shape) for r in results}) == 1 else list(results)
    if output_type == "np":
        arrays = [np.asarray(r, dtype=np.float32) for r in results]
        return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays
    return list(results)
