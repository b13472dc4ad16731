"""The embedding cache: every frame goes through the vision encoder once.

Layout under ``root`` (default ``$VNIAHD_CACHE/embeddings``)::

    <encoder key>/                       encoder key = backend.encoder_fingerprint(frame size):
        meta.json                          vision weights hash + preprocessing params + dtype
        haystack-<haystack key>.npy        [N, tokens_per_frame, hidden] memmap (host memory)
        haystack-<haystack key>.json       progress: frames done (written after each flushed chunk)
        images/<content hash>.npy          one needle / distractor image, [tokens_per_frame, hidden]

The RoPE variant does not touch the vision side, so every variant (and every rerun after a crash)
shares these files. Haystack embeddings stay on the host (a memmap); the runner moves one
sample's slice to the device at a time. bfloat16 embeddings are stored bit-exactly as uint16.

``stats`` counts frames that went through the encoder and frames served from disk, so tests can
assert that a second run encodes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from vniahd.files import atomic_write, cache_dir, sha256_bytes, write_json_atomic

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike

_STORE = {
    torch.float32: (np.float32, None),
    torch.float16: (np.float16, None),
    torch.bfloat16: (np.uint16, torch.bfloat16),
}


@dataclass
class CacheStats:
    frames_encoded: int = 0  # frames run through the vision encoder in this process
    haystack_frames_encoded: int = 0
    images_encoded: int = 0
    images_loaded: int = 0  # image embeddings read from disk


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)  # bit-exact; numpy has no bfloat16
    return t.numpy()


def _to_torch(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.bfloat16:
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


class EmbeddingCache:
    """Frame embeddings of one backend, on disk. ``chunk`` frames are encoded per encoder call."""

    def __init__(
        self,
        backend: BackendLike,
        frame_size: tuple[int, int],
        root: str | Path | None = None,
        chunk: int = 16,
        progress: bool = True,
    ):
        self.backend = backend
        self.frame_size = cast("tuple[int, int]", tuple(int(x) for x in frame_size))
        self.key = backend.encoder_fingerprint(self.frame_size)
        self.root = Path(root) if root is not None else cache_dir("embeddings")
        self.dir = self.root / self.key[:24]
        (self.dir / "images").mkdir(parents=True, exist_ok=True)
        self.dtype = backend.dtype
        self.np_dtype = _STORE[self.dtype][0]
        self.grid = backend.visual_grid(self.frame_size)
        self.tokens_per_frame = self.grid[0] * self.grid[1]
        self.hidden = backend.row_width
        self.chunk = max(1, int(chunk))
        self.progress = progress
        self.stats = CacheStats()
        meta = self.dir / "meta.json"
        if not meta.exists():
            write_json_atomic(
                meta,
                {
                    "encoder_key": self.key,
                    "frame_size": list(self.frame_size),
                    "grid": list(self.grid),
                    "hidden": self.hidden,
                    "dtype": str(self.dtype),
                    "backend": backend.spec,
                },
            )
        self._haystack: np.ndarray | None = None
        self._images: dict[str, torch.Tensor] = {}

    # ---- encoding ------------------------------------------------------------------------
    def _encode(self, frames: np.ndarray) -> np.ndarray:
        out = self.backend.encode_frames(np.asarray(frames))
        expected = (len(frames), self.tokens_per_frame, self.hidden)
        if tuple(out.shape) != expected:
            raise RuntimeError(f"encoder returned {tuple(out.shape)}, expected {expected}")
        self.stats.frames_encoded += len(frames)
        return _to_numpy(out.to(self.dtype))

    def haystack(self, frames: np.ndarray, haystack_key: str) -> np.ndarray:
        """Embeddings of every haystack frame (a read-only memmap), encoding what is missing.

        Resumable: progress is recorded after each flushed chunk, so a crash loses one chunk."""
        if self._haystack is not None:
            return self._haystack
        n = len(frames)
        shape = (n, self.tokens_per_frame, self.hidden)
        data = self.dir / f"haystack-{haystack_key[:24]}.npy"
        prog = self.dir / f"haystack-{haystack_key[:24]}.json"
        done = 0
        if data.exists() and prog.exists():
            state = json.loads(prog.read_text())
            if state.get("shape") == list(shape) and state.get("dtype") == str(self.dtype):
                done = int(state.get("done", 0))
        if done < n:
            mode = "r+" if done > 0 else "w+"
            arr = np.lib.format.open_memmap(
                data, mode=mode, dtype=self.np_dtype, shape=shape if mode == "w+" else None
            )
            bar = None
            if self.progress:
                from tqdm import tqdm

                bar = tqdm(
                    total=n,
                    initial=done,
                    desc="encode haystack frames",
                    unit="frame",
                    leave=False,
                    dynamic_ncols=True,
                )
            for start in range(done, n, self.chunk):
                stop = min(n, start + self.chunk)
                arr[start:stop] = self._encode(frames[start:stop])
                self.stats.haystack_frames_encoded += stop - start
                arr.flush()
                write_json_atomic(prog, {"done": stop, "shape": list(shape), "dtype": str(self.dtype)})
                if bar is not None:
                    bar.update(stop - start)
            if bar is not None:
                bar.close()
            del arr
        self._haystack = np.load(data, mmap_mode="r")
        return self._haystack

    def images(self, named: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Embeddings [tokens_per_frame, hidden] (CPU) of needle / distractor images by name."""
        out: dict[str, torch.Tensor] = {}
        missing: list[tuple[str, np.ndarray, Path]] = []
        for name, img in named.items():
            if name in self._images:
                out[name] = self._images[name]
                continue
            img = np.ascontiguousarray(img)
            path = self.dir / "images" / f"{sha256_bytes(str(img.shape), img.tobytes())[:32]}.npy"
            if path.exists():
                out[name] = _to_torch(np.load(path), self.dtype)
                self.stats.images_loaded += 1
            else:
                missing.append((name, img, path))
        for start in range(0, len(missing), self.chunk):
            part = missing[start : start + self.chunk]
            emb = self._encode(np.stack([m[1] for m in part]))
            for (name, _, path), e in zip(part, emb):
                with atomic_write(path) as fh:
                    np.save(fh, e)
                out[name] = _to_torch(e, self.dtype)
                self.stats.images_encoded += 1
        self._images.update(out)
        return out

    # ---- gathering one sample ------------------------------------------------------------
    def gather(
        self, refs: Sequence[tuple[str, Any]], haystack: np.ndarray, images: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """[T · tokens_per_frame, hidden] on the CPU for frame refs ``("haystack", i)`` /
        ``("image", name)`` in order (one memmap fancy-index read for the haystack rows)."""
        hay_pos = [k for k, (kind, _) in enumerate(refs) if kind == "haystack"]
        out = torch.empty(len(refs), self.tokens_per_frame, self.hidden, dtype=self.dtype)
        if hay_pos:
            idx = np.fromiter((int(refs[k][1]) for k in hay_pos), dtype=np.int64, count=len(hay_pos))
            out[torch.as_tensor(hay_pos)] = _to_torch(haystack[idx], self.dtype)
        for k, (kind, ref) in enumerate(refs):
            if kind == "image":
                out[k] = images[str(ref)]
            elif kind != "haystack":
                raise ValueError(f"unknown frame ref kind {kind!r}")
        return out.reshape(len(refs) * self.tokens_per_frame, self.hidden)
