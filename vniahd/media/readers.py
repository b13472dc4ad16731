"""Video decoding: decord first, PyAV as the fallback (and as the reference in tests).

Both backends index frames in presentation order and convert to RGB24 with FFmpeg's swscale, so
they return bit-identical frames (checked in ``tests/test_media_readers.py``).

Decoding streams: only the requested indices are converted, in batches, and each is resized as
soon as it is decoded, so the full-resolution video is never held in memory. Callers that want
the result on disk (the haystack cache) pass an ``out`` array such as a ``np.memmap``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.media.sampling import (
    as_fraction,
    check_resize,
    even_indices,
    fps_indices,
    parse_size,
    resize_frame,
)

BACKENDS = ("auto", "decord", "pyav")
_BATCH_BYTES = 256 << 20  # cap on one decord batch of full-resolution frames

_decode_passes = 0


def decode_count() -> int:
    """How many decode passes this process has run (a cache hit must not add to it)."""
    return _decode_passes


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder says about a video. ``duration_s`` is ``num_frames / fps``."""

    num_frames: int
    fps: float
    height: int
    width: int
    duration_s: float
    backend: str

    def to_dict(self) -> dict:
        return asdict(self)


class _BackendFailed(Exception):
    """A backend could not open or decode the file (the message says why)."""


# ---------------------------------------------------------------------------------------- checks
def check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise VniahdError(f"video file not found: {p}; check the path (relative paths are from {Path.cwd()})")
    if not p.is_file():
        raise VniahdError(f"video path is not a file: {p}; pass the path of a video file such as movie.mp4")
    if p.stat().st_size == 0:
        raise VniahdError(f"video file is empty (0 bytes): {p}; re-copy or re-export the video")
    return p


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise UnknownNameError("video backend", backend, BACKENDS)


def _make_info(path: Path, num_frames: int, fps: float, height: int, width: int, backend: str) -> VideoInfo:
    if num_frames <= 0:
        raise VniahdError(
            f"video has no frames: {path}; the file holds a video stream with zero decodable "
            "frames, re-export it"
        )
    return VideoInfo(
        int(num_frames),
        float(fps),
        int(height),
        int(width),
        float(num_frames / fps) if fps > 0 else 0.0,
        backend,
    )


