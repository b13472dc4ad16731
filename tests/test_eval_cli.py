"""``vniahd eval`` end to end on CPU, and its user errors."""

from __future__ import annotations

import json

import pytest
from evaluate_fixtures import make_dataset

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.evaluation import ResultsWriter, get_template, read_results


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cli") / "ds")


def test_eval_runs_resumes_and_summarises(ds, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "res"
    args = [
        "eval",
        "--dataset",
        str(ds.path),
        "--model",
        "random:qwen2-vl",
        "--variant",
        "vanilla",
        "--variant",
        "tad",
        "--variant",
        "mrope",
        "--variant",
        "videorope",
        "--out",
        str(out),
        "--limit",
        "4",
        "--no-progress",
    ]
    assert main(args) == 0
    first = capsys.readouterr()
    for name in ("vanilla", "tad", "mrope", "videorope"):
        assert name in first.out
    assert "frames encoded this run: " in first.err and "frames encoded this run: 0 " not in first.err
    assert len(read_results(out)) == 16
    assert main(args) == 0  # resume: nothing to do, nothing encoded
    second = capsys.readouterr()
    assert "frames encoded this run: 0 " in second.err
    assert len(read_results(out)) == 16
    run = json.loads((out / "run.json").read_text())
    assert set(run["variants"]) == {"vanilla", "tad", "mrope", "videorope"}


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--variant", "nope"], "unknown variant"),
        (["--variant", "vanilla", "--model", "hf:/no/such/dir"], "does not exist"),
        (["--variant", "vanilla", "--limit", "0"], "--limit"),
        (["--variant", "vanilla", "--prompt-template", "fancy"], "unknown prompt template"),
    ],
)
def test_user_errors(ds, tmp_path, capsys, extra, message):
    args = ["eval", "--dataset", str(ds.path), "--model", "random:qwen2-vl", "--out", str(tmp_path / "r")]
    assert main(args + extra) == 2
    assert message in capsys.readouterr().err


def test_not_a_dataset_and_no_gpu(tmp_path, capsys):
    assert (
        main(
            [
                "eval",
                "--dataset",
                str(tmp_path),
                "--model",
                "random:qwen2-vl",
                "--variant",
                "mrope",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "not a vniahd dataset" in capsys.readouterr().err


def test_cuda_without_gpu(ds, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert (
        main(
            [
                "eval",
                "--dataset",
                str(ds.path),
                "--model",
                "random:qwen2-vl",
                "--variant",
                "mrope",
                "--out",
                str(tmp_path / "r"),
                "--device",
                "cuda",
            ]
        )
        == 2
    )
    assert "no CUDA GPU" in capsys.readouterr().err


def test_other_model_refused_before_loading(ds, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    base = [
        "eval",
        "--dataset",
        str(ds.path),
        "--variant",
        "mrope",
        "--out",
        str(tmp_path / "r"),
        "--limit",
        "1",
        "--no-progress",
    ]
    assert main(base + ["--model", "random:qwen2-vl"]) == 0
    capsys.readouterr()
    assert main(base + ["--model", "random:qwen2.5-vl"]) == 2
    assert "different model" in capsys.readouterr().err


def test_results_reader_tolerance(tmp_path):
    rec = {
        k: 1
        for k in (
            "sample_id",
            "variant",
            "scoring",
            "model",
            "length",
            "depth",
            "needle_id",
            "schedule",
            "correct",
            "prediction",
            "answer",
            "num_frames",
            "tokens_per_frame",
            "num_tokens",
        )
    }
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(rec) + "\n" + json.dumps({**rec, "sample_id": 2}))  # no final newline
    assert len(read_results(tmp_path)) == 2  # a complete last line counts
    with ResultsWriter(path) as w:
        w.append({**rec, "sample_id": 3})
    assert [r["sample_id"] for r in read_results(tmp_path)] == [1, 2, 3]
    path.write_text("{bad\n" + json.dumps(rec) + "\n")
    with pytest.raises(VniahdError, match="line 1"):
        read_results(tmp_path)


def test_prompt_template_reference_text():
    tpl = get_template("reference")
    assert tpl.before == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert tpl.render_after("Q?") == "Q?<|im_end|>\n<|im_start|>assistant\n"


def test_prompt_template_file(tmp_path):
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"name": "mine", "before": "V:", "after": "{question} A:"}))
    assert get_template(str(f)).render_after("x") == "x A:"
    f.write_text(json.dumps({"before": "V:", "after": "no placeholder"}))
    with pytest.raises(VniahdError, match="question"):
        get_template(str(f))
