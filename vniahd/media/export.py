"""H.264 mp4 writing with PyAV (pip OpenCV cannot encode H.264; docs/footguns.md).

libx264, yuv420p (what every player and every video-LM loader accepts). yuv420p needs even width
and height, so odd sizes are padded by repeating the last row/column. The encoder runs on one
thread so the same frames give the same bytes on any machine (x264's output depends on its
thread count).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from vniahd.errors import VniahdError
from vniahd.files import atomic_path


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def write_mp4(
    frames: np.ndarray | Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    *,
    crf: int = 18,
    preset: str = "medium",
    threads: int = 1,
) -> Path:
    """Encode RGB ``uint8 [H, W, 3]`` frames (an array ``[N, H, W, 3]`` or any iterable) to ``path``.

    ``crf`` 18 is visually near-lossless for x264; lower is larger and closer to the input.
    ``preset`` trades speed for size (single-threaded at 252x448: ``medium`` ~115 frames/s,
    ``veryfast`` ~320 frames/s). ``threads=1`` keeps the bytes machine-independent, and the
    container is written bit-exact (no library version strings), so a PyAV patch release with
    the same x264 gives the same bytes; ``0`` lets x264 use every core. The file appears
    atomically (written beside ``path`` and renamed).
    """
    import av

    if not fps or fps <= 0:
        raise VniahdError(f"mp4 frame rate must be positive, got {fps}")
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1_001_000)
    count = 0
    with atomic_path(path) as tmp:
        # bitexact: the muxer writes no library version string ("Lavf62.12.102"), so the bytes do
        # not change with a PyAV/FFmpeg patch release (av 18.1.0 and 18.1.1 differed only there)
        with av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = None
            for frame in frames:
                frame = np.asarray(frame)
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise VniahdError(
                        f"write_mp4 needs uint8 RGB frames [H, W, 3], got {frame.dtype} "
                        f"{frame.shape}; convert with np.asarray(img.convert('RGB'))"
                    )
                frame = _even(frame)
                if stream is None:
                    stream = container.add_stream("libx264", rate=rate)
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.codec_context.thread_count = int(threads)
                    stream.options = {"crf": str(crf), "preset": preset}
                elif frame.shape[:2] != (stream.height, stream.width):
                    raise VniahdError(
                        f"frame {count} is {frame.shape[1]}x{frame.shape[0]} but the video is "
                        f"{stream.width}x{stream.height}; resize all frames to one size"
                    )
                for packet in stream.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                ):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise VniahdError(f"no frames to write to {path}")
            for packet in stream.encode():
                container.mux(packet)
    return path
