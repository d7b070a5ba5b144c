"""Seeded edit cases of four types, in two disjoint splits, with their exact ground truth."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from zerocon.shapes.palette import BACKGROUND_COLORS, OBJECT_COLORS, SHAPES
from zerocon.shapes.render import RenderedShape, render, sample_spec

#: The four kinds of edit: the object's colour or shape, the background's colour or pattern.
EDIT_TYPES: tuple[str, ...] = ("color", "shape", "background", "pattern")

#: Each split draws its sources from its own seed range; the ranges never overlap. ``tuning``
#: chooses defaults; ``test`` served as the test split of two rounds and, its results known, is
#: now a second tuning split; ``fresh-test`` (a range no earlier run used) is the test split,
#: run once after the settings are fixed.
SPLIT_SEEDS: dict[str, int] = {"tuning": 500_000, "test": 900_000, "fresh-test": 2_700_000}

#: What each split is for now.
SPLIT_ROLES: dict[str, str] = {"tuning": "tuning", "test": "tuning (second)", "fresh-test": "test (run once)"}

#: Source patterns per edit type. Object and background-colour edits cycle through the three
#: textures and the plain background (three of four sources carry a texture the caption does not
#: describe). Pattern edits swap one texture for another, so source and target words align.
_SOURCE_PATTERNS: dict[str, tuple[str, ...]] = {
    "color": ("striped", "checkered", "dotted", "plain"),
    "shape": ("striped", "checkered", "dotted", "plain"),
    "background": ("striped", "checkered", "dotted", "plain"),
    "pattern": ("striped", "checkered", "dotted"),
}
_TEXTURES = ("striped", "checkered", "dotted")
_SEEDS_PER_TYPE = 10_000


@dataclass(frozen=True)
class EditCase:
    """One edit of the suite: a rendered source, the target caption and the word swap.

    Attributes:
        edit_id: ``"<split>-<type>-<index>"``, stable across runs.
        split: a key of ``SPLIT_SEEDS``.
        edit_type: one of ``EDIT_TYPES``.
        seed: the seed the source was drawn from.
        source: the source render with its ground truth.
        target: the target caption.
        source_word / target_word: the one word that differs between caption and target.
        expected: the exact render of the target where the world defines it (colour and
            background-colour edits: same geometry and texture, one colour changed); ``None``
            for shape and pattern edits, whose outcome has free parameters.

    Shape:
        source.image / expected.image: ``(64, 64, 3)`` uint8.

    Examples:
        >>> case = edit_cases("tuning", 1, ["color"])[0]
        >>> case.edit_id, case.source_word in case.source.caption.split(), case.expected is not None
        ('tuning-color-000', True, True)
    """

    edit_id: str
    split: str
    edit_type: str
    seed: int
    source: RenderedShape
    target: str
    source_word: str
    target_word: str
    expected: RenderedShape | None


def _other(options: tuple[str, ...] | list[str], current: str, generator: torch.Generator) -> str:
    rest = [o for o in options if o != current]
    return rest[int(torch.randint(len(rest), (1,), generator=generator))]


def edit_case(split: str, edit_type: str, index: int) -> EditCase:
    """The ``index``-th case of one type in one split (deterministic).

    Shape:
        source and expected images: ``(64, 64, 3)`` uint8.

    Raises:
        ValueError: for an unknown split or edit type, or an index out of range.

    Examples:
        >>> case = edit_case("test", "background", 3)
        >>> case.source_word != case.target_word, case.edit_id
        (True, 'test-background-003')
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SEEDS)}")
    if edit_type not in EDIT_TYPES:
        raise ValueError(f"unknown edit type {edit_type!r}; choose one of {list(EDIT_TYPES)}")
    if not 0 <= index < _SEEDS_PER_TYPE:
        raise ValueError(f"index must be in [0, {_SEEDS_PER_TYPE}), got {index}")
    seed = SPLIT_SEEDS[split] + EDIT_TYPES.index(edit_type) * _SEEDS_PER_TYPE + index
    generator = torch.Generator().manual_seed(seed)
    patterns = _SOURCE_PATTERNS[edit_type]
    spec = sample_spec(generator, pattern=patterns[index % len(patterns)])
    expected_spec = None
    if edit_type == "color":
        word, new = spec.color, _other(list(OBJECT_COLORS), spec.color, generator)
        expected_spec = dataclasses.replace(spec, color=new)
        target_spec = expected_spec
    elif edit_type == "shape":
        word, new = spec.shape, _other(SHAPES, spec.shape, generator)
        target_spec = dataclasses.replace(spec, shape=new)
    elif edit_type == "background":
        word, new = spec.background, _other(list(BACKGROUND_COLORS), spec.background, generator)
        expected_spec = dataclasses.replace(spec, background=new)
        target_spec = expected_spec
    else:
        word, new = spec.pattern, _other(_TEXTURES, spec.pattern, generator)
        target_spec = dataclasses.replace(spec, texture=dataclasses.replace(spec.texture, pattern=new))
    return EditCase(
        edit_id=f"{split}-{edit_type}-{index:03d}",
        split=split,
        edit_type=edit_type,
        seed=seed,
        source=render(spec),
        target=target_spec.caption,
        source_word=word,
        target_word=new,
        expected=render(expected_spec) if expected_spec is not None else None,
    )


def edit_cases(
    split: str, per_type: int, edit_types: list[str] | tuple[str, ...] = EDIT_TYPES, start: int = 0
) -> list[EditCase]:
    """``per_type`` cases of each type (indices ``start … start+per_type−1``), types interleaved.

    Args:
        split: ``"tuning"`` or ``"test"`` (choose defaults there) or ``"fresh-test"`` (report once).
        per_type: cases per edit type.
        edit_types: which types.
        start: the first index.

    Shape:
        ``len(edit_types) · per_type`` cases; images ``(64, 64, 3)`` uint8.

    Raises:
        ValueError: see [`edit_case`][zerocon.shapes.edit_case].

    Examples:
        >>> " ".join(c.edit_id for c in edit_cases("test", 1, ["shape", "pattern"]))
        'test-shape-000 test-pattern-000'
    """
    if per_type < 0:
        raise ValueError(f"per_type must be >= 0, got {per_type}")
    return [
        edit_case(split, edit_type, index)
        for index in range(start, start + per_type)
        for edit_type in edit_types
    ]
