"""The tiny checkpoints shipped with the package: integrity, keys, float16 round trip, and which
weights the ``tiny`` backend scores with.

Independent expectations: the manifest's sha256 against hashlib over the file, the loaded
parameters against ``tensor.half().float()`` of the model that was written (torch's own rounding),
and the checkpoint keys against the default recipe computed from scratch.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from vniahd.errors import VniahdError
from vniahd.models.tiny.shipped import WEIGHTS_DIR, read_manifest
from vniahd.rope import get_variant

VARIANTS = {"vanilla", "tad", "mrope", "videorope"}
MB = 1_000_000


# ---- the shipped folder ------------------------------------------------------------------------
def test_every_paper_variant_ships_three_seeds_within_the_size_budget():
    entries = read_manifest()["checkpoints"]
    pairs = {(e["variant_name"], e["seed"]) for e in entries}
    assert pairs >= {(v, s) for v in VARIANTS for s in (0, 1, 2)}
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    assert sorted(p.name for p in files) == sorted(e["file"] for e in entries)  # nothing unlisted
    assert all(p.stat().st_size <= 4 * MB for p in files)
    # 12 paper checkpoints and 27 of published designs (hope, vrope, mhrope, videorope-plus,
    # mrope-i, v2pe, circle-rope, omnirope, mmrope), 1.35 MB each
    assert sum(p.stat().st_size for p in files) <= 55 * MB
    for e in entries:
        path = WEIGHTS_DIR / e["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"], e["file"]
        assert e["bytes"] == path.stat().st_size
        # what shapes the floats is recorded, and the command that reproduces it
        assert {"torch", "transformers", "cpu_capability", "threads", "cpu"} <= set(e["machine"])
        assert e["command"].startswith(f"vniahd train-tiny --variant {e['variant_name']}")
        assert e["train_config"]["seed"] == e["seed"]


@pytest.mark.integration
def test_shipped_keys_are_the_default_recipe_keys(demo_haystack):
    """A change to the recipe, the vocabulary or a variant's definition changes the key, and the
    default ``tiny`` would silently fall back to local training: this catches it."""
    from vniahd.models.tiny.recipe import Recipe
    from vniahd.models.tiny.shipped import portable_key

    base = Recipe()
    for e in read_manifest()["checkpoints"]:
        recipe = base.with_train(seed=e["seed"])
        v = get_variant(e["variant_name"])
        assert recipe.checkpoint_key(v) == e["checkpoint_key"], e["file"]
        assert portable_key(recipe, v) == e["portable_key"], e["file"]


# ---- write / load round trip on a small model ------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small untrained model (no training needed for a storage round trip) and its recipe."""
    from vniahd.models.tiny.model import TinyConfig, TinyVideoLM
    from vniahd.models.tiny.recipe import Recipe
    from vniahd.models.tiny.vocab import option_parts
    from vniahd.training.train import TrainConfig

    recipe = Recipe(train=TrainConfig(steps=3, model=TinyConfig(num_layers=1, intermediate_size=64)))
    words = ["a", "b", "cat", "red", "A.", "B."]
    object.__setattr__(recipe, "words", words)  # cached_property slot: skip the haystack scan
    torch.manual_seed(0)
    vocab = {w: i for i, w in enumerate(words)}
    model = TinyVideoLM(recipe.train.model, len(words), token_parts=option_parts(vocab))
    with torch.no_grad():  # values of every magnitude, including some float16 cannot hold exactly
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.37)
    v = get_variant("videorope")
    meta = {
        "variant_name": "videorope",
        "seed": 0,
        "checkpoint_key": "k" * 16,
        "variant": v.to_dict(),
        "train_config": recipe.train.to_dict(),
        "data_key": "d" * 16,
        "machine": {"torch": torch.__version__, "threads": 1},
        "training": {"seconds": 1.0, "steps": 3},
    }
    root = tmp_path_factory.mktemp("weights")
    return {"recipe": recipe, "model": model, "variant": v, "meta": meta, "root": root}


def _write(small):
    from vniahd.models.tiny.shipped import write_shipped

    portable = "p" * 16
    import vniahd.models.tiny.shipped as shipped_mod

    original = shipped_mod.portable_key
    shipped_mod.portable_key = lambda recipe, variant: portable  # no haystack in this fixture
    try:
        return write_shipped(
            small["model"],
            small["variant"],
            small["meta"],
            small["recipe"],
            command="cmd",
            root=small["root"],
        )
    finally:
        shipped_mod.portable_key = original


