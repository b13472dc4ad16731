"""One call from inputs to a dataset directory: load needles and haystack, plan, write.

The CLI's ``vniahd generate`` is a thin wrapper over :func:`generate`; training code can call it
too, or call :func:`vniahd.plan.plan_samples` and :func:`vniahd.dataset.write_dataset` directly
with in-memory frames.
"""

from __future__ import annotations

from pathlib import Path

from vniahd.errors import VniahdError


def generate(*, haystack: str | Path, needles: str | Path, out: str | Path,
             distractor_needles: str | Path | None = None, lengths: str = "100:2900:200",
             depths: str = "0:1:0.2", schedule: str = "reference", period: str | int = 200,
             fps: float = 1.0, size: str | tuple[int, int] = (252, 448), seed: int = 24242424,
             repeats: int = 1, max_distractors: int | None = None, overwrite: bool = False,
             export_videos: bool = False, progress: bool = True):
    """Generate a dataset directory; returns the opened :class:`~vniahd.dataset.Dataset`.

    ``haystack`` is a video path or ``"demo"`` (builds/reuses the demo haystack); ``needles`` a
    needle JSON path or ``"demo"``.
    """
    from vniahd.dataset.writer import write_dataset
    from vniahd.media import build_demo_haystack, load_haystack, parse_size
    from vniahd.needles import load_needle_set
    from vniahd.plan import get_schedule, parse_depths, parse_lengths, parse_period, plan_samples

    length_list = parse_lengths(lengths)
    depth_list = parse_depths(depths)
    get_schedule(schedule)
    per = parse_period(period)
    frame_size = parse_size(size)
    if fps is None or fps <= 0:
        raise VniahdError(f"--fps must be positive, got {fps}")
    nset = load_needle_set(needles, distractor_needles)
    hay_path = build_demo_haystack() if str(haystack) == "demo" else Path(haystack)
    hay = load_haystack(hay_path, fps=fps, size=frame_size, progress=progress)
    samples = plan_samples(lengths=length_list, depths=depth_list,
                           needles=[(n.id, len(n.distractors)) for n in nset], schedule=schedule,
                           period=per.frames, seed=seed, haystack_frames=len(hay), repeats=repeats,
                           max_distractors=max_distractors)
    config = {
        "lengths": length_list, "lengths_spec": str(lengths),
        "depths": [str(d) for d in depth_list], "depths_spec": str(depths),
        "schedule": schedule, "period": per.to_dict(), "seed": int(seed), "repeats": int(repeats),
        "max_distractors": max_distractors, "fps": float(fps), "size": list(frame_size),
        "haystack_spec": str(haystack), "needles_spec": str(needles),
        "distractor_needles_spec": str(distractor_needles) if distractor_needles else None,
        "placement": "needle before haystack frame floor(depth*N) (exact decimal); see vniahd.plan",
    }
    ds = write_dataset(out, haystack_frames=hay.frames, haystack_meta=hay.to_dict(), needle_set=nset,
                       samples=samples, config=config, overwrite=overwrite, export_videos=export_videos,
                       progress=progress)
    return ds
