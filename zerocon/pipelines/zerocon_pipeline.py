"""``ZeroConPipeline``: the diffusers façade over [`Editor`][zerocon.editing.Editor]."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, UNet2DConditionModel
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from zerocon.captioning import Captioner
from zerocon.direction import (
    DualTextEncoder,
    EditDirection,
    SentenceSource,
    needs_added_conditioning,
)
from zerocon.editing import (
    Callback,
    Denoiser,
    DirectionBuilder,
    EditMethod,
    Editor,
    EditSettings,
    ModelDefaults,
    ZeroConPipelineOutput,
)
from zerocon.editing.callbacks.step_end import StepEndCallback
from zerocon.editing.callbacks.step_function import StepFunctionCallback
from zerocon.editing.methods import DEFAULT_METHOD, is_registered
from zerocon.editing.preprocessing import vae_scale_factor
from zerocon.editing.requests import build_requests
from zerocon.editing.runtime_options import RuntimeOptions
from zerocon.editing.settings_groups import FLAT_NAMES
from zerocon.pipelines.supported_models import (
    UnsupportedPipelineError,
    check_folder,
    check_pipeline,
    folder_transformer,
    pipeline_transformer,
)


class ZeroConPipeline(DiffusionPipeline):
    """Zero-shot, text-guided image-to-image translation (pix2pix-zeroCon and its baselines).

    A thin diffusers façade: ``from_pretrained`` / ``from_pipe`` / ``save_pretrained`` and
    ``__call__`` with keyword arguments; the work is done by [`Editor`][zerocon.editing.Editor]
    with an [`EditSettings`][zerocon.editing.EditSettings], a registered
    [`EditMethod`][zerocon.editing.EditMethod] and optional [`Callback`][zerocon.editing.Callback]s.

    Args:
        vae: the Stable Diffusion VAE.
        text_encoder: the CLIP text encoder.
        tokenizer: its tokenizer.
        unet: the denoiser (ε- or v-prediction).
        scheduler: the sampling scheduler. Inverting methods need a ``DDIMScheduler``; another
            scheduler is refused at call time with a message (``from_pretrained`` converts a
            folder's scheduler to DDIM with a warning).
        captioner: turns source images into captions; optional when source prompts are given.
            Not a registered component (not saved, not moved by ``.to()``).
        sentence_source: sentences of word directions (default: templates; a model folder's
            ``zerocon.json`` may name its own).
        text_encoder_2: SDXL's second text encoder (``CLIPTextModelWithProjection``); with it
            the prompts are encoded by a [`DualTextEncoder`][zerocon.direction.DualTextEncoder]
            and the editor's [`UNetDenoiser`][zerocon.editing.UNetDenoiser] passes the pooled
            embedding and time ids to the UNet (nothing is installed on the UNet).
        tokenizer_2: its tokenizer.

    Shape:
        Images of any size (sides rounded down to the VAE's multiple); latents
        ``(1, C, H/f, W/f)`` per image.

    Raises:
        ValueError: (on call) for bad arguments; see ``__call__``.

    Examples:
        >>> from zerocon.shapes import embedded_model_path, render_random
        >>> pipe = ZeroConPipeline.from_pretrained(embedded_model_path())  # doctest: +SKIP
        >>> source = render_random(torch.Generator().manual_seed(0), color="red")
        >>> out = pipe(source.to_pil(), target_word="blue", source_word="red",
        ...            num_inference_steps=20, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> out.images[0].size  # doctest: +SKIP
        (64, 64)
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->unet->vae"
    _optional_components: ClassVar[list[str]] = ["text_encoder_2", "tokenizer_2"]
    scheduler: Any  # registered by register_modules

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: Any,
        tokenizer: Any,
        unet: UNet2DConditionModel,
        scheduler: Any,
        captioner: Captioner | None = None,
        sentence_source: SentenceSource | None = None,
        text_encoder_2: Any = None,
        tokenizer_2: Any = None,
    ) -> None:
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                              text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2)
        self._init_editing(captioner, sentence_source)

    def _init_editing(self, captioner: Captioner | None, sentence_source: SentenceSource | None) -> None:
        """What every zerocon pipeline keeps beside its registered components."""
        self.captioner = captioner
        self.sentence_source = sentence_source
        #: η when a call leaves ``guidance_step_size`` unset (a model folder's ``zerocon.json``
        #: may set it); ``None`` means 0.1 for ε-prediction, 0.01 for v-prediction.
        self.default_guidance_step_size: float | None = None
        self.model_defaults = ModelDefaults()
        self._directions: DirectionBuilder | None = None
        self._encoder: tuple[tuple[Any, ...], Any] | None = None  # (the parts it was built from, the encoder)

    # ----------------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> ZeroConPipeline:
        """Load from a diffusers Stable Diffusion folder or hub id.

        A local folder's ``zerocon.json`` (see [`ModelDefaults`][zerocon.editing.ModelDefaults])
        supplies the default guidance step size, captioner and sentence source, unless
        ``captioner=`` / ``sentence_source=`` are given. A non-DDIM scheduler is converted
        to ``DDIMScheduler.from_config`` with a warning (the inversion is DDIM's).

        Args:
            pretrained_model_name_or_path: a folder in ``StableDiffusionPipeline`` layout or a
                hub id.
            **kwargs: passed to ``diffusers.DiffusionPipeline.from_pretrained``
                (``captioner=`` and ``sentence_source=`` are accepted too).

        Returns:
            The pipeline.

        Raises:
            OSError: if the folder or hub id cannot be loaded.
            ValueError: for a malformed ``zerocon.json``.
            UnsupportedPipelineError: (a ``ValueError``) for a folder of a pipeline zerocon
                cannot edit with (no UNet2DConditionModel, no first text encoder, a UNet with
                extra input channels), before any weight is loaded.

        Examples:
            >>> from zerocon.shapes import embedded_model_path
            >>> pipe = ZeroConPipeline.from_pretrained(embedded_model_path())  # doctest: +SKIP
        """
        folder = Path(str(pretrained_model_name_or_path))
        family = _family_pipeline(folder_transformer(folder)) if cls is ZeroConPipeline and folder.is_dir() else None
        if family is not None:
            return family.from_pretrained(pretrained_model_name_or_path, **kwargs)
        captioner = kwargs.pop("captioner", None)
        sentence_source = kwargs.pop("sentence_source", None)
        if folder.is_dir():
            cls._check_folder(folder)
        defaults = ModelDefaults.read(folder) if folder.is_dir() else ModelDefaults()
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        assert isinstance(pipe, cls)
        pipe._prepare_scheduler()
        pipe.apply_model_defaults(defaults, captioner=captioner is None, sentence_source=sentence_source is None)
        if captioner is not None:
            pipe.captioner = captioner
        if sentence_source is not None:
            pipe.sentence_source = sentence_source
        return pipe

    @classmethod
    def from_pipe(cls, pipeline: Any, **kwargs: Any) -> ZeroConPipeline:  # type: ignore[override]
        """Build from another diffusers pipeline's components (no copy), as diffusers' ``from_pipe``.

        An SDXL pipeline keeps both text encoders; a non-DDIM scheduler is converted to DDIM with a
        warning, as in ``from_pretrained``. A ``StableDiffusion3Pipeline`` gives a
        [`ZeroConSD3Pipeline`][zerocon.pipelines.ZeroConSD3Pipeline] (its flow-matching scheduler kept).

        Raises:
            UnsupportedPipelineError: (a ``ValueError``) for a pipeline zerocon cannot edit with.
        """
        family = _family_pipeline(pipeline_transformer(pipeline)) if cls is ZeroConPipeline else None
        if family is not None:
            return family.from_pipe(pipeline, **kwargs)
        cls._check_pipeline(pipeline)
        pipe = super().from_pipe(pipeline, **kwargs)
        assert isinstance(pipe, cls)
        pipe._prepare_scheduler()
        return pipe

    # The steps of loading a family differs in (the transformer families override them).
    @classmethod
    def _check_folder(cls, folder: Path) -> None:
        """Refuse a folder this class cannot edit with, before any weight is read."""
        check_folder(folder)

    @classmethod
    def _check_pipeline(cls, pipeline: Any) -> None:
        """Refuse a loaded pipeline this class cannot edit with."""
        check_pipeline(pipeline)

    def _prepare_scheduler(self) -> None:
        """Make the loaded scheduler the one the edit uses (DDIM for the UNet families)."""
        self._use_ddim()

    def _use_ddim(self) -> None:
        """Replace a non-DDIM scheduler by ``DDIMScheduler.from_config`` (with a warning)."""
        if not isinstance(self.scheduler, DDIMScheduler):
            warnings.warn(
                f"{type(self.scheduler).__name__} replaced by DDIMScheduler.from_config(...): "
                "zerocon's inversion and edit use DDIM",
                UserWarning,
                stacklevel=3,
            )
            self.scheduler = DDIMScheduler.from_config(self.scheduler.config)

    def apply_model_defaults(
        self, defaults: ModelDefaults, *, captioner: bool = True, sentence_source: bool = True
    ) -> ZeroConPipeline:
        """Use a model folder's defaults (step size; captioner and sentences when asked).

        Returns:
            ``self``.
        """
        self.model_defaults = defaults
        if defaults.guidance_step_size is not None:
            self.default_guidance_step_size = defaults.guidance_step_size
        if captioner and defaults.captioner:
            self.captioner = defaults.build_captioner()
        if sentence_source and defaults.sentences:
            self.sentence_source = defaults.build_sentence_source()
        return self

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:  # type: ignore[override]
        """Save the components and the folder's zerocon defaults (``zerocon.json``).

        The diffusers components are saved by ``diffusers.DiffusionPipeline.save_pretrained``;
        then the model folder's captioner, caption list and sentence banks (the files its
        ``zerocon.json`` names) are copied next to them and ``zerocon.json`` is written with
        the pipeline's current default step size, so a reloaded pipeline edits as this one does.

        Args:
            save_directory: the folder to write.
            **kwargs: passed to diffusers' ``save_pretrained``.
        """
        super().save_pretrained(save_directory, **kwargs)
        target = Path(save_directory)
        source = self.model_defaults
        if source.folder is not None and source.folder.resolve() != target.resolve():
            for relative in source.referenced_paths():
                origin, copy = source.folder / relative, target / relative
                if origin.is_dir():
                    shutil.copytree(origin, copy, dirs_exist_ok=True)
                else:
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, copy)
        saved = ModelDefaults(target, self.default_guidance_step_size, source.captioner, source.sentences, source.notes)
        if saved.to_dict():
            saved.write()

    # ----------------------------------------------------------------------- helpers
    @property
    def vae_scale_factor(self) -> int:
        """``2 ** (len(vae.config.block_out_channels) - 1)``."""
        return vae_scale_factor(self.vae)

    def _cached_encoder(self, parts: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The prompt encoder built from ``parts``, rebuilt only when a part was replaced."""
        cached = self._encoder
        if cached is None or len(cached[0]) != len(parts) or any(a is not b for a, b in zip(cached[0], parts, strict=True)):
            cached = (parts, build())
            self._encoder = cached
        return cached[1]

    @property
    def prompt_encoder(self) -> Any:
        """What encodes prompts: the text encoder, or for SDXL a ``DualTextEncoder`` of both (cached)."""
        second = getattr(self, "text_encoder_2", None)
        if second is None:
            return self.text_encoder
        if self.tokenizer_2 is None:
            raise UnsupportedPipelineError("text_encoder_2 is set but tokenizer_2 is not")
        parts = (self.text_encoder, self.tokenizer, second, self.tokenizer_2)
        return self._cached_encoder(parts, lambda: DualTextEncoder(*parts))

    @property
    def word_tokenizer(self) -> Any:
        """The tokenizer whose tokens the attention maps are indexed by (FLUX: T5's)."""
        return self.tokenizer

    @property
    def directions(self) -> DirectionBuilder:
        """The cached direction builder of the current text encoder(s)."""
        encoder = self.prompt_encoder
        if self._directions is None or self._directions.text_encoder is not encoder:
            self._directions = DirectionBuilder(encoder, self.word_tokenizer)
        return self._directions

    @property
    def denoiser_model(self) -> Any:
        """The network that predicts (the UNet; a transformer family's transformer)."""
        return self.unet

    def make_denoiser(self, encoder: Any) -> Denoiser | None:
        """The model seam for ``encoder``'s conditioning (``None``: the editor's ``UNetDenoiser``)."""
        if needs_added_conditioning(self.unet) and not isinstance(encoder, DualTextEncoder):
            raise UnsupportedPipelineError(
                "this UNet is SDXL's (it needs pooled text embeddings and time ids) but the pipeline has no "
                "text_encoder_2 / tokenizer_2; load the whole SDXL folder or pipeline"
            )
        return None

    def editor(self) -> Editor:
        """An [`Editor`][zerocon.editing.Editor] over the pipeline's current components.

        Raises:
            UnsupportedPipelineError: for an SDXL UNet without the second text encoder.
        """
        encoder = self.prompt_encoder
        denoiser = self.make_denoiser(encoder)
        return Editor(
            self.denoiser_model,
            self.vae,
            encoder,
            self.word_tokenizer,
            self.scheduler,
            captioner=self.captioner,
            sentence_source=self.sentence_source,
            default_guidance_step_size=self.default_guidance_step_size,
            device=self._execution_device,
            directions=self.directions,
            denoiser=denoiser,
        )

    def encode_text(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        """Encode prompts with the pipeline's text encoder, as Stable Diffusion conditions."""
        return self.editor().encode_text(prompts)

    def build_direction(
        self, pairs: Sequence[tuple[str, str]], sentence_source: SentenceSource | None = None
    ) -> EditDirection:
        """Δc for word pairs (see [`DirectionBuilder`][zerocon.editing.DirectionBuilder]); cached."""
        return self.directions.build(pairs, sentence_source or self.sentence_source)

    # ----------------------------------------------------------------------- call
    @overload
    def __call__(
        self,
        image: Image.Image | Sequence[Image.Image] | None = None,
        target_prompt: str | Sequence[str] | None = None,
        *,
        return_dict: Literal[True] = True,
        **kwargs: Any,
    ) -> ZeroConPipelineOutput: ...

    @overload
    def __call__(
        self,
        image: Image.Image | Sequence[Image.Image] | None = None,
        target_prompt: str | Sequence[str] | None = None,
        *,
        return_dict: Literal[False],
        **kwargs: Any,
    ) -> tuple[Any, ...]: ...

    @torch.no_grad()
    def __call__(
        self,
        image: Image.Image | Sequence[Image.Image] | None = None,
        target_prompt: str | Sequence[str] | None = None,
        *,
        prompt: str | Sequence[str] | None = None,
        source_prompt: str | Sequence[str] | None = None,
        source_word: str | None = None,
        target_word: str | None = None,
        direction: EditDirection | str | Path | None = None,
        settings: EditSettings | None = None,
        method: str | EditMethod | None = None,
        runtime: RuntimeOptions | None = None,
        sentence_source: SentenceSource | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        output_type: str = "pil",
        show_progress: bool = True,
        callbacks: Iterable[Callback] = (),
        callback: Callable[..., None] | None = None,
        callback_steps: int = 1,
        callback_on_step_end: Callable[..., Any] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        return_dict: bool = True,
        **setting_values: Any,
    ) -> ZeroConPipelineOutput | tuple[Any, ...]:
        """Edit one image or a list of images.

        The direction comes from, in this order: ``direction`` (an
        [`EditDirection`][zerocon.direction.EditDirection] or a saved file); ``source_word`` and
        ``target_word``; the words that differ between each caption and ``target_prompt``
        (equal-length replacements word by word; otherwise ``E(target) − E(caption)``).

        Args:
            image: a PIL image or a list of them.
            target_prompt: what the edit should show (one, or one per image).
            prompt: diffusers' name for ``target_prompt``.
            source_prompt: the caption of each source image; ``None`` uses the captioner.
            source_word: the source word of a word-pair direction.
            target_word: its target word.
            direction: a ready direction or the path of one saved by ``EditDirection.save``.
            settings: an [`EditSettings`][zerocon.editing.EditSettings] (default: the method's preset,
                ``EditSettings.for_method(method)``).
            method: a registered method name or an [`EditMethod`][zerocon.editing.EditMethod]
                (``"zerocon++"``, the default, ``"zerocon"``, ``"pix2pix-zero"``, ``"ddim"``,
                ``"sdedit"``). Without ``settings``, the method's preset is the base the
                keyword settings change; ``method="zerocon"`` is the paper's method.
            runtime: a [`RuntimeOptions`][zerocon.editing.RuntimeOptions] (batching, fused calls,
                gradient checkpointing; its fields may also be given as keywords).
            sentence_source: sentences for word directions (default: the pipeline's).
            generator: the only source of randomness: one generator that every image starts
                from, or one per image (each image's result is then what it would be alone).
            output_type: ``"pil"``, ``"np"`` or ``"latent"``.
            show_progress: show a progress bar (``set_progress_bar_config(disable=True)``
                turns it off too).
            callbacks: [`Callback`][zerocon.editing.Callback] hooks, run in order.
            callback: legacy ``callback(image_index, step_index, timestep, latents)``, or
                diffusers' ``callback(step_index, timestep, latents)`` (a function of three
                parameters).
            callback_steps: call ``callback`` every this many steps (diffusers' name).
            callback_on_step_end: diffusers' ``callback_on_step_end(pipe, step_index,
                timestep, callback_kwargs) -> dict``; a returned ``"latents"`` replaces the
                image's latent (see ``StepEndCallback``).
            callback_on_step_end_tensor_inputs: the tensors ``callback_kwargs`` holds
                (``"latents"``, ``"pred_x0"``).
            return_dict: ``False`` returns the tuple ``(images,)``, as diffusers does.
            **setting_values: any core field of [`EditSettings`][zerocon.editing.EditSettings]
                (``num_inference_steps``, ``guidance_scale``, ``guidance_step_size``,
                ``lambda_xa``, ``lambda_nce``, …), a group, or a group field by its flat name
                (``blend_threshold=0.3``), overriding ``settings``; or a runtime option
                (``batch_size``, ``fuse_unet_calls``, ``gradient_checkpointing``), overriding
                ``runtime``.

        Shape:
            For ``output_type="latent"``, ``images`` is ``(B, C, H/f, W/f)``.

        Returns:
            (with ``return_dict=False``: ``(images,)``) A
            [`ZeroConPipelineOutput`][zerocon.editing.ZeroConPipelineOutput] with images, captions, words,
            every parameter (``parameters["settings"]`` re-creates the settings), timings and
            UNet evaluation counts.

        Raises:
            TypeError: for an unknown keyword argument, or the image and the prompt swapped.
            ValueError: for bad inputs (non-finite or out-of-range numbers, empty prompts, no
                edit, mismatched lists, layers that select nothing), before any model runs.
            FileNotFoundError: for a direction file that does not exist.

        Examples:
            >>> out = pipe(img, "a blue circle on a white background", method="ddim",
            ...            num_inference_steps=10)  # doctest: +SKIP
        """
        image, target_prompt = self.check_inputs(image, target_prompt, prompt)
        _check_argument_types(target_prompt=target_prompt, source_prompt=source_prompt, source_word=source_word,
                              target_word=target_word, direction=direction, generator=generator)
        runtime_values = {key: setting_values.pop(key) for key in RuntimeOptions.names() if key in setting_values}
        known = set(EditSettings.__dataclass_fields__) | set(FLAT_NAMES)
        unknown = sorted(set(setting_values) - known)
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown}; settings are {sorted(known)}, runtime options "
                            f"{list(RuntimeOptions.names())}")
        run_options = (runtime or RuntimeOptions()).replace(**runtime_values)
        base = settings or EditSettings.for_method(method if method is not None else DEFAULT_METHOD)
        if isinstance(method, str):
            setting_values["method"] = method
        elif isinstance(method, EditMethod) and is_registered(method.name):
            setting_values["method"] = method.name
        edit_settings = base.replace(**setting_values) if setting_values else base
        images = [image] if isinstance(image, Image.Image) else list(image)
        if not images:
            raise ValueError("no image to edit")
        requests = build_requests(len(images), target_prompt, source_prompt, source_word, target_word, direction)
        editor = self.editor()
        if sentence_source is not None:
            editor.sentence_source = sentence_source
        hooks = [*callbacks]
        if callback is not None:
            hooks.append(StepFunctionCallback(callback, every=callback_steps))
        if callback_on_step_end is not None:
            hooks.append(StepEndCallback(callback_on_step_end, self, callback_on_step_end_tensor_inputs))
        show_progress = show_progress and not getattr(self, "_progress_bar_config", {}).get("disable", False)
        output = editor.edit(
            images,
            requests,
            edit_settings,
            method=method if isinstance(method, EditMethod) else None,
            generator=generator,
            output_type=output_type,
            callbacks=hooks,
            show_progress=show_progress,
            runtime=run_options,
        )
        # Offloading hooks (enable_model_cpu_offload) go back to their start state, as diffusers' pipelines do.
        self.maybe_free_model_hooks()
        output.parameters.update(
            source_word=source_word,
            target_word=target_word,
            direction=str(direction) if isinstance(direction, (str, Path)) else None,
        )
        if not return_dict:
            return (output.images,)
        return output

    @staticmethod
    def check_inputs(
        image: Any, target_prompt: Any, prompt: Any = None
    ) -> tuple[Image.Image | Sequence[Image.Image], str | Sequence[str] | None]:
        """Check the image and prompt arguments before anything runs; returns them.

        ``prompt=`` is diffusers' name of the target prompt.

        Raises:
            TypeError: when the image and the prompt are swapped (``pipe("a prompt", image)``),
                the image is missing or not a PIL image, or both ``prompt`` and
                ``target_prompt`` are given.
        """
        if prompt is not None:
            if target_prompt is not None:
                raise TypeError("give the target prompt once: prompt= (diffusers' name) or target_prompt=")
            target_prompt = prompt
        if isinstance(image, str) and isinstance(target_prompt, Image.Image | list | tuple):
            raise TypeError(
                "the image and the prompt are swapped: call pipe(image, prompt) — zerocon edits an "
                "image, so the image comes first (or pass image= and prompt= by name)"
            )
        if image is None:
            raise TypeError("no image: pass the image to edit first, pipe(image, prompt)")
        images = [image] if isinstance(image, Image.Image) else image
        if isinstance(images, str) or not isinstance(images, Sequence) or not all(
            isinstance(item, Image.Image) for item in images
        ):
            raise TypeError(f"image must be a PIL image or a list of them, got {type(image).__name__}")
        return image, target_prompt


def _family_pipeline(transformer: str | None) -> type[ZeroConPipeline] | None:
    """The pipeline class of a transformer family (``None`` for the UNet families)."""
    if transformer == "SD3Transformer2DModel":
        from zerocon.pipelines.zerocon_sd3_pipeline import ZeroConSD3Pipeline

        return ZeroConSD3Pipeline
    if transformer == "FluxTransformer2DModel":
        from zerocon.pipelines.zerocon_flux_pipeline import ZeroConFluxPipeline

        return ZeroConFluxPipeline
    return None


def _check_argument_types(**arguments: Any) -> None:
    """One clear ``TypeError`` per argument of the wrong kind (``target_prompt=42``, ``generator=0``)."""
    for name in ("target_prompt", "source_prompt"):
        value = arguments[name]
        if value is not None and not isinstance(value, str) and not (
            isinstance(value, Sequence) and all(item is None or isinstance(item, str) for item in value)
        ):  # a list may hold None for an image that takes its edit (or caption) from elsewhere
            raise TypeError(f"{name} must be text or a list of texts, got {type(value).__name__}: {value!r:.80}")
    for name in ("source_word", "target_word"):
        if arguments[name] is not None and not isinstance(arguments[name], str):
            raise TypeError(f"{name} must be a word (text), got {type(arguments[name]).__name__}")
    direction = arguments["direction"]
    if direction is not None and not isinstance(direction, EditDirection | str | Path):
        raise TypeError(f"direction must be an EditDirection or a file path, got {type(direction).__name__}")
    generator = arguments["generator"]
    if generator is not None and not isinstance(generator, torch.Generator | Sequence):  # a list's entries: image_generators
        raise TypeError(f"generator must be a torch.Generator or a list of them, got {type(generator).__name__}")


__all__ = ["ZeroConPipeline"]
