"""Speed on the embedded model: the peer, batching, fused calls, rows per step, the profile.

Run: ``.venv/bin/python benchmarks/speed.py --parts peer batch fuse rows profile --steps 20 50 --repeats 3``

* ``peer``: zerocon (this project's pipeline, default settings) and diffusers'
  ``StableDiffusionPix2PixZeroPipeline`` (its own inversion, then its edit; same UNet, sentences,
  η and CFG) edit the same image, A and B interleaved in one process with the order swapped
  every repeat; minimum and median wall time over the repeats. The noise regulariser's share:
  the inversion phase's time with the regulariser (the default 5 iterations) minus without it
  (``num_reg_iterations=0``), over the whole zerocon edit (medians).
* ``speedup``: ``zerocon++`` at its preset and with ``reference_from_inversion=True`` against
  diffusers' pix2pix-zero at its own defaults and at ours (the structure benchmark's two peer
  rows), all four interleaved in one process; medians and the ratios of ours to each peer.
* ``batch``: four test-split colour edits as four calls against one call of four (20 steps,
  interleaved); throughput ratio, and the largest pixel difference between an image edited in
  the batch and alone.
* ``fuse``: ``fuse_unet_calls`` on against off, for one image and for four (20 steps,
  interleaved), and the largest pixel difference it makes.
* ``rows``: UNet evaluations (rows) per step of each method, from the pipeline's own counts.
* ``profile``: where a one-image zerocon edit's time goes (20 steps), by timing wrappers
  installed in this process only: UNet forwards without and with gradients, the guidance
  backward, the noise regulariser, the two guidance losses, the VAE; the rest is "other".

Writes ``benchmarks/results/speed.json`` (one key per part; parts not run keep their last
result) and prints markdown tables. Peak memory at SD scale: ``benchmarks/guidance_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from structure_peers import build_peer  # noqa: E402

from zerocon.editing import EditSettings  # noqa: E402
from zerocon.pipelines import ZeroConPipeline  # noqa: E402
from zerocon.shapes import embedded_model_path  # noqa: E402
from zerocon.shapes.edit_suite import edit_case  # noqa: E402


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _stats(values: list[float]) -> dict[str, Any]:
    return {"s": values, "min": min(values), "median": statistics.median(values)}


def _interleaved(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Each run once per repeat, in a rotating order; seconds per run."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        if repeat % 2:
            order.reverse()
        for name in order:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


class Edits:
    """The embedded pipeline and the test split's first colour edits."""

    def __init__(self) -> None:
        self.pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
        self.pipe.set_progress_bar_config(disable=True)
        self.cases = [edit_case("test", "color", index) for index in range(4)]

    def __call__(self, cases: list[Any], steps: int, **settings: Any) -> Any:
        return self.pipe(
            [c.source.to_pil() for c in cases], [c.target for c in cases],
            source_prompt=[c.source.caption for c in cases],
            num_inference_steps=steps, generator=torch.Generator().manual_seed(0), show_progress=False,
            **settings,
        )


def part_speedup(edits: Edits, steps_list: list[int], repeats: int) -> dict[str, Any]:
    """zerocon++ (its preset, and with the reference taken during the inversion) against
    diffusers' pix2pix-zero at its own defaults and at ours, all interleaved in one process."""
    pipe, case = edits.pipe, edits.cases[0]
    step_size = pipe.editor().plan(EditSettings()).step_size
    peers = {label: build_peer(label, pipe, 5.0, step_size)
             for label in ("diffusers-pix2pix-zero", "diffusers-pix2pix-zero-own-defaults")}
    variants = {"zerocon++": {}, "zerocon++ (reference from inversion)": {"reference_from_inversion": True}}
    results: dict[str, Any] = {}
    for steps in steps_list:
        runs: dict[str, Callable[[], Any]] = {
            name: (lambda settings=settings, steps=steps: pipe(
                case.source.to_pil(), case.target, source_prompt=case.source.caption, source_word=case.source_word,
                target_word=case.target_word, method="zerocon++", num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0), show_progress=False, **settings))
            for name, settings in variants.items()
        }
        runs.update({label: (lambda peer=peer, steps=steps: peer(case, steps, torch.Generator().manual_seed(0)))
                     for label, peer in peers.items()})
        _interleaved(runs, 1)  # warm-up
        seconds = _interleaved(runs, repeats)
        medians = {name: statistics.median(values) for name, values in seconds.items()}
        results[str(steps)] = {
            "seconds": seconds, "median_s": medians,
            "ratio_to_peer_median": {
                f"{ours} / {peer}": medians[ours] / medians[peer] for ours in variants for peer in peers
            },
        }
        for key, ratio in results[str(steps)]["ratio_to_peer_median"].items():
            print(f"{steps} steps: {key}: {ratio:.2f}", flush=True)
    return results


