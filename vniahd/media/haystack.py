"""Haystacks: a video sampled once (fps, size), fingerprinted, cached on disk, tiled on demand.

Cache layout (``vniahd.files.cache_dir("haystacks")``)::

    <key>.npy   uint8 [N, H, W, 3], opened as a read-only memmap
    <key>.json  what the frames are (fingerprint, fps, size, indices, backend, provenance)

``key`` hashes (file sha256, fps, size, sampling method, cache format version, and the resize
method when it is not the default PIL one), so a second load of the same video with the same
parameters decodes nothing. Both files are written atomically; the
.npy is decoded straight into a memmap of its temp file, so even a long movie never sits in RAM.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vniahd.errors import VniahdError
from vniahd.files import atomic_path, cache_dir, sha256_file, sha256_json, write_json_atomic
from vniahd.media.readers import decode_into, sample_indices, video_info
from vniahd.media.sampling import check_resize, parse_size

REFERENCE_FPS = 1.0
REFERENCE_SIZE = (252, 448)  # (H, W): 9x16 merged tokens per frame for Qwen2-VL (reference protocol)
CACHE_VERSION = 1  # bump when decoding/resizing changes so old caches are not reused


def fingerprint_video(path: str | os.PathLike) -> str:
    """The content fingerprint of a video: SHA-256 of the file's bytes."""
    p = Path(path)
    if not p.is_file():
        raise VniahdError(f"video file not found: {p}; check the path")
    return sha256_file(p)


def haystack_key(
    fingerprint: str, fps: float, size: tuple[int, int], method: str = "reference", resize: str = "pil"
) -> str:
    """Content hash naming the sampled frames of one video at one (fps, size, method, resize).
    The default ``resize="pil"`` is left out of the hash, so keys made before it existed stay."""
    spec: dict = {
        "fingerprint": fingerprint,
        "fps": float(fps),
        "size": [int(size[0]), int(size[1])],
        "method": method,
        "version": CACHE_VERSION,
    }
    if resize != "pil":
        spec["resize"] = resize
    return sha256_json(spec)


@dataclass
class Haystack:
    """A sampled haystack. ``frames`` may be a read-only ``np.memmap`` (cache hit).

    ``sampling`` records what was actually sampled (see :func:`describe_sampling`): the source's
    measured frame count, duration and size, where its frame rate came from, the method, the rate
    the frames really have, and how many sampled frames repeat the previous one. ``notes`` are
    the warnings about the source (variable frame rate, no timestamps, upscaled, stretched…),
    one line each, for the caller to show.
    """

    frames: np.ndarray
    fingerprint: str
    source: Path
    fps: float
    size: tuple[int, int]
    source_num_frames: int
    source_fps: float
    backend: str
    key: str
    method: str = "reference"
    resize: str = "pil"
    source_indices: list[int] = field(default_factory=list, repr=False)
    from_cache: bool = False
    sampling: dict = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def distinct_frames(self) -> int:
        """How many different source frames the haystack holds."""
        if self.source_indices:
            return len(set(self.source_indices))
        return int(self.sampling.get("distinct_frames", len(self)))

    def to_dict(self) -> dict:
        """JSON-able description (no frames) for dataset provenance (``resize`` only when it is
        not the default ``"pil"``)."""
        out = {
            "fingerprint": self.fingerprint,
            "source": str(self.source),
            "fps": self.fps,
            "size": list(self.size),
            "num_frames": len(self),
            "source_num_frames": self.source_num_frames,
            "source_fps": self.source_fps,
            "backend": self.backend,
            "key": self.key,
            "method": self.method,
            "sampling": dict(self.sampling),
            "warnings": list(self.notes),
        }
        if self.resize != "pil":
            out["resize"] = self.resize
        return out


class Tiling(NamedTuple):
    indices: np.ndarray  # int64 [n_needed], haystack frame for each slot
    tiled: bool  # True when the haystack had to be repeated


