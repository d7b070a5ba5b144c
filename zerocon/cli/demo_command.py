"""``zerocon demo``: render shapes, edit them with every method, print the metrics table."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from zerocon.cli.edit_command import add_common_options, method_kwargs
from zerocon.cli.errors import CliError
from zerocon.cli.files import (
    ensure_writable_dir,
    labelled_grid,
    save_image,
    save_json,
    settings_digest,
)
from zerocon.cli.ground_truth import metrics_if_known
from zerocon.cli.loading import check_sources, load_pipeline, sentence_source
from zerocon.cli.method_option import method_choice
from zerocon.cli.numbers import whole_number
from zerocon.editing import ZeroConPipelineOutput, available_methods
from zerocon.shapes.demo_edits import demo_edits

DEFAULT_METHODS = ("zerocon++", "zerocon", "pix2pix-zero", "sdedit")
#: The most source images ``zerocon demo`` renders (each is edited by every method).
MAX_DEMO_IMAGES = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``demo`` command.

    Args:
        subparsers: the main parser's sub-parsers.
    """
    p = subparsers.add_parser(
        "demo", help="edit rendered shapes with every method; write a grid and print metrics"
    )
    p.add_argument("--out", type=Path, default=Path("zerocon-demo"), help="output folder")
    p.add_argument("--images", type=whole_number(1, MAX_DEMO_IMAGES), default=6,
                   help=f"number of source images, 1 to {MAX_DEMO_IMAGES} (default 6)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        type=method_choice,
        help=f"methods to compare (default: {' '.join(DEFAULT_METHODS)}; any of {', '.join(available_methods())} "
        "or package.module:Class)",
    )
    p.add_argument(
        "--use-captioner",
        action="store_true",
        help="caption the sources with the model's captioner instead of the true captions",
    )
    add_common_options(p, steps=20)
    p.set_defaults(run=run)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def summarize(records: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    """One row per method: edit accuracy, structure IoU, background PSNR, seconds, UNet evals.

    Args:
        records: per-edit sidecars (``method``, ``metrics``, ``timings``, ``unet_evals``).
        methods: the order of the rows.

    Returns:
        The table rows.
    """
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        metrics = [r["metrics"] for r in mine if r.get("metrics")]
        rows.append(
            {
                "method": method,
                "edits": len(mine),
                "edit_accuracy": _mean([float(m["edit_correct"]) for m in metrics]),
                "structure_iou": _mean([float(m["structure_iou"]) for m in metrics]),
                "background_psnr": _mean([float(m["background_psnr"]) for m in metrics]),
                "texture_kept": _mean([float(m["texture_kept"]) for m in metrics if m.get("texture_kept") is not None]),
                "seconds_per_edit": _mean([r["timings"]["total"] for r in mine]),
                "unet_evals_per_edit": _mean([r["unet_evals"]["total"] for r in mine]),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The metrics table as aligned text.

    Args:
        rows: from ``summarize``.

    Returns:
        The table, one line per method after a header.
    """
    header = (
        f"{'method':<14}{'edits':>6}{'edit acc':>10}{'IoU':>8}{'bg PSNR':>10}{'texture':>9}{'s/edit':>9}"
        f"{'UNet evals':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['method']:<14}{r['edits']:>6}{r['edit_accuracy']:>10.2f}{r['structure_iou']:>8.3f}"
            f"{r['background_psnr']:>10.2f}{r['texture_kept']:>9.2f}{r['seconds_per_edit']:>9.2f}"
            f"{r['unet_evals_per_edit']:>12.0f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Render, edit (resumably: finished edits are reused unless ``--overwrite``), report.

    Each edit's files are named ``{index}-{method}-{digest}``, the digest hashing every
    setting that changes the result, so a run with other settings never reuses stale files.

    Args:
        args: parsed arguments.

    Returns:
        The exit code (0).

    Raises:
        CliError: for bad numbers or an unwritable output folder.
    """
    if args.images < 1:
        raise CliError(f"--images must be at least 1, got {args.images}")
    if args.steps < 1:
        raise CliError(f"--steps must be at least 1, got {args.steps}")
    check_sources(args.model, args.device, args.sentences)
    out_dir = ensure_writable_dir(args.out)
    edits_dir = ensure_writable_dir(out_dir / "edits")
    edits = demo_edits(args.images, args.seed)
    methods = list(dict.fromkeys(args.methods))
    pipe = None
    sentences = None
    common = {
        "seed": args.seed,
        "model": args.model,
        "sentences": args.sentences,
        "use_captioner": args.use_captioner,
        **method_kwargs(args),
    }
    records: dict[tuple[int, str], dict[str, Any]] = {}
    results: dict[tuple[int, str], Image.Image] = {}
    for method in tqdm(methods, desc="demo methods", disable=args.no_progress):
        paths: dict[int, tuple[Path, Path, dict[str, Any]]] = {}
        for i, (source, target) in enumerate(edits):
            settings = {
                **common,
                "method": method,
                "source_caption": source.caption,
                "target_caption": target,
                "image_seed": args.seed + i,
            }
            stem = f"{i:02d}-{method}-{settings_digest(settings)}"
            png, sidecar = edits_dir / f"{stem}.png", edits_dir / f"{stem}.json"
            if png.exists() and sidecar.exists() and not args.overwrite:
                with Image.open(png) as handle:
                    results[(i, method)] = handle.convert("RGB")
                records[(i, method)] = json.loads(sidecar.read_text(encoding="utf-8"))
            else:
                paths[i] = (png, sidecar, settings)
        if not paths:
            continue
        if pipe is None:  # loaded once, and only when something is left to edit
            pipe = load_pipeline(args.model, args.device)
            sentences = sentence_source(args.sentences, args.seed)
        todo = sorted(paths)
        # One call per method: the sources share every UNet call, each with its own generator.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pipe(
                [edits[i][0].to_pil() for i in todo],
                [edits[i][1] for i in todo],
                source_prompt=None if args.use_captioner else [edits[i][0].caption for i in todo],
                method=method,
                sentence_source=sentences,
                generator=[torch.Generator().manual_seed(args.seed + i) for i in todo],
                show_progress=False,
                **method_kwargs(args),
            )
        assert isinstance(out, ZeroConPipelineOutput)
        for row, i in enumerate(todo):
            source, target = edits[i]
            png, sidecar, settings = paths[i]
            edited = out.images[row]
            record = out.record(row)
            record.update(
                method=method,
                settings=settings,
                source_caption=source.caption,
                target_caption=target,
                metrics=metrics_if_known(source, edited, target),
            )
            save_image(edited, png)
            save_json(record, sidecar)
            results[(i, method)] = edited
            records[(i, method)] = record
    grid_rows = [[source.to_pil(), *(results[(i, m)] for m in methods)] for i, (source, _) in enumerate(edits)]
    grid_path = out_dir / "demo-grid.png"
    grid = labelled_grid(grid_rows, ["source", *methods], [target for _, target in edits], cell=128)
    save_image(grid, grid_path)
    rows = summarize(list(records.values()), methods)
    save_json(
        {"columns": ["source", *methods], "edits": [t for _, t in edits], "table": rows},
        out_dir / "demo-metrics.json",
    )
    print(f"grid (rows: each source and its target prompt; columns: source, {', '.join(methods)}): {grid_path}")
    print(format_table(rows))
    return 0