def part_peer(edits: Edits, steps_list: list[int], repeats: int) -> dict[str, Any]:
    pipe, case = edits.pipe, edits.cases[0]
    step_size = pipe.editor().plan(EditSettings()).step_size
    peer = build_peer("diffusers-pix2pix-zero", pipe, 5.0, step_size)

    def ours(steps: int, **settings: Any) -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        out = pipe(case.source.to_pil(), case.target, source_prompt=case.source.caption,
                   source_word=case.source_word, target_word=case.target_word, num_inference_steps=steps,
                   generator=torch.Generator().manual_seed(0), show_progress=False, **settings)
        return time.perf_counter() - start, out.timings[0]

    def theirs(steps: int) -> float:
        start = time.perf_counter()
        peer(case, steps, torch.Generator().manual_seed(0))
        return time.perf_counter() - start

    ours(4), theirs(4)  # warm-up
    results: dict[str, Any] = {}
    for steps in steps_list:
        a, b, reg_on, reg_off, total = [], [], [], [], []
        for repeat in range(repeats):
            order = ("ours", "theirs") if repeat % 2 == 0 else ("theirs", "ours")
            for who in order:
                if who == "ours":
                    seconds, timings = ours(steps)
                    a.append(seconds)
                    reg_on.append(timings["inversion"])
                    total.append(seconds)
                else:
                    b.append(theirs(steps))
            reg_off.append(ours(steps, num_reg_iterations=0)[1]["inversion"])
        share = (statistics.median(reg_on) - statistics.median(reg_off)) / statistics.median(total)
        results[str(steps)] = {
            "zerocon_s": a, "diffusers_p2p0_s": b,
            "ratio_min": min(a) / min(b), "ratio_median": statistics.median(a) / statistics.median(b),
            "inversion_with_regulariser_s": reg_on, "inversion_without_regulariser_s": reg_off,
            "regulariser_share": share,
        }
        print(f"{steps} steps: zerocon {min(a):.2f}/{statistics.median(a):.2f} s, diffusers "
              f"{min(b):.2f}/{statistics.median(b):.2f} s, regulariser share {share:.1%}", flush=True)
    return results


def part_batch(edits: Edits, repeats: int) -> dict[str, Any]:
    cases = edits.cases
    edits(cases[:1], 4)  # warm-up
    seconds = _interleaved({
        "four_calls": lambda: [edits([case], 20) for case in cases],
        "one_call_of_four": lambda: edits(cases, 20),
    }, repeats)
    together = edits(cases, 20).images
    alone = [edits([case], 20).images[0] for case in cases]
    diff = max(int(np.abs(_pixels(a) - _pixels(b)).max()) for a, b in zip(together, alone, strict=True))
    result = {name: _stats(values) for name, values in seconds.items()}
    result["throughput_min"] = min(seconds["four_calls"]) / min(seconds["one_call_of_four"])
    result["throughput_median"] = statistics.median(seconds["four_calls"]) / statistics.median(seconds["one_call_of_four"])
    result["max_pixel_difference_batch_vs_alone"] = diff
    print(f"batch: {result['throughput_min']:.2f}x / {result['throughput_median']:.2f}x, max pixel diff {diff}", flush=True)
    return result


