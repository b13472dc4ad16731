"""Content hashes of a dataset directory: a number is computed from exactly the bytes the dataset
names, or not at all.

The writer records, in ``dataset.json["integrity"]``, the SHA-256 of every file that shapes a
model input besides the haystack (``samples.parquet`` and each image under ``images/``) and of
dataset.json itself (every entry but ``integrity`` and ``provenance``: the needles, their answers
and options, the configuration). The haystack already carries its content hash,
``haystack.key`` (:func:`frames_hash`: shape, dtype and bytes of the stored frames), which is also
the embedding cache's key. :func:`verify` recomputes all of them; :meth:`Dataset.open
<vniahd.dataset.reader.Dataset.open>` calls it, so ``eval``, ``inspect``, ``export-inputs`` and
the Python API refuse a dataset edited after ``generate``, naming the file.

A dataset written before these hashes existed has no ``integrity`` entry: its haystack is still
checked against ``haystack.key``; the rest cannot be, which :func:`verify` says in one warning.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from vniahd.dataset import layout
from vniahd.errors import VniahdError
from vniahd.files import sha256_file, sha256_json
from vniahd.notices import warn

KEY = "integrity"
CHUNK_FRAMES = 64
#: dataset.json entries the record hash leaves out: the hashes themselves, and provenance (when and
#: with which versions it was written — nothing a model sees).
_UNCOVERED = (KEY, "provenance")
_warned: set[str] = set()


def frames_hash(frames: np.ndarray) -> str:
    """SHA-256 over the frame array's shape, dtype and bytes (the dataset's ``haystack_key``)."""
    h = hashlib.sha256(json.dumps([list(frames.shape), str(frames.dtype)]).encode())
    for start in range(0, frames.shape[0], CHUNK_FRAMES):
        h.update(np.ascontiguousarray(frames[start : start + CHUNK_FRAMES]).tobytes())
    return h.hexdigest()


def _covered_files(root: Path) -> list[str]:
    images = root / layout.IMAGES
    names = sorted(p.name for p in images.iterdir()) if images.is_dir() else []
    return [layout.SAMPLES, *(f"{layout.IMAGES}/{n}" for n in names)]


def meta_hash(meta: dict[str, Any]) -> str:
    """The hash of dataset.json's covered entries."""
    return sha256_json({k: v for k, v in meta.items() if k not in _UNCOVERED})


def record(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``integrity`` entry of a dataset being written in ``root`` (its files already there)."""
    return {
        "algorithm": "sha256",
        "files": {rel: sha256_file(root / rel) for rel in _covered_files(root)},
        "dataset_json": meta_hash(meta),
    }


def _refuse(path: Path, what: str) -> VniahdError:
    return VniahdError(
        f"{what} in dataset {path} differs from what generate recorded: the dataset was changed "
        "after it was generated, and results would not be the dataset's; restore the file or "
        "regenerate the dataset (vniahd generate … --out DIR --overwrite)"
    )


def verify(path: Path, meta: dict[str, Any]) -> None:
    """Refuse (naming the file) when what ``path`` holds differs from what its dataset.json
    records; warn once per directory when the dataset predates the hashes."""
    rec = meta.get(KEY)
    # the cheap checks first: a hand-edited dataset.json is named before seconds of haystack hashing
    if isinstance(rec, dict) and rec.get("dataset_json") != meta_hash(meta):
        raise _refuse(path, f"{layout.CONFIG} (needles, answers or configuration)")
    hay = meta.get("haystack") or {}
    try:
        frames = np.load(path / layout.HAYSTACK, mmap_mode="r")  # a truncated file: ValueError
        stored = hay.get("stored_frames")
        if (stored is not None and frames.shape[0] != int(stored)) or frames_hash(frames) != hay.get("key"):
            raise _refuse(path, layout.HAYSTACK)
    except (ValueError, OSError, TypeError) as exc:
        raise _refuse(path, layout.HAYSTACK) from exc
    if not isinstance(rec, dict):
        if str(path) not in _warned:
            _warned.add(str(path))
            warn(
                f"dataset {path} predates content hashes: only its haystack is checked, not its "
                "samples, images or answers; regenerate it to have them checked"
            )
        return
    files: dict[str, str] = rec.get("files") or {}
    for rel in sorted(files):  # a file generate did not write is read by no sample
        p = path / rel
        if not p.is_file():
            raise _refuse(path, f"{rel} (missing)")
        if sha256_file(p) != files[rel]:
            raise _refuse(path, rel)
