"""``RuntimeOptions``: how an edit is run (memory, batching), never what it computes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from zerocon.editing import settings_checks as check


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs that change speed and memory but not the result (up to float rounding).

    They are kept apart from [`EditSettings`][zerocon.editing.EditSettings]: they are recorded
    with a result but are not part of its identity (a resumed evaluation with another batch size
    reuses the rows it has).

    Args:
        batch_size: at most this many images of one size go through each model call together
            (``None``: all images of one size). Each image's result is its single-image result
            up to float rounding; memory grows with the batch.
        fuse_unet_calls: run a step's classifier-free-guidance rows and the next step's
            reference rows in one model call (same results up to float rounding). Off by
            default: whether it saves time depends on the model's size (the performance guide
            has the measurements).
        gradient_checkpointing: recompute the model's block activations during the guidance
            backward instead of keeping them (less memory, one more partial forward per step).

    Shape:
        No tensors.

    Raises:
        ValueError: for a batch size below 1 or a non-boolean switch.

    Examples:
        >>> RuntimeOptions(batch_size=2).fuse_unet_calls
        False
        >>> RuntimeOptions.from_values({"batch_size": 4, "lambda_xa": 1.0})
        RuntimeOptions(batch_size=4, fuse_unet_calls=False, gradient_checkpointing=False)
    """

    batch_size: int | None = None
    fuse_unet_calls: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_size", check.optional_integer("batch_size", self.batch_size, 1))
        check.flag("fuse_unet_calls", self.fuse_unet_calls)
        check.flag("gradient_checkpointing", self.gradient_checkpointing)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (also the pipeline's keyword arguments)."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> RuntimeOptions:
        """The options among ``values`` (other keys are ignored: a v0.1 record mixed them with settings)."""
        return cls(**{name: values[name] for name in cls.names() if name in values})

    def replace(self, **changes: Any) -> RuntimeOptions:
        """A copy with ``changes`` applied (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dataclasses.asdict(self)
