"""The demo's datasets: the held-out haystack and the V-NIAH, V-NIAH-D and V-RULER datasets the
tiny model is scored on, generated once into the cache and reopened while their request is the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.files import cache_dir, write_json_atomic

DATASET_SEED = 20250207  # any fixed number; recorded in dataset.json
#: The V-RULER tasks ``vniahd demo --tasks vruler`` adds (V-NIAH-D is already there).
DEMO_TASKS = ("multi-key", "counting", "ordering", "stack")


def stack_grid(recipe, lengths: str) -> tuple[str, int]:
    """The stack's demo grid: ``(context lengths in tokens, visual tokens)``. Each demo length
    in frames becomes the context of that many frames' tokens, and the clip is given the
    training length's tokens, so the smallest context holds no filler (the clip and question
    alone) and the others 1× … 7× the training length in filler."""
    from vniahd.plan import parse_lengths

    mc = recipe.train.model
    per_frame = int(mc.grid[0]) * int(mc.grid[1])
    tokens = [n * per_frame for n in parse_lengths(lengths)]
    return ",".join(str(t) for t in tokens), int(recipe.train.length) * per_frame


def task_depths(task: str, depths: str) -> str:
    """The demo's depth grid for ``task``: multi-key's needles need a window after the depth, so
    its grid stops one step short of 1 (as the released one stops at 0.8)."""
    if task != "multi-key":
        return depths
    from vniahd.plan import parse_depths

    kept = [d for d in parse_depths(depths) if d < 1]
    if not kept:
        raise VniahdError(f"--depths {depths}: multi-key needs depths below 1")
    return ",".join(str(d) for d in kept)


def period_spec(recipe) -> str:
    """``auto:HEAD_DIM,THETA,T_SECTION`` of the tiny model (the generator computes the period)."""
    mc = recipe.train.model
    return f"auto:{mc.head_dim},{mc.rope_theta:g},{mc.sections[0]}"


def heldout_haystack(recipe, material) -> Path:
    """The held-out portion of the recipe's haystack as its own mp4 (cached)."""
    from vniahd.training.data import write_heldout_haystack

    dc = recipe.data_config
    path = cache_dir("tiny", "heldout") / f"heldout-{dc.key()}.mp4"
    return write_heldout_haystack(recipe.haystack_path, path, dc, material.haystack.frames)


def ensure_dataset(
    out: Path,
    *,
    haystack: Path,
    schedule: str,
    period: str,
    lengths: str,
    depths: str,
    repeats: int,
    seed: int,
    progress: bool,
    task: str = "niah",
    visual_tokens: int | None = None,
):
    """Open ``out`` if it holds exactly this dataset, else (re)generate it (``task``: a V-RULER
    task on its demo needle set, needles/vruler-demo/)."""
    from vniahd.dataset import Dataset
    from vniahd.dataset.generate import generate
    from vniahd.files import sha256_file
    from vniahd.needles import demo_needles_path

    want = {
        "schedule": schedule,
        "lengths_spec": lengths,
        "depths_spec": depths,
        "repeats": repeats,
        "seed": seed,
        "period_spec": period,
        "haystack": sha256_file(haystack),
        "needles": sha256_file(demo_needles_path()),
    }
    if task == "stack":  # the demo clips are cut from the haystack (needles/stack_demo.py)
        from vniahd.needles.stack_demo import stack_demo_path

        want.update(task=task, needles=sha256_file(stack_demo_path(haystack)), visual_tokens=visual_tokens)
    elif task != "niah":  # only then: the V-NIAH(-D) datasets keep their cache keys
        from vniahd.needles import vruler_demo_path

        want.update(task=task, needles=sha256_file(vruler_demo_path(task)))
    key_file = out / "demo_request.json"
    if key_file.is_file():
        try:
            import json

            if json.loads(key_file.read_text()) == want:
                return Dataset.open(out)
        except (ValueError, VniahdError):
            pass
    # the stack has no haystack frames, distractors or draws: it takes clip options instead
    options: dict[str, Any] = (
        # 1 fps: the demo haystack's rate, one group per picture, as the tiny model was trained
        {"fps": 1.0, "visual_tokens": visual_tokens}
        if task == "stack"
        else {"schedule": schedule, "period": period, "seed": seed, "repeats": repeats}
    )
    ds = generate(
        haystack=haystack,
        needles=demo_needles_path() if task == "niah" else "demo",
        out=out,
        lengths=lengths,
        depths=depths,
        overwrite=True,
        progress=progress,
        task=task,
        **options,
    )
    write_json_atomic(key_file, want)
    return ds
