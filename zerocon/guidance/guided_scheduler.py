"""``GuidedScheduler``: any diffusers scheduler plus a gradient-guided move of the latent."""

from __future__ import annotations

import math
import warnings
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm

#: ``forward_fn(latents) -> inputs``: runs the UNet (gradients on) and returns what terms read.
GuidanceForward = Callable[[Tensor], GuidanceInputs]
#: ``noise_fn(latents) -> model_output``: the (no-grad, CFG) UNet call used for the scheduler step.
NoiseForward = Callable[[Tensor], Tensor]
#: ``post_step(prev_sample) -> prev_sample``: may change the stepped latent (e.g. a local blend).
PostStep = Callable[[Tensor], Tensor]
#: ``steer(preview) -> factor``: sees the loss and gradient norm before the move (``preview``'s
#: latents are unmoved) and returns a factor for the move (``0`` vetoes it) or ``None``; with
#: ``per_sample``, optionally one factor per batch row.
Steer = Callable[["GuidanceResult"], "float | Sequence[float] | None"]


class NonFiniteGuidanceWarning(RuntimeWarning):
    """A guidance loss or gradient was NaN/Inf; the latent was not moved at that step."""


@dataclass
class GuidanceResult:
    """Outcome of [`guide`][zerocon.guidance.GuidedScheduler.guide].

    Args:
        latents: the moved latent (detached); unchanged when ``skipped``.
        loss: the weighted total loss before the move.
        losses: each term's weighted loss, keyed by its ``term_name``.
        grad_norm: the largest per-sample norm of the latent gradient (before clipping).
        skipped: whether a NaN/Inf loss or gradient stopped the move (of every row).
        move_scale: the factor a ``steer`` function applied to the move (1 when none did); a
            tuple of one factor per row when it steered the rows of a ``per_sample`` batch apart.
        skipped_rows: the rows whose move was skipped for a NaN/Inf loss or gradient.
        sample_losses: with ``per_sample``, each row's ``losses``; else ``[losses]``.
        sample_grad_norms: with ``per_sample``, each row's gradient norm; else ``[grad_norm]``.

    Shape:
        latents: ``(b, c, h, w)``, like the input latent.

    Examples:
        >>> from diffusers import DDIMScheduler
        >>> class PullToZero(GuidanceTerm):
        ...     def loss(self, inputs):
        ...         return inputs.latents.pow(2).sum()
        >>> guided = GuidedScheduler(DDIMScheduler(), [PullToZero()], step_size=0.25)
        >>> result = guided.guide(torch.ones(1, 4, 8, 8), lambda x: GuidanceInputs(None, latents=x))
        >>> result.latents[0, 0, 0, 0].item(), result.loss, result.losses, result.skipped
        (0.5, 256.0, {'PullToZero': 256.0}, False)
    """

    latents: Float[Tensor, "b c h w"]
    loss: float
    losses: dict[str, float] = field(default_factory=dict)
    grad_norm: float = 0.0
    skipped: bool = False
    move_scale: float | tuple[float, ...] = 1.0
    skipped_rows: tuple[int, ...] = ()
    sample_losses: list[dict[str, float]] = field(default_factory=list)
    sample_grad_norms: list[float] = field(default_factory=list)


@dataclass
class GuidedStepOutput:
    """Outcome of [`guided_step`][zerocon.guidance.GuidedScheduler.guided_step]: the scheduler's ``prev_sample`` and guidance.

    Args:
        prev_sample: ``x_{t-1}`` from the wrapped scheduler's ``step`` at the moved latent.
        guidance: the [`GuidanceResult`][zerocon.guidance.GuidanceResult] of the move.
        scheduler_output: the wrapped scheduler's raw ``step`` output.

    Shape:
        prev_sample: ``(b, c, h, w)``, like the input latent.

    Examples:
        >>> from diffusers import DDIMScheduler
        >>> guided = GuidedScheduler(DDIMScheduler())
        >>> guided.set_timesteps(10)
        >>> out = guided.guided_step(
        ...     torch.randn(1, 4, 8, 8), guided.timesteps[0],
        ...     forward_fn=lambda x: GuidanceInputs(None, latents=x),
        ...     noise_fn=lambda x: torch.zeros_like(x))
        >>> out.prev_sample.shape, out.guidance.skipped
        (torch.Size([1, 4, 8, 8]), False)
    """

    prev_sample: Float[Tensor, "b c h w"]
    guidance: GuidanceResult
    scheduler_output: Any = None


