"""``EditSettings``: every number of an edit, validated once and saved with every result."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from zerocon.editing.edit_scope import SCENE_WORDS

#: Default layer patterns (regular expressions on diffusers layer names).
DEFAULT_CROSS_ATTENTION_LAYERS = r"attn2$"
DEFAULT_PATCH_NCE_LAYERS = r"^up_blocks\..*attn1$"
DEFAULT_INJECTION_LAYERS = r"^up_blocks\..*attn1$"

#: Allowed values of the settings that choose between named variants.
CHOICES: dict[str, tuple[str, ...]] = {
    "edit_condition": ("direction", "prompt-difference", "target"),
    "guidance_schedule": ("constant", "linear"),
    "feature_term": ("patch-nce", "centered-patch-nce", "feature-l2"),
    "blend_scope": ("words", "auto"),
    "release_edited_tokens": ("none", "scene", "all"),
}

#: Above this many steps an edit is long enough to deserve a warning (it still runs).
LONG_RUN_STEPS = 200

#: Upper bounds of settings where larger values make no sense (the sampler or the guidance
#: only blows up past them). The command line's flags share them.
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
    "tone_pool": 63,
}


def _finite(name: str, value: Any, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return number


def _sequence(name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a list or tuple, got {value!r}")
    return tuple(value)


def _integer(name: str, value: Any, low: int, high: float | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class EditSettings:
    """The hyper-parameters of one edit (the role of Lightning's ``hparams``).

    Every field is checked when the object is made: non-finite numbers, values out of range
    (including the upper bounds of ``UPPER_BOUNDS``, past which a value makes no sense),
    unknown choices and fractional step counts raise ``ValueError`` at once, naming the field,
    before any model runs. The object
    round-trips through JSON (``to_json`` / ``from_json``) and is written into every
    result's sidecar, so an edit can be re-run from its record.

    Args:
        method: a registered method name (see [`available_methods`][zerocon.editing.available_methods]).
        num_inference_steps: DDIM steps of inversion and editing.
        guidance_scale: classifier-free guidance scale of the edit and reference passes (≥ 1).
        negative_prompt: the unconditional prompt; ``None`` uses the caption (pix2pix-zero).
        guidance_step_size: η of the latent's gradient step; ``None`` takes the model folder's
            default, else 0.1 (ε-prediction) or 0.01 (v-prediction).
        lambda_xa: weight of the cross-attention L2 term.
        lambda_nce: weight of the PatchNCE term.
        cross_attention_layers: regex of the ``attn2`` layers compared.
        patch_nce_layers: regex of the self-attention layers PatchNCE compares.
        nce_num_patches: locations sampled per layer and scale.
        nce_temperature: PatchNCE's τ.
        nce_pool_sizes: PatchNCE scales.
        max_grad_norm: clip the latent gradient's norm per image (``None``: off).
        direction_scale: ``c_edit = c + direction_scale · Δc``.
        strength: SDEdit's noising strength in ``(0, 1]``.
        lambda_ac: auto-correlation weight of the noise regulariser.
        lambda_kl: KL weight of the noise regulariser.
        num_reg_iterations: regularisation iterations per inversion step.
        num_reg_rolls: auto-correlation rolls per iteration.
        local_blend: after each edit step, put the latent back to the reference latent
            outside the edited words' cross-attention (see
            [`LocalBlend`][zerocon.guidance.LocalBlend]); methods with a reference pass and recorded
            cross-attention only. Off by default (the papers do not blend).
        blend_threshold: where the edit is kept, as a share of the way from the weakest to
            the strongest attention of the blend words (0.5 was chosen on the structure
            benchmark's tuning split, against 0.3).
        blend_dilation: latent pixels the mask is grown by.
        blend_start: the share of the edit's steps to run before the blend begins (the maps are
            averaged from the first step; early maps are diffuse, and blending with them undoes
            edits of large regions).
        blend_pixels: with ``local_blend``, also blend the decoded images (the reference's
            decoded pixels outside the mask; one more VAE decode).
        blend_words: the words whose attention draws the mask (default ``()``: the edit's
            source words).
        blend_invert: the blend words mark what to keep unchanged (e.g. the object's words for
            a background edit) rather than where to edit.
        gradient_checkpointing: recompute the UNet's block activations during the guidance
            backward instead of keeping them (less memory, one more partial forward per step).
            The UNet's weights are frozen during every edit either way.
        fuse_unet_calls: run a step's classifier-free-guidance rows and the next step's
            reference rows in one UNet call (same results up to float rounding). Off by
            default: on the embedded model it saves 4% of a one-image edit's time, but at
            Stable Diffusion scale (512 px, CPU) it cost 5% more time and 0.16 GiB more memory
            (see the performance guide).
        batch_size: at most this many images of one size go through each UNet call together
            (``None``, the default: all images of one size). Each image's result is its
            single-image result up to float rounding; memory grows with the batch.
        edit_condition: what the edit pass is conditioned on when the method inverts:
            ``"direction"`` (``c + Δc`` with Δc from the word sentences, the papers'),
            ``"prompt-difference"`` (Δc = E(target) − E(caption)) or ``"target"`` (E(target)
            itself, as img2img does). A given direction always wins.
        guidance_schedule: η over the steps: ``"constant"`` or ``"linear"`` (falling from η at
            the first step to 0 after the last).
        feature_term: the feature term weighted by ``lambda_nce``: ``"patch-nce"`` (the
            paper's), ``"centered-patch-nce"`` (features minus their mean over locations
            first) or ``"feature-l2"`` (positives only: the distance of each normalised edit
            feature to the reference feature at the same location).
        balance_features: scale the feature term's gradient to ``lambda_nce`` times the norm of
            the other terms' gradient, per image (one more backward pass per step).
        lambda_tone: weight of the tone anchor ([`ToneAnchorGuidance`][zerocon.guidance.ToneAnchorGuidance]),
            which pulls the mean and low-pass of the predicted x0 outside the edit region to
            the source's; needs ``local_blend`` for its region.
        tone_pool: the tone anchor's low-pass window, in latent pixels (odd).
        inject_self_attention: share of the edit's steps (from the first) during which the
            edit pass attends with the reference pass's self-attention queries and keys in
            ``injection_layers`` (Plug-and-Play's map injection); ``0`` is off.
        injection_layers: regex of the self-attention layers injected.
        blend_scope: how the blend region is chosen: ``"words"`` (``blend_words``, else the
            edited words, as given) or ``"auto"`` (from the edit's words: the edited words for
            an object edit; the subject's words, inverted, for a scene edit, see
            ``edit_scope``).
        scene_words: the scene nouns ``blend_scope="auto"`` looks for.
        scene_negative_prompt: with ``blend_scope="auto"``, the unconditional prompt of scene
            edits (``None``: the caption); object edits use ``negative_prompt``.
        scene_blend_latents: with ``blend_scope="auto"``, blend latents at each step for scene
            edits too (else only the decoded pixels of the subject are kept).
        scene_step_factor: with ``blend_scope="auto"``, scene edits move at this multiple of
            η (a scene edit must change a large region that the cross-attention term holds
            in place).
        scene_blend_dilation: with ``blend_scope="auto"``, the blend dilation of scene edits
            (``None``: ``blend_dilation``). Growing the kept subject also keeps a ring of the
            old scene around it.
        scene_direction_scale: with ``blend_scope="auto"``, the ``direction_scale`` of scene
            edits (``None``: ``direction_scale``).
        release_edited_tokens: leave the edited words' cross-attention maps out of the
            cross-attention term: ``"none"`` (the paper: every token is held), ``"scene"``
            (for scene edits under ``blend_scope="auto"``) or ``"all"``.
        reference_from_inversion: take the reference's attention records and latents from
            the DDIM inversion instead of a separate reconstruction pass (saves the reference
            rows of every step; the inversion records the caption's rows at each timestep).
        reference_cfg: the reference pass uses classifier-free guidance with the negative
            prompt (pix2pix-zero). ``False``: it runs on the caption alone, one UNet row per
            step, a plain reconstruction whatever the negative prompt (with the default
            negative prompt, the caption, the two are the same).
        extras: numbers of your own methods (JSON values), carried through the record; the
            built-in methods read none.

    Shape:
        No tensors: plain numbers and strings.

    Raises:
        ValueError: for a non-finite, out-of-range or wrongly typed value.

    Examples:
        >>> settings = EditSettings(num_inference_steps=20, lambda_nce=1.0)
        >>> EditSettings.from_json(settings.to_json()) == settings
        True
        >>> EditSettings(guidance_scale=float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: guidance_scale must be finite, got nan
    """

    method: str = "zerocon"
    num_inference_steps: int = 50
    guidance_scale: float = 5.0
    negative_prompt: str | None = None
    guidance_step_size: float | None = None
    lambda_xa: float = 1.0
    lambda_nce: float = 3.0
    cross_attention_layers: str = DEFAULT_CROSS_ATTENTION_LAYERS
    patch_nce_layers: str = DEFAULT_PATCH_NCE_LAYERS
    nce_num_patches: int = 256
    nce_temperature: float = 0.07
    nce_pool_sizes: tuple[int, ...] = (1, 2)
    max_grad_norm: float | None = None
    direction_scale: float = 1.0
    strength: float = 0.5
    lambda_ac: float = 20.0
    lambda_kl: float = 20.0
    num_reg_iterations: int = 5
    num_reg_rolls: int = 5
    local_blend: bool = False
    blend_threshold: float = 0.5
    blend_dilation: int = 1
    blend_start: float = 0.0
    blend_pixels: bool = True
    blend_words: tuple[str, ...] = ()
    blend_invert: bool = False
    gradient_checkpointing: bool = False
    fuse_unet_calls: bool = False
    batch_size: int | None = None
    edit_condition: str = "direction"
    guidance_schedule: str = "constant"
    feature_term: str = "patch-nce"
    balance_features: bool = False
    lambda_tone: float = 0.0
    tone_pool: int = 3
    inject_self_attention: float = 0.0
    injection_layers: str = DEFAULT_INJECTION_LAYERS
    blend_scope: str = "words"
    scene_words: tuple[str, ...] = SCENE_WORDS
    scene_negative_prompt: str | None = None
    scene_blend_latents: bool = False
    scene_step_factor: float = 1.0
    scene_blend_dilation: int | None = None
    scene_direction_scale: float | None = None
    release_edited_tokens: str = "none"
    reference_from_inversion: bool = False
    reference_cfg: bool = True
    extras: dict[str, Any] = field(default_factory=dict, compare=True)

    def __post_init__(self) -> None:
        fix = object.__setattr__
        if not isinstance(self.method, str) or not self.method.strip():
            raise ValueError(f"method must be a non-empty name, got {self.method!r}")
        from zerocon.editing.methods import available_methods, is_registered

        if not is_registered(self.method):
            raise ValueError(
                f"unknown method {self.method!r}; choose one of {available_methods()} "
                "(or register your own with register_method)"
            )
        fix(self, "num_inference_steps", _integer("num_inference_steps", self.num_inference_steps, 1, UPPER_BOUNDS["num_inference_steps"]))
        fix(self, "guidance_scale", _finite("guidance_scale", self.guidance_scale, 1.0, UPPER_BOUNDS["guidance_scale"]))
        if self.guidance_step_size is not None:
            fix(self, "guidance_step_size", _finite("guidance_step_size", self.guidance_step_size, 0.0, UPPER_BOUNDS["guidance_step_size"]))
        for name in ("lambda_xa", "lambda_nce", "lambda_ac", "lambda_kl"):
            fix(self, name, _finite(name, getattr(self, name), 0.0, UPPER_BOUNDS[name]))
        fix(self, "nce_num_patches", _integer("nce_num_patches", self.nce_num_patches, 1, UPPER_BOUNDS["nce_num_patches"]))
        fix(self, "nce_temperature", _finite("nce_temperature", self.nce_temperature, 0.0, low_open=True))
        pools = _sequence("nce_pool_sizes", self.nce_pool_sizes)
        if not pools:
            raise ValueError("nce_pool_sizes must name at least one scale")
        fix(self, "nce_pool_sizes", tuple(_integer("nce_pool_sizes", p, 1) for p in pools))
        if self.max_grad_norm is not None:
            fix(self, "max_grad_norm", _finite("max_grad_norm", self.max_grad_norm, 0.0, low_open=True))
        fix(self, "direction_scale", _finite("direction_scale", self.direction_scale, -UPPER_BOUNDS["direction_scale"], UPPER_BOUNDS["direction_scale"]))
        fix(self, "strength", _finite("strength", self.strength, 0.0, 1.0, low_open=True))
        fix(self, "num_reg_iterations", _integer("num_reg_iterations", self.num_reg_iterations, 0, UPPER_BOUNDS["num_reg_iterations"]))
        fix(self, "num_reg_rolls", _integer("num_reg_rolls", self.num_reg_rolls, 1, UPPER_BOUNDS["num_reg_rolls"]))
        if not isinstance(self.local_blend, bool):
            raise ValueError(f"local_blend must be True or False, got {self.local_blend!r}")
        fix(self, "blend_threshold", _finite("blend_threshold", self.blend_threshold, 0.0, 1.0))
        fix(self, "blend_start", _finite("blend_start", self.blend_start, 0.0, 1.0))
        fix(self, "blend_dilation", _integer("blend_dilation", self.blend_dilation, 0, UPPER_BOUNDS["blend_dilation"]))
        if not all(isinstance(w, str) and w.strip() for w in _sequence("blend_words", self.blend_words)):
            raise ValueError(f"blend_words must be a sequence of non-empty words, got {self.blend_words!r}")
        fix(self, "blend_words", tuple(self.blend_words))
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        fix(self, "lambda_tone", _finite("lambda_tone", self.lambda_tone, 0.0, UPPER_BOUNDS["lambda_tone"]))
        fix(self, "tone_pool", _integer("tone_pool", self.tone_pool, 1, UPPER_BOUNDS["tone_pool"]))
        if self.tone_pool % 2 == 0:
            raise ValueError(f"tone_pool must be odd, got {self.tone_pool}")
        if self.scene_blend_dilation is not None:
            fix(self, "scene_blend_dilation", _integer("scene_blend_dilation", self.scene_blend_dilation, 0,
                                                       UPPER_BOUNDS["blend_dilation"]))
        if self.scene_direction_scale is not None:
            bound = UPPER_BOUNDS["direction_scale"]
            fix(self, "scene_direction_scale", _finite("scene_direction_scale", self.scene_direction_scale, -bound, bound))
        fix(self, "scene_step_factor", _finite("scene_step_factor", self.scene_step_factor, 0.0, UPPER_BOUNDS["scene_step_factor"]))
        fix(self, "inject_self_attention", _finite("inject_self_attention", self.inject_self_attention, 0.0, 1.0))
        if not all(isinstance(w, str) and w.strip() for w in _sequence("scene_words", self.scene_words)):
            raise ValueError(f"scene_words must be a sequence of non-empty words, got {self.scene_words!r}")
        fix(self, "scene_words", tuple(self.scene_words))
        if self.scene_negative_prompt is not None and not isinstance(self.scene_negative_prompt, str):
            raise ValueError(f"scene_negative_prompt must be a string or None, got {self.scene_negative_prompt!r}")
        for name in ("blend_invert", "blend_pixels", "gradient_checkpointing", "fuse_unet_calls",
                     "balance_features", "scene_blend_latents", "reference_from_inversion", "reference_cfg"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.batch_size is not None:
            fix(self, "batch_size", _integer("batch_size", self.batch_size, 1))
        for name in ("cross_attention_layers", "patch_nce_layers", "injection_layers"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a regular expression string")
            try:
                re.compile(getattr(self, name))
            except re.error as error:
                raise ValueError(f"{name}={getattr(self, name)!r} is not a regular expression: {error}") from error
        try:
            if not isinstance(self.extras, dict):
                raise TypeError(f"a dict is needed, got {type(self.extras).__name__}")
            json.dumps(self.extras, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"extras must hold finite JSON values: {error}") from error
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise ValueError(f"negative_prompt must be a string or None, got {self.negative_prompt!r}")

    @classmethod
    def for_method(cls, method: Any, /, **changes: Any) -> EditSettings:
        """The settings of a method: its preset (``EditMethod.defaults``) plus ``changes``.

        Args:
            method: a registered method name, or an [`EditMethod`][zerocon.editing.EditMethod]
                object (settings name registered methods only: for an unregistered object,
                ``method`` stays ``"zerocon"`` and the object is passed to the editor beside
                the settings, as the pipeline does).
            **changes: fields to set on top of the preset.

        Raises:
            ValueError: for an unknown method or invalid values.

        Examples:
            >>> EditSettings.for_method("zerocon") == EditSettings()
            True
            >>> EditSettings.for_method("zerocon++", num_inference_steps=10).negative_prompt
            ''
        """
        from zerocon.editing.methods import get_method, is_registered

        strategy = get_method(method)
        name = strategy.name if is_registered(strategy.name) else "zerocon"
        return cls(**{**strategy.defaults, "method": name, **changes})

    def replace(self, **changes: Any) -> EditSettings:
        """A copy with ``changes`` applied (validated again).

        Examples:
            >>> EditSettings().replace(method="ddim").method
            'ddim'
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["nce_pool_sizes"] = list(self.nce_pool_sizes)
        data["blend_words"] = list(self.blend_words)
        data["scene_words"] = list(self.scene_words)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditSettings:
        """Build from [`to_dict`][zerocon.editing.EditSettings.to_dict]'s output.

        Raises:
            ValueError: for unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown edit settings: {unknown}")
        values = dict(data)
        for name in ("nce_pool_sizes", "blend_words", "scene_words"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EditSettings:
        return cls.from_dict(json.loads(text))
