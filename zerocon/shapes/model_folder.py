"""The zerocon defaults the embedded model folder carries (written by the training recipe).

The folder gets ``zerocon.json`` (read by [`ModelDefaults`][zerocon.editing.ModelDefaults]), the
embedded CLIP as ``captioner/``, the world's captions as ``captions.txt`` (the retrieval
captioner's candidates) and one sentence bank per word under ``sentences/``. Any copy of the
folder therefore edits exactly like the original.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from zerocon.editing.model_defaults import ModelDefaults
from zerocon.shapes.palette import BACKGROUND_COLORS, OBJECT_COLORS, PATTERNS, SHAPES, all_captions
from zerocon.shapes.vocabulary import sentence_bank

#: Guidance step size η of the embedded model. Its latents are 16×16 (SD's: 64×64), so the
#: summed losses and their gradients are far smaller than on SD and η = 0.1 barely moves the
#: latent; docs/embedded-model.md has the sweep behind this value.
EMBEDDED_GUIDANCE_STEP_SIZE = 3.0


def write_model_defaults(folder: str | Path, clip_folder: str | Path | None = None) -> ModelDefaults:
    """Write the shapes world's defaults into a diffusers model folder.

    Args:
        folder: the ``StableDiffusionPipeline`` folder.
        clip_folder: a saved ``CLIPModel`` + ``CLIPProcessor`` to copy in as ``captioner/``
            (``None`` keeps a ``captioner/`` already there).

    Returns:
        The defaults as written.

    Raises:
        FileNotFoundError: if there is no captioner to use.
    """
    folder = Path(folder)
    captioner = folder / "captioner"
    if clip_folder is not None and Path(clip_folder).resolve() != captioner.resolve():
        if captioner.exists():
            shutil.rmtree(captioner)
        shutil.copytree(clip_folder, captioner)
    if not (captioner / "config.json").is_file():
        raise FileNotFoundError(f"no captioner CLIP at {captioner}")
    (folder / "captions.txt").write_text("\n".join(all_captions()) + "\n", encoding="utf-8")
    sentences = folder / "sentences"
    sentences.mkdir(exist_ok=True)
    for word in [*OBJECT_COLORS, *SHAPES, *BACKGROUND_COLORS, *PATTERNS]:
        (sentences / f"{word}.txt").write_text("\n".join(sentence_bank(word)) + "\n", encoding="utf-8")
    defaults = ModelDefaults(
        folder,
        guidance_step_size=EMBEDDED_GUIDANCE_STEP_SIZE,
        captioner={"type": "clip_retrieval", "model": "captioner", "captions": "captions.txt"},
        sentences="sentences",
        notes="shapes-world defaults: CLIP-retrieval captioner over the world's captions, "
        "caption sentence banks, measured guidance step size",
    )
    defaults.write()
    return ModelDefaults.read(folder)
