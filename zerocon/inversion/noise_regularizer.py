"""pix2pix-zero's regularisation of a predicted noise map (auto-correlation + KL)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.losses import kl_divergence_grad
from zerocon.losses._checks import at_least_float32, check_floating
from zerocon.losses.noise_regularization import pyramid_grad


class NoiseRegularizer(nn.Module):
    """Pushes a predicted noise map toward white N(0, 1) noise by gradient steps on ε itself.

    Each of ``num_iterations`` iterations takes ``num_rolls`` auto-correlation steps
    (``ε ← ε − λ_ac·∇L_ac / num_rolls``, a fresh random roll each) and one KL step
    (``ε ← ε − λ_kl·∇L_KL``); docs/method.md §2.

    Args:
        lambda_ac: weight of the auto-correlation steps (default 20.0; 0 disables them).
        lambda_kl: weight of the KL steps (default 20.0; 0 disables them).
        num_iterations: regularisation iterations per call (default 5).
        num_rolls: auto-correlation steps per iteration (default 5).

    Shape:
        - noise: ``(b, c, h, w)`` → same shape.

    Raises:
        ValueError: for negative weights or counts.

    Examples:
        >>> reg = NoiseRegularizer()
        >>> eps = torch.randn(1, 4, 16, 16)
        >>> reg(eps, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 4, 16, 16])
    """

    def __init__(
        self,
        lambda_ac: float = 20.0,
        lambda_kl: float = 20.0,
        num_iterations: int = 5,
        num_rolls: int = 5,
    ) -> None:
        super().__init__()
        if lambda_ac < 0 or lambda_kl < 0:
            raise ValueError(f"lambda_ac and lambda_kl must be >= 0, got {lambda_ac}, {lambda_kl}")
        if num_iterations < 0 or num_rolls < 1:
            raise ValueError(
                f"num_iterations must be >= 0 and num_rolls >= 1, got {num_iterations}, {num_rolls}"
            )
        self.lambda_ac = lambda_ac
        self.lambda_kl = lambda_kl
        self.num_iterations = num_iterations
        self.num_rolls = num_rolls

    @property
    def enabled(self) -> bool:
        return self.num_iterations > 0 and (self.lambda_ac > 0 or self.lambda_kl > 0)

    def forward(
        self,
        noise: Float[Tensor, "b c h w"],
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
    ) -> Float[Tensor, "b c h w"]:
        """Regularise ``noise``; with one generator per row, each row alone.

        Args:
            noise: predicted noise maps.
            generator: the rolls' randomness: one generator for the whole batch, or a sequence
                of one per row (each row is then regularised exactly as it would be alone,
                with its own KL statistics and rolls).

        Raises:
            ValueError: for a noise that is not 4-D, or a generator list of the wrong length.
        """
        if noise.ndim != 4:
            raise ValueError(f"noise must be (b, c, h, w), got shape {tuple(noise.shape)}")
        if generator is not None and not isinstance(generator, torch.Generator):
            generators = list(generator)
            if len(generators) != noise.shape[0]:
                raise ValueError(f"{len(generators)} generators for {noise.shape[0]} noise maps")
            return torch.cat([self._regularise(noise[i : i + 1], g) for i, g in enumerate(generators)])
        return self._regularise(noise, generator)

    def _regularise(self, noise: Tensor, generator: torch.Generator | None) -> Tensor:
        # Closed-form gradients (no autograd graph per roll): the same steps as autograd on
        # auto_correlation_loss / kl_divergence_loss, with the same random shifts, computed in
        # float32 on (b·c, h, w) maps checked once here.
        check_floating(noise, "noise")
        b, c, h, w = noise.shape
        eps = at_least_float32(noise.detach()).reshape(b * c, h, w)
        ac_rate = self.lambda_ac / self.num_rolls
        for _ in range(self.num_iterations):
            if self.lambda_ac > 0:
                for _ in range(self.num_rolls):
                    eps = eps.sub(pyramid_grad(eps, generator), alpha=ac_rate)
            if self.lambda_kl > 0:
                eps = eps.sub(kl_divergence_grad(eps), alpha=self.lambda_kl)
        return eps.reshape(b, c, h, w).to(noise.dtype)

    def extra_repr(self) -> str:
        return (
            f"lambda_ac={self.lambda_ac}, lambda_kl={self.lambda_kl}, "
            f"num_iterations={self.num_iterations}, num_rolls={self.num_rolls}"
        )
