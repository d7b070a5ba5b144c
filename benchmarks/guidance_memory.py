"""Peak memory of an edit at Stable Diffusion 1.5 scale: inversion phase against edit phase.

Run: ``.venv/bin/python benchmarks/guidance_memory.py --sizes 128 256 512 --steps 2``

Each configuration runs in a fresh process (peak RSS only grows within one) on randomly
initialised models with Stable Diffusion 1.5's UNet and VAE configurations (860M and 84M
parameters, float32) and a one-layer 768-wide text encoder. It records the peak resident memory
when the inversion ends, after the first step's reference forward, after its guidance backward,
after its classifier-free-guidance step, when the edit's steps end and after decoding, and the
seconds each phase took. Configurations: ``default`` (UNet weights frozen during the edit),
``fused`` (``fuse_unet_calls=True``), ``checkpointing`` (``gradient_checkpointing=True``),
``checkpointing-fused`` (both), and ``peer`` (diffusers' ``StableDiffusionPix2PixZeroPipeline``
on the same models: its inversion, then its edit with cross-attention guidance; only the
inversion and the whole call can be marked). Writes
``benchmarks/results/guidance_memory.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODES = ("default", "fused", "checkpointing", "checkpointing-fused", "peer")
WORDS = ["a", "red", "blue", "circle", "on", "white", "background", "photo", "of"]


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def measure(size: int, steps: int, mode: str) -> dict[str, Any]:
    """One edit in this process; returns peaks (GiB) and phase times (s)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from PIL import Image
    from transformers import CLIPTextConfig, CLIPTextModel

    from zerocon.direction import TemplateSentences
    from zerocon.editing import Callback
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.shapes.word_tokenizer import build_word_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512,
    ).eval()
    tokenizer = build_word_tokenizer(WORDS, model_max_length=77)
    encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=tokenizer.vocab_size + 2, hidden_size=768, intermediate_size=3072, num_hidden_layers=1,
        num_attention_heads=12, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    marks: dict[str, float] = {"loaded": _peak_gib()}
    times: dict[str, float] = {"start": time.perf_counter()}
    image = Image.new("RGB", (size, size), (200, 40, 40))
    source, target = "a red circle on a white background", "a blue circle on a white background"
    if mode == "peer":
        from diffusers import DDIMInverseScheduler, StableDiffusionPix2PixZeroPipeline

        from zerocon.direction import encode_prompts

        p2p = StableDiffusionPix2PixZeroPipeline(
            vae=vae, text_encoder=encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
            inverse_scheduler=DDIMInverseScheduler.from_config(scheduler.config), safety_checker=None,
            feature_extractor=None, caption_generator=None, caption_processor=None, requires_safety_checker=False,
        )
        p2p.set_progress_bar_config(disable=True)
        sentences = TemplateSentences(["a photo of a {}", "a {} on a background"])
        inverted = p2p.invert(source, image=image, num_inference_steps=steps,
                              generator=torch.Generator().manual_seed(0)).latents
        marks["inversion"] = _peak_gib()
        times["inversion_end"] = time.perf_counter()
        p2p(prompt=source, source_embeds=encode_prompts(encoder, tokenizer, sentences.sentences("red")),
            target_embeds=encode_prompts(encoder, tokenizer, sentences.sentences("blue")),
            num_inference_steps=steps, guidance_scale=5.0, negative_prompt=source, latents=inverted,
            cross_attention_guidance_amount=0.1, generator=torch.Generator().manual_seed(0),
            height=size, width=size)
        marks["edit"] = _peak_gib()
        times["edit_end"] = time.perf_counter()
    else:
        pipe = ZeroConPipeline(vae, encoder, tokenizer, unet, scheduler,
                               sentence_source=TemplateSentences(["a photo of a {}", "a {} on a background"]))

        class Marks(Callback):
            def on_reference_step(self, editor: Any, state: Any, step: int, *args: Any) -> None:
                if step == 0:
                    marks["inversion"] = _peak_gib()
                    times["inversion_end"] = time.perf_counter()
                    marks["reference"] = _peak_gib()

            def on_guidance(self, editor: Any, state: Any, event: Any) -> None:
                if event.step == 0:
                    marks["guidance"] = _peak_gib()

            def on_edit_step(self, editor: Any, state: Any, step: int, *args: Any) -> None:
                if step == 0:
                    marks["cfg"] = _peak_gib()
                if step == len(state.timesteps) - 1:
                    marks["edit"] = _peak_gib()
                    times["edit_end"] = time.perf_counter()

        pipe(image, target, source_prompt=source, num_inference_steps=steps, guidance_step_size=0.1,
             show_progress=False, callbacks=[Marks()], generator=torch.Generator().manual_seed(0),
             gradient_checkpointing=mode.startswith("checkpointing"), fuse_unet_calls=mode.endswith("fused"))
    marks["decoded"] = _peak_gib()
    end = time.perf_counter()
    return {
        "size": size, "steps": steps, "mode": mode, "torch_threads": torch.get_num_threads(),
        "peak_loaded_gib": marks["loaded"], "peak_inversion_gib": marks["inversion"],
        "peak_first_reference_gib": marks.get("reference"), "peak_first_guidance_gib": marks.get("guidance"),
        "peak_first_cfg_gib": marks.get("cfg"), "peak_edit_gib": marks["edit"], "peak_decoded_gib": marks["decoded"],
        "edit_minus_inversion_gib": marks["edit"] - marks["inversion"],
        "inversion_seconds": times["inversion_end"] - times["start"],
        "edit_seconds": times["edit_end"] - times["inversion_end"], "decode_seconds": end - times["edit_end"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "STEPS", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "guidance_memory.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), int(args.child[1]), args.child[2])))
        return
    rows = []
    for size in args.sizes:
        for mode in args.modes:
            done = subprocess.run([sys.executable, __file__, "--child", str(size), str(args.steps), mode],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    # Rows of other (size, mode) pairs already in the file are kept, so configurations can be
    # re-measured one at a time.
    kept = json.loads(args.out.read_text()) if args.out.exists() else []
    done_keys = {(r["size"], r["mode"]) for r in rows}
    rows = sorted([r for r in kept if (r["size"], r["mode"]) not in done_keys] + rows,
                  key=lambda r: (r["size"], MODES.index(r["mode"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print("\n| size | mode | inversion peak | + first reference | + first guidance | + first CFG step | edit peak | "
          "after decoding | edit − inversion | inversion s | edit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def gib(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    for r in rows:
        print(f"| {r['size']} | {r['mode']} | {r['peak_inversion_gib']:.2f} | {gib(r['peak_first_reference_gib'])} | "
              f"{gib(r['peak_first_guidance_gib'])} | {gib(r['peak_first_cfg_gib'])} | {r['peak_edit_gib']:.2f} | "
              f"{r['peak_decoded_gib']:.2f} | {r['edit_minus_inversion_gib']:+.2f} | {r['inversion_seconds']:.1f} | "
              f"{r['edit_seconds']:.1f} |")


if __name__ == "__main__":
    main()
