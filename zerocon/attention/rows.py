"""Batch-row selection for attention records, aware of diffusers' head layout."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from einops import rearrange
from jaxtyping import Shaped
from torch import Tensor

BatchRows = Sequence[int] | slice | None
"""Which batch rows to keep: indices (negative allowed), a ``slice``, or ``None`` for all."""


def normalize_batch_rows(rows: BatchRows) -> tuple[int, ...] | slice | None:
    """Validate a ``batch_rows`` argument and freeze it.

    Args:
        rows: a sequence of integer indices, a ``slice``, or ``None``.

    Returns:
        A tuple of ints, the same ``slice``, or ``None``.

    Raises:
        TypeError: if ``rows`` is neither ``None``, a ``slice`` nor a sequence of integers.
        ValueError: if the sequence is empty or repeats a row.

    Examples:
        >>> normalize_batch_rows([1])
        (1,)
    """
    if rows is None or isinstance(rows, slice):
        return rows
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise TypeError(
            f"batch_rows must be None, a slice or a sequence of ints, got {type(rows).__name__}"
        )
    indices: list[int] = []
    for row in rows:
        if isinstance(row, bool):
            raise TypeError(f"batch_rows must hold ints, got {row!r}")
        try:
            indices.append(operator.index(row))
        except TypeError as err:
            raise TypeError(f"batch_rows must hold ints, got {row!r}") from err
    if not indices:
        raise ValueError("batch_rows must not be empty; use None to record every row")
    if len(set(indices)) != len(indices):
        raise ValueError(f"batch_rows must not repeat a row, got {tuple(indices)}")
    return tuple(indices)


def take_batch_rows(
    tensor: Shaped[Tensor, "bg ..."],
    rows: tuple[int, ...] | slice | None,
    group: int = 1,
) -> Shaped[Tensor, "rg ..."]:
    """Keep some batch rows of a tensor whose first axis is ``(batch · group)``, batch-major.

    diffusers' ``Attention.head_to_batch_dim`` lays heads out as ``(batch heads)``: row
    ``b * heads + h`` holds batch item ``b``, head ``h``. With ``group = heads`` this keeps all
    heads of each chosen batch item, in the same layout.

    Args:
        tensor: a tensor whose first axis has size ``batch * group``.
        rows: tuple of batch indices (negative allowed), a ``slice``, or ``None`` for all.
        group: how many consecutive first-axis entries belong to one batch item.

    Shape:
        - tensor: ``(batch·group, *rest)``
        - output: ``(rows·group, *rest)``

    Returns:
        The selected rows (a view or an index-select; the autograd graph is kept).

    Raises:
        ValueError: if ``group`` does not divide the first axis, a row is out of range, or
            the selection is empty.

    Examples:
        >>> x = torch.arange(6).reshape(6, 1)  # batch 3, 2 heads
        >>> take_batch_rows(x, (2,), group=2).flatten().tolist()
        [4, 5]
    """
    if rows is None:
        return tensor
    if group <= 0 or tensor.shape[0] % group != 0:
        raise ValueError(
            f"first axis of size {tensor.shape[0]} is not a multiple of the group size {group}"
        )
    batch = tensor.shape[0] // group
    grouped = rearrange(tensor, "(b g) ... -> b g ...", g=group)
    if isinstance(rows, slice):
        picked = grouped[rows]
    else:
        bad = [row for row in rows if not -batch <= row < batch]
        if bad:
            raise ValueError(f"batch_rows {bad} out of range for a batch of {batch}")
        index = torch.tensor([row % batch for row in rows], device=tensor.device)
        picked = grouped.index_select(0, index)
    if picked.shape[0] == 0:
        raise ValueError(f"batch_rows {rows} selects no row of a batch of {batch}")
    return rearrange(picked, "b g ... -> (b g) ...")
