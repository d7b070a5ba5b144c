"""The structure benchmark: does contrastive guidance keep structure better? Runs the edits.

Run (resumable: finished edits are skipped; any subset of methods, types and parts):

    .venv/bin/python benchmarks/structure.py --split tuning --images 6 --steps 25 --methods zerocon pix2pix-zero
    .venv/bin/python benchmarks/structure.py --split test --images 24 --steps 25 --methods all

Each method label is a name plus optional settings, ``name@key=value,key=value``:

* ``zerocon``, ``pix2pix-zero``, ``ddim``: this project's methods; any
  :class:`~zerocon.editing.EditSettings` field can be set (``zerocon@guidance_step_size=1``).
  Extra keys: ``nce_layers=up|down|all`` (decoder, encoder or all self-attention layers),
  ``heads=1`` (PatchNCE with randomly initialised MLP heads, seed 0), ``guide=a:b`` (guidance
  only at steps ``a`` to ``b−1``), ``blend=object`` (local blend on colour and shape edits,
  none on background edits), ``blend=auto`` (also on background edits, keeping the object's
  words' region). Records labelled ``…@blend=auto-v1`` come from the first version of the
  blend (latent only, no pixel blend, dilation applied after inverting), kept for the record.
* ``sdedit@strength=0.5``: SDEdit.
* diffusers' peers (``benchmarks/structure_peers.py``): ``diffusers-pix2pix-zero``,
  ``img2img-0.5``, ``img2img-0.75``, ``diffedit``, ``ledits++``.

One JSON line per (method, edit, steps) goes to ``benchmarks/results/structure/<split>.jsonl``;
edited images to ``images/`` beside it (not committed). Summaries, plots and
the sample grid come from ``benchmarks/structure_report.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from zerocon.editing import Callback, EditMethod, EditSettings, ZeroConMethod
from zerocon.editing.methods import RecordedLayers
from zerocon.guidance import CrossAttentionGuidance, GuidanceTerm, PatchNCEGuidance
from zerocon.losses import PatchNCELoss
from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import embedded_model_path, load_embedded_clip
from zerocon.shapes.edit_suite import EDIT_TYPES, SPLIT_SEEDS, EditCase, edit_cases
from zerocon.shapes.structure_score import score_edit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from structure_peers import PEERS, build_peer  # noqa: E402
from structure_report import image_path  # noqa: E402

RESULTS = HERE / "results" / "structure"
#: What ``--methods all`` runs on the test split.
ALL_METHODS = (
    "zerocon", "pix2pix-zero", "ddim", "sdedit@strength=0.5", "sdedit@strength=0.75", *PEERS,
)
NCE_LAYERS = {"up": r"^up_blocks\..*attn1$", "down": r"^down_blocks\..*attn1$", "all": r"attn1$"}
Run = Callable[[EditCase, int, torch.Generator], tuple[Image.Image, int]]


def parse_label(label: str) -> tuple[str, dict[str, Any]]:
    """``"name@a=1,b=x"`` → ``("name", {"a": 1, "b": "x"})`` (numbers, booleans and tuples parsed)."""
    name, _, rest = label.partition("@")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, text = item.partition("=")
        value: Any = text
        if text in ("true", "false"):
            value = text == "true"
        elif "+" in text:
            value = tuple(int(v) for v in text.split("+"))
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
        options[key] = value
    return name, options


class _GuideOnly(Callback):
    """Vetoes the guidance move outside steps ``[first, last)``."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last

    def on_guidance(self, editor: Any, state: Any, event: Any) -> float | None:
        return None if self.first <= event.step < self.last else 0.0


class _ZeroConWithHeads(ZeroConMethod):
    """zeroCon with one randomly initialised MLP head per PatchNCE layer (CUT's heads, untrained)."""

    name = "zerocon-heads"

    def __init__(self, unet: torch.nn.Module) -> None:
        self.unet = unet

    def guidance_terms(self, settings: EditSettings, layers: RecordedLayers) -> list[GuidanceTerm]:
        modules = dict(self.unet.named_modules())
        channels = [modules[name].to_out[0].out_features for name in sorted(layers.self_attention)]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            patch_nce = PatchNCELoss(
                channels=channels, num_patches=settings.guidance.nce_num_patches,
                temperature=settings.guidance.nce_temperature, use_mlp=True,
                pool_sizes=settings.guidance.nce_pool_sizes,
            )
        return [
            CrossAttentionGuidance(settings.lambda_xa, layers=layers.cross),
            PatchNCEGuidance(settings.lambda_nce, patch_nce, layers=sorted(layers.self_attention)),
        ]


