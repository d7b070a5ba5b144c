"""Attention-derived local blend: outside the edited words' attention, follow the reference.

An addition to pix2pix-zero(Con), in the spirit of Prompt-to-Prompt's local blend. The edit
direction Δc shifts every token's embedding, so an edit of one word also moves pixels no word
of the edit names (a colour edit greys a white background, for instance). After each edit step
the latent is put back to the reference (reconstruction) latent wherever the edited words'
cross-attention is weak::

    m = dilate(threshold(normalise(mean attention of the edited tokens)))
    x_edit ← m · x_edit + (1 − m) · x_ref

The maps are averaged over layers, heads and all steps so far (of both the reference and the
edit pass), which steadies them in the first, noisiest steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch  # noqa: F401  (the examples use it)
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.attention import AttentionAggregator, AttentionRecords


def blend_mask(
    maps: Float[Tensor, "b k h w"],
    size: tuple[int, int],
    threshold: float = 0.5,
    dilation: int = 1,
    invert: bool = False,
    feather: int = 0,
) -> Float[Tensor, "b 1 hh ww"]:
    """A mask from the attention maps of the edited tokens: binary, or with a feathered edge.

    Each row's maps are combined by a maximum over tokens, resized to ``size``, rescaled to
    ``[0, 1]`` between the row's smallest and largest value (a word's attention never falls to
    zero anywhere, so scaling by the peak alone keeps almost everything), cut at ``threshold``
    and grown by ``dilation`` latent pixels (a max-pool). With ``invert`` the tokens mark what
    to keep: that region is grown, then the mask is flipped. With ``feather`` the binary mask is
    then averaged over a ``(2·feather+1)²`` window (edges repeated), so it falls from 1 to 0 over
    about ``2·feather`` latent pixels instead of at once: the two latents are mixed across the
    edge rather than cut.

    Args:
        maps: per-token attention maps of the edited tokens.
        size: ``(H, W)`` of the latent.
        threshold: the cut, as a share of each row's largest value, in ``[0, 1]``.
        dilation: pixels to grow the mask by (``0``: none).
        invert: the tokens mark the region to keep, not the region to edit.

    Shape:
        - maps: ``(B, K, h, w)`` with ``K ≥ 1`` tokens.
        - output: ``(B, 1, H, W)`` of 0.0 and 1.0 (values in between along a feathered edge).

    Raises:
        ValueError: for no token, a threshold outside ``[0, 1]`` or a negative dilation.

    Examples:
        >>> maps = torch.zeros(1, 1, 4, 4); maps[0, 0, 1, 1] = 1.0
        >>> blend_mask(maps, (4, 4), dilation=0)[0, 0].sum().item()
        1.0
        >>> blend_mask(maps, (4, 4), dilation=1)[0, 0].sum().item()
        9.0
        >>> blend_mask(maps, (4, 4), dilation=0, invert=True)[0, 0].sum().item()
        15.0
        >>> soft = blend_mask(maps, (4, 4), dilation=1, feather=1)[0, 0]
        >>> round(soft.sum().item(), 4), soft.max().item() <= 1.0, 0 < soft[3, 3].item() < 1
        (9.0, True, True)
    """
    if maps.shape[1] < 1:
        raise ValueError("blend_mask needs the maps of at least one edited token")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if dilation < 0:
        raise ValueError(f"dilation must be >= 0, got {dilation}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    combined = maps.float().amax(dim=1, keepdim=True)
    if tuple(combined.shape[-2:]) != tuple(size):
        combined = F.interpolate(combined, size=size, mode="bilinear", align_corners=False)
    flat = combined.flatten(1)
    low = flat.amin(dim=1).view(-1, 1, 1, 1)
    span = (flat.amax(dim=1).view(-1, 1, 1, 1) - low).clamp_min(1e-12)
    marked = ((combined - low) / span >= threshold).float()
    if dilation:
        marked = F.max_pool2d(marked, kernel_size=2 * dilation + 1, stride=1, padding=dilation)
    if invert:
        marked = 1.0 - marked
    if feather:
        padded = F.pad(marked, (feather, feather, feather, feather), mode="replicate")
        marked = F.avg_pool2d(padded, kernel_size=2 * feather + 1, stride=1)
    return marked


def blend_latents(
    edit: Float[Tensor, "b c h w"], reference: Float[Tensor, "b c h w"], mask: Float[Tensor, "b 1 h w"]
) -> Float[Tensor, "b c h w"]:
    """``mask · edit + (1 − mask) · reference``.

    Shape:
        - edit, reference: ``(B, C, H, W)``; mask: ``(B, 1, H, W)`` in ``[0, 1]``.

    Examples:
        >>> mask = torch.tensor([[[[1.0, 0.0]]]])
        >>> blend_latents(torch.ones(1, 2, 1, 2), torch.zeros(1, 2, 1, 2), mask)[0, :, 0]
        tensor([[1., 0.],
                [1., 0.]])
    """
    if edit.shape != reference.shape:
        raise ValueError(f"edit {tuple(edit.shape)} and reference {tuple(reference.shape)} differ in shape")
    weight = mask.to(edit.dtype)
    return weight * edit + (1 - weight) * reference


class LocalBlend(nn.Module):
    """Keeps the edit to where the edited words attend; elsewhere the latent follows the reference.

    With ``invert=True`` the tokens mark what must not change instead (for a background edit,
    the object's words): the edit is kept everywhere else.

    Feed it each step's cross-attention records with [`add`][zerocon.guidance.LocalBlend.add] (reference and edit passes
    alike), then call it on the stepped latents. It holds only a running average of the maps.

    Args:
        token_indices: positions of the edited words' tokens in the prompt (the caption; the
            edit's prompt embedding has the same positions).
        threshold: share of the peak attention above which the edit is kept.
        dilation: latent pixels to grow the kept region by.
        layers: cross-attention layers to average (default: all recorded).
        invert: the tokens mark the region to keep rather than the region to edit.

    Shape:
        - forward: edit and reference latents ``(B, C, H, W)`` → ``(B, C, H, W)``.

    Raises:
        ValueError: for no token index, or (from [`forward`][zerocon.losses.PatchNCELoss.forward]) when nothing was added.

    Examples:
        >>> rec = AttentionRecords({"l": torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])}, {}, {"l": 1})
        >>> blend = LocalBlend([0], threshold=0.5, dilation=0)
        >>> blend.add(rec)
        >>> blend(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))[0, 0]
        tensor([[0., 1.],
                [0., 0.]])
    """

    def __init__(
        self,
        token_indices: Sequence[int],
        threshold: float = 0.5,
        dilation: int = 1,
        layers: Sequence[str] | None = None,
        invert: bool = False,
        feather: int = 0,
    ) -> None:
        super().__init__()
        if not token_indices:
            raise ValueError("LocalBlend needs the token positions of at least one edited word")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if dilation < 0:
            raise ValueError(f"dilation must be >= 0, got {dilation}")
        if feather < 0:
            raise ValueError(f"feather must be >= 0, got {feather}")
        self.feather = int(feather)
        self.token_indices = [int(i) for i in token_indices]
        self.threshold = float(threshold)
        self.dilation = int(dilation)
        self.layers = list(layers) if layers is not None else None
        self.invert = bool(invert)
        # The latent size (and so the maps' layout) is known at the first mask(); records that
        # arrive before it wait here.
        self._aggregator: AttentionAggregator | None = None
        self._pending: list[AttentionRecords] = []

    def add(self, records: AttentionRecords) -> None:
        """Fold one forward's cross-attention records into the running average (detached)."""
        if self._aggregator is None:
            self._pending.append(records.detach())
        else:
            self._aggregator.add(records)

    def mask(self, size: tuple[int, int]) -> Float[Tensor, "b 1 h w"]:
        """The current blend mask at latent size ``size`` (``(B, 1, H, W)``).

        Raises:
            ValueError: before any [`add`][zerocon.guidance.LocalBlend.add], or for a size other than the first one asked for.
        """
        aggregator = self._aggregator
        if aggregator is None:
            aggregator = self._aggregator = AttentionAggregator(size, self.layers, aspect=size[1] / size[0])
            for records in self._pending:
                aggregator.add(records)
            self._pending.clear()
        elif tuple(size) != aggregator.size:
            raise ValueError(f"LocalBlend averages maps at {aggregator.size}; asked for {tuple(size)}")
        if aggregator.count == 0:
            raise ValueError("LocalBlend has no attention yet: add() a step's records first")
        maps = aggregator.result()
        if max(self.token_indices) >= maps.shape[1]:
            raise ValueError(f"token index {max(self.token_indices)} beyond the {maps.shape[1]} tokens recorded")
        return blend_mask(maps[:, self.token_indices], size, self.threshold, self.dilation, self.invert, self.feather)

    def forward(self, edit: Float[Tensor, "b c h w"], reference: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        mask = self.mask((int(edit.shape[-2]), int(edit.shape[-1])))
        return blend_latents(edit, reference, mask.to(edit.device))

    def extra_repr(self) -> str:
        return (
            f"tokens={self.token_indices}, threshold={self.threshold}, dilation={self.dilation}, "
            f"invert={self.invert}, feather={self.feather}"
        )
