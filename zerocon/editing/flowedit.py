"""FlowEdit (Kulikov et al., 2024) as a registered method: inversion-free editing of flow-matching models.

FlowEdit never inverts. It moves the edit latent ``z`` (starting at the source latent ``x_src``)
along the difference of two velocities, at every step drawing fresh noise ``n``:

    z_src = (1 − σ)·x_src + σ·n          (the source, noised afresh)
    z_tar = z + z_src − x_src            (the edit, noised the same way)
    z     ← z + (σ_next − σ)·(v(z_tar, c_tar) − v(z_src, c_src))

with classifier-free guidance on both velocities (a low scale on the source, a high one on the
target). It skips the noisiest steps: only the last ``strength`` share of the schedule runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from diffusers.utils.torch_utils import randn_tensor

from zerocon.editing.methods import EditMethod, register_method

if TYPE_CHECKING:
    from zerocon.editing.edit_loop import EditLoop, EditPlan
    from zerocon.editing.feature import EditFeature
    from zerocon.editing.settings import EditSettings
    from zerocon.editing.step_context import StepContext


@register_method
class FlowEditMethod(EditMethod):
    """FlowEdit, built from the engine's pieces: its own ``start`` and ``step``, no reference pass.

    Settings it reads: ``guidance_scale`` (the target's CFG), ``extras["source_guidance_scale"]``
    (the source's CFG, default 3.5), ``strength`` (the share of the steps run: FlowEdit's
    ``n_max / T``), ``negative_prompt`` (the unconditional prompt, ``""`` by default). The preset
    is FlowEdit's for SD3 (50 steps, ``n_max = 33``, CFG 3.5 / 13.5). Flow-matching models only.

    Shape:
        Latents ``(B, C, h, w)``; one noise draw per image and step, from the image's generator.

    Examples:
        >>> from zerocon.editing import EditSettings
        >>> settings = EditSettings("flowedit")
        >>> settings.num_inference_steps, round(settings.strength * settings.num_inference_steps)
        (50, 33)
    """

    name = "flowedit"
    invert = False
    reference = False
    description = "FlowEdit: inversion-free, the edit moved by v(target) - v(source) (flow-matching models)"
    defaults: ClassVar[dict[str, Any]] = {
        "num_inference_steps": 50,
        "strength": 0.66,
        "guidance_scale": 13.5,
        "negative_prompt": "",
        "extras": {"source_guidance_scale": 3.5},
    }

    def features(self, settings: EditSettings) -> list[EditFeature]:
        """None: FlowEdit has no reference pass for the blend or the scene handling to read."""
        return []

    def check(self, plan: EditPlan) -> None:
        """Refuse models that do not predict a flow-matching velocity."""
        if not plan.flow_matching:
            raise ValueError("flowedit needs a flow-matching model (SD3, FLUX); this model predicts "
                             "noise, not a velocity")

    def start(self, loop: EditLoop) -> None:
        """The source latent itself, at the first of the last ``strength`` share of the timesteps."""
        loop.scheduler = loop.editor.edit_scheduler(self)
        steps = loop.plan.settings.num_inference_steps
        x0 = loop.states[0].x0
        assert x0 is not None
        loop.scheduler.set_timesteps(steps, device=loop.editor.device, **loop.editor.scheduler_kwargs(tuple(x0.shape)))
        first = steps - min(steps, max(1, round(steps * loop.plan.settings.strength)))
        for state in loop.states:
            state.timesteps, state.x_start = loop.scheduler.timesteps[first:], state.x0

    def step(self, loop: EditLoop, step: StepContext) -> None:
        """One FlowEdit step for every image of the batch."""
        sigmas = loop.scheduler.sigmas
        first = len(loop.scheduler.timesteps) - len(loop.timesteps)  # the steps FlowEdit skips
        sigma, sigma_next = sigmas[first + step.index], sigmas[first + step.index + 1]
        x_src = loop.source_x0
        noise = torch.cat([
            randn_tensor(x_src[:1].shape, generator=generator, device=x_src.device, dtype=x_src.dtype)
            for generator in loop.generators
        ])
        z_src = (1 - sigma) * x_src + sigma * noise
        z_tar = loop.x_edit + z_src - x_src
        source_scale = float(loop.plan.settings.extras.get("source_guidance_scale", 3.5))
        with loop.counter.phase("denoise"):
            v_src = loop.editor.model_output(z_src, step.t, loop.cond, loop.uncond, source_scale)
            v_tar = loop.editor.model_output(z_tar, step.t, loop.target_cond, loop.uncond, loop.scale)
        loop.end_step(step, loop.x_edit + (sigma_next - sigma) * (v_tar - v_src))
