"""Per-frame EfficientNet-Lite0 feature cache, keyed by frame content.

Both training (haystack frames, card images) and the ``tiny`` backend (every frame the evaluator
asks for) go through :func:`frame_features`, so a frame is encoded once per machine whatever the
variant: the per-variant projector runs on cached features. Entries live under
``cache_dir("tiny", "features", <encoder key>)`` as one ``.npy`` per frame, named by the SHA-256 of
the frame's shape and bytes; the encoder key changes with the weights file or the preprocessing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from vniahd.files import atomic_write, cache_dir, sha256_file, sha256_json
from vniahd.models.tiny import encoder as enc

#: Bump when the feature extraction changes (resize, pooling, normalisation).
FEATURE_VERSION = 2  # 2: stage-3 colour map appended (1320 per token)
_ENCODER_KEY: str | None = None


def encoder_key() -> str:
    """Hash of the weights file and every preprocessing constant that shapes the features."""
    global _ENCODER_KEY
    if _ENCODER_KEY is None:
        _ENCODER_KEY = sha256_json(
            {
                "weights": sha256_file(enc.weights_path()),
                "version": FEATURE_VERSION,
                "input_size": enc.INPUT_SIZE,
                "pool_grid": enc.POOL_GRID,
                "levels": ["head", enc.COLOUR_BLOCK],
                "normalise": "(x-127)/128",
                "resize": "bilinear antialias",
                "bn_eps": enc.BN_EPS,
            }
        )[:16]
    return _ENCODER_KEY


def frame_key(frame: np.ndarray) -> str:
    """Content hash of one uint8 frame (shape included, so a reshaped buffer differs)."""
    frame = np.ascontiguousarray(frame)
    h = hashlib.sha256(f"{frame.shape}|{frame.dtype}".encode())
    h.update(frame.tobytes())
    return h.hexdigest()


def _store() -> Path:
    return cache_dir("tiny", "features", encoder_key())


def _path(root: Path, key: str) -> Path:
    return root / key[:2] / f"{key}.npy"


def frame_features(
    frames: np.ndarray,
    *,
    batch_size: int = 32,
    cache: bool = True,
    progress: bool = True,
    desc: str = "EfficientNet-Lite0",
) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] → float32 features [N, 4, 1320], encoding only cache misses.

    Identical frames in one call are encoded once. The result does not depend on batching: each
    frame's features come from a forward pass over that frame alone in eval mode (batch norm uses
    running statistics), so batching changes nothing but rounding (≤1e-5)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    n = len(frames)
    out = torch.empty(n, enc.TOKENS_PER_FRAME, enc.FEATURE_DIM)
    keys = [frame_key(f) for f in frames]
    root = _store() if cache else None
    todo: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key in todo:
            todo[key].append(i)
            continue
        if root is not None:
            p = _path(root, key)
            if p.is_file():
                try:
                    out[i] = torch.from_numpy(np.load(p))
                    continue
                except (OSError, ValueError):
                    pass  # damaged entry: encode again and overwrite
        todo[key] = [i]
    if todo:
        first = [idx[0] for idx in todo.values()]
        feats = enc.encode_frames(frames[first], batch_size=batch_size, progress=progress, desc=desc)
        for (key, idx), f in zip(todo.items(), feats):
            out[idx] = f
            if root is not None:
                p = _path(root, key)
                p.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(p) as fh:
                    np.save(fh, f.numpy())
    return out
