"""Issue 23 (part a): a number is computed from exactly the bytes the dataset names, or not at
all — by stage: generate (a still video, one writer per --out), open / inspect / eval (content
hashes, an answer the model cannot spell), variants (a file named like a preset).

Every dataset here is small (12 synthetic 56x84 frames, two needles) and written by the real
writer (tests/evaluate_fixtures.py); each test checks the one line the user sees.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import pytest
from evaluate_fixtures import make_dataset

from vniahd.cli import main
from vniahd.dataset import Dataset
from vniahd.errors import VniahdError


def _err_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


def _one_error(err: str) -> str:
    lines = _err_lines(err)
    errors = [ln for ln in lines if ln.startswith("vniahd: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))


def _video(path: Path, frames: np.ndarray) -> Path:
    from vniahd.media import write_mp4

    return write_mp4(frames, path, fps=1)


def _moving(n: int = 12) -> np.ndarray:
    frames = np.zeros((n, 36, 64, 3), np.uint8)
    frames[..., 0] = (np.arange(n, dtype=np.uint8) * 9)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :]
    return frames


def _gen(video: Path, out: Path) -> int:
    return main(
        [
            "generate",
            "--haystack",
            str(video),
            "--needles",
            "demo",
            "--out",
            str(out),
            "--lengths",
            "4:8:4",
            "--depths",
            "0,1",
            "--schedule",
            "none",
            "--size",
            "36x64",
        ]
    )


# ---------------------------------------------------------------------------------- generate
def test_a_still_video_is_refused_as_help_says(tmp_path, capsys):
    still = np.repeat(_moving(1), 12, axis=0)  # twelve frames of one picture
    out = tmp_path / "ds"
    assert _gen(_video(tmp_path / "still.mp4", still), out) == 2
    line = _one_error(capsys.readouterr().err)
    assert "still.mp4" in line and "same picture" in line
    assert not out.exists()


def test_a_second_generate_into_the_same_out_is_refused_while_the_first_writes(tmp_path, capsys):
    video = _video(tmp_path / "v.mp4", _moving())
    out = tmp_path / "ds"
    with open(tmp_path / ".ds.lock", "a+") as held:  # the first run, still writing
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        held.write(json.dumps({"pid": 4242, "host": "elsewhere"}))
        held.flush()
        assert _gen(video, out) == 2
        line = _one_error(capsys.readouterr().err)
        assert "another generate" in line and "pid 4242 on elsewhere" in line
        assert not out.exists()
    assert _gen(video, out) == 0  # released: the next run writes, and leaves no lock behind
    assert Dataset.open(out).meta["num_samples"] == 2 * 2 * 6  # lengths × depths × demo needles
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "ds", "v.mp4"]


def test_generate_records_the_hash_of_every_input_file(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    rec = json.loads((ds.path / "dataset.json").read_text())["integrity"]
    images = sorted(f"images/{p.name}" for p in (ds.path / "images").iterdir())
    assert sorted(rec["files"]) == sorted(["samples.parquet", *images]) and len(images) == 4
    import hashlib

    for rel, digest in rec["files"].items():
        assert hashlib.sha256((ds.path / rel).read_bytes()).hexdigest() == digest


# ----------------------------------------------------------------------- open, inspect, eval
def _edit_answer(path: Path) -> None:
    meta = json.loads((path / "dataset.json").read_text())
    meta["needle_set"]["needles"][0]["answer"] = "C"
    (path / "dataset.json").write_text(json.dumps(meta))


def _edit_slot(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path / "samples.parquet")
    slots = table.column("needle_slot").to_pylist()
    slots[0] = (slots[0] + 1) % 6
    table = table.set_column(table.column_names.index("needle_slot"), "needle_slot", pa.array(slots))
    pq.write_table(table, path / "samples.parquet")


def _edit_image(path: Path) -> None:
    from PIL import Image

    p = sorted((path / "images").iterdir())[0]
    arr = np.asarray(Image.open(p).convert("RGB")).copy()
    arr[0, 0] ^= 255
    Image.fromarray(arr).save(p)


def _edit_haystack(path: Path) -> None:
    arr = np.load(path / "haystack.npy", mmap_mode="r+")
    arr[3] = 255 - arr[3]  # same shape, same file size, other frames
    arr.flush()


def _truncate_haystack(path: Path) -> None:
    p = path / "haystack.npy"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # numpy's memmap: ValueError


@pytest.mark.parametrize(
    "edit, names",
    [
        (_edit_answer, "dataset.json"),
        (_edit_slot, "samples.parquet"),
        (_edit_image, "images/"),
        (_edit_haystack, "haystack.npy"),
        (_truncate_haystack, "haystack.npy"),
    ],
)
def test_a_dataset_edited_after_generate_is_refused_naming_the_file(tmp_path, capsys, edit, names):
    ds = make_dataset(tmp_path / "ds")
    Dataset.open(ds.path)  # untouched: opens
    edit(ds.path)
    with pytest.raises(VniahdError, match="changed after it was generated") as err:
        Dataset.open(ds.path)
    assert names in str(err.value)
    capsys.readouterr()
    assert main(["inspect", str(ds.path)]) == 2
    assert names in _one_error(capsys.readouterr().err)


def test_eval_refuses_an_edited_dataset_before_scoring(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    _edit_haystack(ds.path)
    out = tmp_path / "res"
    code = main(
        [
            "eval",
            "--dataset",
            str(ds.path),
            "--model",
            "random:qwen2-vl",
            "--variant",
            "mrope",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "haystack.npy" in _one_error(capsys.readouterr().err)
    assert not (out / "results.jsonl").exists()


def test_a_dataset_without_hashes_opens_with_one_warning_and_its_haystack_checked(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    meta = json.loads((ds.path / "dataset.json").read_text())
    del meta["integrity"]  # as written before the hashes existed
    (ds.path / "dataset.json").write_text(json.dumps(meta))
    Dataset.open(ds.path)
    Dataset.open(ds.path)
    warned = [ln for ln in _err_lines(capsys.readouterr().err) if "predates content hashes" in ln]
    assert len(warned) == 1 and str(ds.path) in warned[0]
    _edit_haystack(ds.path)
    with pytest.raises(VniahdError, match="haystack.npy"):
        Dataset.open(ds.path)


@pytest.mark.integration
def test_an_answer_the_model_cannot_spell_is_refused_at_eval_start(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    meta = json.loads((ds.path / "dataset.json").read_text())
    short = next(n for n in meta["needle_set"]["needles"] if not n["options"])
    short["answer"] = "zebra"  # not in the tiny model's vocabulary
    if "integrity" in meta:  # as if the needle set had said "zebra" when generate ran
        from vniahd.dataset import integrity

        meta["integrity"]["dataset_json"] = integrity.meta_hash(meta)
    (ds.path / "dataset.json").write_text(json.dumps(meta))
    out = tmp_path / "res"
    args = ["eval", "--dataset", str(ds.path), "--model", "tiny", "--variant", "vanilla", "--out", str(out)]
    for extra in ([], ["--batch-size", "1"]):
        assert main(args + extra) == 2
        line = _one_error(capsys.readouterr().err)
        assert "'short'" in line and "'zebra'" in line and "no tokens" in line
        assert not (out / "results.jsonl").exists()


# ---------------------------------------------------------------------------------- variants
def test_a_variant_file_named_like_a_preset_must_be_that_preset(tmp_path):
    from vniahd.rope import get_variant

    fake = tmp_path / "fake.json"
    fake.write_text(json.dumps({"name": "mrope", "layout": "vanilla", "allocation": "uniform"}))
    with pytest.raises(VniahdError, match="'mrope'") as err:
        get_variant(str(fake))
    assert "name of its own" in str(err.value) and "fake.json" in str(err.value)
    spec_named = tmp_path / "spec.json"
    spec_named.write_text(json.dumps({"name": "videorope:delta=1", "preset": "videorope"}))
    with pytest.raises(VniahdError, match="name of its own"):
        get_variant(str(spec_named))
    same = tmp_path / "same.json"
    same.write_text(json.dumps({"name": "mrope", "preset": "mrope"}))
    assert get_variant(str(same)).spec == get_variant("mrope").spec
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"name": "my-vanilla", "layout": "vanilla", "allocation": "uniform"}))
    assert get_variant(str(own)).name == "my-vanilla"
