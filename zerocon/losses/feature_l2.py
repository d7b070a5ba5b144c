"""Positives-only feature loss: each edit feature against the reference feature at its location."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.losses.patch_sampler import PatchSampler, paired_features

__all__ = ["FeatureL2Loss"]


class FeatureL2Loss(nn.Module):
    """Mean squared distance between L2-normalised edit and reference features at shared locations.

    PatchNCE without its negatives: for every sampled location ``i``,
    ``‖q_i/‖q_i‖ − k_i/‖k_i‖‖² = 2 − 2·cos(q_i, k_i)``, averaged over locations, layers and
    scales. It asks each location to keep its own feature and nothing more, so it does not sit
    at chance where features are nearly parallel, as the contrastive loss does. Locations are
    drawn by a [`PatchSampler`][zerocon.losses.PatchSampler] and reused for the keys; keys are detached.

    Args:
        num_patches: locations sampled per layer and scale (all if fewer). Default 256.
        pool_sizes: average-pooling factors. Default ``(1,)``.
        center: subtract each image's mean feature over its locations first.

    Shape:
        - query_features[l], key_features[l]: ``(b, h*w, c)`` or ``(b, c, h, w)``, the same
          shape for query and key of a layer.
        - output: scalar, in ``[0, 4]``.

    Raises:
        ValueError: for different numbers of query and key layers, mismatched shapes, or
            anything [`PatchSampler`][zerocon.losses.PatchSampler] rejects.

    Examples:
        >>> loss = FeatureL2Loss(num_patches=8)
        >>> f = [torch.randn(1, 16, 4)]
        >>> float(loss(f, f, generator=torch.Generator().manual_seed(0)))
        0.0
    """

    def __init__(self, num_patches: int = 256, pool_sizes: Sequence[int] = (1,), center: bool = False) -> None:
        super().__init__()
        self.sampler = PatchSampler(num_patches=num_patches, pool_sizes=pool_sizes)
        self.center = bool(center)

    def extra_repr(self) -> str:
        return f"center={self.center}"

    def forward(
        self,
        query_features: Sequence[Float[Tensor, "..."]],
        key_features: Sequence[Float[Tensor, "..."]],
        generator: torch.Generator | None = None,
    ) -> Float[Tensor, ""]:
        """The loss averaged over layers and scales (see the class docstring)."""
        queries, keys = paired_features(query_features, key_features, self.center)
        query_samples, ids = self.sampler(queries, generator=generator)
        key_samples, _ = self.sampler(keys, patch_ids=ids)
        distances = [(q - k).pow(2).sum(dim=-1).mean() for q, k in zip(query_samples, key_samples, strict=True)]
        return torch.stack(distances).mean()
