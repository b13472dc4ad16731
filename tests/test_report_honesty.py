"""`vniahd plot` never pools what it should not, says on the terminal what it did, and never shows a
traceback: results of one dataset and model from two directories count once (with a warning),
datasets whose schedules share a name stay apart, notes reach stderr, heatmap names name their
parts, a closed stdout pipe ends quietly, a bad --out is one line, slow steps announce themselves.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_report_fixtures import write_results

from vniahd.cli import EXIT_BROKEN_PIPE, main
from vniahd.reporting import write_report
from vniahd.reporting.load import load_inputs


def _n0_right(v, s, L, d, n, r):
    return n == "n0"


def _snapshot(*dirs: Path) -> dict[str, str]:
    """sha256 of every file under ``dirs`` (to show that nothing was changed or lost)."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirs
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("vniahd: warning: ")]


# ---- item 1: pooling by dataset and model fingerprint ----------------------------------------
def test_two_dirs_of_one_dataset_count_each_result_once(tmp_path, capsys):
    a = write_results(tmp_path / "a", correct=_n0_right, schedules=("reference",))
    b = write_results(tmp_path / "b", correct=_n0_right, schedules=("reference",))
    before = _snapshot(a, b)
    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    # 2 lengths × 3 depths × 2 needles = 12 results, scored in both dirs: n = 12, not 24.
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary[["n", "mean"]].values.tolist() == [[12, 0.5]]
    warned = _warnings(err)
    assert warned == [
        f"vniahd: warning: {b.resolve()}: 12 result(s) also in {a.resolve()} (same "
        "dataset, model, sample, variant and scoring): counted once, from "
        f"{a.resolve()}"
    ]
    assert "Traceback" not in err
    assert _snapshot(a, b) == before  # inputs untouched
    page = (tmp_path / "out" / "report.html").read_text()
    assert "counted once" in page  # the same note in the report's provenance


def test_disagreeing_duplicates_are_counted_and_other_models_stay_apart(tmp_path, capsys):
    a = write_results(tmp_path / "a", correct=_n0_right)
    b = write_results(tmp_path / "b", correct=lambda *_: True)  # n1 now right: 6 disagree
    c = write_results(tmp_path / "c", correct=lambda *_: False, model_fp="beef")  # other weights
    loaded = load_inputs([a, b, c])
    recs = loaded.records
    assert len(recs) == 12 + 12  # a's 12 (b's duplicates dropped) + c's 12
    assert sorted(recs["model"].unique()) == ["random-qwen2-vl (beef)", "random-qwen2-vl (f00d)"]
    assert "6 of them scored differently" in loaded.sources[1].notes[0]
    assert loaded.sources[1].num_records == 0 and loaded.sources[2].notes == []
    paths = write_report([a, b, c], tmp_path / "out")
    summary = pd.read_csv(paths["summary.csv"])
    assert sorted(summary[["model_fp", "n", "mean"]].values.tolist()) == [
        ["beef", 12, 0.0],
        ["f00d", 12, 0.5],
    ]
    assert len(_warnings(capsys.readouterr().err)) == 1


def test_datasets_sharing_a_schedule_name_stay_apart(tmp_path, capsys):
    p4 = write_results(
        tmp_path / "p4", correct=_n0_right, schedules=("reference",), dataset_fp="aaaa1111", period=4
    )
    p199 = write_results(
        tmp_path / "p199",
        correct=lambda *_: True,
        schedules=("reference",),
        dataset_fp="bbbb2222",
        period=199,
    )
    paths = write_report([p4, p199], tmp_path / "out")
    summary = pd.read_csv(paths["summary.csv"])
    rows = summary[["benchmark", "dataset", "n", "mean"]].values.tolist()
    assert rows == [
        ["V-NIAH-D [period 4]", "aaaa1111", 12, 0.5],
        ["V-NIAH-D [period 199]", "bbbb2222", 12, 1.0],
    ]
    assert {n for n in paths if n.startswith("heatmap_")} == {
        "heatmap_random-qwen2-vl_vanilla_scoring-reference_schedule-reference_dataset-period-4.png",
        "heatmap_random-qwen2-vl_vanilla_scoring-reference_schedule-reference_dataset-period-199.png",
    }
    md = paths["summary.md"].read_text()
    assert "V-NIAH-D [period 4] acc. % (95% CI)" in md and "V-NIAH-D [period 199] acc. %" in md
    assert _warnings(capsys.readouterr().err) == []  # nothing pooled, nothing to say
    # Same period: the fingerprint tells them apart.
    q = write_results(
        tmp_path / "q", correct=_n0_right, schedules=("reference",), dataset_fp="cccc3333", period=4
    )
    labels = set(load_inputs([p4, q]).records["benchmark"])
    assert labels == {"V-NIAH-D [dataset aaaa1111]", "V-NIAH-D [dataset cccc3333]"}


def test_inputs_without_a_fingerprint_keep_their_own_identity(tmp_path, capsys):
    refs = []
    for run in ("run1", "run2"):  # the same variant name (directory) in two reference runs
        ref = tmp_path / run / "videorope" / "all_accuracies.json"
        ref.parent.mkdir(parents=True)
        ref.write_text(
            '[{"Num. Frame": 100, "Frame Depth": 0, "Score": 1.0},'
            ' {"Num. Frame": 100, "Frame Depth": 100, "Score": 0.0}]'
        )
        refs.append(ref)
    bare = [write_results(tmp_path / f"bare{i}", correct=_n0_right, run_json=False) for i in range(2)]
    loaded = load_inputs([*refs, *bare])
    recs = loaded.records
    assert len(recs) == 2 + 2 + 12 + 12  # nothing dropped as a duplicate
    assert recs.groupby(["schedule", "dataset"]).ngroups == 4
    assert set(recs["benchmark"]) == {
        "all_accuracies [run1/videorope]",
        "all_accuracies [run2/videorope]",
        "V-NIAH [bare0]",
        "V-NIAH [bare1]",
    }
    write_report([*refs, *bare], tmp_path / "out")
    warned = _warnings(capsys.readouterr().err)
    assert sum("run.json is missing" in w for w in warned) == 2
    assert not any("counted once" in w for w in warned)


