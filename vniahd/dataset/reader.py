"""Open a dataset directory: :meth:`Dataset.open` (contract in docs/architecture.md)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vniahd.dataset import layout
from vniahd.errors import VniahdError
from vniahd.needles.schema import Needle
from vniahd.records import Sample, haystack_window, inserted_images

FrameRef = tuple[str, Any]  # ("haystack", int index) or ("image", str name)


def frame_refs(
    num_frames: int,
    inserted: Mapping[int, str],
    haystack_offset: int,
    haystack_len: int,
) -> list[FrameRef]:
    """The final frame order of one sample.

    ``inserted`` maps slots to the image they show (needles and distractors,
    :attr:`vniahd.records.Sample.inserted_images`); the remaining slots, in order, are window frames
    ``i = 0, 1, …`` and read haystack frame ``(offset + i) mod M`` (M = untiled haystack length, so
    a short haystack is tiled end to end as in the reference).
    """
    refs: list[FrameRef] = []
    i = 0
    for slot in range(int(num_frames)):
        name = inserted.get(slot)
        if name is not None:
            refs.append(("image", name))
        else:
            refs.append(("haystack", (int(haystack_offset) + i) % int(haystack_len)))
            i += 1
    return refs


def needle_from_record(rec: Mapping[str, Any], images: Path) -> Needle:
    opts = rec.get("options")
    return Needle(
        id=rec["id"],
        # a task item may show no picture (counting's bare haystack): it has none of its own
        image=images / rec["image"] if rec.get("image") else images,
        question=rec["question"],
        answer=rec["answer"],
        options=tuple(opts) if opts is not None else None,
        distractors=tuple(images / d for d in rec.get("distractors", [])),
        prompt=rec.get("prompt"),
        meta=rec.get("meta") or {},
    )


class Dataset:
    """A generated dataset directory, read-only."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.meta = meta

    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> Dataset:
        """Open ``path``; ``verify`` (default): refuse it when a file differs from the hashes its
        dataset.json records (:mod:`vniahd.dataset.integrity`; ``eval``, ``inspect`` and the API
        all open through here)."""
        p = Path(path)
        how = (
            "make one with: vniahd generate --haystack VIDEO --needles NEEDLES.json --out DIR "
            "(or --haystack demo --needles demo)"
        )
        if not p.is_dir():
            raise VniahdError(f"dataset directory {p} does not exist; {how}")
        if not layout.is_dataset_dir(p):
            raise VniahdError(f"{p} is not a vniahd dataset (no {layout.CONFIG}); {how}")
        try:
            meta = json.loads((p / layout.CONFIG).read_text())
        except (OSError, ValueError) as exc:
            raise VniahdError(f"{p / layout.CONFIG} is unreadable ({exc}); regenerate the dataset") from None
        if meta.get("format") != layout.FORMAT:
            raise VniahdError(f"{p} is not a vniahd dataset ({layout.CONFIG} has no format tag); {how}")
        if meta.get("format_version", 0) > layout.FORMAT_VERSION:
            raise VniahdError(
                f"{p} was written by a newer vniahd (format {meta['format_version']}); upgrade vniahd"
            )
        for name in (layout.SAMPLES, layout.HAYSTACK):
            if not (p / name).is_file():
                raise VniahdError(f"{p} is incomplete: {name} is missing; regenerate it with vniahd generate")
        if verify:
            from vniahd.dataset import integrity

            integrity.verify(p, meta)
        return cls(p, meta)

    # --- contract ---------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """Everything in dataset.json: ``config`` (generation parameters), ``haystack``,
        ``needle_set``, ``fingerprint``, ``provenance``… The generation parameters are also merged
        at the top level for convenience (``ds.config["schedule"]``)."""
        return {**self.meta["config"], **self.meta}

    @functools.cached_property
    def samples(self):
        """One row per sample (pandas DataFrame); list columns hold Python lists."""
        import pandas as pd
        import pyarrow.parquet as pq

        table = pq.read_table(self.path / layout.SAMPLES)
        df = pd.DataFrame({c: table.column(c).to_pylist() for c in table.column_names})
        _check_slots(self.path / layout.SAMPLES, df)
        return df

    def sample_records(self) -> list[Sample]:
        """The samples as :class:`vniahd.records.Sample` (what the planner made, round-tripped
        through samples.parquet)."""
        return [Sample.from_row(r) for r in self.samples.to_dict("records")]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def frame_size(self) -> tuple[int, int]:
        h, w = self.meta["frame_size"]
        return int(h), int(w)

    @property
    def haystack_key(self) -> str:
        """SHA-256 of the stored haystack frames (shape + bytes): a cache key for frame embeddings."""
        return self.meta["haystack"]["key"]

    @property
    def frames_per_group(self) -> int:
        """Sampled frames per temporal group (slot): 1, or 2 as in the released V-NIAH-D scripts
        (``--frames-per-group``; absent from dataset.json = 1). Every count in the samples
        (lengths, slots, offsets, ``num_frames``) is in groups."""
        return int(self.meta["config"].get("frames_per_group", 1))

    @property
    def haystack_len(self) -> int:
        """The untiled haystack length that window indices wrap at, in groups: M frames make
        ``M // frames_per_group`` groups (M itself for one frame per group)."""
        hay = self.meta["haystack"]
        return int(hay.get("num_groups", hay["num_frames"]))

    def haystack_frames(self) -> np.ndarray:
        """uint8 [K, H, W, 3] read-only memmap of the untiled haystack's sampled frames (its first
        K frames when no sample reads further). With one frame per group every index
        :meth:`frame_sequence` yields is < K; otherwise use :meth:`haystack_groups`."""
        return np.load(self.path / layout.HAYSTACK, mmap_mode="r")

    def haystack_groups(self) -> np.ndarray:
        """uint8 [G, F, H, W, 3] read-only view of the stored haystack as temporal groups of
        F = :attr:`frames_per_group` consecutive frames (group k = frames F·k … F·k + F − 1);
        every haystack index :meth:`frame_sequence` yields is < G. For F = 1: [M, 1, H, W, 3], a
        view of :meth:`haystack_frames`."""
        frames = self.haystack_frames()
        fpg = self.frames_per_group
        groups = frames.shape[0] // fpg
        return frames[: groups * fpg].reshape(groups, fpg, *frames.shape[1:])

    @functools.cached_property
    def needles(self) -> dict[str, Needle]:
        images = self.path / layout.IMAGES
        return {r["id"]: needle_from_record(r, images) for r in self.meta["needle_set"]["needles"]}

    @functools.lru_cache(maxsize=64)  # noqa: B019  (a Dataset lives as long as its run; the cache is the point)
    def image(self, name: str) -> np.ndarray:
        """An inserted image (needle or distractor) as uint8 [H, W, 3] at frame size."""
        from PIL import Image

        p = self.path / layout.IMAGES / name
        if not p.is_file():
            raise VniahdError(
                f"image {name!r} is not in {self.path / layout.IMAGES}; the dataset is "
                "incomplete, regenerate it"
            )
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"))
        arr.setflags(write=False)
        return arr

    def frame_sequence(self, row: Mapping[str, Any] | Any) -> list[FrameRef]:
        """Slot refs in final order for a sample row (a DataFrame row, dict or sample_id):
        ``("haystack", k)`` reads haystack group k (a frame when :attr:`frames_per_group` is 1),
        ``("image", name)`` an inserted image, which fills its group alone."""
        if isinstance(row, str):
            row = self.sample(row)
        return frame_refs(row["num_frames"], inserted_images(row), row["haystack_offset"], self.haystack_len)

    # --- helpers ----------------------------------------------------------------------------------
    def sample(self, sample_id: str):
        """The row of ``sample_id`` (a pandas Series)."""
        df = self.samples
        hit = df[df["sample_id"] == sample_id]
        if hit.empty:
            ids = df["sample_id"].tolist()
            raise VniahdError(
                f"no sample {sample_id!r} in {self.path}; `vniahd inspect {self.path} --list` "
                f"lists all {len(ids)} sample ids (e.g. {', '.join(ids[:3])})"
            )
        return hit.iloc[0]

    def groups(self, row: Mapping[str, Any] | Any) -> np.ndarray:
        """The sample's slots, uint8 [num_frames, F, H, W, 3] (F = :attr:`frames_per_group`; an
        inserted image is repeated F times; materialised, for export and checks)."""
        hay = self.haystack_groups()
        refs = self.frame_sequence(row)
        out = np.empty((len(refs), self.frames_per_group, *self.frame_size, 3), dtype=np.uint8)
        for i, (kind, ref) in enumerate(refs):
            out[i] = hay[ref] if kind == "haystack" else self.image(ref)
        return out

    def frames(self, row: Mapping[str, Any] | Any) -> np.ndarray:
        """The sample's frames in order, uint8 [num_frames · F, H, W, 3] (F =
        :attr:`frames_per_group`; [num_frames, H, W, 3] for one frame per group)."""
        g = self.groups(row)
        return g.reshape(-1, *g.shape[2:])

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, {self.meta['num_samples']} samples)"


def _check_slots(path: Path, df: Any) -> None:
    """Every sample's frame count is its window plus its inserted frames, and every inserted slot
    lies inside it (an edited samples.parquet would otherwise fail deep in the evaluator)."""
    if not {"num_frames", "length", "needle_slot"} <= set(df.columns):
        return
    for row in df.to_dict("records"):
        slots = list(inserted_images(row))
        n = int(row["num_frames"])
        if (
            n != haystack_window(row) + len(slots)
            or not all(0 <= s < n for s in slots)
            or len(set(slots)) < len(slots)
        ):
            raise VniahdError(
                f"{path}: sample {row.get('sample_id')!r} has num_frames {n}, length {row['length']} "
                f"and inserted slots {slots}, which do not fit together (num_frames = length + "
                "inserted frames, slots inside it); the file was edited — regenerate the dataset "
                "with 'vniahd generate'"
            )
