"""The local blend as an edit feature: outside the edited words' attention the latent follows the reference."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from zerocon.editing.feature import EditFeature
from zerocon.editing.settings_groups import BlendSettings, SceneSettings
from zerocon.editing.state import PixelBlend
from zerocon.editing.token_positions import word_token_positions
from zerocon.guidance import LocalBlend

if TYPE_CHECKING:
    from zerocon.attention import AttentionRecords
    from zerocon.editing.edit_loop import EditLoop
    from zerocon.editing.state import ImageState
    from zerocon.editing.step_context import StepContext


def is_scene(state: ImageState) -> bool:
    """Whether the image's edit was read as a scene edit (automatic scope only)."""
    return state.scope is not None and state.scope.kind == "scene"


class LocalBlendFeature(EditFeature):
    """One [`LocalBlend`][zerocon.guidance.LocalBlend] per image, fed the reference's and the edit's maps.

    After each scheduler step from ``blend.start`` on, each image's latent is put back to its
    stepped reference latent outside its mask (scene edits of the automatic scope: only with
    ``scene.blend_latents``); with ``blend.pixels`` the final mask and reference latent go to
    the decode phase (``state.pixel_blend``). The words come from the edit scope when
    ``blend.scope="auto"``, else ``blend.words``, else the edit's source words; an image whose
    words are not in its caption is left unblended, with a notice.

    Args:
        blend: the blend's settings.
        scene: the scene edits' settings (their dilation and whether their latents are blended).

    Shape:
        Latents and masks hold one row per image of the batch: ``(B, C, h, w)``, ``(B, 1, h, w)``.

    Examples:
        >>> LocalBlendFeature(BlendSettings(enabled=True)).needs_cross_attention
        True
    """

    needs_reference = True
    setting = "local_blend"
    needs_cross_attention = True

    def __init__(self, blend: BlendSettings, scene: SceneSettings | None = None) -> None:
        self.settings, self.scene = blend, scene or SceneSettings()
        self.blends: list[LocalBlend | None] = []
        self.latent_blends: list[LocalBlend | None] = []

    @property
    def blending(self) -> bool:
        """Whether any image of the batch has a blend."""
        return any(blend is not None for blend in self.blends)

    def setup(self, loop: EditLoop) -> None:
        self.blends = [self._blend(loop, state) for state in loop.states]
        self.latent_blends = [blend if blend is not None and (not is_scene(s) or self.scene.blend_latents) else None
                              for s, blend in zip(loop.states, self.blends, strict=True)]
        self.start = round(self.settings.start * len(loop.timesteps))

    def _blend(self, loop: EditLoop, state: ImageState) -> LocalBlend | None:
        assert state.caption is not None
        invert = self.settings.invert
        if state.scope is not None:
            words, invert = list(state.scope.blend_words), state.scope.invert
        else:
            words = list(self.settings.words) or [word for source, _ in state.pairs for word in source.split()]
        positions = word_token_positions(loop.editor.tokenizer, state.caption, words)
        if not positions:
            message = (
                f"image {state.index}: local blend is off for this image: none of the blend words "
                f"{words} is in the caption {state.caption!r}"
            )
            state.notices.append(message)
            warnings.warn(message, UserWarning, stacklevel=2)
            return None
        dilation = self.settings.dilation
        if is_scene(state) and self.scene.blend_dilation is not None:
            dilation = self.scene.blend_dilation
        return LocalBlend(positions, self.settings.threshold, dilation, layers=loop.plan.layers.cross, invert=invert,
                          feather=self.settings.feather)

    def keep_masks(self, size: tuple[int, int], device: torch.device) -> Float[Tensor, "b 1 h w"]:
        """Where each image keeps the source (1 outside its mask; 0 everywhere without a blend), ``(B, 1, h, w)``."""
        return torch.cat([torch.zeros(1, 1, *size, device=device) if blend is None else 1.0 - blend.mask(size)
                          for blend in self.blends])

    def on_reference(self, loop: EditLoop, step: StepContext, records: AttentionRecords) -> None:
        self._add(loop.rows(records))

    def on_edit_records(self, loop: EditLoop, step: StepContext, records: AttentionRecords) -> None:
        if self.blending:
            self._add(loop.rows(records))

    def _add(self, rows: list[AttentionRecords]) -> None:
        for blend, part in zip(self.blends, rows, strict=True):
            if blend is not None:
                blend.add(part)

    def after_scheduler_step(self, loop: EditLoop, step: StepContext, latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        if step.index < self.start or not any(blend is not None for blend in self.latent_blends):
            return latents
        assert step.x_ref is not None
        x_ref = step.x_ref
        return torch.cat([
            latents[row : row + 1] if blend is None else blend(latents[row : row + 1], x_ref[row : row + 1])
            for row, blend in enumerate(self.latent_blends)
        ])

    def finish(self, loop: EditLoop) -> None:
        if not self.settings.pixels:
            return
        for row, (state, blend) in enumerate(zip(loop.states, self.blends, strict=True)):
            if blend is not None:
                state.pixel_blend = PixelBlend(blend.mask(loop.latent_size), loop.x_ref[row : row + 1])
