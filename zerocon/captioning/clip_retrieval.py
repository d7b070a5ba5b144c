"""Captioning by retrieval: the candidate caption CLIP finds most similar to the image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, CLIPModel

from zerocon._module_utils import eval_mode, module_device, module_dtype
from zerocon.captioning._utils import pil_image_processor, to_rgb

_LOAD_KEYS = ("cache_dir", "local_files_only", "revision", "token", "force_download")


class ClipRetrievalCaptioner:
    """Caption each image with the candidate caption of highest CLIP cosine similarity.

    Useful when the captions should come from a known vocabulary (e.g. the shapes world:
    "a red circle on a white background"). The candidates' text embeddings are computed once,
    on first use, and cached.

    Args:
        model: a ``CLIPModel``.
        tokenizer: its tokenizer.
        image_processor: its ``CLIPImageProcessor``.
        candidates: the possible captions (at least one non-blank string).
        batch_size: texts or images per forward pass.
        device: moves ``model`` there if given; otherwise the model's own device is used.
        show_progress: show tqdm bars over the batches.

    Shape:
        - ``__call__``: ``n`` PIL images → ``list[str]`` of length ``n`` (each a candidate).
        - ``scores``: ``(n, len(candidates))``; ``candidate_embeddings``: ``(len(candidates), E)``.

    Raises:
        ValueError: for no candidates, a blank candidate, or ``batch_size`` below 1.

    Examples:
        >>> from PIL import Image
        >>> image = Image.new("RGB", (64, 64), "white")
        >>> captioner = ClipRetrievalCaptioner.from_pretrained(
        ...     "openai/clip-vit-base-patch32", ["a photo of a cat", "a photo of a dog"]
        ... )  # doctest: +SKIP
        >>> captioner.scores([image]).shape  # doctest: +SKIP
        torch.Size([1, 2])
        >>> captioner([image])[0] in captioner.candidates  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        model: CLIPModel,
        tokenizer: Any,
        image_processor: Any,
        candidates: Sequence[str],
        batch_size: int = 64,
        device: str | torch.device | None = None,
        *,
        show_progress: bool = False,
    ) -> None:
        if isinstance(candidates, str):
            raise ValueError("candidates must be a sequence of strings, not a single string")
        if len(candidates) == 0:
            raise ValueError("candidates is empty; give at least one candidate caption")
        for index, candidate in enumerate(candidates):
            if not isinstance(candidate, str) or not candidate.strip():
                raise ValueError(
                    f"candidates[{index}] must be a non-blank string, got {candidate!r}"
                )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if device is not None:
            # nn.Module.to: transformers' decorated ``to`` confuses type checkers.
            model = cast(CLIPModel, nn.Module.to(model, device))
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.candidates: tuple[str, ...] = tuple(candidates)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._text_embeddings: Tensor | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        candidates: Sequence[str],
        *,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        show_progress: bool = False,
        **load_kwargs: Any,
    ) -> ClipRetrievalCaptioner:
        """Load a CLIP model, tokenizer and image processor from one hub id or folder.

        Args:
            path: a hub id or a folder holding all three (``save_pretrained`` of each).
            candidates: see the class.
            batch_size: see the class.
            device: see the class.
            show_progress: see the class.
            **load_kwargs: passed to ``CLIPModel.from_pretrained`` (e.g. ``dtype``); the loading
                options ``cache_dir``, ``local_files_only``, ``revision``, ``token`` and
                ``force_download`` also go to the tokenizer and image processor.

        Returns:
            The captioner.

        Examples:
            >>> ClipRetrievalCaptioner.from_pretrained("path/to/clip", ["a cat"])  # doctest: +SKIP
        """
        shared = {k: v for k, v in load_kwargs.items() if k in _LOAD_KEYS}
        model = CLIPModel.from_pretrained(path, **load_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, **shared)
        image_processor = pil_image_processor("CLIPImageProcessor").from_pretrained(path, **shared)
        return cls(
            model,
            tokenizer,
            image_processor,
            candidates,
            batch_size=batch_size,
            device=device,
            show_progress=show_progress,
        )

    @property
    def candidate_embeddings(self) -> Float[Tensor, "n_candidates e"]:
        """L2-normalised CLIP text embeddings of the candidates (float32, computed once)."""
        if self._text_embeddings is None:
            self._text_embeddings = self._embed_texts(self.candidates)
        return self._text_embeddings

    @torch.no_grad()
    def _embed_texts(self, texts: Sequence[str]) -> Tensor:
        device = module_device(self.model)
        chunks: list[Tensor] = []
        starts = range(0, len(texts), self.batch_size)
        with eval_mode(self.model):
            for start in tqdm(starts, desc="encoding candidates", disable=not self.show_progress):
                tokens = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                )
                # text_model + text_projection == get_text_features, written out because its
                # return type changed between transformers 4 (tensor) and 5 (model output).
                pooled = self.model.text_model(
                    input_ids=tokens.input_ids.to(device),
                    attention_mask=tokens.attention_mask.to(device),
                )[1]
                chunks.append(self.model.text_projection(pooled).float())
        return torch.nn.functional.normalize(torch.cat(chunks), dim=-1)

    @torch.no_grad()
    def _embed_images(self, images: Sequence[Image.Image]) -> Tensor:
        device = module_device(self.model)
        dtype = module_dtype(self.model)
        chunks: list[Tensor] = []
        starts = range(0, len(images), self.batch_size)
        with eval_mode(self.model):
            for start in tqdm(starts, desc="encoding images", disable=not self.show_progress):
                pixel_values = self.image_processor(
                    images=list(images[start : start + self.batch_size]), return_tensors="pt"
                ).pixel_values.to(device=device, dtype=dtype)
                pooled = self.model.vision_model(pixel_values=pixel_values)[1]
                chunks.append(self.model.visual_projection(pooled).float())
        return torch.nn.functional.normalize(torch.cat(chunks), dim=-1)

    def scores(self, images: Sequence[Image.Image]) -> Float[Tensor, "n_images n_candidates"]:
        """Cosine similarity between each image and each candidate caption.

        Args:
            images: PIL images (any mode: converted to RGB).

        Shape:
            Output: ``(len(images), len(candidates))``, values in ``[-1, 1]``.

        Returns:
            The similarities, float32, on the model's device.

        Raises:
            ValueError: if ``images`` holds anything other than PIL images.
        """
        rgb = to_rgb(images)
        text = self.candidate_embeddings
        if not rgb:
            return text.new_zeros((0, len(self.candidates)))
        return self._embed_images(rgb) @ text.T

    def __call__(self, images: Sequence[Image.Image]) -> list[str]:
        """The best candidate caption for each image (the argmax of [`scores`][zerocon.captioning.ClipRetrievalCaptioner.scores]).

        Args:
            images: PIL images.

        Returns:
            One candidate per image; ties go to the earliest candidate.

        Raises:
            ValueError: if ``images`` holds anything other than PIL images.
        """
        best = self.scores(images).argmax(dim=1).tolist()
        return [self.candidates[i] for i in best]

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return f"ClipRetrievalCaptioner(model={name!r}, candidates={len(self.candidates)})"
