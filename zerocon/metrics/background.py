"""Background preservation: PSNR, MSE, SSIM and LPIPS outside the edit mask, as PIE-Bench defines them
(or over background pixels only, on request)."""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from zerocon.metrics._inputs import check_images, keep_weights
from zerocon.metrics.lpips_network import LpipsNetwork, NetType


class _BackgroundMetric(Metric):
    """Per-image values outside the edit mask, averaged over images.

    Two definitions (see docs/metrics.md):

    - ``background_only=False`` (the default, PIE-Bench's): the edit region is blacked out in
      both images and the metric is taken over the whole image, black region included. This is
      what published PIE-Bench tables report.
    - ``background_only=True``: the metric is averaged over the background pixels alone, so
      the value does not depend on how large the edit region is.

    Images whose mask covers everything have no background and are not counted. ``compute``
    gives NaN before any counted image.
    """

    is_differentiable = False
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, background_only: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.background_only = bool(background_only)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def per_image(
        self, edited: Float[Tensor, "n c h w"], source: Float[Tensor, "n c h w"], keep: Float[Tensor, "n 1 h w"]
    ) -> Float[Tensor, " n"]:
        raise NotImplementedError

    def update(self, edited: Tensor, source: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            edited: edited images ``(N, 3, H, W)`` in ``[0, 1]``.
            source: the source images, same shape.
            mask: the edit region (non-zero; ``(H, W)``, ``(1, H, W)``, ``(N, H, W)`` or
                ``(N, 1, H, W)``, resized to the images if needed); ``None``: the whole image.

        Raises:
            ValueError: for images that are not float ``(N, 3, H, W)`` in ``[0, 1]``, differ in
                shape, or a mask that does not fit.
        """
        check_images(edited, source)
        keep = keep_weights(mask, edited)
        counted = keep.flatten(1).sum(dim=1) > 0
        if bool(counted.any()):
            edited, source, keep = edited.float(), source.float(), keep.float()
            if not self.background_only:  # PIE-Bench: black out the edit region, score the whole image
                edited, source, keep = edited * keep, source * keep, torch.ones_like(keep)
            values = self.per_image(edited, source, keep)[counted]
            self.total += values.double().sum()
            self.count += int(counted.sum())

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            return torch.tensor(math.nan)
        return (self.total / self.count).float()


def _masked_mse(edited: Tensor, source: Tensor, keep: Tensor) -> Tensor:
    squared = (edited - source).pow(2) * keep
    return squared.flatten(1).sum(dim=1) / (keep.flatten(1).sum(dim=1) * edited.shape[1]).clamp_min(1)


class BackgroundMSE(_BackgroundMetric):
    """Mean squared error outside the edit mask, per image, averaged over images.

    Args:
        background_only: average over background pixels only instead of PIE-Bench's whole
            image with the edit region blacked out (see ``_BackgroundMetric``).

    Shape:
        - update: edited, source ``(N, 3, H, W)`` in ``[0, 1]``; mask as in ``update``.
        - compute: a scalar.

    Examples:
        >>> metric = BackgroundMSE()
        >>> source = torch.zeros(1, 3, 4, 4)
        >>> edited = source.clone(); edited[..., :2] = 1.0   # the left half changed
        >>> mask = torch.zeros(1, 4, 4); mask[:, :, :2] = 1   # ... and that is the edit region
        >>> metric.update(edited, source, mask); float(metric.compute())
        0.0
    """

    higher_is_better = False

    def per_image(
        self, edited: Float[Tensor, "n c h w"], source: Float[Tensor, "n c h w"], keep: Float[Tensor, "n 1 h w"]
    ) -> Float[Tensor, " n"]:
        return _masked_mse(edited, source, keep)


class BackgroundPSNR(_BackgroundMetric):
    """PSNR (data range 1) outside the edit mask, per image, averaged over images.

    An image identical to its source outside the mask has an infinite PSNR; it counts as
    ``max_psnr`` so that the mean stays finite.

    Args:
        max_psnr: the value of an exact background (default 100 dB).
        background_only: the MSE over background pixels only instead of PIE-Bench's whole
            image with the edit region blacked out.

    Shape:
        See ``BackgroundMSE``.

    Examples:
        >>> metric = BackgroundPSNR()
        >>> metric.update(torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 0.6))
        >>> round(float(metric.compute()), 2)
        20.0
    """

    higher_is_better = True

    def __init__(self, max_psnr: float = 100.0, background_only: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(background_only=background_only, **kwargs)
        self.max_psnr = float(max_psnr)

    def per_image(
        self, edited: Float[Tensor, "n c h w"], source: Float[Tensor, "n c h w"], keep: Float[Tensor, "n 1 h w"]
    ) -> Float[Tensor, " n"]:
        mse = _masked_mse(edited, source, keep)
        psnr = 10.0 * torch.log10(1.0 / mse.clamp_min(1e-30))
        return psnr.clamp(max=self.max_psnr)


class BackgroundSSIM(_BackgroundMetric):
    """SSIM outside the edit mask: torchmetrics' SSIM map of the masked images averaged over the
    whole image (PIE-Bench), or over the background pixels (``background_only=True``).

    Args:
        kernel_size: the Gaussian window (torchmetrics' default 11).
        background_only: average the SSIM map of the unmasked images over background pixels only.

    Shape:
        See ``BackgroundMSE``.

    Examples:
        >>> metric = BackgroundSSIM()
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x); round(float(metric.compute()), 4)
        1.0
    """

    higher_is_better = True

    def __init__(self, kernel_size: int = 11, background_only: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(background_only=background_only, **kwargs)
        self.kernel_size = int(kernel_size)

    def per_image(
        self, edited: Float[Tensor, "n c h w"], source: Float[Tensor, "n c h w"], keep: Float[Tensor, "n 1 h w"]
    ) -> Float[Tensor, " n"]:
        _, full = structural_similarity_index_measure(
            edited, source, data_range=1.0, kernel_size=self.kernel_size, reduction="none", return_full_image=True
        )
        if tuple(full.shape[-2:]) != tuple(keep.shape[-2:]):
            full = torch.nn.functional.interpolate(full, size=keep.shape[-2:], mode="nearest")
        weighted = (full.mean(dim=1, keepdim=True) * keep).flatten(1).sum(dim=1)
        return weighted / keep.flatten(1).sum(dim=1).clamp_min(1)


class BackgroundLPIPS(_BackgroundMetric):
    """LPIPS outside the edit mask, PIE-Bench's way: the edit region is blacked out in both images.

    The network loads local weights only (see ``LpipsNetwork``): the backbone from a torchvision
    checkpoint file the user has, the linear heads from torchmetrics' package.

    Args:
        backbone_weights: a ``LpipsNetwork``, or the backbone's weights file / state dict.
        net_type: ``"squeeze"`` (PIE-Bench's choice, the default), ``"alex"`` or ``"vgg"``.
        head_weights: the linear heads; default: the ones torchmetrics ships.

    Shape:
        See ``BackgroundMSE``.

    Raises:
        FileNotFoundError: for a weights file that does not exist (naming it).
        ValueError: for ``background_only=True`` (LPIPS is defined here only as PIE-Bench's
            whole-image distance of the masked images).

    Examples:
        >>> from zerocon.metrics.lpips_network import backbone_features
        >>> metric = BackgroundLPIPS(backbone_features("squeeze").state_dict())  # a real file in use
        >>> x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x); float(metric.compute())
        0.0
    """

    higher_is_better = False

    def __init__(  # type: ignore[no-untyped-def]
        self,
        backbone_weights: Any,
        net_type: NetType = "squeeze",
        head_weights: Any = None,
        **kwargs,
    ) -> None:
        if kwargs.get("background_only"):
            raise ValueError("BackgroundLPIPS has PIE-Bench's definition only (edit region blacked out, whole image)")
        super().__init__(**kwargs)
        if isinstance(backbone_weights, LpipsNetwork):
            self.network = backbone_weights
        else:
            self.network = LpipsNetwork(backbone_weights, net_type=net_type, head_weights=head_weights)

    def per_image(
        self, edited: Float[Tensor, "n c h w"], source: Float[Tensor, "n c h w"], keep: Float[Tensor, "n 1 h w"]
    ) -> Float[Tensor, " n"]:
        with torch.no_grad():
            return self.network(edited * keep, source * keep)
