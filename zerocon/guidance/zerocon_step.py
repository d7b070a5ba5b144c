"""``ZeroConStep``: the method's step for your own sampling loop (reference record, terms, guided move)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

from zerocon.attention import AttentionRecords, AttentionStore, LayerSelector
from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.guidance.guided_scheduler import GuidanceResult, GuidedScheduler
from zerocon.guidance.local_blend import LocalBlend

Predict = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]


def _unet_prediction(model: nn.Module, sample: Tensor, timestep: Tensor, conditioning: Tensor) -> Tensor:
    output = model(sample, timestep, conditioning)
    return output.sample if hasattr(output, "sample") else output  # type: ignore[no-any-return]


class ZeroConStep:
    """zeroCon's step as an object you call from your own loop, whatever the scheduler.

    It holds the attention store (which layers are recorded), the guidance terms, the step
    size and the reference's records of the current step. A step of your loop is four calls:
    [`reference`][zerocon.guidance.ZeroConStep.reference] (the reconstruction forward, recorded),
    [`guide`][zerocon.guidance.ZeroConStep.guide] (the move down the terms' gradient),
    [`predict`][zerocon.guidance.ZeroConStep.predict] (the classifier-free-guided prediction at
    the moved latent, not recorded) and your scheduler's own ``step``; with a
    [`LocalBlend`][zerocon.guidance.LocalBlend], [`blend`][zerocon.guidance.ZeroConStep.blend]
    after it. Every model input goes through ``scheduler.scale_model_input``, so σ-space
    schedulers (Euler) get their scaled inputs; the gradient is taken with respect to the
    scheduler's own latent. With the same inputs, the calls reproduce the
    [`Editor`][zerocon.editing.Editor]'s latents for ``zerocon`` and ``zerocon++`` under DDIM.

    Args:
        model: the network whose attention layers are recorded (a diffusers UNet).
        scheduler: the edit trajectory's scheduler.
        terms: the guidance terms (e.g. ``CrossAttentionGuidance``, ``PatchNCEGuidance``).
        step_size: η.
        cross_attention_layers: regex of the recorded cross-attention layers.
        feature_layers: regex of the recorded self-attention layers (``None``: none; feature
            terms need some).
        blend: a local blend fed with every step's reference and edit maps.
        max_grad_norm: clip each image's latent gradient norm (``None``: off).
        predict: ``predict(model, sample, t, conditioning) -> prediction`` (default: a diffusers
            UNet's ``.sample``).

    Shape:
        Latents ``(B, C, h, w)``; conditioning ``(B, L, D)``.

    Raises:
        ValueError: when a layer pattern selects no layer of the model.

    Examples:
        >>> from zerocon.guidance import CrossAttentionGuidance
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> c.scheduler.set_timesteps(2)
        >>> step = ZeroConStep(c.unet, c.scheduler, [CrossAttentionGuidance(1.0)], step_size=0.1)
        >>> x, t, cond = torch.randn(1, 4, 8, 8), c.scheduler.timesteps[0], torch.randn(1, 16, 32)
        >>> with step.attach(), torch.no_grad():
        ...     _ = step.reference(x, t, cond)
        ...     moved = step.guide(x, t, cond + 0.1)
        >>> moved.shape, bool(step.last.loss >= 0)
        (torch.Size([1, 4, 8, 8]), True)
    """

    def __init__(
        self,
        model: nn.Module,
        scheduler: Any,
        terms: Sequence[GuidanceTerm],
        *,
        step_size: float,
        cross_attention_layers: str = r"attn2$",
        feature_layers: str | None = None,
        blend: LocalBlend | None = None,
        max_grad_norm: float | None = None,
        predict: Predict = _unet_prediction,
    ) -> None:
        self.model, self.predict_fn, self.blend_mask = model, predict, blend
        names = self._layers(cross_attention_layers, "cross")
        features = self._layers(feature_layers, "self") if feature_layers is not None else []
        exact = "^(?:" + "|".join(re.escape(name) for name in [*names, *features]) + ")$"
        self.store = AttentionStore(LayerSelector(pattern=exact), record_cross=True, record_self=bool(features),
                                    keep_graph=True)
        self.guided = GuidedScheduler(scheduler, terms, step_size=step_size, max_grad_norm=max_grad_norm,
                                      per_sample=True)
        self.records: AttentionRecords | None = None
        self.last: GuidanceResult | None = None

    @property
    def step_size(self) -> float:
        """η of the next move (set it per step for a schedule, or for σ-space scaling)."""
        return self.guided.step_size

    @step_size.setter
    def step_size(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"step_size must be >= 0, got {value}")
        self.guided.step_size = float(value)

    def _layers(self, pattern: str, kind: Literal["cross", "self"]) -> list[str]:
        names = LayerSelector(pattern=pattern, kind=kind).select(self.model)
        if not names:
            raise ValueError(f"{pattern!r} selects no {kind}-attention layer of the model")
        return names

    def attach(self) -> AbstractContextManager[Any]:
        """``with step.attach():`` records the selected layers inside (and restores them after)."""
        return self.store.attach(self.model)

    def _input(self, x: Tensor, t: Tensor) -> Tensor:
        return self.guided.scale_model_input(x, t)

    def _cfg(self, x: Tensor, t: Tensor, cond: Tensor, uncond: Tensor | None, scale: float,
             recorded: bool) -> Tensor:
        if uncond is None or scale == 1.0 or torch.equal(uncond, cond):
            return self.predict_fn(self.model, x, t, cond)
        if recorded:  # only the conditional rows are recorded
            with self.store.paused():
                out_uncond = self.predict_fn(self.model, x, t, uncond)
            out_cond = self.predict_fn(self.model, x, t, cond)
        else:
            out_uncond, out_cond = self.predict_fn(self.model, torch.cat([x, x]), t, torch.cat([uncond, cond])).chunk(2)
        return out_uncond + scale * (out_cond - out_uncond)

    @torch.no_grad()
    def reference(
        self, x_ref: Float[Tensor, "b c h w"], t: Shaped[Tensor, ""], cond: Float[Tensor, "b l d"],
        uncond: Float[Tensor, "b l d"] | None = None, guidance_scale: float = 1.0,
    ) -> Float[Tensor, "b c h w"]:
        """The reference forward at ``x_ref``: records this step's maps, returns the prediction to step ``x_ref`` with."""
        out = self._cfg(self._input(x_ref, t), t, cond, uncond, guidance_scale, recorded=True)
        self.records = self.store.snapshot(detach=True)
        if self.blend_mask is not None:
            self.blend_mask.add(self.records)
        return out

    def guide(
        self, x: Float[Tensor, "b c h w"], t: Shaped[Tensor, ""], target: Float[Tensor, "b l d"],
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
    ) -> Float[Tensor, "b c h w"]:
        """The guided move of ``x`` down the terms' gradient against this step's reference records.

        Raises:
            RuntimeError: before any [`reference`][zerocon.guidance.ZeroConStep.reference] call.
        """
        if self.records is None:
            raise RuntimeError("call reference() first: the terms compare the edit with the reference's records")
        generators: list[torch.Generator | None] = (
            list(generator) if isinstance(generator, (list, tuple)) else [generator] * x.shape[0]  # type: ignore[list-item]
        )

        def forward(latents: Tensor) -> GuidanceInputs:
            self.predict_fn(self.model, self._input(latents, t), t, target)
            edit = self.store.snapshot()
            if self.blend_mask is not None:
                self.blend_mask.add(edit)
            return GuidanceInputs(edit=edit, reference=self.records, latents=latents, timestep=t, generator=generators)

        self.last = self.guided.guide(x, forward)
        return self.last.latents

    @torch.no_grad()
    def predict(
        self, x: Float[Tensor, "b c h w"], t: Shaped[Tensor, ""], target: Float[Tensor, "b l d"],
        uncond: Float[Tensor, "b l d"] | None = None, guidance_scale: float = 1.0,
    ) -> Float[Tensor, "b c h w"]:
        """The classifier-free-guided prediction at ``x`` (not recorded), for your scheduler's ``step``."""
        with self.store.paused():
            return self._cfg(self._input(x, t), t, target, uncond, guidance_scale, recorded=False)

    @torch.no_grad()
    def blend(self, x: Float[Tensor, "b c h w"], x_ref: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        """``x`` put back to ``x_ref`` outside the blend's mask (``x`` itself without a blend)."""
        return x if self.blend_mask is None else self.blend_mask(x, x_ref)
