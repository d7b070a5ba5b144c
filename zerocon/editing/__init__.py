"""The editing engine: Lightning-style separation of loop, method, settings and callbacks.

- [`Editor`][zerocon.editing.Editor] runs the phases (caption → condition → encode → start → denoise → decode)
  for each batch of same-size images; [`EditPlan`][zerocon.editing.EditPlan] is what it resolves once per call;
  [`image_generators`][zerocon.editing.image_generators] gives each image its generator.
- [`EditLoop`][zerocon.editing.EditLoop] runs one batch: the method's ``start``, ``step`` per
  timestep (a typed [`StepContext`][zerocon.editing.StepContext]) and ``end``.
- [`EditFeature`][zerocon.editing.EditFeature] objects (``zerocon.editing.features``: local blend, scene
  handling, tone anchor, self-attention injection, reference from the inversion) hook into the loop;
  a method composes them.
- [`float32_latents`][zerocon.editing.float32_latents] keeps the sampler in float32 around a half-precision UNet.
- [`EditSettings`][zerocon.editing.EditSettings] holds every number, validated once and saved with every result,
  in nested groups (``InversionSettings``, ``DirectionSettings``, ``GuidanceSettings``, ``ReferenceSettings``,
  ``BlendSettings``, ``SceneSettings``); [`RuntimeOptions`][zerocon.editing.RuntimeOptions] holds how a call
  runs.
- [`EditMethod`][zerocon.editing.EditMethod] strategies (``zerocon``, ``pix2pix-zero``, ``ddim``, ``sdedit``) say what
  runs; [`register_method`][zerocon.editing.register_method] adds your own.
- [`Callback`][zerocon.editing.Callback] hooks observe and steer (progress bar, JSONL logger, attention maps, x0
  previews in ``zerocon.editing.callbacks``).
- [`ModelDefaults`][zerocon.editing.ModelDefaults] reads a model folder's ``zerocon.json``.
"""

from zerocon.editing.callback import Callback, GuidanceEvent
from zerocon.editing.callback_list import CallbackList
from zerocon.editing.callbacks import (
    AttentionMapsCallback,
    JsonlLogger,
    LivePreviewCallback,
    ProgressBar,
    StepFunctionCallback,
    X0PreviewCallback,
)
from zerocon.editing.denoiser import Denoiser, UNetDenoiser
from zerocon.editing.direction_builder import DirectionBuilder
from zerocon.editing.edit_loop import EditLoop
from zerocon.editing.edit_plan import EditPlan
from zerocon.editing.edit_scope import SCENE_WORDS, EditScope, edit_scope
from zerocon.editing.editor import Editor, image_generators
from zerocon.editing.feature import EditFeature
from zerocon.editing.features import (
    LocalBlendFeature,
    ReferenceFromInversion,
    SceneHandling,
    SceneRenoise,
    SelfAttentionInjectionFeature,
    ToneAnchor,
    settings_features,
)
from zerocon.editing.flowedit import FlowEditMethod
from zerocon.editing.flux_denoiser import FluxDenoiser
from zerocon.editing.methods import (
    DDIMMethod,
    EditMethod,
    Pix2PixZeroMethod,
    RecordedLayers,
    SDEditMethod,
    ZeroConMethod,
    ZeroConPlusPlusMethod,
    available_methods,
    feature_term,
    get_method,
    register_method,
    tone_terms,
    unregister_method,
)
from zerocon.editing.model_defaults import CONFIG_NAME, ModelDefaults
from zerocon.editing.output import ZeroConPipelineOutput
from zerocon.editing.precision import float32_latents
from zerocon.editing.requests import build_requests
from zerocon.editing.runtime_options import RuntimeOptions
from zerocon.editing.settings import EditSettings
from zerocon.editing.settings_groups import (
    BlendSettings,
    DirectionSettings,
    GuidanceSettings,
    InversionSettings,
    ReferenceSettings,
    SceneSettings,
)
from zerocon.editing.state import EditRequest, ImageState, PixelBlend
from zerocon.editing.step_context import StepContext
from zerocon.editing.token_positions import word_token_positions
from zerocon.editing.transformer_denoiser import SD3Denoiser

__all__ = [
    "CONFIG_NAME",
    "SCENE_WORDS",
    "AttentionMapsCallback",
    "BlendSettings",
    "Callback",
    "CallbackList",
    "DDIMMethod",
    "Denoiser",
    "DirectionBuilder",
    "DirectionSettings",
    "EditFeature",
    "EditLoop",
    "EditMethod",
    "EditPlan",
    "EditRequest",
    "EditScope",
    "EditSettings",
    "Editor",
    "FlowEditMethod",
    "FluxDenoiser",
    "GuidanceEvent",
    "GuidanceSettings",
    "ImageState",
    "InversionSettings",
    "JsonlLogger",
    "LivePreviewCallback",
    "LocalBlendFeature",
    "ModelDefaults",
    "Pix2PixZeroMethod",
    "PixelBlend",
    "ProgressBar",
    "RecordedLayers",
    "ReferenceFromInversion",
    "ReferenceSettings",
    "RuntimeOptions",
    "SD3Denoiser",
    "SDEditMethod",
    "SceneHandling",
    "SceneRenoise",
    "SceneSettings",
    "SelfAttentionInjectionFeature",
    "StepContext",
    "StepFunctionCallback",
    "ToneAnchor",
    "UNetDenoiser",
    "X0PreviewCallback",
    "ZeroConMethod",
    "ZeroConPipelineOutput",
    "ZeroConPlusPlusMethod",
    "available_methods",
    "build_requests",
    "edit_scope",
    "feature_term",
    "float32_latents",
    "get_method",
    "image_generators",
    "register_method",
    "settings_features",
    "tone_terms",
    "unregister_method",
    "word_token_positions",
]