class GuidedScheduler(nn.Module):
    """Wraps a diffusers scheduler and adds a guided step (Lightning-callback-style terms).

    ``set_timesteps``, ``timesteps``, ``step``, ``scale_model_input``, ``init_noise_sigma`` and
    ``config`` pass through to the wrapped scheduler. [`guided_step`][zerocon.guidance.GuidedScheduler.guided_step] =
    [`guide`][zerocon.guidance.GuidedScheduler.guide] (move ``x_t ← x_t − η·clip(∇ Σ_k w_k L_k)``) then the scheduler's ``step``
    at the moved latent.

    Args:
        scheduler: any diffusers scheduler (DDIM is the method's choice).
        terms: guidance terms (``nn.Module``s returning a weighted scalar loss).
        step_size: η (default 0.1, pix2pix-zero's rate for real images; ≤ 0.01 for v-prediction).
        max_grad_norm: clip the latent gradient's norm (per sample) to this value (default: off).
        per_sample: evaluate the terms on each batch row alone ([`row`][zerocon.guidance.GuidanceInputs.row])
            and sum them, so every latent of a batch moves exactly as it would alone (the
            built-in losses average over their rows, which would otherwise shrink each row's
            gradient by the batch size); rows with a NaN/Inf loss are skipped alone, and
            ``steer`` may return one factor per row. Default ``False``: the terms see the
            whole batch at once.

    Shape:
        - guide: latents ``(B, C, H, W)`` → ``GuidanceResult.latents`` ``(B, C, H, W)``.
        - guided_step: latents ``(B, C, H, W)``; ``noise_fn`` returns ``(B, C, H, W)``
          → ``GuidedStepOutput.prev_sample`` ``(B, C, H, W)``.

    Raises:
        ValueError: for a negative step size or non-positive ``max_grad_norm``.

    Examples:
        >>> from diffusers import DDIMScheduler
        >>> guided = GuidedScheduler(DDIMScheduler(), step_size=0.5)
        >>> guided.set_timesteps(10)
        >>> len(guided.timesteps)
        10
    """

    def __init__(
        self,
        scheduler: Any,
        terms: Iterable[GuidanceTerm] = (),
        step_size: float = 0.1,
        max_grad_norm: float | None = None,
        per_sample: bool = False,
    ) -> None:
        super().__init__()
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"scheduler must have a step() method, got {type(scheduler).__name__}")
        if step_size < 0:
            raise ValueError(f"step_size must be >= 0, got {step_size}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")
        self.scheduler = scheduler
        self.terms = nn.ModuleList(terms)
        self.step_size = float(step_size)
        self.max_grad_norm = max_grad_norm
        self.per_sample = bool(per_sample)

    # -- pass-through -------------------------------------------------------------------------
    def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        self.scheduler.set_timesteps(*args, **kwargs)

    @property
    def timesteps(self) -> Tensor:
        return self.scheduler.timesteps

    @property
    def config(self) -> Any:
        return self.scheduler.config

    @property
    def init_noise_sigma(self) -> float:
        return getattr(self.scheduler, "init_noise_sigma", 1.0)

    def scale_model_input(
        self, sample: Float[Tensor, "b c h w"], timestep: int | Shaped[Tensor, "*t"] | None = None
    ) -> Float[Tensor, "b c h w"]:
        fn = getattr(self.scheduler, "scale_model_input", None)
        return fn(sample, timestep) if fn is not None else sample

    def step(
        self, model_output: Float[Tensor, "b c h w"], timestep: int | Shaped[Tensor, "*t"], sample: Float[Tensor, "b c h w"],
        **kwargs: Any,
    ) -> Any:
        """The wrapped scheduler's own ``step`` (unguided)."""
        return self.scheduler.step(model_output, timestep, sample, **kwargs)

    # -- terms --------------------------------------------------------------------------------
    def add_term(self, term: GuidanceTerm) -> GuidedScheduler:
        """Append a term (returns ``self`` for chaining)."""
        if not isinstance(term, nn.Module):
            raise TypeError(f"a guidance term must be an nn.Module, got {type(term).__name__}")
        self.terms.append(term)
        return self

    # -- guidance -----------------------------------------------------------------------------
    def guide(
        self,
        latents: Float[Tensor, "b c h w"],
        forward_fn: GuidanceForward,
        steer: Steer | None = None,
    ) -> GuidanceResult:
        """Move ``latents`` one step down the gradient of the weighted sum of the terms.

        Args:
            latents: the current latent ``x_t`` (any grad state; it is detached first).
            forward_fn: ``forward_fn(x) -> GuidanceInputs``, run with gradients on ``x``.
            steer: optional ``steer(preview) -> factor | None``, called once the loss and the
                gradient are known: a factor scales the move (0 vetoes it). With
                ``per_sample``, it may return one factor per row instead.

        Returns:
            The moved latent and the loss values. A NaN/Inf loss or gradient skips the move and
            warns with [`NonFiniteGuidanceWarning`][zerocon.guidance.NonFiniteGuidanceWarning]; with ``per_sample`` only the rows
            concerned are skipped.
        """
        rows = int(latents.shape[0])
        if len(self.terms) == 0 or self.step_size == 0:
            reported = rows if self.per_sample else 1
            return GuidanceResult(
                latents.detach(), 0.0, sample_losses=[{} for _ in range(reported)], sample_grad_norms=[0.0] * reported
            )
        x = latents.detach().requires_grad_(True)
        with torch.enable_grad():
            inputs = forward_fn(x)
            if inputs.latents is None:
                inputs.latents = x
            parts = [inputs.row(i) for i in range(rows)] if self.per_sample else [inputs]
            # Losses stay tensors until the one host transfer below (one sync per step on a GPU).
            named: list[list[tuple[str, Tensor]]] = []
            # Index -1 gathers the plain terms; a balanced term keeps its own sum.
            sums: dict[int, Tensor] = {}
            for part in parts:
                part_values: list[tuple[str, Tensor]] = []
                for index, term in enumerate(self.terms):
                    value = term(part)
                    if value.ndim != 0:
                        raise ValueError(
                            f"guidance term {term!r} returned shape {tuple(value.shape)}, expected a scalar"
                        )
                    part_values.append((getattr(term, "term_name", type(term).__name__), value.detach()))
                    key = index if getattr(term, "balanced", False) else -1
                    sums[key] = value if key not in sums else sums[key] + value
                named.append(part_values)
            total = sum(sums.values())
            assert isinstance(total, Tensor)
            if not total.requires_grad:
                raise ValueError(
                    "the guidance loss does not depend on the latent: forward_fn must run the "
                    "model on the latent it receives, with gradients enabled"
                )
            grad = self._gradient(sums, x)
        norms = grad.flatten(1).norm(dim=1)
        finite = torch.isfinite(grad.flatten(1)).all(dim=1)
        # Every number the host needs, in one transfer: term values, the total, row norms, finiteness.
        scalars = [value for part_values in named for _, value in part_values]
        host = torch.cat([
            # (a custom term may return a CPU scalar beside device terms: every value joins the gradient's device)
            torch.stack([value.to(device=grad.device, dtype=torch.float64) for value in scalars]),
            total.detach().to(device=grad.device, dtype=torch.float64).view(1), norms.double(),
            finite.double(),
        ]).tolist()
        term_values, loss_value = host[: len(scalars)], host[len(scalars)]
        row_norms, row_finite = host[len(scalars) + 1 : len(scalars) + 1 + rows], host[len(scalars) + 1 + rows :]
        sample_losses: list[dict[str, float]] = []
        flat = iter(term_values)
        for part_values in named:
            values: dict[str, float] = {}
            for name, _ in part_values:
                values[name] = values.get(name, 0.0) + next(flat)
            sample_losses.append(values)
        losses: dict[str, float] = {}
        for values in sample_losses:
            for name, value in values.items():
                losses[name] = losses.get(name, 0.0) + value
        grad_norm = math.nan if any(math.isnan(n) for n in row_norms) else max(row_norms)  # as torch's max
        if self.per_sample:
            finite_rows = [bool(f) and math.isfinite(sum(v.values())) for f, v in zip(row_finite, sample_losses, strict=True)]
        else:
            finite_rows = [bool(f) for f in row_finite] if math.isfinite(loss_value) and all(row_finite) else [False] * rows
        skipped_rows = tuple(i for i, ok in enumerate(finite_rows) if not ok)
        if skipped_rows:
            warnings.warn(
                f"non-finite guidance (loss={loss_value}) in rows {list(skipped_rows)}; "
                "those latents were not moved at this step",
                NonFiniteGuidanceWarning,
                stacklevel=2,
            )
        sample_norms = list(row_norms) if self.per_sample else [grad_norm]
        result = GuidanceResult(
            latents.detach(), loss_value, losses, grad_norm,
            skipped=len(skipped_rows) == rows, skipped_rows=skipped_rows,
            sample_losses=sample_losses if self.per_sample else [losses], sample_grad_norms=sample_norms,
        )
        if result.skipped:
            return result
        finite = torch.tensor(finite_rows, device=grad.device)
        factors = torch.ones(rows, dtype=grad.dtype, device=grad.device)
        moving = list(finite_rows)
        if steer is not None:
            asked = steer(result)
            if asked is not None:
                asked_factors = self._factors(asked, rows)
                factors = torch.tensor(asked_factors).to(device=grad.device, dtype=grad.dtype)  # the default dtype first
                cast = _rounded(asked_factors, grad.dtype)  # as the tensor holds them, read without a device sync
                result.move_scale = cast[0] if rows == 1 or not self.per_sample else tuple(cast)
                moving = [ok and f != 0 for ok, f in zip(finite_rows, cast, strict=True)]
        factors = torch.where(finite, factors, torch.zeros_like(factors))
        if not any(moving):
            return result
        grad = torch.where(finite.view(-1, *([1] * (grad.ndim - 1))), grad, torch.zeros_like(grad))
        if self.max_grad_norm is not None:
            clip = (self.max_grad_norm / norms.nan_to_num(0.0).clamp_min(1e-12)).clamp(max=1.0)
            grad = grad * clip.view(-1, *([1] * (grad.ndim - 1)))
        move = (self.step_size * factors).view(-1, *([1] * (grad.ndim - 1)))
        result.latents = (x - move * grad).detach()
        return result

    def _gradient(self, sums: dict[int, Tensor], x: Tensor) -> Tensor:
        """The latent gradient: plain terms as they are, balanced terms rescaled per row."""
        plain = sums.get(-1)
        if len(sums) == 1 and plain is not None:
            (grad,) = torch.autograd.grad(plain, x)
            return grad
        keys = list(sums)
        grads = {}
        for position, key in enumerate(keys):
            value = sums[key]
            if value.requires_grad:
                (grads[key],) = torch.autograd.grad(value, x, retain_graph=position < len(keys) - 1)
            else:
                grads[key] = torch.zeros_like(x)
        grad = grads.pop(-1, torch.zeros_like(x))
        reference = grad.flatten(1).norm(dim=1)
        for key, part in grads.items():
            term = self.terms[key]
            assert isinstance(term, GuidanceTerm)
            weight = float(term.weight)
            scale = weight * reference / part.flatten(1).norm(dim=1).clamp_min(1e-12)
            grad = grad + part * scale.view(-1, *([1] * (part.ndim - 1)))
        return grad

    def _factors(self, asked: Any, rows: int) -> list[float]:
        if isinstance(asked, Sequence) or (isinstance(asked, Tensor) and asked.ndim > 0):
            values = [float(a) for a in asked]
        else:  # a Python, NumPy or 0-d tensor scalar
            values = [float(asked)] * rows
        if len(values) != rows:
            raise ValueError(f"a steer function returned {len(values)} factors for {rows} rows")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"a steer function returned a non-finite factor {asked!r}")
        if len(set(values)) > 1 and not self.per_sample:
            raise ValueError("per-row steer factors need GuidedScheduler(per_sample=True)")
        return values

    def guided_step(
        self,
        latents: Float[Tensor, "b c h w"],
        timestep: int | Shaped[Tensor, "*t"],
        forward_fn: GuidanceForward,
        noise_fn: NoiseForward,
        steer: Steer | None = None,
        post_step: PostStep | None = None,
        **step_kwargs: Any,
    ) -> GuidedStepOutput:
        """[`guide`][zerocon.guidance.GuidedScheduler.guide], then the wrapped scheduler's ``step`` at the moved latent.

        Args:
            latents: ``x_t``.
            timestep: the current timestep.
            forward_fn: differentiable forward returning [`GuidanceInputs`][zerocon.guidance.GuidanceInputs].
            noise_fn: ``noise_fn(x) -> model_output`` for the scheduler step (run under no-grad).
            steer: passed to [`guide`][zerocon.guidance.GuidedScheduler.guide].
            post_step: ``post_step(prev_sample) -> prev_sample``, applied (under no-grad) to
                the scheduler's output, e.g. [`LocalBlend`][zerocon.guidance.LocalBlend].
            **step_kwargs: passed to the scheduler's ``step`` (e.g. ``eta``, ``generator``).
        """
        guidance = self.guide(latents, forward_fn, steer)
        with torch.no_grad():
            model_output = noise_fn(guidance.latents)
            out = self.scheduler.step(model_output, timestep, guidance.latents, **step_kwargs)
        prev = out.prev_sample if hasattr(out, "prev_sample") else out[0]
        if post_step is not None:
            with torch.no_grad():
                prev = post_step(prev)
            if prev.shape != latents.shape:
                raise ValueError(f"post_step returned shape {tuple(prev.shape)}, expected {tuple(latents.shape)}")
        return GuidedStepOutput(prev_sample=prev, guidance=guidance, scheduler_output=out)

    def extra_repr(self) -> str:
        return (
            f"scheduler={type(self.scheduler).__name__}, step_size={self.step_size}, "
            f"max_grad_norm={self.max_grad_norm}, per_sample={self.per_sample}"
        )


def _rounded(values: list[float], dtype: torch.dtype) -> list[float]:
    """``values`` as ``torch.tensor(values).to(dtype)`` holds them (built in the default dtype,
    then cast), computed without reading a tensor for the float32 and float64 cases."""
    default = torch.get_default_dtype()
    if default not in (torch.float32, torch.float64) or dtype not in (torch.float32, torch.float64):
        return torch.tensor(values).to(dtype).tolist()  # a CPU tensor made from Python numbers: no device sync
    narrowest = torch.float32 if torch.float32 in (default, dtype) else torch.float64
    return list(array("f", values)) if narrowest == torch.float32 else [float(v) for v in values]
