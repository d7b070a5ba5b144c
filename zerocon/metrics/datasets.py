"""Edit datasets for evaluation: PIE-Bench's ``mapping_file.json`` layout, or a folder and a CSV."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from jaxtyping import Float
from PIL import Image
from torch import Tensor

from zerocon._paths import inside_folder
from zerocon.metrics.masks import decode_rle_mask, load_mask

_BRACKETS = re.compile(r"[\[\]]")


@dataclass(frozen=True)
class EvaluationCase:
    """One edit of an evaluation dataset.

    Attributes:
        edit_id: a stable identifier (PIE-Bench's key, or the CSV row's image name and index).
        image: the source image file.
        source_prompt: the caption of the source.
        target_prompt: what the edit should show.
        mask: PIE-Bench's run-length mask (``start, length`` pairs), or ``None``.
        mask_file: a PNG mask, or ``None``.

    Shape:
        No tensors; ``edit_mask`` gives ``(1, H, W)``.

    Examples:
        >>> case = EvaluationCase("0", Path("a.png"), "a cat", "a dog", mask=[0, 2])
        >>> case.edit_mask(2, 2, border=False).tolist()
        [[[1.0, 1.0], [0.0, 0.0]]]
    """

    edit_id: str
    image: Path
    source_prompt: str
    target_prompt: str
    mask: tuple[int, ...] | list[int] | None = None
    mask_file: Path | None = None

    def edit_mask(self, height: int = 512, width: int = 512, border: bool = True) -> Float[Tensor, "1 h w"] | None:
        """The edit region ``(1, H, W)`` at the given size, or ``None`` without a mask."""
        if self.mask is not None:
            return decode_rle_mask(self.mask, height, width, border=border)
        if self.mask_file is not None:
            return load_mask(self.mask_file, (height, width))
        return None


def read_dataset(root: str | Path) -> list[EvaluationCase]:
    """Read an evaluation dataset folder.

    Two layouts:

    - **PIE-Bench**: ``mapping_file.json`` (key → ``image_path``, ``original_prompt``,
      ``editing_prompt``, ``mask``) with the images under ``annotation_images/``; the square
      brackets PIE-Bench puts around edited words are removed.
    - **A folder and a CSV**: ``prompts.csv`` with the columns ``image``, ``source_prompt``,
      ``target_prompt`` and optionally ``mask`` (a PNG beside the images), image paths relative
      to the folder.

    Returns:
        The cases, in the file's order.

    Raises:
        FileNotFoundError: for a folder with neither file, or a listed image or mask that is missing.
        ValueError: for a malformed file, no edits, an image or mask path that leads out of the
            folder (absolute, ``..``, or a link out; refused before the path is touched), an image
            that is not readable, or a mask that does not fit its image.

    Examples:
        >>> read_dataset("/no/such/dataset")  # doctest: +SKIP
    """
    folder = Path(root).expanduser()
    mapping, table = folder / "mapping_file.json", folder / "prompts.csv"
    if mapping.is_file():
        cases = _read_pie(folder, mapping)
    elif table.is_file():
        cases = _read_csv(folder, table)
    else:
        raise FileNotFoundError(f"{str(folder)!r} holds neither mapping_file.json (PIE-Bench) nor prompts.csv")
    if not cases:
        raise ValueError(f"{str(folder)!r} lists no edits")
    for case in cases:
        for path in (case.image, case.mask_file):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"edit {case.edit_id}: {str(path)!r} does not exist")
        _check_case(case)
    return cases


def _check_case(case: EvaluationCase) -> None:
    """Read the image's header and decode the mask once, so a bad entry stops the run before it starts."""
    try:
        with Image.open(case.image) as handle:
            width, height = handle.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"edit {case.edit_id}: {str(case.image)!r} is not a readable image ({error})") from error
    if case.mask is not None:
        try:
            decode_rle_mask(case.mask, height, width)
        except ValueError as error:
            raise ValueError(f"edit {case.edit_id}: its mask does not fit the {width}x{height} image: {error}") from error


def _confined(folder: Path, relative: str, what: str) -> Path:
    """``folder / relative``, refusing paths that lead out of ``folder`` (checked before any access)."""
    if not inside_folder(folder, relative):
        raise ValueError(f"{what} {relative!r} is not a path inside {str(folder)!r} (absolute paths, '..' and "
                         "links that lead out of it are refused)")
    return folder / relative


def _confined_image(folder: Path, relative: str) -> Path:
    """``folder/annotation_images/relative``, inside ``annotation_images`` and inside the dataset
    folder itself (``annotation_images`` may not be a link out either)."""
    path = _confined(folder / "annotation_images", relative, "image_path")
    _confined(folder, f"annotation_images/{relative}", "image_path")
    return path


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not _BRACKETS.sub("", value).strip():
        raise ValueError(f"{what} must be non-empty text, got {value!r}")
    return _BRACKETS.sub("", value).strip()


def _read_pie(folder: Path, mapping: Path) -> list[EvaluationCase]:
    try:
        data = json.loads(mapping.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{mapping}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{mapping}: expected an object of edits")
    cases = []
    for key, entry in data.items():
        try:
            mask = entry.get("mask")
            if mask is not None and (not isinstance(mask, list)
                                     or not all(isinstance(v, int) and not isinstance(v, bool) for v in mask)):
                raise ValueError(f"mask must be a list of whole numbers, got {str(mask)[:80]}")
            cases.append(EvaluationCase(
                edit_id=str(key),
                image=_confined_image(folder, _text(entry["image_path"], "image_path")),
                source_prompt=_text(entry["original_prompt"], "original_prompt"),
                target_prompt=_text(entry["editing_prompt"], "editing_prompt"),
                mask=mask,
            ))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{mapping}: edit {key!r} lacks or mangles a field ({error})") from error
    return cases


def _read_csv(folder: Path, table: Path) -> list[EvaluationCase]:
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{table}: not a readable CSV file ({error})") from error
    cases = []
    for index, row in enumerate(rows):
        missing = [c for c in ("image", "source_prompt", "target_prompt") if not (row.get(c) or "").strip()]
        if missing:
            raise ValueError(f"{table}: row {index + 2} lacks {missing}")
        mask = (row.get("mask") or "").strip()
        where = f"{table}: row {index + 2}:"
        cases.append(EvaluationCase(
            edit_id=f"{index:05d}-{Path(row['image']).stem}",
            image=_confined(folder, row["image"].strip(), f"{where} image"),
            source_prompt=row["source_prompt"].strip(),
            target_prompt=row["target_prompt"].strip(),
            mask_file=_confined(folder, mask, f"{where} mask") if mask else None,
        ))
    return cases
