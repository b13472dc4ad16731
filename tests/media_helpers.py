"""Small videos the media tests write for themselves (PyAV, H.264)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def index_frames(n: int, h: int = 48, w: int = 64, step: int = 5) -> np.ndarray:
    """Frame k is uniform grey ``step*k``: decodes back to its own index despite lossy coding."""
    levels = (np.arange(n) * step).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, h, w, 3)).copy()


def textured_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Colourful moving texture, so that chroma conversion and motion are exercised."""
    rng = np.random.default_rng(seed)
    # 4x4 blocks of random colour: textured, yet survives 4:2:0 chroma subsampling
    blocks = rng.integers(0, 256, size=(-(-h // 4), -(-w // 2), 3), dtype=np.uint8)
    base = blocks.repeat(4, axis=0).repeat(4, axis=1)[:h, : w * 2]
    return np.stack([np.roll(base, 3 * k, axis=1)[:, :w] for k in range(n)])


def write_video(path: Path, frames: np.ndarray, fps: int | Fraction = 25, crf: int = 10) -> Path:
    """Encode with PyAV directly (independent of vniahd.media.export)."""
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(crf)}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def decoded_levels(frames: np.ndarray, step: int = 5) -> list[int]:
    """Recover the frame index of each :func:`index_frames` frame."""
    return [int(round(float(f.mean()) / step)) for f in frames]
