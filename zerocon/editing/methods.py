"""Editing methods as strategy objects, registered by name.

A method owns its loop the way a ``LightningModule`` owns ``training_step``: it says how the
edit starts ([`start`][zerocon.editing.EditMethod.start]: inversion or noising), what each step
does ([`step`][zerocon.editing.EditMethod.step]), what happens at the end
([`end`][zerocon.editing.EditMethod.end]), which features it composes
([`features`][zerocon.editing.EditMethod.features]) and which guidance terms move the latent.
Its flags say whether a reference (reconstruction) pass runs beside the edit and which
attention is recorded. The engine ([`Editor`][zerocon.editing.Editor], one
[`EditLoop`][zerocon.editing.EditLoop] per batch) runs any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from zerocon.editing.feature import EditFeature
from zerocon.editing.features import settings_features
from zerocon.editing.method_registry import (
    DEFAULT_METHOD,
    REGISTRY,
    available_methods,
    is_registered,
    lookup,
    registry_key,
)
from zerocon.editing.phases.start import invert_start, noise_start
from zerocon.editing.settings import EditSettings
from zerocon.guidance import (
    CrossAttentionGuidance,
    FeatureL2Guidance,
    GuidanceTerm,
    PatchNCEGuidance,
    ToneAnchorGuidance,
)
from zerocon.losses import FeatureL2Loss, PatchNCELoss

__all__ = [
    "DEFAULT_METHOD",
    "DDIMMethod",
    "EditMethod",
    "Pix2PixZeroMethod",
    "RecordedLayers",
    "SDEditMethod",
    "ZeroConMethod",
    "ZeroConPlusPlusMethod",
    "available_methods",
    "feature_term",
    "get_method",
    "is_registered",
    "register_method",
    "tone_terms",
    "unregister_method",
]

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop
    from zerocon.editing.edit_plan import EditPlan
    from zerocon.editing.step_context import StepContext


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
    """A method: its hooks, its flags, its features and its guidance terms.

    Subclass it, set the class attributes and override what differs: the hooks
    [`start`][zerocon.editing.EditMethod.start], [`step`][zerocon.editing.EditMethod.step] and
    [`end`][zerocon.editing.EditMethod.end], the [`features`][zerocon.editing.EditMethod.features]
    it composes, the [`guidance_terms`][zerocon.editing.EditMethod.guidance_terms]. Every hook
    has a default, so a method overrides one and inherits the rest.

    Class attributes:
        name: the registry key (the ``method=`` argument).
        invert: the default start is the DDIM inversion ``x_T`` of the source (else SDEdit's
            noising); an inverting method needs a DDIM scheduler.
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

    def start(self, loop: EditLoop) -> None:
        """How the edit starts: set ``loop.scheduler``, each ``state.timesteps`` and ``state.x_start``.

        Default: the DDIM inversion when ``invert``, else SDEdit's noising (``strength``).
        """
        if self.invert:
            invert_start(loop)
        else:
            noise_start(loop)

    def step(self, loop: EditLoop, step: StepContext) -> None:
        """One step of the edit: move ``loop.x_edit`` (and each ``state.latents``) to the next timestep.

        Default: [`EditLoop.guided_step`][zerocon.editing.EditLoop.guided_step] (the reference
        step, the guided move, the classifier-free-guided scheduler step, the features'
        changes, the callbacks).
        """
        loop.guided_step(step)

    def end(self, loop: EditLoop) -> None:
        """After the last step, before decoding. Default: [`EditLoop.finish`][zerocon.editing.EditLoop.finish]."""
        loop.finish()

    def check(self, plan: EditPlan) -> None:
        """Refuse a plan this method cannot run (``ValueError``), before any model runs (default: accept)."""

    def features(self, settings: EditSettings) -> list[EditFeature]:
        """The features this method composes, made fresh for each batch, in the order they run.

        Default: those the settings' groups switch on
        ([`settings_features`][zerocon.editing.settings_features]); a method adds its
        own by extending the list.
        """
        return settings_features(settings)

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
        >>> term = feature_term(EditSettings("zerocon", feature_term="feature-l2"), RecordedLayers(self_attention=["l"]))
        >>> type(term).__name__, term.layers
        ('FeatureL2Guidance', ['l'])
    """
    guidance = settings.guidance
    if guidance.feature_term == "feature-l2":
        loss = FeatureL2Loss(num_patches=guidance.nce_num_patches, pool_sizes=guidance.nce_pool_sizes)
        return FeatureL2Guidance(
            settings.lambda_nce, loss, layers=layers.self_attention, balanced=guidance.balance_features
        )
    patch_nce = PatchNCELoss(
        num_patches=guidance.nce_num_patches,
        temperature=guidance.nce_temperature,
        pool_sizes=guidance.nce_pool_sizes,
        center=guidance.feature_term == "centered-patch-nce",
    )
    return PatchNCEGuidance(settings.lambda_nce, patch_nce, layers=layers.self_attention, balanced=guidance.balance_features)


def tone_terms(settings: EditSettings) -> list[GuidanceTerm]:
    """The tone anchor when ``lambda_tone > 0`` (else nothing).

    Examples:
        >>> tone_terms(EditSettings()), len(tone_terms(EditSettings(lambda_tone=1.0, local_blend=True)))
        ([], 1)
    """
    guidance = settings.guidance
    return [ToneAnchorGuidance(guidance.lambda_tone, guidance.tone_pool)] if guidance.lambda_tone > 0 else []


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
        >>> EditSettings.for_method("zerocon++").blend.enabled
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

    def start(self, loop: EditLoop) -> None:
        """The DDIM inversion."""
        invert_start(loop)


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

    def start(self, loop: EditLoop) -> None:
        """Noise the source to the ``strength`` share of the schedule."""
        noise_start(loop)


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
    key = registry_key(instance.name)
    if key in REGISTRY and not replace:
        raise ValueError(f"a method named {instance.name!r} is already registered")
    previous = REGISTRY.get(key)
    REGISTRY[key] = instance
    try:
        EditSettings.for_method(instance.name)  # a preset must be valid settings
    except ValueError:
        if previous is None:
            del REGISTRY[key]
        else:
            REGISTRY[key] = previous
        raise
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (a no-op for unknown names).

    Examples:
        >>> unregister_method("no-such-method")
    """
    REGISTRY.pop(registry_key(name), None)


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
    return lookup(method)


for _builtin in (ZeroConMethod, ZeroConPlusPlusMethod, Pix2PixZeroMethod, DDIMMethod, SDEditMethod):
    register_method(_builtin)
