"""Counting UNet evaluations and timing the phases of an edit."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn


class UNetEvalCounter:
    """Count UNet evaluations per phase through a forward pre-hook.

    One evaluation is one latent through the UNet: a forward on a batch of ``n`` latents
    (e.g. a classifier-free-guidance batch ``[uncond, cond]``, ``n = 2``) counts ``n``.
    A forward whose backward is taken (guidance) counts once, like any other forward.

    Args:
        unet: the model to watch (an ``nn.Module`` called with the latent first).

    Examples:
        >>> import torch
        >>> from zerocon.testing import tiny_unet
        >>> unet = tiny_unet()
        >>> counter = UNetEvalCounter(unet)
        >>> with counter.watching(), counter.phase("demo"), torch.no_grad():
        ...     _ = unet(torch.randn(2, 4, 8, 8), 10, torch.randn(2, 16, 32))
        >>> dict(counter.counts)
        {'demo': 2}
    """

    def __init__(self, unet: nn.Module) -> None:
        self.unet = unet
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.current = "other"

    def _hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        sample = args[0] if args else kwargs.get("sample")
        self.counts[self.current] += int(sample.shape[0]) if isinstance(sample, Tensor) else 1

    @contextmanager
    def watching(self) -> Iterator[UNetEvalCounter]:
        """Count while inside the block (the hook is removed on exit)."""
        handle = self.unet.register_forward_pre_hook(self._hook, with_kwargs=True)
        try:
            yield self
        finally:
            handle.remove()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute the evaluations inside the block to ``name``."""
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    def move(self, count: int, source: str, target: str) -> None:
        """Attribute ``count`` evaluations counted under ``source`` to ``target`` instead.

        For one forward that served two phases (e.g. a fused call), counted under one of them.

        Raises:
            ValueError: if ``source`` has fewer than ``count`` evaluations.
        """
        if self.counts[source] < count:
            raise ValueError(f"cannot move {count} evaluations: {source!r} has {self.counts[source]}")
        self.counts[source] -= count
        self.counts[target] += count

    @property
    def total(self) -> int:
        """All evaluations counted so far."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """Counts per phase plus ``"total"``."""
        return {**dict(self.counts), "total": self.total}


class PhaseTimer:
    """Wall-clock seconds per named phase (phases may repeat; times add up).

    Examples:
        >>> timer = PhaseTimer()
        >>> with timer("work"):
        ...     pass
        >>> list(timer.as_dict())
        ['work', 'total']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        """Seconds per phase plus ``"total"`` (their sum)."""
        return {**self.seconds, "total": sum(self.seconds.values())}
