"""Structure distance: self-similarity of DINO-ViT keys, edited against source (Tumanyan et al.)."""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torchmetrics import Metric

from zerocon.metrics._inputs import check_images
from zerocon.metrics._models import local_model, prepare_pixels

#: ImageNet normalisation, what DINO and DINOv2 were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _last_key_projection(model: nn.Module) -> nn.Module:
    names = [name for name, _ in model.named_modules() if name.endswith((".key", ".k_proj"))]
    if not names:
        raise ValueError(f"{type(model).__name__} has no attention key projection (.key / .k_proj) to read")
    return dict(model.named_modules())[names[-1]]


class StructureDistance(Metric):
    """How much an edit changed the image's structure, as DINO-ViT's last-layer keys see it.

    For each image the keys ``K`` of the last self-attention layer (every token, the class token
    included) are L2-normalised and turned into a self-similarity matrix ``S = K Kᵀ``; the
    distance of an edit is the mean squared difference between the edited and the source
    image's ``S``. Self-similarity describes which parts of the image resemble which, not what
    colour they are, so a recoloured object moves it little and a moved object much. Lower is
    better; 0 for an image and itself.

    Args:
        model: a ``transformers.ViTModel`` / ``Dinov2Model`` (DINO weights for the paper's
            numbers), or a local folder holding one.
        image_size: the side the images are resized to (default: the model's ``image_size``).
        mean: the normalisation's channel means (ImageNet's by default, as DINO's).
        std: its channel standard deviations.

    Shape:
        - update: edited, source ``(N, 3, H, W)`` in ``[0, 1]``.
        - compute: a scalar ``≥ 0``.

    Raises:
        FileNotFoundError: for a model folder that does not exist.
        ValueError: for bad images or a model without an attention key projection.

    Examples:
        >>> from transformers import ViTConfig, ViTModel
        >>> vit = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        ...                          intermediate_size=37, image_size=32, patch_size=8))
        >>> metric = StructureDistance(vit)
        >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x); float(metric.compute())
        0.0
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(
        self,
        model: Any,
        image_size: int | None = None,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from transformers import AutoModel

        self.vit = local_model(model, AutoModel, "DINO/ViT model").eval()
        self.keys = _last_key_projection(self.vit)
        self.image_size = int(image_size if image_size is not None else getattr(self.vit.config, "image_size", 224))
        self.mean, self.std = tuple(mean), tuple(std)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def self_similarity(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n t t"]:
        """``(N, T, T)`` cosine self-similarity of the last layer's keys of ``[0, 1]`` images."""
        captured: list[Tensor] = []
        handle = self.keys.register_forward_hook(lambda module, args, output: captured.append(output))
        try:
            pixels = prepare_pixels(images, self.image_size, self.mean, self.std)
            self.vit(pixel_values=pixels.to(next(self.vit.parameters()).device))
        finally:
            handle.remove()
        keys = torch.nn.functional.normalize(captured[-1].float(), dim=-1)
        return keys @ keys.transpose(1, 2)

    def update(self, edited: Float[Tensor, "n 3 h w"], source: Float[Tensor, "n 3 h w"]) -> None:
        check_images(edited, source)
        difference = (self.self_similarity(edited) - self.self_similarity(source)).pow(2)
        self.total += difference.flatten(1).mean(dim=1).double().sum()
        self.count += int(edited.shape[0])

    def compute(self) -> Float[Tensor, ""]:
        if int(self.count) == 0:
            return torch.tensor(float("nan"))
        return (self.total / self.count).float()
