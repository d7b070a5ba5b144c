"""``EditPlan``: everything an edit call resolves once, before any model runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zerocon.editing.runtime_options import RuntimeOptions
from zerocon.editing.settings import EditSettings
from zerocon.guidance import GuidanceTerm

if TYPE_CHECKING:
    from zerocon.editing.methods import EditMethod, RecordedLayers


@dataclass(frozen=True)
class EditPlan:
    """Everything resolved once per call, before any model runs.

    Attributes:
        settings: the validated settings, with the layer patterns resolved for the model.
        method: the method strategy.
        layers: the recorded layers, resolved on the model.
        terms: the method's guidance terms.
        step_size: the guidance step size η actually used.
        runtime: how the call runs (batching, fused calls, checkpointing).
        flow_matching: the model predicts a flow-matching velocity (SD3, FLUX).

    Shape:
        No tensors.

    Examples:
        >>> from zerocon.editing import Editor
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> editor = Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler)
        >>> plan = editor.plan(EditSettings(method="pix2pix-zero"))
        >>> plan.step_size, [type(t).__name__ for t in plan.terms]
        (0.1, ['CrossAttentionGuidance'])
    """

    settings: EditSettings
    method: EditMethod
    layers: RecordedLayers
    terms: list[GuidanceTerm]
    step_size: float
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    flow_matching: bool = False
