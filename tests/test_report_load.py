"""Loading results directories and reference all_accuracies.json files, and their errors."""

import json

import pytest
from test_report_fixtures import write_results

from vniahd.errors import VniahdError
from vniahd.reporting.load import load_inputs, load_reference_accuracies, load_results_dir, model_short_name


def _all_right(*_):
    return True


def test_results_dir_round_trip_and_shards(tmp_path):
    d = write_results(
        tmp_path / "r",
        correct=lambda v, s, L, dp, n, r: n == "n0",
        shards=3,
        lengths=(100, 300),
        depths=(0.0, 1.0),
        needles=("n0", "n1"),
    )
    df, src = load_results_dir(d)
    assert len(df) == 2 * 2 * 2
    assert sorted(src.files) == [
        "results.rank0.jsonl",
        "results.rank1.jsonl",
        "results.rank2.jsonl",
        "run.json",
    ]
    assert src.run["dataset"]["fingerprint"] == "abc123"
    assert df["correct"].sum() == 4
    assert set(df["model"]) == {"random-qwen2-vl"} and set(df["model_spec"]) == {"random:qwen2-vl"}
    loaded = load_inputs([d, d])  # the same dir twice counts once
    assert len(loaded.records) == 8 and len(loaded.sources) == 1
    assert sorted(loaded.records["depth_pct"].unique()) == [0.0, 100.0]


def test_duplicate_lines_count_once(tmp_path):
    d = write_results(tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.5,), needles=("n0",))
    line = (d / "results.jsonl").read_text().splitlines()[0]
    (d / "results.jsonl").write_text(line + "\n" + line + "\n")
    df, src = load_results_dir(d)
    assert len(df) == 1 and df["correct"].iloc[0] == 1.0
    assert any("duplicate" in n for n in src.notes)
    flipped = json.loads(line)
    flipped["correct"] = False  # two different lines for one result: neither may silently win
    (d / "results.jsonl").write_text(line + "\n" + json.dumps(flipped) + "\n")
    with pytest.raises(VniahdError, match=r"line 1 and .*line 2 hold different results"):
        load_results_dir(d)


def test_malformed_line_names_file_and_line(tmp_path):
    d = write_results(
        tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.0, 0.5, 1.0), needles=("n0",)
    )
    path = d / "results.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:25]  # a truncated write
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(VniahdError, match=r"results\.jsonl, line 2: not valid JSON"):
        load_results_dir(d)


def test_torn_last_line_is_skipped_with_a_note(tmp_path):
    d = write_results(
        tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.0, 0.5, 1.0), needles=("n0",)
    )
    path = d / "results.jsonl"
    text = path.read_text()
    path.write_text(text + text.splitlines()[0][:30])  # a write killed mid-line
    df, src = load_results_dir(d)
    assert len(df) == 3
    assert any("line 4: torn last line skipped" in n for n in src.notes)


def test_missing_key_and_bad_values_name_line(tmp_path):
    d = write_results(tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.0, 0.5), needles=("n0",))
    path = d / "results.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    del rows[1]["correct"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(VniahdError, match=r"line 2: result is missing correct"):
        load_results_dir(d)
    rows[1]["correct"] = True
    rows[0]["depth"] = 50  # a percent where a fraction belongs
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(VniahdError, match=r"line 1: 'depth' must be a fraction"):
        load_results_dir(d)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(VniahdError, match=r"nowhere does not exist"):
        load_inputs([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VniahdError, match=r"neither results\*\.jsonl nor all_accuracies\.json"):
        load_inputs([tmp_path / "empty"])
    (tmp_path / "empty" / "results.jsonl").write_text("\n")
    with pytest.raises(VniahdError, match=r"hold no results yet"):
        load_inputs([tmp_path / "empty"])
    d = write_results(tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.0,), needles=("n0",))
    (d / "run.json").write_text("{not json")
    with pytest.raises(VniahdError, match=r"run\.json, line 1: not valid JSON"):
        load_results_dir(d)


def test_missing_run_json_is_a_note(tmp_path):
    d = write_results(
        tmp_path / "r", correct=_all_right, lengths=(100,), depths=(0.0,), needles=("n0",), run_json=False
    )
    df, src = load_results_dir(d)
    assert len(df) == 1 and src.run is None and "run.json is missing" in src.notes[0]


REFERENCE = """[
  {"Num. Frame": 100, "Frame Depth": 0.0, "Score": 1.0},
  {"Num. Frame": 100, "Frame Depth": 50.0, "Score": 0.6},
  {"Num. Frame": 300, "Frame Depth": 0.0, "Score": 0.4},
  {"Num. Frame": 300, "Frame Depth": 50.0, "Score": 0.0}
]
"""


