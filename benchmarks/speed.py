"""Speed on the embedded model: zerocon against diffusers' pix2pix-zero, and the regulariser's share.

Run: ``.venv/bin/python benchmarks/speed.py --steps 20 50 --repeats 3``

* **Against the peer.** zerocon (this project's pipeline, default settings) and diffusers'
  ``StableDiffusionPix2PixZeroPipeline`` (its own inversion, then its edit; same UNet, sentences,
  η and CFG) edit the same image, A and B interleaved in one process with the order swapped
  every repeat; minimum and median wall time over the repeats.
* **The noise regulariser's share.** The inversion phase's time with the regulariser (the
  default 5 iterations) minus without it (``num_reg_iterations=0``), as a share of the whole
  zerocon edit, from the pipeline's own phase timings (median over the repeats).

Writes ``benchmarks/results/speed.json`` and prints markdown tables. Batching, rows per step,
the profile split and peak memory are not measured here yet (memory at SD scale:
``benchmarks/guidance_memory.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from structure_peers import build_peer  # noqa: E402

from zerocon.editing import EditSettings  # noqa: E402
from zerocon.pipelines import ZeroConPipeline  # noqa: E402
from zerocon.shapes import embedded_model_path  # noqa: E402
from zerocon.shapes.edit_suite import edit_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speed.json")
    args = parser.parse_args()
    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    step_size = pipe.editor().plan(EditSettings()).step_size
    peer = build_peer("diffusers-pix2pix-zero", pipe, 5.0, step_size)
    case = edit_case("test", "color", 0)

    def ours(steps: int, **settings: float) -> tuple[float, dict[str, float]]:
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
    results: dict[str, dict] = {"torch_threads": {"value": torch.get_num_threads()}}
    for steps in args.steps:
        a, b, reg_on, reg_off, total = [], [], [], [], []
        for repeat in range(args.repeats):
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results}, indent=1))
    print("\n| steps | zerocon s (min / median) | diffusers P2P0 s (min / median) | ratio (min / median) | regulariser share |")
    print("|---|---|---|---|---|")
    for steps in args.steps:
        r = results[str(steps)]
        print(f"| {steps} | {min(r['zerocon_s']):.2f} / {statistics.median(r['zerocon_s']):.2f} | "
              f"{min(r['diffusers_p2p0_s']):.2f} / {statistics.median(r['diffusers_p2p0_s']):.2f} | "
              f"{r['ratio_min']:.2f} / {r['ratio_median']:.2f} | {r['regulariser_share']:.1%} |")


if __name__ == "__main__":
    main()
