"""Scene re-noising as an edit feature: the scene of a scene edit regenerated from fresh noise, SDEdit-style."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from diffusers.utils.torch_utils import randn_tensor
from jaxtyping import Float
from torch import Tensor

from zerocon.editing.feature import EditFeature
from zerocon.editing.features.local_blend import LocalBlendFeature, is_scene
from zerocon.editing.settings_groups import SceneSettings

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop, EditPlan
    from zerocon.editing.step_context import StepContext


class SceneRenoise(EditFeature):
    """A masked SDEdit inside the edit, for scene edits (background, pattern).

    An inverted latent carries the old scene in its noise: the deterministic DDIM inversion
    encodes the old background, and a guided edit that starts from it keeps a trace of it (the
    ring of old background around the object). SDEdit starts from *fresh* noise instead. This
    feature does that for the scene alone: after the step that ends where the last
    ``scene.renoise`` share of the schedule begins, each scene edit's latent, inside its blend
    mask (the scene; the subject's region is kept), is replaced by the source latent noised to
    that step's level with fresh noise from the image's generator; the remaining steps denoise
    it towards the edit's conditioning. Object edits are left alone.

    Args:
        scene: the scene settings (``renoise``: the share of the steps regenerated).

    Shape:
        Latents ``(B, C, h, w)`` with one row per image; the mask ``(B, 1, h, w)``.

    Examples:
        >>> SceneRenoise(SceneSettings(renoise=0.5)).needs_reference
        True
    """

    needs_reference = True
    supports_flow_matching = False
    needs_cross_attention = True
    setting = "scene_renoise"

    def __init__(self, scene: SceneSettings) -> None:
        self.settings = scene
        self.blend: LocalBlendFeature | None = None
        self.at = -1

    def check(self, plan: EditPlan) -> None:
        super().check(plan)
        if not plan.settings.blend.enabled or plan.settings.blend.scope != "auto":
            raise ValueError("scene_renoise needs local_blend=True with blend_scope='auto' (the subject's region "
                             "is kept by the blend, and scene edits are told apart by the automatic scope)")

    def setup(self, loop: EditLoop) -> None:
        self.blend = next((f for f in loop.features if isinstance(f, LocalBlendFeature)), None)
        steps = len(loop.timesteps)
        kept = min(steps - 1, max(1, round(steps * self.settings.renoise)))
        self.at = steps - kept - 1  # re-noise after this step: the last `kept` steps regenerate the scene

    def after_scheduler_step(self, loop: EditLoop, step: StepContext,
                             latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        if step.index != self.at or step.t_next is None or self.blend is None:
            return latents
        rows = []
        for row, state in enumerate(loop.states):
            blend = self.blend.blends[row]
            x = latents[row : row + 1]
            if is_scene(state) and blend is not None:
                source = loop.source_x0[row : row + 1]
                noise = randn_tensor(source.shape, generator=loop.generators[row], device=source.device,
                                     dtype=source.dtype)
                fresh = loop.scheduler.add_noise(source, noise, step.t_next.reshape(1))
                scene = blend.mask(loop.latent_size).to(x.dtype)
                x = scene * fresh + (1 - scene) * x
            rows.append(x)
        return torch.cat(rows)
