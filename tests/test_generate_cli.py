"""`vniahd generate` / `inspect` / `needles` end to end on a small video the test writes itself."""

from __future__ import annotations

import numpy as np
import pytest

from vniahd.cli import main
from vniahd.dataset import Dataset

SIZE = "36x64"


@pytest.fixture
def video(tmp_path):
    from vniahd.media import write_mp4

    t = np.arange(25, dtype=np.uint8)
    frames = np.zeros((25, 36, 64, 3), np.uint8)
    frames[..., 0] = (t * 10)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :]
    path = tmp_path / "hay.mp4"
    write_mp4(frames, path, fps=1)
    return path


def _gen(video, out, *extra):
    return main(
        [
            "generate",
            "--haystack",
            str(video),
            "--needles",
            "demo",
            "--lengths",
            "10,20:40:20",
            "--depths",
            "0:1:0.5",
            "--period",
            "6",
            "--size",
            SIZE,
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.mark.parametrize("schedule, per_sample", [("none", 0), ("reference", None), ("periodic", None)])
def test_generate_each_schedule_and_inspect(video, tmp_path, capsys, schedule, per_sample):
    out = tmp_path / f"ds-{schedule}"
    assert _gen(video, out, "--schedule", schedule) == 0
    ds = Dataset.open(out)
    df = ds.samples
    assert len(df) == 3 * 3 * 6 and ds.frame_size == (36, 64)
    assert ds.meta["haystack"]["num_frames"] == 25 and ds.meta["haystack"]["tiled"] is True
    assert ds.config["period"]["frames"] == 6 and ds.config["schedule"] == schedule
    counts = df["distractor_slots"].map(len)
    if per_sample is not None:
        assert (counts == per_sample).all()
    elif schedule == "reference":
        assert set(counts) == {0, 1} or set(counts) == {1}
    else:
        assert counts.max() > 1
    assert (df["num_frames"] == df["length"] + 1 + counts).all()
    capsys.readouterr()
    sid = df["sample_id"].iloc[-1]
    assert main(["inspect", str(out), "--sample", sid, "--out", str(tmp_path / "sheet.png")]) == 0
    text = capsys.readouterr().out
    assert f"schedule     {schedule}" in text and ds.fingerprint in text and "contact sheet" in text
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_is_deterministic_and_reuses_cache(video, tmp_path):
    from vniahd.media import decode_count

    assert _gen(video, tmp_path / "a", "--repeats", "2") == 0
    before = decode_count()
    assert _gen(video, tmp_path / "b", "--repeats", "2") == 0
    assert decode_count() == before  # second generate decodes nothing
    assert (tmp_path / "a/samples.parquet").read_bytes() == (tmp_path / "b/samples.parquet").read_bytes()
    assert (tmp_path / "a/haystack.npy").read_bytes() == (tmp_path / "b/haystack.npy").read_bytes()
    assert Dataset.open(tmp_path / "a").fingerprint == Dataset.open(tmp_path / "b").fingerprint


def test_same_content_at_another_path_is_the_same_dataset(video, tmp_path):
    """The fingerprint follows content: a copied haystack gives the same dataset (its path is
    still recorded); a haystack with other frames does not."""
    import shutil

    from vniahd.media import write_mp4

    moved = tmp_path / "elsewhere" / "copy.mp4"
    moved.parent.mkdir()
    shutil.copy(video, moved)
    assert _gen(video, tmp_path / "a") == 0 and _gen(moved, tmp_path / "b") == 0
    a, b = Dataset.open(tmp_path / "a"), Dataset.open(tmp_path / "b")
    assert a.fingerprint == b.fingerprint
    assert a.config["haystack_spec"] == str(video) and b.config["haystack_spec"] == str(moved)
    greys = np.broadcast_to((90 + 4 * np.arange(25, dtype=np.uint8))[:, None, None, None], (25, 36, 64, 3))
    write_mp4(np.ascontiguousarray(greys), tmp_path / "grey.mp4", fps=1)  # other content (a still is refused)
    assert _gen(tmp_path / "grey.mp4", tmp_path / "c") == 0
    assert Dataset.open(tmp_path / "c").fingerprint != a.fingerprint


def test_period_auto_recorded(video, tmp_path):
    assert (
        main(
            [
                "generate",
                "--haystack",
                str(video),
                "--needles",
                "demo",
                "--lengths",
                "200",
                "--depths",
                "0.5",
                "--period",
                "auto:32,1e4,4",
                "--size",
                SIZE,
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    ds = Dataset.open(tmp_path / "d")
    assert ds.config["period"]["frames"] == 63 and ds.config["period"]["spec"] == "auto:32,1e4,4"
    row = ds.samples.iloc[0]
    assert abs(row["needle_slot"] - row["distractor_slots"][0]) == 64


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--lengths", "0:10:0"], "step must be positive"),
        (["--depths", "0:2:1"], "outside [0, 1]"),
        (["--schedule", "sometimes"], "unknown schedule 'sometimes'"),
        (["--period", "x"], "--period 'x'"),
        (["--size", "big"], "size 'big' is not HxW"),
        (["--fps", "0"], "--fps must be positive"),
        (["--repeats", "0"], "--repeats must be at least 1"),
    ],
)
def test_generate_bad_inputs(video, tmp_path, capsys, args, fragment):
    assert _gen(video, tmp_path / "x", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("vniahd: error:") and fragment in err and "Traceback" not in err


def test_generate_bad_files(video, tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--haystack",
                str(tmp_path / "missing.mp4"),
                "--needles",
                "demo",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "missing.mp4" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--haystack",
                str(video),
                "--needles",
                str(tmp_path / "n.json"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "n.json not found" in capsys.readouterr().err


def test_refuses_to_overwrite_a_different_dataset(video, tmp_path, capsys):
    out = tmp_path / "ds"
    assert _gen(video, out) == 0
    assert _gen(video, out, "--seed", "5") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _gen(video, out, "--seed", "5", "--overwrite") == 0
    assert Dataset.open(out).config["seed"] == 5


def test_inspect_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a vniahd dataset" in capsys.readouterr().err


def test_needles_commands(tmp_path, capsys):
    assert main(["needles", "check", "demo"]) == 0
    out = capsys.readouterr().out
    assert "native format, 6 needles" in out and "Which object is on the card coloured red?" in out
    assert main(["needles", "build-demo", "--out", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "needles.json").is_file()
