"""Look at a dataset: a text summary, and a contact sheet of one sample (PNG).

The contact sheet is a grid of thumbnails in final frame order. Long samples are subsampled: up to
``max_thumbs`` evenly spaced slots, plus every inserted slot and its two neighbours, which are always
shown. Each thumbnail is labelled with its slot number; needles have a green border (numbered in
the item's order when a V-RULER item has several), distractors red, and a gap in slot numbers is
marked with "…". With temporal groups of several frames a haystack slot shows its group's first
frame and is labelled with the group index (``g12``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from vniahd.dataset.reader import Dataset
from vniahd.files import atomic_write
from vniahd.records import Sample

NEEDLE_COLOUR = (30, 170, 60)
DISTRACTOR_COLOUR = (220, 40, 40)


def summary(ds: Dataset) -> str:
    """Grid, schedule, counts and fingerprints as a few aligned lines."""
    cfg, df = ds.meta["config"], ds.samples
    hay, ns = ds.meta["haystack"], ds.meta["needle_set"]
    fpg = ds.frames_per_group
    nd = df["distractor_slots"].map(len)
    stack = cfg.get("task") == "stack"
    per_cell = df.groupby(["length", "depth", "needle_id"]).size()
    lines = [
        f"dataset      {ds.path}",
        *([f"protocol     {cfg['protocol']}"] if cfg.get("protocol") else []),
        f"fingerprint  {ds.fingerprint}",
        f"samples      {len(df)}  ({df['length'].nunique()} lengths × {df['depth'].nunique()} depths × "
        f"{df['needle_id'].nunique()} {'items' if cfg.get('task') else 'needles'} × "
        f"{int(per_cell.max()) if len(df) else 0} repeats)",
        f"lengths      {', '.join(str(v) for v in sorted(df['length'].unique()))}",
        f"depths       {', '.join(f'{v:g}' for v in sorted(df['depth'].unique()))}",
        *(
            [
                f"task         stack  placement {cfg.get('placement')} ({cfg.get('depth_meaning')})",
                f"  lengths are context tokens; filler budget = length - {cfg.get('visual_tokens')} visual "
                f"tokens, spent on {cfg.get('noise_text')!r} repeated (counted in the scored model's tokens)",
            ]
            if stack
            else [
                f"task         {cfg['task']}  placement {cfg.get('placement')}  needles per sample "
                + ", ".join(
                    f"{k}: {v} samples" for k, v in sorted(Counter(df["needle_slots"].map(len)).items())
                )
            ]
            if cfg.get("task")
            else []
        ),
        *(
            []
            if stack  # no distractors, period or random draws
            else [
                f"schedule     {cfg.get('schedule')}  period {cfg.get('period', {}).get('frames')} "
                f"({cfg.get('period', {}).get('spec')})  seed {cfg.get('seed')}"
                + (
                    f"  max distractors {cfg['max_distractors']}"
                    if cfg.get("max_distractors") is not None
                    else ""
                )
                + (f"  draws {cfg['draws']}" if cfg.get("draws") else ""),
                "distractors  " + ", ".join(f"{k}: {v} samples" for k, v in sorted(Counter(nd).items())),
            ]
        ),
        f"{'frames' if fpg == 1 else 'slots':<12} {int(df['num_frames'].min()) if len(df) else 0}.."
        f"{int(df['num_frames'].max()) if len(df) else 0}"
        + (" per sample" if fpg == 1 else f" temporal groups of {fpg} frames per sample")
        + f", size {ds.frame_size[0]}x{ds.frame_size[1]}, fps {cfg.get('fps')}"
        + (f", {cfg['resize']} resize" if cfg.get("resize") else ""),
        f"haystack     {hay.get('source')}  {hay['num_frames']} frames"
        + (
            ""
            if fpg == 1
            else f" = {hay.get('num_groups')} groups of {fpg}"
            + (f" ({hay['dropped_frames']} dropped)" if hay.get("dropped_frames") else "")
        )
        + f"{' (tiled)' if hay.get('tiled') else ''}, {hay['stored_frames']} stored",
        *(
            [
                f"  clips      {len(hay['clips'])}: "
                + ", ".join(f"{c['item']} {c['groups']}" for c in hay["clips"])
            ]
            if stack
            else [f"  fingerprint {hay.get('fingerprint')}"]
        ),
        f"  content key {hay['key']}",
        f"needles      {ns.get('source')} "
        + (
            f"({len(ns['needles'])} stack items)"
            if stack
            else f"({ns.get('format')}, {len(ns['needles'])} needles)"
        ),
        f"  fingerprint {ns['fingerprint']}",
        "videos       "
        + ("exported (videos/, questions.jsonl)" if ds.meta.get("exported_videos") else "not exported"),
    ]
    return "\n".join(lines)


def _shown_slots(num_frames: int, inserted: list[int], max_thumbs: int) -> list[int]:
    if num_frames <= max_thumbs:
        return list(range(num_frames))
    keep = {int(round(x)) for x in np.linspace(0, num_frames - 1, max_thumbs)}
    for s in inserted:
        keep.update(x for x in (s - 1, s, s + 1) if 0 <= x < num_frames)
    return sorted(keep)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def contact_sheet(
    ds: Dataset,
    sample_id: str,
    out: str | Path,
    *,
    max_thumbs: int = 40,
    columns: int = 8,
    thumb_width: int = 192,
) -> Path:
    """Draw one sample as a PNG contact sheet; returns the path."""
    from PIL import Image, ImageDraw

    from vniahd.needles.prompts import prompt_text

    row = ds.sample(sample_id)
    refs = ds.frame_sequence(row)
    dslots = [int(s) for s in row["distractor_slots"]]
    sample = Sample.from_row(row)
    nslots = sample.needle_slots  # every needle, in the item's order
    slots = _shown_slots(len(refs), [*nslots, *dslots], max_thumbs)
    h, w = ds.frame_size
    tw, th = thumb_width, max(1, round(thumb_width * h / w))
    pad, label_h, border = 6, 18, 4
    needle = ds.needles[row["needle_id"]]
    stack = sample.task == "stack"
    header = [
        f"{sample_id}   length {row['length']}   depth {row['depth']:g}   schedule {row['schedule']}   "
        f"{row['num_frames']} frames   window offset {row['haystack_offset']}",
        (
            f"clip of {row['needle_id']} ({needle.meta.get('clip')}) inside filler text: context "
            f"{row['length']} tokens, filler budget {sample.text_tokens} tokens, "
            f"placement {ds.config.get('placement')}   "
        )
        if stack
        else (f"needle slot {nslots[0]}" if len(nslots) == 1 else f"needle slots {nslots or 'none'}")
        + (f" ({', '.join(sample.needle_ids)})" if sample.task != "niah" else "")
        + ("" if stack else f" (green)   distractor slots {dslots or 'none'} (red)   ")
        + f"showing {len(slots)} of {len(refs)} "
        + (
            "frames"
            if ds.frames_per_group == 1
            else f"slots (groups of {ds.frames_per_group} frames; first shown)"
        ),
        *prompt_text(needle).splitlines(),
        f"answer: {needle.answer}" + (f" ({needle.answer_text})" if needle.options else ""),
    ]
    head_h = 8 + 18 * len(header)
    rows = -(-len(slots) // columns)
    cw, ch = tw + 2 * pad, th + label_h + 2 * pad
    sheet = Image.new("RGB", (columns * cw + pad, head_h + rows * ch + pad), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(14), _font(12)
    for i, text in enumerate(header):
        draw.text((pad, 4 + 18 * i), text, fill=(20, 20, 20), font=font)
    hay = ds.haystack_groups()
    tag_prefix = "h" if ds.frames_per_group == 1 else "g"
    prev = None
    for k, slot in enumerate(slots):
        kind, ref = refs[slot]
        arr = np.asarray(hay[ref][0]) if kind == "haystack" else ds.image(ref)
        thumb = Image.fromarray(arr).resize((tw, th), Image.Resampling.BILINEAR)
        x = pad + (k % columns) * cw
        y = head_h + (k // columns) * ch
        colour = NEEDLE_COLOUR if slot in nslots else DISTRACTOR_COLOUR if slot in dslots else None
        if colour is not None:
            draw.rectangle((x - border, y - border, x + tw + border - 1, y + th + border - 1), fill=colour)
        sheet.paste(thumb, (x, y))
        gap = "… " if prev is not None and slot != prev + 1 else ""
        tag = (
            (" NEEDLE" if len(nslots) == 1 else f" NEEDLE {nslots.index(slot) + 1}")
            if slot in nslots
            else " DISTRACTOR"
            if slot in dslots
            else f" ({tag_prefix}{ref})"
        )
        draw.text((x, y + th + 4), f"{gap}#{slot}{tag}", fill=colour or (60, 60, 60), font=small)
        prev = slot
    out = Path(out)
    with atomic_write(out) as fh:
        sheet.save(fh, format="PNG")
    return out
