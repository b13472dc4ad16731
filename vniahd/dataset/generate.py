"""One call from inputs to a dataset directory: load needles and haystack, plan, write.

The CLI's ``vniahd generate`` is a thin wrapper over :func:`generate`; training code can call it
too, or call :func:`vniahd.plan.plan_samples` and :func:`vniahd.dataset.write_dataset` directly
with in-memory frames.

Before anything is decoded or written, :func:`generate` refuses what would give a meaningless
dataset (a length no model could take, a schedule that places no distractor at all, an
unreadable needle image, a rate above the video's, a haystack of one repeated frame) and warns,
one line each on stderr, about what is legal but suspicious (samples without a distractor, a
variable-frame-rate or untimed video, an upscaled or stretched video, repeated frames, tiling).
What was actually sampled is recorded in dataset.json under ``haystack.sampling``.

``protocol="videorope"`` sets every option the released V-NIAH-D pipeline used
(:mod:`vniahd.dataset.protocols`); options given explicitly override it. With
``frames_per_group=2`` a haystack slot is a temporal group of two consecutive sampled frames: the
dataset stores the sampled frames, every count in samples.parquet is in groups, and an odd last
frame is dropped (recorded as ``haystack.dropped_frames``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vniahd.dataset.install import check_dataset_out, dataset_lock
from vniahd.dataset.protocols import resolve_options
from vniahd.dataset.writer import write_dataset
from vniahd.errors import VniahdError
from vniahd.media import build_demo_haystack, load_haystack, parse_size
from vniahd.media.sampling import check_resize
from vniahd.needles import check_images, load_needle_set, parse_colour
from vniahd.needles.schema import NeedleSet, TaskItemSet
from vniahd.notices import status, warn
from vniahd.plan import (
    DRAWS,
    Sample,
    check_distractor_coverage,
    get_schedule,
    parse_depths,
    parse_lengths,
    parse_period,
    plan_samples,
)

if TYPE_CHECKING:
    from vniahd.dataset import Dataset

#: Mean absolute difference (0–255 scale) below which two frames count as the same picture: above
#: the noise a lossy codec leaves on a still picture, far below any cut or motion.
STILL_TOLERANCE = 0.5


def one_picture(frames: np.ndarray, chunk: int = 64) -> bool:
    """Whether every frame of uint8 ``[N, H, W, 3]`` shows the first frame's picture (within
    :data:`STILL_TOLERANCE`): a still video decoded into N frames."""
    first = np.asarray(frames[0], dtype=np.int16)
    for start in range(1, len(frames), chunk):
        part = np.asarray(frames[start : start + chunk], dtype=np.int16)
        if (np.abs(part - first).mean(axis=(1, 2, 3)) > STILL_TOLERANCE).any():
            return False
    return True


#: Longest haystack accepted, in frames (10x the reference's longest, 2900; 27.8 h at 1 fps).
MAX_LENGTH = 100_000


def generate(
    *,
    haystack: str | Path | None,
    needles: str | Path,
    out: str | Path,
    distractor_needles: str | Path | None = None,
    lengths: str | None = None,
    depths: str | None = None,
    schedule: str | None = None,
    period: str | int | None = None,
    fps: float | None = None,
    size: str | tuple[int, int] | None = None,
    seed: int | None = None,
    repeats: int = 1,
    max_distractors: int | None = None,
    overwrite: bool = False,
    export_videos: bool = False,
    progress: bool = True,
    needle_background: str | tuple[int, int, int] = "black",
    frames_per_group: int | None = None,
    draws: str | None = None,
    resize: str | None = None,
    protocol: str | None = None,
    task: str = "niah",
    placement: str | None = None,
    clips: str | Path | None = None,
    visual_tokens: int | None = None,
    max_clip_frames: int | None = None,
) -> Dataset:
    """Generate a dataset directory; returns the opened :class:`~vniahd.dataset.Dataset`.

    ``haystack`` is a video path or ``"demo"`` (builds/reuses the demo haystack); ``needles`` a
    needle JSON path or ``"demo"`` (with ``distractor_needles`` ``None`` or ``"demo"``).
    ``needle_background`` is the colour transparent needle pixels are composited on. On any error
    ``out`` is left as it was.

    An option left ``None`` takes the ``protocol``'s value (``"videorope"``), else the default of
    :data:`vniahd.dataset.protocols.DEFAULTS`: lengths ``100:2900:200``, depths ``0:1:0.2``,
    schedule ``reference``, period 200, 1 fps, 252×448, seed 24242424, one frame per group, hashed
    draws, PIL resize. ``frames_per_group``: 1 or 2 sampled frames per temporal group (slot);
    ``draws``: ``"hashed"`` or ``"reference"`` (:mod:`vniahd.plan.planner`); ``resize``: ``"pil"``
    or ``"torch-bicubic"`` (:func:`vniahd.media.sampling.resize_frame`).

    ``task``: ``"niah"`` (V-NIAH / V-NIAH-D, the default) or a V-RULER task, ``"multi-key"``,
    ``"counting"``, ``"ordering"`` (:mod:`vniahd.dataset.tasks`); ``needles`` is then the task's
    file in the released format, and ``placement`` its rule (``"reference"``, the released one, or
    ``"depth"`` for counting and ordering, whose released rule ignores depth). ``"stack"`` (a clip
    in filler text, :mod:`vniahd.dataset.stack`) reads ``clips``, ``visual_tokens`` and
    ``max_clip_frames``, and has no haystack (``haystack``: where ``needles="demo"`` cuts its clips).
    """
    from vniahd.dataset.tasks import released_depths_spec
    from vniahd.plan.tasks import get_task

    get_task(task)
    if task == "stack":
        from vniahd.dataset.stack import generate_stack

        return generate_stack(
            haystack=haystack,
            needles=needles,
            out=out,
            clips=clips,
            lengths=lengths,
            depths=depths,
            placement=placement,
            visual_tokens=visual_tokens,
            max_clip_frames=max_clip_frames,
            fps=fps,
            size=size,
            frames_per_group=frames_per_group,
            resize=resize,
            protocol=protocol,
            unused={
                "--distractor-needles": distractor_needles,
                "--schedule": schedule,
                "--period": period,
                "--seed": seed,
                "--draws": draws,
                "--max-distractors": max_distractors,
                "--repeats": None if repeats == 1 else repeats,
            },
            overwrite=overwrite,
            export_videos=export_videos,
            progress=progress,
        )
    stack_only = {"--clips": clips, "--visual-tokens": visual_tokens, "--max-clip-frames": max_clip_frames}
    given = [k for k, v in stack_only.items() if v is not None]
    if given:
        raise VniahdError(f"{', '.join(given)}: only for --task stack; drop it")
    if haystack is None:
        raise VniahdError("--haystack is needed: a video file, or 'demo' for the bundled demo haystack")
    if task != "niah":
        if depths is None:
            depths = released_depths_spec(task)  # multi-key's released grid stops at 0.8
        schedule = schedule or "none"
        if schedule != "none":
            raise VniahdError(
                f"--task {task} places its own needles and no distractor; drop --schedule {schedule}"
            )
        if repeats != 1:
            raise VniahdError(
                f"--task {task} plans one trial per item and cell, as the release does; drop --repeats"
            )
    elif placement is not None:
        raise VniahdError("--placement is a V-RULER task's rule; with --task niah use --schedule")

    opts = resolve_options(
        protocol,
        lengths=lengths,
        depths=depths,
        schedule=schedule,
        period=period,
        fps=fps,
        size=size,
        seed=seed,
        frames_per_group=frames_per_group,
        draws=draws,
        resize=resize,
    )
    lengths, depths, schedule = opts["lengths"], opts["depths"], opts["schedule"]
    period, fps, size, seed = opts["period"], opts["fps"], opts["size"], opts["seed"]
    fpg, draws, resize = int(opts["frames_per_group"]), opts["draws"], opts["resize"]
    unit = "frames" if fpg == 1 else "groups"
    if draws not in DRAWS:
        raise VniahdError(f"--draws {draws!r}: use one of {', '.join(DRAWS)}")
    check_resize(resize)
    length_list = parse_lengths(lengths)
    longest = max(length_list)
    if longest > MAX_LENGTH:
        raise VniahdError(
            f"--lengths {lengths}: {longest} {unit} is beyond what any video model takes "
            f"(the reference grid stops at 2900; vniahd accepts up to {MAX_LENGTH}); give "
            "lengths in frames, e.g. 100:2900:200"
        )
    depth_list = parse_depths(depths)
    get_schedule(schedule)
    per = parse_period(period)
    frame_size = parse_size(size)
    if frame_size is None:
        raise VniahdError("--size is needed: the frame size HxW, e.g. 252x448")
    if fps is None or not math.isfinite(float(fps)) or fps <= 0:
        raise VniahdError(f"--fps must be positive, got {fps}; e.g. --fps 1")
    background = parse_colour(needle_background)
    check_dataset_out(out)
    with dataset_lock(out):  # held until the dataset is in place: one generate per --out
        nset = _load_needles(task, needles, distractor_needles)
        check_images(nset)  # decode every image now: a damaged one fails before the haystack is decoded
        needle_spec = [(n.id, len(n.distractors)) for n in nset] if isinstance(nset, NeedleSet) else []

        def plan(haystack_frames: int) -> list[Sample]:
            if isinstance(nset, TaskItemSet):
                from vniahd.dataset.tasks import plan_task_samples

                return plan_task_samples(
                    task,
                    nset,
                    lengths=length_list,
                    depths=depth_list,
                    placement=placement or "reference",
                    draws=draws,
                    seed=seed,
                )
            return plan_samples(
                lengths=length_list,
                depths=depth_list,
                needles=needle_spec,
                schedule=schedule,
                period=per.frames,
                seed=seed,
                haystack_frames=haystack_frames,
                repeats=repeats,
                max_distractors=max_distractors,
                draws=draws,
            )

        # distractor positions do not depend on the haystack (only window offsets do): check them first
        period_label = per.spec if per.spec == str(per.frames) else f"{per.spec} ({per.frames} {unit})"
        coverage = check_distractor_coverage(plan(longest), schedule, period_label, unit)

        hay_path = build_demo_haystack(progress=progress) if str(haystack) == "demo" else Path(haystack)
        hay = load_haystack(hay_path, fps=fps, size=frame_size, progress=progress, resize=resize)
        sampling = hay.sampling
        if hay.distinct_frames >= 2 and one_picture(hay.frames):
            raise VniahdError(
                f"{hay_path.name} gives {len(hay)} frames at --fps {fps:g} that all show the same "
                "picture (a still video): every haystack frame would be the same; use a video whose "
                "picture changes"
            )
        if hay.distinct_frames < 2:
            src_n = sampling.get("source_num_frames", hay.source_num_frames)
            dur = sampling.get("source_duration_s")
            raise VniahdError(
                f"{hay_path.name} gives only {hay.distinct_frames} distinct frame at --fps {fps:g} "
                f"(the video has {src_n} frame{'s' if src_n != 1 else ''}"
                + (f", {dur:.3g} s" if dur else "")
                + "): every haystack frame would be the same "
                f"picture; use a longer video (at least {longest} frames at --fps {fps:g} for "
                f"--lengths up to {longest}) or a higher --fps"
            )
        for note in hay.notes:
            warn(note)
        slots = len(hay) // fpg  # M sampled frames make M // fpg temporal groups
        if slots < 1:
            raise VniahdError(
                f"{hay_path.name} gives {len(hay)} frame at --fps {fps:g}: --frames-per-group {fpg} "
                f"needs at least {fpg}; use a longer video or a higher --fps"
            )
        if fpg != 1 and len(hay) % fpg and progress:
            status(
                f"the haystack's {len(hay)} frames make {slots} groups of {fpg}; the last frame is "
                "dropped (recorded as haystack.dropped_frames)"
            )
        if longest > slots:
            tiled = [n for n in length_list if n > slots]
            shown = ", ".join(str(n) for n in tiled[:6]) + (", …" if len(tiled) > 6 else "")
            what = (
                f"{len(hay)} frames at --fps {fps:g} ({hay.distinct_frames} distinct)"
                if fpg == 1
                else f"{slots} groups of {fpg} frames ({len(hay)} frames at --fps {fps:g}, "
                f"{hay.distinct_frames} distinct)"
            )
            warn(
                f"the haystack has {what}; lengths {shown} are longer, so their windows repeat it end "
                "to end (tiled, as the reference does); a longer video avoids repeats"
            )
        if coverage:
            warn(coverage)
        samples = plan(slots)
        if task in ("counting", "ordering") and (placement or "reference") == "reference":
            warn(
                f"--task {task}: the released placement ignores depth (needles spread evenly over "
                f"the whole haystack), so the {len(depth_list)} depth rows are identical inputs; "
                "--placement depth spreads them inside each depth's window instead"
            )
        elif task == "niah":
            _warn_repeated_placements(samples, depths, len(depth_list))
        config = {
            "lengths": length_list,
            "lengths_spec": str(lengths),
            "depths": [str(d) for d in depth_list],
            "depths_spec": str(depths),
            "schedule": schedule,
            "period": per.to_dict(),
            "seed": int(seed),
            "repeats": int(repeats),
            "max_distractors": max_distractors,
            "fps": float(fps),
            "size": list(frame_size),
            "haystack_spec": str(haystack),
            "needles_spec": str(needles),
            "distractor_needles_spec": str(distractor_needles) if distractor_needles else None,
            "placement": "needle before haystack frame floor(depth*N) (exact decimal); see vniahd.plan",
        }
        if task != "niah":  # recorded only for tasks: V-NIAH(-D) datasets keep their fingerprints
            config.update(task=task, placement=placement or "reference")
        # Only what differs from the defaults is recorded, so default datasets keep their fingerprints.
        if fpg != 1:
            config["frames_per_group"] = fpg
        if draws != "hashed":
            config["draws"] = draws
        if resize != "pil":
            config["resize"] = resize
        if protocol is not None:
            config["protocol"] = protocol  # recorded, not part of the identity (see writer)
        ds = write_dataset(
            out,
            haystack_frames=hay.frames,
            haystack_meta=hay.to_dict(),
            needle_set=nset,
            samples=samples,
            config=config,
            overwrite=overwrite,
            export_videos=export_videos,
            progress=progress,
            needle_background=background,
            frames_per_group=fpg,
            lock=False,
        )
        return ds


def _load_needles(task: str, needles: str | Path, distractors: str | Path | None) -> NeedleSet | TaskItemSet:
    """A V-RULER task's items, or (niah) a native or reference needle set."""
    from vniahd.dataset.tasks import load_task_needles

    if task != "niah":
        return load_task_needles(task, needles)
    return load_needle_set(needles, distractors)


def _warn_repeated_placements(samples: list[Sample], depths_spec: object, n_depths: int) -> None:
    """One line when several depths land on the same needle slot: the extra samples repeat a
    placement (same length, needle, repeat and slot) and add no information."""
    distinct = {(s.length, s.needle_id, s.repeat, s.needle_slot) for s in samples}
    if len(distinct) == len(samples):
        return
    by_length: dict[int, set[int]] = {}
    for s in samples:
        by_length.setdefault(s.length, set()).add(s.needle_slot)
    worst = min(by_length, key=lambda n: len(by_length[n]) / n_depths)
    warn(
        f"--depths {depths_spec}: {n_depths} depths, but at length {worst} they fall on only "
        f"{len(by_length[worst])} distinct needle slots; the {len(samples):,} samples hold "
        f"{len(distinct):,} distinct placements (length, needle, repeat, slot); use a coarser "
        "--depths step or longer --lengths"
    )
