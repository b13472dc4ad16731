"""Hostile inputs of issue 23 (part B): every one ends in one clear line (exit 2, no traceback),
nothing half-written, and results of another run are never pooled. Grouped by stage."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from evaluate_fixtures import make_dataset

from vniahd.cli import main

SIZE = "36x64"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))


def _video(path: Path, n: int = 25) -> Path:
    from vniahd.media import write_mp4

    frames = np.zeros((n, 36, 64, 3), np.uint8)
    frames[..., 0] = (np.arange(n, dtype=np.uint8) * 5)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :]
    return write_mp4(frames, path, fps=1)


@pytest.fixture
def video(tmp_path):
    return _video(tmp_path / "hay.mp4")


def _one_error(capsys, fragment: str = "", status_lines: bool = False) -> str:
    """Exactly one stderr line (the error), no traceback; returns it. ``status_lines``: progress
    lines ("vniahd: decoding …") may precede it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if status_lines:
        lines = [ln for ln in lines if not ln.startswith("vniahd: ") or ln.startswith("vniahd: error:")]
    assert len(lines) == 1 and lines[0].startswith("vniahd: error:"), err
    assert fragment in lines[0], lines[0]
    return lines[0]


def _gen(video, out, *extra, lengths="10", depths="0:1:0.5"):
    return main(
        ["generate", "--haystack", str(video), "--needles", "demo", "--lengths", lengths]
        + ["--depths", depths, "--period", "6", "--size", SIZE, "--out", str(out)]
        + list(extra)
    )


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*") if "partial" in p.name or p.suffix in (".tmp", ".npy")]


# ------------------------------------------------------------------------------------ generate
def test_fps_nan_is_one_line(video, tmp_path, capsys):
    assert _gen(video, tmp_path / "ds", "--fps", "nan") == 2
    _one_error(capsys, "--fps must be positive, got nan")


def test_frames_that_cannot_fit_are_refused_with_the_arithmetic(video, tmp_path, capsys, monkeypatch):
    import vniahd.media.sampling as sampling

    monkeypatch.setattr(sampling, "available_memory", lambda: 8 * 10**9)
    out = tmp_path / "ds"
    assert (
        main(
            ["generate", "--haystack", str(video), "--needles", "demo", "--lengths", "10"]
            + ["--period", "6", "--size", "100000x100000", "--out", str(out)]
        )
        == 2
    )
    line = _one_error(capsys, "100000x100000x3 = 30 GB per frame")
    assert "8 GB of memory is available" in line
    assert not out.exists()


def test_full_disk_during_generate_is_one_line_and_leaves_nothing(video, tmp_path, capsys, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "ds"
    assert _gen(video, out) == 2
    _one_error(capsys, "No space left on device", status_lines=True)
    assert not out.exists()
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()  # space freed: the same command works
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    assert _gen(video, out) == 0


def test_depths_finer_than_the_slots_are_counted(video, tmp_path, capsys):
    assert _gen(video, tmp_path / "ds", lengths="8", depths="0:1:0.01") == 0
    err = capsys.readouterr().err
    assert "101 depths, but at length 8 they fall on only 9 distinct needle slots" in err
    assert "606 samples hold 54 distinct placements" in err


# ------------------------------------------------------------------------------------- needles
def _needle_file(tmp_path: Path, needles: list[dict]) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 36), (200, 10, 10)).save(tmp_path / "n.png")
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"needles": needles}))
    return path


def test_thirty_options_are_refused_at_load(tmp_path, capsys):
    opts = [f"o{i}" for i in range(30)]
    path = _needle_file(
        tmp_path, [{"id": "n", "image": "n.png", "question": "Q?", "options": opts, "answer": "A"}]
    )
    assert main(["needles", "check", str(path)]) == 2
    _one_error(capsys, "30 options, but options are lettered A-Z, so at most 26")


def test_one_image_with_contradicting_answers_is_refused(tmp_path, capsys):
    base = {"image": "n.png", "question": "Which?", "options": ["cat", "dog"]}
    path = _needle_file(tmp_path, [{"id": "a", **base, "answer": "A"}, {"id": "b", **base, "answer": "B"}])
    assert main(["needles", "check", str(path)]) == 2
    _one_error(capsys, "needles 'a' and 'b' ask the same question about the same image")


