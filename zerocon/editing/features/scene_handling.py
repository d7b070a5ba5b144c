"""Scene handling as an edit feature: scene edits move at their own rate and may release the edited words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from zerocon.editing.feature import EditFeature
from zerocon.editing.features.local_blend import is_scene
from zerocon.editing.settings_groups import SceneSettings
from zerocon.editing.token_positions import word_token_positions

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop
    from zerocon.editing.step_context import StepContext
    from zerocon.guidance import GuidanceInputs


class SceneHandling(EditFeature):
    """Per-image changes of the guided move for scene edits (background, pattern).

    Scene edits (read from the edit's words under ``blend.scope="auto"``) move at
    ``scene.step_factor`` times η; with ``scene.release_edited_tokens`` the edited words'
    cross-attention maps are left out of the cross-attention term (``"scene"``: scene edits,
    ``"all"``: every edit) through the term's per-image token weights. The scene edits' negative
    prompt and direction scale are read where the conditioning is built.

    Args:
        scene: the scene settings.

    Shape:
        Latents and masks hold one row per image of the batch: ``(B, C, h, w)``, ``(B, 1, h, w)``.

    Examples:
        >>> SceneHandling(SceneSettings(step_factor=0.0)).settings.step_factor
        0.0
    """

    def __init__(self, scene: SceneSettings) -> None:
        self.settings = scene
        self.token_weights: Tensor | None = None
        self.scales: list[float] = []

    def setup(self, loop: EditLoop) -> None:
        self.scales = [self.settings.step_factor if is_scene(state) else 1.0 for state in loop.states]
        self.token_weights = self._token_weights(loop)

    def _token_weights(self, loop: EditLoop) -> Tensor | None:
        """0 at released edited words, else 1, one row per image."""
        mode = self.settings.release_edited_tokens
        if mode == "none" or not loop.plan.method.record_cross:
            return None
        rows = []
        length = int(loop.cond.shape[1])
        for state in loop.states:
            weights = torch.ones(length, device=loop.editor.device)
            if mode == "all" or is_scene(state):
                assert state.caption is not None
                words = [word for source, _ in state.pairs for word in source.split()]
                positions = word_token_positions(loop.editor.tokenizer, state.caption, words)
                weights[[p for p in positions if p < length]] = 0.0
            rows.append(weights)
        return torch.stack(rows)

    def move_scales(self, loop: EditLoop) -> list[float] | None:
        return self.scales if any(scale != 1.0 for scale in self.scales) else None

    def guidance_inputs(self, loop: EditLoop, step: StepContext, inputs: GuidanceInputs,
                        output: Float[Tensor, "b c h w"]) -> GuidanceInputs:
        if self.token_weights is not None:
            inputs.token_weights = self.token_weights
        return inputs
