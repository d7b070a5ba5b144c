"""PatchSampler: draw the same random locations from query and key feature maps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float, Int, Shaped
from torch import Tensor, nn

__all__ = ["PatchSampler"]

_EPS = 1e-7


def _to_tokens(feature: Tensor, layer: int) -> Float[Tensor, "b hw c"]:
    """Return ``feature`` as ``(b, h*w, c)``; it may be ``(b, h*w, c)`` or ``(b, c, h, w)``."""
    if not isinstance(feature, Tensor) or not feature.is_floating_point():
        raise ValueError(f"features[{layer}] must be a floating-point tensor")
    if feature.ndim == 4:
        return rearrange(feature, "b c h w -> b (h w) c")
    if feature.ndim == 3:
        return feature
    raise ValueError(
        f"features[{layer}] must have shape (b, h*w, c) or (b, c, h, w), got {tuple(feature.shape)}"
    )


def _side(feature: Tensor) -> tuple[int, int] | None:
    """Spatial size of a feature map: given for 4-D, inferred (square) for 3-D, else None."""
    if feature.ndim == 4:
        return int(feature.shape[2]), int(feature.shape[3])
    num_locations = int(feature.shape[1])
    side = math.isqrt(num_locations)
    return (side, side) if side * side == num_locations else None


def _pool(
    tokens: Float[Tensor, "b hw c"], size: tuple[int, int], pool: int
) -> Float[Tensor, "b hw2 c"]:
    """2-D average-pool a token sequence of spatial ``size`` with kernel and stride ``pool``."""
    height, width = size
    grid = rearrange(tokens, "b (h w) c -> b c h w", h=height, w=width)
    pooled = F.avg_pool2d(grid, kernel_size=pool, stride=pool)
    return rearrange(pooled, "b c h w -> b (h w) c")


def _projection_head(channels: int, mlp_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, mlp_dim))


def center_locations(feature: Float[Tensor, "..."]) -> Float[Tensor, "..."]:
    """Each image's feature map minus its mean over locations.

    Shape:
        ``(b, h*w, c)`` (mean over axis 1) or ``(b, c, h, w)`` (mean over the last two);
        the output has the input's shape.

    Raises:
        ValueError: for a tensor of another rank.

    Examples:
        >>> f = torch.ones(1, 4, 3) + torch.arange(4.0).view(1, 4, 1)
        >>> center_locations(f)[0, :, 0]
        tensor([-1.5000, -0.5000,  0.5000,  1.5000])
    """
    if feature.ndim == 3:
        return feature - feature.mean(dim=1, keepdim=True)
    if feature.ndim == 4:
        return feature - feature.mean(dim=(2, 3), keepdim=True)
    raise ValueError(f"features must be (b, h*w, c) or (b, c, h, w), got shape {tuple(feature.shape)}")


def paired_features(
    query_features: Sequence[Tensor], key_features: Sequence[Tensor], center: bool = False
) -> tuple[list[Tensor], list[Tensor]]:
    """Check query and key feature lists against each other; keys detached, optionally centred.

    Shared by the feature losses ([`PatchNCELoss`][zerocon.losses.PatchNCELoss],
    [`FeatureL2Loss`][zerocon.losses.FeatureL2Loss]).

    Raises:
        ValueError: for a bare tensor instead of a list, different numbers of layers, a layer
            that is not a tensor, a query/key shape mismatch, or NaN/infinite values.

    Examples:
        >>> q, k = paired_features([torch.ones(1, 4, 2)], [torch.ones(1, 4, 2, requires_grad=True)])
        >>> k[0].requires_grad
        False
    """
    if isinstance(query_features, Tensor) or isinstance(key_features, Tensor):
        raise ValueError("query_features and key_features must be sequences of tensors")
    if len(query_features) != len(key_features):
        raise ValueError(f"got {len(query_features)} query layers but {len(key_features)} key layers")
    for layer, (query, key) in enumerate(zip(query_features, key_features, strict=True)):
        if not isinstance(query, Tensor) or not isinstance(key, Tensor):
            raise ValueError(f"query_features[{layer}] and key_features[{layer}] must be tensors")
        if query.shape != key.shape:
            raise ValueError(f"layer {layer}: query shape {tuple(query.shape)} != key shape {tuple(key.shape)}")
        if not (bool(torch.isfinite(query).all()) and bool(torch.isfinite(key).all())):
            raise ValueError(f"layer {layer}: the query or key features hold NaN or infinite values")
    queries = list(query_features)
    keys = [key.detach() for key in key_features]
    if center:
        queries = [center_locations(q) for q in queries]
        keys = [center_locations(k) for k in keys]
    return queries, keys


class PatchSampler(nn.Module):
    """Sample the same random locations from a list of feature maps (CUT's ``PatchSampleF``).

    For each layer and each pool size ``p`` (in that order: layer-major), the feature
    map is optionally ``p×p`` average-pooled (stride ``p``, CDS multi-scale), then
    ``min(num_patches, locations)`` location ids are drawn without replacement with
    ``torch.randperm(locations, generator=generator)``. The same ids are used for
    every image of the batch. The sampled features go through the layer's projection
    head (if ``use_mlp``) and are L2-normalised as ``x / (‖x‖ + 1e-7)``.

    Pass the returned ids back as ``patch_ids`` to sample the same locations from
    another set of features (this is how query and key stay aligned).

    With ``use_mlp=True`` one head ``Linear(C, mlp_dim) → ReLU → Linear(mlp_dim, mlp_dim)``
    is created eagerly **per layer** (in ``self.heads``) and shared by all pool sizes of
    that layer; it uses PyTorch's default ``nn.Linear`` initialisation.

    Args:
        channels: channel count of each layer, in order. Required when ``use_mlp``;
            when given, the features are checked against it.
        num_patches: locations to sample per layer and scale (all of them if fewer).
        use_mlp: create a projection head per layer.
        mlp_dim: hidden and output width of the heads.
        pool_sizes: average-pooling factors; ``1`` means no pooling. Default ``(1,)``.

    Shape:
        - features[l]: ``(b, h*w, c)`` (square ``h = w`` inferred when pooling is
          needed) or ``(b, c, h, w)``.
        - patch_ids[k]: ``(n_k,)`` integer ids into the ``k``-th (layer, scale) map.
        - output: ``(samples, ids)``, two lists of length ``layers * len(pool_sizes)``;
          ``samples[k]`` is ``(b, n_k, c_out)`` with ``c_out = mlp_dim`` if ``use_mlp``
          else ``c``; ``ids[k]`` is ``(n_k,)`` (``torch.long``, on the feature's device).

    Raises:
        ValueError: on invalid constructor arguments, an empty or mis-sized feature list,
            channel mismatches, non-square token maps that need pooling, maps smaller
            than a pool size, or ``patch_ids`` of the wrong count, shape or range.

    Examples:
        >>> sampler = PatchSampler(channels=[8], num_patches=4, use_mlp=True, mlp_dim=16)
        >>> g = torch.Generator().manual_seed(0)
        >>> samples, ids = sampler([torch.randn(2, 36, 8)], generator=g)
        >>> samples[0].shape, ids[0].shape
        (torch.Size([2, 4, 16]), torch.Size([4]))
        >>> again, _ = sampler([torch.randn(2, 8, 6, 6)], patch_ids=ids)
        >>> again[0].shape
        torch.Size([2, 4, 16])
    """

    def __init__(
        self,
        channels: Sequence[int] | None = None,
        num_patches: int = 256,
        use_mlp: bool = False,
        mlp_dim: int = 256,
        pool_sizes: Sequence[int] = (1,),
    ) -> None:
        super().__init__()
        if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 1:
            raise ValueError(f"num_patches must be an integer >= 1, got {num_patches!r}")
        if isinstance(mlp_dim, bool) or not isinstance(mlp_dim, int) or mlp_dim < 1:
            raise ValueError(f"mlp_dim must be an integer >= 1, got {mlp_dim!r}")
        pools = tuple(pool_sizes)
        if not pools or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in pools):
            raise ValueError(
                f"pool_sizes must be a non-empty sequence of integers >= 1, got {pools!r}"
            )
        if channels is not None:
            channel_list = tuple(channels)
            if not channel_list or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channel_list
            ):
                raise ValueError(
                    f"channels must be a non-empty sequence of integers >= 1, got {channel_list!r}"
                )
            self.channels: tuple[int, ...] | None = channel_list
        else:
            self.channels = None
        if use_mlp and self.channels is None:
            raise ValueError("channels is required when use_mlp=True (heads are created eagerly)")

        self.num_patches = num_patches
        self.use_mlp = use_mlp
        self.mlp_dim = mlp_dim
        self.pool_sizes: tuple[int, ...] = pools
        self.heads = nn.ModuleList(
            [_projection_head(c, mlp_dim) for c in self.channels]
            if use_mlp and self.channels is not None
            else []
        )

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_patches={self.num_patches}, use_mlp={self.use_mlp}, "
            f"mlp_dim={self.mlp_dim}, pool_sizes={self.pool_sizes}"
        )

    def forward(
        self,
        features: Sequence[Float[Tensor, "..."]],
        patch_ids: Sequence[Shaped[Tensor, "..."]] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Float[Tensor, "b _ _"]], list[Int[Tensor, " _"]]]:
        """Sample (or re-sample at ``patch_ids``) every layer at every pool size.

        Args:
            features: one feature map per layer.
            patch_ids: ids returned by an earlier call, one per (layer, scale); when
                given, nothing is drawn and ``generator`` is unused.
            generator: source of randomness for ``torch.randperm``. The ids are drawn
                on the generator's device and moved to the feature's device. If
                ``None``, torch's default generator of the feature's device is used.

        Returns:
            ``(samples, ids)`` as described in the class docstring.
        """
        if isinstance(features, Tensor) or len(features) == 0:
            raise ValueError("features must be a non-empty sequence of tensors (one per layer)")
        if self.channels is not None and len(features) != len(self.channels):
            raise ValueError(
                f"expected {len(self.channels)} feature maps (one per channels entry), got {len(features)}"
            )
        expected_ids = len(features) * len(self.pool_sizes)
        if patch_ids is not None and (
            isinstance(patch_ids, Tensor) or len(patch_ids) != expected_ids
        ):
            count = "a tensor" if isinstance(patch_ids, Tensor) else len(patch_ids)
            raise ValueError(
                f"patch_ids must be a sequence of {expected_ids} id tensors "
                f"(layers x pool sizes), got {count}"
            )

        samples: list[Tensor] = []
        ids_out: list[Tensor] = []
        for layer, feature in enumerate(features):
            tokens = _to_tokens(feature, layer)
            if tokens.shape[-1] == 0 or tokens.shape[1] == 0:
                raise ValueError(f"features[{layer}] has shape {tuple(feature.shape)}: no channels or no locations")
            if self.channels is not None and tokens.shape[-1] != self.channels[layer]:
                raise ValueError(
                    f"features[{layer}] has {tokens.shape[-1]} channels, expected {self.channels[layer]}"
                )
            size = _side(feature)
            for pool in self.pool_sizes:
                if pool == 1:
                    scaled = tokens
                else:
                    if size is None:
                        raise ValueError(
                            f"features[{layer}] has {tokens.shape[1]} locations, not a square "
                            f"map; pass (b, c, h, w) to pool with size {pool}"
                        )
                    if min(size) < pool:
                        raise ValueError(
                            f"features[{layer}] spatial size {size} is smaller than pool size {pool}"
                        )
                    scaled = _pool(tokens, size, pool)
                index = len(samples)
                num_locations = int(scaled.shape[1])
                if patch_ids is None:
                    ids = self._draw_ids(num_locations, scaled.device, generator)
                else:
                    ids = self._check_ids(patch_ids[index], num_locations, index, scaled.device)
                picked = scaled[:, ids, :]
                if self.use_mlp:
                    picked = self.heads[layer](picked)
                norm = picked.norm(p=2, dim=-1, keepdim=True)
                samples.append(picked / (norm + _EPS))
                ids_out.append(ids)
        return samples, ids_out

    def _draw_ids(
        self, num_locations: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        if num_locations < 1:
            raise ValueError("feature maps must have at least one location")
        draw_device = generator.device if generator is not None else device
        perm = torch.randperm(num_locations, generator=generator, device=draw_device)
        return perm[: min(self.num_patches, num_locations)].to(device)

    @staticmethod
    def _check_ids(ids: Tensor, num_locations: int, index: int, device: torch.device) -> Tensor:
        if not isinstance(ids, Tensor) or ids.ndim != 1 or ids.numel() == 0:
            raise ValueError(f"patch_ids[{index}] must be a non-empty 1-D tensor")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise ValueError(f"patch_ids[{index}] must be an integer tensor, got dtype {ids.dtype}")
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= num_locations:
            raise ValueError(
                f"patch_ids[{index}] must lie in [0, {num_locations}), got values in [{low}, {high}]"
            )
        return ids.to(device=device, dtype=torch.long)
