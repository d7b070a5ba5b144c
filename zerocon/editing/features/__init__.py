"""The engine's optional parts, one file each, composed by a method (see [`EditFeature`][zerocon.editing.EditFeature]).

[`settings_features`][zerocon.editing.settings_features] is the list the built-in
methods compose from an [`EditSettings`][zerocon.editing.EditSettings]'s groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zerocon.editing.feature import EditFeature
from zerocon.editing.features.local_blend import LocalBlendFeature
from zerocon.editing.features.reference_from_inversion import ReferenceFromInversion
from zerocon.editing.features.scene_handling import SceneHandling
from zerocon.editing.features.scene_renoise import SceneRenoise
from zerocon.editing.features.self_attention_injection import SelfAttentionInjectionFeature
from zerocon.editing.features.tone_anchor import ToneAnchor

if TYPE_CHECKING:
    from zerocon.editing.settings import EditSettings

__all__ = [
    "LocalBlendFeature",
    "ReferenceFromInversion",
    "SceneHandling",
    "SceneRenoise",
    "SelfAttentionInjectionFeature",
    "ToneAnchor",
    "settings_features",
]


def settings_features(settings: EditSettings) -> list[EditFeature]:
    """The features an edit's settings switch on, in the order the loop calls them.

    Injection, the reference from the inversion, the local blend (before the tone anchor and
    the scene re-noising, which read its mask), scene handling, scene re-noising, the tone
    anchor.

    Examples:
        >>> from zerocon.editing import EditSettings
        >>> [f.name for f in settings_features(EditSettings("zerocon++"))]
        ['LocalBlendFeature', 'SceneHandling']
        >>> settings_features(EditSettings("zerocon"))
        []
    """
    features: list[EditFeature] = []
    if settings.reference.inject_self_attention > 0:
        features.append(SelfAttentionInjectionFeature(settings.reference))
    if settings.reference.from_inversion:
        features.append(ReferenceFromInversion())
    if settings.blend.enabled:
        features.append(LocalBlendFeature(settings.blend, settings.scene))
    if settings.blend.scope == "auto" or settings.scene.release_edited_tokens != "none":
        features.append(SceneHandling(settings.scene))
    if settings.scene.renoise > 0:
        features.append(SceneRenoise(settings.scene))
    if settings.guidance.lambda_tone > 0:
        features.append(ToneAnchor())
    return features
