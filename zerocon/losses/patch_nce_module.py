"""PatchNCELoss: multi-layer, multi-scale PatchNCE as an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.losses._checks import check_temperature
from zerocon.losses.patch_nce import patch_nce_loss
from zerocon.losses.patch_sampler import PatchSampler, paired_features

__all__ = ["PatchNCELoss"]


class PatchNCELoss(nn.Module):
    """PatchNCE between query (edit) and key (reference) features over several layers.

    Locations are sampled once on the query features by ``self.sampler`` (a
    [`PatchSampler`][zerocon.losses.PatchSampler]) and the same ids are reused for the key features, so the
    positive of every query is the key at the same location. ``patch_nce_loss`` is
    computed per (layer, scale) with ``reduction="mean"`` and the results are averaged
    over all layers and scales. Key features are detached: no gradient reaches them
    (nor the heads through them).

    Args:
        channels: channel count per layer; required when ``use_mlp``.
        num_patches: locations sampled per layer and scale (all if fewer). Default 256.
        temperature: softmax temperature ``τ`` (> 0). Default 0.07.
        use_mlp: one projection head per layer (CUT); default ``False`` (CDS).
        mlp_dim: width of the heads. Default 256.
        pool_sizes: average-pooling factors (CDS uses ``(1, 2)``). Default ``(1,)``.
        center: subtract each image's mean feature over its locations (query and key each
            their own) before sampling. Where features are nearly parallel (a small model's
            self-attention outputs on flat images), the shared mean dominates every
            location and every logit is alike; centring leaves what tells locations apart.

    Shape:
        - query_features[l], key_features[l]: ``(b, h*w, c)`` or ``(b, c, h, w)``,
          the same shape for query and key of a layer.
        - output: scalar.

    Raises:
        ValueError: on invalid arguments, different numbers of query and key layers,
            or a query/key shape mismatch (plus everything ``PatchSampler`` rejects).

    Examples:
        >>> loss_fn = PatchNCELoss(num_patches=8, pool_sizes=(1, 2))
        >>> q = [torch.randn(1, 64, 4, requires_grad=True)]
        >>> k = [torch.randn(1, 64, 4)]
        >>> loss = loss_fn(q, k, generator=torch.Generator().manual_seed(0))
        >>> loss.shape
        torch.Size([])
    """

    def __init__(
        self,
        channels: Sequence[int] | None = None,
        num_patches: int = 256,
        temperature: float = 0.07,
        use_mlp: bool = False,
        mlp_dim: int = 256,
        pool_sizes: Sequence[int] = (1,),
        center: bool = False,
    ) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = float(temperature)
        self.center = bool(center)
        self.sampler = PatchSampler(
            channels=channels,
            num_patches=num_patches,
            use_mlp=use_mlp,
            mlp_dim=mlp_dim,
            pool_sizes=pool_sizes,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, center={self.center}"

    def forward(
        self,
        query_features: Sequence[Float[Tensor, "..."]],
        key_features: Sequence[Float[Tensor, "..."]],
        generator: torch.Generator | None = None,
    ) -> Float[Tensor, ""]:
        """Average PatchNCE over layers and scales.

        Args:
            query_features: edit features, one map per layer (gradients flow to them).
            key_features: reference features, one map per layer (detached).
            generator: source of randomness for the location ids; ``None`` uses torch's
                default generator of the features' device.

        Returns:
            The scalar loss.
        """
        query_features, keys = paired_features(query_features, key_features, self.center)
        query_samples, ids = self.sampler(query_features, generator=generator)
        key_samples, _ = self.sampler(keys, patch_ids=ids)
        losses = [
            patch_nce_loss(q, k, temperature=self.temperature, reduction="mean", validate=False)
            for q, k in zip(query_samples, key_samples, strict=True)
        ]
        return torch.stack(losses).mean()
