"""``zerocon edit``: edit images or folders of images, resumably, one output per input."""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from zerocon.cli.claims import CLAIM_TIMEOUT_SECONDS, OutputClaim, clean_stale
from zerocon.cli.errors import CliError
from zerocon.cli.files import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_LIMIT,
    ImageTooLarge,
    check_image,
    ensure_writable_dir,
    find_inputs,
    load_image,
    make_grid,
    output_stem,
    publish_edit,
    save_image,
    save_json,
)
from zerocon.cli.ground_truth import metrics_if_known
from zerocon.cli.loading import check_sources, device_for_rank, load_pipeline, sentence_source
from zerocon.cli.method_option import method_choice
from zerocon.cli.numbers import finite_float, whole_number
from zerocon.cli.sharding import process_rank, shard
from zerocon.direction import EditDirection
from zerocon.editing import (
    AttentionMapsCallback,
    Callback,
    X0PreviewCallback,
    available_methods,
    get_method,
)
from zerocon.editing.methods import DEFAULT_METHOD
from zerocon.editing.settings import UPPER_BOUNDS
from zerocon.files import MAX_SEED

# The flags' types, bounded as EditSettings is (a value past a bound makes no sense).
STEPS = whole_number(1, int(UPPER_BOUNDS["num_inference_steps"]))
SEED = whole_number(0, MAX_SEED)
GUIDANCE_SCALE = finite_float(1.0, UPPER_BOUNDS["guidance_scale"])
STEP_SIZE = finite_float(0.0, UPPER_BOUNDS["guidance_step_size"])
WEIGHT = finite_float(0.0, UPPER_BOUNDS["lambda_xa"])


def _preset_values(field: str) -> str:
    """``"zerocon 3, zerocon++ 0, …"``: a setting's value in each registered method's preset (read, never restated)."""
    from zerocon.editing import EditSettings

    return ", ".join(f"{name} {EditSettings.for_method(name).get(field):g}" for name in available_methods())


def add_common_options(p: argparse.ArgumentParser, steps: int) -> None:
    """Options shared by ``edit`` and ``demo`` (method parameters, model, seed).

    Args:
        p: the sub-command's parser.
        steps: the default step count.
    """
    p.add_argument("--model", default=None, help="model folder or hub id (default: embedded)")
    p.add_argument("--steps", type=STEPS, default=steps, help=f"DDIM steps (default {steps})")
    p.add_argument("--seed", type=SEED, default=0, help="seed of each image's generator")
    p.add_argument(
        "--guidance-scale", type=GUIDANCE_SCALE, default=None,
        help=f"CFG scale (default: the method's preset; {_preset_values('guidance_scale')})"
    )
    p.add_argument(
        "--step-size",
        type=STEP_SIZE,
        default=None,
        help="guidance step η (default: the model's; 3.0 for the embedded model, else 0.1, "
        "0.01 for v-pred)",
    )
    p.add_argument(
        "--lambda-xa", type=WEIGHT, default=None,
        help=f"cross-attention weight (default: the method's preset; {_preset_values('lambda_xa')})"
    )
    p.add_argument(
        "--lambda-nce",
        type=WEIGHT,
        default=None,
        help=f"feature-term weight (default: the method's preset; {_preset_values('lambda_nce')})",
    )
    p.add_argument(
        "--strength",
        type=finite_float(0.0, 1.0, low_open=True),
        default=None,
        help="SDEdit noising strength (default 0.5)",
    )
    p.add_argument(
        "--max-pixels",
        type=whole_number(1, MAX_PIXELS_LIMIT),
        default=DEFAULT_MAX_PIXELS,
        help=f"largest input in pixels, checked before decoding (default {DEFAULT_MAX_PIXELS:,}; "
        f"at most {MAX_PIXELS_LIMIT:,})",
    )
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
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        type=method_choice,
        help=f"editing method: one of {', '.join(available_methods())} (default {DEFAULT_METHOD}; zerocon is "
        "the paper's method), one an installed package registers, or package.module:Class",
    )
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
        help="re-run the edit recorded in an output's JSON sidecar: its input, prompts, model and "
        "settings replace the corresponding options (--out, --device and the picture flags still apply)",
    )
    p.add_argument(
        "--batch-size",
        type=whole_number(1),
        default=1,
        help="inputs edited in one pipeline call; those of one size share every UNet call (each "
        "result equals its one-at-a-time edit up to float rounding; memory grows with it) (default 1)",
    )
    p.add_argument(
        "--take-over-claims",
        action="store_true",
        help="take over every claim another host left in --out (a run killed in a container that "
        f"restarted under a new host name); without it such a claim is taken over once it is "
        f"{CLAIM_TIMEOUT_SECONDS / 60:g} minutes old (a live run refreshes its claims every 30 s)",
    )
    add_common_options(p, steps=50)
    p.set_defaults(run=run)


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The common options' settings as given (``None``: left to the method's preset), for records.

    Args:
        args: parsed arguments.
    """
    return {
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "guidance_step_size": args.step_size,
        "lambda_xa": args.lambda_xa,
        "lambda_nce": args.lambda_nce,
        "strength": args.strength,
    }


def method_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline keyword arguments given by the common options.

    An option left unset keeps the method's preset (``EditSettings.for_method``).

    Args:
        args: parsed arguments.

    Returns:
        Keyword arguments for [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline].
    """
    return {key: value for key, value in method_options(args).items() if value is not None}


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
    checks = {
        "seed": SEED, "num_inference_steps": STEPS, "guidance_scale": GUIDANCE_SCALE,
        "guidance_step_size": STEP_SIZE, "lambda_xa": WEIGHT, "lambda_nce": WEIGHT,
        "strength": finite_float(0.0, 1.0, low_open=True),
    }
    for key, attribute in _SIDECAR_ARGS.items():
        value = settings[key]
        if key in checks and value is not None:
            try:
                value = checks[key](str(value))
            except argparse.ArgumentTypeError as error:
                raise CliError(f"sidecar {str(path)!r}: settings.{key}: {error}") from error
        elif key == "method" and value not in available_methods():
            raise CliError(f"sidecar {str(path)!r}: unknown method {value!r}")
        elif key != "seed" and value is not None and not isinstance(value, str):
            raise CliError(f"sidecar {str(path)!r}: settings.{key} must be text, got {value!r}")
        setattr(args, attribute, value)
    if not isinstance(record["input"], str):
        raise CliError(f"sidecar {str(path)!r}: 'input' must be a path")
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
    if args.strength is not None and not 0 < args.strength <= 1:
        raise CliError(f"--strength must be in (0, 1], got {args.strength}")
    if args.save_attention is not None and not get_method(args.method).reference:
        raise CliError(f"--save-attention needs a method with a reference pass (zerocon, pix2pix-zero), not {args.method!r}")


