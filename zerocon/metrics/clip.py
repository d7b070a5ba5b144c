"""CLIP accuracy and CLIP score of edits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from torchmetrics import Metric

from zerocon.metrics._inputs import check_images
from zerocon.metrics._models import local_model, prepare_pixels

#: The normalisation OpenAI's CLIP was trained with (used when no processor says otherwise).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class _ClipMetric(Metric):
    is_differentiable = False
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, model: Any, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from transformers import AutoTokenizer, CLIPModel

        self.clip = local_model(model, CLIPModel, "CLIP model").eval()
        if tokenizer is None:
            if not isinstance(model, (str, Path)):
                raise ValueError("pass the CLIP tokenizer with a CLIP model object (or give a model folder)")
            tokenizer = AutoTokenizer.from_pretrained(str(Path(model).expanduser()), local_files_only=True)
        self.tokenizer = tokenizer
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def _image_features(self, images: Tensor) -> Tensor:
        size = int(self.clip.config.vision_config.image_size)
        pixels = prepare_pixels(images, size, CLIP_MEAN, CLIP_STD).to(next(self.clip.parameters()).device)
        features = self.clip.get_image_features(pixel_values=pixels)
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def _text_features(self, texts: Sequence[str]) -> Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        tokens = {k: v.to(next(self.clip.parameters()).device) for k, v in tokens.items()}
        features = self.clip.get_text_features(**tokens)
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @staticmethod
    def _texts(texts: str | Sequence[str], count: int, what: str) -> list[str]:
        listed = [texts] * count if isinstance(texts, str) else list(texts)
        if len(listed) != count or not all(isinstance(t, str) and t.strip() for t in listed):
            raise ValueError(f"{what}: one non-empty text per image is needed ({count} images)")
        return listed

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            return torch.tensor(float("nan"))
        return (self.total / self.count).float()


class ClipAccuracy(_ClipMetric):
    """Share of edits that CLIP finds closer to the target text than to the source text.

    Args:
        model: a ``transformers.CLIPModel`` or a local folder holding one (and its tokenizer).
        tokenizer: the CLIP tokenizer (read from the folder when ``model`` is a folder).

    Shape:
        - update: edited ``(N, 3, H, W)`` in ``[0, 1]``; one source and one target text per image.
        - compute: a scalar in ``[0, 1]``.

    Raises:
        FileNotFoundError: for a model folder that does not exist.
        ValueError: for bad images, text counts, or a model object without a tokenizer.

    Examples:
        >>> from zerocon.shapes import load_embedded_clip, render_random
        >>> clip, processor = load_embedded_clip()
        >>> metric = ClipAccuracy(clip, processor.tokenizer)
        >>> image = render_random(torch.Generator().manual_seed(0), color="blue", shape="circle",
        ...                       background="white", pattern="plain")
        >>> pixels = torch.from_numpy(image.image).permute(2, 0, 1)[None].float() / 255
        >>> metric.update(pixels, ["a red circle on a white background"], ["a blue circle on a white background"])
        >>> float(metric.compute())
        1.0
    """

    higher_is_better = True

    def update(self, edited: Float[Tensor, "n 3 h w"], source_texts: str | Sequence[str], target_texts: str | Sequence[str]) -> None:
        check_images(edited)
        n = int(edited.shape[0])
        images = self._image_features(edited)
        sources = self._text_features(self._texts(source_texts, n, "source_texts"))
        targets = self._text_features(self._texts(target_texts, n, "target_texts"))
        closer = (images * targets).sum(-1) > (images * sources).sum(-1)
        self.total += closer.double().sum()
        self.count += n


class ClipScore(_ClipMetric):
    """CLIPScore of edits against their target texts: ``100 · max(cos(image, text), 0)``, averaged.

    Args:
        model: a ``transformers.CLIPModel`` or a local folder holding one (and its tokenizer).
        tokenizer: the CLIP tokenizer (read from the folder when ``model`` is a folder).

    Shape:
        - update: edited ``(N, 3, H, W)`` in ``[0, 1]``; one target text per image.
        - compute: a scalar in ``[0, 100]``.

    Raises:
        FileNotFoundError: for a model folder that does not exist.
        ValueError: for bad images, text counts, or a model object without a tokenizer.

    Examples:
        >>> from zerocon.shapes import load_embedded_clip
        >>> clip, processor = load_embedded_clip()
        >>> metric = ClipScore(clip, processor.tokenizer)
        >>> metric.update(torch.rand(2, 3, 64, 64), ["a red circle", "a blue square"])
        >>> 0.0 <= float(metric.compute()) <= 100.0
        True
    """

    higher_is_better = True

    def update(self, edited: Float[Tensor, "n 3 h w"], target_texts: str | Sequence[str]) -> None:
        check_images(edited)
        n = int(edited.shape[0])
        images = self._image_features(edited)
        targets = self._text_features(self._texts(target_texts, n, "target_texts"))
        self.total += (100.0 * (images * targets).sum(-1).clamp_min(0)).double().sum()
        self.count += n