def build_run(label: str, pipe: ZeroConPipeline, guidance_scale: float, step_size: float) -> Run:
    name, options = parse_label(label)
    if name in PEERS:
        return build_peer(name, pipe, guidance_scale, step_size)
    if name not in ("zerocon", "zerocon++", "pix2pix-zero", "ddim", "sdedit"):
        raise SystemExit(f"unknown method {label!r}")
    method: str | EditMethod = name
    callbacks: list[Callback] = []
    blend = options.pop("blend", None)
    if options.pop("heads", 0):
        method = _ZeroConWithHeads(pipe.unet)
    if "nce_pool_sizes" in options and isinstance(options["nce_pool_sizes"], int):
        options["nce_pool_sizes"] = (options["nce_pool_sizes"],)
    if "nce_layers" in options:
        options["patch_nce_layers"] = NCE_LAYERS[options.pop("nce_layers")]
    if "guide" in options:
        first, _, last = str(options.pop("guide")).partition(":")
        callbacks.append(_GuideOnly(int(first), int(last)))
    EditSettings.for_method(name, **options)  # fail early on a bad field

    def run(case: EditCase, steps: int, generator: torch.Generator) -> tuple[Image.Image, int]:
        extra: dict[str, Any] = {}
        object_edit = case.edit_type in ("color", "shape")
        if blend == "auto" or (blend == "object" and object_edit):
            extra["local_blend"] = True
            if not object_edit:
                spec = case.source.spec
                extra.update(blend_words=(spec.color, spec.shape), blend_invert=True)
        out = pipe(
            case.source.to_pil(), case.target, source_prompt=case.source.caption,
            source_word=case.source_word, target_word=case.target_word, method=method,
            num_inference_steps=steps, generator=generator, show_progress=False,
            callbacks=callbacks, **options, **extra,
        )
        return out.images[0], int(sum(out.unet_evals[0].values()))

    return run


def done_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="tuning")
    parser.add_argument("--images", type=int, default=6, help="edits per edit type")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--methods", nargs="+", default=["zerocon", "pix2pix-zero"])
    parser.add_argument("--edit-types", nargs="+", default=list(EDIT_TYPES), choices=EDIT_TYPES)
    parser.add_argument("--part", default="0/1", help="k/n: run every n-th edit starting at k")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="JSONL file (default: results/structure/<split>.jsonl)")
    parser.add_argument("--no-images", action="store_true", help="do not save edited images")
    args = parser.parse_args()
    methods = [m for label in args.methods for m in (ALL_METHODS if label == "all" else [label])]
    k, _, n = args.part.partition("/")
    out = args.out or RESULTS / f"{args.split}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(out)

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    step_size = pipe.editor().plan(EditSettings()).step_size
    clip, processor = load_embedded_clip()
    runs = {label: build_run(label, pipe, args.guidance_scale, step_size) for label in methods}
    cases = [c for i, c in enumerate(edit_cases(args.split, args.images, args.edit_types)) if i % int(n) == int(k)]
    print(f"{len(cases)} edits x {len(methods)} methods, {args.steps} steps -> {out}", flush=True)
    for case in cases:
        for label in methods:
            key = f"{label}|{case.edit_id}|{args.steps}"
            if key in done:
                continue
            generator = torch.Generator().manual_seed(case.seed)
            start = time.perf_counter()
            image, evals = runs[label](case, args.steps, generator)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                inputs = processor(text=[case.source.caption, case.target], images=[image], return_tensors="pt", padding=True)
                logits = clip(**inputs).logits_per_image[0]
            score = score_edit(case, image)
            record = {
                "key": key, "method": label, "edit_id": case.edit_id, "edit_type": case.edit_type,
                "split": case.split, "steps": args.steps, "source": case.source.caption,
                "target": case.target, "seconds": seconds, "unet_evals": evals,
                "clip_acc": bool(logits[1] > logits[0]), **score.as_dict(),
            }
            with out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            if not args.no_images:
                path = image_path(out.parent / "images", args.split, args.steps, label, case.edit_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
            print(f"{case.edit_id} {label:28s} ok={score.success!s:5} iou={score.mask_iou:.2f} "
                  f"bg={score.background_psnr:5.1f} obj={score.object_psnr:5.1f} {seconds:5.1f}s", flush=True)


if __name__ == "__main__":
    main()