# ------------------------------------------------------------------------------- native stderr
@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what C libraries (decord's bundled FFmpeg, its own logger) print on file
    descriptor 2 while the block runs; our own one-line error says what went wrong instead.

    Python-level writes to ``sys.stderr`` inside the block are silenced too, so keep the block
    around the native call only (progress bars update outside it).
    """
    fd = 2  # native code writes to the process's fd 2, whatever sys.stderr is
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no fd 2 at all: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


_NATIVE_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def _first_line(exc: BaseException) -> str:
    """The first line of a backend's message, without decord's ``[time] file.cc:N:`` prefixes."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    text = _NATIVE_PREFIX.sub("", lines[0] if lines else type(exc).__name__)
    return text[:200]


# ---------------------------------------------------------------------------------------- decord
def _decord_open(path: Path):
    try:
        import decord
    except ImportError as exc:  # decord has no wheel for this platform
        raise _BackendFailed(f"decord is not installed ({exc})") from None
    try:
        decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's own log lines
    except AttributeError:  # pragma: no cover - older decord
        pass
    try:
        with quiet_native_stderr():
            return decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:  # decord raises its own DECORDError / RuntimeError
        raise _BackendFailed(f"decord could not open it: {_first_line(exc)}") from None


def _decord_info(path: Path) -> VideoInfo:
    vr = _decord_open(path)
    n = len(vr)
    if n == 0:
        return _make_info(path, 0, 0, 0, 0, "decord")
    try:
        with quiet_native_stderr():
            h, w = vr[0].shape[:2]
            fps = vr.get_avg_fps()
    except Exception as exc:  # a stream that opens but does not decode
        raise _BackendFailed(f"decord could not decode its first frame: {_first_line(exc)}") from None
    return _make_info(path, n, float(as_fraction(fps)), h, w, "decord")


def _decord_iter(path: Path, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    vr = _decord_open(path)
    if len(indices) and indices[-1] >= len(vr):
        raise _BackendFailed(f"index {indices[-1]} is past the last frame ({len(vr) - 1})")
    try:
        with quiet_native_stderr():
            h, w = vr[0].shape[:2] if len(vr) else (1, 1)
    except Exception as exc:
        raise _BackendFailed(f"decord could not decode its first frame: {_first_line(exc)}") from None
    batch = max(1, min(32, _BATCH_BYTES // (h * w * 3)))
    for start in range(0, len(indices), batch):
        chunk = indices[start : start + batch]
        try:
            with quiet_native_stderr():
                frames = vr.get_batch([int(i) for i in chunk]).asnumpy()
        except Exception as exc:
            raise _BackendFailed(
                f"decord failed at frames {chunk[0]}..{chunk[-1]}: {_first_line(exc)}"
            ) from None
        for i, frame in zip(chunk, frames):
            yield int(i), frame


# ------------------------------------------------------------------------------------------ PyAV
def _pyav_open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise _BackendFailed(f"PyAV could not open it: {exc}") from None
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams)
        container.close()
        why = f"it has only {kinds} streams" if kinds else "it holds no streams: an empty or zero-frame video"
        raise VniahdError(f"no video stream in {path} ({why}); pass a video file with at least one frame")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _pyav_info(path: Path) -> VideoInfo:
    container, stream = _pyav_open(path)
    try:
        n = stream.frames
        if n <= 0:  # no count in the header: count packets (demuxing only, no decoding)
            n = sum(1 for p in container.demux(stream) if p.size)
        rate = stream.average_rate or stream.guessed_rate or 0
        ctx = stream.codec_context
        return _make_info(path, n, float(as_fraction(rate)) if rate else 0.0, ctx.height, ctx.width, "pyav")
    except VniahdError:
        raise
    except Exception as exc:
        raise _BackendFailed(f"PyAV could not read it: {exc}") from None
    finally:
        container.close()


def _pyav_iter(path: Path, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    if not len(indices):
        return
    container, stream = _pyav_open(path)
    try:
        pos, i = 0, -1
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i == indices[pos]:
                    yield i, frame.to_ndarray(format="rgb24")
                    pos += 1
                    if pos == len(indices):
                        return
        except Exception as exc:
            raise _BackendFailed(f"PyAV failed after frame {i}: {exc}") from None
        raise _BackendFailed(f"the decoder produced {i + 1} frames but frame {indices[pos]} was requested")
    finally:
        container.close()


_INFO = {"decord": _decord_info, "pyav": _pyav_info}
_ITER = {"decord": _decord_iter, "pyav": _pyav_iter}


def _order(backend: str) -> tuple[str, ...]:
    _check_backend(backend)
    return ("decord", "pyav") if backend == "auto" else (backend,)


def _failed(path: Path, reasons: list[str]) -> VniahdError:
    return VniahdError(
        f"cannot decode video {path} ({'; '.join(reasons)}); the file is corrupt or not a "
        "video: check it plays (e.g. ffprobe) or re-export it as H.264 mp4"
    )


# ------------------------------------------------------------------------------------ public API
def video_info(path: str | os.PathLike, *, backend: str = "auto") -> VideoInfo:
    """Frame count, frame rate, size and duration as the decoder reports them."""
    p = check_path(path)
    reasons = []
    for name in _order(backend):
        try:
            return _INFO[name](p)
        except _BackendFailed as exc:
            reasons.append(f"{name}: {exc}")
    raise _failed(p, reasons)


def sample_indices(
    info: VideoInfo, *, fps: float | None = None, num_frames: int | None = None, method: str = "reference"
) -> np.ndarray:
    """Source indices for ``fps`` sampling, ``num_frames`` evenly spaced, or every frame."""
    if fps is not None and num_frames is not None:
        raise VniahdError("give either fps or num_frames, not both")
    if fps is not None:
        return fps_indices(info.num_frames, info.fps, fps, method)
    if num_frames is not None:
        return even_indices(info.num_frames, int(num_frames))
    return np.arange(info.num_frames, dtype=np.int64)


def decode_into(
    path: str | os.PathLike,
    indices: np.ndarray,
    out: np.ndarray,
    *,
    size: tuple[int, int] | None,
    backend: str = "auto",
    on_frame: Callable[[], None] | None = None,
    resize: str = "pil",
) -> str:
    """Decode source frames ``indices`` (any order, repeats allowed) into ``out[k]``, resized
    (``resize``: a method of :data:`vniahd.media.sampling.RESIZE_METHODS`).

    Returns the backend that succeeded. With ``backend="auto"`` a decord failure (missing, cannot
    open, fails mid-way) falls back to PyAV, which rewrites every slot.
    """
    global _decode_passes
    p = check_path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if out.shape[0] != len(indices):
        raise ValueError(f"out has {out.shape[0]} rows for {len(indices)} indices")
    unique, inverse = np.unique(indices, return_inverse=True)
    slots: dict[int, list[int]] = {}
    for k, u in enumerate(inverse):
        slots.setdefault(int(unique[u]), []).append(k)
    reasons = []
    for name in _order(backend):
        _decode_passes += 1
        try:
            for i, frame in _ITER[name](p, unique):
                small = resize_frame(frame, size, resize)
                if small.shape != out.shape[1:]:
                    raise VniahdError(
                        f"frame {i} of {p} is {small.shape[1]}x{small.shape[0]}, expected "
                        f"{out.shape[2]}x{out.shape[1]}; videos whose size changes mid-stream "
                        "need a --size to normalise them"
                    )
                for k in slots[i]:
                    out[k] = small
                if on_frame:
                    on_frame()
            return name
        except _BackendFailed as exc:
            reasons.append(f"{name}: {exc}")
    raise _failed(p, reasons)


def read_frames(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    size: tuple[int, int] | str | None = None,
    backend: str = "auto",
    method: str = "reference",
    resize: str = "pil",
) -> np.ndarray:
    """Sample a video and return RGB frames, ``uint8 [N, H, W, 3]``.

    - ``fps``: frames at this rate (see :mod:`vniahd.media.sampling` for the exact indices;
      ``method`` ``"reference"`` or ``"exact"``); ``num_frames``: N evenly spaced frames;
      neither: every frame.
    - ``size``: ``(H, W)`` or ``"HxW"``; antialiased bicubic resize (``resize``: ``"pil"`` or
      ``"torch-bicubic"``, see :func:`~vniahd.media.sampling.resize_frame`). ``None`` keeps native size.
    - ``backend``: ``"auto"`` (decord, then PyAV), ``"decord"`` or ``"pyav"``.
    """
    _check_backend(backend)
    check_resize(resize)
    size = parse_size(size)
    info = video_info(path, backend=backend)
    indices = sample_indices(info, fps=fps, num_frames=num_frames, method=method)
    h, w = size or (info.height, info.width)
    out = np.empty((len(indices), h, w, 3), dtype=np.uint8)
    decode_into(path, indices, out, size=size, backend=backend, resize=resize)
    return out
