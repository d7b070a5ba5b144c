"""LPIPS (Zhang et al., 2018) as a network that loads local weights only.

torchmetrics' LPIPS builds its backbone through torchvision and fetches ImageNet weights at run
time. This module rebuilds the three backbones LPIPS uses (AlexNet, SqueezeNet 1.1, VGG16) with
torchvision's exact layer layout, so that a torchvision checkpoint file a user already has
(``squeezenet1_1-b8a52dc0.pth``, ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) loads
as it is, without torchvision installed. The learned linear heads are the ones torchmetrics ships
inside its package (``lpips_models/{alex,squeeze,vgg}.pth``), so nothing is downloaded.

The distance: both images are scaled to ``[-1, 1]`` and normalised per channel; each backbone
stage's features are unit-normalised along channels; their squared difference is weighted per
channel by the linear head, averaged over space, and the stages are summed.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

NetType = Literal["alex", "squeeze", "vgg"]

#: Channels of each stage whose features LPIPS compares.
STAGE_CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
    "vgg": (64, 128, 256, 512, 512),
}

#: Index in the backbone's ``features`` sequence after which each stage ends (exclusive).
STAGE_ENDS: dict[str, tuple[int, ...]] = {
    "alex": (2, 5, 8, 10, 12),
    "squeeze": (2, 5, 8, 10, 11, 12, 13),
    "vgg": (4, 9, 16, 23, 30),
}


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1×1 squeeze, then 1×1 and 3×3 expansions concatenated.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, expand1x1 + expand3x3, H, W)``.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], dim=1
        )


def backbone_features(net_type: NetType) -> nn.Sequential:
    """The convolutional part (``features``) of a backbone, laid out as torchvision's, untrained.

    Args:
        net_type: ``"alex"``, ``"squeeze"`` (SqueezeNet 1.1) or ``"vgg"`` (VGG16).

    Raises:
        ValueError: for another name.
    """
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    if net_type == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), relu(),
            nn.Conv2d(384, 256, 3, padding=1), relu(),
            nn.Conv2d(256, 256, 3, padding=1), relu(), nn.MaxPool2d(3, 2),
        )
    if net_type == "squeeze":
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        return nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), relu(), pool(),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        )
    if net_type == "vgg":
        layers: list[nn.Module] = []
        channels = 3
        for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
            for width in block:
                layers += [nn.Conv2d(channels, width, 3, padding=1), relu()]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        return nn.Sequential(*layers)
    raise ValueError(f"net_type must be 'alex', 'squeeze' or 'vgg', got {net_type!r}")


def shipped_head_weights(net_type: NetType) -> Path:
    """The file of LPIPS' linear heads that torchmetrics ships in its package (v0.1 weights)."""
    from torchmetrics.functional.image import lpips as torchmetrics_lpips

    return Path(inspect.getfile(torchmetrics_lpips)).parent / "lpips_models" / f"{net_type}.pth"


def _state_dict(weights: str | Path | Mapping[str, Tensor], what: str) -> Mapping[str, Tensor]:
    if isinstance(weights, Mapping):
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(weights)!r} does not exist (LPIPS loads local weights only)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(str(path), device="cpu")
        else:  # weights_only: a pickle that would run code is refused, never executed
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch, pickle and safetensors each raise their own types for junk
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ValueError(f"{what} file {str(path)!r} is not a weights file torch or safetensors can read "
                         f"safely ({reason})") from error
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise ValueError(f"{what} file {str(path)!r} holds a {type(loaded).__name__}, not a state dict of tensors")
    return loaded


class LpipsNetwork(nn.Module):
    """LPIPS distance between image pairs, from local weights (never downloaded).

    Args:
        backbone_weights: the backbone's ImageNet weights: a torchvision checkpoint file of the
            whole classifier (its ``classifier.*`` entries are ignored) or of ``features`` alone,
            or such a state dict.
        net_type: ``"squeeze"`` (PIE-Bench's choice), ``"alex"`` or ``"vgg"``.
        head_weights: the linear heads (keys ``lin{k}.model.1.weight``); default: the v0.1 heads
            torchmetrics ships.

    Shape:
        - Input: two image batches ``(N, 3, H, W)`` in ``[0, 1]``.
        - Output: ``(N,)`` distances (0 for identical images).

    Raises:
        FileNotFoundError: for a weights file that does not exist (naming it).
        ValueError: for weights that do not fit the backbone (naming the missing layers).

    Examples:
        >>> backbone = backbone_features("squeeze").state_dict()  # stands in for a real checkpoint
        >>> lpips = LpipsNetwork(backbone, net_type="squeeze")
        >>> x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> lpips(x, x).tolist()
        [0.0, 0.0]
    """

    shift: Tensor
    scale: Tensor

    def __init__(
        self,
        backbone_weights: str | Path | Mapping[str, Shaped[Tensor, "..."]],
        net_type: NetType = "squeeze",
        head_weights: str | Path | Mapping[str, Shaped[Tensor, "..."]] | None = None,
    ) -> None:
        super().__init__()
        self.net_type = net_type
        self.features = backbone_features(net_type)
        state = {k.removeprefix("features."): v for k, v in _state_dict(backbone_weights, "backbone").items()
                 if not k.startswith("classifier.")}
        try:
            missing, unexpected = self.features.load_state_dict(state, strict=False)
        except RuntimeError as error:  # a tensor of another shape
            raise ValueError(f"backbone weights do not fit torchvision's {net_type} layout: {error}") from error
        if missing or unexpected:
            raise ValueError(
                f"backbone weights do not fit torchvision's {net_type} layout: missing {sorted(missing)[:4]}, "
                f"unexpected {sorted(unexpected)[:4]}"
            )
        heads = _state_dict(head_weights if head_weights is not None else shipped_head_weights(net_type), "head")
        convs: list[nn.Conv2d] = []
        for k, channels in enumerate(STAGE_CHANNELS[net_type]):
            conv = nn.Conv2d(channels, 1, kernel_size=1, bias=False)
            key = f"lin{k}.model.1.weight"
            if key not in heads or tuple(heads[key].shape) != tuple(conv.weight.shape):
                raise ValueError(f"head weights lack {key} of shape {tuple(conv.weight.shape)}")
            conv.weight.data.copy_(heads[key])
            convs.append(conv)
        self.heads = nn.ModuleList(convs)
        # The per-channel normalisation LPIPS applies to [-1, 1] inputs.
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def stages(self, images: Float[Tensor, "n 3 h w"]) -> list[Float[Tensor, "n c _ _"]]:
        """Each stage's features of ``[0, 1]`` images, unit-normalised along channels."""
        x = ((2 * images - 1) - self.shift) / self.scale
        out, start = [], 0
        for end in STAGE_ENDS[self.net_type]:
            for index in range(start, end):
                x = self.features[index](x)
            start = end
            out.append(x / torch.sqrt(1e-8 + x.pow(2).sum(dim=1, keepdim=True)))
        return out

    def forward(self, first: Float[Tensor, "n 3 h w"], second: Float[Tensor, "n 3 h w"]) -> Float[Tensor, " n"]:
        total = first.new_zeros(first.shape[0])
        for head, a, b in zip(self.heads, self.stages(first), self.stages(second), strict=True):
            total = total + head((a - b).pow(2)).mean(dim=(1, 2, 3))
        return total
