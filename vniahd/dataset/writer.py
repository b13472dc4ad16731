"""Write a dataset directory (layout in :mod:`vniahd.dataset.layout`, contract in
docs/architecture.md): everything the evaluator needs, nothing else required.

- ``haystack.npy``: the sampled, *untiled* haystack frames the samples read. When no sample's
  window wraps around (``offset + length ≤ M`` everywhere) only the first ``max(offset + length)``
  frames are kept, so a long movie is not copied whole; otherwise all ``M`` frames. With temporal
  groups of ``frames_per_group`` = F frames, slots, lengths and offsets count groups: group ``k`` is
  stored frames ``F·k … F·k + F − 1``, the haystack has ``M // F`` groups (the frames left over are
  dropped, ``haystack.dropped_frames``), and whole groups are stored.
- ``images/``: each needle and distractor image resized to the frame size (antialiased bicubic,
  like the haystack frames) and saved as PNG, under the names the plan assigned.
- ``samples.parquet``: the plan's rows, columns in :data:`vniahd.plan.COLUMNS` order.
- ``dataset.json``: configuration, haystack and needle-set fingerprints, the needles themselves,
  provenance; written last, so its presence means the directory is complete.

The whole directory is built in a hidden sibling (``.<name>.partial-<pid>-…``) and moved into place
only when complete, so a run that fails or is killed midway leaves ``out`` as it was (absent, empty,
or the previous dataset) and the same command can simply be run again. Over an existing dataset
the old entries are moved aside (``dataset.json`` first), the new ones moved in (``dataset.json``
last), and the old ones deleted; a symlinked entry (say ``images/``) is removed as a link, never
followed. Staging directories left by a killed run are swept by the next one.

The dataset fingerprint hashes the configuration (less the input paths and the protocol name,
which only says how the options were chosen), the haystack content hash, the needle-set
fingerprint and the sample rows (not the parquet bytes, which carry the pyarrow version). Options
left at their defaults are not written into the configuration (frames per group, draw stream,
resize method), so datasets made before those options existed keep their fingerprints. Needle
images with transparency are composited on a background colour, which then joins the
configuration (``needle_background``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vniahd.dataset import integrity, layout
from vniahd.dataset.export import export_videos as _export
from vniahd.dataset.install import dataset_lock, install, prepare_dir, staging
from vniahd.dataset.integrity import frames_hash
from vniahd.dataset.reader import Dataset
from vniahd.errors import VniahdError
from vniahd.files import atomic_path, atomic_write, reserve, sha256_file, sha256_json, write_json_atomic
from vniahd.needles.images import (
    DEFAULT_BACKGROUND,
    colour_hex,
    has_alpha,
    open_image,
    parse_colour,
    read_rgb,
)
from vniahd.needles.schema import Needle, NeedleSet, TaskItemSet
from vniahd.notices import warn
from vniahd.plan.planner import COLUMNS, Sample, distractor_image_name, needle_image_name
from vniahd.provenance import provenance

CHUNK_FRAMES = 64


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, leave=False, disable=None if enabled else True, file=sys.stderr
    )


def stored_frame_count(samples: Sequence[Sample], total: int) -> int:
    """How many leading haystack slots (frames, or groups) the samples read (all ``total`` if any
    window wraps)."""
    if not samples:
        return 0
    ends = [s.haystack_offset + s.window for s in samples]
    return total if max(ends) > total else max(ends)


def _save_png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_write(path) as fh:
        Image.fromarray(arr).save(fh, format="PNG")


def samples_table(samples: Sequence[Sample]):
    """A pyarrow table with a fixed schema (so identical plans give identical parquet bytes)."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("sample_id", pa.string()),
            ("length", pa.int64()),
            ("depth", pa.float64()),
            ("needle_id", pa.string()),
            ("repeat", pa.int64()),
            ("haystack_offset", pa.int64()),
            ("needle_slot", pa.int64()),
            ("distractor_slots", pa.list_(pa.int64())),
            ("needle_image", pa.string()),
            ("distractor_images", pa.list_(pa.string())),
            ("num_frames", pa.int64()),
            ("schedule", pa.string()),
            ("task", pa.string()),
            ("needle_slots", pa.list_(pa.int64())),
            ("needle_ids", pa.list_(pa.string())),
            ("needle_images", pa.list_(pa.string())),
            ("text_tokens", pa.int64()),
        ]
    )
    assert tuple(schema.names) == COLUMNS
    return pa.Table.from_pylist([s.to_row() for s in samples], schema=schema)


def needle_record(n: Needle) -> dict[str, Any]:
    """How a needle is stored in dataset.json (images by their dataset names)."""
    rec = {
        "id": n.id,
        "image": needle_image_name(n.id),
        "question": n.question,
        "answer": n.answer,
        "options": list(n.options) if n.options is not None else None,
        "distractors": [distractor_image_name(n.id, k) for k in range(len(n.distractors))],
        "prompt": n.prompt,
        "meta": dict(n.meta),
    }
    return rec


