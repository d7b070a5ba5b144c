"""``zerocon edit``: edit images or folders of images, resumably, one output per input."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from zerocon.cli.errors import CliError
from zerocon.cli.files import (
    check_image,
    ensure_writable_dir,
    find_inputs,
    load_image,
    make_grid,
    output_stem,
    save_image,
    save_json,
)
from zerocon.cli.ground_truth import metrics_if_known
from zerocon.cli.loading import load_pipeline, sentence_source
from zerocon.cli.sharding import process_rank, shard
from zerocon.editing import (
    AttentionMapsCallback,
    Callback,
    X0PreviewCallback,
    available_methods,
    get_method,
)


def add_common_options(p: argparse.ArgumentParser, steps: int) -> None:
    """Options shared by ``edit`` and ``demo`` (method parameters, model, seed).

    Args:
        p: the sub-command's parser.
        steps: the default step count.
    """
    p.add_argument("--model", default=None, help="model folder or hub id (default: embedded)")
    p.add_argument("--steps", type=int, default=steps, help=f"DDIM steps (default {steps})")
    p.add_argument("--seed", type=int, default=0, help="seed of each image's generator")
    p.add_argument("--guidance-scale", type=float, default=5.0, help="CFG scale (default 5.0)")
    p.add_argument(
        "--step-size",
        type=float,
        default=None,
        help="guidance step η (default: the model's; 3.0 for the embedded model, else 0.1, "
        "0.01 for v-pred)",
    )
    p.add_argument("--lambda-xa", type=float, default=1.0, help="cross-attention weight (1.0)")
    p.add_argument("--lambda-nce", type=float, default=3.0, help="PatchNCE weight (3.0)")
    p.add_argument("--strength", type=float, default=0.5, help="SDEdit noising strength (0.5)")
    p.add_argument(
        "--sentences", default=None, help="templates | shapes | lm:MODEL | FILE_OR_FOLDER"
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``edit`` command.

    Args:
        subparsers: the main parser's sub-parsers.
    """
    p = subparsers.add_parser("edit", help="edit images towards a target prompt or word")
    p.add_argument("inputs", nargs="*", help="image files or folders of images")
    p.add_argument("--target", default=None, help="the target prompt, e.g. 'a blue circle ...'")
    p.add_argument("--source", default=None, help="the source caption (default: the captioner)")
    p.add_argument("--source-word", default=None, help="source word of a word-pair direction")
    p.add_argument("--target-word", default=None, help="target word of a word-pair direction")
    p.add_argument("--direction", default=None, help="a direction file from `zerocon direction`")
    p.add_argument("--method", default="zerocon", choices=available_methods(), help="editing method")
    p.add_argument("--out", type=Path, default=Path("zerocon-out"), help="output folder")
    p.add_argument("--grid", type=Path, default=None, help="also write a side-by-side grid PNG")
    p.add_argument(
        "--save-attention",
        type=Path,
        default=None,
        metavar="DIR",
        help="write per-token cross-attention heat maps of each edit to DIR (zerocon, pix2pix-zero)",
    )
    p.add_argument(
        "--preview",
        action="store_true",
        help="also write a strip of decoded x0 predictions (every 5 steps) next to each output",
    )
    p.add_argument(
        "--from-sidecar",
        type=Path,
        default=None,
        metavar="JSON",
        help="re-run the edit recorded in an output's JSON sidecar (input, prompts and settings)",
    )
    add_common_options(p, steps=50)
    p.set_defaults(run=run)


