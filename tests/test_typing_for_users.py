"""A user's own script, outside the repository, sees zerocon's types (``py.typed``, overloads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_SCRIPT = '''
from zerocon.losses import PatchNCELoss
from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import embedded_model_path

pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
out = pipe(None, "a blue circle on a white background", num_inference_steps=2)
reveal_type(out)
reveal_type(pipe(None, "a blue circle on a white background", return_dict=False))
pipe(None, "a blue circle", return_dict=False).images
reveal_type(PatchNCELoss())
'''


@pytest.mark.slow
def test_mypy_sees_the_installed_packages_types_from_a_users_script(tmp_path: Path) -> None:
    import zerocon

    assert (Path(zerocon.__file__).parent / "py.typed").is_file()
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / ".mypy"), "user.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = run.stdout.splitlines()
    assert not [line for line in lines if "import-not-found" in line or "import-untyped" in line], run.stdout
    assert 'Revealed type is "zerocon.editing.output.ZeroConPipelineOutput"' in run.stdout
    assert 'Revealed type is "tuple[Any, ...]"' in run.stdout  # return_dict=False: the overload's tuple
    assert any("user.py:10" in line and '"tuple[Any, ...]" has no attribute "images"' in line for line in lines), run.stdout
    assert 'Revealed type is "zerocon.losses.patch_nce_module.PatchNCELoss"' in run.stdout, run.stdout
    assert run.returncode == 1 and "Found 1 error" in run.stdout