def picture_callbacks(args: argparse.Namespace, pngs: Path | list[Path]) -> list[Callback]:
    """The picture-writing callbacks asked for by ``--save-attention`` and ``--preview``.

    Args:
        args: parsed arguments.
        pngs: the output of each image of the call (their stems prefix the picture files).
    """
    outputs = [pngs] if isinstance(pngs, Path) else list(pngs)
    prefixes = [f"{png.stem}_" for png in outputs]
    callbacks: list[Callback] = []
    if getattr(args, "save_attention", None) is not None:
        callbacks.append(AttentionMapsCallback(args.save_attention, prefix=prefixes))
    if getattr(args, "preview", False):
        callbacks.append(X0PreviewCallback(outputs[0].parent, every=5, prefix=prefixes))
    return callbacks


def _direction_or_fail(path: str | None) -> EditDirection | None:
    """Load ``--direction`` now: a junk or pickled file stops the run before anything is written."""
    if path is None:
        return None
    try:
        direction = EditDirection.load(path)
    except Exception as error:  # safetensors raises its own error types for junk files
        raise CliError(f"direction file {path!r} is not a zerocon direction (safetensors): {_first_line(error)}") from error
    if not bool(direction.delta.abs().sum() > 0):
        print(f"notice: direction file {path!r} is all zeros: the edit moves nothing along it "
              "(the guidance alone acts)")
    return direction


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def _check_writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".zerocon-probe-", delete=True):
            pass
    except OSError as error:
        raise CliError(f"cannot write {what}: {error.strerror or error}") from error


def _check_grid(grid: Path | None) -> None:
    if grid is None:
        return
    _check_writable_folder(grid.expanduser().parent, f"the grid {str(grid)!r}")
    if grid.is_dir():
        raise CliError(f"--grid {str(grid)!r} is a folder; give a .png file name")


def _check_direction_fits(direction: EditDirection | None, pipe: Any, path: str | None) -> None:
    """A direction from another text encoder stops the run once, before any image is edited."""
    if direction is None:
        return
    from zerocon.direction.edit_direction import check_direction_encoder

    try:
        check_direction_encoder(direction.encoder_name, pipe.prompt_encoder)
    except ValueError as error:
        raise CliError(f"direction file {path!r}: {error}") from error
    expected = tuple(pipe.encode_text([""]).shape[1:])
    if tuple(direction.delta.shape[1:]) != expected:
        raise CliError(
            f"direction file {path!r} was built for another text encoder: its Δc is "
            f"{'x'.join(map(str, direction.delta.shape[1:]))}, this model's embeddings are "
            f"{'x'.join(map(str, expected))}; build it with `zerocon direction --model` for this model"
        )


