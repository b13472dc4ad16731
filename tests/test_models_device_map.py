"""``--device-map``: a checkpoint spread over devices scores exactly what one device scores.

Without GPUs every device is the CPU: a map whose entries are all ``"cpu"`` is loaded by
transformers onto one device (no hooks), so the hooked path is checked by dispatching the loaded
model with accelerate's hooks on every layer (what a multi-GPU map installs) and comparing the
evaluator's result lines with the single-device run. The real split across a GPU and the CPU is in
tests/test_gpu_families.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from evaluate_fixtures import make_dataset
from model_helpers import save_checkpoint

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.models.device_map import parse_device_map, placement, rank_gpus
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("devmap") / "ds")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny Qwen3-VL (DeepStack rows: the widest inputs) saved with save_pretrained."""
    return save_checkpoint(get_backend("random:qwen3-vl"), tmp_path_factory.mktemp("ckpt"))


def layer_map(layers: int) -> dict[str, str]:
    """Every top module of a Qwen3-VL checkpoint named, one entry per text layer."""
    names = ["model.visual", "model.language_model.embed_tokens", "model.language_model.norm"]
    names += ["model.language_model.rotary_emb", "lm_head"]
    names += [f"model.language_model.layers.{i}" for i in range(layers)]
    return {n: "cpu" for n in names}


def lines(out):
    return sorted(json.dumps(r, sort_keys=True) for r in read_results(out))


def eval_args(ds, checkpoint, out, *extra):
    return [
        "eval",
        "--dataset",
        str(ds.path),
        "--model",
        f"hf:{checkpoint}",
        "--variant",
        "videorope",
        "--scoring",
        "choice",
        "--dtype",
        "float32",
        "--limit",
        "6",
        "--prefill-chunk",
        "7",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_parse_device_map():
    assert parse_device_map("auto") == "auto" and parse_device_map("balanced_low_0") == "balanced_low_0"
    got = parse_device_map('{"model.visual": "cuda:1", "lm_head": "cpu", "model.language_model": 0}')
    assert got == {"model.visual": 1, "lm_head": "cpu", "model.language_model": 0}
    assert parse_device_map('{"": "cuda"}') == {"": 0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("everywhere", "neither a strategy nor a JSON file"),
        ("{not json", "not valid JSON"),
        ("{}", "non-empty JSON object"),
        ('{"lm_head": "tpu"}', "is not a device"),
        ('{"lm_head": "disk"}', "disk offload is not supported"),
        ('{"lm_head": -1}', "is not a device"),
    ],
)
def test_invalid_maps_are_one_line_errors(spec, message):
    with pytest.raises(VniahdError, match=message) as err:
        parse_device_map(spec)
    assert "\n" not in str(err.value)


def test_a_map_from_a_file(tmp_path):
    f = tmp_path / "map.json"
    f.write_text(json.dumps({"model": 1, "lm_head": "cuda:0"}))
    assert parse_device_map(str(f)) == {"model": 1, "lm_head": 0}


def test_ranks_own_equal_shares_of_the_gpus():
    assert rank_gpus(8) == list(range(8))
    assert rank_gpus(8, {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == [4, 5, 6, 7]
    assert rank_gpus(8, {"LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "4"}) == [6, 7]
    with pytest.raises(VniahdError, match="at most one rank per GPU"):
        rank_gpus(2, {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "4"})
    # an explicit map counts GPUs within the rank's share
    assert placement({"model": 0, "lm_head": 1}, [4, 5]) == ({"model": 4, "lm_head": 5}, None)
    assert placement({"model": "cpu"}, []) == ({"model": "cpu"}, None)
    with pytest.raises(VniahdError, match="asks for GPU 2, but this process has GPUs \\[4, 5\\]"):
        placement({"lm_head": 2}, [4, 5])
    with pytest.raises(VniahdError, match="no CUDA GPU"):
        placement({"lm_head": 0}, [])


def test_cli_device_map_equals_one_device(ds, checkpoint, tmp_path, capsys):
    """--device-map auto and an explicit JSON map (a file and inline) score the same lines as the
    single-device run, and run.json records the map and the placement."""
    assert main(eval_args(ds, checkpoint, tmp_path / "one")) == 0
    want = lines(tmp_path / "one")
    assert len(want) == 6
    plan = json.loads((tmp_path / "one" / "run.json").read_text())["evaluation"]
    mapping = layer_map(2)
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    specs = {"auto": "auto", "file": str(tmp_path / "map.json"), "inline": json.dumps(mapping)}
    for name, spec in specs.items():
        assert main(eval_args(ds, checkpoint, tmp_path / name, "--device-map", spec)) == 0
        # bit for bit: one CPU, one thread count and the same batches, chunks and packing
        assert json.loads((tmp_path / name / "run.json").read_text())["evaluation"] == plan, name
        assert lines(tmp_path / name) == want, name
        model = json.loads((tmp_path / name / "run.json").read_text())["model"]
        assert model["device_map"]["input_device"] == "cpu"
        assert model["device_map"]["requested"] == ("auto" if name == "auto" else mapping)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device-map", "auto", "--device", "cpu"], "give one"),
        (["--device-map", "{oops"], "not valid JSON"),
        (["--device-map", '{"model.language_model.layerz.0": "cpu", "": "cpu"}'], "not a module of"),
        (["--device-map", '{"": 0}'], "no CUDA GPU"),
    ],
)
def test_cli_device_map_errors(ds, checkpoint, tmp_path, capsys, extra, message):
    if "no CUDA GPU" in message and torch.cuda.is_available():
        pytest.skip("checks the no-GPU error")
    assert main(eval_args(ds, checkpoint, tmp_path / "r", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_device_map_needs_a_checkpoint():
    with pytest.raises(VniahdError, match="use --model hf:PATH"):
        get_backend("random:qwen2-vl", device_map="auto")


def test_accelerate_hooks_on_every_layer_give_the_one_device_results(ds, checkpoint, tmp_path):
    """The model dispatched with accelerate's hooks on every module (what a multi-GPU map
    installs: inputs moved per layer, the rotary module swapped under a hooked model) scores the
    lines one device scores, with prefix sharing, 7-token prefill chunks and batches on."""
    from accelerate import dispatch_model

    settings = EvalConfig(
        variants=[get_variant("videorope")], scoring="choice", progress=False, prefill_chunk=7, batch_size=4
    )
    plain = get_backend(f"hf:{checkpoint}", dtype="float32")
    plain_runner = Runner(ds, plain, settings, tmp_path / "plain")
    plain_runner.run()
    hooked = get_backend(f"hf:{checkpoint}", dtype="float32", device_map="auto")
    dispatch_model(hooked.model, device_map=layer_map(2), force_hooks=True)
    assert hasattr(hooked.language_model.layers[1], "_hf_hook")
    hooked_runner = Runner(ds, hooked, settings, tmp_path / "hooked")
    hooked_runner.run()
    # bit for bit: the same batches, packing and chunks (one CPU, one thread count) as the plain run
    assert hooked_runner.executor.packed == plain_runner.executor.packed
    assert lines(tmp_path / "hooked") == lines(tmp_path / "plain")
