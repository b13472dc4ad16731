"""V-RULER tasks end to end: `vniahd generate --task`, samples.parquet, the frames the evaluator
reads, results and the report. Expectations are independent of the writer: the planner's trials
(themselves checked against replays of the released loops in test_plan_vruler.py), hand-read
slot tables, and the demo set's own card metadata."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vniahd.cli import main
from vniahd.dataset import Dataset
from vniahd.errors import VniahdError
from vniahd.needles import load_task_items, vruler_demo_path
from vniahd.plan.tasks import plan_task

SIZE = "36x64"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from vniahd.media import write_mp4

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (40, 36, 64, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("hay") / "hay.mp4"
    write_mp4(frames, path, fps=1)
    return path


def _generate(video, out, task, *extra):
    rc = main(
        ["generate", "--haystack", str(video), "--needles", "demo", "--task", task, "--lengths", "10,30"]
        + ["--size", SIZE, "--out", str(out), *extra]
    )
    assert rc == 0
    return Dataset.open(out)


@pytest.mark.parametrize("task", ["multi-key", "counting", "ordering"])
def test_samples_hold_the_planners_trials_and_the_frames_follow_them(video, tmp_path, task):
    ds = _generate(video, tmp_path / task, task)
    items = load_task_items(vruler_demo_path(task), task)
    depths = ["0", "0.2", "0.4", "0.6", "0.8"] + ([] if task == "multi-key" else ["1"])
    # generate's default draws are per-sample (hashed), as for V-NIAH-D; --protocol vruler replays
    extra = {"draws": "hashed", "seed": 24242424} if task == "multi-key" else {}
    trials = {t.sample_id: t for t in plan_task(task, items.specs(), [10, 30], depths, **extra)}
    df = ds.samples
    assert len(df) == len(trials) and ds.config["task"] == task and ds.config["placement"] == "reference"
    for row in df.to_dict("records"):
        t = trials[row["sample_id"]]
        assert list(row["needle_slots"]) == list(t.needle_slots)
        assert list(row["needle_ids"]) == list(t.needle_ids)
        assert row["needle_id"] == t.item_id and row["num_frames"] == t.num_frames
        refs = ds.frame_sequence(row)
        shown = [r for kind, r in refs if kind == "image"]
        assert shown == [f"needle-{n}.png" for n in t.needle_ids]  # in the item's order
        assert [i for i, (kind, _) in enumerate(refs) if kind == "image"] == sorted(t.needle_slots)
        assert [r for kind, r in refs if kind == "haystack"] == list(range(row["length"]))
        item = next(it for it in items if it.id == t.item_id)
        for nid, src in zip(item.needle_ids, item.images):  # the stored picture is the item's image
            assert np.array_equal(ds.image(f"needle-{nid}.png"), _resized(src))


def _resized(path):
    from vniahd.needles.images import read_rgb

    return read_rgb(path, (36, 64))[0]


def test_counting_slots_by_hand(video, tmp_path):
    """Released rule: needle j after haystack frame linspace(0, n−1, k)[j] → slot choose[j] + 1 + j;
    k = 0 is the bare haystack; depth changes nothing."""
    ds = _generate(video, tmp_path / "c", "counting")
    df = ds.samples.set_index("sample_id")
    assert (
        list(df.loc["L10_D0_item0_r0", "needle_slots"]) == []
        and df.loc["L10_D0_item0_r0", "needle_slot"] == -1
    )
    assert list(df.loc["L10_D0.4_item1_r0", "needle_slots"]) == [1]  # after frame 0
    assert list(df.loc["L30_D1_item4_r0", "needle_slots"]) == [1, 31]  # after frames 0 and 29
    assert df.loc["L30_D1_item4_r0", "num_frames"] == 32
    by_depth = (
        df[df["length"] == 30].groupby("needle_id")["needle_slots"].agg(lambda s: {tuple(x) for x in s})
    )
    assert all(len(v) == 1 for v in by_depth)


def test_depth_placement_uses_depth(video, tmp_path):
    ds = _generate(video, tmp_path / "d", "ordering", "--placement", "depth")
    df = ds.samples
    assert ds.config["placement"] == "depth"
    four = df[(df["length"] == 30) & (df["needle_ids"].map(len) == 4)]
    firsts = {round(d, 1): int(s[0]) for d, s in zip(four["depth"], four["needle_slots"])}
    # window [⌊d·30⌋, ⌊(d+0.2)·30⌋): needle 0 before haystack frame ⌊d·30⌋
    assert firsts[0.0] == 0 and firsts[0.4] == 12 and firsts[0.8] == 24


def test_multi_key_protocol_defaults_to_the_released_depths(video, tmp_path):
    rc = main(
        ["generate", "--haystack", str(video), "--needles", "demo", "--task", "multi-key"]
        + ["--protocol", "vruler", "--lengths", "10", "--size", SIZE, "--frames-per-group", "1"]
        + ["--out", str(tmp_path / "mk")]
    )
    assert rc == 0
    ds = Dataset.open(tmp_path / "mk")
    assert sorted(ds.samples["depth"].unique()) == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert ds.config["protocol"] == "vruler" and ds.config["draws"] == "reference"


def test_released_niah_file_gives_a_v_niah_d_dataset(video, tmp_path):
    path = vruler_demo_path("niah")
    rc = main(
        ["generate", "--haystack", str(video), "--needles", str(path), "--lengths", "10,30", "--period", "6"]
        + ["--size", SIZE, "--out", str(tmp_path / "n")]
    )
    assert rc == 0
    ds = Dataset.open(tmp_path / "n")
    items = load_task_items(path, "niah")
    assert set(ds.needles) == {it.needle_ids[0] for it in items}
    assert (ds.samples["distractor_slots"].map(len) > 0).any() and "task" not in ds.config


def test_a_needle_file_naming_its_own_distractors_is_read_by_its_shape(tmp_path):
    """Items with ``interrupt_path`` (V-RULER's v_niah_d.json) give needles with distractors under
    any file name: the reference loader recognises the shape, not the name."""
    import shutil

    from vniahd.needles import load_needle_set

    src = vruler_demo_path("niah")
    (tmp_path / "images").mkdir()
    for f in (src.parent / "images").iterdir():
        shutil.copy(f, tmp_path / "images" / f.name)
    renamed = tmp_path / "my_interrupts.json"
    renamed.write_bytes(src.read_bytes())
    got = load_needle_set(renamed)
    items = load_task_items(src, "niah")
    assert [n.id for n in got] == [it.needle_ids[0] for it in items]
    assert all(len(n.distractors) == 1 for n in got)
    assert [n.distractors[0].name for n in got] == [it.distractors[0].name for it in items]


def test_bad_task_options_name_the_fix(video, tmp_path):
    with pytest.raises(VniahdError, match="drop --schedule"):
        from vniahd.dataset.generate import generate

        generate(haystack=video, needles="demo", out=tmp_path / "x", task="counting", schedule="reference")
    with pytest.raises(VniahdError, match="--placement is a V-RULER task's rule"):
        generate(haystack=video, needles="demo", out=tmp_path / "y", placement="depth")


def test_inspect_shows_every_needle(video, tmp_path, capsys):
    ds = _generate(video, tmp_path / "i", "ordering")
    capsys.readouterr()
    assert main(["inspect", str(ds.path)]) == 0
    assert "task         ordering  placement reference" in capsys.readouterr().out
    sid = ds.samples[ds.samples["needle_ids"].map(len) == 4]["sample_id"].iloc[0]
    assert main(["inspect", str(ds.path), "--sample", sid, "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_eval_and_report_per_task(video, tmp_path):
    """Results say their task; the report makes each task a benchmark, keeps one depth where
    the released placement ignores it, and writes the V-RULER table with 'overall (ours)'."""
    from vniahd import evaluate, report

    outs = []
    for task in ("counting", "multi-key"):
        ds = _generate(video, tmp_path / task, task, "--lengths", "10")
        out = tmp_path / f"res-{task}"
        evaluate(ds.path, "random:qwen2-vl", ["mrope"], out=out, progress=False)
        recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert {(r["task"], r["placement"]) for r in recs} == {(task, "reference")}
        outs.append(out)
    paths = report(outs, out=tmp_path / "rep")
    table = pd.read_csv(paths["vruler_summary.csv"])
    counting = table[table["task"] == "counting"].iloc[0]
    assert counting["n"] == 5  # 1 length × 5 items, depth repeats left out
    overall = table[table["task"] == "overall (ours)"].iloc[0]
    assert overall["mean"] == pytest.approx(table[table["task"] != "overall (ours)"]["mean"].mean())
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "No released V-RULER script combines the tasks" in md and "V-RULER" in md


@pytest.mark.parametrize("task", ["multi-key", "counting"])
def test_protocol_vruler_dataset_holds_the_released_trials(video, tmp_path, task):
    """--protocol vruler: the whole released grid (15 lengths; multi-key 375 trials from the
    shared stream seeded 24242424), each sample's slots those of the planner's released replay."""
    from vniahd.dataset.generate import generate

    ds = generate(
        haystack=video,
        needles="demo",
        out=tmp_path / task,
        protocol="vruler",
        task=task,
        size="18x32",
        frames_per_group=1,
        progress=False,
    )
    items = load_task_items(vruler_demo_path(task), task)
    trials = plan_task(task, items.specs())  # the released grid, draws and seed
    assert len(ds.samples) == len(trials) == (375 if task == "multi-key" else 450)
    got = {r["sample_id"]: list(r["needle_slots"]) for r in ds.samples.to_dict("records")}
    assert got == {t.sample_id: list(t.needle_slots) for t in trials}


def test_repeats_are_refused_for_tasks(video, tmp_path):
    from vniahd.dataset.generate import generate

    with pytest.raises(VniahdError, match="drop --repeats"):
        generate(haystack=video, needles="demo", out=tmp_path / "r", task="ordering", repeats=3)


def _records(rows):
    """Report records: (schedule, dataset_tag, variant, depth, correct) per row, one input."""
    cols = ["schedule", "dataset_tag", "variant", "depth", "correct"]
    df = pd.DataFrame(rows, columns=cols)
    df["model"], df["scoring"], df["input"] = "m", "reference", 0
    return df


def test_vruler_table_never_pools_two_placements_or_datasets():
    from vniahd.reporting.vruler import OVERALL, vruler_summary

    ref, dep = "vruler:counting:reference", "vruler:counting:depth"
    df = _records(
        [(ref, "", "a", 0.0, 1.0)] * 2
        + [(dep, "", "a", 0.0, 0.0)] * 6
        + [("vruler:ordering:reference", "", "a", 0.0, 1.0)]
        + [("reference", "period 4", "a", 0.5, 1.0), ("reference", "period 9", "a", 0.5, 0.0)]
    )
    table = vruler_summary(df).set_index("task")
    assert table.loc["counting", "n"] == 2 and table.loc["counting (depth placement)", "n"] == 6
    assert table.loc["niah [period 4]", "mean"] == 1.0 and table.loc["niah [period 9]", "mean"] == 0.0
    assert OVERALL not in table.index  # counting and niah were each measured twice: no one mean
    both = vruler_summary(df[df["schedule"].isin([ref, "vruler:ordering:reference"])]).set_index("task")
    assert both.loc[OVERALL, "mean"] == 1.0 and both.loc[OVERALL, "tasks"] == "counting, ordering"


def test_depth_ignored_rows_keep_each_variants_own_first_depth():
    from vniahd.reporting.load import _one_row_where_depth_is_ignored
    from vniahd.reporting.sources import Source

    s = "vruler:counting:reference"
    df = _records(
        [(s, "", "mrope", d, 1.0) for d in (0.0, 0.5, 1.0)]
        + [(s, "", "videorope", d, 0.0) for d in (0.5, 1.0)]
    )
    src = Source(path="x", kind="results")
    src.num_records = len(df)
    kept = _one_row_where_depth_is_ignored(df, [src])
    assert sorted(zip(kept["variant"], kept["depth"])) == [("mrope", 0.0), ("videorope", 0.5)]
    assert src.num_records == 2 and "leaves out" in src.notes[0]