def _refuse_out_among_inputs(out: Path, raw_inputs: list[str]) -> None:
    """``--out`` may not be an input folder: later runs would read their own outputs back."""
    target = out.expanduser().resolve()
    for raw in raw_inputs:
        folder = Path(raw).expanduser().resolve()
        if folder.is_dir() and folder == target:
            raise CliError(
                f"--out {str(out)!r} is the input folder {raw!r}: the outputs would be read back as "
                "inputs by the next run; choose another output folder"
            )


def _without_own_outputs(inputs: list[Path]) -> list[Path]:
    """Inputs less the images zerocon wrote (an output PNG has a sidecar naming it as output)."""
    import json

    kept = []
    for path in inputs:
        sidecar = path.with_suffix(".json")
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if isinstance(record, dict) and record.get("output") == str(path):
            tqdm.write(f"notice: {path.name}: an output of zerocon (see its sidecar); not taken as an input")
            continue
        kept.append(path)
    if not kept:
        raise CliError("every input is an output of an earlier zerocon run; give the source images")
    return kept


def run(args: argparse.Namespace) -> int:
    """Edit every input of this process's share; skip finished outputs unless ``--overwrite``.

    Problems of the whole run (settings, the direction file, the grid path, unreadable inputs)
    stop it before anything is written. Problems of one image (too many pixels, too small for
    the method, words no direction can be built for) mark only that image as failed: the rest
    is still edited, each failure is printed on one line, ``failures.json`` lists them in
    ``--out``, and the exit code is 2.

    Outputs are claimed one by one (``{stem}.claim`` with the pid), so runs sharing ``--out``
    split the work; temporary files and claims of killed runs are removed at the start.

    Args:
        args: parsed arguments.

    Returns:
        The exit code: 0, or 2 when any image failed.

    Raises:
        CliError: for a problem of the whole run (checked before anything is written).
    """
    _check_args(args)
    direction = _direction_or_fail(args.direction)
    _check_grid(args.grid)
    if args.save_attention is not None:
        _check_writable_folder(args.save_attention.expanduser(), f"--save-attention {str(args.save_attention)!r}")
    check_sources(args.model, device_for_rank(args.device), args.sentences)
    inputs = find_inputs(args.inputs)
    _refuse_out_among_inputs(args.out, args.inputs)
    inputs = _without_own_outputs(inputs)
    failures: dict[Path, str] = {}
    for path in inputs:  # all readable before any work; nothing is kept
        try:
            check_image(path, args.max_pixels)
        except ImageTooLarge as error:
            failures[path] = str(error)
    out_dir = ensure_writable_dir(args.out)
    timeout = 0.0 if args.take_over_claims else CLAIM_TIMEOUT_SECONDS
    clean_stale(out_dir, timeout)
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
        **method_options(args),
    }
    todo: list[tuple[Path, Path]] = []
    for path in mine:
        if path in failures:
            continue
        png = out_dir / f"{output_stem(path, args.method, settings)}.png"
        if png.with_suffix(".json").exists() and png.exists() and not args.overwrite:
            continue
        todo.append((path, png))
    mine_failed = [p for p in mine if p in failures]
    done = len(mine) - len(todo) - len(mine_failed)
    print(f"[rank {rank}/{world}] {len(mine)} of {len(inputs)} inputs; {done} done already, {len(todo)} to edit")
    written = 0
    grid_rows = []
    if todo:
        pipe = load_pipeline(args.model, device_for_rank(args.device))
        _check_direction_fits(direction, pipe, args.direction)
        sentences = sentence_source(args.sentences, args.seed)
        batch_size = getattr(args, "batch_size", 1)
        chunks = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        bar = tqdm(total=len(todo), desc=f"images (rank {rank})", disable=args.no_progress)
        for chunk in chunks:
            claimed = []
            try:
                for path, png in chunk:
                    claim = OutputClaim(png, timeout)
                    if not claim.acquire():
                        tqdm.write(f"notice: {path.name}: another run is editing it; skipped")
                    elif png.with_suffix(".json").exists() and png.exists() and not args.overwrite:
                        claim.release()  # another run finished it since the list was made
                        tqdm.write(f"notice: {path.name}: another run has edited it; skipped")
                    else:
                        claimed.append((path, png, claim))
                rows = _edit_claimed(args, pipe, [(p, png) for p, png, _ in claimed], direction, sentences, settings, failures)
            finally:  # also when claiming itself fails part-way (a full disk, Ctrl-C)
                for _, _, claim in claimed:
                    claim.release()
            written += len(rows)
            if args.grid is not None:
                grid_rows.extend(rows)
            bar.update(len(chunk))
        bar.close()
    if args.grid is not None and grid_rows:
        grid_path = args.grid
        if world > 1:
            grid_path = grid_path.with_name(f"{grid_path.stem}-rank{rank}{grid_path.suffix}")
        save_image(make_grid(grid_rows), grid_path)
        print(f"grid: {grid_path}")
    mine_set = set(mine)
    mine_failures = {p: m for p, m in failures.items() if p in mine_set}
    for path in mine_failed:
        print(f"zerocon: error: {failures[path]}", file=sys.stderr)
    print(f"[rank {rank}/{world}] wrote {written} outputs to {out_dir}; {len(mine_failures)} failed")
    if mine_failures:
        name = "failures.json" if world == 1 else f"failures-rank{rank}.json"
        save_json({"failed": [{"input": str(p), "error": m} for p, m in mine_failures.items()]}, out_dir / name)
        return 2
    return 0


