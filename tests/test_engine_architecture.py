"""The engine's shape (issue #26): settings groups, runtime options, v0.1 records, no import
cycles, and a model family that is not a UNet editing through the same loop."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers.models.attention import AttentionMixin
from diffusers.models.attention_processor import Attention
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

import zerocon
from zerocon.editing import (
    EditFeature,
    Editor,
    EditRequest,
    EditSettings,
    RuntimeOptions,
    settings_features,
)
from zerocon.editing.settings_groups import FLAT_NAMES, GROUPS
from zerocon.testing import tiny_components

DATA = Path(__file__).resolve().parent / "data"

#: A valid value per flat name, other than the default (for the property test).
VALUES: dict[str, list[Any]] = {
    "lambda_ac": [0.0, 3.5], "lambda_kl": [0.0, 7.0], "num_reg_iterations": [0, 2], "num_reg_rolls": [1, 3],
    "direction_scale": [-1.0, 0.7], "edit_condition": ["target", "prompt-difference"],
    "cross_attention_layers": [r"^up_blocks.*attn2$"], "guidance_schedule": ["linear"], "max_grad_norm": [0.5, None],
    "feature_term": ["feature-l2", "centered-patch-nce"], "patch_nce_layers": [r"attn1$"], "nce_num_patches": [8],
    "nce_temperature": [0.2], "nce_pool_sizes": [(1,), (1, 2, 4)], "balance_features": [True], "lambda_tone": [0.5],
    "tone_pool": [5], "reference_cfg": [False, True], "reference_from_inversion": [True],
    "inject_self_attention": [0.25], "injection_layers": [r"attn1$"], "local_blend": [True, False],
    "blend_threshold": [0.3], "blend_dilation": [0, 2], "blend_start": [0.2], "blend_pixels": [False],
    "blend_words": [("circle",), ()], "blend_invert": [True], "blend_scope": ["auto", "words"], "blend_feather": [2],
    "scene_words": [("wall",)], "scene_negative_prompt": ["", None], "scene_blend_latents": [True],
    "scene_step_factor": [0.0, 2.0], "scene_blend_dilation": [0, None], "scene_direction_scale": [0.7, None],
    "release_edited_tokens": ["scene", "all"], "scene_renoise": [0.5],
}


def test_every_flat_name_has_test_values() -> None:
    assert set(VALUES) == set(FLAT_NAMES)


def test_settings_have_at_most_15_top_level_fields_and_a_group_per_concern() -> None:
    fields = [field.name for field in dataclasses.fields(EditSettings)]
    assert len(fields) <= 15, fields
    assert set(GROUPS) <= set(fields)
    assert not set(RuntimeOptions.names()) & set(fields) & set(FLAT_NAMES)


@settings(max_examples=60, deadline=None)
@given(changes=st.sets(st.sampled_from(sorted(VALUES)), max_size=4),
       data=st.data(), method=st.sampled_from(["zerocon", "zerocon++", "pix2pix-zero", "ddim", "sdedit"]))
def test_flat_keywords_land_in_their_groups_and_round_trip(changes, data, method) -> None:
    values = {name: data.draw(st.sampled_from(VALUES[name]), label=name) for name in sorted(changes)}
    made = EditSettings(method, **values)
    replaced = EditSettings(method).replace(**values)
    assert made == replaced
    for name, value in values.items():
        group, field = FLAT_NAMES[name]
        assert made.get(name) == getattr(getattr(made, group), field) == value
    assert EditSettings.from_json(made.to_json()) == made
    assert EditSettings.from_dict(made.to_flat_dict()) == made  # the v0.1 layout reads back
    untouched = {name for name in FLAT_NAMES if name not in values}
    preset = EditSettings(method)
    assert all(made.get(name) == preset.get(name) for name in untouched)


def test_the_default_method_is_the_settings_default_and_presets_apply_in_the_constructor() -> None:
    from zerocon.editing.method_registry import DEFAULT_METHOD

    assert EditSettings().method == DEFAULT_METHOD == "zerocon++"
    assert EditSettings() == EditSettings.for_method("zerocon++")
    assert EditSettings("zerocon++").blend.enabled and not EditSettings("zerocon").blend.enabled
    assert EditSettings("zerocon++", negative_prompt=None).negative_prompt is None  # None is a value


def test_runtime_options_are_not_settings() -> None:
    for name in RuntimeOptions.names():
        with pytest.raises(TypeError, match="runtime option"):
            EditSettings(**{name: 1})
    with pytest.raises(TypeError, match="unknown edit setting 'blend_treshold'"):
        EditSettings(blend_treshold=0.3)
    with pytest.raises(ValueError, match="blend_threshold must be <= 1"):
        EditSettings(blend_threshold=2.0)


def test_a_v0_1_sidecar_reloads_its_settings_and_its_runtime_options() -> None:
    """``sidecar_v0_1.json`` was written by ``zerocon edit`` at commit a22ec75 (v0.1's layout)."""
    record = json.loads((DATA / "sidecar_v0_1.json").read_text())
    flat = record["parameters"]["settings"]
    assert "local_blend" in flat and "batch_size" in flat  # the v0.1 layout: flat, runtime mixed in
    settings = EditSettings.from_dict(flat)
    assert settings == EditSettings("zerocon++", num_inference_steps=3)
    assert RuntimeOptions.from_values(flat) == RuntimeOptions(batch_size=1)  # the command line's
    now = settings.to_flat_dict()
    assert {k: now[k] for k in flat if k not in RuntimeOptions.names()} == {
        k: v for k, v in flat.items() if k not in RuntimeOptions.names()}
    assert {now[k] for k in set(now) - set(flat)} <= {0}  # fields added since v0.1 are off


def test_zerocon_edit_reruns_a_v0_1_sidecar(tmp_path) -> None:
    from zerocon.cli.main import main

    record = json.loads((DATA / "sidecar_v0_1.json").read_text())
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")
    record["input"] = str(tmp_path / "red.png")
    sidecar = tmp_path / "old.json"
    sidecar.write_text(json.dumps(record))
    assert main(["edit", "--from-sidecar", str(sidecar), "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    (new,) = (tmp_path / "again").glob("*.json")
    redone = json.loads(new.read_text())["parameters"]["settings"]
    assert EditSettings.from_dict(redone) == EditSettings.from_dict(record["parameters"]["settings"])


def _module_imports(path: Path) -> set[str]:
    """Modules of ``zerocon.editing`` a file imports at run time (``TYPE_CHECKING`` blocks left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("zerocon.editing"):
                if child.module == "zerocon.editing":
                    found.update(f"zerocon.editing.{alias.name}" for alias in child.names)
                else:
                    found.add(str(child.module))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_no_import_cycle_between_engine_files() -> None:
    root = Path(zerocon.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in (root / "editing").rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "zerocon.editing":  # the package's own file gathers its modules
            graph[name] = _module_imports(path)
    graph = {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, trail: list[str]) -> None:  # depth first; a dependency on the trail closes a cycle
        for dep in sorted(graph[node]):
            if dep in trail:
                cycles.append([*trail[trail.index(dep):], dep])
            elif dep not in done:
                walk(dep, [*trail, dep])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            walk(start, [start])
    assert not cycles, cycles[:3]
    assert graph["zerocon.editing.settings"] and "zerocon.editing.methods" not in graph["zerocon.editing.settings"]


# ----------------------------------------------------------------------------- a family that is no UNet
class StubBlock(nn.Module):
    def __init__(self, width: int, text_dim: int) -> None:
        super().__init__()
        self.attn1 = Attention(width, heads=2, dim_head=width // 2)
        self.attn2 = Attention(width, cross_attention_dim=text_dim, heads=2, dim_head=width // 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(x)
        return x + self.attn2(x, encoder_hidden_states=context)


class StubTransformer(nn.Module, AttentionMixin):
    """Latent pixels as tokens, two blocks of self- and cross-attention: not a UNet, no config.

    diffusers' ``AttentionMixin`` gives it the processor registry every diffusers transformer has.
    """

    def __init__(self, channels: int = 4, width: int = 32, text_dim: int = 32) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj_in, self.time = nn.Linear(channels, width), nn.Linear(1, width)
        self.blocks = nn.ModuleList([StubBlock(width, text_dim) for _ in range(2)])
        self.proj_out = nn.Linear(width, channels)

    def forward(self, sample: torch.Tensor, timestep: Any, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = sample.shape
        t = torch.as_tensor(timestep, dtype=sample.dtype).reshape(-1, 1).expand(b, 1) / 1000
        x = self.proj_in(sample.flatten(2).transpose(1, 2)) + self.time(t)[:, None]
        for block in self.blocks:
            x = block(x, context)
        return self.proj_out(x).transpose(1, 2).reshape(b, c, h, w)


class StubDenoiser:
    """The whole adapter of the stub family: a call and its layer patterns."""

    def __init__(self, model: StubTransformer) -> None:
        self.model = model

    def __call__(self, sample, timestep, conditioning):
        return self.model(sample, timestep, conditioning)

    def layer_defaults(self) -> dict[str, str]:
        return {"cross_attention_layers": r"^blocks\.\d+\.attn2$", "patch_nce_layers": r"^blocks\.1\.attn1$",
                "injection_layers": r"^blocks\.1\.attn1$"}


@pytest.mark.parametrize("method", ["zerocon", "zerocon++", "pix2pix-zero", "ddim"])
def test_a_transformer_family_edits_through_the_same_loop(method) -> None:
    c = tiny_components()
    stub = StubTransformer()
    editor = Editor(stub, c.vae, c.text_encoder, c.tokenizer, c.scheduler, denoiser=StubDenoiser(stub))
    plan = editor.plan(EditSettings(method))
    if plan.method.record_cross:
        assert plan.layers.cross == ["blocks.0.attn2", "blocks.1.attn2"]
    if plan.layers.self_attention:
        assert plan.layers.self_attention == ["blocks.1.attn1"]  # the family's feature taps
    image = Image.fromarray((torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0)) * 255)
                            .to(torch.uint8).numpy())
    out = editor.edit([image], [EditRequest("a blue circle on a white background", "a red circle on a white background")],
                      EditSettings(method, num_inference_steps=3, num_reg_iterations=1, lambda_nce=1.0),
                      generator=torch.Generator().manual_seed(0), output_type="np", show_progress=False)
    pixels = out.images[0]
    assert torch.isfinite(torch.from_numpy(pixels)).all() and pixels.std() > 0
    if plan.method.record_cross:
        losses = out.guidance_losses[0]
        assert len(losses) == 3 and all(step["CrossAttentionGuidance"] >= 0 for step in losses)
        assert any(step["CrossAttentionGuidance"] > 0 for step in losses)
    assert out.parameters["resolved"]["features"] == [f.name for f in settings_features(EditSettings(method))]


def test_a_feature_that_needs_the_reference_is_refused_for_a_method_without_one() -> None:
    class Needy(EditFeature):
        needs_reference = True

    from zerocon.editing import DDIMMethod

    class DDIMWithNeedy(DDIMMethod):
        name = "ddim-needy"

        def features(self, settings):
            return [Needy()]

    c = tiny_components()
    editor = Editor(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler)
    with pytest.raises(ValueError, match="Needy needs a method with a reference pass; 'ddim-needy' has none"):
        editor.plan(EditSettings("ddim"), DDIMWithNeedy())