#: Config entries that say *where* the inputs were found: recorded, but not part of the identity
#: (their content is, through the haystack key and the needle-set fingerprint), so the same
#: dataset regenerated from a moved or re-cached haystack keeps its fingerprint.
LOCATION_KEYS = ("haystack_spec", "needles_spec", "distractor_needles_spec")
#: Config entries left out of the identity: the locations, and the name of the protocol that chose
#: the options (the options themselves are in the configuration).
NON_IDENTITY_KEYS = (*LOCATION_KEYS, "protocol")


def dataset_fingerprint(
    config: dict, haystack_key: str, needle_fingerprint: str, samples: Sequence[Sample]
) -> str:
    identity = {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}
    return sha256_json(
        {
            "config": identity,
            "haystack_key": haystack_key,
            "needles": needle_fingerprint,
            "samples": sha256_json([s.identity_row() for s in samples]),
        }
    )


def _file_record(source: str | None) -> dict[str, Any]:
    """An input file as its resolved path and SHA-256 (the path as given when it is not a file)."""
    if not source:
        return {"path": None, "sha256": None}
    p = Path(source)
    if p.is_file():
        return {"path": str(p.resolve()), "sha256": sha256_file(p)}
    return {"path": str(source), "sha256": None}


def source_images(needle_set: NeedleSet | TaskItemSet) -> list[tuple[str, Path]]:
    """(dataset image name, source path) of every image the dataset stores: each needle and its
    distractors, or each distinct needle image of a task's items."""
    if isinstance(needle_set, TaskItemSet):
        from vniahd.dataset.tasks import item_images

        return item_images(needle_set)
    out: list[tuple[str, Path]] = []
    for n in needle_set:
        out.append((needle_image_name(n.id), Path(n.image)))
        out += [(distractor_image_name(n.id, k), Path(d)) for k, d in enumerate(n.distractors)]
    return out


def _alpha_images(needle_set: NeedleSet | TaskItemSet) -> list[tuple[str, Path]]:
    """(dataset image name, source path) of every needle/distractor image with transparency."""
    out = []
    for name, path in source_images(needle_set):
        with open_image(path) as im:  # header only: mode and tRNS are known before decoding
            if has_alpha(im):
                out.append((name, path))
    return out


def _needle_records(needle_set: NeedleSet | TaskItemSet) -> list[dict[str, Any]]:
    if isinstance(needle_set, TaskItemSet):
        from vniahd.dataset.tasks import item_record

        return [item_record(it) for it in needle_set]
    return [needle_record(n) for n in needle_set]


