"""The nested groups of [`EditSettings`][zerocon.editing.EditSettings]: one small frozen dataclass per concern.

Each group checks its own values when made, names the flat keyword each field answers to
(``FLAT_NAMES``: ``blend_threshold`` is ``blend.threshold``), and is what a feature of the
engine reads: the local blend reads ``blend``, scene handling ``scene``, the reference pass and
self-attention injection ``reference``, the guidance terms ``guidance``, the start of an
inverting edit ``inversion``, the edit's conditioning ``direction``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from zerocon.editing import settings_checks as check
from zerocon.editing.edit_scope import SCENE_WORDS

#: Default layer patterns (regular expressions on diffusers layer names).
DEFAULT_CROSS_ATTENTION_LAYERS = r"attn2$"
DEFAULT_PATCH_NCE_LAYERS = r"^up_blocks\..*attn1$"
DEFAULT_INJECTION_LAYERS = r"^up_blocks\..*attn1$"

#: Allowed values of the settings that choose between named variants (by flat name).
CHOICES: dict[str, tuple[str, ...]] = {
    "edit_condition": ("direction", "prompt-difference", "target"),
    "guidance_schedule": ("constant", "linear"),
    "feature_term": ("patch-nce", "centered-patch-nce", "feature-l2"),
    "blend_scope": ("words", "auto"),
    "release_edited_tokens": ("none", "scene", "all"),
}

#: Upper bounds of settings where larger values make no sense (the sampler or the guidance
#: only blows up past them), by flat name. The command line's flags share them.
UPPER_BOUNDS: dict[str, float] = {
    "num_inference_steps": 1000,  # the training schedule's length
    "guidance_scale": 100.0,
    "guidance_step_size": 1e4,
    "lambda_xa": 1e6,
    "lambda_nce": 1e6,
    "lambda_ac": 1e6,
    "lambda_kl": 1e6,
    "lambda_tone": 1e6,
    "direction_scale": 100.0,
    "scene_step_factor": 100.0,
    "nce_num_patches": 65536,
    "num_reg_iterations": 100,
    "num_reg_rolls": 100,
    "blend_dilation": 64,
    "blend_feather": 16,
    "tone_pool": 63,
}

Group = TypeVar("Group", bound="SettingsGroup")


class SettingsGroup:
    """What every group shares: ``replace``, JSON-ready values and its flat keyword names.

    A sequence field is stored as a tuple, whatever sequence was given.
    """

    #: This group's field name → the flat keyword (v0.1's field name) that sets it.
    flat: ClassVar[dict[str, str]] = {}

    def replace(self: Group, **changes: Any) -> Group:
        """A copy with ``changes`` (field names of this group) applied and checked again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[Group], data: dict[str, Any]) -> Group:
        """Build from [`to_dict`][zerocon.editing.settings_groups.SettingsGroup.to_dict]'s output.

        Raises:
            ValueError: for unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} needs a mapping, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _set(group: Any, name: str, value: Any) -> None:
    object.__setattr__(group, name, value)


@dataclass(frozen=True)
class InversionSettings(SettingsGroup):
    """How an inverting edit starts: the noise regulariser of the DDIM inversion.

    Args:
        lambda_ac: auto-correlation weight (flat: ``lambda_ac``).
        lambda_kl: KL weight (``lambda_kl``).
        num_reg_iterations: regularisation iterations per inversion step (``num_reg_iterations``).
        num_reg_rolls: auto-correlation rolls per iteration (``num_reg_rolls``).

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range.

    Examples:
        >>> InversionSettings(num_reg_iterations=0).lambda_ac
        20.0
    """

    lambda_ac: float = 20.0
    lambda_kl: float = 20.0
    num_reg_iterations: int = 5
    num_reg_rolls: int = 5
    flat: ClassVar[dict[str, str]] = {name: name for name in ("lambda_ac", "lambda_kl", "num_reg_iterations",
                                                               "num_reg_rolls")}

    def __post_init__(self) -> None:
        for name in ("lambda_ac", "lambda_kl"):
            _set(self, name, check.finite(name, getattr(self, name), 0.0, UPPER_BOUNDS[name]))
        _set(self, "num_reg_iterations", check.integer("num_reg_iterations", self.num_reg_iterations, 0,
                                                       UPPER_BOUNDS["num_reg_iterations"]))
        _set(self, "num_reg_rolls", check.integer("num_reg_rolls", self.num_reg_rolls, 1, UPPER_BOUNDS["num_reg_rolls"]))


@dataclass(frozen=True)
class DirectionSettings(SettingsGroup):
    """What the edit pass is conditioned on.

    Args:
        scale: ``c_edit = c + scale · Δc`` (flat: ``direction_scale``).
        condition: when the method inverts: ``"direction"`` (Δc from the word sentences, the
            papers'), ``"prompt-difference"`` (Δc = E(target) − E(caption)) or ``"target"``
            (E(target) itself, as img2img does); a given direction always wins
            (``edit_condition``).

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range or an unknown choice.

    Examples:
        >>> DirectionSettings(scale=0.7).condition
        'direction'
    """

    scale: float = 1.0
    condition: str = "direction"
    flat: ClassVar[dict[str, str]] = {"scale": "direction_scale", "condition": "edit_condition"}

    def __post_init__(self) -> None:
        bound = UPPER_BOUNDS["direction_scale"]
        _set(self, "scale", check.finite("direction_scale", self.scale, -bound, bound))
        check.choice("edit_condition", self.condition, CHOICES["edit_condition"])


@dataclass(frozen=True)
class GuidanceSettings(SettingsGroup):
    """The guidance terms' wiring: which layers they read and how their move is scaled.

    Args:
        cross_attention_layers: regex of the cross-attention layers compared.
        schedule: η over the steps: ``"constant"`` or ``"linear"`` (falling from η at the first
            step to 0 after the last) (flat: ``guidance_schedule``).
        max_grad_norm: clip the latent gradient's norm per image (``None``: off).
        feature_term: the term weighted by ``lambda_nce``: ``"patch-nce"`` (the paper's),
            ``"centered-patch-nce"`` (features minus their mean over locations first) or
            ``"feature-l2"`` (positives only).
        patch_nce_layers: regex of the self-attention layers the feature term compares.
        nce_num_patches: locations sampled per layer and scale.
        nce_temperature: PatchNCE's τ.
        nce_pool_sizes: PatchNCE's scales.
        balance_features: scale the feature term's gradient to ``lambda_nce`` times the norm of
            the other terms' gradient, per image (one more backward pass per step).
        lambda_tone: weight of the tone anchor, which pulls the mean and low-pass of the
            predicted x0 outside the blend region to the source's (needs the local blend).
        tone_pool: the tone anchor's low-pass window, in latent pixels (odd).

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range, an unknown choice or a pattern that does not compile.

    Examples:
        >>> GuidanceSettings(tone_pool=4)
        Traceback (most recent call last):
        ...
        ValueError: tone_pool must be odd, got 4
    """

    cross_attention_layers: str = DEFAULT_CROSS_ATTENTION_LAYERS
    schedule: str = "constant"
    max_grad_norm: float | None = None
    feature_term: str = "patch-nce"
    patch_nce_layers: str = DEFAULT_PATCH_NCE_LAYERS
    nce_num_patches: int = 256
    nce_temperature: float = 0.07
    nce_pool_sizes: Sequence[int] = (1, 2)
    balance_features: bool = False
    lambda_tone: float = 0.0
    tone_pool: int = 3
    flat: ClassVar[dict[str, str]] = {
        "cross_attention_layers": "cross_attention_layers", "schedule": "guidance_schedule",
        "max_grad_norm": "max_grad_norm", "feature_term": "feature_term", "patch_nce_layers": "patch_nce_layers",
        "nce_num_patches": "nce_num_patches", "nce_temperature": "nce_temperature",
        "nce_pool_sizes": "nce_pool_sizes", "balance_features": "balance_features", "lambda_tone": "lambda_tone",
        "tone_pool": "tone_pool",
    }

    def __post_init__(self) -> None:
        for name in ("cross_attention_layers", "patch_nce_layers"):
            check.pattern(name, getattr(self, name))
        check.choice("guidance_schedule", self.schedule, CHOICES["guidance_schedule"])
        check.choice("feature_term", self.feature_term, CHOICES["feature_term"])
        _set(self, "max_grad_norm", check.optional_finite("max_grad_norm", self.max_grad_norm, 0.0, low_open=True))
        _set(self, "nce_num_patches", check.integer("nce_num_patches", self.nce_num_patches, 1,
                                                    UPPER_BOUNDS["nce_num_patches"]))
        _set(self, "nce_temperature", check.finite("nce_temperature", self.nce_temperature, 0.0, low_open=True))
        pools = check.sequence("nce_pool_sizes", self.nce_pool_sizes)
        if not pools:
            raise ValueError("nce_pool_sizes must name at least one scale")
        _set(self, "nce_pool_sizes", tuple(check.integer("nce_pool_sizes", p, 1) for p in pools))
        check.flag("balance_features", self.balance_features)
        _set(self, "lambda_tone", check.finite("lambda_tone", self.lambda_tone, 0.0, UPPER_BOUNDS["lambda_tone"]))
        _set(self, "tone_pool", check.integer("tone_pool", self.tone_pool, 1, UPPER_BOUNDS["tone_pool"]))
        if self.tone_pool % 2 == 0:
            raise ValueError(f"tone_pool must be odd, got {self.tone_pool}")


@dataclass(frozen=True)
class ReferenceSettings(SettingsGroup):
    """The reference (reconstruction) pass and what the edit borrows from it.

    Args:
        cfg: the reference pass uses classifier-free guidance with the negative prompt
            (pix2pix-zero); ``False``: the caption alone, one model row per step, a plain
            reconstruction (flat: ``reference_cfg``).
        from_inversion: take the reference's records and latents from the DDIM inversion
            instead of a separate pass (``reference_from_inversion``).
        inject_self_attention: share of the steps (from the first) during which the edit
            attends with the reference's self-attention queries and keys in
            ``injection_layers`` (Plug-and-Play's map injection); ``0`` is off.
        injection_layers: regex of the self-attention layers injected.

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range or a pattern that does not compile.

    Examples:
        >>> ReferenceSettings(inject_self_attention=0.5).cfg
        True
    """

    cfg: bool = True
    from_inversion: bool = False
    inject_self_attention: float = 0.0
    injection_layers: str = DEFAULT_INJECTION_LAYERS
    flat: ClassVar[dict[str, str]] = {"cfg": "reference_cfg", "from_inversion": "reference_from_inversion",
                                      "inject_self_attention": "inject_self_attention",
                                      "injection_layers": "injection_layers"}

    def __post_init__(self) -> None:
        check.flag("reference_cfg", self.cfg)
        check.flag("reference_from_inversion", self.from_inversion)
        _set(self, "inject_self_attention", check.finite("inject_self_attention", self.inject_self_attention, 0.0, 1.0))
        check.pattern("injection_layers", self.injection_layers)


@dataclass(frozen=True)
class BlendSettings(SettingsGroup):
    """The local blend: outside the edited words' cross-attention the latent follows the reference.

    Args:
        enabled: blend after each edit step (flat: ``local_blend``); methods with a reference
            pass and recorded cross-attention only. Off by default (the papers do not blend).
        threshold: where the edit is kept, as a share of the way from the weakest to the
            strongest attention of the blend words (``blend_threshold``).
        dilation: latent pixels the mask is grown by (``blend_dilation``).
        start: the share of the steps run before the blend begins (``blend_start``).
        pixels: also blend the decoded images (one more VAE decode) (``blend_pixels``).
        words: the words whose attention draws the mask (``()``: the edit's source words)
            (``blend_words``).
        invert: the blend words mark what to keep rather than where to edit (``blend_invert``).
        scope: ``"words"`` (``words``, else the edited words) or ``"auto"`` (read from the
            edit's words: the edited words for an object edit, the subject's words inverted for
            a scene edit) (``blend_scope``).
        feather: the half-width of the mask's soft edge in latent pixels, ``0`` for a hard edge
            (``blend_feather``).

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range or an unknown choice.

    Examples:
        >>> BlendSettings(enabled=True, words=["circle"]).words
        ('circle',)
    """

    enabled: bool = False
    threshold: float = 0.5
    dilation: int = 1
    start: float = 0.0
    pixels: bool = True
    words: Sequence[str] = ()
    invert: bool = False
    scope: str = "words"
    feather: int = 0
    flat: ClassVar[dict[str, str]] = {"enabled": "local_blend", **{
        name: f"blend_{name}" for name in ("threshold", "dilation", "start", "pixels", "words", "invert", "scope",
                                           "feather")}}

    def __post_init__(self) -> None:
        check.flag("local_blend", self.enabled)
        _set(self, "threshold", check.finite("blend_threshold", self.threshold, 0.0, 1.0))
        _set(self, "start", check.finite("blend_start", self.start, 0.0, 1.0))
        _set(self, "dilation", check.integer("blend_dilation", self.dilation, 0, UPPER_BOUNDS["blend_dilation"]))
        check.flag("blend_pixels", self.pixels)
        _set(self, "words", check.words("blend_words", self.words))
        check.flag("blend_invert", self.invert)
        check.choice("blend_scope", self.scope, CHOICES["blend_scope"])
        _set(self, "feather", check.integer("blend_feather", self.feather, 0, UPPER_BOUNDS["blend_feather"]))


@dataclass(frozen=True)
class SceneSettings(SettingsGroup):
    """How scene edits (background, pattern) differ from object edits under ``blend.scope="auto"``.

    Args:
        words: the scene nouns the automatic scope looks for (flat: ``scene_words``).
        negative_prompt: the unconditional prompt of scene edits (``None``: the caption)
            (``scene_negative_prompt``).
        blend_latents: blend latents at each step for scene edits too (else only the decoded
            pixels of the subject are kept) (``scene_blend_latents``).
        step_factor: scene edits move at this multiple of η (``scene_step_factor``).
        blend_dilation: the blend dilation of scene edits (``None``: the blend's)
            (``scene_blend_dilation``).
        direction_scale: the direction scale of scene edits (``None``: the direction's)
            (``scene_direction_scale``).
        release_edited_tokens: leave the edited words' maps out of the cross-attention term:
            ``"none"`` (the paper), ``"scene"`` (scene edits) or ``"all"``.
        renoise: regenerate the scene from fresh noise over the last ``renoise`` share of the
            steps, as SDEdit at that strength does, while the subject follows the edit; ``0`` is
            off (``scene_renoise``). Needs the local blend for the subject's region.

    Shape:
        No tensors.

    Raises:
        ValueError: for a value out of range or an unknown choice.

    Examples:
        >>> SceneSettings(step_factor=0.0).release_edited_tokens
        'none'
    """

    words: Sequence[str] = SCENE_WORDS
    negative_prompt: str | None = None
    blend_latents: bool = False
    step_factor: float = 1.0
    blend_dilation: int | None = None
    direction_scale: float | None = None
    release_edited_tokens: str = "none"
    renoise: float = 0.0
    flat: ClassVar[dict[str, str]] = {"release_edited_tokens": "release_edited_tokens", **{
        name: f"scene_{name}" for name in ("words", "negative_prompt", "blend_latents", "step_factor",
                                           "blend_dilation", "direction_scale", "renoise")}}

    def __post_init__(self) -> None:
        _set(self, "words", check.words("scene_words", self.words))
        check.optional_text("scene_negative_prompt", self.negative_prompt)
        check.flag("scene_blend_latents", self.blend_latents)
        _set(self, "step_factor", check.finite("scene_step_factor", self.step_factor, 0.0,
                                               UPPER_BOUNDS["scene_step_factor"]))
        _set(self, "blend_dilation", check.optional_integer("scene_blend_dilation", self.blend_dilation, 0,
                                                            UPPER_BOUNDS["blend_dilation"]))
        bound = UPPER_BOUNDS["direction_scale"]
        _set(self, "direction_scale", check.optional_finite("scene_direction_scale", self.direction_scale,
                                                            -bound, bound))
        check.choice("release_edited_tokens", self.release_edited_tokens, CHOICES["release_edited_tokens"])
        _set(self, "renoise", check.finite("scene_renoise", self.renoise, 0.0, 1.0))
        if self.renoise == 1.0:
            raise ValueError("scene_renoise must be < 1 (1 would regenerate the scene from pure noise before the first step)")


#: The nested groups of ``EditSettings``, by field name.
GROUPS: dict[str, type[SettingsGroup]] = {
    "inversion": InversionSettings,
    "direction": DirectionSettings,
    "guidance": GuidanceSettings,
    "reference": ReferenceSettings,
    "blend": BlendSettings,
    "scene": SceneSettings,
}

#: Every flat keyword → ``(group, field)``: ``FLAT_NAMES["blend_threshold"] == ("blend", "threshold")``.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    flat: (group, name) for group, cls in GROUPS.items() for name, flat in cls.flat.items()
}
