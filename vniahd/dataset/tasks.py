"""V-RULER tasks in a dataset: their needle files, their plans as samples, their images.

``vniahd generate --task multi-key|counting|ordering`` reads a task file in the released format
(:func:`vniahd.needles.load_task_items`; ``demo`` = the shipped ``needles/vruler-demo/`` set),
plans it with the task's rule (:mod:`vniahd.plan.tasks`) and stores each trial as a
:class:`~vniahd.records.Sample`: ``needle_id`` is the item (its question and answer),
``needle_slots``/``needle_ids``/``needle_images`` every needle in the item's order, no distractor.
``--task niah`` reads the released ``v_niah_d.json`` as an ordinary needle set
(:func:`vniahd.needles.load_needle_set`) and plans it as V-NIAH-D.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from vniahd.errors import UnknownNameError
from vniahd.needles.schema import TaskItemSet
from vniahd.plan.planner import needle_image_name
from vniahd.plan.tasks import TASKS, TaskTrial, get_task, plan_task
from vniahd.records import Sample

__all__ = [
    "TASK_NAMES",
    "item_images",
    "item_record",
    "load_task_needles",
    "plan_task_samples",
    "released_depths_spec",
    "released_lengths_spec",
    "trial_sample",
]

TASK_NAMES = tuple(TASKS)


def load_task_needles(task: str, needles: str | Path) -> TaskItemSet:
    """The items of a multi-image ``task`` (``needles="demo"``: the shipped demo set)."""
    from vniahd.needles import load_task_items, vruler_demo_path

    get_task(task)
    path = vruler_demo_path(task) if str(needles) == "demo" else Path(needles)
    return load_task_items(path, task)


def released_lengths_spec(task: str) -> str:
    """The released length grid of ``task`` as a ``--lengths`` spec (frames; tokens for the stack)."""
    lengths = get_task(task).released_lengths
    return f"{lengths[0]}:{lengths[-1]}:{lengths[1] - lengths[0]}"


def released_depths_spec(task: str) -> str:
    """The released depth grid of ``task`` as a ``--depths`` spec (multi-key stops at 0.8)."""
    depths = get_task(task).released_depths
    return f"0:{depths[-1]}:0.2"


def trial_sample(trial: TaskTrial) -> Sample:
    """A task trial as a dataset sample (see module docstring); a trial without needles
    (counting's bare haystack) has ``needle_slot`` −1."""
    images = [needle_image_name(n) for n in trial.needle_ids]
    return Sample(
        sample_id=trial.sample_id,
        length=trial.length,
        depth=float(trial.depth),
        needle_id=trial.item_id,
        repeat=trial.repeat,
        haystack_offset=trial.haystack_offset,
        needle_slot=trial.needle_slots[0] if trial.needle_slots else -1,
        needle_image=images[0] if images else "",
        num_frames=trial.num_frames,
        schedule="none",
        task=trial.task,
        needle_slots=list(trial.needle_slots),
        needle_ids=list(trial.needle_ids),
        needle_images=images,
    )


def plan_task_samples(
    task: str,
    items: TaskItemSet,
    *,
    lengths: Sequence[int],
    depths: Sequence[Decimal],
    placement: str,
    draws: str,
    seed: int,
) -> list[Sample]:
    """Every trial of ``task`` over the grid as samples, by the task's rule."""
    rule = get_task(task)
    if placement not in rule.placements:
        raise UnknownNameError(f"{task} placement", placement, rule.placements)
    options: dict[str, Any] = {"placement": placement}
    if task == "multi-key":
        options.update(draws=draws, seed=seed)
    trials = plan_task(task, items.specs(), list(lengths), list(depths), **options)
    return [trial_sample(t) for t in trials]


def item_images(items: TaskItemSet) -> list[tuple[str, Path]]:
    """(dataset image name, source) of every distinct needle image, in first-use order."""
    out: dict[str, Path] = {}
    for it in items:
        for nid, path in zip(it.needle_ids, it.images):
            out.setdefault(needle_image_name(nid), path)
    return list(out.items())


def item_record(item: Any) -> dict[str, Any]:
    """How an item is stored in dataset.json's needle list: the question and answer the
    evaluator asks, and its images by dataset name (``image``: the first, or None)."""
    images = [needle_image_name(n) for n in item.needle_ids]
    return {
        "id": item.id,
        "image": images[0] if images else None,
        "images": images,
        "question": item.question,
        "answer": item.answer,
        "options": list(item.options) if item.options is not None else None,
        "distractors": [],
        "prompt": item.prompt,
        "meta": {"needle_ids": list(item.needle_ids)} | _clip_meta(item),
    }


def _clip_meta(item: Any) -> dict[str, Any]:
    """A stack item's clip and the source file's own id and category."""
    if getattr(item, "video", None) is None:
        return {}
    return {
        "clip": item.video.name,
        "clip_sha256": item.video_sha256,
        "source_id": item.source_id,
        "question_category": item.category,
    }