def _edit_claimed(
    args: argparse.Namespace,
    pipe: Any,
    items: list[tuple[Path, Path]],
    direction: EditDirection | None,
    sentences: Any,
    settings: dict[str, Any],
    failures: dict[Path, str],
) -> list[list[Any]]:
    """Edit claimed inputs together; an input that fails is noted in ``failures`` and skipped.

    When a batch of several inputs fails for one of them (a bad caption, say), each is edited
    alone so that only the culprit is lost. Returns the grid rows of the outputs written.
    """
    loaded = []
    for path, png in items:
        try:
            image, notices = load_image(path, args.max_pixels)
        except CliError as error:
            if not (isinstance(error, ImageTooLarge) or error.per_image):
                raise
            failures[path] = str(error)
            print(f"zerocon: error: {error}", file=sys.stderr)
            continue
        loaded.append((path, png, image, notices))
    if not loaded:
        return []
    try:
        return _edit_batch(args, pipe, loaded, direction, sentences, settings)
    except CliError as error:
        if not error.per_image:
            raise
        if len(loaded) == 1:
            failures[loaded[0][0]] = str(error)
            print(f"zerocon: error: {error}", file=sys.stderr)
            return []
    rows = []
    for path, png in [(path, png) for path, png, _, _ in loaded]:
        rows.extend(_edit_claimed(args, pipe, [(path, png)], direction, sentences, settings, failures))
    return rows


def _edit_batch(
    args: argparse.Namespace,
    pipe: Any,
    loaded: list[tuple[Path, Path, Any, list[str]]],
    direction: EditDirection | None,
    sentences: Any,
    settings: dict[str, Any],
) -> list[list[Any]]:
    """Edit loaded inputs in one pipeline call and publish each PNG and sidecar; returns grid rows."""
    names = ", ".join(path.name for path, _, _, _ in loaded)
    for path, _, _, notices in loaded:
        for notice in notices:
            tqdm.write(f"notice: {path.name}: {notice}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = pipe(
                [image for _, _, image, _ in loaded],
                args.target,
                source_prompt=args.source,
                source_word=args.source_word,
                target_word=args.target_word,
                direction=direction,
                method=args.method,
                sentence_source=sentences,
                # One generator per input, each seeded alike: an input's edit does not depend
                # on the batch it is edited in.
                generator=[torch.Generator().manual_seed(args.seed) for _ in loaded] if len(loaded) > 1
                else torch.Generator().manual_seed(args.seed),
                show_progress=not args.no_progress and len(loaded) == 1,
                callbacks=picture_callbacks(args, [png for _, png, _, _ in loaded]),
                batch_size=len(loaded),
                **method_kwargs(args),
            )
    except (ValueError, FileNotFoundError) as error:
        raise CliError(f"{names}: {error}", per_image=True) from error
    except (MemoryError, RuntimeError) as error:
        if not isinstance(error, MemoryError) and "alloc" not in str(error).lower():
            raise
        raise CliError(f"{names}: not enough memory to edit it ({_first_line(error)})", per_image=True) from error
    for warning in caught:
        if issubclass(warning.category, UserWarning | RuntimeWarning):
            tqdm.write(f"notice: {names}: {warning.message}")
    rows = []
    for index, (path, png, source_image, notices) in enumerate(loaded):
        edited = out.images[index]
        record = out.record(index)
        record["parameters"] = {**record["parameters"], "seed": args.seed}  # this image's, not the call's list
        record["notices"] = [*notices, *record["notices"]]
        record.update(
            input=str(path),
            output=str(png),
            settings=settings,
            metrics=metrics_if_known(source_image, edited, out.target_prompts[index]),
        )
        publish_edit(edited, record, png)
        rows.append([source_image.convert("RGB").resize(edited.size), edited])
    return rows
