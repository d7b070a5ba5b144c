"""``zerocon evaluate``: run editing methods over a dataset and score them with zerocon.metrics."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from zerocon.cli.edit_command import SEED, STEPS
from zerocon.cli.errors import CliError
from zerocon.cli.files import ensure_writable_dir, save_json
from zerocon.cli.loading import check_sources, device_for_rank, load_pipeline
from zerocon.cli.method_option import method_choice
from zerocon.cli.sharding import process_rank, shard
from zerocon.editing import ZeroConPipelineOutput
from zerocon.editing.methods import DEFAULT_METHOD

#: Each edit is scored alone, in its own process: no synchronisation across processes, which
#: would wait on ranks that have other edits (or none) left.
LOCAL: dict[str, Any] = {"sync_on_compute": False}

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
    p.add_argument("--size", type=int, default=None, help="side the images are resized to (default: the model's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N edits")
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

    Writes ``results.jsonl`` (one row per edit and method; ``results-rank{r}.jsonl`` per
    process in a multi-process run), ``summary.md`` / ``summary.json`` (means with 95% bootstrap
    intervals over every rank's rows found) and ``pareto.png``.

    Returns:
        The exit code (0).

    Raises:
        CliError: for a dataset, model or metric folder that cannot be read (before anything runs).
    """
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
    out = ensure_writable_dir(args.out)
    rank, world = process_rank()
    results = out / ("results.jsonl" if world == 1 else f"results-rank{rank}.jsonl")
    done = {json.loads(line)["key"] for line in results.read_text().splitlines() if line.strip()} if results.exists() else set()
    todo = [(case, method) for case in shard(cases, rank, world) for method in args.methods
            if f"{method}|{case.edit_id}|{args.steps}" not in done]
    print(f"[rank {rank}/{world}] {len(cases)} edits x {len(args.methods)} methods; {len(todo)} to run -> {results}")
    pipe = load_pipeline(args.model, device_for_rank(args.device)) if todo else None
    for case, method in tqdm(todo, desc="evaluate", disable=args.no_progress):
        assert pipe is not None
        with Image.open(case.image) as handle:
            source = handle.convert("RGB")
        mask = case.edit_mask(source.height, source.width)
        side = args.size or int(pipe.unet.config.sample_size) * pipe.vae_scale_factor
        source = source.resize((side, side), Image.Resampling.BICUBIC)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                edit = pipe(source, case.target_prompt, source_prompt=case.source_prompt, method=method,
                            num_inference_steps=args.steps, generator=torch.Generator().manual_seed(args.seed),
                            show_progress=False)
            except ValueError as error:
                print(f"zerocon: error: edit {case.edit_id} with {method}: {error}")
                continue
        seconds = time.perf_counter() - start
        assert isinstance(edit, ZeroConPipelineOutput)
        row = {"key": f"{method}|{case.edit_id}|{args.steps}", "edit_id": case.edit_id, "method": method,
               "steps": args.steps, "source_prompt": case.source_prompt, "target_prompt": case.target_prompt,
               "seconds": seconds, **_score(case, edit.images[0], source, mask, models)}
        with results.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for path in sorted(out.glob("results*.jsonl")) for line in path.read_text().splitlines()
            if line.strip()]
    measures = [m for m in MEASURES if any(m in r for r in rows)]
    summary = summarize_rows(rows, measures)
    text = summary_table(summary, measures)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    save_json(summary, out / "summary.json")
    x = "structure_distance" if "structure_distance" in measures else "background_psnr"
    y = "clip_accuracy" if "clip_accuracy" in measures else "clip_score"
    if x in measures and y in measures:
        pareto_plot(summary, x, y, out / "pareto.png")
    print(text)
    return 0
