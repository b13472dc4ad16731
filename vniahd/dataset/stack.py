"""``vniahd generate --task stack``: each item's clip sampled into frames, one sample per prompt.

The lengthy multimodal stack (:mod:`vniahd.plan.tasks.stack`) has no frame haystack: each prompt
is one item's whole clip inside filler text. The dataset stores the sampled clips end to end as
its haystack (``haystack.clips`` records where each one starts), and a sample reads its item's
clip: ``haystack_offset`` = the clip's first group, ``num_frames`` = its groups, no inserted
frames. ``length`` is the context length in tokens (the released grid's axis) and
``text_tokens`` the filler budget, which the evaluator turns into sentence repeats with the
model's own tokenizer.

Clips are sampled at ``fps`` (2 by default, ``qwen_vl_utils``' rate in the release) at the
dataset's frame size; a clip with more than ``max_clip_frames`` sampled frames keeps that many,
evenly spread (768 is ``qwen_vl_utils``' cap). The release instead sizes each clip's frames from a
pixel budget; docs/reference-protocol.md lists that and the other differences.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vniahd.errors import VniahdError

if TYPE_CHECKING:
    from vniahd.dataset import Dataset
    from vniahd.needles.schema import TaskItemSet
    from vniahd.records import Sample

__all__ = ["DEFAULT_MAX_CLIP_FRAMES", "STACK_FPS", "generate_stack", "load_stack_needles", "stack_samples"]

STACK_FPS = 2.0  # qwen_vl_utils' FPS, which the released script leaves at its default
DEFAULT_MAX_CLIP_FRAMES = 768  # qwen_vl_utils' FPS_MAX_FRAMES


def load_stack_needles(needles: str | Path, clips: str | Path | None, source: str | Path) -> TaskItemSet:
    """The stack items (``needles="demo"``: the demo clips cut from ``source``, a video or
    ``"demo"`` for the demo haystack)."""
    from vniahd.needles import load_task_items

    if str(needles) == "demo":
        from vniahd.media import build_demo_haystack
        from vniahd.needles.stack_demo import stack_demo_path

        if clips is not None:
            raise VniahdError(
                "--clips names the folder of your own items' clips; drop it with --needles demo"
            )
        video = build_demo_haystack() if str(source) == "demo" else Path(source)
        if not video.is_file():
            raise VniahdError(
                f"video file not found: {video}; --needles demo cuts the stack's clips from --haystack "
                "(a video file, or 'demo')"
            )
        return load_task_items(stack_demo_path(video), "stack")
    return load_task_items(Path(needles), "stack", clips)


def _sample_clip(
    path: Path, *, fps: float, size: tuple[int, int], resize: str, max_frames: int, fpg: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from vniahd.media import load_haystack

    hay = load_haystack(path, fps=fps, size=size, progress=False, resize=resize)
    frames = np.asarray(hay.frames)
    kept = list(range(len(frames)))
    if len(frames) > max_frames:
        kept = [int(i) for i in np.linspace(0, len(frames) - 1, max_frames).round()]
    groups = len(kept) // fpg
    if groups < 1:
        raise VniahdError(
            f"clip {path.name} gives {len(frames)} frame(s) at --fps {fps:g}, fewer than one group of "
            f"{fpg}; use a higher --fps"
        )
    kept = kept[: groups * fpg]
    record = {
        "source": str(path),
        "fingerprint": hay.fingerprint,
        "sampled_frames": len(frames),
        "kept_frames": kept if len(kept) != len(frames) else f"all {len(kept)}",
        "groups": groups,
        "sampling": dict(hay.sampling),
        "warnings": list(hay.notes),
    }
    return frames[kept], record


def stack_samples(trials: list[Any], offsets: dict[str, tuple[int, int]]) -> list[Sample]:
    """Samples of stack trials; ``offsets[item] = (first group, groups)`` of the item's clip."""
    from vniahd.records import Sample

    return [
        Sample(
            sample_id=t.sample_id,
            length=t.context_tokens,
            depth=float(t.depth),
            needle_id=t.item_id,
            repeat=0,
            haystack_offset=offsets[t.item_id][0],
            needle_slot=-1,
            num_frames=offsets[t.item_id][1],
            schedule="none",
            task="stack",
            text_tokens=t.text_tokens,
        )
        for t in trials
    ]