def write_dataset(
    out_dir: str | Path,
    *,
    haystack_frames: np.ndarray,
    haystack_meta: dict,
    needle_set: NeedleSet | TaskItemSet,
    samples: Sequence[Sample],
    config: dict,
    overwrite: bool = False,
    export_videos: bool = False,
    progress: bool = True,
    needle_background: str | tuple[int, int, int] = DEFAULT_BACKGROUND,
    frames_per_group: int = 1,
    lock: bool = True,
):
    """Write the dataset directory and return it opened (:class:`vniahd.dataset.Dataset`).

    ``haystack_frames`` is the untiled sampled haystack, uint8 [M, H, W, 3] (an array or memmap);
    ``haystack_meta`` describes it (fingerprint, source, fps, …; recorded as given). ``config`` is
    the generation configuration (grid, schedule, period, seed, repeats, …), recorded verbatim and
    hashed into the fingerprint. ``needle_background`` is the colour transparent needle pixels are
    composited on (recorded, and added to the configuration, only when some image has alpha).
    ``frames_per_group`` F > 1: the samples count temporal groups of F consecutive frames (module
    docstring); recorded in the configuration and the haystack entry.

    The directory is built beside ``out_dir`` and moved into place when complete: on any error
    ``out_dir`` is left as it was. ``lock``: hold ``out_dir``'s lock while writing
    (:func:`vniahd.dataset.install.dataset_lock`; ``False`` when the caller holds it).
    """

    frames = haystack_frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VniahdError(f"haystack frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    total = int(frames.shape[0])
    size = (int(frames.shape[1]), int(frames.shape[2]))
    fpg = int(frames_per_group)
    if fpg < 1:
        raise VniahdError(f"frames_per_group must be at least 1, got {frames_per_group}")
    groups = total // fpg
    if groups < 1:
        raise VniahdError(f"{total} haystack frame(s) make no group of {fpg}; give at least {fpg} frames")
    known = {n.id for n in needle_set}
    for s in samples:
        if s.needle_id not in known:
            raise VniahdError(f"sample {s.sample_id} uses needle {s.needle_id!r}, not in {needle_set.source}")
    background = parse_colour(needle_background)
    alpha = _alpha_images(needle_set)
    config = dict(config)
    if alpha:
        config["needle_background"] = colour_hex(background)
    if fpg != 1:
        config["frames_per_group"] = fpg
    k = stored_frame_count(samples, groups) * fpg
    stored = frames[:k]
    hkey = frames_hash(stored)
    haystack = {
        **haystack_meta,
        "num_frames": total,
        "stored_frames": k,
        "frame_size": list(size),
        "tiled": any(s.window > groups for s in samples),
        "key": hkey,
    }
    if fpg != 1:
        haystack.update(
            {"frames_per_group": fpg, "num_groups": groups, "dropped_frames": total - groups * fpg}
        )
    source = _file_record(needle_set.source)
    needles_info = {
        "fingerprint": needle_set.fingerprint,
        "source": source["path"],
        "source_spec": needle_set.source,
        "source_sha256": source["sha256"],
        "format": getattr(needle_set, "format", "vruler"),
        "name": getattr(needle_set, "name", "") or getattr(needle_set, "task", ""),
        "background": colour_hex(background),
        "composited_on_background": [n for n, _ in alpha],
        "needles": _needle_records(needle_set),
    }
    if isinstance(needle_set, NeedleSet) and needle_set.distractor_source:
        dist = _file_record(needle_set.distractor_source)
        needles_info.update({"distractor_source": dist["path"], "distractor_source_sha256": dist["sha256"]})
    fingerprint = dataset_fingerprint(config, hkey, needle_set.fingerprint, samples)
    out = Path(out_dir)
    with dataset_lock(out) if lock else contextlib.nullcontext():
        target = prepare_dir(out, fingerprint, overwrite)
        if alpha:
            _warn_alpha(alpha, background)
        with staging(target) as tmp:
            try:
                _write_entries(
                    tmp,
                    stored,
                    k,
                    needle_set,
                    size,
                    background,
                    samples,
                    fingerprint,
                    config,
                    haystack,
                    needles_info,
                    export_videos,
                    progress,
                )
            except OSError as exc:  # disk full, permissions: the staging dir goes, out is untouched
                where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
                raise VniahdError(
                    f"could not write the dataset: {exc.strerror or exc}{where}; {out} was left "
                    "as it was; free some space or fix the permissions and run the same command "
                    "again"
                ) from None
            install(tmp, target)
    return Dataset.open(out, verify=False)  # just written from these bytes


def _warn_alpha(alpha: list[tuple[str, Path]], background: tuple[int, int, int]) -> None:
    names = ", ".join(p.name for _, p in alpha[:3]) + (", …" if len(alpha) > 3 else "")
    warn(
        f"{len(alpha)} needle image{'s' if len(alpha) > 1 else ''} ha{'ve' if len(alpha) > 1 else 's'} "
        f"transparency ({names}): composited on {colour_hex(background)}, recorded as needle_background "
        "in dataset.json; pass --needle-background COLOUR to choose another"
    )


def _write_entries(
    tmp: Path,
    stored: np.ndarray,
    k: int,
    needle_set: NeedleSet | TaskItemSet,
    size: tuple[int, int],
    background: tuple[int, int, int],
    samples: Sequence[Sample],
    fingerprint: str,
    config: dict,
    haystack: dict,
    needles_info: dict,
    export_videos: bool,
    progress: bool,
) -> None:
    """Write every dataset entry into the staging directory ``tmp`` (dataset.json last)."""

    with atomic_path(tmp / layout.HAYSTACK) as npy:
        mm = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=stored.shape)
        reserve(npy)  # a full disk: ENOSPC here (reported, staging removed), not SIGBUS below
        with _progress(k, "writing haystack frames", "frame", progress) as bar:
            for start in range(0, k, CHUNK_FRAMES):
                chunk = stored[start : start + CHUNK_FRAMES]
                mm[start : start + len(chunk)] = chunk
                bar.update(len(chunk))
        mm.flush()
        del mm

    def image(path: Path, name: str) -> None:
        arr, facts = read_rgb(path, size, background)
        if facts.oversized:
            warn(f"needle image {path} is {facts.width}×{facts.height}, resized to {size[1]}×{size[0]}")
        _save_png(arr, tmp / layout.IMAGES / name)

    todo = source_images(needle_set)
    with _progress(len(todo), "writing images", "image", progress) as bar:
        for name, path in todo:
            image(path, name)
            bar.update()

    import pyarrow.parquet as pq

    with atomic_path(tmp / layout.SAMPLES) as parquet:
        pq.write_table(samples_table(samples), parquet)

    meta = {
        "format": layout.FORMAT,
        "format_version": layout.format_version(int(config.get("frames_per_group", 1))),
        "fingerprint": fingerprint,
        "config": config,
        "haystack": haystack,
        "needle_set": needles_info,
        "num_samples": len(samples),
        "frame_size": list(size),
        "exported_videos": export_videos,
        "provenance": provenance(),
    }
    if export_videos:
        # Written before dataset.json so a complete dataset always has its requested exports.

        _export(tmp, meta, samples, stored, fps=float(config.get("fps") or 1.0), progress=progress)
    meta[integrity.KEY] = integrity.record(tmp, meta)
    write_json_atomic(tmp / layout.CONFIG, meta)
