"""The documentation site builds, and its pages show no raw Sphinx roles, LaTeX or doctest quotes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAW = re.compile(r":(?:func|class|meth|mod):`|\$\$|<blockquote>\s*<blockquote>")


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs is part of the dev install")
def test_the_site_builds_strictly_and_renders_roles_math_and_examples(tmp_path) -> None:
    site = tmp_path / "site"
    build = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    bad = {str(p.relative_to(site)): RAW.findall(p.read_text(encoding="utf-8")) for p in pages}
    assert not {page: found for page, found in bad.items() if found}
    api = (site / "api" / "editing" / "index.html").read_text(encoding="utf-8")
    assert 'class="gp">&gt;&gt;&gt; </span>' in api  # examples are highlighted code
    assert 'href="../attention/#zerocon.attention.AttentionRecords"' in api or "#zerocon.attention.AttentionRecords" in api
