"""A method of your own reaches the command line (``--method package.module:Class``, entry points)."""

from __future__ import annotations

import json
import textwrap

import torch

from zerocon.cli.main import main
from zerocon.cli.method_option import ENTRY_POINT_GROUP, load_plugin_methods
from zerocon.editing import available_methods, unregister_method
from zerocon.shapes import render_random


def test_a_method_in_a_temporary_module_runs_from_the_command_line(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "my_methods.py").write_text(textwrap.dedent('''
        from zerocon.editing import EditMethod

        class Plain(EditMethod):
            name = "my-plain"
            reference = False
            description = "inversion and direction only, under another name"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    image = tmp_path / "a.png"
    render_random(torch.Generator().manual_seed(0), color="red", pattern="plain").to_pil().save(image)
    try:
        code = main(["edit", str(image), "--target", "a blue circle on a white background", "--out",
                     str(tmp_path / "o"), "--steps", "2", "--no-progress", "--method", "my_methods:Plain"])
        assert code == 0, capsys.readouterr().err
        (png,) = (tmp_path / "o").glob("*.png")
        assert json.loads(png.with_suffix(".json").read_text())["parameters"]["method"] == "my-plain"
    finally:
        unregister_method("my-plain")
    bad = main(["edit", str(image), "--target", "a cat", "--out", str(tmp_path / "o2"), "--method", "my_methods:Nope"])
    assert bad == 2 and "cannot import the method" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_installed_packages_register_methods_through_entry_points(monkeypatch) -> None:
    from zerocon.cli import method_option
    from zerocon.editing import EditMethod

    class FromPlugin(EditMethod):
        name = "from-plugin"
        reference = False

    class Point:
        def load(self):
            return FromPlugin

    class Broken:
        def load(self):
            raise ImportError("a plugin that does not import")

    monkeypatch.setattr(method_option, "entry_points",
                        lambda group: [Point(), Broken()] if group == ENTRY_POINT_GROUP else [])
    try:
        assert load_plugin_methods() == ["from-plugin"]
        assert "from-plugin" in available_methods()
    finally:
        unregister_method("from-plugin")
