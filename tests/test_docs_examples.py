"""Every ```python block of README.md and docs/*.md runs, in order, one namespace per file.

A block preceded by ``<!-- docs-test: skip REASON -->`` is not run and shows up as a skipped
test with that reason (for blocks that need real checkpoints). Blocks run in a temporary
working directory, with torch's global RNG restored afterwards.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(?:<!--\s*docs-test:\s*skip\s*(?P<reason>.*?)-->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def _blocks(path: Path) -> list[tuple[int, str, str | None]]:
    text = path.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group("code"), m.group("reason"))
        for m in _BLOCK.finditer(text)
    ]


def _cases() -> list[object]:
    cases = []
    for path in DOCS:
        blocks = _blocks(path)
        if blocks:
            cases.append(pytest.param(path, blocks, id=str(path.relative_to(ROOT))))
    return cases


def test_every_doc_with_code_is_collected() -> None:
    assert any(p.name == "engine.md" for p in DOCS)
    assert sum(len(_blocks(p)) for p in DOCS) >= 10


@pytest.mark.parametrize(("path", "blocks"), _cases())
def test_doc_code_blocks_run(path: Path, blocks: list[tuple[int, str, str | None]], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    with torch.random.fork_rng(devices=[]):
        for line, code, reason in blocks:
            if reason is not None:
                continue  # reported by test_doc_blocks_that_need_checkpoints
            try:
                exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"{path.name}, block at line {line} failed: {error!r}") from error


_SKIPPED = [
    pytest.param(reason.strip(), id=f"{path.relative_to(ROOT)}:{line}")
    for path in DOCS
    for line, _, reason in _blocks(path)
    if reason is not None
]


@pytest.mark.parametrize("reason", _SKIPPED or [pytest.param("", marks=pytest.mark.skip("none"))])
def test_doc_blocks_that_need_checkpoints(reason: str) -> None:
    pytest.skip(f"not run here: {reason}")
