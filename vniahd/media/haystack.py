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
from vniahd.files import atomic_path, cache_dir, reserve, sha256_file, sha256_json, write_json_atomic
from vniahd.media.readers import decode_into, video_info
from vniahd.media.sampling import check_frames_fit, check_resize, parse_size
from vniahd.media.timing import plan_sampling, probe_timing
from vniahd.notices import status
from vniahd.provenance import provenance

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


def _probe(src: Path, backend: str, fps: float, size: tuple[int, int], method: str):
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
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    check_frames_fit(len(indices), frame_size, root)  # before anything is allocated
    if progress:
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
                reserve(tmp)  # a full disk: ENOSPC here, not SIGBUS while decoding
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
