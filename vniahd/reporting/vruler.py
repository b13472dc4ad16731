"""The V-RULER summary: one row per model, variant and scoring, one column per task.

The released scripts score each task on its own (``avg_accuracy.txt`` per task); none combines
them, and how the VideoRoPE++ paper's radar figure does is not in the released code. So the table
gives each task's accuracy with its Wilson interval, and an ``overall (ours)`` column only where a
row has two or more tasks: the unweighted mean of its task means, labelled as vniahd's own number.
V-NIAH-D results of the same model and variant sit beside the tasks as ``niah``. A task measured
twice (another placement, another dataset) gets a column each and then no overall number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vniahd.files import write_text_atomic
from vniahd.reporting.aggregate import TASK_PREFIX
from vniahd.reporting.stats import wilson_interval

__all__ = ["OVERALL", "vruler_markdown", "vruler_summary", "write_vruler"]

OVERALL = "overall (ours)"
_ROW = ["model", "variant", "scoring"]


def _column(schedule: str, tag: str) -> str | None:
    """The table column of a record: its task (``niah`` for V-NIAH-D), with the placement when it
    is not the released one and the dataset tag when several datasets share it, so that two
    different measurements never pool into one cell; None for other benchmarks."""
    if schedule.startswith(TASK_PREFIX):
        _, task, placement = schedule.split(":")
        if task == "stack":  # the stack's default is the depth placement (plan/tasks/stack.py)
            name = task + (" (released placement)" if placement == "reference" else "")
        else:
            name = task + (f" ({placement} placement)" if placement != "reference" else "")
    elif schedule == "reference":
        name = "niah"
    else:
        return None
    return f"{name} [{tag}]" if tag else name


def vruler_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Long table: model, variant, scoring, task, n, correct, mean, ci_low, ci_high — plus an
    ``overall (ours)`` row per (model, variant, scoring) holding two or more distinct tasks, its
    ``tasks`` column naming what it averages. Empty when the records hold no V-RULER task."""
    if not records["schedule"].str.startswith(TASK_PREFIX).any():
        return pd.DataFrame()
    column = pd.Series(
        [_column(s, t) for s, t in zip(records["schedule"], records["dataset_tag"])], index=records.index
    )
    kept = column.notna()
    rows = []
    for key, g in records[kept].groupby([*_ROW, column[kept]], sort=True):
        k, n = int(g["correct"].sum()), len(g)
        lo, hi = wilson_interval(k, n)
        rows.append(dict(zip([*_ROW, "task"], key), n=n, correct=k, mean=k / n, ci_low=lo, ci_high=hi))
    df = pd.DataFrame(rows)
    overall = []
    for key, g in df.groupby(_ROW, sort=True):
        # one cell per task: a task measured twice (two placements, two datasets) has no one mean
        tasks = [t.split(" ")[0] for t in g["task"]]
        if len(g) >= 2 and len(set(tasks)) == len(tasks):
            overall.append(
                dict(
                    zip(_ROW, key),
                    task=OVERALL,
                    n=int(g["n"].sum()),
                    mean=g["mean"].mean(),
                    tasks=", ".join(g["task"]),
                )
            )
    return pd.concat([df, pd.DataFrame(overall)], ignore_index=True) if overall else df


def vruler_markdown(table: pd.DataFrame) -> str:
    """The wide view of :func:`vruler_summary` with its caption."""
    tasks = [t for t in dict.fromkeys(table["task"]) if t != OVERALL]
    cols = tasks + ([OVERALL] if OVERALL in set(table["task"]) else [])
    lines = ["| Model | Variant | Scoring | " + " | ".join(cols) + " |", "|---|---|---|" + "--:|" * len(cols)]
    for key, g in table.groupby(_ROW, sort=True):
        by = {r["task"]: r for _, r in g.iterrows()}
        cells = []
        for t in cols:
            r = by.get(t)
            if r is None:
                cells.append("–")
            elif t == OVERALL:
                cells.append(f"{100 * r['mean']:.1f}")
            else:
                ci = f"{100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}"
                cells.append(f"{100 * r['mean']:.1f} ({ci}), n={int(r['n'])}")
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
    return (
        "## V-RULER\n\n"
        "Accuracy in percent per task with Wilson 95% intervals (niah = V-NIAH-D). No released "
        "V-RULER script combines the tasks into one score; "
        f"**{OVERALL}** is vniahd's own: the unweighted mean of the task means in its row (rows "
        "with other tasks are not comparable; vruler_summary.csv lists the tasks each averages), "
        "given only where each task was measured once.\n\n" + "\n".join(lines) + "\n"
    )


def write_vruler(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """``vruler_summary.csv`` and ``vruler_summary.md`` in ``out`` (nothing for an empty table)."""
    if table.empty:
        return {}
    csv, md = out / "vruler_summary.csv", out / "vruler_summary.md"
    write_text_atomic(csv, table.to_csv(index=False))
    write_text_atomic(md, vruler_markdown(table))
    return {csv.name: csv, md.name: md}
