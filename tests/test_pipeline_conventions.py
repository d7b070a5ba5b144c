"""diffusers' calling conventions on ZeroConPipeline (tiny models); the current signature still works."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from PIL import Image

FAST: dict[str, Any] = {"num_inference_steps": 3, "num_reg_iterations": 1, "method": "pix2pix-zero"}
SOURCE, TARGET = "a red circle on a white background", "a blue circle on a white background"
IMAGE = Image.new("RGB", (16, 16), "red")


def test_prompt_keyword_and_return_dict(pipe) -> None:
    out = pipe(image=IMAGE, prompt=TARGET, source_prompt=SOURCE, output_type="np", show_progress=False,
               generator=torch.Generator().manual_seed(0), **FAST)
    (images,) = pipe(IMAGE, TARGET, source_prompt=SOURCE, output_type="np", return_dict=False, show_progress=False,
                     generator=torch.Generator().manual_seed(0), **FAST)
    assert (out.images == images).all()
    with pytest.raises(TypeError, match="once"):
        pipe(IMAGE, TARGET, prompt=TARGET, source_prompt=SOURCE, **FAST)


def test_swapped_image_and_prompt_get_a_clear_message(pipe, unchecked) -> None:
    """Users run without the type checker: the message is the library's own."""
    with pytest.raises(TypeError, match="swapped"):
        pipe(TARGET, IMAGE, source_prompt=SOURCE, **FAST)
    with pytest.raises(TypeError, match="PIL image"):
        pipe(42, TARGET, source_prompt=SOURCE, **FAST)


def test_callback_on_step_end_sees_and_may_replace_the_latents(pipe) -> None:
    seen: list[tuple[int, int, tuple[int, ...]]] = []

    def step_end(p: Any, step: int, timestep: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert p is pipe and set(kwargs) == {"latents", "pred_x0"}
        seen.append((step, timestep, tuple(kwargs["latents"].shape)))
        return {"latents": torch.zeros_like(kwargs["latents"])} if step == FAST["num_inference_steps"] - 1 else kwargs

    out = pipe(IMAGE, TARGET, source_prompt=SOURCE, output_type="latent", show_progress=False,
               callback_on_step_end=step_end, callback_on_step_end_tensor_inputs=["latents", "pred_x0"], **FAST)
    assert [s for s, _, _ in seen] == list(range(FAST["num_inference_steps"]))
    assert float(out.images.abs().sum()) == 0.0  # the last step's latents were replaced
    with pytest.raises(ValueError, match="tensor_inputs"):
        pipe(IMAGE, TARGET, source_prompt=SOURCE, callback_on_step_end=step_end,
             callback_on_step_end_tensor_inputs=["noise"], **FAST)


def test_legacy_callbacks_of_three_and_four_arguments(pipe) -> None:
    three: list[int] = []
    four: list[tuple[int, int]] = []
    pipe(IMAGE, TARGET, source_prompt=SOURCE, show_progress=False, callback=lambda i, t, x: three.append(i),
         callback_steps=2, **FAST)
    pipe(IMAGE, TARGET, source_prompt=SOURCE, show_progress=False, callback=lambda n, i, t, x: four.append((n, i)),
         **FAST)
    assert three == [0, 2] and four == [(0, 0), (0, 1), (0, 2)]


def test_set_progress_bar_config_reaches_zerocons_bar(pipe, capsys) -> None:
    pipe.set_progress_bar_config(disable=True)
    try:
        pipe(IMAGE, TARGET, source_prompt=SOURCE, **FAST)
        assert "edit" not in capsys.readouterr().err
    finally:
        pipe.set_progress_bar_config(disable=False)


def test_a_call_frees_model_hooks_at_its_end(pipe, monkeypatch) -> None:
    """As diffusers' pipelines do, so enable_model_cpu_offload works across calls."""
    calls = []
    monkeypatch.setattr(type(pipe), "maybe_free_model_hooks", lambda self: calls.append(self))
    from PIL import Image

    pipe(Image.new("RGB", (16, 16)), "a blue dog", source_prompt="a red dog", method="sdedit", num_inference_steps=1,
         show_progress=False)
    assert calls == [pipe]
