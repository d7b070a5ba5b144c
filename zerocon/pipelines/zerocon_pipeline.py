"""``ZeroConPipeline``: zero-shot image-to-image translation composed from zerocon's parts."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.utils.torch_utils import randn_tensor
from jaxtyping import Float
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from zerocon.attention import AttentionStore, LayerSelector
from zerocon.captioning import Captioner
from zerocon.direction import EditDirection, SentenceSource, TemplateSentences, encode_prompts
from zerocon.guidance import (
    CrossAttentionGuidance,
    GuidanceInputs,
    GuidanceTerm,
    GuidedScheduler,
    NonFiniteGuidanceWarning,
    PatchNCEGuidance,
)
from zerocon.inversion import DDIMInverter, NoiseRegularizer
from zerocon.losses import PatchNCELoss
from zerocon.pipelines.accounting import PhaseTimer, UNetEvalCounter
from zerocon.pipelines.output import ZeroConPipelineOutput
from zerocon.pipelines.preprocessing import (
    PreparedImage,
    image_to_tensor,
    prepare_image,
    tensor_to_pil,
    vae_scale_factor,
)
from zerocon.pipelines.presets import METHODS, MethodPreset, get_preset
from zerocon.pipelines.sentence_sources import ShapesWorldSentences
from zerocon.pipelines.words import derive_edit_words, swap_words

#: Guidance step size of the embedded shapes model. Its latents are 16×16 (SD's: 64×64), so the
#: summed losses and their gradients are far smaller than on SD and η = 0.1 barely moves the
#: latent; see docs/embedded-model.md for the sweep that chose this value.
SHAPES_WORLD_GUIDANCE_STEP_SIZE = 3.0

#: Default layer patterns (regular expressions on diffusers layer names).
DEFAULT_CROSS_ATTENTION_LAYERS = r"attn2$"
DEFAULT_PATCH_NCE_LAYERS = r"^up_blocks\..*attn1$"


def _is_embedded_path(path: Any) -> bool:
    try:
        from zerocon.shapes import embedded_model_path

        return Path(str(path)).resolve() == embedded_model_path().resolve()
    except (OSError, ValueError, FileNotFoundError):
        return False


def shapes_world_captioner(device: str | torch.device = "cpu") -> Captioner:
    """The default captioner of the embedded model: CLIP retrieval over the world's captions.

    Args:
        device: where the embedded CLIP runs.

    Returns:
        A :class:`~zerocon.captioning.ClipRetrievalCaptioner` over
        :func:`zerocon.shapes.all_captions` with the embedded CLIP.

    Raises:
        FileNotFoundError: if the embedded CLIP weights are missing.

    Example:
        >>> captioner = shapes_world_captioner()  # doctest: +SKIP
    """
    from zerocon.captioning import ClipRetrievalCaptioner
    from zerocon.shapes import all_captions, load_embedded_clip

    model, processor = load_embedded_clip(device)
    return ClipRetrievalCaptioner(
        model, processor.tokenizer, processor.image_processor, all_captions()
    )


class ZeroConPipeline(DiffusionPipeline):
    """Zero-shot, text-guided image-to-image translation (pix2pix-zeroCon and its baselines).

    Per image: caption (unless a source prompt is given) → DDIM inversion with noise
    regularisation → edit direction Δc → reference pass and guided edit pass, step by step
    together → decode. Everything is done by zerocon's components
    (:class:`~zerocon.inversion.DDIMInverter`, :class:`~zerocon.direction.EditDirection`,
    :class:`~zerocon.attention.AttentionStore`, :class:`~zerocon.guidance.GuidedScheduler`
    with :class:`~zerocon.guidance.CrossAttentionGuidance` and
    :class:`~zerocon.guidance.PatchNCEGuidance`); this class only wires them together.

    The ``method`` argument picks a preset on the same code path: ``"zerocon"``
    (cross-attention + PatchNCE guidance), ``"pix2pix-zero"`` (cross-attention guidance),
    ``"ddim"`` (inversion + direction, no guidance), ``"sdedit"`` (partial noising, then
    denoising towards the target).

    Args:
        vae: the Stable Diffusion VAE.
        text_encoder: the CLIP text encoder.
        tokenizer: its tokenizer.
        unet: the denoiser (ε- or v-prediction).
        scheduler: the sampling scheduler; a non-DDIM scheduler is replaced by a
            ``DDIMScheduler`` built from its config at call time (the inversion is DDIM's).
        captioner: turns source images into captions (``images -> list[str]``); optional
            when source prompts are given. Not a registered component: it is not saved by
            ``save_pretrained`` and not moved by ``.to()``.
        sentence_source: where the sentences of word directions come from (default:
            :class:`~zerocon.direction.TemplateSentences`; the shapes world's banks for the
            embedded model).

    Raises:
        ValueError: (on call) for bad arguments; see :meth:`__call__`.

    Example:
        >>> from zerocon.shapes import embedded_model_path, render_random
        >>> pipe = ZeroConPipeline.from_pretrained(embedded_model_path())  # doctest: +SKIP
        >>> source = render_random(torch.Generator().manual_seed(0), color="red")
        >>> out = pipe(source.to_pil(), target_word="blue", source_word="red",
        ...            num_inference_steps=20, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> out.images[0].size  # doctest: +SKIP
        (64, 64)
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: Any,
        tokenizer: Any,
        unet: UNet2DConditionModel,
        scheduler: Any,
        captioner: Captioner | None = None,
        sentence_source: SentenceSource | None = None,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )
        self.captioner = captioner
        self.sentence_source = sentence_source
        #: η used when a call passes ``guidance_step_size=None`` (``None``: method.md's 0.1, or
        #: 0.01 for v-prediction). The embedded shapes model sets its own, measured value.
        self.default_guidance_step_size: float | None = None
        # (words, id(source)) -> (source, direction); the entry holds the source, so its id
        # cannot be reused by another object while the entry exists.
        self._direction_cache: dict[tuple[str, int], tuple[SentenceSource, EditDirection]] = {}

    # ----------------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> ZeroConPipeline:
        """Load from a diffusers Stable Diffusion folder or hub id (or the embedded model).

        For the embedded shapes model (``zerocon.shapes.embedded_model_path()``) the default
        captioner is CLIP retrieval over the world's captions with the embedded CLIP, and the
        default sentence source is the world's sentence banks.

        Args:
            pretrained_model_name_or_path: a folder in ``StableDiffusionPipeline`` layout or a
                hub id.
            **kwargs: passed to :meth:`diffusers.DiffusionPipeline.from_pretrained`
                (``captioner=`` and ``sentence_source=`` are accepted too).

        Returns:
            The pipeline.

        Raises:
            OSError: if the folder or hub id cannot be loaded.

        Example:
            >>> from zerocon.shapes import embedded_model_path
            >>> pipe = ZeroConPipeline.from_pretrained(embedded_model_path())  # doctest: +SKIP
        """
        captioner = kwargs.pop("captioner", None)
        sentence_source = kwargs.pop("sentence_source", None)
        embedded = _is_embedded_path(pretrained_model_name_or_path)
        if embedded:
            kwargs.setdefault("local_files_only", True)
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        assert isinstance(pipe, ZeroConPipeline)
        pipe.captioner = captioner
        pipe.sentence_source = sentence_source
        if embedded:
            pipe.use_shapes_world_defaults(captioner=captioner is None)
        return pipe

    def use_shapes_world_defaults(self, captioner: bool = True) -> ZeroConPipeline:
        """Use the embedded model's defaults: CLIP-retrieval captioner and world sentence banks.

        Args:
            captioner: also set the captioner (loads the embedded CLIP).

        Returns:
            ``self``.

        Example:
            >>> pipe.use_shapes_world_defaults()  # doctest: +SKIP
        """
        if captioner:
            self.captioner = shapes_world_captioner()
        if self.sentence_source is None:
            self.sentence_source = ShapesWorldSentences()
        if self.default_guidance_step_size is None:
            self.default_guidance_step_size = SHAPES_WORLD_GUIDANCE_STEP_SIZE
        return self

    # ----------------------------------------------------------------------- helpers
    @property
    def vae_scale_factor(self) -> int:
        """``2 ** (len(vae.config.block_out_channels) - 1)``."""
        return vae_scale_factor(self.vae)

    def encode_text(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        """Encode prompts with the pipeline's text encoder, as Stable Diffusion conditions.

        Args:
            prompts: texts.

        Returns:
            ``(n, L, D)`` embeddings in the UNet's dtype, on the pipeline's execution device.

        Raises:
            ValueError: for no prompts or a tokenizer that does not fit the encoder.
        """
        embeds = encode_prompts(self.text_encoder, self.tokenizer, list(prompts))
        return embeds.to(device=self._execution_device, dtype=self.unet.dtype)

    def build_direction(
        self,
        pairs: Sequence[tuple[str, str]],
        sentence_source: SentenceSource | None = None,
    ) -> EditDirection:
        """Δc for word pairs: the sum of ``EditDirection.from_words`` over the pairs.

        Args:
            pairs: ``(source word, target word)`` pairs (both non-empty).
            sentence_source: the sentence source (default: the pipeline's, else templates).

        Returns:
            The direction (cached per pair and per source object within this pipeline).

        Raises:
            ValueError: if a word is empty or the source cannot give sentences for it.
            FileNotFoundError: if a file source has no file for a word.
        """
        if not pairs:
            raise ValueError("no word pair to build a direction from")
        source = sentence_source or self.sentence_source or TemplateSentences()
        directions = []
        for src, tgt in pairs:
            if not src.strip() or not tgt.strip():
                raise ValueError(f"cannot build a direction for the word pair {(src, tgt)!r}")
            key = (f"{src}\x00{tgt}", id(source))
            if key not in self._direction_cache:
                try:
                    built = EditDirection.from_words(
                        self.text_encoder, self.tokenizer, src, tgt, source
                    )
                except (ValueError, FileNotFoundError) as error:
                    raise ValueError(
                        f"cannot build the direction {src!r} -> {tgt!r}: {error}"
                    ) from error
                self._direction_cache[key] = (source, built)
            directions.append(self._direction_cache[key][1])
        if len(directions) == 1:
            return directions[0]
        delta = torch.stack([d.delta for d in directions]).sum(0)
        return EditDirection(
            delta,
            source_word=" + ".join(p[0] for p in pairs),
            target_word=" + ".join(p[1] for p in pairs),
            num_source_sentences=sum(d.num_source_sentences for d in directions),
            num_target_sentences=sum(d.num_target_sentences for d in directions),
            encoder_name=directions[0].encoder_name,
        )

    def _select(self, pattern: str, kind: str) -> list[str]:
        names = LayerSelector(pattern=pattern, kind=kind).select(self.unet)  # type: ignore[arg-type]
        if not names:
            what = "cross_attention_layers" if kind == "cross" else "patch_nce_layers"
            raise ValueError(f"{what}={pattern!r} selects no {kind}-attention layer of the UNet")
        return names

    def _guidance_terms(
        self,
        preset: MethodPreset,
        *,
        lambda_xa: float,
        lambda_nce: float,
        cross_attention_layers: str,
        patch_nce_layers: str,
        patch_nce: PatchNCELoss,
    ) -> tuple[list[GuidanceTerm], list[str]]:
        """The preset's guidance terms and the layers they read (raises for bad patterns)."""
        terms: list[GuidanceTerm] = []
        hooked: list[str] = []
        if preset.cross_attention:
            cross_layers = self._select(cross_attention_layers, "cross")
            hooked += cross_layers
            terms.append(CrossAttentionGuidance(lambda_xa, layers=cross_layers))
        if preset.patch_nce:
            self_layers = self._select(patch_nce_layers, "self")
            hooked += self_layers
            terms.append(PatchNCEGuidance(lambda_nce, patch_nce, layers=self_layers))
        return terms, hooked

    def _ddim(self) -> Any:
        if isinstance(self.scheduler, DDIMScheduler):
            return copy.deepcopy(self.scheduler)
        return DDIMScheduler.from_config(self.scheduler.config)

    def _model_output(
        self,
        x: Tensor,
        t: Tensor,
        cond: Tensor,
        uncond: Tensor | None,
        scale: float,
        record: AttentionStore | None = None,
    ) -> Tensor:
        """Classifier-free guided model output; with ``record``, only the cond forward records."""
        if uncond is None or scale == 1.0 or torch.equal(uncond, cond):
            return self.unet(x, t, cond).sample
        if record is not None:
            with record.paused():
                out_uncond = self.unet(x, t, uncond).sample
            out_cond = self.unet(x, t, cond).sample
        else:
            both = self.unet(torch.cat([x, x]), t, torch.cat([uncond, cond])).sample
            out_uncond, out_cond = both.chunk(2)
        return out_uncond + scale * (out_cond - out_uncond)

    # ----------------------------------------------------------------------- call
    @torch.no_grad()
    def __call__(
        self,
        image: Image.Image | Sequence[Image.Image],
        target_prompt: str | Sequence[str] | None = None,
        *,
        source_prompt: str | Sequence[str] | None = None,
        source_word: str | None = None,
        target_word: str | None = None,
        direction: EditDirection | str | Path | None = None,
        method: str | MethodPreset = "zerocon",
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        negative_prompt: str | None = None,
        guidance_step_size: float | None = None,
        lambda_xa: float = 1.0,
        lambda_nce: float = 3.0,
        cross_attention_layers: str = DEFAULT_CROSS_ATTENTION_LAYERS,
        patch_nce_layers: str = DEFAULT_PATCH_NCE_LAYERS,
        nce_num_patches: int = 256,
        nce_temperature: float = 0.07,
        nce_pool_sizes: Sequence[int] = (1, 2),
        max_grad_norm: float | None = None,
        direction_scale: float = 1.0,
        strength: float = 0.5,
        lambda_ac: float = 20.0,
        lambda_kl: float = 20.0,
        num_reg_iterations: int = 5,
        num_reg_rolls: int = 5,
        sentence_source: SentenceSource | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        show_progress: bool = True,
        callback: Callable[[int, int, int, Tensor], None] | None = None,
    ) -> ZeroConPipelineOutput:
        """Edit one image or a list of images.

        The direction comes from, in this order: ``direction`` (an
        :class:`~zerocon.direction.EditDirection` or a saved file); ``source_word`` and
        ``target_word``; the words that differ between each caption and ``target_prompt``
        (the paper's automatic direction; if a side of a difference is empty the direction is
        ``E(target prompt) − E(caption)``).

        Args:
            image: a PIL image or a list of them (any mode: converted to RGB; sides rounded
                down to multiples of the VAE factor, with a notice).
            target_prompt: what the edit should show (one, or one per image).
            source_prompt: the caption of each source image; ``None`` uses the captioner.
            source_word: source word of a word-pair direction.
            target_word: target word of a word-pair direction.
            direction: a ready direction or the path of one saved by ``EditDirection.save``.
            method: ``"zerocon"`` (default), ``"pix2pix-zero"``, ``"ddim"`` or ``"sdedit"``.
            num_inference_steps: DDIM steps of inversion and editing (default 50).
            guidance_scale: classifier-free guidance scale of the edit and reference passes
                (default 5.0, pix2pix-zero's).
            negative_prompt: the unconditional prompt; ``None`` (default) uses the caption,
                as pix2pix-zero does for real images (so the reference pass reconstructs).
            guidance_step_size: η of the latent's gradient step; ``None`` means
                ``self.default_guidance_step_size`` when set (the embedded shapes model sets
                ``SHAPES_WORLD_GUIDANCE_STEP_SIZE``), else 0.1 for ε-prediction (pix2pix-zero's
                rate for real images) and 0.01 for v-prediction.
            lambda_xa: weight of the cross-attention L2 term (default 1.0).
            lambda_nce: weight of the PatchNCE term (default 3.0, CDS's ``w_cut``).
            cross_attention_layers: regex of the ``attn2`` layers compared (default: all).
            patch_nce_layers: regex of the self-attention layers whose outputs PatchNCE
                compares (default: the decoder's ``attn1``, as CDS).
            nce_num_patches: locations sampled per layer and scale (default 256).
            nce_temperature: PatchNCE's τ (default 0.07).
            nce_pool_sizes: PatchNCE scales (default ``(1, 2)``, CDS's multi-scale).
            max_grad_norm: clip the latent gradient's norm per image (default off).
            direction_scale: ``c_edit = c + direction_scale · Δc`` (default 1.0).
            strength: SDEdit's noising strength in ``(0, 1]`` (default 0.5).
            lambda_ac: auto-correlation weight of the noise regulariser (default 20).
            lambda_kl: KL weight of the noise regulariser (default 20).
            num_reg_iterations: regularisation iterations per inversion step (default 5).
            num_reg_rolls: auto-correlation rolls per iteration (default 5).
            sentence_source: sentences for word directions (default: the pipeline's).
            generator: the only source of randomness (regulariser rolls, PatchNCE locations,
                SDEdit noise). Images are edited one after another with this generator.
            output_type: ``"pil"`` (default), ``"np"`` (one ``(B, H, W, 3)`` array in
                ``[0, 1]``, or a list of arrays when sizes differ) or ``"latent"``.
            show_progress: show a progress bar over images and steps.
            callback: ``callback(image_index, step_index, timestep, latents)`` after each
                edit step.

        Shape:
            For ``output_type="latent"``, ``images`` is ``(B, C, H/f, W/f)``.

        Returns:
            A :class:`~zerocon.pipelines.ZeroConPipelineOutput` with the images, captions,
            words, every parameter, timings and UNet evaluation counts.

        Raises:
            ValueError: for an empty target prompt, no direction input, a word the direction
                cannot be built for, no caption source, mismatched list lengths or bad
                numbers. Layer patterns that select no layer and bad PatchNCE settings are
                reported before anything is captioned, inverted or denoised.
            FileNotFoundError: for a direction file that does not exist.

        Example:
            >>> out = pipe(img, "a blue circle on a white background", method="ddim",
            ...            num_inference_steps=10)  # doctest: +SKIP
        """
        preset = get_preset(method)
        images = [image] if isinstance(image, Image.Image) else list(image)
        if not images:
            raise ValueError("no image to edit")
        n = len(images)
        targets = self._per_image(target_prompt, n, "target_prompt")
        sources = self._per_image(source_prompt, n, "source_prompt")
        for t in targets:
            if t is not None and not t.strip():
                raise ValueError("the target prompt is empty; give the text the edit should match")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if guidance_scale < 1.0:
            raise ValueError(f"guidance_scale must be >= 1, got {guidance_scale}")
        if output_type not in ("pil", "np", "latent"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'latent', got {output_type!r}")
        if (source_word is None) != (target_word is None):
            raise ValueError("give both source_word and target_word, or neither")
        if guidance_step_size is not None and not guidance_step_size >= 0:
            raise ValueError(f"guidance_step_size must be >= 0, got {guidance_step_size}")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")
        # Layers and PatchNCE settings are checked here, before any model runs.
        terms, hooked = self._guidance_terms(
            preset,
            lambda_xa=lambda_xa,
            lambda_nce=lambda_nce,
            cross_attention_layers=cross_attention_layers,
            patch_nce_layers=patch_nce_layers,
            patch_nce=PatchNCELoss(
                num_patches=nce_num_patches,
                temperature=nce_temperature,
                pool_sizes=tuple(nce_pool_sizes),
            ),
        )
        fixed_direction = self._load_direction(direction)
        word_pairs = None
        if source_word is not None and target_word is not None:
            if not source_word.strip() or not target_word.strip():
                raise ValueError("source_word and target_word must be non-empty")
            word_pairs = [(source_word.strip(), target_word.strip())]
        if fixed_direction is None and word_pairs is None and all(t is None for t in targets):
            raise ValueError(
                "no edit given: pass target_prompt, source_word and target_word, or direction"
            )
        if any(s is None for s in sources) and self.captioner is None:
            raise ValueError(
                "no source prompt and no captioner: pass source_prompt= or a captioner"
            )

        prediction_type = self.scheduler.config.get("prediction_type", "epsilon")
        step_size = guidance_step_size
        if step_size is None:
            step_size = self.default_guidance_step_size
        if step_size is None:
            step_size = 0.01 if prediction_type == "v_prediction" else 0.1
        seed = generator.initial_seed() if generator is not None else None
        parameters: dict[str, Any] = {
            "method": preset.name,
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "negative_prompt": negative_prompt,
            "guidance_step_size": step_size,
            "lambda_xa": lambda_xa if preset.cross_attention else 0.0,
            "lambda_nce": lambda_nce if preset.patch_nce else 0.0,
            "cross_attention_layers": cross_attention_layers,
            "patch_nce_layers": patch_nce_layers,
            "nce_num_patches": nce_num_patches,
            "nce_temperature": nce_temperature,
            "nce_pool_sizes": list(nce_pool_sizes),
            "max_grad_norm": max_grad_norm,
            "direction_scale": direction_scale,
            "strength": strength if not preset.invert else None,
            "lambda_ac": lambda_ac,
            "lambda_kl": lambda_kl,
            "num_reg_iterations": num_reg_iterations,
            "num_reg_rolls": num_reg_rolls,
            "source_word": source_word,
            "target_word": target_word,
            "direction": str(direction) if isinstance(direction, (str, Path)) else None,
            "seed": seed,
            "prediction_type": prediction_type,
            "scheduler": "DDIMScheduler",
            "sentence_source": repr(sentence_source or self.sentence_source or TemplateSentences()),
        }

        prepared = [prepare_image(img, self.vae_scale_factor) for img in images]
        regularizer = NoiseRegularizer(lambda_ac, lambda_kl, num_reg_iterations, num_reg_rolls)
        output = ZeroConPipelineOutput(images=[], parameters=parameters)
        results: list[Tensor] = []
        bar = tqdm(total=n * num_inference_steps, desc=f"{preset.name}", disable=not show_progress)
        try:
            for index in range(n):
                latents = self._edit_one(
                    index,
                    prepared[index],
                    preset,
                    sources[index],
                    targets[index],
                    word_pairs,
                    fixed_direction,
                    output,
                    bar=bar,
                    steps=num_inference_steps,
                    guidance_scale=guidance_scale,
                    negative_prompt=negative_prompt,
                    step_size=step_size,
                    terms=terms,
                    hooked=hooked,
                    max_grad_norm=max_grad_norm,
                    direction_scale=direction_scale,
                    strength=strength,
                    regularizer=regularizer,
                    sentence_source=sentence_source,
                    generator=generator,
                    output_type=output_type,
                    callback=callback,
                )
                results.append(latents)
        finally:
            bar.close()
        if output_type == "latent":
            output.images = torch.cat(results)
        elif output_type == "np":
            arrays = [np.asarray(r, dtype=np.float32) for r in results]
            same = len({a.shape for a in arrays}) == 1
            output.images = np.stack(arrays) if same else arrays
        else:
            output.images = list(results)
        return output

    # ----------------------------------------------------------------------- internals
    @staticmethod
    def _per_image(value: str | Sequence[str] | None, n: int, name: str) -> list[str | None]:
        if value is None:
            return [None] * n
        if isinstance(value, str):
            return [value] * n
        values: list[str | None] = list(value)
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} images")
        return values

    def _load_direction(self, direction: EditDirection | str | Path | None) -> EditDirection | None:
        if direction is None or isinstance(direction, EditDirection):
            return direction
        return EditDirection.load(direction)

    def _edit_one(
        self,
        index: int,
        prepared: PreparedImage,
        preset: MethodPreset,
        source_prompt: str | None,
        target_prompt: str | None,
        word_pairs: list[tuple[str, str]] | None,
        fixed_direction: EditDirection | None,
        output: ZeroConPipelineOutput,
        *,
        bar: Any,
        steps: int,
        guidance_scale: float,
        negative_prompt: str | None,
        step_size: float,
        terms: list[GuidanceTerm],
        hooked: list[str],
        max_grad_norm: float | None,
        direction_scale: float,
        strength: float,
        regularizer: NoiseRegularizer,
        sentence_source: SentenceSource | None,
        generator: torch.Generator | None,
        output_type: str,
        callback: Callable[[int, int, int, Tensor], None] | None,
    ) -> Any:
        timer = PhaseTimer()
        counter = UNetEvalCounter(self.unet)
        notices = list(prepared.notices)
        for notice in prepared.notices:
            if notice.startswith("resized"):
                warnings.warn(f"image {index}: {notice}", UserWarning, stacklevel=3)
        device, dtype = self._execution_device, self.unet.dtype

        with counter.watching():
            # 1. caption
            with timer("caption"):
                if source_prompt is None:
                    assert self.captioner is not None
                    caption = self.captioner([prepared.image])[0]
                    notices.append(f"caption from the captioner: {caption!r}")
                else:
                    caption = source_prompt
            # 2. direction / conditioning
            with timer("direction"):
                pairs: list[tuple[str, str]] = []
                edit_direction = fixed_direction
                if edit_direction is not None:
                    if edit_direction.source_word and edit_direction.target_word:
                        pairs = [(edit_direction.source_word, edit_direction.target_word)]
                elif word_pairs is not None:
                    pairs = word_pairs
                else:
                    assert target_prompt is not None
                    pairs = derive_edit_words(caption, target_prompt)
                    notices.append(f"edit words derived from the caption: {pairs}")
                if target_prompt is None and pairs:
                    target_prompt = swap_words(caption, pairs)
                cond = self.encode_text([caption])
                target_cond: Tensor | None = None
                if preset.invert or target_prompt is None:
                    if edit_direction is None:
                        if all(src and tgt for src, tgt in pairs):
                            edit_direction = self.build_direction(pairs, sentence_source)
                        else:
                            assert target_prompt is not None
                            notices.append(
                                "a word was added or removed: direction = E(target) - E(caption)"
                            )
                            edit_direction = EditDirection.from_sentences(
                                self.text_encoder, self.tokenizer, [caption], [target_prompt]
                            )
                    target_cond = edit_direction.apply(cond, direction_scale)
                else:
                    target_cond = self.encode_text([target_prompt])
                # The default negative prompt is the caption itself: reuse its encoding.
                uncond = cond if negative_prompt is None else self.encode_text([negative_prompt])
            # 3. encode
            with timer("encode"):
                pixels = image_to_tensor(prepared.image).to(device=device, dtype=self.vae.dtype)
                posterior = self.vae.encode(pixels).latent_dist
                x0 = posterior.mean
                shift = getattr(self.vae.config, "shift_factor", None) or 0.0
                x0 = ((x0 - shift) * self.vae.config.scaling_factor).to(dtype)
            # 4. inversion or noising
            edit_scheduler = self._ddim()
            edit_scheduler.set_timesteps(steps, device=device)
            timesteps = edit_scheduler.timesteps
            with timer("inversion"), counter.phase("inversion"):
                if preset.invert:
                    inverter = DDIMInverter(self.unet, self._ddim(), regularizer)
                    x_start = inverter.invert(
                        x0, cond, steps, generator=generator, show_progress=False
                    ).latents
                else:
                    start = steps - min(steps, max(1, round(steps * strength)))
                    timesteps = timesteps[start:]
                    noise = randn_tensor(x0.shape, generator=generator, device=device, dtype=dtype)
                    x_start = edit_scheduler.add_noise(x0, noise, timesteps[:1])
            bar.total = bar.total - (steps - len(timesteps))
            # 5. reference + edit, step by step
            guided = GuidedScheduler(
                edit_scheduler, terms, step_size=step_size, max_grad_norm=max_grad_norm
            )
            store: AttentionStore | None = None
            attach: AbstractContextManager[Any] = nullcontext()
            if preset.reference:
                exact = "^(?:" + "|".join(re.escape(name) for name in hooked) + ")$"
                store = AttentionStore(
                    LayerSelector(pattern=exact),
                    record_cross=preset.cross_attention,
                    record_self=preset.patch_nce,
                    keep_graph=True,
                )
                attach = store.attach(self.unet)
            ref_scheduler = copy.deepcopy(edit_scheduler)
            x_ref, x_edit = x_start, x_start
            losses: list[dict[str, float]] = []
            skipped: list[int] = []
            with timer("edit"), attach, warnings.catch_warnings():
                warnings.simplefilter("ignore", NonFiniteGuidanceWarning)
                for step_index, t in enumerate(timesteps):
                    reference = None
                    if store is not None:
                        with counter.phase("reference"):
                            ref_out = self._model_output(
                                guided.scale_model_input(x_ref, t),
                                t,
                                cond,
                                uncond,
                                guidance_scale,
                                record=store,
                            )
                        reference = store.snapshot(detach=True)
                        x_ref = ref_scheduler.step(ref_out, t, x_ref).prev_sample

                    def forward(
                        x: Tensor, t: Tensor = t, reference: Any = reference
                    ) -> GuidanceInputs:
                        assert store is not None
                        with counter.phase("guidance"):
                            self.unet(guided.scale_model_input(x, t), t, target_cond)
                        return GuidanceInputs(
                            edit=store.snapshot(),
                            reference=reference,
                            latents=x,  # (b, c, H, W): PatchNCE infers each layer's h, w
                            timestep=t,
                            generator=generator,
                        )

                    def model_output(x: Tensor, t: Tensor = t) -> Tensor:
                        paused = store.paused() if store is not None else nullcontext()
                        with paused, counter.phase("denoise"):
                            assert target_cond is not None
                            return self._model_output(
                                guided.scale_model_input(x, t),
                                t,
                                target_cond,
                                uncond,
                                guidance_scale,
                            )

                    step = guided.guided_step(x_edit, t, forward, model_output)
                    x_edit = step.prev_sample
                    if terms:
                        losses.append(step.guidance.losses)
                        if step.guidance.skipped:
                            skipped.append(step_index)
                    if callback is not None:
                        callback(index, step_index, int(t), x_edit)
                    bar.update(1)
            if skipped:
                message = (
                    f"image {index}: guidance was NaN/Inf at steps {skipped}; "
                    "those moves were skipped"
                )
                notices.append(message)
                warnings.warn(message, NonFiniteGuidanceWarning, stacklevel=3)
            # 6. decode
            with timer("decode"):
                if output_type == "latent":
                    result: Any = x_edit
                else:
                    decoded = self.vae.decode(
                        (x_edit / self.vae.config.scaling_factor + shift).to(self.vae.dtype)
                    ).sample
                    if output_type == "np":
                        result = (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0)
                        result = result.float().cpu().numpy()
                    else:
                        result = tensor_to_pil(decoded)[0]

        output.captions.append(caption)
        output.target_prompts.append(target_prompt)
        output.edit_words.append(list(pairs))
        output.timings.append(timer.as_dict())
        output.unet_evals.append(counter.as_dict())
        output.guidance_losses.append(losses)
        output.skipped_guidance_steps.append(skipped)
        output.notices.append(notices)
        output.start_latents.append(x_start)
        return result


__all__ = ["METHODS", "ZeroConPipeline", "shapes_world_captioner"]