def _write_stack(
    *,
    source: str | Path,
    needles: str | Path,
    out: str | Path,
    clips: str | Path | None,
    lengths: str,
    depths: str,
    placement: str,
    visual_tokens: int,
    max_clip_frames: int,
    fps: float,
    size: tuple[int, int],
    frames_per_group: int,
    resize: str,
    protocol: str | None,
    overwrite: bool,
    export_videos: bool,
    progress: bool,
) -> Dataset:
    """Write a stack dataset (module docstring) with every option resolved."""
    from vniahd.dataset.install import check_dataset_out, dataset_lock
    from vniahd.dataset.writer import write_dataset
    from vniahd.notices import warn
    from vniahd.plan import parse_depths, parse_lengths
    from vniahd.plan.tasks import NOISE_TEXT, plan_task

    if max_clip_frames < 1:
        raise VniahdError(f"--max-clip-frames must be at least 1, got {max_clip_frames}")
    length_list, depth_list = parse_lengths(lengths), parse_depths(depths)
    check_dataset_out(out)
    with dataset_lock(out):
        items = load_stack_needles(needles, clips, source)
        trials = plan_task(
            "stack",
            items.specs(),
            length_list,
            depth_list,
            placement=placement,
            visual_tokens=visual_tokens,
        )
        parts, records, offsets = [], [], {}
        start = 0
        for it in items:
            assert it.video is not None
            frames, rec = _sample_clip(
                it.video, fps=fps, size=size, resize=resize, max_frames=max_clip_frames, fpg=frames_per_group
            )
            for note in rec["warnings"]:
                warn(f"clip {it.video.name}: {note}")
            offsets[it.id] = (start, rec["groups"])
            records.append({"item": it.id, "source_id": it.source_id, "first_group": start, **rec})
            parts.append(frames)
            start += rec["groups"]
        config: dict[str, Any] = {
            "task": "stack",
            "placement": placement,
            "lengths": length_list,
            "lengths_spec": str(lengths),
            "lengths_unit": "tokens (context length: filler text + clip + question)",
            "depths": [str(d) for d in depth_list],
            "depths_spec": str(depths),
            "depth_meaning": (
                "fraction of the filler before the clip (0 = clip at the start)"
                if placement == "depth"
                else "released rule: fraction of the filler after the clip (0 = clip before the question)"
            ),
            "schedule": "none",
            "visual_tokens": int(visual_tokens),
            "noise_text": NOISE_TEXT,
            "max_clip_frames": int(max_clip_frames),
            "fps": float(fps),
            "size": list(size),
            "haystack_spec": str(source),
            "needles_spec": str(needles),
            "clips_spec": str(clips) if clips is not None else None,
        }
        if resize != "pil":
            config["resize"] = resize
        if protocol is not None:
            config["protocol"] = protocol
        meta = {"source": "the items' clips, sampled and stored end to end", "clips": records, "fps": fps}
        return write_dataset(
            out,
            haystack_frames=np.concatenate(parts),
            haystack_meta=meta,
            needle_set=items,
            samples=stack_samples(trials, offsets),
            config=config,
            overwrite=overwrite,
            export_videos=export_videos,
            progress=progress,
            frames_per_group=frames_per_group,
            lock=False,
        )


def generate_stack(
    *,
    haystack: str | Path | None,
    needles: str | Path,
    unused: dict[str, object],
    lengths: str | None,
    depths: str | None,
    placement: str | None,
    visual_tokens: int | None,
    max_clip_frames: int | None,
    fps: float | None,
    size: str | tuple[int, int] | None,
    frames_per_group: int | None,
    resize: str | None,
    protocol: str | None,
    **rest: Any,
) -> Dataset:
    """``vniahd.generate(task="stack")``: refuses the options that mean nothing here, resolves the
    rest (the released grid, 2 fps, 32768 visual tokens, 768 frames per clip unless given; size,
    frames per group and resize from ``protocol`` or the defaults; the depth placement, or the
    released one under ``protocol``) and writes the dataset."""
    import math

    from vniahd.dataset.protocols import resolve_options
    from vniahd.dataset.tasks import released_depths_spec, released_lengths_spec
    from vniahd.media import parse_size
    from vniahd.media.sampling import check_resize
    from vniahd.plan.tasks import RELEASED_VISUAL_TOKENS, STACK_PLACEMENTS

    given = [k for k, v in unused.items() if v is not None]
    if given:
        raise VniahdError(
            f"{', '.join(given)}: --task stack places one clip in filler text (no haystack frames, "
            "distractors or random draws); drop it"
        )
    if str(needles) != "demo" and haystack is not None:
        raise VniahdError(
            "--task stack has no haystack: its clips come from the items (--clips DIR); drop --haystack"
        )
    opts = resolve_options(protocol, fps=fps, size=size, frames_per_group=frames_per_group, resize=resize)
    frame_size = parse_size(opts["size"])
    if frame_size is None:
        raise VniahdError("--size is needed: the frame size HxW, e.g. 252x448")
    rate = float(fps) if fps is not None else STACK_FPS
    if not math.isfinite(rate) or rate <= 0:
        raise VniahdError(f"--fps must be positive, got {fps}; e.g. --fps 2")
    check_resize(opts["resize"])
    if rest.get("export_videos"):
        raise VniahdError(
            "--export-videos writes each sample's frames as a video; a stack sample is its item's clip "
            "(your input file) inside filler text counted in the scored model's tokens, so there is "
            "nothing new to export; drop --export-videos"
        )
    # --protocol vruler reproduces the released inputs, inverted depth included (plan/tasks/stack.py)
    default_placement = "reference" if protocol is not None else STACK_PLACEMENTS[0]
    return _write_stack(
        source=haystack if haystack is not None else "demo",
        needles=needles,
        lengths=lengths or released_lengths_spec("stack"),
        depths=depths or released_depths_spec("stack"),
        placement=placement or default_placement,
        visual_tokens=RELEASED_VISUAL_TOKENS if visual_tokens is None else int(visual_tokens),
        max_clip_frames=DEFAULT_MAX_CLIP_FRAMES if max_clip_frames is None else int(max_clip_frames),
        fps=rate,
        size=frame_size,
        frames_per_group=int(opts["frames_per_group"]),
        resize=opts["resize"],
        protocol=protocol,
        **rest,
    )
