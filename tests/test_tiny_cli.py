"""CLI surface of the tiny model: help texts and user errors (one line, exit 2)."""

from __future__ import annotations

import pytest

from vniahd.cli import main


def test_help_texts(capsys):
    for cmd in (["train-tiny", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(cmd)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--variant" in out and "--seeds" in out and "t-intervals over seeds" in out
    assert "--verify" in out and "--retrain" in out and "--list-shipped" in out


def test_list_shipped_names_every_checkpoint_and_where_it_was_trained(capsys):
    from vniahd.models.tiny.shipped import read_manifest

    assert main(["train-tiny", "--list-shipped"]) == 0
    out = capsys.readouterr().out
    for e in read_manifest()["checkpoints"]:
        assert e["file"] in out and e["checkpoint_key"] in out
    assert "threads" in out and "torch" in out


def test_bad_inputs_are_one_line_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path))
    assert main(["train-tiny", "--variant", "no-such-variant"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["train-tiny", "--variant", "mrope", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["train-tiny", "--variant", "mrope", "--verify", "--steps", "5"]) == 2
    assert "drop --steps" in capsys.readouterr().err
    assert main(["train-tiny"]) == 2
    assert "--variant" in capsys.readouterr().err
    assert main(["demo", "--seeds", "x", "--out", str(tmp_path / "d")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["demo", "--variants", "mrope,bogus", "--out", str(tmp_path / "d")]) == 2
    assert "bogus" in capsys.readouterr().err


def test_backend_spec_errors():
    from vniahd.errors import VniahdError
    from vniahd.models import get_backend

    with pytest.raises(VniahdError, match="unknown tiny-model parameter"):
        get_backend("tiny?colour=red")
    with pytest.raises(VniahdError, match="whole number"):
        get_backend("tiny?seed=abc")


def test_demo_sets_aside_results_of_another_dataset_or_model(tmp_path):
    """A rerun after the datasets or the recipe changed must not mix old and new results, nor stop
    with an error: the old run directory moves to ``superseded/`` intact."""
    import json
    from types import SimpleNamespace

    from vniahd.demo import retire_stale_run

    out = tmp_path / "demo"
    run_dir = out / "runs" / "vniah"
    ds = SimpleNamespace(fingerprint="ds1")
    backend = SimpleNamespace(fingerprint=lambda: "model1")
    logs: list[str] = []
    assert retire_stale_run(run_dir, ds, backend, out, logs.append) is None  # nothing there yet
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps({"dataset": {"fingerprint": "ds1"}, "model": {"fingerprint": "model1"}})
    )
    (run_dir / "results.jsonl").write_text('{"correct": true}\n')
    assert retire_stale_run(run_dir, ds, backend, out, logs.append) is None  # same: resume
    assert run_dir.is_dir() and not logs
    for changed in (SimpleNamespace(fingerprint="ds2"), ds):
        be = backend if changed is not ds else SimpleNamespace(fingerprint=lambda: "model2")
        dest = retire_stale_run(run_dir, changed, be, out, logs.append)
        assert dest is not None and dest.parent == out / "superseded" and not run_dir.exists()
        assert (dest / "results.jsonl").read_text() == '{"correct": true}\n'
        assert str(dest) in logs[-1]
        dest.rename(run_dir)  # put it back for the next case