# ------------------------------------------------------------------------------------ variants
def test_unknown_key_in_a_variant_file_is_refused(tmp_path, capsys):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"layout": "vanilla", "allocation": "uniform", "delta": 3}))
    assert main(["positions", "--variant", str(path), "--frames", "2", "--grid", "1x1"]) == 2
    _one_error(capsys, "unknown key(s) 'delta'")


def test_a_variant_parameter_given_twice_is_refused(capsys):
    assert (
        main(["positions", "--variant", "videorope:delta=1,delta=2", "--frames", "2", "--grid", "1x1"]) == 2
    )
    _one_error(capsys, "'delta' is given twice")


# ---------------------------------------------------------------------------------------- eval
@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("hostile") / "ds")


@pytest.fixture(scope="module")
def other_ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("hostile-other") / "ds", seed=8)


def _eval(ds_path, out, *extra, model="random:qwen2-vl", limit="4"):
    return main(
        ["eval", "--dataset", str(ds_path), "--model", model, "--variant", "vanilla"]
        + ["--out", str(out), "--limit", limit, "--no-progress", *extra]
    )


@pytest.mark.parametrize("params", ["layers=0", "layers=-1", "heads=0"])
def test_random_model_sizes_below_one_are_refused(ds, tmp_path, capsys, params):
    assert _eval(ds.path, tmp_path / "r", model=f"random:qwen2-vl?{params}") == 2
    _one_error(capsys, "must be at least 1")


