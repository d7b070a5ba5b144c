"""Batched editing: several images per UNet call, each edited as it would be alone."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.attention import AttentionRecords
from zerocon.editing import Callback, EditSettings, RuntimeOptions
from zerocon.editing.editor import batches, image_generators
from zerocon.guidance import GuidanceInputs, GuidanceTerm, GuidedScheduler, NonFiniteGuidanceWarning
from zerocon.inversion import NoiseRegularizer
from zerocon.pipelines import ZeroConPipeline

SOURCE = "a red circle on a white background"
TARGET = "a blue circle on a white background"
FAST: dict[str, Any] = {"num_inference_steps": 3, "num_reg_iterations": 1, "show_progress": False}
#: Largest difference allowed between an image's latent edited in a batch and edited alone on
#: the tiny model (measured: below 5e-5 after 4 steps; a larger matrix product rounds differently).
LATENT_TOLERANCE = 1e-3


def _image(seed: int, size: int = 16) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy())


def _edit(pipe: ZeroConPipeline, images: list[Image.Image], generator: Any, **kwargs: Any) -> Any:
    return pipe(images, TARGET, source_prompt=SOURCE, output_type="latent", generator=generator, **{**FAST, **kwargs})


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "options",
    [
        {"method": "zerocon"},
        {"method": "pix2pix-zero"},
        {"method": "zerocon", "local_blend": True},
        {"method": "ddim"},
        {"method": "sdedit"},
        {"method": "pix2pix-zero", "negative_prompt": "a blurry photo"},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_each_image_of_a_batch_matches_its_single_edit(pipe: ZeroConPipeline, options: dict[str, Any]) -> None:
    images = [_image(1), _image(2), _image(3)]
    batch = _edit(pipe, images, _seeded(3), **options)
    assert batch.images.shape[0] == 3
    for index, image in enumerate(images):
        alone = _edit(pipe, [image], _seeded(3), **options)
        assert (batch.images[index] - alone.images[0]).abs().max() < LATENT_TOLERANCE
        assert batch.unet_evals[index] == alone.unet_evals[0]
        assert len(batch.guidance_losses[index]) == len(alone.guidance_losses[0])
        for ours, theirs in zip(batch.guidance_losses[index], alone.guidance_losses[0], strict=True):
            assert ours.keys() == theirs.keys()
            for name in ours:
                assert math.isclose(ours[name], theirs[name], rel_tol=1e-3, abs_tol=1e-6)


def test_an_image_does_not_depend_on_its_batch_companions(pipe: ZeroConPipeline) -> None:
    a, b, c = _image(4), _image(5), _image(6)
    first = _edit(pipe, [a, b], [_seeded(7), _seeded(8)])
    second = _edit(pipe, [c, a], [_seeded(9), _seeded(7)])
    assert (first.images[0] - second.images[1]).abs().max() < LATENT_TOLERANCE
    # Another generator for the same image changes its PatchNCE locations and regulariser rolls.
    other = _edit(pipe, [a], _seeded(10))
    assert (other.images[0] - first.images[0]).abs().max() > 10 * LATENT_TOLERANCE


def test_batch_size_one_edits_one_after_another_exactly_as_single_calls(pipe: ZeroConPipeline) -> None:
    images = [_image(11), _image(12)]
    out = _edit(pipe, images, _seeded(2), batch_size=1)
    for index, image in enumerate(images):
        alone = _edit(pipe, [image], _seeded(2))
        assert torch.equal(out.images[index], alone.images[0])


class _Seen(Callback):
    def __init__(self) -> None:
        self.events: dict[int, list[str]] = {}
        self.batch_sizes: dict[int, int] = {}

    def _log(self, state: Any, what: str) -> None:
        self.events.setdefault(state.index, []).append(what)

    def on_image_start(self, editor: Any, state: Any) -> None:
        self.batch_sizes[state.index] = state.batch_size
        self._log(state, "start")

    def on_inversion_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any) -> None:
        assert latents.shape[0] == 1
        self._log(state, f"invert{step}")

    def on_reference_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any, records: Any) -> None:
        assert latents.shape[0] == 1
        assert all(m.shape[0] == records.heads[n] for n, m in records.cross_attention.items())
        self._log(state, f"reference{step}")

    def on_guidance(self, editor: Any, state: Any, event: Any) -> float | None:
        self._log(state, f"guidance{event.step}")
        return None

    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any, pred_x0: Any) -> None:
        assert latents.shape[0] == 1 and pred_x0.shape[0] == 1
        self._log(state, f"edit{step}")

    def on_image_end(self, editor: Any, state: Any, image: Any) -> None:
        self._log(state, "end")


def test_images_of_other_sizes_go_in_other_batches_and_hooks_see_one_image(pipe: ZeroConPipeline) -> None:
    images = [_image(1), _image(2, size=24), _image(3)]
    seen = _Seen()
    out = _edit(pipe, images, _seeded(5), callbacks=[seen])
    assert seen.batch_sizes == {0: 2, 1: 1, 2: 2}
    assert [tuple(latent.shape[-2:]) for latent in out.images] == [(8, 8), (12, 12), (8, 8)]
    for index, image in enumerate(images):
        alone_seen = _Seen()
        alone = _edit(pipe, [image], _seeded(5), callbacks=[alone_seen])
        assert seen.events[index] == alone_seen.events[0]
        assert (out.images[index] - alone.images[0]).abs().max() < LATENT_TOLERANCE


def test_a_steer_factor_moves_only_its_own_image(pipe: ZeroConPipeline) -> None:
    class VetoSecond(Callback):
        def on_guidance(self, editor: Any, state: Any, event: Any) -> float | None:
            return 0.0 if state.index == 1 else None

    class VetoAll(Callback):
        def on_guidance(self, editor: Any, state: Any, event: Any) -> float | None:
            return 0.0

    images = [_image(1), _image(2)]
    out = _edit(pipe, images, _seeded(5), callbacks=[VetoSecond()])
    free = _edit(pipe, [images[0]], _seeded(5))
    vetoed = _edit(pipe, [images[1]], _seeded(5), callbacks=[VetoAll()])
    assert (out.images[0] - free.images[0]).abs().max() < LATENT_TOLERANCE
    assert (out.images[1] - vetoed.images[0]).abs().max() < LATENT_TOLERANCE
    # the output records which steps were vetoed, image by image
    steps = len(out.guidance_losses[1])
    assert out.vetoed_guidance_steps == [[], list(range(steps))] and steps > 0
    assert out.record(1)["vetoed_guidance_steps"] == list(range(steps)) and free.record(0)["vetoed_guidance_steps"] == []


def test_generator_lists_are_checked_before_any_model_runs(pipe: ZeroConPipeline, unchecked: None) -> None:
    with pytest.raises(ValueError, match="2 generators for 3 images"):
        _edit(pipe, [_image(1)] * 3, [_seeded(1), _seeded(2)])
    with pytest.raises(ValueError, match=r"not a torch\.Generator"):
        _edit(pipe, [_image(1)] * 2, [_seeded(1), 5])
    with pytest.raises(ValueError, match="batch_size"):
        RuntimeOptions(batch_size=0)
    with pytest.raises(TypeError, match="batch_size is a runtime option"):
        EditSettings(batch_size=2)


def test_one_generator_gives_every_image_its_start_state() -> None:
    g = _seeded(3)
    expected = torch.rand(4, generator=_seeded(3))
    generators = image_generators(g, 3)
    assert generators[0] is g
    for generator in generators:
        assert generator is not None
        assert torch.equal(torch.rand(4, generator=generator), expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([(8, 8), (16, 8), (16, 16)]), min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(1, 5)),
)
def test_batches_cover_every_image_once_by_size_and_limit(sizes: list[tuple[int, int]], limit: int | None) -> None:
    groups = batches(sizes, limit)
    assert sorted(i for group in groups for i in group) == list(range(len(sizes)))
    for group in groups:
        assert len({sizes[i] for i in group}) == 1
        assert group == sorted(group)
        assert limit is None or len(group) <= limit
    assert [group[0] for group in groups] == sorted(group[0] for group in groups)
    if limit is None:
        assert len(groups) == len(set(sizes))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.data())
def test_records_split_into_rows_and_back(rows: int, heads: int, data: st.DataObject) -> None:
    cross = torch.randn(rows * heads, 6, 5)
    features = torch.randn(rows, 6, 3)
    records = AttentionRecords({"c": cross}, {"s": features}, {"c": heads})
    parts = [records.rows(r, r + 1) for r in range(rows)]
    assert torch.equal(torch.cat([p["c"] for p in parts]), cross)
    assert torch.equal(torch.cat([p["s"] for p in parts]), features)
    start = data.draw(st.integers(0, rows - 1))
    stop = data.draw(st.integers(start + 1, rows))
    assert records.rows(start, stop)["c"].shape[0] == (stop - start) * heads
    with pytest.raises(ValueError):
        records.rows(0, rows + 1)


class _MeanSquare(GuidanceTerm):
    """A loss that averages over its batch, as the built-in losses average over their rows."""

    def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
        assert inputs.latents is not None
        return inputs.latents.pow(3).mean() + torch.rand((), generator=inputs.generator)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**16))
def test_per_sample_guidance_moves_every_row_as_it_would_move_alone(rows: int, seed: int) -> None:
    latents = torch.randn(rows, 2, 4, 4, generator=_seeded(seed))
    guided = GuidedScheduler(DDIMScheduler(), [_MeanSquare()], step_size=0.5, per_sample=True)
    inputs = lambda x, g: GuidanceInputs(None, latents=x, generator=g)  # noqa: E731
    batch = guided.guide(latents, lambda x: inputs(x, [_seeded(seed + r) for r in range(rows)]))
    assert len(batch.sample_losses) == rows
    for row in range(rows):
        alone = guided.guide(latents[row : row + 1], lambda x, row=row: inputs(x, _seeded(seed + row)))
        assert torch.allclose(batch.latents[row : row + 1], alone.latents, atol=1e-6)
        assert math.isclose(batch.sample_losses[row]["_MeanSquare"], alone.loss, rel_tol=1e-5)
    joint = GuidedScheduler(DDIMScheduler(), [_MeanSquare()], step_size=0.5)
    shared = joint.guide(latents, lambda x: inputs(x, _seeded(seed)))
    if rows > 1:  # averaged over the batch, each row's gradient shrinks by the batch size
        assert not torch.allclose(shared.latents, batch.latents, atol=1e-6)


def test_per_sample_guidance_skips_only_the_non_finite_row() -> None:
    latents = torch.randn(3, 2, 4, 4, generator=_seeded(0))
    latents[1, 0, 0, 0] = float("nan")
    guided = GuidedScheduler(DDIMScheduler(), [_MeanSquare()], step_size=0.5, per_sample=True)
    with pytest.warns(NonFiniteGuidanceWarning, match=r"rows \[1\]"):
        result = guided.guide(latents, lambda x: GuidanceInputs(None, latents=x))
    assert result.skipped_rows == (1,) and not result.skipped
    assert torch.equal(result.latents[1].nan_to_num(), latents[1].nan_to_num())
    assert not torch.equal(result.latents[0], latents[0])
    with pytest.raises(ValueError, match="per_sample"):
        GuidedScheduler(DDIMScheduler(), [_MeanSquare()]).guide(
            latents[:2].nan_to_num(), lambda x: GuidanceInputs(None, latents=x), steer=lambda _: [1.0, 0.0]
        )


def test_noise_regularizer_with_one_generator_per_row_regularises_each_row_alone() -> None:
    noise = torch.randn(3, 4, 16, 16, generator=_seeded(1))
    regularizer = NoiseRegularizer(num_iterations=2)
    together = regularizer(noise, [_seeded(10), _seeded(11), _seeded(12)])
    for row in range(3):
        assert torch.equal(together[row : row + 1], regularizer(noise[row : row + 1], _seeded(10 + row)))
    with pytest.raises(ValueError, match="2 generators for 3"):
        regularizer(noise, [_seeded(1), _seeded(2)])


@pytest.mark.parametrize(
    "options",
    [{"method": "zerocon"}, {"method": "pix2pix-zero", "negative_prompt": "a blurry photo"},
     {"method": "zerocon", "local_blend": True}, {"method": "zerocon", "guidance_scale": 1.0}],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_fusing_the_next_reference_rows_into_the_cfg_call_changes_only_rounding(
    pipe: ZeroConPipeline, options: dict[str, Any]
) -> None:
    images = [_image(1), _image(2)]
    calls: list[int] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        separate = _edit(pipe, images, _seeded(4), fuse_unet_calls=False, **options)
        separate_calls, calls[:] = len(calls), []
        fused = _edit(pipe, images, _seeded(4), fuse_unet_calls=True, **options)
    finally:
        handle.remove()
    steps = FAST["num_inference_steps"]
    assert len(calls) == separate_calls - (steps - 1) * (2 if "negative_prompt" in options else 1)
    assert (separate.images - fused.images).abs().max() < LATENT_TOLERANCE
    assert separate.unet_evals == fused.unet_evals


def test_an_image_whose_guidance_is_nan_is_skipped_alone_and_no_hook_sees_it(pipe: ZeroConPipeline) -> None:
    from zerocon.editing import EditMethod

    poisoned = _seeded(21)

    class NanForOne(GuidanceTerm):
        def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
            assert inputs.latents is not None
            value = inputs.latents.pow(2).mean()
            return value * float("nan") if inputs.generator is poisoned else value

    class Poisoned(EditMethod):
        name = "nan-for-one"
        record_cross = True

        def guidance_terms(self, settings: Any, layers: Any) -> list[GuidanceTerm]:
            return [NanForOne()]

    class Events(Callback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_guidance(self, editor: Any, state: Any, event: Any) -> float | None:
            assert math.isfinite(event.loss)
            self.seen.append(state.index)
            return None

    events = Events()
    with pytest.warns(NonFiniteGuidanceWarning):
        out = pipe([_image(1), _image(2)], TARGET, source_prompt=SOURCE, output_type="latent",
                   method=Poisoned(), generator=[_seeded(20), poisoned], callbacks=[events], **FAST)
    steps = FAST["num_inference_steps"]
    assert out.skipped_guidance_steps == [[], list(range(steps))]
    assert events.seen == [0] * steps


def test_steer_factors_may_be_numpy_or_tensor_scalars_and_repeated_generators_are_copied() -> None:
    import numpy as np

    latents = torch.randn(2, 2, 4, 4, generator=_seeded(0))
    guided = GuidedScheduler(DDIMScheduler(), [_MeanSquare()], step_size=0.5, per_sample=True)
    inputs = lambda x: GuidanceInputs(None, latents=x, generator=[_seeded(1), _seeded(2)])  # noqa: E731
    half = guided.guide(latents, inputs, steer=lambda _: 0.5)
    for factor in (np.float32(0.5), torch.tensor(0.5)):
        assert torch.allclose(guided.guide(latents, inputs, steer=lambda _, f=factor: f).latents, half.latents)
    g = _seeded(4)
    first, second = image_generators([g, g], 2)
    assert first is g and second is not g and second is not None
    assert torch.equal(torch.rand(3, generator=first), torch.rand(3, generator=second))
