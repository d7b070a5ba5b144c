"""Which diffusers pipelines zerocon can edit with, checked before anything is loaded.

zerocon edits with a latent UNet conditioned by cross-attention on CLIP text embeddings (Stable
Diffusion 1.x, 2.x and XL: a ``UNet2DConditionModel`` with 4 input channels, an
``AutoencoderKL``, and a first text encoder with its tokenizer; SDXL adds a second), and with
Stable Diffusion 3 / 3.5 (an ``SD3Transformer2DModel``; ``ZeroConSD3Pipeline``) and FLUX (a
``FluxTransformer2DModel``; ``ZeroConFluxPipeline``). Anything else (inpainting or depth UNets
with extra input channels, SDXL's refiner, which has only the second encoder) is refused with one
message that says what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Components every supported pipeline has.
REQUIRED = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")


class UnsupportedPipelineError(ValueError):
    """A pipeline or model folder zerocon cannot edit with (the message says why)."""


def _missing(components: Mapping[str, Any]) -> list[str]:
    return [name for name in REQUIRED if components.get(name) is None]


def check_supported(
    class_name: str,
    components: Mapping[str, Any],
    unet_class: str | None,
    unet_in_channels: int | None,
    text_encoder_2: bool,
    tokenizer_2: bool,
) -> None:
    """Refuse a pipeline that zerocon cannot edit with.

    Args:
        class_name: the pipeline's class name (for the message).
        components: component name → anything non-``None`` when the pipeline has it.
        unet_class: the denoiser's class name, if known.
        unet_in_channels: the UNet's input channels, if known.
        text_encoder_2: whether a second text encoder is there.
        tokenizer_2: whether a second tokenizer is there.

    Raises:
        UnsupportedPipelineError: naming the class and what does not fit.

    Examples:
        >>> check_supported("StableDiffusionPipeline", dict.fromkeys(REQUIRED, 1), "UNet2DConditionModel", 4,
        ...                 False, False)
        >>> check_supported("HunyuanDiTPipeline", {"vae": 1, "transformer": 1}, None, None, True, True)
        Traceback (most recent call last):
        ...
        zerocon.pipelines.supported_models.UnsupportedPipelineError: HunyuanDiTPipeline is not supported: zerocon edits with Stable Diffusion 1.x, 2.x and XL pipelines (a UNet2DConditionModel with a CLIP text encoder), Stable Diffusion 3 / 3.5 and FLUX; this one has no unet, text_encoder, tokenizer, scheduler
    """
    prefix = (f"{class_name} is not supported: zerocon edits with Stable Diffusion 1.x, 2.x and XL pipelines "
              "(a UNet2DConditionModel with a CLIP text encoder), Stable Diffusion 3 / 3.5 and FLUX")
    missing = _missing(components)
    if missing:
        raise UnsupportedPipelineError(f"{prefix}; this one has no {', '.join(missing)}")
    if unet_class is not None and unet_class != "UNet2DConditionModel":
        raise UnsupportedPipelineError(f"{prefix}; its unet is a {unet_class}")
    if unet_in_channels is not None and unet_in_channels != 4:
        raise UnsupportedPipelineError(
            f"{prefix}; its UNet takes {unet_in_channels} input channels (an inpainting, depth or "
            "instruction model), not the 4 of a text-to-image latent"
        )
    if text_encoder_2 != tokenizer_2:
        raise UnsupportedPipelineError(f"{class_name}: a second text encoder needs its tokenizer (text_encoder_2 and "
                                       "tokenizer_2 come together)")


#: Components an SD3 and a FLUX pipeline must have (SD3's T5 is optional), by transformer class.
TRANSFORMER_REQUIRED = {
    "SD3Transformer2DModel": ("transformer", "scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2",
                              "tokenizer_2"),
    "FluxTransformer2DModel": ("transformer", "scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2",
                               "tokenizer_2"),
}


def _model_index(folder: Path) -> dict[str, Any]:
    index_path = folder / "model_index.json"
    return json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}


def folder_transformer(folder: Path) -> str | None:
    """The class name of a diffusers folder's ``transformer`` (``None`` without one, or without ``model_index.json``).

    Examples:
        >>> folder_transformer(Path("no-such-folder")) is None
        True
    """
    transformer = _model_index(folder).get("transformer")
    return str(transformer[1]) if isinstance(transformer, list) and len(transformer) == 2 else None


def pipeline_transformer(pipeline: Any) -> str | None:
    """The class name of a loaded pipeline's ``transformer`` component (``None`` without one).

    Examples:
        >>> pipeline_transformer(object()) is None
        True
    """
    transformer = dict(getattr(pipeline, "components", {}) or {}).get("transformer")
    return type(transformer).__name__ if transformer is not None else None


def check_transformer_folder(folder: Path) -> None:
    """Refuse an SD3 or FLUX folder that lacks a component, before any weight is loaded.

    Raises:
        UnsupportedPipelineError: naming the class and the missing components.

    Examples:
        >>> check_transformer_folder(Path("no-such-folder"))
    """
    index = _model_index(folder)
    present = {k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None}
    missing = [name for name in TRANSFORMER_REQUIRED.get(str(folder_transformer(folder)), ()) if name not in present]
    if missing:
        raise UnsupportedPipelineError(
            f"{index.get('_class_name', 'this pipeline')} cannot be edited: its folder has no {', '.join(missing)}"
        )


def check_folder(folder: Path) -> None:
    """``check_supported`` for a diffusers folder, from its ``model_index.json`` and ``unet/config.json``.

    A folder without ``model_index.json`` is left to diffusers (which names what is missing).

    Raises:
        UnsupportedPipelineError: see ``check_supported``.
    """
    if not (folder / "model_index.json").is_file():
        return
    index = _model_index(folder)
    components = {k: v for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None}
    unet = components.get("unet")
    in_channels = None
    unet_config = folder / "unet" / "config.json"
    if unet_config.is_file():
        in_channels = json.loads(unet_config.read_text(encoding="utf-8")).get("in_channels")
    check_supported(
        str(index.get("_class_name", "this pipeline")),
        components,
        unet[1] if unet else None,
        in_channels,
        "text_encoder_2" in components,
        "tokenizer_2" in components,
    )


def check_pipeline(pipeline: Any) -> None:
    """``check_supported`` for a loaded diffusers pipeline (``from_pipe``).

    Raises:
        UnsupportedPipelineError: see ``check_supported``.
    """
    components = dict(getattr(pipeline, "components", {}) or {})
    unet = components.get("unet")
    check_supported(
        type(pipeline).__name__,
        components,
        type(unet).__name__ if unet is not None else None,
        getattr(getattr(unet, "config", None), "in_channels", None),
        components.get("text_encoder_2") is not None,
        components.get("tokenizer_2") is not None,
    )
