"""docs/guidance.md's own-sampler loop, run on the Editor's inputs, gives the Editor's latents.

The loop is taken from the documentation itself (the block that defines ``edit_loop``), so the
page and this test cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from zerocon.editing import Callback, EditSettings, LocalBlendFeature, word_token_positions
from zerocon.guidance import (
    CrossAttentionGuidance,
    LocalBlend,
    ZeroConStep,
)
from zerocon.testing import tiny_components

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guidance.md"
CAPTION, TARGET = "a red circle on a white background", "a blue circle on a white background"


def _doc_loop() -> tuple[Any, int]:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    code = next(block for block in blocks if "def edit_loop" in block)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/guidance.md", "exec"), namespace)
    lines = [line for line in code.splitlines() if line.strip()]
    return namespace["edit_loop"], len(lines)


class Capture(Callback):
    """The Editor's inputs to the edit pass, and the generator's state when the pass starts."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator, self.seen = generator, {}

    def on_reference_step(self, editor, state, step, timestep, latents, records) -> None:
        if step == 0:
            twin = torch.Generator().set_state(self.generator.get_state())
            self.seen = {"x_T": state.x_start, "cond": state.cond, "target": state.target_cond,
                         "uncond": state.uncond, "generator": twin, "caption": state.caption, "pairs": state.pairs}


def test_the_documented_loop_is_short() -> None:
    assert _doc_loop()[1] <= 40


@pytest.mark.parametrize("method", ["zerocon", "zerocon++"])
def test_the_documented_loop_gives_the_editors_latents(pipe, method) -> None:
    edit_loop, _ = _doc_loop()
    g = torch.Generator().manual_seed(0)
    image = Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).to(torch.uint8).numpy(), mode="RGB")
    generator, capture = torch.Generator().manual_seed(1), None
    capture = Capture(generator)
    settings = EditSettings(method, num_inference_steps=4, num_reg_iterations=1, guidance_step_size=0.5)
    out = pipe(image, TARGET, source_prompt=CAPTION, settings=settings, generator=generator, output_type="latent",
               callbacks=[capture], show_progress=False)
    editor = pipe.editor()
    plan = editor.plan(settings)
    seen = capture.seen
    scheduler = editor.edit_scheduler(plan.method)
    scheduler.set_timesteps(settings.num_inference_steps)
    blend = None
    if method == "zerocon++":  # an object edit: the blend on the edited word, as the feature draws it
        blend_settings = settings.blend
        positions = word_token_positions(pipe.tokenizer, seen["caption"], [w for w, _ in seen["pairs"]])
        blend = LocalBlend(positions, blend_settings.threshold, blend_settings.dilation)
        assert plan.method.features(settings)[0].__class__ is LocalBlendFeature
    step = ZeroConStep(pipe.unet, scheduler, plan.terms, step_size=plan.step_size, blend=blend,
                       feature_layers=settings.guidance.patch_nce_layers if plan.layers.self_attention else None)
    ref_uncond = None if not settings.reference.cfg else seen["uncond"]
    with torch.no_grad():
        ours = edit_loop(step, scheduler, seen["x_T"], seen["cond"], seen["target"], seen["uncond"],
                         eta=plan.step_size, scale=settings.guidance_scale, ref_uncond=ref_uncond,
                         generator=seen["generator"])
    assert torch.equal(ours, out.images), (ours - out.images).abs().max()
    # The equality is not that of two unguided runs: without the move the latents differ.
    scheduler.set_timesteps(settings.num_inference_steps)
    with torch.no_grad():
        unguided = edit_loop(step, scheduler, seen["x_T"], seen["cond"], seen["target"], seen["uncond"], eta=0.0,
                             scale=settings.guidance_scale, ref_uncond=ref_uncond, generator=seen["generator"])
    assert not torch.equal(unguided, out.images)


def test_the_sigma_space_step_size_makes_the_same_move() -> None:
    """η·(1+σ²) on Euler's latent x_σ = x_t·√(1+σ²) is DDIM's move of x_t by η, mapped to σ-space."""
    c = tiny_components()
    g = torch.Generator().manual_seed(0)
    x_t, cond = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 16, 32, generator=g)
    reference = torch.randn(1, 16, 32, generator=g)
    from diffusers import EulerDiscreteScheduler

    euler = EulerDiscreteScheduler.from_config(c.scheduler.config)
    euler.set_timesteps(4)
    t, sigma = euler.timesteps[1], float(euler.sigmas[1])
    alpha = float(c.scheduler.alphas_cumprod[int(t)])
    assert abs((1 - alpha) / alpha - sigma**2) < 1e-3 * sigma**2  # the same noise level
    moves = {}
    for name, scheduler, x, eta in (("ddim", c.scheduler, x_t, 0.1),
                                    ("euler", euler, x_t * (1 + sigma**2) ** 0.5, 0.1 * (1 + sigma**2))):
        step = ZeroConStep(c.unet, scheduler, [CrossAttentionGuidance(1.0)], step_size=eta)
        with step.attach():
            step.reference(x, t, reference)
            moves[name] = step.guide(x, t, cond) - x
    torch.testing.assert_close(moves["euler"] / (1 + sigma**2) ** 0.5, moves["ddim"], rtol=2e-3, atol=1e-6)
