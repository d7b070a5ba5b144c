"""``EditSettings``: every number of an edit, validated once and saved with every result."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from zerocon.editing import settings_checks as check
from zerocon.editing.method_registry import DEFAULT_METHOD, available_methods, is_registered, lookup
from zerocon.editing.runtime_options import RuntimeOptions
from zerocon.editing.settings_groups import (
    CHOICES,
    DEFAULT_CROSS_ATTENTION_LAYERS,
    DEFAULT_INJECTION_LAYERS,
    DEFAULT_PATCH_NCE_LAYERS,
    FLAT_NAMES,
    GROUPS,
    UPPER_BOUNDS,
    BlendSettings,
    DirectionSettings,
    GuidanceSettings,
    InversionSettings,
    ReferenceSettings,
    SceneSettings,
)

__all__ = [
    "CHOICES",
    "DEFAULT_CROSS_ATTENTION_LAYERS",
    "DEFAULT_INJECTION_LAYERS",
    "DEFAULT_PATCH_NCE_LAYERS",
    "FLAT_NAMES",
    "LONG_RUN_STEPS",
    "UPPER_BOUNDS",
    "EditSettings",
]

#: Above this many steps an edit is long enough to deserve a warning (it still runs).
LONG_RUN_STEPS = 200

#: Marks a core value the caller did not give (``None`` is a value of some fields).
_UNSET: Any = object()

#: The core fields and their defaults (the paper's values; a method's preset changes some).
CORE_DEFAULTS: dict[str, Any] = {
    "num_inference_steps": 50,
    "guidance_scale": 5.0,
    "negative_prompt": None,
    "guidance_step_size": None,
    "lambda_xa": 1.0,
    "lambda_nce": 3.0,
    "strength": 0.5,
}


@dataclass(frozen=True, init=False)
class EditSettings:
    """The hyper-parameters of one edit (the role of Lightning's ``hparams``).

    The core numbers sit at the top level; each feature's numbers sit in its own group
    (see ``zerocon.editing.settings_groups``). Every value can also be given by its flat
    keyword, the name it had in v0.1: ``EditSettings(blend_threshold=0.3)`` sets
    ``settings.blend.threshold``, and so do ``settings.replace(blend_threshold=0.3)``, the
    pipeline's ``pipe(..., blend_threshold=0.3)`` and the command line's flags.

    ``EditSettings(method=name, ...)`` starts from that method's preset (its
    ``EditMethod.defaults``) and applies the given values on top; ``EditSettings()`` is the
    default method's (``zerocon++``) preset. A whole group given as an object replaces the
    preset's group; flat keywords are applied last.

    Every value is checked when the object is made: non-finite numbers, values out of range
    (``UPPER_BOUNDS``), unknown choices and fractional step counts raise ``ValueError`` at once,
    naming the flat keyword, before any model runs. The object round-trips through JSON
    (``to_json`` / ``from_json``; ``from_dict`` also reads v0.1's flat records) and is written
    once into every result's record. How an edit is run (batching, fused calls, gradient
    checkpointing) is not a setting: see [`RuntimeOptions`][zerocon.editing.RuntimeOptions].

    Args:
        method: a registered method name (see [`available_methods`][zerocon.editing.available_methods]);
            default ``"zerocon++"``.
        num_inference_steps: steps of inversion and editing.
        guidance_scale: classifier-free guidance scale of the edit and reference passes (≥ 1).
        negative_prompt: the unconditional prompt; ``None`` uses the caption (pix2pix-zero).
        guidance_step_size: η of the latent's gradient step; ``None`` takes the model folder's
            default, else 0.1 (ε-prediction) or 0.01 (v-prediction).
        lambda_xa: weight of the cross-attention L2 term.
        lambda_nce: weight of the feature (PatchNCE) term.
        strength: SDEdit's noising strength in ``(0, 1]``.
        inversion: the noise regulariser of the DDIM inversion ([`InversionSettings`][zerocon.editing.InversionSettings]).
        direction: the edit's conditioning ([`DirectionSettings`][zerocon.editing.DirectionSettings]).
        guidance: the terms' layers and parameters ([`GuidanceSettings`][zerocon.editing.GuidanceSettings]).
        reference: the reference pass and self-attention injection ([`ReferenceSettings`][zerocon.editing.ReferenceSettings]).
        blend: the local blend ([`BlendSettings`][zerocon.editing.BlendSettings]).
        scene: scene edits under the automatic blend scope ([`SceneSettings`][zerocon.editing.SceneSettings]).
        extras: numbers of your own methods and features (JSON values), carried through the
            record; the built-in methods read none.
        **flat: any group field by its flat keyword (``FLAT_NAMES``).

    Shape:
        No tensors: plain numbers and strings.

    Raises:
        ValueError: for a non-finite, out-of-range or wrongly typed value, or an unknown method.
        TypeError: for an unknown keyword (a runtime option is named as such).

    Examples:
        >>> settings = EditSettings(method="zerocon", num_inference_steps=20, blend_threshold=0.3)
        >>> settings.blend.threshold, settings.get("blend_threshold")
        (0.3, 0.3)
        >>> EditSettings.from_json(settings.to_json()) == settings
        True
        >>> EditSettings().method, EditSettings().blend.enabled
        ('zerocon++', True)
        >>> EditSettings(guidance_scale=float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: guidance_scale must be finite, got nan
    """

    method: str
    num_inference_steps: int
    guidance_scale: float
    negative_prompt: str | None
    guidance_step_size: float | None
    lambda_xa: float
    lambda_nce: float
    strength: float
    inversion: InversionSettings
    direction: DirectionSettings
    guidance: GuidanceSettings
    reference: ReferenceSettings
    blend: BlendSettings
    scene: SceneSettings
    extras: dict[str, Any]

    def __init__(
        self,
        method: str | None = None,
        *,
        num_inference_steps: int = _UNSET,
        guidance_scale: float = _UNSET,
        negative_prompt: str | None = _UNSET,
        guidance_step_size: float | None = _UNSET,
        lambda_xa: float = _UNSET,
        lambda_nce: float = _UNSET,
        strength: float = _UNSET,
        inversion: InversionSettings | dict[str, Any] | None = None,
        direction: DirectionSettings | dict[str, Any] | None = None,
        guidance: GuidanceSettings | dict[str, Any] | None = None,
        reference: ReferenceSettings | dict[str, Any] | None = None,
        blend: BlendSettings | dict[str, Any] | None = None,
        scene: SceneSettings | dict[str, Any] | None = None,
        extras: dict[str, Any] | None = None,
        **flat: Any,
    ) -> None:
        given = {
            "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
            "negative_prompt": negative_prompt, "guidance_step_size": guidance_step_size, "lambda_xa": lambda_xa,
            "lambda_nce": lambda_nce, "strength": strength, "inversion": inversion, "direction": direction,
            "guidance": guidance, "reference": reference, "blend": blend, "scene": scene,
        }
        values: dict[str, Any] = {key: value for key, value in given.items()
                                  if value is not _UNSET and not (key in GROUPS and value is None)}
        values.update(flat)
        values["extras"] = extras
        name = DEFAULT_METHOD if method is None else method
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"method must be a non-empty name, got {name!r}")
        if not is_registered(name):
            raise ValueError(
                f"unknown method {name!r}; choose one of {available_methods()} "
                "(or register your own with register_method)"
            )
        _check_keywords(values)
        core = dict(CORE_DEFAULTS)
        groups: dict[str, Any] = {group: cls() for group, cls in GROUPS.items()}
        changed: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
        preset = lookup(name).defaults
        for key, value in preset.items():  # the preset first
            if key != "extras":
                _sort(key, value, core, changed)
        for group in GROUPS:
            if group in values:
                value = values[group]
                groups[group] = value if isinstance(value, GROUPS[group]) else GROUPS[group].from_dict(value)
                changed[group] = {}  # a whole group given replaces the preset's values in it
        for key, value in values.items():
            if key not in GROUPS and key != "extras":
                _sort(key, value, core, changed)
        fix = object.__setattr__
        fix(self, "method", name)
        for key, value in _checked_core(core).items():
            fix(self, key, value)
        for group, changes in changed.items():
            fix(self, group, groups[group].replace(**changes) if changes else groups[group])
        given_extras = values["extras"]
        fix(self, "extras", check.json_values("extras", dict(preset.get("extras", {})) if given_extras is None
                                              else given_extras))

    @classmethod
    def for_method(cls, method: Any, /, **changes: Any) -> EditSettings:
        """The settings of a method: its preset (``EditMethod.defaults``) plus ``changes``.

        Args:
            method: a registered method name, or an [`EditMethod`][zerocon.editing.EditMethod]
                object (settings name registered methods only: for an unregistered object,
                ``method`` stays ``"zerocon"`` and the object is passed to the editor beside
                the settings, as the pipeline does).
            **changes: values to set on top of the preset (flat keywords or groups).

        Raises:
            ValueError: for an unknown method or invalid values.

        Examples:
            >>> EditSettings.for_method("zerocon") == EditSettings("zerocon")
            True
            >>> EditSettings.for_method("zerocon++", num_inference_steps=10).negative_prompt
            ''
        """
        strategy = lookup(method) if isinstance(method, str) else method.validate()
        name = strategy.name if is_registered(strategy.name) else "zerocon"
        name = changes.pop("method", name)  # a method named among the changes wins, on this preset
        return cls(name, **{**strategy.defaults, **changes})

    def replace(self, **changes: Any) -> EditSettings:
        """A copy with ``changes`` applied (flat keywords or groups; validated again).

        Examples:
            >>> EditSettings().replace(method="ddim").method
            'ddim'
            >>> EditSettings().replace(blend_threshold=0.2).blend.threshold
            0.2
        """
        return dataclasses.replace(self, **changes)

    def get(self, name: str) -> Any:
        """A value by its core or flat name (``"blend_threshold"`` reads ``blend.threshold``).

        Raises:
            KeyError: for a name that is neither.

        Examples:
            >>> EditSettings("zerocon").get("direction_scale")
            1.0
        """
        if name in FLAT_NAMES:
            group, field = FLAT_NAMES[name]
            return getattr(getattr(self, group), field)
        if name == "method" or name in CORE_DEFAULTS:
            return getattr(self, name)
        raise KeyError(f"no setting named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, each group nested (tuples become lists)."""
        data: dict[str, Any] = {"method": self.method, **{key: getattr(self, key) for key in CORE_DEFAULTS}}
        for group in GROUPS:
            data[group] = getattr(self, group).to_dict()
        data["extras"] = dict(self.extras)
        return data

    def to_flat_dict(self) -> dict[str, Any]:
        """Every value under its flat name (v0.1's record layout, without the runtime options)."""
        data: dict[str, Any] = {"method": self.method, **{key: getattr(self, key) for key in CORE_DEFAULTS}}
        for flat, (group, field) in FLAT_NAMES.items():
            value = getattr(getattr(self, group), field)
            data[flat] = list(value) if isinstance(value, tuple) else value
        data["extras"] = dict(self.extras)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditSettings:
        """Build from [`to_dict`][zerocon.editing.EditSettings.to_dict]'s output, or from a v0.1 record's flat settings.

        A v0.1 record's runtime options (``batch_size``, ``fuse_unet_calls``,
        ``gradient_checkpointing``) are left out (read them with ``RuntimeOptions.from_values``).

        Raises:
            ValueError: for unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"settings must be a mapping, got {type(data).__name__}")
        values = {key: value for key, value in data.items() if key not in RuntimeOptions.names()}
        known = {"method", "extras", *CORE_DEFAULTS, *GROUPS, *FLAT_NAMES}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown edit settings: {unknown}")
        values = {key: tuple(value) if key in FLAT_NAMES and isinstance(value, list) else value
                  for key, value in values.items()}
        return cls(values.pop("method", None), **values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EditSettings:
        return cls.from_dict(json.loads(text))


def _check_keywords(values: dict[str, Any]) -> None:
    for key in values:
        if key in RuntimeOptions.names():
            raise TypeError(
                f"{key} is a runtime option, not an edit setting: pass it to the pipeline call or to "
                "RuntimeOptions (it changes speed and memory, not the result)"
            )
        if key not in CORE_DEFAULTS and key not in GROUPS and key not in FLAT_NAMES and key != "extras":
            raise TypeError(f"unknown edit setting {key!r}")


def _sort(key: str, value: Any, core: dict[str, Any], flat: dict[str, dict[str, Any]]) -> None:
    """Put a core value or a flat keyword's value where it belongs."""
    if key in FLAT_NAMES:
        group, field = FLAT_NAMES[key]
        flat[group][field] = value
    elif key in CORE_DEFAULTS:
        core[key] = value
    elif key != "method":
        raise TypeError(f"unknown edit setting {key!r}")


def _checked_core(core: dict[str, Any]) -> dict[str, Any]:
    bounds = UPPER_BOUNDS
    checked = {
        "num_inference_steps": check.integer("num_inference_steps", core["num_inference_steps"], 1,
                                             bounds["num_inference_steps"]),
        "guidance_scale": check.finite("guidance_scale", core["guidance_scale"], 1.0, bounds["guidance_scale"]),
        "negative_prompt": check.optional_text("negative_prompt", core["negative_prompt"]),
        "guidance_step_size": check.optional_finite("guidance_step_size", core["guidance_step_size"], 0.0,
                                                    bounds["guidance_step_size"]),
        "strength": check.finite("strength", core["strength"], 0.0, 1.0, low_open=True),
    }
    for name in ("lambda_xa", "lambda_nce"):
        checked[name] = check.finite(name, core[name], 0.0, bounds[name])
    return checked
