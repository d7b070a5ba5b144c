"""Splitting inputs across processes started by ``torchrun`` or ``accelerate launch``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from zerocon.cli.errors import CliError

T = TypeVar("T")


def process_rank(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """This process's ``(rank, world_size)``.

    Without ``environ``, accelerate's ``PartialState`` answers: it knows torchrun,
    ``accelerate launch`` and MPI launchers alike (a multi-process run on a CPU joins a gloo
    process group; nothing is ever sent through it). With ``environ``, without accelerate, or
    without a launcher's rendezvous address (``RANK`` and ``WORLD_SIZE`` set by hand),
    ``RANK`` and ``WORLD_SIZE`` are read from the environment (default 0, 1).

    Args:
        environ: an environment to read instead of asking accelerate.

    Returns:
        ``(rank, world_size)``.

    Raises:
        CliError: for non-integer values or a rank outside ``[0, world_size)``.

    Examples:
        >>> process_rank({"RANK": "1", "WORLD_SIZE": "2"})
        (1, 2)
    """
    if environ is None:
        try:
            from accelerate import PartialState
        except ImportError:  # accelerate is a dependency; a bare environment still works
            environ = os.environ
        if environ is None and not _launched():
            environ = os.environ  # no launcher: RANK / WORLD_SIZE set by hand, or nothing
        if environ is None:
            try:
                state = PartialState(cpu=not _cuda_launch())
            except Exception as error:  # a half-set launcher environment
                raise CliError(f"cannot read this process's rank from its launcher: {error}") from error
            return int(state.process_index), int(state.num_processes)
    env = environ
    try:
        rank = int(env.get("RANK", "0"))
        world = int(env.get("WORLD_SIZE", "1"))
    except ValueError as error:
        raise CliError(f"RANK and WORLD_SIZE must be integers: {error}") from error
    if world < 1 or not 0 <= rank < world:
        raise CliError(f"invalid RANK={rank} for WORLD_SIZE={world}")
    return rank, world


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items of process ``rank``: every ``world_size``-th item starting at ``rank``.

    Over all ranks, every item is taken exactly once (no duplicates, no gaps).

    Args:
        items: the full, identically ordered list every process sees.
        rank: this process's rank.
        world_size: the number of processes.

    Returns:
        This process's share.

    Examples:
        >>> shard(list(range(5)), 1, 2)
        [1, 3]
    """
    return list(items[rank::world_size])


def _cuda_launch() -> bool:
    import torch

    return torch.cuda.is_available()


def _launched() -> bool:
    """Whether a launcher set up a rendezvous (torchrun and accelerate set ``MASTER_ADDR``; MPI its own)."""
    return "MASTER_ADDR" in os.environ or any(
        key in os.environ for key in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
    )
