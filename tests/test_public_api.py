"""The public API: documented (Shape + Examples), importable piecemeal, and its doctests pass."""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import torch

#: Subpackages whose ``__all__`` is the documented public API.
PUBLIC_PACKAGES = (
    "editing",
    "attention",
    "losses",
    "direction",
    "captioning",
    "guidance",
    "inversion",
    "shapes",
    "testing",
    "metrics",
)

#: The reusable components; each must import without the others ...
COMPONENTS = ("attention", "losses", "direction", "captioning", "guidance", "inversion", "metrics")

#: ... except for these documented dependencies: guidance terms wrap the losses, and the
#: inversion's noise regulariser is built on the noise-regularisation losses.
COMPONENT_DEPENDENCIES: dict[str, set[str]] = {
    "attention": set(),
    "losses": set(),
    "direction": set(),
    "captioning": set(),
    # The local blend averages attention records into per-word maps.
    "guidance": {"losses", "attention"},
    "inversion": {"losses"},
    "metrics": set(),
}

#: Modules whose doctests are not run here: pipelines and cli have their own tests, and
#: shapes.train is a training script (importing it is not free of side effects).
DOCTEST_EXCLUDED = ("zerocon.pipelines", "zerocon.cli", "zerocon.shapes.train")


def _is_documented_class(obj: Any) -> bool:
    return inspect.isclass(obj) and not issubclass(obj, Warning)


def _public_objects(predicate: Callable[[Any], bool]) -> list[Any]:
    """``pytest.param`` of each name in the packages' ``__all__`` that ``predicate`` accepts."""
    params = []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(f"zerocon.{package}")
        for name in module.__all__:
            obj = getattr(module, name)
            if predicate(obj):
                params.append(pytest.param(obj, id=f"{package}.{name}"))
    return params


@pytest.mark.parametrize("cls", _public_objects(_is_documented_class))
def test_public_class_documents_shapes_and_example(cls: type) -> None:
    doc = cls.__doc__ or ""  # its own docstring, not one inherited from a base class
    missing = [section for section in ("Shape:", "Examples:") if section not in doc]
    assert not missing, f"{cls.__module__}.{cls.__qualname__} docstring lacks {missing}"


@pytest.mark.parametrize("fn", _public_objects(inspect.isfunction))
def test_public_function_has_docstring_with_example(fn: Any) -> None:
    doc = fn.__doc__ or ""
    assert doc.strip(), f"{fn.__module__}.{fn.__qualname__} has no docstring"
    assert "Examples:" in doc, f"{fn.__module__}.{fn.__qualname__} docstring lacks Examples:"


# --------------------------------------------------------------------------- doctests
def _doctest_modules() -> list[str]:
    names = []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(f"zerocon.{package}")
        names.append(module.__name__)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
            if not info.name.startswith(DOCTEST_EXCLUDED):
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_doctests(module_name: str) -> None:
    module: ModuleType = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report: list[str] = []
    # Examples seed torch's global generator (the tiny-model builders do); keep that local.
    with torch.random.fork_rng(devices=[]):
        for test in finder.find(module, module_name):
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


# --------------------------------------------------------------------------- import isolation
# A fresh interpreter per package would cost several seconds each (torch, diffusers and
# transformers); one fresh interpreter drops every ``zerocon`` module from ``sys.modules``
# before each import instead, so each import runs all of zerocon's module code from scratch.
_ISOLATION_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys

    def fresh_import(name):
        for module in [m for m in sys.modules if m == "zerocon" or m.startswith("zerocon.")]:
            del sys.modules[module]
        importlib.import_module(name)
        return sorted({m.split(".")[1] for m in sys.modules if m.startswith("zerocon.")})

    result = {name: fresh_import(name) for name in sys.argv[1:]}
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module", autouse=True)
def _isolation_process() -> Iterator[subprocess.Popen[str]]:
    """Start the import check when this module's tests start: it runs beside the doctests."""
    names = ["zerocon", *(f"zerocon.{c}" for c in COMPONENTS)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _ISOLATION_SCRIPT, *names],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def imported_subpackages(
    _isolation_process: subprocess.Popen[str],
) -> dict[str, set[str]]:
    """``{module: zerocon subpackages in sys.modules after importing it alone}``."""
    stdout, stderr = _isolation_process.communicate(timeout=300)
    assert _isolation_process.returncode == 0, stderr
    last_line = stdout.strip().splitlines()[-1]
    return {name: set(found) for name, found in json.loads(last_line).items()}


