"""Dataset directories: write/open round trip, frame order, determinism, overwrite rules, contact
sheet, video export. Uses an in-memory synthetic haystack (frame i is filled with value i)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vniahd.dataset import Dataset, contact_sheet, summary, write_dataset
from vniahd.dataset.inspect import _shown_slots
from vniahd.errors import VniahdError
from vniahd.needles import load_needle_set
from vniahd.plan import COLUMNS, plan_samples

H, W, M = 24, 32, 40


def _haystack(m: int = M) -> np.ndarray:
    return np.broadcast_to(np.arange(m, dtype=np.uint8)[:, None, None, None], (m, H, W, 3)).copy()


@pytest.fixture
def needles(tmp_path):
    d = tmp_path / "needles"
    d.mkdir()
    colours = {
        "n1": (250, 0, 0),
        "d1": (0, 0, 250),
        "n2": (0, 250, 0),
        "d2a": (250, 250, 0),
        "d2b": (0, 250, 250),
    }
    for name, rgb in colours.items():
        Image.new("RGB", (64, 48), rgb).save(d / f"{name}.png")
    (d / "set.json").write_text(
        json.dumps(
            {
                "needles": [
                    {
                        "id": "one",
                        "image": "n1.png",
                        "question": "Which?",
                        "options": ["a", "b", "c", "d"],
                        "answer": "C",
                        "distractors": ["d1.png"],
                    },
                    {
                        "id": "two",
                        "image": "n2.png",
                        "question": "How many?",
                        "answer": "200",
                        "distractors": ["d2a.png", "d2b.png"],
                    },
                ]
            }
        )
    )
    return load_needle_set(d / "set.json")


def _write(
    out,
    needles,
    *,
    lengths=(10, 30, 60),
    schedule="reference",
    period=8,
    repeats=3,
    seed=11,
    frames=None,
    **kw,
):
    frames = _haystack() if frames is None else frames
    samples = plan_samples(
        lengths=list(lengths),
        depths=["0", "0.5", "1"],
        needles=[(n.id, len(n.distractors)) for n in needles],
        schedule=schedule,
        period=period,
        seed=seed,
        haystack_frames=len(frames),
        repeats=repeats,
    )
    config = {
        "lengths": list(lengths),
        "schedule": schedule,
        "period": {"frames": period, "spec": str(period)},
        "seed": seed,
        "repeats": repeats,
        "fps": 1.0,
    }
    return write_dataset(
        out,
        haystack_frames=frames,
        haystack_meta={"fingerprint": "synthetic", "source": "memory"},
        needle_set=needles,
        samples=samples,
        config=config,
        progress=False,
        **kw,
    )


def test_round_trip_and_frame_order(tmp_path, needles):
    ds = _write(tmp_path / "ds", needles)
    ds = Dataset.open(tmp_path / "ds")
    df = ds.samples
    assert tuple(df.columns) == COLUMNS and len(df) == 3 * 3 * 2 * 3
    assert ds.frame_size == (H, W) and ds.config["schedule"] == "reference"
    assert ds.meta["haystack"]["tiled"] is True and ds.meta["haystack"]["stored_frames"] == M
    assert ds.haystack_frames().shape == (M, H, W, 3)
    assert set(ds.needles) == {"one", "two"} and ds.needles["one"].answer_text == "c"
    assert ds.image("needle-one.png").shape == (H, W, 3)
    assert tuple(ds.image("needle-one.png")[5, 5]) == (250, 0, 0)  # resized to frame size
    assert tuple(ds.image("distractor-two-1.png")[0, 0]) == (0, 250, 250)
    for _, row in df.iterrows():
        refs = ds.frame_sequence(row)
        assert len(refs) == row["num_frames"]
        assert refs[row["needle_slot"]] == ("image", row["needle_image"])
        assert [refs[s] for s in row["distractor_slots"]] == [("image", n) for n in row["distractor_images"]]
        hay = [r for k, r in refs if k == "haystack"]
        assert hay == [(row["haystack_offset"] + i) % M for i in range(row["length"])]
        frames = ds.frames(row)
        assert frames[row["needle_slot"]].mean() == pytest.approx(250 / 3, abs=1)
        window = [i for i in range(row["num_frames"]) if refs[i][0] == "haystack"]
        assert [int(frames[i, 0, 0, 0]) for i in window] == hay  # frame i holds value i
    row = ds.sample("L30_D0.5_one_r0")
    assert row["needle_slot"] == 15 and list(row["distractor_slots"]) in ([6], [24])


def test_haystack_truncated_when_no_window_wraps(tmp_path, needles):
    ds = _write(tmp_path / "ds", needles, lengths=(10, 20), repeats=1, frames=_haystack(100))
    assert ds.meta["haystack"]["stored_frames"] == 20 and ds.haystack_frames().shape[0] == 20
    assert ds.meta["haystack"]["num_frames"] == 100 and ds.meta["haystack"]["tiled"] is False
    row = ds.sample("L20_D1_two_r0")
    assert max(r for k, r in ds.frame_sequence(row) if k == "haystack") == 19


def test_two_runs_are_byte_identical(tmp_path, needles):
    a = _write(tmp_path / "a", needles)
    b = _write(tmp_path / "b", needles)
    assert a.fingerprint == b.fingerprint
    for rel in [
        "samples.parquet",
        "haystack.npy",
        *[f"images/{p.name}" for p in (tmp_path / "a/images").iterdir()],
    ]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    c = _write(tmp_path / "c", needles, seed=12)
    assert c.fingerprint != a.fingerprint


def test_open_errors(tmp_path):
    with pytest.raises(VniahdError, match=r"does not exist; make one with: vniahd generate"):
        Dataset.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VniahdError, match=r"empty is not a vniahd dataset .*vniahd generate"):
        Dataset.open(tmp_path / "empty")


def test_overwrite_rules(tmp_path, needles):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(VniahdError, match="not empty and holds no vniahd dataset; choose another --out"):
        _write(other, needles)
    out = tmp_path / "ds"
    first = _write(out, needles)
    again = _write(out, needles)  # same dataset: rewritten in place
    assert again.fingerprint == first.fingerprint
    with pytest.raises(VniahdError, match="different dataset; pass --overwrite .* or choose another --out"):
        _write(out, needles, seed=99)
    assert Dataset.open(out).fingerprint == first.fingerprint  # refused writes leave it intact
    new = _write(out, needles, seed=99, overwrite=True)
    assert new.fingerprint != first.fingerprint and Dataset.open(out).config["seed"] == 99


def test_contact_sheet_and_summary(tmp_path, needles):
    ds = _write(tmp_path / "ds", needles, schedule="periodic", period=5)
    text = summary(ds)
    assert "periodic" in text and ds.fingerprint in text and needles.fingerprint in text
    assert "18 samples" not in text and "54" in text
    png = contact_sheet(
        ds, "L60_D0.5_two_r1", tmp_path / "sheet.png", max_thumbs=12, columns=6, thumb_width=96
    )
    im = Image.open(png)
    assert im.format == "PNG" and im.width == 6 * (96 + 12) + 6
    row = ds.sample("L60_D0.5_two_r1")
    shown = _shown_slots(row["num_frames"], [row["needle_slot"], *row["distractor_slots"]], 12)
    assert set(row["distractor_slots"]) <= set(shown) and row["needle_slot"] in shown
    assert _shown_slots(5, [2], 12) == [0, 1, 2, 3, 4]
    with pytest.raises(VniahdError, match="no sample 'L1_D0_x_r0'"):
        contact_sheet(ds, "L1_D0_x_r0", tmp_path / "x.png")


def test_export_videos(tmp_path, needles):
    av = pytest.importorskip("av")
    ds = _write(tmp_path / "ds", needles, lengths=(10,), repeats=1, export_videos=True)
    lines = [json.loads(x) for x in (tmp_path / "ds/questions.jsonl").read_text().splitlines()]
    assert len(lines) == len(ds.samples) == 6
    q = next(x for x in lines if x["sample_id"] == "L10_D0.5_one_r0")
    assert (
        q["options"] == ["a", "b", "c", "d"]
        and q["answer"] == "C"
        and q["question"].startswith("Options: A. a")
    )
    with av.open(str(tmp_path / "ds" / q["video"])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == q["num_frames"] == 11  # q=5: both sides out of range at period 8
    assert frames[q["needle_slot"]][..., 0].mean() > 200  # the red needle card survives encoding
    q = next(x for x in lines if x["sample_id"] == "L10_D0_one_r0")
    assert (q["needle_slot"], q["distractor_slots"], q["num_frames"]) == (0, [9], 12)
    with av.open(str(tmp_path / "ds" / q["video"])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 12 and frames[9][..., 2].mean() > 200  # the blue distractor card
    assert Dataset.open(tmp_path / "ds").meta["exported_videos"] is True


def test_writer_rejects_bad_frames(tmp_path, needles):
    with pytest.raises(VniahdError, match=r"uint8 \[N, H, W, 3\]"):
        _write(tmp_path / "ds", needles, frames=np.zeros((M, H, W), np.uint8))


def test_samples_round_trip_through_parquet_as_samples(tmp_path):
    """What the planner made comes back from samples.parquet as equal ``Sample`` objects."""
    from evaluate_fixtures import make_dataset

    from vniahd.plan import plan_samples
    from vniahd.records import Sample

    ds = make_dataset(tmp_path / "ds")
    planned = plan_samples(
        lengths=[6, 10],
        depths=["0", "0.5", "1"],
        needles=[("mc", 1), ("short", 1)],
        schedule="reference",
        period=3,
        seed=7,
        haystack_frames=12,
    )
    got = ds.sample_records()
    assert all(type(s) is Sample for s in got)
    assert sorted(got, key=lambda s: s.sample_id) == sorted(planned, key=lambda s: s.sample_id)
    assert all(type(s.length) is int and type(s.distractor_slots) is list for s in got)
