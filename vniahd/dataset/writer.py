"""Write a dataset directory (layout in :mod:`vniahd.dataset.layout`, contract in
docs/architecture.md): everything the evaluator needs, nothing else required.

- ``haystack.npy``: the sampled, *untiled* haystack frames the samples read. When no sample's
  window wraps around (``offset + length ≤ M`` everywhere) only the first ``max(offset + length)``
  frames are kept, so a long movie is not copied whole; otherwise all ``M`` frames.
- ``images/``: each needle and distractor image resized to the frame size (antialiased bicubic,
  like the haystack frames) and saved as PNG, under the names the plan assigned.
- ``samples.parquet``: the plan's rows, columns in :data:`vniahd.plan.COLUMNS` order.
- ``dataset.json``: configuration, haystack and needle-set fingerprints, the needles themselves,
  provenance; written last, so its presence means the directory is complete.

Every file is written atomically. The dataset fingerprint hashes the configuration (less the input
paths), the haystack content hash, the needle-set fingerprint and the sample rows (not the parquet bytes, which carry
the pyarrow version).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vniahd.dataset import layout
from vniahd.errors import VniahdError
from vniahd.files import atomic_path, atomic_write, sha256_json, write_json_atomic
from vniahd.needles.schema import Needle, NeedleSet
from vniahd.plan.planner import COLUMNS, Sample, distractor_image_name, needle_image_name

CHUNK_FRAMES = 64


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None if enabled else True,
                file=sys.stderr)


def frames_hash(frames: np.ndarray, progress: bool = False) -> str:
    """SHA-256 over the frame array's shape and bytes (the dataset's ``haystack_key``)."""
    h = hashlib.sha256(json.dumps([list(frames.shape), str(frames.dtype)]).encode())
    for start in range(0, frames.shape[0], CHUNK_FRAMES):
        h.update(np.ascontiguousarray(frames[start:start + CHUNK_FRAMES]).tobytes())
    return h.hexdigest()


def stored_frame_count(samples: Sequence[Sample], total: int) -> int:
    """How many leading haystack frames the samples read (all of them if any window wraps)."""
    if not samples:
        return 0
    ends = [s.haystack_offset + s.length for s in samples]
    return total if max(ends) > total else max(ends)


def load_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An image file as uint8 RGB at ``size`` (H, W), antialiased bicubic like the frames."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise VniahdError(f"cannot read image {path}: {exc}; use a PNG or JPEG file") from None


def _save_png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_write(path) as fh:
        Image.fromarray(arr).save(fh, format="PNG")


def samples_table(samples: Sequence[Sample]):
    """A pyarrow table with a fixed schema (so identical plans give identical parquet bytes)."""
    import pyarrow as pa

    schema = pa.schema([
        ("sample_id", pa.string()), ("length", pa.int64()), ("depth", pa.float64()),
        ("needle_id", pa.string()), ("repeat", pa.int64()), ("haystack_offset", pa.int64()),
        ("needle_slot", pa.int64()), ("distractor_slots", pa.list_(pa.int64())),
        ("needle_image", pa.string()), ("distractor_images", pa.list_(pa.string())),
        ("num_frames", pa.int64()), ("schedule", pa.string()),
    ])
    assert tuple(schema.names) == COLUMNS
    return pa.Table.from_pylist([s.to_row() for s in samples], schema=schema)


def needle_record(n: Needle) -> dict[str, Any]:
    """How a needle is stored in dataset.json (images by their dataset names)."""
    rec = {"id": n.id, "image": needle_image_name(n.id), "question": n.question, "answer": n.answer,
           "options": list(n.options) if n.options is not None else None,
           "distractors": [distractor_image_name(n.id, k) for k in range(len(n.distractors))],
           "prompt": n.prompt, "meta": dict(n.meta)}
    return rec


#: Config entries that say *where* the inputs were found: recorded, but not part of the identity
#: (their content is, through the haystack key and the needle-set fingerprint), so the same
#: dataset regenerated from a moved or re-cached haystack keeps its fingerprint.
LOCATION_KEYS = ("haystack_spec", "needles_spec", "distractor_needles_spec")


def dataset_fingerprint(config: dict, haystack_key: str, needle_fingerprint: str,
                        samples: Sequence[Sample]) -> str:
    identity = {k: v for k, v in config.items() if k not in LOCATION_KEYS}
    return sha256_json({"config": identity, "haystack_key": haystack_key, "needles": needle_fingerprint,
                        "samples": sha256_json([s.to_row() for s in samples])})


def _prepare_dir(out: Path, fingerprint: str, overwrite: bool) -> None:
    """Refuse to mix datasets: a non-empty ``out`` must be this same dataset, or --overwrite."""
    if out.exists() and not out.is_dir():
        raise VniahdError(f"--out {out} is a file; give a directory path")
    if not out.exists() or not any(out.iterdir()):
        return
    if not layout.is_dataset_dir(out):
        raise VniahdError(f"--out {out} is not empty and holds no vniahd dataset; choose another --out "
                          "(an empty or new directory)")
    try:
        old = json.loads((out / layout.CONFIG).read_text()).get("fingerprint")
    except (OSError, ValueError):
        old = None
    if old != fingerprint and not overwrite:
        raise VniahdError(f"--out {out} already holds a different dataset; pass --overwrite to replace it "
                          "or choose another --out")
    # Remove the completeness marker first: an interrupted rewrite then reads as "no dataset".
    (out / layout.CONFIG).unlink()
    for name in layout.OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def write_dataset(out_dir: str | Path, *, haystack_frames: np.ndarray, haystack_meta: dict,
                  needle_set: NeedleSet, samples: Sequence[Sample], config: dict,
                  overwrite: bool = False, export_videos: bool = False, progress: bool = True):
    """Write the dataset directory and return it opened (:class:`vniahd.dataset.Dataset`).

    ``haystack_frames`` is the untiled sampled haystack, uint8 [M, H, W, 3] (an array or memmap);
    ``haystack_meta`` describes it (fingerprint, source, fps, …; recorded as given). ``config`` is
    the generation configuration (grid, schedule, period, seed, repeats, …), recorded verbatim and
    hashed into the fingerprint.
    """
    from vniahd.dataset.reader import Dataset

    frames = haystack_frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VniahdError(f"haystack frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    total = int(frames.shape[0])
    size = (int(frames.shape[1]), int(frames.shape[2]))
    known = set(needle_set.ids)
    for s in samples:
        if s.needle_id not in known:
            raise VniahdError(f"sample {s.sample_id} uses needle {s.needle_id!r}, not in {needle_set.source}")
    k = stored_frame_count(samples, total)
    stored = frames[:k]
    hkey = frames_hash(stored)
    haystack = {**haystack_meta, "num_frames": total, "stored_frames": k, "frame_size": list(size),
                "tiled": any(s.length > total for s in samples), "key": hkey}
    needles_info = {"fingerprint": needle_set.fingerprint, "source": needle_set.source,
                    "format": needle_set.format, "name": needle_set.name,
                    "needles": [needle_record(n) for n in needle_set]}
    fingerprint = dataset_fingerprint(config, hkey, needle_set.fingerprint, samples)
    out = Path(out_dir)
    _prepare_dir(out, fingerprint, overwrite)
    out.mkdir(parents=True, exist_ok=True)

    with atomic_path(out / layout.HAYSTACK) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=stored.shape)
        with _progress(k, "writing haystack frames", "frame", progress) as bar:
            for start in range(0, k, CHUNK_FRAMES):
                chunk = stored[start:start + CHUNK_FRAMES]
                mm[start:start + len(chunk)] = chunk
                bar.update(len(chunk))
        mm.flush()
        del mm

    with _progress(sum(1 + len(n.distractors) for n in needle_set), "writing images", "image", progress) as bar:
        for n in needle_set:
            _save_png(load_rgb(n.image, size), out / layout.IMAGES / needle_image_name(n.id))
            bar.update()
            for i, d in enumerate(n.distractors):
                _save_png(load_rgb(d, size), out / layout.IMAGES / distractor_image_name(n.id, i))
                bar.update()

    import pyarrow.parquet as pq

    with atomic_path(out / layout.SAMPLES) as tmp:
        pq.write_table(samples_table(samples), tmp)

    from vniahd.provenance import provenance

    meta = {"format": layout.FORMAT, "format_version": layout.FORMAT_VERSION, "fingerprint": fingerprint,
            "config": config, "haystack": haystack, "needle_set": needles_info,
            "num_samples": len(samples), "frame_size": list(size), "exported_videos": export_videos,
            "provenance": provenance()}
    if export_videos:
        # Written before dataset.json so a complete dataset always has its requested exports.
        from vniahd.dataset.export import export_videos as _export

        _export(out, meta, samples, stored, fps=float(config.get("fps") or 1.0), progress=progress)
    write_json_atomic(out / layout.CONFIG, meta)
    return Dataset.open(out)