def test_write_then_load_gives_the_float16_rounded_weights(small):
    from vniahd.models.tiny.shipped import find_shipped, load_shipped, weight_distance

    entry = _write(small)
    assert entry["dtype"] == "float16"
    manifest = json.loads((small["root"] / "manifest.json").read_text())
    assert [e["file"] for e in manifest["checkpoints"]] == ["videorope-seed0.safetensors"]
    ckpt = find_shipped("k" * 16, root=small["root"])
    assert ckpt is not None and ckpt.exact
    loaded = load_shipped(ckpt, small["recipe"])
    ref = small["model"].state_dict()
    got = loaded.state_dict()
    assert set(got) == set(ref)
    changed = 0
    for name, t in ref.items():
        expect = t.half().float()  # torch's own round-to-nearest-even to float16
        assert got[name].dtype == torch.float32
        assert torch.equal(got[name], expect), name
        changed += int((expect != t).sum())
    assert changed > 0  # the rounding was real, so the equality above is not trivial
    # the tied head is the embedding, stored once
    assert loaded.lm_head.weight.data_ptr() == loaded.text_model.embed_tokens.weight.data_ptr()
    # distance: the loaded model is the shipped file; one changed value is found as one
    assert weight_distance(loaded, ckpt)["bitwise_equal"]
    with torch.no_grad():
        loaded.projector.linear.weight[0, 0] += 0.5
    d = weight_distance(loaded, ckpt)
    assert (d["bitwise_equal"], d["tensors_differing"], d["elements_differing"]) == (False, 1, 1)
    assert d["max_abs_difference"] == pytest.approx(0.5, abs=1e-3)


def test_portable_key_matches_only_when_asked(small):
    from vniahd.models.tiny.shipped import find_shipped

    _write(small)
    assert find_shipped("x" * 16, root=small["root"]) is None
    found = find_shipped("x" * 16, root=small["root"], portable="p" * 16)
    assert found is not None and not found.exact and not found.record()["haystack_matches_training"]


def test_damaged_file_or_other_vocabulary_is_refused(small, tmp_path):
    from dataclasses import replace

    from vniahd.models.tiny.shipped import find_shipped, load_shipped

    _write(small)
    root = tmp_path / "w"
    shutil.copytree(small["root"], root)
    ckpt = find_shipped("k" * 16, root=root)
    assert ckpt is not None
    other = replace(small["recipe"])
    object.__setattr__(other, "words", [*small["recipe"].words, "dog"])
    with pytest.raises(VniahdError, match="another vocabulary"):
        load_shipped(ckpt, other)
    data = bytearray(ckpt.path.read_bytes())
    data[-1] ^= 1
    ckpt.path.write_bytes(bytes(data))
    with pytest.raises(VniahdError, match="sha256 differs"):
        load_shipped(ckpt, small["recipe"])


def test_facts_differences_name_each_float_shaping_fact():
    from vniahd.models.tiny.shipped import facts_differences, machine_facts

    here = machine_facts()
    assert facts_differences(here, dict(here)) == []
    other = {**here, "threads": here["threads"] + 1, "cpu": "something else"}  # cpu is informational
    assert facts_differences(other, here) == [
        f"threads: {here['threads'] + 1} (shipped) vs {here['threads']} (here)"
    ]


# ---- which weights the backend uses --------------------------------------------------------------
@pytest.mark.integration
def test_tiny_backend_scores_with_the_shipped_weights_unless_told_otherwise(demo_haystack):
    from vniahd import load_model
    from vniahd.models.tiny.shipped import find_shipped_for

    default = load_model("tiny")
    rec = default.variant_record(get_variant("mrope"))["weights"]
    shipped = find_shipped_for("mrope", 0)
    assert shipped is not None
    assert rec["source"] == "shipped" and rec["sha256"] == shipped.sha256 and rec["trained_for"] == "mrope"
    with default.use_variant(get_variant("mrope")):
        w = default.model.text_model.embed_tokens.weight
        assert w.dtype == torch.float32 and torch.equal(w, w.half().float())  # float16 values, upcast
    local = load_model("tiny?weights=local")
    assert local.variant_record(get_variant("mrope"))["weights"]["source"] == "local"
    assert local.fingerprint() != default.fingerprint()  # results of the two never pool
    with pytest.raises(VniahdError, match="weights='bogus'"):
        load_model("tiny?weights=bogus")
