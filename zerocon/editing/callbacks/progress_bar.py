"""``ProgressBar``: one tqdm bar over every image's edit steps."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from zerocon.editing.callback import Callback


class ProgressBar(Callback):
    """A tqdm bar counting edit steps over all images (the engine adds one by default).

    Args:
        **tqdm_kwargs: passed to ``tqdm`` (e.g. ``leave=False``).

    Shape:
        No tensors.

    Examples:
        >>> ProgressBar(leave=False).tqdm_kwargs
        {'leave': False}
    """

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self.tqdm_kwargs = tqdm_kwargs
        self.bar: Any = None
        self._steps = 0

    def on_edit_start(self, editor: Any, plan: Any, num_images: int) -> None:
        self._steps = plan.settings.num_inference_steps
        self.bar = tqdm(total=num_images * self._steps, desc=plan.method.name, **self.tqdm_kwargs)

    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any, pred_x0: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_image_end(self, editor: Any, state: Any, image: Any) -> None:
        # SDEdit runs fewer steps than planned: count the ones it skipped.
        if self.bar is not None and state.timesteps is not None:
            self.bar.update(self._steps - len(state.timesteps))

    def on_edit_end(self, editor: Any, output: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, editor: Any, error: BaseException) -> None:
        self.on_edit_end(editor, None)
