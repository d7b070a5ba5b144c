"""``zerocon evaluate``: run editing methods over a dataset and score them with zerocon.metrics."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from zerocon._extras import require_extra
from zerocon.cli.edit_command import SEED, STEPS, _first_line
from zerocon.cli.errors import CliError
from zerocon.cli.evaluation_identity import (
    RowIdentity,
    case_identity,
    metrics_identity,
    model_identity,
    settings_identity,
)
from zerocon.cli.files import atomic_write, ensure_writable_dir, save_json
from zerocon.cli.loading import check_sources, device_for_rank, load_pipeline, model_source
from zerocon.cli.method_option import method_choice
from zerocon.cli.numbers import whole_number
from zerocon.cli.sharding import process_rank, shard
from zerocon.editing import ZeroConPipelineOutput
from zerocon.editing.methods import DEFAULT_METHOD
from zerocon.editing.preprocessing import to_rgb

#: Each edit is scored alone, in its own process: no synchronisation across processes, which
#: would wait on ranks that have other edits (or none) left.
LOCAL: dict[str, Any] = {"sync_on_compute": False}

#: The largest ``--size``: a 4096² edit already needs tens of GB on an SD-sized model.
MAX_SIDE = 4096

#: The measures a row may hold, in the summary's order.
MEASURES = ("clip_accuracy", "clip_score", "structure_distance", "background_psnr", "background_lpips",
            "background_mse", "background_ssim")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` command."""
    p = subparsers.add_parser("evaluate", help="run methods over a PIE-Bench-style dataset and score the edits")
    p.add_argument("dataset", type=Path, help="a folder with mapping_file.json (PIE-Bench) or prompts.csv")
    p.add_argument("--out", type=Path, required=True, help="folder for results.jsonl, the summary and the plot")
    p.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    p.add_argument("--methods", nargs="+", type=method_choice, default=[DEFAULT_METHOD, "zerocon", "pix2pix-zero"])
    p.add_argument("--clip", type=Path, default=None, help="a local CLIP folder (CLIP accuracy and score)")
    p.add_argument("--dino", type=Path, default=None, help="a local DINO ViT folder (structure distance)")
    p.add_argument("--lpips", type=Path, default=None,
                   help="a local torchvision checkpoint of the LPIPS backbone (background LPIPS)")
    p.add_argument("--lpips-net", choices=("squeeze", "alex", "vgg"), default="squeeze",
                   help="the LPIPS backbone that file holds (default squeeze, as PIE-Bench)")
    p.add_argument("--steps", type=STEPS, default=50, help="DDIM steps (default 50)")
    p.add_argument("--seed", type=SEED, default=0, help="each edit's generator seed")
    p.add_argument("--size", type=whole_number(8, MAX_SIDE), default=None,
                   help=f"side the images are resized to, 8 to {MAX_SIDE} (default: the model's)")
    p.add_argument("--limit", type=whole_number(1), default=None, help="only the first N edits")
    p.add_argument("--overwrite", action="store_true",
                   help="replace rows in --out that another run (other seed, model, size, settings or "
                   "dataset entry) wrote for these edits, instead of refusing")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _pixels(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def _metrics(args: argparse.Namespace) -> dict[str, Any]:
    from zerocon.metrics import BackgroundLPIPS, ClipAccuracy, ClipScore, StructureDistance

    metrics: dict[str, Any] = {}
    try:
        if args.clip is not None:
            metrics["clip_accuracy"] = ClipAccuracy(args.clip, **LOCAL)
            metrics["clip_score"] = ClipScore(args.clip, **LOCAL)
        if args.dino is not None:
            metrics["structure_distance"] = StructureDistance(args.dino, **LOCAL)
        if args.lpips is not None:
            metrics["background_lpips"] = BackgroundLPIPS(args.lpips, net_type=args.lpips_net, **LOCAL)
    except (FileNotFoundError, OSError, ValueError) as error:
        raise CliError(f"cannot load a metric model: {error}") from error
    return metrics


def _score(
    case: Any, edited: Image.Image, source: Image.Image, mask: torch.Tensor | None, models: dict[str, Any]
) -> dict[str, float]:
    from zerocon.metrics import BackgroundMSE, BackgroundPSNR, BackgroundSSIM

    e, s = _pixels(edited), _pixels(source)
    row: dict[str, float] = {}
    for name, metric in models.items():
        if name == "background_lpips" and mask is None:
            continue
        metric.reset()
        if name == "clip_accuracy":
            metric.update(e, case.source_prompt, case.target_prompt)
        elif name == "clip_score":
            metric.update(e, case.target_prompt)
        elif name == "background_lpips":
            metric.update(e, s, mask)
        else:
            metric.update(e, s)
        row[name] = float(metric.compute())
    if mask is not None:  # at the dataset image's own size; the metrics resize it to the edit's
        for name, kind in (("background_psnr", BackgroundPSNR), ("background_mse", BackgroundMSE),
                           ("background_ssim", BackgroundSSIM)):
            metric = kind(**LOCAL)
            metric.update(e, s, mask)
            row[name] = float(metric.compute())
    return row


def run(args: argparse.Namespace) -> int:
    """Edit each case with each method (resumably, this process's share) and write the results.

    Writes ``results.jsonl`` (one row per edit and method, with its full identity; see
    [`RowIdentity`][zerocon.cli.evaluation_identity.RowIdentity]; ``results-rank{r}.jsonl`` per
    process in a multi-process run), ``summary.md`` / ``summary.json`` (means with 95% bootstrap
    intervals over this run's rows from every rank) and ``pareto.png``. A row is reused only
    when its identity equals the one this run would give it.

    Returns:
        The exit code: 0, or 2 when an edit failed (each named on one line, the rest is scored).

    Raises:
        CliError: for a dataset, model or metric folder that cannot be read, or an ``--out``
            holding rows of another run for the same edits (before anything runs).
    """
    try:
        require_extra("torchmetrics", "metrics", "zerocon evaluate")
    except ImportError as error:
        raise CliError(str(error)) from error
    from zerocon.metrics.datasets import read_dataset
    from zerocon.metrics.summary import pareto_plot, summarize_rows, summary_table

    check_sources(args.model, device_for_rank(args.device), None)
    try:
        cases = read_dataset(args.dataset)
    except (FileNotFoundError, ValueError) as error:
        raise CliError(str(error)) from error
    if args.limit is not None:
        cases = cases[: args.limit]
    models = _metrics(args)
    rank, world = process_rank()
    plan = _plan(args, cases)
    out = ensure_writable_dir(args.out)
    results = out / ("results.jsonl" if world == 1 else f"results-rank{rank}.jsonl")
    stored = _stored_rows(out)
    _check_or_drop_stale(args, out, results, stored, plan)
    done = {row.get("key") for row in _stored_rows(out)}
    mine = {case.edit_id for case in shard(cases, rank, world)}
    todo = [(case, identity) for case, identity in plan if case.edit_id in mine and identity.key not in done]
    print(f"[rank {rank}/{world}] {len(cases)} edits x {len(args.methods)} methods; {len(todo)} to run -> {results}")
    pipe = (getattr(args, "loaded_pipeline", None) or load_pipeline(args.model, device_for_rank(args.device))
            if todo else None)  # a hub model was loaded already to read its image size
    failed = 0
    for case, identity in tqdm(todo, desc="evaluate", disable=args.no_progress):
        assert pipe is not None
        row = _evaluate_one(args, pipe, case, identity, models)
        if row is None:
            failed += 1
            continue
        _append_row(results, row)
    keys = {identity.key for _, identity in plan}
    rows = [row for row in _stored_rows(out) if row.get("key") in keys]
    measures = [m for m in MEASURES if any(m in r for r in rows)]
    if not rows:
        print("no edit of this run has a result yet")
        return _failures(failed)
    summary = summarize_rows(rows, measures)
    text = summary_table(summary, measures)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    save_json(summary, out / "summary.json")
    x = "structure_distance" if "structure_distance" in measures else "background_psnr"
    y = "clip_accuracy" if "clip_accuracy" in measures else "clip_score"
    if x in measures and y in measures:
        pareto_plot(summary, x, y, out / "pareto.png")
    print(text)
    return _failures(failed)


def _failures(failed: int) -> int:
    """The exit code: 2 (with one closing line) when any edit failed, else 0."""
    if failed:
        print(f"zerocon: error: {failed} edit(s) failed (named above); their rows are missing", file=sys.stderr)
        return 2
    return 0


def _append_row(results: Path, row: dict[str, Any]) -> None:
    """Append one JSON line; a line a killed run cut off is ended first, so it cannot swallow this row."""
    with results.open("a+b") as handle:
        handle.seek(0, 2)
        if handle.tell() > 0:
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        handle.write((json.dumps(row) + "\n").encode("utf-8"))


def _side(args: argparse.Namespace) -> int:
    """The side images are edited at: ``--size``, or the model's own (read from its config)."""
    if args.size is not None:
        return int(args.size)
    source = model_source(args.model)
    if not isinstance(source, Path):  # a hub id: its config comes with the model
        pipe = load_pipeline(args.model, device_for_rank(args.device))
        args.loaded_pipeline = pipe  # kept for the run: loaded once
        denoiser = getattr(pipe, "unet", None) or pipe.transformer
        return int(denoiser.config.sample_size) * pipe.vae_scale_factor
    try:
        folder = "unet" if (Path(source) / "unet").is_dir() else "transformer"
        unet = json.loads((Path(source) / folder / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((Path(source) / "vae" / "config.json").read_text(encoding="utf-8"))
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CliError(f"cannot read the model's image size from {str(source)!r} ({error}); give --size") from error


def _plan(args: argparse.Namespace, cases: list[Any]) -> list[tuple[Any, RowIdentity]]:
    """Every (case, identity) this run fills, in the dataset's order."""
    from zerocon.editing import EditSettings

    model = model_identity(model_source(args.model))
    metrics = metrics_identity(args.clip, args.dino, args.lpips, args.lpips_net)
    side = _side(args)
    settings = {}
    for method in args.methods:
        try:
            values = EditSettings.for_method(method, num_inference_steps=args.steps).to_flat_dict()
        except ValueError as error:
            raise CliError(f"method {method!r}: {error}") from error
        settings[method] = settings_identity(values)
    plan: list[tuple[Any, RowIdentity]] = []
    for case in cases:
        entry = case_identity(case)
        plan.extend((case, RowIdentity(case.edit_id, entry, method, settings[method], model, args.seed, side,
                                       args.steps, metrics)) for method in args.methods)
    return plan


def _stored_rows(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(out.glob("results*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a killed run: redone
                print(f"notice: {path.name}:{number} is not a complete row; ignored")
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _check_or_drop_stale(args: argparse.Namespace, out: Path, results: Path, stored: list[dict[str, Any]],
                         plan: list[tuple[Any, RowIdentity]]) -> None:
    """Refuse an ``--out`` whose rows fill this run's edits with another identity (or drop them
    from this process's file with ``--overwrite``)."""
    planned: dict[tuple[Any, Any], RowIdentity] = {identity.slot: identity for _, identity in plan}
    stale = [row for row in stored if (row.get("edit_id"), row.get("method")) in planned
             and row.get("key") != planned[(row.get("edit_id"), row.get("method"))].key]
    if not stale:
        return
    if not args.overwrite:
        row = stale[0]
        identity = planned[(row["edit_id"], row["method"])]
        changed = identity.differences(row.get("identity") or {}) if isinstance(row.get("identity"), dict) else [
            "the row has no identity (written by zerocon 0.1)"]
        raise CliError(
            f"--out {str(args.out)!r} holds {len(stale)} row(s) of another run for these edits (edit "
            f"{row['edit_id']} with {row['method']}: {'; '.join(changed[:3])}); give a new --out, or --overwrite "
            "to replace them"
        )
    stale_keys = {row.get("key") for row in stale}
    # One process owns every file (and cleans them all); each rank of a multi-process run cleans its own.
    _, world = process_rank()
    files = sorted(out.glob("results*.jsonl")) if world == 1 else [results]
    for path in files:
        if path.exists():
            keep = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and _row_key(line) not in stale_keys]
            text = "".join(f"{line}\n" for line in keep)
            atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))  # type: ignore[misc]
    print(f"notice: --overwrite: {len(stale)} row(s) of another run replaced")


def _row_key(line: str) -> Any:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row.get("key") if isinstance(row, dict) else None


def _evaluate_one(args: argparse.Namespace, pipe: Any, case: Any, identity: RowIdentity,
                  models: dict[str, Any]) -> dict[str, Any] | None:
    """Edit and score one case with one method; ``None`` (with one line) when the edit fails."""
    with Image.open(case.image) as handle:
        try:
            source = to_rgb(handle).copy()  # 16-bit and float images by their type's range (copy: loaded before the file closes)
        except ValueError as error:
            tqdm.write(f"zerocon: error: edit {case.edit_id}: {error}", file=sys.stderr)
            return None
    mask = case.edit_mask(source.height, source.width)
    source = source.resize((identity.size, identity.size), Image.Resampling.BICUBIC)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            edit = pipe(source, case.target_prompt, source_prompt=case.source_prompt, method=identity.method,
                        num_inference_steps=args.steps, generator=torch.Generator().manual_seed(args.seed),
                        show_progress=False)
        except (ValueError, MemoryError, torch.cuda.OutOfMemoryError) as error:
            if isinstance(error, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
            tqdm.write(f"zerocon: error: edit {case.edit_id} with {identity.method}: {_first_line(error)}", file=sys.stderr)
            return None
    seconds = time.perf_counter() - start
    assert isinstance(edit, ZeroConPipelineOutput)
    return {"key": identity.key, "identity": identity.to_dict(), "edit_id": case.edit_id,
            "method": identity.method, "steps": args.steps, "seed": args.seed, "size": identity.size,
            "source_prompt": case.source_prompt, "target_prompt": case.target_prompt, "seconds": seconds,
            **_score(case, edit.images[0], source, mask, models)}
