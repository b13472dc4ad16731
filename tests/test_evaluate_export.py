"""`vniahd export-inputs`: the stock transformers forward, fed the exported files, gives the
logits vniahd computed, and the exported prediction is the results line's."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from evaluate_fixtures import assert_same_outcomes, make_dataset
from model_helpers import FAMILY_SPECS, save_and_reload

from vniahd.cli import main
from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("export") / "ds")


def replay(be, out) -> torch.Tensor:
    """What a user does with transformers alone (plus vniahd's allocation for a non-native one)."""
    from safetensors.torch import load_file

    from vniahd.rope import PairPlan
    from vniahd.rope.hf import install_allocation, uninstall_allocation

    meta = json.loads(out.with_name(out.name + ".json").read_text())
    model = be.model
    model.config.image_token_id = meta["image_token_id"]  # the random model's byte vocabulary
    model.config.video_token_id = meta["video_token_id"]
    if meta["replay_plan"]:
        plan = meta["replay_plan"]
        install_allocation(
            model, PairPlan(torch.tensor(plan["streams"]), torch.tensor(plan["scale"], dtype=torch.float64))
        )
    try:
        with torch.inference_mode():
            logits = model(**load_file(str(out))).logits[0, meta["scored_rows"]].float()
    finally:
        uninstall_allocation(model)
    return logits


@pytest.mark.parametrize("family", sorted(FAMILY_SPECS))
@pytest.mark.parametrize("name", ["native", "native-allocation", "videorope"])
def test_replay_through_the_stock_forward_equals_vniahd(dataset, tmp_path, family, name):
    """Every family, as a tiny checkpoint saved with save_pretrained and loaded through hf:PATH
    (float32): the stock forward on the exported files gives vniahd's logits at the scored rows.
    ``native``: the family's own variant (reference prompt: frames spliced bare);
    ``native-allocation``: the preset with the model's own allocation (mrope / mrope-interleaved)."""
    from safetensors.torch import load_file

    from vniahd.evaluation.export import NATIVE_PRESET, export_inputs

    be = save_and_reload(get_backend(FAMILY_SPECS[family]), tmp_path / "ckpt")
    assert be.family == family
    variant = get_variant(NATIVE_PRESET[be.rotary.native_allocation] if name == "native-allocation" else name)
    mc = dataset.samples[dataset.samples["needle_id"] == "mc"]  # options: log-probs to compare
    sample = str(mc["sample_id"].iloc[-1])
    out = tmp_path / "sample.safetensors"
    rec = export_inputs(dataset, be, variant, sample, out, scoring="choice")
    assert rec["allocation"]["native"] == name.startswith("native")
    got = replay(be, out)
    want = load_file(str(out.with_name(out.name + ".expected.safetensors")))["expected_logits"]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    # the exported verdict is the evaluation's (prefix sharing asked for, 7-token prefill chunks,
    # batches of 4)
    settings = EvalConfig(variants=[variant], scoring="choice", progress=False, prefill_chunk=7, batch_size=4)
    Runner(dataset, be, settings, tmp_path / "r").run()
    (line,) = [r for r in read_results(tmp_path / "r") if r["sample_id"] == sample]
    # the export scores the sample alone, the run in packed batches (other rounding): the same
    # verdict unless two options are closer than the rounding drift
    alone = torch.log_softmax(want[-1], dim=-1)
    exported = {k: float(alone[ids[0]]) for k, ids in rec["option_token_ids"].items()}
    assert_same_outcomes({0: line}, {0: {**rec, "option_logprobs": exported}}, tol=1e-4)
    # ... and so are its numbers: the replay's option log-probabilities are the results line's
    replayed = torch.log_softmax(got[-1], dim=-1)
    assert line["option_logprobs"].keys() == rec["option_token_ids"].keys()
    for letter, ids in rec["option_token_ids"].items():
        assert float(replayed[ids[0]]) == pytest.approx(line["option_logprobs"][letter], abs=1e-4)


@pytest.mark.parametrize("family", ["qwen2_vl", "glm4v", "qwen3_5"])  # NeoX; adjacent + partial; partial
@pytest.mark.parametrize("name", ["hope", "vrope", "mhrope:heads=1/0/1"])
def test_replay_plan_covers_nope_four_streams_and_per_head_pairs(dataset, tmp_path, family, name):
    """The JSON's replay_plan reinstalls a NoPE (HoPE), 4-stream (VRoPE) or per-KV-head (MHRoPE)
    variant on the stock model: the replayed logits are vniahd's."""
    from safetensors.torch import load_file

    from vniahd.evaluation.export import export_inputs

    be = save_and_reload(get_backend(FAMILY_SPECS[family]), tmp_path / "ckpt")
    sample = str(dataset.samples["sample_id"].iloc[-1])
    out = tmp_path / "sample.safetensors"
    rec = export_inputs(dataset, be, get_variant(name), sample, out)
    assert rec["replay_plan"] is not None and rec["replay_plan"]["per_head"] == name.startswith("mhrope")
    got = replay(be, out)
    want = load_file(str(out.with_name(out.name + ".expected.safetensors")))["expected_logits"]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_cli_writes_the_three_files(dataset, tmp_path, capsys):
    sample = str(dataset.samples["sample_id"].iloc[0])
    out = tmp_path / "s.safetensors"
    args = [
        "export-inputs",
        "--dataset",
        str(dataset.path),
        "--model",
        "random:qwen2-vl",
        "--variant",
        "mrope",
        "--sample",
        sample,
        "--out",
        str(out),
    ]
    mask = os.umask(0o027)  # a umask the files must follow, whatever the test runner's
    try:
        assert main(args) == 0
    finally:
        os.umask(mask)
    said = capsys.readouterr()
    assert "scored row" in said.out
    assert said.err.startswith("vniahd: exporting ")  # a status line before the quiet seconds
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    files = [out, out.with_name(out.name + ".json"), out.with_name(meta["expected_logits"])]
    assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o640] * 3
    if meta["prediction"] == "":  # said what an empty prediction is, with the token ids
        assert f"prediction '' (the model's argmax token(s) {meta['predicted_ids']}" in said.out
    assert meta["scoring"] == "reference" and meta["allocation"]["native"] is True
    assert set(meta["tensors"]) >= {"input_ids", "pixel_values", "image_grid_thw", "position_ids"}
    assert out.with_name(meta["expected_logits"]).is_file()
    assert main([*args[:-4], "--sample", "nope", "--out", str(out)]) == 2
    assert "inspect" in capsys.readouterr().err


def test_an_empty_prediction_is_explained():
    from vniahd.cli.export_command import prediction_text

    assert prediction_text({"prediction": "B", "predicted_ids": [33]}) == "prediction 'B'"
    text = prediction_text({"prediction": "", "predicted_ids": [151643]})
    assert text.startswith("prediction '' (") and "[151643]" in text and "no text" in text
