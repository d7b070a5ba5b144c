"""What makes one row of ``zerocon evaluate`` what it is: the row identity.

A row is reused by a later run only when every field of its identity is equal: the dataset
entry (its id, prompts, mask, and the bytes of its image and mask file), the method, the
method's settings, the model folder (every file in it), the seed, the image side and the step
count. Anything else in the same ``--out`` is another run's and is never reported as this one's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Bytes read at a time when hashing files.
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = path.write_text("a")
        >>> file_digest(path)[:12]
        'ca978112ca1b'
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_identity(source: str | Path) -> str:
    """16 hex digits naming a model: the relative path and bytes of every file in its folder
    (``model_index.json``, configs, tokenizers, weights, ``zerocon.json``, captioner), or the hub id.

    Two folders with the same files have the same identity wherever they lie; changing any
    byte of any file changes it. Hidden files and folders (``.cache``) are left out.

    Args:
        source: a model folder, or a hub id (identified by its name alone).

    Examples:
        >>> model_identity("org/name") == model_identity("org/name")
        True
    """
    digest = hashlib.sha256()
    if not isinstance(source, Path) or not source.is_dir():
        digest.update(f"hub:{source}".encode())
        return digest.hexdigest()[:16]
    for relative, path in sorted(_files(source)):
        digest.update(f"{relative}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]


def _files(source: Path) -> list[tuple[str, Path]]:
    """Every non-hidden file under ``source``, links to files and folders followed (each real
    folder once, so a link loop ends)."""
    found, seen = [], set()
    for top, folders, files in os.walk(source, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            path = Path(top) / name
            if not name.startswith(".") and path.is_file():
                found.append((path.relative_to(source).as_posix(), path))
    return found


def case_identity(case: Any) -> str:
    """16 hex digits naming a dataset entry: its id, prompts, mask, and its files' bytes.

    Args:
        case: an [`EvaluationCase`][zerocon.metrics.EvaluationCase].
    """
    fields = {
        "edit_id": case.edit_id,
        "source_prompt": case.source_prompt,
        "target_prompt": case.target_prompt,
        "mask": list(case.mask) if case.mask is not None else None,
        "image": file_digest(case.image),
        "mask_file": file_digest(case.mask_file) if case.mask_file is not None else None,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def settings_identity(settings: dict[str, Any]) -> str:
    """16 hex digits naming a method's settings (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def metrics_identity(clip: Path | None, dino: Path | None, lpips: Path | None, lpips_net: str) -> str:
    """16 hex digits naming what scores a row: the CLIP and DINO folders' files, the LPIPS
    weights' bytes and network, and the background definition (PIE-Bench's)."""
    fields = {
        "clip": model_identity(clip) if clip is not None else None,
        "dino": model_identity(dino) if dino is not None else None,
        "lpips": file_digest(lpips) if lpips is not None else None,
        "lpips_net": lpips_net if lpips is not None else None,
        "background": "pie-bench",
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RowIdentity:
    """Everything that decides one evaluation row's numbers.

    Attributes:
        edit_id: the dataset entry's id (for messages; its content is ``entry``).
        entry: [`case_identity`][zerocon.cli.evaluation_identity.case_identity] of the entry.
        method: the method's registered name.
        settings: [`settings_identity`][zerocon.cli.evaluation_identity.settings_identity] of its settings.
        model: [`model_identity`][zerocon.cli.evaluation_identity.model_identity] of the model.
        seed: the edit's generator seed.
        size: the side the source image is resized to.
        steps: the number of denoising steps.
        metrics: [`metrics_identity`][zerocon.cli.evaluation_identity.metrics_identity] of the
            metric models and definitions that scored the row.

    Examples:
        >>> from dataclasses import replace
        >>> a = RowIdentity("0", "e", "zerocon", "s", "m", 0, 64, 20)
        >>> a.key == RowIdentity("0", "e", "zerocon", "s", "m", 0, 64, 20).key, a.key == replace(a, seed=1).key
        (True, False)
    """

    edit_id: str
    entry: str
    method: str
    settings: str
    model: str
    seed: int
    size: int
    steps: int
    metrics: str = ""

    @property
    def key(self) -> str:
        """The row's key: a digest of every field."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]

    @property
    def slot(self) -> tuple[str, str]:
        """``(edit_id, method)``: the place in a run's table this row fills."""
        return self.edit_id, self.method

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, other: dict[str, Any]) -> list[str]:
        """The fields in which a stored row's identity (a dict) differs from this one, as ``name: old → new``."""
        return [f"{name}: {other.get(name)!r} → {value!r}" for name, value in asdict(self).items()
                if other.get(name) != value]
