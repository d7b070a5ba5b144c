"""``LayerSelector``: which attention layers to record."""

from __future__ import annotations

import operator
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from zerocon.attention.layers import PROCESSOR_SUFFIX, attention_layers, layer_name

LayerKind = Literal["cross", "self", "both"]
_KINDS = ("cross", "self", "both")


@dataclass(frozen=True)
class LayerSelector:
    """Choose attention layers by name pattern, kind and resolution.

    A layer is selected when ``pattern`` is found (``re.search``) in its layer name
    (``"up_blocks.1.attentions.0.transformer_blocks.0.attn1"``) or in its diffusers processor
    name (the same plus ``".processor"``), and its kind matches ``kind``. ``resolutions`` is
    checked per call, at run time: a selected layer whose query length ``H·W`` is not in
    ``resolutions`` runs normally and is not recorded.

    Args:
        pattern: a regular expression searched in the layer / processor name.
        kind: ``"cross"`` (encoder-conditioned, SD's ``attn2``), ``"self"`` (SD's ``attn1``)
            or ``"both"``.
        resolutions: allowed query lengths ``H·W`` (e.g. ``{64, 256}``), or ``None`` for all.
            Any iterable of positive ints is accepted and stored as a ``frozenset``.

    Shape:
        No tensors: ``resolutions`` are query lengths ``H·W`` of the ``(B, H·W, C)`` inputs
        of attention calls (a layer on an ``8×8`` feature map has ``H·W = 64``).

    Raises:
        ValueError: on an invalid regular expression, an unknown ``kind``, or a resolution
            that is not a positive integer.
        TypeError: if ``pattern`` is not a string.

    Examples:
        >>> sel = LayerSelector(pattern=r"^up_blocks", kind="self", resolutions={64})
        >>> sel.matches("up_blocks.1.attentions.0.transformer_blocks.0.attn1", is_cross=False)
        True
        >>> sel.allows_resolution(16)
        False
    """

    pattern: str = ".*"
    kind: LayerKind = "both"
    resolutions: Collection[int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise TypeError(f"pattern must be a str, got {type(self.pattern).__name__}")
        try:
            re.compile(self.pattern)
        except re.error as err:
            raise ValueError(f"invalid layer pattern {self.pattern!r}: {err}") from err
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if self.resolutions is not None:
            object.__setattr__(self, "resolutions", _as_resolutions(self.resolutions))

    def matches(self, name: str, is_cross: bool) -> bool:
        """Whether a layer of the given name and kind is selected (resolution aside).

        Args:
            name: a layer name or a processor name (with ``".processor"``).
            is_cross: whether the layer is a cross-attention layer.

        Returns:
            ``True`` if the kind fits and the pattern is found in the name.

        Examples:
            >>> LayerSelector(kind="cross").matches("mid_block.attn1.processor", is_cross=False)
            False
        """
        if self.kind == "cross" and not is_cross:
            return False
        if self.kind == "self" and is_cross:
            return False
        base = layer_name(name)
        return (
            re.search(self.pattern, base) is not None
            or re.search(self.pattern, base + PROCESSOR_SUFFIX) is not None
        )

    def allows_resolution(self, num_pixels: int) -> bool:
        """Whether a call with query length ``num_pixels`` (``H·W``) may be recorded.

        Args:
            num_pixels: the query sequence length of the attention call.

        Returns:
            ``True`` if ``resolutions`` is ``None`` or contains ``num_pixels``.

        Examples:
            >>> LayerSelector(resolutions={64}).allows_resolution(64)
            True
        """
        return self.resolutions is None or num_pixels in self.resolutions

    def select(self, model: Any) -> list[str]:
        """List the layer names of ``model`` this selector matches, in registry order.

        Resolution is not known before a forward pass, so ``resolutions`` is ignored here.

        Args:
            model: a diffusers model with a processor registry (e.g. ``UNet2DConditionModel``).

        Returns:
            Layer names (processor names without ``".processor"``); possibly empty.

        Raises:
            TypeError: if ``model`` has no processor registry.

        Examples:
            >>> from zerocon.testing import tiny_unet
            >>> LayerSelector(pattern="mid_block", kind="cross").select(tiny_unet())
            ['mid_block.attentions.0.transformer_blocks.0.attn2']
        """
        return [
            name
            for name, is_cross in attention_layers(model).items()
            if self.matches(name, is_cross)
        ]


def _as_resolutions(values: Iterable[int]) -> frozenset[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"resolutions must be an iterable of ints, got {values!r}")
    result: set[int] = set()
    for value in values:
        try:
            number = operator.index(value)
        except TypeError:
            number = 0
        if isinstance(value, bool) or number <= 0:
            raise ValueError(
                f"resolutions must be positive ints (query lengths H·W), got {value!r}"
            )
        result.add(number)
    return frozenset(result)
