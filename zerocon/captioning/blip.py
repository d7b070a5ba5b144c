"""Image captioning with BLIP (``BlipForConditionalGeneration``), greedy and deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BlipForConditionalGeneration, BlipProcessor

from zerocon._module_utils import eval_mode, module_device, module_dtype
from zerocon.captioning._utils import pil_image_processor, to_rgb

DEFAULT_BLIP = "Salesforce/blip-image-captioning-base"
_PROCESSOR_LOAD_KEYS = ("cache_dir", "local_files_only", "revision", "token", "force_download")


class BlipCaptioner:
    """Caption images with BLIP, greedily (no sampling, one beam), so captions are deterministic.

    A non-empty ``prefix`` is given to BLIP as the start of the caption (conditional
    captioning, as pix2pix-zero's diffusers port does with ``"a photography of"``): BLIP
    continues it, and the result is ``prefix + " " + continuation``. The returned text starts
    with ``prefix`` exactly as given (BLIP's tokenizer would lower-case it).

    Args:
        model: a ``BlipForConditionalGeneration``.
        processor: the matching ``BlipProcessor``.
        prefix: text every caption starts with (``""`` for unconditional captions).
        max_new_tokens: the longest continuation, in tokens.
        device: moves ``model`` there if given; otherwise the model's own device is used.
        batch_size: images per ``generate`` call.
        show_progress: show a tqdm bar over the batches.

    Shape:
        ``n`` PIL images (any size and mode) → ``list[str]`` of length ``n``; internally
        ``pixel_values`` ``(min(n, batch_size), 3, H, W)`` per ``generate`` call (``H, W`` set by
        the processor, 384 for the default checkpoint).

    Raises:
        ValueError: if ``max_new_tokens`` or ``batch_size`` is below 1.

    Examples:
        >>> from PIL import Image
        >>> image = Image.new("RGB", (64, 64), "white")
        >>> captioner = BlipCaptioner.from_pretrained(prefix="a photography of")  # doctest: +SKIP
        >>> captions = captioner([image, image])  # doctest: +SKIP
        >>> len(captions), captions[0].startswith("a photography of")  # doctest: +SKIP
        (2, True)
    """

    def __init__(
        self,
        model: BlipForConditionalGeneration,
        processor: Any,
        prefix: str = "",
        max_new_tokens: int = 30,
        device: str | torch.device | None = None,
        *,
        batch_size: int = 16,
        show_progress: bool = False,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if device is not None:
            # nn.Module.to: transformers' decorated ``to`` confuses type checkers.
            model = cast(BlipForConditionalGeneration, nn.Module.to(model, device))
        self.model = model
        self.processor = processor
        self.prefix = prefix.strip()
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.show_progress = show_progress

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = DEFAULT_BLIP,
        *,
        prefix: str = "",
        max_new_tokens: int = 30,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        show_progress: bool = False,
        **load_kwargs: Any,
    ) -> BlipCaptioner:
        """Load model and processor with ``from_pretrained`` (hub name or local folder).

        Args:
            name_or_path: a hub id or a folder written by ``save_pretrained`` of both the model
                and the processor.
            prefix: see the class.
            max_new_tokens: see the class.
            device: see the class.
            batch_size: see the class.
            show_progress: see the class.
            **load_kwargs: passed to ``BlipForConditionalGeneration.from_pretrained`` (e.g.
                ``dtype=torch.float16``, ``local_files_only=True``); the loading options
                ``cache_dir``, ``local_files_only``, ``revision``, ``token`` and
                ``force_download`` also go to ``BlipProcessor.from_pretrained``.

        Returns:
            The captioner.

        Examples:
            >>> BlipCaptioner.from_pretrained("path/to/blip", local_files_only=True)  # doctest: +SKIP
        """
        processor_kwargs = {k: v for k, v in load_kwargs.items() if k in _PROCESSOR_LOAD_KEYS}
        model = BlipForConditionalGeneration.from_pretrained(name_or_path, **load_kwargs)
        # The PIL image processor is named explicitly: transformers 5 would otherwise look for
        # torchvision and warn on every load where it is missing.
        processor = BlipProcessor(
            image_processor=pil_image_processor("BlipImageProcessor").from_pretrained(name_or_path, **processor_kwargs),
            tokenizer=AutoTokenizer.from_pretrained(name_or_path, **processor_kwargs),
        )
        return cls(
            model,
            processor,
            prefix=prefix,
            max_new_tokens=max_new_tokens,
            device=device,
            batch_size=batch_size,
            show_progress=show_progress,
        )

    def _prompt_ids(self, batch: int, device: torch.device) -> torch.Tensor:
        # The tokenizer wraps the prefix as [CLS] ... [SEP]; BLIP's generate swaps [CLS] for its
        # BOS token and drops the trailing [SEP]. An empty prefix gives BLIP's default prompt.
        ids = self.processor.tokenizer(self.prefix, return_tensors="pt").input_ids
        return ids.to(device).repeat(batch, 1)

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image]) -> list[str]:
        """Caption each image.

        Args:
            images: PIL images (any mode: converted to RGB; any size: the processor resizes).

        Returns:
            One caption per image: ``prefix`` followed by BLIP's greedy continuation, stripped.

        Raises:
            ValueError: if ``images`` holds anything other than PIL images.
        """
        rgb = to_rgb(images)
        device = module_device(self.model)
        dtype = module_dtype(self.model)
        captions: list[str] = []
        starts = range(0, len(rgb), self.batch_size)
        with eval_mode(self.model):
            for start in tqdm(starts, desc="captioning (BLIP)", disable=not self.show_progress):
                batch = rgb[start : start + self.batch_size]
                pixel_values = self.processor(images=batch, return_tensors="pt").pixel_values
                pixel_values = pixel_values.to(device=device, dtype=dtype)
                prompt = self._prompt_ids(len(batch), device)
                output = self.model.generate(
                    pixel_values=pixel_values,
                    input_ids=cast(torch.LongTensor, prompt.clone()),
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                )
                # generate returns the prompt (without its final [SEP]) followed by new tokens.
                new_tokens = output[:, prompt.shape[1] - 1 :]
                for text in self.processor.tokenizer.batch_decode(
                    new_tokens, skip_special_tokens=True
                ):
                    captions.append(f"{self.prefix} {text.strip()}".strip())
        return captions

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return (
            f"BlipCaptioner(model={name!r}, prefix={self.prefix!r}, "
            f"max_new_tokens={self.max_new_tokens})"
        )
