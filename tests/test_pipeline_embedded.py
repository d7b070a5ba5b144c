"""End-to-end on the embedded shapes model at few steps: behaviour, determinism, agreement with diffusers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionPipeline

from zerocon.captioning import ClipRetrievalCaptioner
from zerocon.direction import FileSentences, encode_prompts
from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import embedded_model_path, render_random, sentence_bank

STEPS = 4


@pytest.fixture(scope="module")
def pipe() -> ZeroConPipeline:
    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def source():
    return render_random(torch.Generator().manual_seed(0), color="red", background="white")


def test_from_pretrained_embedded_reads_the_folder_defaults(pipe: ZeroConPipeline) -> None:
    assert isinstance(pipe.captioner, ClipRetrievalCaptioner)
    assert isinstance(pipe.sentence_source, FileSentences)
    for word in ["red", "circle", "white", "striped", "plain"]:
        assert pipe.sentence_source.sentences(word) == sentence_bank(word)
    assert pipe.default_guidance_step_size == 3.0
    assert pipe.vae_scale_factor == 4


def test_a_copied_model_folder_keeps_its_defaults_and_its_output(pipe, source, tmp_path) -> None:
    import re
    import shutil
    from pathlib import Path

    import zerocon.pipelines

    for module in Path(zerocon.pipelines.__file__).parent.glob("*.py"):  # no world knowledge
        assert not re.search(r"^\s*(from|import) zerocon\.shapes", module.read_text(), re.M), module
    copy_dir = tmp_path / "elsewhere" / "model"
    shutil.copytree(embedded_model_path(), copy_dir)
    copied = ZeroConPipeline.from_pretrained(copy_dir)
    copied.set_progress_bar_config(disable=True)
    assert copied.default_guidance_step_size == pipe.default_guidance_step_size == 3.0
    assert type(copied.captioner) is type(pipe.captioner)
    assert copied.captioner([source.to_pil()]) == pipe.captioner([source.to_pil()])
    assert copied.sentence_source.sentences("red") == pipe.sentence_source.sentences("red")

    def run(p: ZeroConPipeline):
        # No caption given: the folder's captioner is used; the words come from the caption.
        return p(source.to_pil(), source.caption.replace("red", "blue"), num_inference_steps=STEPS,
                 generator=torch.Generator().manual_seed(5), show_progress=False)

    a, b = run(pipe), run(copied)
    assert a.parameters["resolved"]["guidance_step_size"] == b.parameters["resolved"]["guidance_step_size"] == 3.0
    assert a.captions == b.captions
    assert list(a.images[0].getdata()) == list(b.images[0].getdata())


@pytest.mark.parametrize("method", ["zerocon", "pix2pix-zero", "ddim", "sdedit"])
def test_every_method_is_deterministic_on_the_embedded_model(pipe, source, method) -> None:
    target = source.caption.replace("red", "blue")

    def run():
        return pipe(
            source.to_pil(),
            target,
            source_prompt=source.caption,
            method=method,
            num_inference_steps=STEPS,
            generator=torch.Generator().manual_seed(7),
            show_progress=False,
        )

    first, second = run(), run()
    assert first.images[0].size == (64, 64)
    assert list(first.images[0].getdata()) == list(second.images[0].getdata())
    assert first.edit_words == [[("red", "blue")]]
    assert first.unet_evals == second.unet_evals
    assert first.unet_evals[0]["total"] == {
        "zerocon": 5,
        "pix2pix-zero": 5,
        "ddim": 3,
        "sdedit": 2,
    }[method] * STEPS // (2 if method == "sdedit" else 1)


def test_captioner_is_used_without_source_prompt(pipe, source) -> None:
    out = pipe(
        source.to_pil(),
        source_word="red",
        target_word="blue",
        method="sdedit",
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
    )
    assert out.captions[0] in pipe.captioner.candidates  # type: ignore[union-attr]


def test_bad_word_for_the_world(pipe, source) -> None:
    with pytest.raises(ValueError, match="purple"):
        pipe(
            source.to_pil(),
            source_word="red",
            target_word="purple",
            source_prompt=source.caption,
            method="ddim",
            num_inference_steps=2,
            show_progress=False,
        )


def test_from_pipe_reuses_a_stable_diffusion_pipeline() -> None:
    sd = StableDiffusionPipeline.from_pretrained(embedded_model_path(), local_files_only=True)
    pipe = ZeroConPipeline.from_pipe(sd)
    assert pipe.unet is sd.unet and pipe.vae is sd.vae
    src = render_random(torch.Generator().manual_seed(1))
    out = pipe(
        src.to_pil(),
        "a cat",
        source_prompt=src.caption,
        method="sdedit",
        num_inference_steps=2,
        show_progress=False,
    )
    assert out.images[0].size == (64, 64)


def _diffusers_pix2pix_zero(pipe: ZeroConPipeline, caption: str, x_T, steps: int, amount: float):
    from diffusers import StableDiffusionPix2PixZeroPipeline

    p2p = StableDiffusionPix2PixZeroPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=copy.deepcopy(pipe.unet),  # diffusers swaps the processors of the unet it gets
        scheduler=DDIMScheduler.from_config(pipe.scheduler.config),
        feature_extractor=None,
        safety_checker=None,
        inverse_scheduler=DDIMInverseScheduler.from_config(pipe.scheduler.config),
        caption_generator=None,
        caption_processor=None,
        requires_safety_checker=False,
    )
    p2p.set_progress_bar_config(disable=True)
    enc = lambda word: encode_prompts(pipe.text_encoder, pipe.tokenizer, sentence_bank(word))  # noqa: E731
    return p2p(
        prompt=caption,
        source_embeds=enc("red"),
        target_embeds=enc("blue"),
        num_inference_steps=steps,
        guidance_scale=5.0,
        negative_prompt=caption,
        latents=x_T,
        cross_attention_guidance_amount=amount,
        output_type="np",
    ).images[0]


def _ours_pix2pix_zero(pipe, source, steps: int, amount: float):
    return pipe(
        source.to_pil(),
        source_word="red",
        target_word="blue",
        source_prompt=source.caption,
        method="pix2pix-zero",
        num_inference_steps=steps,
        guidance_step_size=amount,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
    )


@pytest.mark.parametrize("amount", [0.0, 0.1, 3.0])
def test_pix2pix_zero_preset_against_diffusers(pipe, source, amount) -> None:
    """Same model, inversion latent, direction, steps, CFG and guidance amount as diffusers."""
    steps = 5
    ours = _ours_pix2pix_zero(pipe, source, steps, amount)
    theirs = _diffusers_pix2pix_zero(pipe, source.caption, ours.start_latents[0], steps, amount)
    diff = abs(ours.images[0] - theirs)
    print(
        f"\npix2pix-zero vs diffusers (amount={amount}): mean |Δ| = {diff.mean():.5f}, "
        f"max |Δ| = {diff.max():.5f} (images in [0, 1])"
    )
    if amount == 0.0:
        assert diff.max() < 1e-4  # the same maths: only float summation order may differ
        return
    assert diff.mean() < 0.1
    # With guidance the two differ by design: diffusers moves the unconditional and the
    # conditional CFG rows separately, zerocon guides the c + Δc forward only. On the v0.1
    # plain-world model ours stayed closer to diffusers' guided image than to our own unguided
    # one; on the textured model it does not (docs/pipeline.md gives the numbers). What holds:
    # both guidances move the image, and the results stay close.
    unguided = _ours_pix2pix_zero(pipe, source, steps, 0.0).images[0]
    ours_move = (ours.images[0] - unguided).ravel()
    theirs_move = (theirs - unguided).ravel()
    cosine = float(ours_move @ theirs_move / (np.linalg.norm(ours_move) * np.linalg.norm(theirs_move) + 1e-12))
    print(
        f"mean |Δ|: ours-theirs {float(diff.mean()):.5f}, ours moved {float(abs(ours_move).mean()):.5f}, "
        f"theirs moved {float(abs(theirs_move).mean()):.5f}, cosine of the moves {cosine:.3f}"
    )
    assert abs(ours_move).mean() > 0 and abs(theirs_move).mean() > 0
    assert diff.mean() < 0.05


def test_save_pretrained_keeps_the_folders_defaults(tmp_path) -> None:
    """A saved and reloaded embedded pipeline captions, builds directions and steps as before."""
    from zerocon.editing import CONFIG_NAME

    original = ZeroConPipeline.from_pretrained(embedded_model_path())
    original.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / CONFIG_NAME).is_file()
    reloaded = ZeroConPipeline.from_pretrained(tmp_path / "copy")
    assert reloaded.captioner is not None and reloaded.default_guidance_step_size == original.default_guidance_step_size
    source = render_random(torch.Generator().manual_seed(3), color="red", pattern="striped").to_pil()
    outs = [
        pipe(source, target_word="blue", source_word="red", num_inference_steps=3, show_progress=False,
             generator=torch.Generator().manual_seed(0), output_type="np")
        for pipe in (original, reloaded)
    ]
    assert outs[0].captions == outs[1].captions
    assert (outs[0].images == outs[1].images).all()