def method_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline keyword arguments given by the common options.

    Args:
        args: parsed arguments.

    Returns:
        Keyword arguments for :class:`~zerocon.pipelines.ZeroConPipeline`.
    """
    return {
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "guidance_step_size": args.step_size,
        "lambda_xa": args.lambda_xa,
        "lambda_nce": args.lambda_nce,
        "strength": args.strength,
    }


#: Sidecar ``settings`` keys and the ``args`` attributes they set for ``--from-sidecar``.
_SIDECAR_ARGS = {
    "method": "method",
    "target": "target",
    "source": "source",
    "source_word": "source_word",
    "target_word": "target_word",
    "direction": "direction",
    "model": "model",
    "seed": "seed",
    "sentences": "sentences",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance_scale",
    "guidance_step_size": "step_size",
    "lambda_xa": "lambda_xa",
    "lambda_nce": "lambda_nce",
    "strength": "strength",
}


def apply_sidecar(args: argparse.Namespace) -> None:
    """Fill ``args`` from the sidecar named by ``--from-sidecar`` (input and every setting).

    Raises:
        CliError: if the sidecar is missing, not JSON, lacks a key, or inputs were also given.
    """
    import json

    path: Path = args.from_sidecar
    if args.inputs:
        raise CliError("--from-sidecar takes the input from the sidecar; give no input paths")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CliError(f"sidecar {str(path)!r} does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f"sidecar {str(path)!r} is not a readable JSON file: {error}") from error
    settings = record.get("settings") if isinstance(record, dict) else None
    if not isinstance(settings, dict) or "input" not in record:
        raise CliError(f"sidecar {str(path)!r} has no 'input' and 'settings' (not a zerocon edit sidecar)")
    missing = sorted(set(_SIDECAR_ARGS) - set(settings))
    if missing:
        raise CliError(f"sidecar {str(path)!r} lacks the settings {missing}")
    for key, attribute in _SIDECAR_ARGS.items():
        setattr(args, attribute, settings[key])
    args.inputs = [record["input"]]


def _check_args(args: argparse.Namespace) -> None:
    if args.from_sidecar is not None:
        apply_sidecar(args)
    if not args.inputs:
        raise CliError("no input: give image files or folders, or --from-sidecar JSON")
    if args.target is not None and not args.target.strip():
        raise CliError("the target prompt is empty")
    if (args.source_word is None) != (args.target_word is None):
        raise CliError("give both --source-word and --target-word, or neither")
    for name in ("source_word", "target_word"):
        value = getattr(args, name)
        if value is not None and not value.strip():
            raise CliError(f"--{name.replace('_', '-')} is empty")
    if args.target is None and args.source_word is None and args.direction is None:
        raise CliError(
            "nothing to edit towards: give --target, --source-word/--target-word or --direction"
        )
    if args.direction is not None and not Path(args.direction).is_file():
        raise CliError(f"direction file {args.direction!r} does not exist")
    if args.steps < 1:
        raise CliError(f"--steps must be at least 1, got {args.steps}")
    if not 0 < args.strength <= 1:
        raise CliError(f"--strength must be in (0, 1], got {args.strength}")
    if args.save_attention is not None and not get_method(args.method).reference:
        raise CliError(f"--save-attention needs a method with a reference pass (zerocon, pix2pix-zero), not {args.method!r}")


def picture_callbacks(args: argparse.Namespace, png: Path) -> list[Callback]:
    """The picture-writing callbacks asked for by ``--save-attention`` and ``--preview``."""
    callbacks: list[Callback] = []
    if getattr(args, "save_attention", None) is not None:
        callbacks.append(AttentionMapsCallback(args.save_attention, prefix=f"{png.stem}_"))
    if getattr(args, "preview", False):
        callbacks.append(X0PreviewCallback(png.parent, every=5, prefix=f"{png.stem}_"))
    return callbacks


def run(args: argparse.Namespace) -> int:
    """Edit every input of this process's share; skip finished outputs unless ``--overwrite``.

    Args:
        args: parsed arguments.

    Returns:
        The exit code (0).

    Every input (of every rank) is decoded once up front, so a corrupt file stops the run
    before anything is written; the decoded pixels are dropped at once and each of this
    rank's images is decoded again only when it is edited (memory holds one input at a time).

    Raises:
        CliError: for any bad input (checked before anything is written).
    """
    _check_args(args)
    inputs = find_inputs(args.inputs)
    for path in inputs:  # all readable before any work; nothing is kept
        check_image(path)
    out_dir = ensure_writable_dir(args.out)
    rank, world = process_rank()
    mine = shard(inputs, rank, world)
    settings = {
        "method": args.method,
        "target": args.target,
        "source": args.source,
        "source_word": args.source_word,
        "target_word": args.target_word,
        "direction": str(Path(args.direction).resolve()) if args.direction else None,
        "model": args.model,
        "seed": args.seed,
        "sentences": args.sentences,
        **method_kwargs(args),
    }
    todo: list[tuple[Path, Path]] = []
    for path in mine:
        stem = output_stem(path, args.method, settings)
        png = out_dir / f"{stem}.png"
        if png.exists() and png.with_suffix(".json").exists() and not args.overwrite:
            continue
        todo.append((path, png))
    skipped = len(mine) - len(todo)
    print(
        f"[rank {rank}/{world}] {len(mine)} of {len(inputs)} inputs; {skipped} done already, "
        f"{len(todo)} to edit"
    )
    if not todo:
        return 0
    pipe = load_pipeline(args.model, args.device)
    sentences = sentence_source(args.sentences, args.seed)
    grid_rows = []
    for path, png in tqdm(todo, desc=f"images (rank {rank})", disable=args.no_progress):
        source_image = load_image(path)
        callbacks = picture_callbacks(args, png)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = pipe(
                    source_image,
                    args.target,
                    source_prompt=args.source,
                    source_word=args.source_word,
                    target_word=args.target_word,
                    direction=args.direction,
                    method=args.method,
                    sentence_source=sentences,
                    generator=torch.Generator().manual_seed(args.seed),
                    show_progress=not args.no_progress,
                    callbacks=callbacks,
                    **method_kwargs(args),
                )
        except (ValueError, FileNotFoundError) as error:
            raise CliError(f"{path.name}: {error}") from error
        for warning in caught:
            if issubclass(warning.category, UserWarning | RuntimeWarning):
                tqdm.write(f"notice: {path.name}: {warning.message}")
        edited = out.images[0]
        record = out.record(0)
        record.update(
            input=str(path),
            output=str(png),
            settings=settings,
            metrics=metrics_if_known(source_image, edited, out.target_prompts[0]),
        )
        try:
            save_image(edited, png)
            save_json(record, png.with_suffix(".json"))
        except OSError as error:
            raise CliError(f"cannot write {str(png)!r}: {error.strerror or error}") from error
        if args.grid is not None:
            grid_rows.append([source_image.convert("RGB").resize(edited.size), edited])
    if args.grid is not None and grid_rows:
        grid_path = args.grid
        if world > 1:
            grid_path = grid_path.with_name(f"{grid_path.stem}-rank{rank}{grid_path.suffix}")
        save_image(make_grid(grid_rows), grid_path)
        print(f"grid: {grid_path}")
    print(f"[rank {rank}/{world}] wrote {len(todo)} outputs to {out_dir}")
    return 0
