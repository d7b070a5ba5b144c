"""``CallbackList``: runs several callbacks in order and names the hook that failed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zerocon.editing.callback import Callback, GuidanceEvent


def _add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``; on Python 3.10, which lacks it, the same ``__notes__`` list."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # pragma: no cover - Python 3.10
        error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]


class CallbackList:
    """Dispatch each hook to every callback, in order.

    Args:
        callbacks: [`Callback`][zerocon.editing.Callback] instances.

    Shape:
        No tensors.

    Raises:
        TypeError: if an entry is not a [`Callback`][zerocon.editing.Callback].

    Examples:
        >>> class Boom(Callback):
        ...     def on_edit_start(self, editor, plan, num_images):
        ...         raise ValueError("no")
        >>> try:
        ...     CallbackList([Boom()]).fire("on_edit_start", None, None, 1)
        ... except ValueError as error:
        ...     print(error.__notes__[0])
        raised in callback Boom.on_edit_start
    """

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(callback).__name__}")

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def fire(self, hook: str, *args: Any) -> list[Any]:
        """Call ``hook`` on every callback; returns their return values."""
        results = []
        for callback in self.callbacks:
            try:
                results.append(getattr(callback, hook)(*args))
            except Exception as error:
                _add_note(error, f"raised in callback {type(callback).__name__}.{hook}")
                raise
        return results

    def steer(self, editor: Any, state: Any, event: GuidanceEvent) -> float | None:
        """``on_guidance`` of every callback; the product of the factors they returned."""
        factor: float | None = None
        for value in self.fire("on_guidance", editor, state, event):
            if value is not None:
                factor = float(value) if factor is None else factor * float(value)
        return factor