def test_reference_loader_percent(tmp_path):
    p = tmp_path / "videorope-7b" / "all_accuracies.json"
    p.parent.mkdir()
    p.write_text(REFERENCE)
    df, src = load_reference_accuracies(p)
    assert list(df["length"]) == [100, 100, 300, 300]
    assert list(df["depth"]) == [0.0, 0.5, 0.0, 0.5]  # percent → fraction
    assert list(df["correct"]) == [1.0, 0.6, 0.4, 0.0]
    assert set(df["variant"]) == {"videorope-7b"} and set(df["model"]) == {"reference"}
    assert set(df["tokens_per_frame"]) == {144.0}
    assert src.kind == "reference" and "percent" in src.notes[0]
    # A directory holding the file works as an input too.
    loaded = load_inputs([p.parent])
    assert list(loaded.records["depth_pct"]) == [0.0, 50.0, 0.0, 50.0]


def test_reference_loader_fraction_and_errors(tmp_path):
    p = tmp_path / "run7.json"
    p.write_text(
        json.dumps(
            [
                {"Num. Frame": 10, "Frame Depth": 0.25, "Score": True},
                {"Num. Frame": 10, "Frame Depth": 1, "Score": 0},
            ]
        )
    )
    df, src = load_reference_accuracies(p)
    assert list(df["depth"]) == [0.25, 1.0] and list(df["correct"]) == [1.0, 0.0]
    assert set(df["variant"]) == {"run7"} and "fractions" in src.notes[0]
    bad = tmp_path / "bad" / "all_accuracies.json"
    bad.parent.mkdir()
    bad.write_text(
        '[\n {"Num. Frame": 10, "Frame Depth": 0, "Score": 1},\n {"Num. Frame": 10, "Score": 1}\n]\n'
    )
    with pytest.raises(VniahdError, match=r"all_accuracies\.json, line 3: entry is missing 'Frame Depth'"):
        load_reference_accuracies(bad)
    bad.write_text('[\n {"Num. Frame": 10, "Frame Depth": 0, "Score": 1},\n {"Num. Frame": 10,,}\n]')
    with pytest.raises(VniahdError, match=r"line 3: not valid JSON"):
        load_reference_accuracies(bad)
    bad.write_text('{"Num. Frame": 10}')
    with pytest.raises(VniahdError, match=r"line 1: not a JSON list"):
        load_reference_accuracies(bad)
    bad.write_text('[{"Num. Frame": 10, "Frame Depth": 20, "Score": 1.5}]')
    with pytest.raises(VniahdError, match=r"line 1: need Score in \[0, 1\]"):
        load_reference_accuracies(bad)


def test_model_short_names():
    assert model_short_name("random:qwen2-vl") == "random-qwen2-vl"
    assert model_short_name("hf:/path/to/Qwen2-VL-7B") == "Qwen2-VL-7B"
    assert model_short_name("hf:/path/to/Qwen2-VL-7B/") == "Qwen2-VL-7B"
    assert model_short_name("hf:Qwen/Qwen2.5-VL-3B") == "Qwen2.5-VL-3B"
    assert model_short_name("tiny") == "tiny"
    assert model_short_name("weird name/with spaces") == "weird-name-with-spaces"


def test_distractor_schedule_samples_without_a_distractor_are_named(tmp_path):
    """Generate warns that samples too short for the period test plain V-NIAH; the report counts
    them under V-NIAH-D (as the published protocol does) and says so, naming the lengths."""
    d = write_results(
        tmp_path / "r", correct=_all_right, schedules=("reference",), lengths=(8, 100), depths=(0.5,)
    )
    lines = [json.loads(x) for x in (d / "results.jsonl").read_text().splitlines()]
    for obj in lines:
        if obj["length"] == 8:
            obj["num_frames"] = 9  # haystack + needle: no distractor fitted
    (d / "results.jsonl").write_text("".join(json.dumps(o) + "\n" for o in lines))
    loaded = load_inputs([d])
    notes = [n for n in loaded.sources[0].notes if "carry no distractor" in n]
    assert len(notes) == 1 and "2 of 4 V-NIAH-D samples (lengths 8)" in notes[0]
    assert set(loaded.records["benchmark"]) == {"V-NIAH-D"}  # counted as the protocol counts them
    plain = write_results(tmp_path / "p", correct=_all_right, lengths=(8,), depths=(0.5,))
    assert not any("distractor" in n for n in load_inputs([plain]).sources[0].notes)
