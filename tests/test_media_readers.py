"""Readers: decord vs PyAV bit-identity, sampling indices, resize, fallback, bad inputs."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest
from media_helpers import decoded_levels, index_frames, textured_frames, write_video
from PIL import Image

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.media import even_indices, fps_indices, parse_size, read_frames, readers, video_info


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "textured.mp4", textured_frames(40), fps=25)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    # 50 frames at 25 fps = 2 s; frame k is grey 5k
    return write_video(tmp_path_factory.mktemp("v") / "indexed.mp4", index_frames(50), fps=25)


# ------------------------------------------------------------------------------ pure index rules
def test_fps_indices_reference_hand_checked():
    assert fps_indices(60, 25.0, 1.0).tolist() == [0, 25, 50]
    assert fps_indices(100, 29.97002997002997, 1.0).tolist() == [0, 30, 60, 90]  # step round(29.97)=30
    # step = round(25/10) = round(2.5) = 2 (ties to even, as Python's round in the reference)
    assert fps_indices(9, 25.0, 10.0).tolist() == [0, 2, 4, 6, 8]
    assert fps_indices(5, 25.0, 50.0).tolist() == [0, 1, 2, 3, 4]  # step never below 1
    assert fps_indices(0, 25.0, 1.0).tolist() == []


def test_fps_indices_exact_hand_checked():
    # floor(k*2.5 + 1/2): 0, 3, 5, 8, 10
    assert fps_indices(11, 25.0, 10.0, "exact").tolist() == [0, 3, 5, 8, 10]
    # 29.97 fps at 1 fps: k*30000/1001 rounded; 1000 s in, exact is at 29970, the reference at 30000
    exact = fps_indices(30001, 29.97002997002997, 1.0, "exact")
    ref = fps_indices(30001, 29.97002997002997, 1.0, "reference")
    assert exact[1000] == 29970 and ref[1000] == 30000
    # k = 1001 lands exactly on frame 1001*30000/1001 = 30000, the last one: one more than reference
    assert len(exact) == 1002 and exact[-1] == 30000 and len(ref) == 1001
    # integer ratio: both methods agree
    assert fps_indices(1000, 25, 1, "exact").tolist() == fps_indices(1000, 25, 1).tolist()
    # stops below num_frames: 0,3,5,8 for 10 frames (k=4 → 10 is out)
    assert fps_indices(10, Fraction(25), 10.0, "exact").tolist() == [0, 3, 5, 8]


@pytest.mark.parametrize(
    "n,src,fps",
    [(1, 25, 1), (97, Fraction(30000, 1001), 2.5), (500, 23.976, 0.7), (64, 24, 24), (10, 12, 25)],
)
def test_fps_indices_exact_matches_slow_loop(n, src, fps):
    ratio = Fraction(src).limit_denominator(1_001_000) / Fraction(fps).limit_denominator(1_001_000)
    slow, k = [], 0
    while (i := int(k * ratio + Fraction(1, 2))) < n:  # int() floors a positive Fraction
        slow.append(i)
        k += 1
    assert fps_indices(n, src, fps, "exact").tolist() == slow


def test_even_indices_hand_checked():
    assert even_indices(50, 5).tolist() == [0, 12, 25, 37, 49]
    assert even_indices(10, 1).tolist() == [0]
    assert even_indices(3, 5).tolist() == [0, 1, 1, 2, 2]  # more than available: repeats
    assert even_indices(100, 100).tolist() == list(range(100))


def test_sampling_argument_errors():
    with pytest.raises(UnknownNameError, match="exact"):
        fps_indices(10, 25, 1, "nearest")
    with pytest.raises(VniahdError, match="positive"):
        fps_indices(10, 25, 0)
    with pytest.raises(VniahdError, match="num_frames"):
        even_indices(10, 0)
    assert parse_size("252x448") == (252, 448)
    assert parse_size([10, 20]) == (10, 20)
    for bad in ("252", "axb", "0x10"):
        with pytest.raises(VniahdError, match="252x448"):
            parse_size(bad)


# ----------------------------------------------------------------------------------- decoding
def test_decord_and_pyav_bit_identical(textured):
    a = read_frames(textured, backend="decord")
    b = read_frames(textured, backend="pyav")
    assert a.shape == b.shape == (40, 48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # sparse reads (seeking in decord, skipping in PyAV) agree too
    assert np.array_equal(
        read_frames(textured, num_frames=7, backend="decord"),
        read_frames(textured, num_frames=7, backend="pyav"),
    )
    # and the sparse read equals the same rows of the full read
    assert np.array_equal(read_frames(textured, num_frames=7), a[even_indices(40, 7)])


def test_video_info_both_backends(indexed):
    for backend in ("decord", "pyav"):
        info = video_info(indexed, backend=backend)
        assert (info.num_frames, info.fps, info.height, info.width) == (50, 25.0, 48, 64)
        assert info.duration_s == pytest.approx(2.0)
        assert info.backend == backend


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_fps_sampling_reads_the_right_frames(indexed, backend):
    assert decoded_levels(read_frames(indexed, fps=1, backend=backend)) == [0, 25]
    assert decoded_levels(read_frames(indexed, fps=10, backend=backend)) == list(range(0, 50, 2))
    assert decoded_levels(read_frames(indexed, fps=10, method="exact", backend=backend))[:6] == [
        0,
        3,
        5,
        8,
        10,
        13,
    ]
    assert decoded_levels(read_frames(indexed, num_frames=5, backend=backend)) == [0, 12, 25, 37, 49]


def test_resize_is_antialiased_bicubic(textured):
    full = read_frames(textured)
    small = read_frames(textured, size=(31, 47), num_frames=3)
    assert small.shape == (3, 31, 47, 3)
    expect = [
        np.asarray(Image.fromarray(f).resize((47, 31), Image.Resampling.BICUBIC)) for f in full[[0, 20, 39]]
    ]
    assert np.array_equal(small, np.stack(expect))
    assert read_frames(textured, size="96x128", num_frames=1).shape == (1, 96, 128, 3)


def test_auto_falls_back_to_pyav_when_decord_fails(textured, monkeypatch):
    expected = read_frames(textured, backend="pyav")

    def broken(path, indices):
        raise readers._BackendFailed("simulated decord failure")
        yield  # pragma: no cover

    monkeypatch.setitem(readers._ITER, "decord", broken)
    out = np.empty_like(expected)
    assert readers.decode_into(textured, np.arange(40), out, size=None) == "pyav"
    assert np.array_equal(out, expected)
    with pytest.raises(VniahdError, match="simulated decord failure"):
        read_frames(textured, backend="decord")


def test_auto_works_without_decord(textured, monkeypatch):
    expected = read_frames(textured, backend="pyav")
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord now raises ImportError
    assert video_info(textured).backend == "pyav"
    assert np.array_equal(read_frames(textured), expected)


# ---------------------------------------------------------------------------------- bad inputs
def test_missing_file(tmp_path):
    with pytest.raises(VniahdError, match="not found.*nope.mp4"):
        read_frames(tmp_path / "nope.mp4")


def test_directory_and_empty_file(tmp_path):
    with pytest.raises(VniahdError, match="not a file"):
        video_info(tmp_path)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VniahdError, match="empty.*empty.mp4"):
        video_info(tmp_path / "empty.mp4")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "random.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    for backend in ("auto", "decord", "pyav"):
        with pytest.raises(VniahdError, match=r"cannot decode video .*random\.mp4.*corrupt"):
            read_frames(bad, backend=backend)


def test_zero_frame_video(tmp_path):
    import av

    path = tmp_path / "zero.avi"  # avi keeps a video stream with no frames (mp4 drops empty tracks)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        c.start_encoding()
    with pytest.raises(VniahdError, match=r"no frames: .*zero\.avi"):
        video_info(path)
    with pytest.raises(VniahdError, match=r"zero\.avi"):
        read_frames(path, fps=1)


def test_zero_frame_mp4_and_audio_only(tmp_path):
    import av

    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        c.start_encoding()
    with pytest.raises(VniahdError, match=r"zero\.mp4.*zero-frame"):
        video_info(path)
    audio = tmp_path / "sound.m4a"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    with pytest.raises(VniahdError, match=r"no video stream in .*sound\.m4a.*audio"):
        read_frames(audio)


def test_bad_arguments(indexed):
    with pytest.raises(UnknownNameError, match="pyav"):
        read_frames(indexed, backend="opencv")
    with pytest.raises(VniahdError, match="not both"):
        read_frames(indexed, fps=1, num_frames=3)