def test_top_level_package_imports_no_subpackage(
    imported_subpackages: dict[str, set[str]],
) -> None:
    assert imported_subpackages["zerocon"] == set()


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_imports_alone(component: str, imported_subpackages: dict[str, set[str]]) -> None:
    # Private top-level helper modules (``zerocon._*``) are shared plumbing, not components.
    others = {
        m for m in imported_subpackages[f"zerocon.{component}"] - {component} if not m.startswith("_")
    }
    assert others == COMPONENT_DEPENDENCIES[component]


# ------------------------------------------------ jaxtyping on every exported tensor signature
_SUBPACKAGES = ("attention", "losses", "direction", "captioning", "guidance", "inversion", "editing",
                "pipelines", "metrics", "shapes", "testing", "web")
_JAXTYPED = re.compile(r"\b(Float|Int|Bool|Shaped|Num|Real|Integer|Inexact|UInt)\[")


def _exported_callables() -> list[tuple[str, object]]:
    import importlib
    import inspect

    found, seen = [], set()
    for package in _SUBPACKAGES:
        module = importlib.import_module(f"zerocon.{package}")
        for name in module.__all__:
            exported = getattr(module, name)
            candidates = [(f"{package}.{name}", exported)] if inspect.isfunction(exported) else []
            if inspect.isclass(exported):
                for attribute, value in vars(exported).items():
                    if attribute.startswith("_") and attribute not in ("__init__", "__call__"):
                        continue
                    function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                    if inspect.isfunction(function):
                        candidates.append((f"{package}.{name}.{attribute}", function))
            for qualified, function in candidates:
                key = (function.__module__, function.__qualname__)
                if key not in seen:
                    seen.add(key)
                    found.append((qualified, function))
    return found


def test_every_exported_tensor_signature_has_a_jaxtyping_shape() -> None:
    import inspect

    bare, typed = [], 0
    for qualified, function in _exported_callables():
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        annotations = [(n, p.annotation) for n, p in signature.parameters.items() if p.annotation is not p.empty]
        if signature.return_annotation is not signature.empty:
            annotations.append(("return", signature.return_annotation))
        for name, annotation in annotations:
            text = str(annotation)
            if "Tensor" in text:
                if _JAXTYPED.search(text):
                    typed += 1
                else:
                    bare.append(f"{qualified} {name}: {text}")
    assert not bare, "tensor annotations without a jaxtyping shape:\n" + "\n".join(bare)
    assert typed >= 150  # the exported API has about 176 tensor annotations


@pytest.mark.parametrize("module", ["zerocon.losses", "zerocon.attention", "zerocon.guidance"])
def test_the_light_parts_import_torch_and_no_model_library(module) -> None:
    """Someone who wants only a loss, the attention hook or the guided step needs neither
    diffusers nor transformers nor the pipeline (diffusers is imported when a UNet is attached)."""
    import subprocess
    import sys

    probe = (f"import sys, {module}; "
             "print(sorted({name.split('.')[0] for name in sys.modules}), 'zerocon.pipelines' in sys.modules, "
             "'zerocon.editing' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "'torch'" in loaded and loaded.strip().endswith("False False"), loaded
    for heavy in ("diffusers", "transformers", "torchmetrics", "gradio", "accelerate", "PIL", "safetensors"):
        assert f"'{heavy}'" not in loaded, heavy


def test_a_missing_extra_is_one_import_error_naming_it() -> None:
    import subprocess
    import sys

    probe = "import sys; sys.modules['torchmetrics'] = None; import zerocon.metrics"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "ImportError: zerocon.metrics needs the 'metrics' extra" in run.stderr
    assert "pip install 'zerocon[metrics]'" in run.stderr
    probe = ("import sys; sys.modules['gradio'] = None\n"
             "from zerocon.web import build_app, check_request, WebEditRequest\n"  # the job needs no Gradio
             "build_app(None)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "needs the 'demo' extra" in run.stderr and "zerocon[demo]" in run.stderr


def test_the_web_page_shares_files_with_the_command_line_not_its_code() -> None:
    import subprocess
    import sys

    probe = "import sys, zerocon.web; print(sorted(k for k in sys.modules if k.startswith('zerocon.cli')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True).stdout
    assert loaded.strip() == "[]", loaded
    from zerocon.cli.errors import CliError
    from zerocon.files import InputError

    assert CliError is InputError  # one error type: what the page catches is what the command line raises


def test_no_function_of_the_engine_is_over_80_lines() -> None:
    """The engine stays readable: a step is split into named parts, not one long loop."""
    import ast
    import pathlib

    import zerocon

    long = []
    for path in sorted((pathlib.Path(zerocon.__file__).parent / "editing").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
