"""The shapes world: a seeded renderer of objects on plain or textured backgrounds with exact
ground truth, an analytic checker, and the small text-to-image model trained on it that ships
with zerocon (the embedded default).
"""

from zerocon.shapes.checker import ShapeReading, read_shape
from zerocon.shapes.edit_suite import EDIT_TYPES, EditCase, edit_case, edit_cases
from zerocon.shapes.embedded import (
    WEIGHTS_DIR,
    embedded_clip_path,
    embedded_model_path,
    load_embedded_clip,
    load_embedded_pipeline,
)
from zerocon.shapes.palette import (
    BACKGROUND_COLORS,
    OBJECT_COLORS,
    PATTERN_TONES,
    PATTERNS,
    SHAPES,
    CaptionParts,
    all_captions,
    caption_for,
    parse_caption,
)
from zerocon.shapes.render import (
    IMAGE_SIZE,
    RenderedShape,
    ShapeSpec,
    images_to_tensor,
    render,
    render_random,
    sample_spec,
    tensor_to_images,
)
from zerocon.shapes.sentences import ShapesWorldSentences
from zerocon.shapes.ssim import masked_ssim, ssim_map
from zerocon.shapes.structure_score import StructureScore, score_edit
from zerocon.shapes.texture import Texture
from zerocon.shapes.texture_reader import TextureReading, read_texture
from zerocon.shapes.vocabulary import SENTENCE_TEMPLATES, sentence_bank, world_words

__all__ = [
    "BACKGROUND_COLORS",
    "EDIT_TYPES",
    "IMAGE_SIZE",
    "OBJECT_COLORS",
    "PATTERNS",
    "PATTERN_TONES",
    "SENTENCE_TEMPLATES",
    "SHAPES",
    "WEIGHTS_DIR",
    "CaptionParts",
    "EditCase",
    "RenderedShape",
    "ShapeReading",
    "ShapeSpec",
    "ShapesWorldSentences",
    "StructureScore",
    "Texture",
    "TextureReading",
    "all_captions",
    "caption_for",
    "edit_case",
    "edit_cases",
    "embedded_clip_path",
    "embedded_model_path",
    "images_to_tensor",
    "load_embedded_clip",
    "load_embedded_pipeline",
    "masked_ssim",
    "parse_caption",
    "read_shape",
    "read_texture",
    "render",
    "render_random",
    "sample_spec",
    "score_edit",
    "sentence_bank",
    "ssim_map",
    "tensor_to_images",
    "world_words",
]