def part_fuse(edits: Edits, repeats: int) -> dict[str, Any]:
    cases = edits.cases
    edits(cases[:1], 4)
    result: dict[str, Any] = {}
    for label, chosen in (("one_image", cases[:1]), ("four_images", cases)):
        seconds = _interleaved({
            "fused": lambda chosen=chosen: edits(chosen, 20, fuse_unet_calls=True),
            "separate": lambda chosen=chosen: edits(chosen, 20, fuse_unet_calls=False),
        }, repeats)
        result[label] = {name: _stats(values) for name, values in seconds.items()}
        result[label]["saving_median"] = 1 - statistics.median(seconds["fused"]) / statistics.median(seconds["separate"])
        print(f"fuse {label}: saves {result[label]['saving_median']:.1%} (median)", flush=True)
    fused = edits(cases, 20, fuse_unet_calls=True, batch_size=1).images
    separate = edits(cases, 20, fuse_unet_calls=False, batch_size=1).images
    result["max_pixel_difference"] = max(
        int(np.abs(_pixels(a) - _pixels(b)).max()) for a, b in zip(fused, separate, strict=True)
    )
    result["mean_pixel_difference"] = float(np.mean([
        np.abs(_pixels(a) - _pixels(b)).mean() for a, b in zip(fused, separate, strict=True)
    ]))
    return result


def part_rows(edits: Edits) -> dict[str, Any]:
    case = edits.cases[:1]
    result: dict[str, Any] = {}
    for method in ("zerocon", "pix2pix-zero", "ddim", "sdedit"):
        for fuse in (True, False):
            out = edits(case, 20, method=method, fuse_unet_calls=fuse)
            steps = round(20 * out.parameters["resolved"]["strength"]) if method == "sdedit" else 20
            calls = [0]
            handle = edits.pipe.unet.register_forward_pre_hook(lambda *_, calls=calls: calls.__setitem__(0, calls[0] + 1))
            try:
                edits(case, 20, method=method, fuse_unet_calls=fuse)
            finally:
                handle.remove()
            result[f"{method}@fuse={fuse}"] = {"evals": out.unet_evals[0], "steps": steps, "calls": calls[0]}
    return result