def test_differing_run_settings_are_pooled_with_a_warning(tmp_path, capsys):
    a = write_results(tmp_path / "a", correct=_n0_right, depths=(0.0,))
    b = write_results(tmp_path / "b", correct=_n0_right, depths=(1.0,))
    run = json.loads((b / "run.json").read_text())
    run["prompt_template"] = {"before": "other"}
    (b / "run.json").write_text(json.dumps(run))
    write_report([a, b], tmp_path / "out")
    warned = _warnings(capsys.readouterr().err)
    assert len(warned) == 1 and "differs in prompt_template" in warned[0]


def test_torn_line_note_reaches_the_terminal(tmp_path, capsys):
    d = write_results(tmp_path / "r", correct=_n0_right)
    path = d / "results.jsonl"
    path.write_text(path.read_text() + '{"sample_id": "torn')  # a run killed mid-line
    before = _snapshot(d)
    assert main(["plot", str(d), "--out", str(tmp_path / "out")]) == 0
    warned = _warnings(capsys.readouterr().err)
    assert warned == [
        f"vniahd: warning: {d.resolve()}: results.jsonl, line 13: torn last line "
        "skipped (run interrupted or still running)"
    ]
    assert _snapshot(d) == before  # the torn line is skipped, not repaired or deleted
    assert pd.read_csv(tmp_path / "out" / "summary.csv")["n"].tolist() == [12]


# ---- item 3: no tracebacks --------------------------------------------------------------------
def test_out_naming_a_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    d = write_results(tmp_path / "r", correct=_n0_right)
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    cases = {
        str(target): "is a file, not a directory",
        str(target / "sub"): "cannot be created: ",
        str(tmp_path / "dangling"): "is a broken symbolic link",
    }
    for out, message in cases.items():
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main(["plot", str(d), "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("vniahd: error: --out ") and message in err
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert target.read_text() == "keep me"


def test_unreadable_inputs_are_one_line(tmp_path, capsys):
    d = write_results(tmp_path / "r", correct=_n0_right)
    (tmp_path / "bin.jsonl").write_bytes(bytes(range(256)))
    (tmp_path / "dir" / "results.jsonl").mkdir(parents=True)
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "results.jsonl").write_text((d / "results.jsonl").read_text())
    (tmp_path / "list" / "run.json").write_text("[1, 2]")
    cases = {
        tmp_path / "bin.jsonl": "is not UTF-8 text",
        tmp_path / "dir": "is a directory, not a results file",
        d / "run.json": f"pass the directory {d} instead",
        tmp_path / "list": "run.json is not a JSON object",
    }
    for path, message in cases.items():
        assert main(["plot", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert err.splitlines()[-1].startswith("vniahd: error: ")
        assert not (tmp_path / "out").exists()  # nothing written


def _vniahd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vniahd", *args]


def test_closed_stdout_pipe_ends_quietly():
    # Deterministic: the reader is gone before vniahd writes a byte.
    proc = subprocess.Popen(_vniahd("variants"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == EXIT_BROKEN_PIPE == 141
    assert err == ""


@pytest.mark.integration  # ~5 s: two real pipelines
def test_piped_into_head_shows_no_traceback(tmp_path):
    # As a user types it: the first line arrives, nothing on stderr whichever side wins the race.
    d = write_results(tmp_path / "r", correct=_n0_right)
    script = (
        '"$0" -m vniahd variants | head -1; echo "rc=${PIPESTATUS[0]}" >&2; '
        '"$0" -m vniahd plot "$1" --out "$2" | head -1; echo "rc=${PIPESTATUS[0]}" >&2'
    )
    run = subprocess.run(
        ["bash", "-c", script, sys.executable, str(d), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.splitlines()[0].startswith("name ")
    assert run.stdout.splitlines()[1] == "# V-NIAH / V-NIAH-D summary"
    codes = [line for line in run.stderr.splitlines() if line.startswith("rc=")]
    assert len(codes) == 2 and set(codes) <= {"rc=0", "rc=141"}
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    assert (tmp_path / "out" / "report.html").is_file()  # the report was written before printing


# ---- item 4: slow steps announce themselves ---------------------------------------------------
def test_plot_prints_status_lines(tmp_path, capsys):
    d = write_results(tmp_path / "r", correct=_n0_right)
    assert main(["plot", str(d), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "vniahd: reading 1 results input(s)"
    assert err[1].startswith("vniahd: drawing 1 heatmap(s), the comparison and curves of 12 results into ")


@pytest.mark.parametrize("variant", ["a b", "x/../y"])
def test_odd_variant_names_stay_inside_out(tmp_path, variant):
    d = write_results(tmp_path / "r", correct=_n0_right, variants=(variant, "vanilla"))
    out = tmp_path / "out"
    paths = write_report([d], out, baseline="vanilla")
    assert all(p.parent == out for p in paths.values())
    assert {p.name for p in out.iterdir()} == set(paths)
