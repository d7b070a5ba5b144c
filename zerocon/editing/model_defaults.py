"""``ModelDefaults``: the zerocon defaults a model folder carries in ``zerocon.json``.

A model folder (diffusers ``StableDiffusionPipeline`` layout) may hold a ``zerocon.json``::

    {
      "guidance_step_size": 3.0,
      "captioner": {"type": "clip_retrieval", "model": "captioner", "captions": "captions.txt"},
      "sentences": "sentences"
    }

Paths are relative to the folder, so a copied folder keeps its defaults. ``captioner.type``
is ``clip_retrieval`` (a CLIP folder plus a caption list, one per line) or ``blip`` (a BLIP
folder, optional ``prefix``). ``sentences`` is a folder of ``{word}.txt`` files or one text
file (see [`FileSentences`][zerocon.direction.FileSentences]).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerocon._paths import inside_folder
from zerocon.captioning import Captioner
from zerocon.direction import FileSentences, SentenceSource

CONFIG_NAME = "zerocon.json"
_KEYS = {"guidance_step_size", "captioner", "sentences", "notes"}
_CAPTIONER_KEYS = {"clip_retrieval": {"type", "model", "captions"}, "blip": {"type", "model", "prefix"}}
_CAPTIONER_REQUIRED = {"clip_retrieval": {"type", "model", "captions"}, "blip": {"type", "model"}}


@dataclass(frozen=True)
class ModelDefaults:
    """Defaults read from a model folder's ``zerocon.json`` (empty when it has none).

    Args:
        folder: the model folder (paths in the config are relative to it).
        guidance_step_size: η for settings that leave it ``None``.
        captioner: the captioner's entry (see the module doc), or ``None``.
        sentences: a sentence folder or file, relative to ``folder``, or ``None``.

    Shape:
        No tensors.

    Raises:
        ValueError: (from [`read`][zerocon.editing.ModelDefaults.read]) for a malformed file, unknown keys or missing files.

    Examples:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> ModelDefaults(folder, guidance_step_size=3.0).write().name
        'zerocon.json'
        >>> ModelDefaults.read(folder).guidance_step_size
        3.0
        >>> ModelDefaults.read(folder / "elsewhere").guidance_step_size is None
        True
    """

    folder: Path | None = None
    guidance_step_size: float | None = None
    captioner: dict[str, Any] | None = None
    sentences: str | None = None
    notes: str = ""

    @classmethod
    def read(cls, folder: str | Path) -> ModelDefaults:
        """Read ``folder/zerocon.json``; a folder without one gives empty defaults."""
        folder = Path(folder)
        path = folder / CONFIG_NAME
        if not path.is_file():
            return cls(folder)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable JSON file ({error})") from error
        if not isinstance(data, dict) or set(data) - _KEYS:
            raise ValueError(f"{path}: expected an object with keys among {sorted(_KEYS)}")
        step = data.get("guidance_step_size")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                                 or not math.isfinite(step) or step < 0):
            raise ValueError(f"{path}: guidance_step_size must be a finite number >= 0, got {step!r}")
        captioner = data.get("captioner")
        if captioner is not None:
            kind = captioner.get("type") if isinstance(captioner, dict) else None
            if (
                kind not in _CAPTIONER_KEYS
                or set(captioner) - _CAPTIONER_KEYS[kind]
                or _CAPTIONER_REQUIRED[kind] - set(captioner)
                or not all(isinstance(v, str) for v in captioner.values())
            ):
                raise ValueError(
                    f"{path}: captioner must be {{'type': 'clip_retrieval', 'model': PATH, 'captions': PATH}} "
                    "or {'type': 'blip', 'model': PATH[, 'prefix': TEXT]}"
                )
        sentences = data.get("sentences")
        if sentences is not None and not isinstance(sentences, str):
            raise ValueError(f"{path}: sentences must be a relative path")
        defaults = cls(folder, None if step is None else float(step), captioner, sentences, str(data.get("notes", "")))
        for relative in defaults._paths():
            if not inside_folder(folder, relative):
                raise ValueError(
                    f"{path}: {relative!r} is not a path inside the model folder (absolute paths, '..' "
                    "and links that lead out of it are refused)"
                )
            if not (folder / relative).exists():
                raise ValueError(f"{path}: {relative!r} does not exist in {folder}")
        return defaults

    def referenced_paths(self) -> list[str]:
        """The files and folders the defaults name, relative to ``folder``."""
        return self._paths()

    def _paths(self) -> list[str]:
        paths = [self.sentences] if self.sentences else []
        if self.captioner:
            paths.append(self.captioner["model"])
            if "captions" in self.captioner:
                paths.append(self.captioner["captions"])
        return paths

    def _resolve(self, relative: str) -> Path:
        if self.folder is None:
            raise ValueError("these defaults have no folder to resolve paths against")
        if not inside_folder(self.folder, relative):
            raise ValueError(f"{relative!r} is not a path inside the model folder {str(self.folder)!r}")
        return self.folder / relative

    def build_captioner(self, **load_kwargs: Any) -> Captioner | None:
        """The captioner the folder names (loaded now), or ``None``."""
        if not self.captioner:
            return None
        from zerocon.captioning import BlipCaptioner, ClipRetrievalCaptioner

        model = str(self._resolve(self.captioner["model"]))
        if self.captioner["type"] == "blip":
            return BlipCaptioner.from_pretrained(model, prefix=self.captioner.get("prefix", ""), **load_kwargs)
        lines = self._resolve(self.captioner["captions"]).read_text(encoding="utf-8").splitlines()
        captions = [line.strip() for line in lines if line.strip()]
        return ClipRetrievalCaptioner.from_pretrained(model, captions, **load_kwargs)

    def build_sentence_source(self) -> SentenceSource | None:
        """The folder's sentence source, or ``None``."""
        return FileSentences(self._resolve(self.sentences)) if self.sentences else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.guidance_step_size is not None:
            data["guidance_step_size"] = self.guidance_step_size
        if self.captioner:
            data["captioner"] = dict(self.captioner)
        if self.sentences:
            data["sentences"] = self.sentences
        if self.notes:
            data["notes"] = self.notes
        return data

    def write(self, folder: str | Path | None = None) -> Path:
        """Write ``zerocon.json`` into ``folder`` (default: ``folder``); returns its path."""
        target = Path(folder) if folder is not None else self._resolve(".")
        target.mkdir(parents=True, exist_ok=True)
        path = target / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path
