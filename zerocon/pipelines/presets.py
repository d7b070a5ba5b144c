"""Method presets: which parts of the editor run, chosen by one name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodPreset:
    """What one editing method does, on the shared code path of :class:`ZeroConPipeline`.

    Args:
        name: the method's name (the ``method=`` argument of the pipeline).
        invert: start from the DDIM inversion ``x_T`` of the source (else: SDEdit's partial
            noising of ``x_0``).
        reference: run the reconstruction (reference) pass step by step alongside the edit.
        cross_attention: guide with pix2pix-zero's cross-attention L2 term.
        patch_nce: guide with zeroCon's PatchNCE term on decoder self-attention features.
        description: one line for help texts.

    Raises:
        ValueError: if a guidance term is asked for without the reference pass, or the name
            is empty.

    Example:
        >>> get_preset("pix2pix-zero").cross_attention
        True
        >>> get_preset("ddim").reference
        False
    """

    name: str
    invert: bool
    reference: bool
    cross_attention: bool
    patch_nce: bool
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a method preset needs a name")
        if (self.cross_attention or self.patch_nce) and not self.reference:
            raise ValueError(f"preset {self.name!r}: guidance terms need the reference pass")
        if self.reference and not self.invert:
            raise ValueError(f"preset {self.name!r}: the reference pass needs the inversion")

    @property
    def guided(self) -> bool:
        """Whether any guidance term is active."""
        return self.cross_attention or self.patch_nce


METHODS: dict[str, MethodPreset] = {
    "zerocon": MethodPreset(
        "zerocon",
        invert=True,
        reference=True,
        cross_attention=True,
        patch_nce=True,
        description="DDIM inversion + direction + cross-attention and PatchNCE guidance",
    ),
    "pix2pix-zero": MethodPreset(
        "pix2pix-zero",
        invert=True,
        reference=True,
        cross_attention=True,
        patch_nce=False,
        description="DDIM inversion + direction + cross-attention guidance",
    ),
    "ddim": MethodPreset(
        "ddim",
        invert=True,
        reference=False,
        cross_attention=False,
        patch_nce=False,
        description="DDIM inversion + direction, no guidance",
    ),
    "sdedit": MethodPreset(
        "sdedit",
        invert=False,
        reference=False,
        cross_attention=False,
        patch_nce=False,
        description="partial noising of the source, then denoising with the target",
    ),
}
"""The built-in presets, by name."""


def get_preset(method: str | MethodPreset) -> MethodPreset:
    """Look a preset up by name (a :class:`MethodPreset` is returned as is).

    Args:
        method: ``"zerocon"``, ``"pix2pix-zero"``, ``"ddim"``, ``"sdedit"`` or a preset.

    Returns:
        The preset.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> get_preset("zerocon").patch_nce
        True
    """
    if isinstance(method, MethodPreset):
        return method
    key = str(method).strip().lower().replace("_", "-")
    if key == "pix2pixzero":
        key = "pix2pix-zero"
    if key not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[key]
