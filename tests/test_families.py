"""A model family is one record (vniahd.models.families): every record round-trips through
``random:`` and ``hf:``, a ninth family added here alone runs end to end, and nothing outside the
families package branches on a family's name."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
from evaluate_fixtures import make_dataset
from model_helpers import FAMILY_SPECS, save_and_reload

from vniahd.cli import main
from vniahd.models import families, get_backend

ROOT = Path(__file__).resolve().parents[1] / "vniahd"


def test_every_record_is_in_the_test_specs_and_has_a_distinct_alias():
    assert set(families.FAMILIES) == set(FAMILY_SPECS)
    for model_type, record in families.FAMILIES.items():
        assert families.by_model_type(model_type) is record
        assert families.by_random_alias(record.random_alias) is record
        assert families.by_backend_family(record.random_family) is record
        assert FAMILY_SPECS[model_type].split("?")[0] == f"random:{record.random_alias}"


@pytest.mark.parametrize("model_type", sorted(FAMILY_SPECS))
def test_random_model_round_trips_through_hf(model_type, tmp_path):
    record = families.FAMILIES[model_type]
    be = get_backend(FAMILY_SPECS[model_type], dtype="float32")
    assert families.family_of(be) is record and be.family == record.random_family
    hf = save_and_reload(be, tmp_path / "ckpt")
    assert hf.family == model_type and families.family_of(hf) is record
    assert type(hf) is type(be) and type(be) is record.backend_class()
    assert hf.rotary == be.rotary
    assert (hf.rotary.native_allocation, hf.rotary.pair_layout) == (
        record.native_allocation,
        record.pair_layout,
    )
    assert hf.can_crop_cache is be.can_crop_cache is record.can_crop_cache
    assert hf.layout_params == be.layout_params


def test_a_record_that_disagrees_with_the_rotary_module_is_refused():
    from vniahd.errors import VniahdError

    be = get_backend("random:qwen2-vl", dtype="float32")
    wrong = dataclasses.replace(families.FAMILIES["qwen2_vl"], native_allocation="interleaved")
    with pytest.raises(VniahdError, match="rotary module does"):
        wrong.check_rotary(be.rotary)


# ---- a ninth family, defined here alone -------------------------------------------------------
def _toy_config(p, bos, eos):
    """A Qwen2-VL config saved under its own model_type (what a renamed fork's checkpoint holds)."""
    from transformers import Qwen2VLConfig

    class ToyVLConfig(Qwen2VLConfig):
        model_type = "toy_vl"

    base = families.FAMILIES["qwen2_vl"].random_config(p, bos, eos)
    return ToyVLConfig(text_config=base.text_config.to_dict(), vision_config=base.vision_config.to_dict())


@pytest.fixture
def toy_family():
    qwen2 = families.FAMILIES["qwen2_vl"]
    record = dataclasses.replace(
        qwen2,
        model_type="toy_vl",
        name="Toy-VL",
        layout="mrope-frames",  # not Qwen2-VL's: native must come from this record
        source="the test suite's toy family",
        random_alias="toy-vl",
        random_config=_toy_config,
    )
    families.register_family(record)
    yield record
    families.unregister_family("toy_vl")
    assert families.by_random_alias("toy-vl") is None


def test_a_ninth_family_runs_through_random_hf_native_and_export(toy_family, tmp_path, monkeypatch):
    from vniahd.evaluation import read_results

    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    be = get_backend("random:toy-vl", dtype="float32")
    assert be.family == "toy_vl" and families.family_of(be) is toy_family
    variant = families.native_variant(be, fps=1.0)
    assert variant.layout == "mrope-frames" and variant.source == toy_family.source
    hf = save_and_reload(be, tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "toy_vl"
    assert families.family_of(hf) is toy_family and hf.rotary == be.rotary

    ds = make_dataset(tmp_path / "ds", lengths=(6,), depths=("0.5",))
    out = tmp_path / "res"
    args = ["eval", "--dataset", str(ds.path), "--model", f"hf:{tmp_path / 'ckpt'}", "--variant", "native"]
    assert main([*args, "--out", str(out), "--limit", "2", "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["variants"]["native"]["layout"] == "mrope-frames"
    assert len(read_results(out)) == 2

    sample = str(ds.samples["sample_id"].iloc[0])
    exported = tmp_path / "s.safetensors"
    export = ["export-inputs", "--dataset", str(ds.path), "--model", "random:toy-vl", "--variant", "native"]
    assert main([*export, "--sample", sample, "--out", str(exported)]) == 0
    meta = json.loads(exported.with_name(exported.name + ".json").read_text())
    assert meta["allocation"]["native"] is True


# ---- no family names outside the families package ---------------------------------------------
def _family_names() -> set[str]:
    names: set[str] = set()
    for r in families.FAMILIES.values():
        names |= {*r.all_model_types, r.random_alias, r.random_family, r.name, r.transformers_class}
    return {n.lower() for n in names}


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants of a module that are not docstrings (nor bare string statements)."""
    bare = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare
    ]


def test_no_family_name_literals_outside_the_families_package():
    names = _family_names()
    hits = []
    for path in sorted(ROOT.rglob("*.py")):
        if "families" in path.relative_to(ROOT).parts:
            continue
        for node in _code_strings(ast.parse(path.read_text())):
            text = node.value.strip().lower().removeprefix("random:")
            # a family's name, or a prefix of one used to recognise it (e.g. "Qwen3" of a class name)
            if len(text) >= 4 and " " not in text and any(n.startswith(text) for n in names):
                hits.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {node.value!r}")
    assert not hits, "family names used in code outside vniahd/models/families/:\n" + "\n".join(hits)
