"""Haystack loading, the disk cache, tiling, fingerprints and the mp4 writer."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from media_helpers import decoded_levels, index_frames, textured_frames, write_video

from vniahd.errors import VniahdError
from vniahd.media import (
    decode_count,
    fingerprint_video,
    haystack_key,
    load_haystack,
    read_frames,
    tile_frames,
    video_info,
    write_mp4,
)


@pytest.fixture()
def cache(fresh_cache):
    """This test's own empty cache (conftest.py): the hit/miss assertions need one."""
    return fresh_cache / "haystacks"


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    # 40 frames at 10 fps = 4 s; frame k is grey 5k
    return write_video(tmp_path_factory.mktemp("v") / "movie.mp4", index_frames(40, h=36, w=64), fps=10)


def test_fingerprint_is_sha256_of_bytes(movie, tmp_path):
    assert fingerprint_video(movie) == hashlib.sha256(movie.read_bytes()).hexdigest()
    with pytest.raises(VniahdError, match="nope.mp4"):
        fingerprint_video(tmp_path / "nope.mp4")


def test_load_haystack_samples_and_resizes(movie, cache):
    hay = load_haystack(movie, fps=1.0, size=(18, 32))
    assert hay.frames.shape == (4, 18, 32, 3) and hay.frames.dtype == np.uint8
    assert decoded_levels(hay.frames) == [0, 10, 20, 30]
    assert hay.source_indices == [0, 10, 20, 30]
    assert (hay.source_num_frames, hay.source_fps, hay.size, len(hay)) == (40, 10.0, (18, 32), 4)
    assert hay.fingerprint == fingerprint_video(movie)
    assert hay.key == haystack_key(hay.fingerprint, 1.0, (18, 32))
    assert not hay.from_cache
    # the same frames as a plain read
    assert np.array_equal(hay.frames, read_frames(movie, fps=1, size=(18, 32)))


def test_second_load_decodes_nothing(movie, cache):
    first = load_haystack(movie, fps=2.0, size=(18, 32))
    assert (cache / f"{first.key}.npy").is_file() and (cache / f"{first.key}.json").is_file()
    before = decode_count()
    second = load_haystack(movie, fps=2.0, size=(18, 32))
    assert decode_count() == before
    assert second.from_cache and isinstance(second.frames, np.memmap)
    assert np.array_equal(np.asarray(second.frames), first.frames)
    assert second.to_dict() == first.to_dict()
    # another fps or size is another entry, and decodes
    third = load_haystack(movie, fps=1.0, size=(18, 32))
    assert decode_count() == before + 1 and third.key != first.key and not third.from_cache
    assert haystack_key(first.fingerprint, 2.0, (18, 32)) != haystack_key(first.fingerprint, 2.0, (20, 32))


def test_cache_keyed_by_content_not_path(movie, cache, tmp_path):
    first = load_haystack(movie, size=(18, 32))
    copy = tmp_path / "renamed copy.mp4"
    copy.write_bytes(movie.read_bytes())
    before = decode_count()
    again = load_haystack(copy, size=(18, 32))
    assert decode_count() == before and again.from_cache and again.source == copy and again.key == first.key


def test_damaged_cache_entry_is_rebuilt(movie, cache):
    first = load_haystack(movie, size=(18, 32))
    expected = np.array(first.frames)
    npy = cache / f"{first.key}.npy"
    npy.unlink()  # replace, not truncate: `first.frames` still maps the old file
    npy.write_bytes(b"not a numpy file")
    before = decode_count()
    again = load_haystack(movie, size=(18, 32))
    assert decode_count() == before + 1 and not again.from_cache
    assert np.array_equal(np.asarray(again.frames), expected)


def test_cache_false_writes_nothing(movie, cache):
    hay = load_haystack(movie, size=(18, 32), cache=False)
    assert len(hay) == 4 and not hay.from_cache and not isinstance(hay.frames, np.memmap)
    assert not cache.exists() or not list(cache.iterdir())


def test_haystack_errors(tmp_path, cache):
    with pytest.raises(VniahdError, match="missing.mp4"):
        load_haystack(tmp_path / "missing.mp4")
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(range(256)) * 50)
    with pytest.raises(VniahdError, match="garbage.mp4"):
        load_haystack(bad)


def test_tiling_reference():
    t = tile_frames(3, 7)
    assert t.indices.tolist() == [0, 1, 2, 0, 1, 2, 0] and t.tiled
    t = tile_frames(5, 5)
    assert t.indices.tolist() == [0, 1, 2, 3, 4] and not t.tiled
    t = tile_frames(5, 2)
    assert t.indices.tolist() == [0, 1] and not t.tiled
    assert tile_frames(4, 0).indices.tolist() == []
    with pytest.raises(VniahdError, match="no frames"):
        tile_frames(0, 10)


# ------------------------------------------------------------------------------------ mp4 export
def test_write_mp4_round_trip(tmp_path):
    frames = index_frames(12, h=32, w=48, step=20)
    path = write_mp4(frames, tmp_path / "out" / "clip.mp4", fps=4)
    assert path.is_file() and not list(path.parent.glob(".*tmp*"))
    for backend in ("decord", "pyav"):
        info = video_info(path, backend=backend)
        assert (info.num_frames, info.fps, info.height, info.width) == (12, 4.0, 32, 48)
    back = read_frames(path)
    assert decoded_levels(back, step=20) == list(range(12))
    assert np.abs(back.astype(int) - frames).max() <= 2


def test_write_mp4_textured_quality_and_determinism(tmp_path):
    frames = textured_frames(8, h=64, w=96)
    a = write_mp4(frames, tmp_path / "a.mp4", fps=25, crf=0)  # crf 0: x264 lossless in YUV
    b = write_mp4(iter(list(frames)), tmp_path / "b.mp4", fps=25, crf=0)  # an iterable works too
    assert a.read_bytes() == b.read_bytes()
    # crf 0 is lossless in YUV, so decoding must give exactly the swscale RGB→yuv420p→RGB round trip
    import av

    expected = np.stack(
        [
            av.VideoFrame.from_ndarray(f, format="rgb24")
            .reformat(format="yuv420p")
            .to_ndarray(format="rgb24")
            for f in frames
        ]
    )
    assert np.array_equal(read_frames(a), expected)


def test_write_mp4_odd_size_padded(tmp_path):
    path = write_mp4(index_frames(3, h=31, w=45, step=60), tmp_path / "odd.mp4", fps=1)
    info = video_info(path)
    assert (info.height, info.width, info.num_frames) == (32, 46, 3)


def test_write_mp4_errors(tmp_path):
    with pytest.raises(VniahdError, match="uint8 RGB"):
        write_mp4(np.zeros((2, 8, 8, 3), np.float32), tmp_path / "x.mp4", fps=1)
    with pytest.raises(VniahdError, match="no frames"):
        write_mp4([], tmp_path / "x.mp4", fps=1)
    with pytest.raises(VniahdError, match="one size"):
        write_mp4([np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)], tmp_path / "x.mp4", fps=1)
    with pytest.raises(VniahdError, match="positive"):
        write_mp4(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "x.mp4", fps=0)
    assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.iterdir())
