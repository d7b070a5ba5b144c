"""Editing methods as strategy objects, registered by name.

A method says whether the edit starts from a DDIM inversion, whether a reference
(reconstruction) pass runs beside the edit, which attention it needs recorded, and which
guidance terms move the latent. The engine ([`Editor`][zerocon.editing.Editor]) runs any of them
on the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from zerocon.editing.settings import EditSettings
from zerocon.guidance import (
    CrossAttentionGuidance,
    FeatureL2Guidance,
    GuidanceTerm,
    PatchNCEGuidance,
    ToneAnchorGuidance,
)
from zerocon.losses import FeatureL2Loss, PatchNCELoss


@dataclass(frozen=True)
class RecordedLayers:
    """The UNet layers whose attention the reference and edit passes record.

    Shape:
        No tensors: lists of diffusers layer names.

    Examples:
        >>> RecordedLayers(cross=["up_blocks.0.attentions.0.transformer_blocks.0.attn2"]).all
        ('up_blocks.0.attentions.0.transformer_blocks.0.attn2',)
    """

    cross: list[str] = field(default_factory=list)
    self_attention: list[str] = field(default_factory=list)

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.cross, *self.self_attention)


class EditMethod:
    """A method's strategy. Subclass it, set the class attributes, override [`guidance_terms`][zerocon.editing.EditMethod.guidance_terms].

    Class attributes:
        name: the registry key (the ``method=`` argument).
        invert: start from the DDIM inversion ``x_T`` of the source (else SDEdit's noising).
        reference: run the reconstruction pass beside the edit (needed by guidance terms).
        record_cross / record_self: which attention the passes record (layers chosen by the
            settings' ``cross_attention_layers`` / ``patch_nce_layers``).
        description: one line for help texts.
        defaults: the settings this method changes from [`EditSettings`][zerocon.editing.EditSettings]' defaults (a
            preset); [`for_method`][zerocon.editing.EditSettings.for_method] applies them. Empty for the papers'
            methods.

    Shape:
        No tensors: the terms it returns read ``GuidanceInputs`` (see
        [`GuidanceTerm`][zerocon.guidance.GuidanceTerm]).

    Raises:
        ValueError: (from [`validate`][zerocon.editing.EditMethod.validate]) for a contradictory combination.

    Examples:
        >>> class Sharpen(EditMethod):
        ...     name = "sharpen"
        ...     record_cross = True
        >>> Sharpen().validate().reference
        True
    """

    name: str = ""
    invert: bool = True
    reference: bool = True
    record_cross: bool = False
    record_self: bool = False
    description: str = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def guidance_terms(self, settings: EditSettings, layers: RecordedLayers) -> list[GuidanceTerm]:
        """The terms that guide the edit (default: none).

        Args:
            settings: the edit's settings.
            layers: the recorded layers, resolved on the UNet being used.
        """
        return []

    def records_self_attention(self, settings: EditSettings) -> bool:
        """Whether these settings need the self-attention features recorded (default: ``record_self``).

        A method whose feature term can be switched off overrides it, so that nothing is
        recorded (or computed) for a term of weight zero.
        """
        return self.record_self

    @property
    def guided(self) -> bool:
        """Whether this method records anything for guidance."""
        return self.record_cross or self.record_self

    def validate(self) -> EditMethod:
        """Check the combination of flags; returns ``self``."""
        if not self.name:
            raise ValueError(f"{type(self).__name__} needs a non-empty name")
        if self.guided and not self.reference:
            raise ValueError(f"method {self.name!r}: recorded guidance needs the reference pass")
        if self.reference and not self.invert:
            raise ValueError(f"method {self.name!r}: the reference pass needs the inversion")
        return self

    def describe(self) -> dict[str, Any]:
        """The method's flags, for the result's record."""
        return {
            "name": self.name,
            "class": type(self).__qualname__,
            "invert": self.invert,
            "reference": self.reference,
            "record_cross": self.record_cross,
            "record_self": self.record_self,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def feature_term(settings: EditSettings, layers: RecordedLayers) -> PatchNCEGuidance:
    """The feature term the settings ask for (``feature_term``), weighted by ``lambda_nce``.

    Examples:
        >>> term = feature_term(EditSettings(feature_term="feature-l2"), RecordedLayers(self_attention=["l"]))
        >>> type(term).__name__, term.layers
        ('FeatureL2Guidance', ['l'])
    """
    if settings.feature_term == "feature-l2":
        loss = FeatureL2Loss(num_patches=settings.nce_num_patches, pool_sizes=settings.nce_pool_sizes)
        return FeatureL2Guidance(
            settings.lambda_nce, loss, layers=layers.self_attention, balanced=settings.balance_features
        )
    patch_nce = PatchNCELoss(
        num_patches=settings.nce_num_patches,
        temperature=settings.nce_temperature,
        pool_sizes=settings.nce_pool_sizes,
        center=settings.feature_term == "centered-patch-nce",
    )
    return PatchNCEGuidance(settings.lambda_nce, patch_nce, layers=layers.self_attention, balanced=settings.balance_features)


def tone_terms(settings: EditSettings) -> list[GuidanceTerm]:
    """The tone anchor when ``lambda_tone > 0`` (else nothing).

    Examples:
        >>> tone_terms(EditSettings()), len(tone_terms(EditSettings(lambda_tone=1.0)))
        ([], 1)
    """
    return [ToneAnchorGuidance(settings.lambda_tone, settings.tone_pool)] if settings.lambda_tone > 0 else []


class ZeroConMethod(EditMethod):
    """pix2pix-zeroCon: cross-attention L2 plus PatchNCE on decoder self-attention features.

    Shape:
        See [`EditMethod`][zerocon.editing.EditMethod].

    Examples:
        >>> ZeroConMethod().record_self
        True
    """

    name = "zerocon"
    record_cross = True
    record_self = True
    description = "DDIM inversion + direction + cross-attention and PatchNCE guidance"

    def records_self_attention(self, settings: EditSettings) -> bool:
        """Features are recorded only while the feature term has a weight (``lambda_nce > 0``)."""
        return settings.lambda_nce > 0

    def guidance_terms(self, settings: EditSettings, layers: RecordedLayers) -> list[GuidanceTerm]:
        features = [feature_term(settings, layers)] if layers.self_attention else []
        return [CrossAttentionGuidance(settings.lambda_xa, layers=layers.cross), *features, *tone_terms(settings)]


class Pix2PixZeroMethod(EditMethod):
    """pix2pix-zero: cross-attention L2 guidance only.

    Shape:
        See [`EditMethod`][zerocon.editing.EditMethod].

    Examples:
        >>> Pix2PixZeroMethod().record_self
        False
    """

    name = "pix2pix-zero"
    record_cross = True
    description = "DDIM inversion + direction + cross-attention guidance"

    def guidance_terms(self, settings: EditSettings, layers: RecordedLayers) -> list[GuidanceTerm]:
        return [CrossAttentionGuidance(settings.lambda_xa, layers=layers.cross), *tone_terms(settings)]


class ZeroConPlusPlusMethod(ZeroConMethod):
    """``zerocon++``: this project's best editor on its benchmark, built from structure-keeping parts.

    The paper's guided edit with the preset in ``defaults``, chosen on the structure
    benchmark's tuning split (see the benchmarks page): the empty negative prompt, the local
    blend for every edit type with its region read from the words (the edit scope), no
    cross-attention move and a weaker direction for scene edits, and no feature term (no variant
    of it helped on the embedded model; ``lambda_nce > 0`` brings it back). Every part is a
    setting of its own and works alone.

    Shape:
        See [`EditMethod`][zerocon.editing.EditMethod].

    Examples:
        >>> EditSettings.for_method("zerocon++").local_blend
        True
    """

    name = "zerocon++"
    description = "zerocon with an automatic local blend for every edit type, empty negative prompt, scene-aware guidance"
    defaults: ClassVar[dict[str, Any]] = {
        # Object edits: the empty negative prompt, a plain reconstruction as reference, the
        # blend on the edited words.
        "negative_prompt": "",
        "reference_cfg": False,
        "local_blend": True,
        "blend_scope": "auto",
        # No feature term: on the tuning split every variant (PatchNCE, centred, L2, balanced)
        # was level with none on colour edits and cost shape edits one in eight.
        "lambda_nce": 0.0,
        # Scene edits: no cross-attention move, a weaker direction, only the subject's pixels
        # kept (no ring of the old scene).
        "scene_step_factor": 0.0,
        "scene_direction_scale": 0.7,
        "scene_blend_dilation": 0,
    }


class DDIMMethod(EditMethod):
    """DDIM inversion plus the direction, without guidance.

    Shape:
        See [`EditMethod`][zerocon.editing.EditMethod].

    Examples:
        >>> DDIMMethod().reference
        False
    """

    name = "ddim"
    reference = False
    description = "DDIM inversion + direction, no guidance"


class SDEditMethod(EditMethod):
    """SDEdit: noise the source partway (``strength``), then denoise towards the target.

    Shape:
        See [`EditMethod`][zerocon.editing.EditMethod].

    Examples:
        >>> SDEditMethod().invert
        False
    """

    name = "sdedit"
    invert = False
    reference = False
    description = "partial noising of the source, then denoising with the target"


#: The method the pipeline, ``zerocon edit`` and ``zerocon demo`` use unless told otherwise.
DEFAULT_METHOD = "zerocon++"

_REGISTRY: dict[str, EditMethod] = {}


def _key(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return "pix2pix-zero" if key == "pix2pixzero" else key


def register_method(method: EditMethod | type[EditMethod], *, replace: bool = False) -> Any:
    """Register a method under its ``name``. Works as a class decorator too.

    Args:
        method: an [`EditMethod`][zerocon.editing.EditMethod] instance or subclass (instantiated without arguments).
        replace: allow replacing a registered method of the same name.

    Returns:
        What was passed in (so it can decorate a class).

    Raises:
        ValueError: for an invalid method or preset (``defaults``), or a name already taken.

    Examples:
        >>> @register_method
        ... class Plain(EditMethod):
        ...     name = "doc-plain"
        ...     reference = False
        >>> get_method("doc-plain").reference
        False
        >>> unregister_method("doc-plain")
    """
    instance = method() if isinstance(method, type) else method
    if not isinstance(instance, EditMethod):
        raise TypeError(f"a method must be an EditMethod, got {type(instance).__name__}")
    instance.validate()
    key = _key(instance.name)
    if key in _REGISTRY and not replace:
        raise ValueError(f"a method named {instance.name!r} is already registered")
    previous = _REGISTRY.get(key)
    _REGISTRY[key] = instance
    try:
        EditSettings.for_method(instance.name)  # a preset must be valid settings
    except ValueError:
        if previous is None:
            del _REGISTRY[key]
        else:
            _REGISTRY[key] = previous
        raise
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (a no-op for unknown names).

    Examples:
        >>> unregister_method("no-such-method")
    """
    _REGISTRY.pop(_key(name), None)


def get_method(method: str | EditMethod) -> EditMethod:
    """Look a method up by name (an [`EditMethod`][zerocon.editing.EditMethod] is validated and returned as is).

    Raises:
        ValueError: for an unknown name.

    Examples:
        >>> get_method("pix2pix_zero").name
        'pix2pix-zero'
    """
    if isinstance(method, EditMethod):
        return method.validate()
    key = _key(method)
    if key not in _REGISTRY:
        raise ValueError(f"unknown method {method!r}; choose one of {available_methods()}")
    return _REGISTRY[key]


def is_registered(name: str) -> bool:
    """Whether a method is registered under ``name`` (spelling as [`get_method`][zerocon.editing.get_method] reads it).

    Examples:
        >>> is_registered("pix2pix_zero"), is_registered("bogus")
        (True, False)
    """
    return _key(name) in _REGISTRY


def available_methods() -> list[str]:
    """The registered method names, sorted.

    Examples:
        >>> {"zerocon", "pix2pix-zero", "ddim", "sdedit"} <= set(available_methods())
        True
    """
    return sorted(_REGISTRY)


for _builtin in (ZeroConMethod, ZeroConPlusPlusMethod, Pix2PixZeroMethod, DDIMMethod, SDEditMethod):
    register_method(_builtin)
