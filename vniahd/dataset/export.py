"""``--export-videos``: every sample as an H.264 mp4 plus ``questions.jsonl``, so that any model
(API models included) can be scored on exactly the same frames.

With temporal groups of F frames (``frames_per_group`` > 1) a video shows each haystack group's F
frames and each inserted image F times (it fills its group); slots in questions.jsonl count
groups, and each line then also carries ``frames_per_group`` and ``video_frames``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vniahd.dataset import layout
from vniahd.dataset.reader import frame_refs, needle_from_record
from vniahd.files import atomic_write
from vniahd.needles.prompts import prompt_text
from vniahd.plan.planner import Sample

EXPORT_PRESET = "veryfast"


def export_videos(
    out: Path, meta: dict, samples: Sequence[Sample], stored: np.ndarray, *, fps: float, progress: bool = True
) -> None:
    from PIL import Image
    from tqdm import tqdm

    from vniahd.media import write_mp4

    images_dir = out / layout.IMAGES
    needles = {r["id"]: needle_from_record(r, images_dir) for r in meta["needle_set"]["needles"]}
    fpg = int(meta["haystack"].get("frames_per_group", 1))
    total = int(meta["haystack"].get("num_groups", meta["haystack"]["num_frames"]))
    cache: dict[str, np.ndarray] = {}

    def image(name: str) -> np.ndarray:
        if name not in cache:
            with Image.open(images_dir / name) as im:
                cache[name] = np.asarray(im.convert("RGB"))
        return cache[name]

    lines = []
    for s in tqdm(
        samples,
        desc="exporting videos",
        unit="video",
        leave=False,
        file=sys.stderr,
        disable=None if progress else True,
    ):
        refs = frame_refs(s.num_frames, s.inserted_images, s.haystack_offset, total)
        rel = f"{layout.VIDEOS}/{s.sample_id}.mp4"
        # veryfast: ~4x quicker than x264 "medium" at crf 18, still visually near-lossless
        write_mp4(
            (stored[r * fpg + j] if k == "haystack" else image(r) for k, r in refs for j in range(fpg)),
            out / rel,
            fps,
            preset=EXPORT_PRESET,
        )
        n = needles[s.needle_id]
        grouping = {"frames_per_group": fpg, "video_frames": s.num_frames * fpg} if fpg != 1 else {}
        lines.append(
            json.dumps(
                {
                    **grouping,
                    "sample_id": s.sample_id,
                    "video": rel,
                    "question": prompt_text(n),
                    "options": list(n.options) if n.options is not None else None,
                    "answer": n.answer,
                    "answer_text": n.answer_text,
                    "needle_slot": s.needle_slot,
                    "distractor_slots": list(s.distractor_slots),
                    "num_frames": s.num_frames,
                    "fps": fps,
                },
                sort_keys=True,
            )
        )
    with atomic_write(out / layout.QUESTIONS, "w") as fh:
        fh.write("\n".join(lines) + ("\n" if lines else ""))