def tile_frames(n_available: int, n_needed: int) -> Tiling:
    """Reference tiling: repeat the haystack end to end until it covers ``n_needed`` frames.

    The V-NIAH reference concatenates copies of the haystack when it is shorter than the longest
    length; slot ``i`` therefore shows frame ``i mod n_available``.
    """
    if n_available <= 0:
        raise VniahdError("the haystack has no frames; use a longer video or a higher --fps")
    if n_needed < 0:
        raise VniahdError(f"cannot take {n_needed} frames from a haystack")
    return Tiling(np.arange(n_needed, dtype=np.int64) % n_available, n_needed > n_available)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=None)


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
    ``timing`` the demuxed :class:`~vniahd.media.readers.StreamTiming` (or ``None``). Returns
    ``(indices, sampling record, warnings)``:

    - constant frame rate and metadata that agree with the timestamps: ``method`` as asked
      (``reference``: every ``round(src/fps)``-th frame), unchanged from earlier versions;
    - variable frame rate, or a header whose frame count or duration disagrees with the
      timestamps: sampled by timestamp (the frame on screen at ``k/fps``), method ``"timestamp"``;
    - no timestamps at all (a raw stream): the rate the bitstream declares, else FFmpeg's assumed
      25 fps, and a warning saying which.

    Refuses (:class:`VniahdError`) a rate above the source's: sampling cannot add frames.
    """
    from vniahd.media.sampling import fps_indices

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


def _probe(src: Path, backend: str, fps: float, size: tuple[int, int], method: str):
    from vniahd.media.readers import probe_timing

    info = video_info(src, backend=backend)
    timing = probe_timing(src)
    indices, record, notes = plan_sampling(src, info, timing, fps=fps, size=size, method=method)
    return info, indices, record, notes


def load_haystack(
    path: str | os.PathLike,
    *,
    fps: float = REFERENCE_FPS,
    size: tuple[int, int] | str = REFERENCE_SIZE,
    cache: bool = True,
    backend: str = "auto",
    method: str = "reference",
    progress: bool = True,
    resize: str = "pil",
) -> Haystack:
    """Sample ``path`` at ``fps`` and resize to ``size`` (H, W) with ``resize`` (``"pil"`` or
    ``"torch-bicubic"``, :func:`vniahd.media.sampling.resize_frame`); reuse the disk cache when
    present.

    The stream's timestamps are checked first (:func:`plan_sampling`): a variable-frame-rate video
    is sampled by timestamp, a rate above the source's is refused, and :attr:`Haystack.notes`
    lists what looks wrong (the caller decides whether to print it).
    """
    src = Path(path)
    parsed = parse_size(size)
    if parsed is None:
        raise VniahdError("a haystack needs a frame size; pass e.g. size=(252, 448)")
    frame_size = parsed
    check_resize(resize)
    fingerprint = fingerprint_video(src)
    key = haystack_key(fingerprint, fps, frame_size, method, resize)
    root = cache_dir("haystacks") if cache else None
    if root is not None:
        hit = _load_cached(root, key, src)
        if hit is not None and hit.sampling:
            return hit
        if hit is not None:  # written before sampling was recorded: describe it now (no decode)
            info, indices, record, notes = _probe(src, backend, fps, frame_size, method)
            if record["method"] == hit.method and [int(i) for i in indices] == hit.source_indices:
                hit.sampling, hit.notes = record, notes
                _write_meta(root, hit)
                return hit
    info, indices, record, notes = _probe(src, backend, fps, frame_size, method)
    if record["method"] != method:  # e.g. "timestamp" for a variable-frame-rate video
        key = haystack_key(fingerprint, fps, frame_size, record["method"], resize)
        if root is not None:
            hit = _load_cached(root, key, src)
            if hit is not None and hit.sampling:
                return hit
    shape = (len(indices), frame_size[0], frame_size[1], 3)
    if progress:
        from vniahd.notices import status

        h, w = frame_size
        status(
            f"decoding {src.name}: {len(indices)} frames at {fps:g} fps, {w}x{h}"
            + (f", {resize} resize" if resize != "pil" else "")
            + (" (cached for next time)" if root is not None else "")
        )
    bar = _progress(len(indices), f"decoding {src.name}") if progress else None
    tick = bar.update if bar is not None else None
    try:
        if root is None:
            frames = np.empty(shape, dtype=np.uint8)
            used = decode_into(
                src, indices, frames, size=frame_size, backend=backend, on_frame=tick, resize=resize
            )
        else:
            with atomic_path(root / f"{key}.npy") as tmp:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                used = decode_into(
                    src, indices, mm, size=frame_size, backend=backend, on_frame=tick, resize=resize
                )
                mm.flush()
                del mm
            frames = np.load(root / f"{key}.npy", mmap_mode="r")
    finally:
        if bar is not None:
            bar.close()
    hay = Haystack(
        frames=frames,
        fingerprint=fingerprint,
        source=src,
        fps=float(fps),
        size=frame_size,
        source_num_frames=int(record["source_num_frames"]),
        source_fps=float(record["source_fps"]),
        backend=used,
        key=key,
        method=record["method"],
        resize=resize,
        source_indices=[int(i) for i in indices],
        sampling=record,
        notes=notes,
    )
    if root is not None:
        _write_meta(root, hay)
    return hay


def _write_meta(root: Path, hay: Haystack) -> None:
    from vniahd.provenance import provenance

    write_json_atomic(
        root / f"{hay.key}.json",
        {
            **hay.to_dict(),
            "source_indices": hay.source_indices,
            "cache_version": CACHE_VERSION,
            "provenance": provenance(),
        },
    )


def _load_cached(root: Path, key: str, src: Path) -> Haystack | None:
    npy, meta_path = root / f"{key}.npy", root / f"{key}.json"
    if not (npy.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        frames = np.load(npy, mmap_mode="r")
    except (OSError, ValueError):
        return None  # damaged entry: decode again and overwrite it
    if frames.shape != (meta["num_frames"], *meta["size"], 3) or frames.dtype != np.uint8:
        return None
    return Haystack(
        frames=frames,
        fingerprint=meta["fingerprint"],
        source=src,
        fps=meta["fps"],
        size=tuple(meta["size"]),
        source_num_frames=meta["source_num_frames"],
        source_fps=meta["source_fps"],
        backend=meta["backend"],
        key=key,
        method=meta["method"],
        resize=meta.get("resize", "pil"),
        source_indices=meta.get("source_indices", []),
        from_cache=True,
        sampling=meta.get("sampling") or {},
        notes=list(meta.get("warnings") or []),
    )