def test_out_naming_a_file_is_refused(ds, tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    assert _eval(ds.path, tmp_path / "f.txt") == 2
    _one_error(capsys, "is a file, not a directory")


def test_out_naming_a_broken_symlink_is_refused(ds, tmp_path, capsys):
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    assert _eval(ds.path, tmp_path / "gone") == 2
    _one_error(capsys, "is a broken symbolic link")


def test_edited_num_frames_is_refused(ds, tmp_path, capsys):
    import shutil

    import pandas as pd

    edited = tmp_path / "ds"
    shutil.copytree(ds.path, edited)
    df = pd.read_parquet(edited / "samples.parquet")
    df.loc[0, "num_frames"] = 999
    df.to_parquet(edited / "samples.parquet")
    # the recorded content hash catches the edit first
    assert _eval(edited, tmp_path / "r") == 2
    _one_error(capsys, "samples.parquet in dataset")
    # a dataset written before the hashes existed: the row check still refuses it
    meta = json.loads((edited / "dataset.json").read_text())
    del meta["integrity"]
    (edited / "dataset.json").write_text(json.dumps(meta))
    assert _eval(edited, tmp_path / "r2") == 2
    _one_error(capsys, "has num_frames 999", status_lines=True)  # beside the "predates hashes" warning


def test_read_only_out_is_one_line(ds, tmp_path, capsys, monkeypatch):
    real = Path.mkdir
    out = tmp_path / "r"

    def readonly(self, *a, **kw):
        if str(self).startswith(str(out)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", readonly)
    assert _eval(ds.path, out) == 2
    _one_error(capsys, "Read-only file system")


def test_full_disk_during_eval_then_resume_is_identical(ds, tmp_path, capsys, monkeypatch):
    from vniahd.evaluation.results.store import ResultsWriter

    assert _eval(ds.path, tmp_path / "whole") == 0
    whole = (tmp_path / "whole" / "results.jsonl").read_bytes()
    real, written = ResultsWriter.append, []

    def fills_up(self, record):
        if self.required != ("sample_id", "variant", "scoring", "seconds", "peak_mem_bytes", "peak_mem_kind"):
            if len(written) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            written.append(record)
        real(self, record)

    monkeypatch.setattr(ResultsWriter, "append", fills_up)
    capsys.readouterr()
    assert _eval(ds.path, tmp_path / "r") == 2
    _one_error(capsys, "No space left on device")
    monkeypatch.undo()
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    assert _eval(ds.path, tmp_path / "r") == 0
    assert sorted((tmp_path / "r" / "results.jsonl").read_bytes().splitlines()) == sorted(whole.splitlines())


# ------------------------------------------------------------------------- eval resume and plot
@pytest.fixture(scope="module")
def two_runs(ds, other_ds, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VNIAHD_CACHE", str(root / "cache"))
        assert _eval(ds.path, root / "mine") == 0
        assert _eval(other_ds.path, root / "other") == 0
    return root / "mine", root / "other"


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("command", ["eval", "plot"])
def test_a_results_file_of_another_dataset_is_refused(ds, two_runs, tmp_path, capsys, command):
    mine = _copy_run(two_runs[0], tmp_path / "r")
    (mine / "results.rank1.jsonl").write_bytes((two_runs[1] / "results.jsonl").read_bytes())
    capsys.readouterr()
    if command == "eval":
        assert _eval(ds.path, mine) == 2
        _one_error(capsys, "results.rank1.jsonl, line 1: not a result of this run (dataset")
    else:
        assert main(["plot", str(mine), "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        errors = [ln for ln in err.splitlines() if ln.startswith("vniahd: error:")]
        assert len(errors) == 1 and "not a result of this run" in errors[0]


def test_a_line_of_another_model_is_refused(ds, two_runs, tmp_path, capsys):
    mine = _copy_run(two_runs[0], tmp_path / "r")
    line = json.loads((mine / "results.jsonl").read_text().splitlines()[0])
    line.pop("dataset")  # an older line: the model alone tells it apart
    line["model"] = "random:qwen2.5-vl"
    with open(mine / "results.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")
    capsys.readouterr()
    assert _eval(ds.path, mine) == 2
    _one_error(capsys, "model 'random:qwen2.5-vl', run.json has 'random:qwen2-vl'")


def test_a_repeated_line_counts_once(ds, two_runs, tmp_path, capsys):
    mine = _copy_run(two_runs[0], tmp_path / "r")
    first = (mine / "results.jsonl").read_text().splitlines()[0]
    with open(mine / "results.jsonl", "a") as fh:
        fh.write(first + "\n")
    capsys.readouterr()
    assert _eval(ds.path, mine) == 0
    out = capsys.readouterr().out
    assert "/4 " in out and "/5 " not in out  # never more than the 4 planned samples


def test_conflicting_duplicates_name_both_lines(ds, two_runs, tmp_path, capsys):
    mine = _copy_run(two_runs[0], tmp_path / "r")
    first = json.loads((mine / "results.jsonl").read_text().splitlines()[0])
    first["correct"] = not first["correct"]
    (mine / "results.rank1.jsonl").write_text(json.dumps(first) + "\n")
    capsys.readouterr()
    assert _eval(ds.path, mine) == 2
    line = _one_error(capsys, "hold different results for sample")
    assert "results.jsonl, line 1 and" in line and "results.rank1.jsonl, line 1" in line


# ------------------------------------------------------------------------------------ haystack
def test_haystack_info_fails_where_generate_cannot_decode(tmp_path, capsys):
    from vniahd.media import write_mp4

    rng = np.random.default_rng(0)
    good = write_mp4(rng.integers(0, 255, (40, 72, 128, 3), dtype=np.uint8), tmp_path / "v.mp4", fps=4)
    data = bytearray(good.read_bytes())
    data[2000 : len(data) // 2] = bytes(len(data) // 2 - 2000)  # frames zeroed, header intact
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    assert main(["haystack", "info", str(bad)]) == 2
    _one_error(capsys, "cannot decode video")


def test_haystack_info_takes_demo(tmp_path, capsys, monkeypatch):
    import vniahd.media

    small = _video(tmp_path / "demo.mp4")
    monkeypatch.setattr(vniahd.media, "build_demo_haystack", lambda **kw: small)
    assert main(["haystack", "info", "demo"]) == 0
    assert f"video:        {small}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit, fragment",
    [
        ({"sample_id": "L10_D1_invented_r0"}, "holds results for 5 samples, but run.json's runs planned 4"),
        ({"sample_id": "L10_D1_invented_r0", "length": 12}, "length 12 is not in run.json's grid [6, 10]"),
        ({"sample_id": "L10_D1_invented_r0", "depth": 0.25}, "depth 0.25 is not in run.json's grid"),
    ],
)
def test_plot_refuses_a_line_the_plan_cannot_hold(two_runs, tmp_path, capsys, edit, fragment):
    """plot has no dataset at hand: run.json's sample count and grid still bound what it pools
    (an appended line with an invented sample id was pooled as one more result)."""
    mine = _copy_run(two_runs[0], tmp_path / "r")
    line = json.loads((mine / "results.jsonl").read_text().splitlines()[0])
    with open(mine / "results.jsonl", "a") as fh:
        fh.write(json.dumps({**line, **edit}) + "\n")
    capsys.readouterr()
    assert main(["plot", str(mine), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("vniahd: error:")]
    assert "Traceback" not in err and len(errors) == 1 and fragment in errors[0], err