def part_profile(edits: Edits, repeats: int) -> dict[str, Any]:
    """Seconds inside each instrumented function during one-image 20-step zerocon edits."""
    from zerocon.guidance import CrossAttentionGuidance, PatchNCEGuidance
    from zerocon.inversion import NoiseRegularizer

    totals: dict[str, float] = {}
    unet_cls, vae = type(edits.pipe.unet), edits.pipe.vae

    def timed(owner: Any, name: str, label: Callable[..., str]) -> Callable[[], None]:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = label(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

        setattr(owner, name, wrapper)
        return lambda: setattr(owner, name, original)

    undo = [
        timed(unet_cls, "forward", lambda *a, **k: "UNet forward, gradients on (guidance)"
              if torch.is_grad_enabled() else "UNet forward, no gradients"),
        timed(torch.autograd, "grad", lambda *a, **k: "guidance backward"),
        timed(NoiseRegularizer, "forward", lambda *a, **k: "noise regulariser"),
        timed(PatchNCEGuidance, "loss", lambda *a, **k: "PatchNCE loss"),
        timed(CrossAttentionGuidance, "loss", lambda *a, **k: "cross-attention loss"),
        timed(vae, "encode", lambda *a, **k: "VAE"),
        timed(vae, "decode", lambda *a, **k: "VAE"),
    ]
    try:
        edits(edits.cases[:1], 4)
        totals.clear()
        wall = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            edits(edits.cases[:1], 20)
            wall += time.perf_counter() - start
    finally:
        for restore in undo:
            restore()
    shares = {key: value / wall for key, value in sorted(totals.items(), key=lambda kv: -kv[1])}
    shares["other"] = 1 - sum(shares.values())
    print("profile:", {k: f"{v:.1%}" for k, v in shares.items()}, flush=True)
    return {"wall_s": wall / repeats, "shares": shares}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["peer", "batch", "fuse", "rows", "profile"],
                        choices=["peer", "speedup", "batch", "fuse", "rows", "profile"])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speed.json")
    args = parser.parse_args()
    edits = Edits()
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "peer" not in results and any(key.isdigit() for key in results):  # the first version's layout
        results = {"peer": {key: value for key, value in results.items() if key.isdigit()}}
    results["torch_threads"] = torch.get_num_threads()
    for part in args.parts:
        if part == "peer":
            results["peer"] = part_peer(edits, args.steps, args.repeats)
        elif part == "speedup":
            results["speedup"] = part_speedup(edits, args.steps, args.repeats)
        elif part == "batch":
            results["batch"] = part_batch(edits, args.repeats)
        elif part == "fuse":
            results["fuse"] = part_fuse(edits, args.repeats)
        elif part == "rows":
            results["rows"] = part_rows(edits)
        else:
            results["profile"] = part_profile(edits, args.repeats)
        results.setdefault("commands", {})[part] = " ".join(sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    if "peer" in results:
        print("\n| steps | zerocon s (min / median) | diffusers P2P0 s (min / median) | ratio (min / median) | regulariser share |")
        print("|---|---|---|---|---|")
        for steps, r in results["peer"].items():
            print(f"| {steps} | {min(r['zerocon_s']):.2f} / {statistics.median(r['zerocon_s']):.2f} | "
                  f"{min(r['diffusers_p2p0_s']):.2f} / {statistics.median(r['diffusers_p2p0_s']):.2f} | "
                  f"{r['ratio_min']:.2f} / {r['ratio_median']:.2f} | {r['regulariser_share']:.1%} |")
    if "batch" in results:
        r = results["batch"]
        print("\n| four calls s (min / median) | one call of four s (min / median) | throughput (min / median) | max pixel difference |")
        print("|---|---|---|---|")
        print(f"| {r['four_calls']['min']:.2f} / {r['four_calls']['median']:.2f} | "
              f"{r['one_call_of_four']['min']:.2f} / {r['one_call_of_four']['median']:.2f} | "
              f"{r['throughput_min']:.2f}x / {r['throughput_median']:.2f}x | {r['max_pixel_difference_batch_vs_alone']} |")
    if "fuse" in results:
        r = results["fuse"]
        print("\n| images | fused s (min / median) | separate s (min / median) | saving (median) |")
        print("|---|---|---|---|")
        for label in ("one_image", "four_images"):
            x = r[label]
            print(f"| {label.replace('_', ' ')} | {x['fused']['min']:.2f} / {x['fused']['median']:.2f} | "
                  f"{x['separate']['min']:.2f} / {x['separate']['median']:.2f} | {x['saving_median']:.1%} |")
        print(f"\nfused vs separate outputs: max pixel difference {r['max_pixel_difference']}, "
              f"mean {r['mean_pixel_difference']:.4f} (of 255)")
    if "rows" in results:
        print("\n| method | fused | rows per edit step (reference / guidance / CFG) | inversion rows | rows in all | UNet calls in all |")
        print("|---|---|---|---|---|---|")
        for key, r in results["rows"].items():
            method, fuse = key.split("@fuse=")
            e, n = r["evals"], r["steps"]
            print(f"| {method} | {fuse} | {e.get('reference', 0) / n:g} / {e.get('guidance', 0) / n:g} / "
                  f"{e.get('denoise', 0) / n:g} | {e.get('inversion', 0)} | {e['total']} | {r['calls']} |")
    if "profile" in results:
        print("\n| part | share of a one-image 20-step zerocon edit |")
        print("|---|---|")
        for key, share in results["profile"]["shares"].items():
            print(f"| {key} | {share:.1%} |")


if __name__ == "__main__":
    main()
