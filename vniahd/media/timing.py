"""Time in a video file: the stream's own frame timestamps (:func:`probe_timing`, demuxed, nothing
decoded) and which source frames a haystack at a given rate takes from them
(:func:`plan_sampling`: by header rate where the metadata agrees with the timestamps, else by
timestamp), with what is suspicious about the file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vniahd.errors import VniahdError
from vniahd.media.readers import check_path, sample_indices
from vniahd.media.sampling import fps_indices

# ---------------------------------------------------------------------------- stream timestamps
#: FFmpeg demuxers of bare elementary streams: no container, so no timestamps of their own (the
#: demuxer invents them at an assumed rate, 25 fps unless the bitstream declares one).
RAW_FORMATS = frozenset(
    {
        "h264",
        "hevc",
        "vvc",
        "evc",
        "mjpeg",
        "mpjpeg",
        "m4v",
        "mpegvideo",
        "rawvideo",
        "h261",
        "h263",
        "cavsvideo",
        "vc1",
        "dirac",
        "avs2",
        "avs3",
        "image2pipe",
    }
)


@dataclass
class StreamTiming:
    """What the video stream's packets say about time, measured by demuxing (no decoding).

    ``times_s``: each frame's presentation time in seconds from the first, sorted (presentation
    order), or ``None`` when the file carries no timestamps of its own (a raw stream).
    ``codec_rate``: the frame rate the codec bitstream declares (e.g. H.264 VUI timing), if any.
    """

    num_frames: int
    times_s: np.ndarray | None
    container: str
    codec_rate: float | None

    @property
    def intervals(self) -> np.ndarray:
        return np.diff(self.times_s) if self.times_s is not None else np.zeros(0)

    def duration_s(self, fallback_fps: float = 0.0) -> float | None:
        """First to last frame plus one typical frame interval; ``None`` without timestamps."""
        if self.times_s is None or not len(self.times_s):
            return None
        gaps = self.intervals
        step = float(np.median(gaps)) if len(gaps) else (1.0 / fallback_fps if fallback_fps > 0 else 0.0)
        return float(self.times_s[-1] - self.times_s[0]) + step

    @property
    def variable_rate(self) -> bool:
        """Frame intervals that differ by more than rounding (a variable-frame-rate stream)."""
        gaps = self.intervals
        if len(gaps) < 2:
            return False
        med = float(np.median(gaps))
        if med <= 0:
            return True
        return bool(gaps.max() > 1.5 * med or gaps.min() < 0.5 * med)


def probe_timing(path: str | os.PathLike) -> StreamTiming | None:
    """Demux the video stream with PyAV and collect its frame timestamps (cheap: nothing is
    decoded). ``None`` when PyAV cannot read the file (the decoders report that themselves)."""
    import av

    p = check_path(path)
    try:
        container = av.open(str(p))
    except Exception:
        return None
    try:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        fmt = (container.format.name or "").split(",")[0]
        rate = stream.codec_context.framerate
        codec_rate = float(rate) if rate else None
        pts: list[int | None] = []
        for packet in container.demux(stream):
            if packet.size:
                pts.append(packet.pts if packet.pts is not None else packet.dts)
        tb = stream.time_base
        known = [t for t in pts if t is not None]
        times = None
        if known and len(known) == len(pts) and fmt not in RAW_FORMATS and tb:
            arr = np.sort(np.asarray(known, dtype=np.float64)) * float(tb)
            times = arr - arr[0]
        return StreamTiming(len(pts), times, fmt, codec_rate)
    except Exception:
        return None
    finally:
        container.close()


#: How far a requested rate may exceed the source's before it is refused (rounding in metadata).
FPS_TOLERANCE = 1.01
#: Aspect-ratio change above which resizing to ``size`` is reported as a stretch.
ASPECT_TOLERANCE = 0.05
#: A sampled rate this far from the requested one is reported (the reference step rounding).
RATE_TOLERANCE = 0.05


def _every(step: int) -> str:
    """1 → "every frame", 2 → "every 2nd frame", 25 → "every 25th frame"."""
    if step <= 1:
        return "every frame"
    suffix = "th" if 10 <= step % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    return f"every {step}{suffix} frame"


def _timestamp_indices(times: np.ndarray, duration: float, fps: float) -> np.ndarray:
    """The frame shown at each instant ``k/fps`` (``k = 0, 1, …`` while ``k/fps < duration``):
    the last frame whose presentation time is not after it."""
    count = max(1, int(np.ceil(duration * fps - 1e-9)))
    targets = np.arange(count, dtype=np.float64) / float(fps)
    idx = np.searchsorted(times, targets + 1e-6, side="right") - 1
    return np.clip(idx, 0, len(times) - 1).astype(np.int64)


def plan_sampling(
    path: str | os.PathLike, info, timing, *, fps: float, size: tuple[int, int], method: str = "reference"
) -> tuple[np.ndarray, dict, list[str]]:
    """Which source frames a haystack at ``fps`` takes, what that really is, and what is suspicious.

    ``info`` is the decoder's :class:`~vniahd.media.readers.VideoInfo` (header metadata),
    ``timing`` the demuxed :class:`StreamTiming` (or ``None``). Returns
    ``(indices, sampling record, warnings)``:

    - constant frame rate and metadata that agree with the timestamps: ``method`` as asked
      (``reference``: every ``round(src/fps)``-th frame), unchanged from earlier versions;
    - variable frame rate, or a header whose frame count or duration disagrees with the
      timestamps: sampled by timestamp (the frame on screen at ``k/fps``), method ``"timestamp"``;
    - no timestamps at all (a raw stream): the rate the bitstream declares, else FFmpeg's assumed
      25 fps, and a warning saying which.

    Refuses (:class:`VniahdError`) a rate above the source's: sampling cannot add frames.
    """
    name = Path(path).name
    notes: list[str] = []
    header_n, header_fps = int(info.num_frames), float(info.fps)
    nominal = header_n / header_fps if header_fps > 0 else 0.0
    rate_from = "metadata"
    src_fps = header_fps
    count = header_n
    measured = nominal
    vfr = False
    if timing is not None and timing.times_s is None:
        # a bare stream: nothing in the file says how long a frame lasts
        count = timing.num_frames or header_n
        if timing.codec_rate:
            src_fps, rate_from = float(timing.codec_rate), "bitstream"
            notes.append(
                f"{name} is a raw {timing.container} stream with no timestamps; using the "
                f"{src_fps:g} fps its bitstream declares (if that is wrong, remux it with the "
                f"real rate: ffmpeg -r RATE -i {name} -c copy out.mp4)"
            )
        else:
            src_fps, rate_from = header_fps or 25.0, "assumed"
            notes.append(
                f"{name} records no frame rate (a raw {timing.container} stream); "
                f"{src_fps:g} fps is assumed, as FFmpeg does, so --fps {fps:g} takes "
                f"{_every(max(1, round(src_fps / fps)))}; remux it with the real rate "
                f"(ffmpeg -r RATE -i {name} -c copy out.mp4) if that is wrong"
            )
        measured = count / src_fps
        use_timestamps = False
    elif timing is not None and timing.num_frames:
        count = timing.num_frames
        measured = timing.duration_s(header_fps) or nominal
        vfr = timing.variable_rate
        disagree = count != header_n or (
            header_fps > 0 and abs(nominal - measured) > max(1.5 / header_fps, 0.05 * measured)
        )
        if header_fps <= 0:
            disagree = True
        use_timestamps = vfr or disagree
        if use_timestamps:
            gaps = timing.intervals
            spread = f", frame intervals {gaps.min():.3g}-{gaps.max():.3g} s" if len(gaps) else ""
            rate_from = "timestamps"
            src_fps = count / measured if measured > 0 else header_fps
            what = "variable frame rate" if vfr else "metadata that disagree with its timestamps"
            notes.append(
                f"{name} has {what}: the header says {header_n} frames at {header_fps:g} fps "
                f"({nominal:.3g} s) but the stream holds {count} frames over {measured:.4g} s"
                f"{spread}; sampled by timestamp instead (the frame on screen every "
                f"{1 / fps:g} s)"
            )
    else:
        use_timestamps = False

    if use_timestamps:
        indices = _timestamp_indices(timing.times_s, measured, fps)
        method, sampled_fps = "timestamp", float(fps)
    else:
        if src_fps > 0 and fps > src_fps * FPS_TOLERANCE:
            raise VniahdError(
                f"--fps {fps:g} is above the frame rate of {name} ({src_fps:g} fps): sampling "
                f"cannot add frames (the haystack would hold every frame yet be recorded "
                f"as {fps:g} fps); use --fps {src_fps:g} or lower"
            )
        if rate_from == "metadata" and count == header_n:
            indices = sample_indices(info, fps=fps, method=method)
        else:
            indices = fps_indices(count, src_fps, fps, method)
        if method == "reference":
            sampled_fps = src_fps / max(1, round(src_fps / fps)) if src_fps > 0 else float(fps)
        else:
            sampled_fps = float(fps)
        if abs(sampled_fps - fps) > RATE_TOLERANCE * fps:
            notes.append(
                f"--fps {fps:g} on {name} ({src_fps:g} fps) takes "
                f"{_every(max(1, round(src_fps / fps)))}, so the haystack runs at "
                f"{sampled_fps:.4g} fps, not {fps:g} (recorded as sampled_fps)"
            )
    indices = np.asarray(indices, dtype=np.int64)
    repeated = int(np.count_nonzero(indices[1:] == indices[:-1])) if len(indices) > 1 else 0
    distinct = int(len(np.unique(indices)))
    if repeated:
        notes.append(
            f"{repeated} of the {len(indices)} frames sampled from {name} repeat the frame before "
            f"(the video shows some frames for longer than {1 / fps:g} s); {distinct} are distinct"
        )

    sh, sw = int(info.height), int(info.width)
    th, tw = size
    upscaled = sh < th or sw < tw
    aspect_change = (tw / th) / (sw / sh) if sh and sw else 1.0
    if upscaled:
        notes.append(
            f"{name} is {sw}x{sh} (WxH), smaller than the frame size {tw}x{th}: its frames are "
            f"upscaled {max(th / sh, tw / sw):.3g}x and will look blurred; use a video at least "
            f"{tw}x{th}"
        )
    if abs(aspect_change - 1) > ASPECT_TOLERANCE:
        shape = "portrait " if sh > sw else ""
        notes.append(
            f"{name} is a {shape}{sw}x{sh} (WxH) video, stretched to {tw}x{th}: its aspect ratio "
            f'changes {aspect_change:.3g}x; letterbox it first (ffmpeg -vf "scale={tw}:{th}:'
            f'force_original_aspect_ratio=decrease,pad={tw}:{th}:-1:-1") or pass a --size '
            f"of its aspect"
        )
    record = {
        "method": method,
        "requested_fps": float(fps),
        "sampled_fps": float(sampled_fps),
        "source_fps": float(src_fps),
        "source_fps_from": rate_from,
        "source_num_frames": int(count),
        "source_duration_s": float(measured),
        "header_num_frames": header_n,
        "header_fps": header_fps,
        "variable_frame_rate": bool(vfr),
        "source_size": [sh, sw],
        "upscaled": bool(upscaled),
        "aspect_change": float(aspect_change),
        "num_sampled": int(len(indices)),
        "distinct_frames": distinct,
        "repeated_frames": repeated,
        "measured": "frame timestamps of the demuxed stream" if timing is not None else "decoder metadata",
    }
    return indices, record, notes
