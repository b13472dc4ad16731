"""Every family in bf16 on a GPU, ``--device-map`` across a GPU and the CPU, and the family
benchmark's CPU logic.

The ``gpu``-marked tests skip without CUDA. In bf16 a random model's option log-probabilities
can sit within rounding of each other, so prefix sharing vs no sharing is compared as: equal
log-probabilities to bf16 accuracy, and equal answers wherever the no-sharing run's best option
leads the runner-up by more than that accuracy.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from evaluate_fixtures import NearTies, assert_same_outcomes, make_dataset
from model_helpers import FAMILY_SPECS, save_checkpoint

from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.rope import get_variant

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
BF16_LOGPROB = 0.1  # bf16 keeps 8 mantissa bits: log-probabilities of O(1) agree to ~1e-2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("gpu") / "ds")


def _results(dataset, be, root, name, **kw):
    settings = EvalConfig(variants=[get_variant("videorope")], scoring="choice", progress=False, **kw)
    Runner(dataset, be, settings, root / name).run()
    return {r["sample_id"]: r for r in read_results(root / name)}


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("family", sorted(FAMILY_SPECS))
def test_bf16_prefix_sharing_equals_no_sharing(dataset, tmp_path, family):
    be = get_backend(FAMILY_SPECS[family], device="cuda", dtype="bfloat16")
    assert be.dtype == torch.bfloat16 and be.device.type == "cuda"
    shared = _results(dataset, be, tmp_path, "shared", batch_size=4, prefill_chunk=7)
    alone = _results(dataset, be, tmp_path, "alone", batch_size=1, prefill_chunk=0, prefix_sharing=False)
    assert shared.keys() == alone.keys() and len(shared) == len(dataset.samples)
    for sid, r in shared.items():
        mine, ref = r.get("option_logprobs") or {}, alone[sid].get("option_logprobs") or {}
        assert mine.keys() == ref.keys(), sid
        for letter, lp in mine.items():
            assert math.isfinite(lp) and lp == pytest.approx(ref[letter], abs=BF16_LOGPROB), (sid, letter)
        ranked = sorted(ref.values(), reverse=True)
        if len(ranked) < 2 or ranked[0] - ranked[1] > 2 * BF16_LOGPROB:
            assert r["prediction"] == alone[sid]["prediction"], sid


@pytest.mark.gpu
@gpu
def test_device_map_split_between_gpu_and_cpu_equals_one_device(dataset, tmp_path):
    """A real cross-device map: the vision tower and the first layer on the GPU, the second layer
    and the LM head on the CPU (float32) — the lines the GPU alone scores, and run.json's
    placement says where each module went."""
    ckpt = save_checkpoint(get_backend("random:qwen3-vl"), tmp_path / "ckpt")
    one = get_backend(f"hf:{ckpt}", device="cuda", dtype="float32")
    with NearTies(one, tol=1e-3) as ties:
        want = _results(dataset, one, tmp_path, "one", batch_size=4, prefill_chunk=7)
    mapping = {
        "model.visual": 0,
        "model.language_model.embed_tokens": 0,
        "model.language_model.rotary_emb": 0,
        "model.language_model.layers.0": 0,
        "model.language_model.layers.1": "cpu",
        "model.language_model.norm": "cpu",
        "lm_head": "cpu",
    }
    split = get_backend(f"hf:{ckpt}", dtype="float32", device_map=json.dumps(mapping))
    assert split.device == torch.device("cuda:0")
    assert split.language_model.layers[1].self_attn.q_proj.weight.device.type == "cpu"
    got = _results(dataset, split, tmp_path, "split", batch_size=4, prefill_chunk=7)
    # a layer on the CPU rounds differently from the GPU's kernels: log-probabilities to a
    # tolerance, the prediction wherever the top two options are not a near tie
    assert_same_outcomes(got, want, tol=1e-3, ties=ties.count)
    assert split.describe()["device_map"]["placement"]["lm_head"] == "cpu"


@pytest.mark.integration
def test_family_benchmark_cpu_smoke(capsys):
    """bench/family_throughput.py's logic on tiny models (the numbers are not checked)."""
    path = Path(__file__).resolve().parents[1] / "bench" / "family_throughput.py"
    spec = importlib.util.spec_from_file_location("bench_family_throughput", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--families", "glm-4.5v,qwen3.5-moe", "--frames", "4", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert {"qwen2-vl", "glm-4.5v", "qwen3.5-moe"} <= rows.keys()  # qwen2-vl added as the reference
    assert rows["qwen2-vl"][5] == "1.00"
    assert mod.main(["--families", "llama"]) == 2


@pytest.mark.parametrize("family", sorted(FAMILY_SPECS.values()))
def test_every_family_has_a_7b_shape(family):
    """The --gpu benchmark's 7B-shaped configs are valid for every family (built on the meta
    device: shapes only): hidden 3584, 28 layers, each family's own section proportions."""
    import transformers

    from vniahd.models.random_qwen import build_config, resolve_params

    name = family.split(":")[1].split("?")[0]
    p = resolve_params({"size": "7b", "vision_depth": "1"}, name)
    config = build_config(name, p, bos=1, eos=2)
    cls = getattr(transformers, type(config).__name__.replace("Config", "ForConditionalGeneration"))
    with torch.device("meta"):
        model = cls._from_config(config, dtype=torch.bfloat16)
    text = model.model.language_model
    assert len(text.layers) == 28 and text.config.hidden_size == 3584
    # the rotary module's own sections cover its own pairs (partial rotary included)
    assert sum(text.rotary_emb.mrope_section) == text.rotary_emb.inv_freq.numel() == sum(p["sections"])
