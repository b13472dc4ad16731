"""``vniahd eval`` end to end on CPU, and its user errors."""

from __future__ import annotations

import json

import pytest
from evaluate_fixtures import make_dataset

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.evaluation import read_results
from vniahd.evaluation.results.store import ResultsWriter
from vniahd.prompt_templates import get_template


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


def test_busy_out_is_refused_before_the_model_loads(ds, tmp_path, capsys, monkeypatch):
    """A second ``vniahd eval`` into an ``--out`` another run holds is refused before any model
    loads (the lock is taken first); once free, the same command runs and holds it throughout."""
    import vniahd.models
    from vniahd.evaluation.results.lock import ResultsLock

    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r"
    loads: list[str] = []
    real = vniahd.models.get_backend

    def spy(spec, **kw):
        loads.append(spec)
        with pytest.raises(VniahdError, match="in use by another evaluation"):
            ResultsLock(out).__enter__()  # held while the model loads
        return real(spec, **kw)

    monkeypatch.setattr(vniahd.models, "get_backend", spy)
    args = ["eval", "--dataset", str(ds.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    args += ["--out", str(out), "--limit", "1", "--no-progress"]
    with ResultsLock(out):  # the first run, still going
        assert main(args) == 2
    assert "in use by another evaluation" in capsys.readouterr().err
    assert loads == []  # refused before loading anything
    assert main(args) == 0
    assert loads == ["random:qwen2-vl"]
    with ResultsLock(out):  # released when the run ended
        pass


def test_summary_wall_time_is_the_runs(ds, tmp_path, capsys, monkeypatch):
    """The summary's wall time covers the whole run (model load included), not only scoring: a
    model that takes 1 s to load makes a run of at least 1 s, and no more than the call took."""
    import re
    import time

    import vniahd.models

    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    real = vniahd.models.get_backend

    def slow(spec, **kw):
        time.sleep(1.0)
        return real(spec, **kw)

    monkeypatch.setattr(vniahd.models, "get_backend", slow)
    args = ["eval", "--dataset", str(ds.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    args += ["--out", str(tmp_path / "r"), "--limit", "1", "--no-progress"]
    t0 = time.perf_counter()
    assert main(args) == 0
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr().out
    found = re.search(
        r"wall time ([\d.]+) s \(model load ([\d.]+) s, encoding ([\d.]+) s, scoring ([\d.]+) s\)", out
    )
    assert found, out
    wall, load, encode, scoring = (float(x) for x in found.groups())
    assert 1.0 <= wall <= elapsed + 0.05
    assert wall >= load + encode + scoring - 0.15  # each part rounded to 0.1 s
    assert "scoring s" in out and "wall s" not in out


def test_resume_with_another_batch_plan_is_refused(ds, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    args = ["eval", "--dataset", str(ds.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    args += ["--out", str(tmp_path / "r"), "--limit", "2", "--no-progress", "--batch-size", "2"]
    assert main(args) == 0
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["config"]["batch_size"] == 2 and run["config"]["variants"] == ["mrope"]
    assert run["runs"][0]["batch_size"] == 2  # the per-invocation record stays
    capsys.readouterr()
    for extra, message in (
        (["--batch-size", "1"], "--batch-size 2, this run has --batch-size 1"),
        (["--prefill-chunk", "7"], "rerun with --prefill-chunk 8192"),
        (["--no-prefix-sharing"], "rerun without --no-prefix-sharing"),
    ):
        assert main(args + extra) == 2
        assert message in capsys.readouterr().err
    assert main(args + ["--variant", "tad"]) == 0  # same plan, another variant: fine
    assert len(read_results(tmp_path / "r")) == 4


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 1 or 'auto', got '0'"),
        (["--prefill-chunk", "x"], "--prefill-chunk must be an integer >= 0 or 'auto', got 'x'"),
        (["--encode-batch", "0"], "--encode-batch must be an integer >= 1, got 0"),
        (["--variant", "mrope"], "variant names repeat"),
    ],
)
def test_options_checked_once_before_loading(ds, tmp_path, capsys, monkeypatch, extra, message):
    import vniahd.models

    monkeypatch.setattr(vniahd.models, "get_backend", lambda *a, **k: pytest.fail("model loaded"))
    args = ["eval", "--dataset", str(ds.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    assert main(args + ["--out", str(tmp_path / "r"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


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
