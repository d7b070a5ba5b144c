"""Loading the pipeline and sentence sources for the command line, with one-line errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from zerocon.cli.errors import CliError
from zerocon.direction import FileSentences, SentenceSource, TemplateSentences
from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import ShapesWorldSentences

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_device(spec: str) -> torch.device:
    """Parse a ``--device`` value and check that a tensor can be placed there.

    Args:
        spec: a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...).

    Returns:
        The device.

    Raises:
        CliError: for a string torch does not know or a device this machine does not have.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError, TypeError) as error:
        raise CliError(f"--device {spec!r} is not a torch device: {_first_line(error)}") from error
    if device.type == "meta":
        raise CliError("--device 'meta' holds no data; pick a device that can run the model")
    try:
        torch.empty(0, device=device)
    except Exception as error:  # AssertionError (not compiled with CUDA), RuntimeError, ...
        raise CliError(
            f"--device {spec!r} is not available on this machine: {_first_line(error)}"
        ) from error
    return device


def device_for_rank(spec: str, environ: Mapping[str, str] | None = None) -> str:
    """The device of this process: ``cuda`` becomes ``cuda:$LOCAL_RANK`` under torchrun/accelerate.

    An explicit index (``cuda:1``) and other devices are kept as given.

    Examples:
        >>> device_for_rank("cuda", {"LOCAL_RANK": "3"}), device_for_rank("cuda", {})
        ('cuda:3', 'cuda')
        >>> device_for_rank("cpu", {"LOCAL_RANK": "3"})
        'cpu'
    """
    env = os.environ if environ is None else environ
    local = env.get("LOCAL_RANK")
    if spec != "cuda" or local is None:
        return spec
    if not local.isdigit():
        raise CliError(f"LOCAL_RANK must be a whole number, got {local!r}")
    return f"cuda:{int(local)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def model_source(model: str | None) -> str | Path:
    """Where ``--model`` points: the embedded model's folder, a local folder, or a hub id.

    Raises:
        CliError: for a path that does not exist (nothing is loaded).

    Examples:
        >>> model_source("org/name")
        'org/name'
    """
    from zerocon.shapes import embedded_model_path

    if model is None:
        try:
            return embedded_model_path()
        except FileNotFoundError as error:
            raise CliError(str(error)) from error
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CliError(f"model path {model!r} is a file; give a model folder (diffusers layout) or a hub id")
        return path
    if _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        return model
    raise CliError(f"model path {model!r} does not exist")


def check_sources(model: str | None, device: str, sentences: str | None) -> None:
    """Check ``--model``, ``--device`` and ``--sentences`` without loading anything.

    For checking a run's whole-run inputs before any folder is created or file written.

    Raises:
        CliError: for an unknown or missing device, a model path or sentence file that does
            not exist.
    """
    resolve_device(device)
    model_source(model)
    named = sentences is None or sentences in ("templates", "shapes") or sentences.startswith("lm:")
    if not named and not Path(str(sentences)).expanduser().exists():
        raise CliError(f"sentence file or folder {sentences!r} does not exist")


def load_pipeline(model: str | None, device: str = "cpu") -> ZeroConPipeline:
    """Load the editor from a folder, a hub id, or the embedded model (``None``).

    Args:
        model: a diffusers folder, a hub id (``"org/name"``), or ``None`` for the embedded
            shapes model.
        device: where to run.

    Returns:
        The pipeline, progress bars of diffusers off.

    Raises:
        CliError: for a path that does not exist, a hub id that cannot be fetched, a
            folder that is not a Stable Diffusion pipeline, or a device that is unknown or
            not available (checked before the model is loaded).
    """
    target = resolve_device(device)
    source = model_source(model)
    try:
        pipe = ZeroConPipeline.from_pretrained(source)
    except Exception as error:  # diffusers raises many kinds for bad folders / no network
        first = _first_line(error)
        if isinstance(source, str):
            raise CliError(
                f"cannot load model {source!r} from the Hugging Face Hub (no network or unknown "
                f"id?): {first}"
            ) from error
        raise CliError(f"cannot load model from {str(source)!r}: {first}") from error
    pipe.set_progress_bar_config(disable=True)
    try:
        return pipe.to(target)
    except Exception as error:  # e.g. out of memory on the device
        raise CliError(f"cannot move the model to {device!r}: {_first_line(error)}") from error


def sentence_source(spec: str | None, seed: int = 0) -> SentenceSource | None:
    """Build a sentence source from a command-line value.

    Args:
        spec: ``None`` (the pipeline's default), ``"templates"``, ``"shapes"``,
            ``"lm:MODEL"`` (a local causal LM folder or hub id) or a file/folder path.
        seed: seeds the language model's sampling.

    Returns:
        The source, or ``None`` for the pipeline's default.

    Raises:
        CliError: for a path that does not exist or a language model that cannot be loaded.
    """
    if spec is None:
        return None
    if spec == "templates":
        return TemplateSentences()
    if spec == "shapes":
        return ShapesWorldSentences()
    if spec.startswith("lm:"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from zerocon.direction import LanguageModelSentences

        name = spec[3:]
        try:
            lm = AutoModelForCausalLM.from_pretrained(name)
            tok = AutoTokenizer.from_pretrained(name)
        except Exception as error:
            raise CliError(
                f"cannot load language model {name!r}: {_first_line(error)}"
            ) from error
        return LanguageModelSentences(lm, tok, generator=torch.Generator().manual_seed(seed))
    try:
        return FileSentences(spec)
    except FileNotFoundError as error:
        raise CliError(str(error)) from error
