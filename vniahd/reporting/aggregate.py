"""Aggregation of records into heatmap grids, per-length curves and summary rows (pandas).

Definitions used by every figure and table:

- A *group* is one (model, variant, scoring, benchmark): the model is keyed by its full spec and
  fingerprint, the benchmark by its schedule and dataset (:class:`GroupKey`), so neither two
  checkpoints nor two datasets whose schedules share a name ever merge into one cell. Labels
  (``model``, ``benchmark``) come from :mod:`vniahd.reporting.load` and are distinct per identity.
- A heatmap *cell* is the mean of ``correct`` over every record at that (depth, length) — i.e. over
  needles and repeats. A cell with no records is NaN (drawn blank, never as 0).
- A group's *mean* pools all its records: k correct out of n, with a Wilson 95% interval
  (:mod:`vniahd.reporting.stats`). On a full grid this equals the mean of the cells.
- *Near* and *far* halves split the group's own sorted distinct lengths: near is the first
  ⌈L/2⌉ lengths, far the remaining ⌊L/2⌋ (so with an odd count the middle length is near; with a
  single length far is empty, NaN).
- The x axis is ``frames`` (haystack length) or ``tokens`` = frames × tokens_per_frame (the paper's
  axis; the group's most common tokens_per_frame).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.reporting.stats import wilson_interval

GROUP_KEYS = ("model_spec", "model_fp", "variant", "scoring", "schedule", "dataset")
X_AXES = ("frames", "tokens")
#: The stack task's axis: its ``length`` is already the context length in tokens (not a choice).
CONTEXT_AXIS = "context"


class GroupKey(NamedTuple):
    """What one heatmap, panel, curve or summary row is of (columns :data:`GROUP_KEYS`)."""

    model_spec: str
    model_fp: str
    variant: str
    scoring: str
    schedule: str
    dataset: str

    @property
    def model(self) -> tuple[str, str]:
        """The model's identity: (spec, fingerprint)."""
        return self.model_spec, self.model_fp

    @property
    def bench(self) -> tuple[str, str]:
        """The benchmark's identity: (schedule, dataset)."""
        return self.schedule, self.dataset


#: Human names of the distractor schedules (:mod:`vniahd.plan.schedules`): ``none`` is plain V-NIAH.
_BENCHMARKS = {"none": "V-NIAH", "reference": "V-NIAH-D", "periodic": "V-NIAH-D (periodic)"}


#: The ``schedule`` key of a V-RULER task's results (reporting/load.py): ``vruler:TASK:PLACEMENT``.
TASK_PREFIX = "vruler:"


def task_schedule(task: str, placement: str) -> str:
    return f"{TASK_PREFIX}{task}:{placement}"


def depth_ignored(schedule: str) -> bool:
    """Counting and ordering under the released placement: every depth is the same input."""
    parts = schedule.split(":")
    return (
        schedule.startswith(TASK_PREFIX) and parts[1] in ("counting", "ordering") and parts[2] == "reference"
    )


def benchmark_label(schedule: str, tag: str = "") -> str:
    """``V-NIAH`` for schedule ``none``, ``V-NIAH-D`` for ``reference``, ``V-RULER TASK`` for a
    V-RULER task's results, else a descriptive name; ``tag`` tells apart datasets with the same
    schedule (``V-NIAH-D [period 4]``)."""
    if schedule.startswith(TASK_PREFIX):
        _, task, placement = schedule.split(":")
        if task == "stack":  # its default is the depth placement; the released rule counts from the end
            label = "V-RULER stack" + (
                " (released placement: depth from the question)" if placement == "reference" else ""
            )
        else:
            label = f"V-RULER {task}" + (
                " (released placement: depth ignored)"
                if depth_ignored(schedule)
                else " (depth placement)"
                if placement == "depth"
                else ""
            )
    elif schedule in _BENCHMARKS:
        label = _BENCHMARKS[schedule]
    elif schedule == "unknown":
        label = "all_accuracies"
    else:
        label = f"V-NIAH-D ({schedule})"
    return f"{label} [{tag}]" if tag else label


def is_distractor_schedule(schedule: str) -> bool:
    return schedule not in ("none", "unknown") and not schedule.startswith(TASK_PREFIX)


def natural_key(text: str) -> list:
    """Sort key that orders numbers inside labels by value (``[period 4]`` before ``[period 199]``)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t]


def schedule_order(schedule: str) -> tuple[bool, bool, str]:
    """V-NIAH first, then V-NIAH-D, then the other schedules by name."""
    return schedule != "none", schedule != "reference", schedule


def groups(records: pd.DataFrame) -> list[tuple[GroupKey, pd.DataFrame]]:
    """(group key, records) pairs in a stable order: model, variant (first seen), scoring, schedule,
    benchmark label."""
    variant_order = {v: i for i, v in enumerate(pd.unique(records["variant"]))}
    out = [(GroupKey(*map(str, k)), g) for k, g in records.groupby(list(GROUP_KEYS), sort=False)]
    out.sort(
        key=lambda kv: (
            kv[0].model_spec,
            kv[0].model_fp,
            variant_order[kv[0].variant],
            kv[0].scoring,
            schedule_order(kv[0].schedule),
            natural_key(kv[1]["benchmark"].iloc[0]),
        )
    )
    return out


def label(g: pd.DataFrame, column: str) -> str:
    """A group's ``model`` or ``benchmark`` label (the same on every record of a group)."""
    return str(g[column].iloc[0])


def tokens_per_frame(records: pd.DataFrame) -> float:
    """The most common tokens_per_frame of these records; an error if none is recorded."""
    tpf = records["tokens_per_frame"].dropna()
    if tpf.empty:
        raise VniahdError(
            "--x tokens needs tokens_per_frame in the results, and these results have "
            "none; plot with --x frames"
        )
    return float(tpf.mode().iloc[0])


def is_stack(records: pd.DataFrame) -> pd.Series:
    """Which records are the stack task's, whose ``length`` counts context tokens."""
    return records["schedule"].astype(str).str.startswith(f"{TASK_PREFIX}stack:")


def axis(records: pd.DataFrame, x: str) -> str:
    """The x axis a group is drawn on: :data:`CONTEXT_AXIS` for stack records, else ``x``."""
    return CONTEXT_AXIS if len(records) and bool(is_stack(records).all()) else x


def x_values(records: pd.DataFrame, x: str) -> pd.Series:
    """The x coordinate of every record: its length in frames, or in tokens (the stack's length,
    already the context in tokens, for ``x`` = :data:`CONTEXT_AXIS`)."""
    if x not in (*X_AXES, CONTEXT_AXIS):
        raise VniahdError(f"unknown x axis {x!r}; use one of {', '.join(X_AXES)}")
    if x == CONTEXT_AXIS:
        return records["length"].astype(float)
    if x == "frames":
        return records["length"].astype(float)
    return records["length"].astype(float) * tokens_per_frame(records)


def pivot(records: pd.DataFrame, x: str = "frames") -> pd.DataFrame:
    """Heatmap grid of one group: index depth percent (ascending), columns length, values mean.

    Every depth and length present in the records gets a row/column; cells without records are NaN.
    """
    df = records.assign(_x=x_values(records, x))
    table = df.pivot_table(index="depth_pct", columns="_x", values="correct", aggfunc="mean", dropna=False)
    table = table.reindex(index=sorted(df["depth_pct"].unique()), columns=sorted(df["_x"].unique()))
    table.index.name, table.columns.name = "depth_pct", x
    return table


def counts(records: pd.DataFrame, x: str = "frames") -> pd.DataFrame:
    """Number of records per heatmap cell, same shape as :func:`pivot` (0 where empty)."""
    df = records.assign(_x=x_values(records, x))
    table = df.pivot_table(index="depth_pct", columns="_x", values="correct", aggfunc="size", fill_value=0)
    return table.reindex(
        index=sorted(df["depth_pct"].unique()), columns=sorted(df["_x"].unique()), fill_value=0
    )


def split_lengths(lengths) -> tuple[list[int], list[int]]:
    """Near half (first ⌈L/2⌉ sorted distinct lengths) and far half (the rest)."""
    ls = sorted({int(v) for v in lengths})
    cut = math.ceil(len(ls) / 2)
    return ls[:cut], ls[cut:]


def _stats(correct: pd.Series) -> dict:
    n = int(len(correct))
    k = float(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"n": n, "k": k, "mean": k / n if n else math.nan, "ci_low": lo, "ci_high": hi}


def _span(lengths: list[int]) -> str:
    if not lengths:
        return ""
    return f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"


def summary(records: pd.DataFrame) -> pd.DataFrame:
    """One row per group: mean, n, Wilson 95% CI, and the same for the near and far halves."""
    rows = []
    for key, g in groups(records):
        near, far = split_lengths(g["length"])
        row: dict[str, object] = {
            "model": label(g, "model"),
            "model_spec": key.model_spec,
            "variant": key.variant,
            "scoring": key.scoring,
            "schedule": key.schedule,
            "benchmark": label(g, "benchmark"),
            "dataset": key.dataset,
            "model_fp": key.model_fp,
        }
        row.update(_stats(g["correct"]))
        for name, half in (("near", near), ("far", far)):
            st = _stats(g.loc[g["length"].isin(half), "correct"])
            row.update({f"{name}_{k}": v for k, v in st.items() if k != "k"})
            row[f"{name}_lengths"] = _span(half)
        row["lengths"] = g["length"].nunique()
        row["depths"] = g["depth_pct"].nunique()
        rows.append(row)
    return pd.DataFrame(rows)


def wide_summary(summary_df: pd.DataFrame) -> pd.DataFrame:
    """Table-3 layout: one row per (model, variant, scoring), one column group per benchmark.

    Columns are a (benchmark, statistic) MultiIndex with statistics mean, ci_low, ci_high, n; a
    benchmark is one (schedule, dataset), named by its distinct label.
    """
    keys = ["model", "model_spec", "model_fp", "variant", "scoring"]
    schedule_of = dict(zip(summary_df["benchmark"], summary_df["schedule"]))
    order = list(dict.fromkeys(summary_df["benchmark"]))
    order.sort(key=lambda b: (schedule_order(schedule_of[b]), natural_key(b)))
    table = summary_df.pivot_table(
        index=keys,
        columns="benchmark",
        values=["mean", "ci_low", "ci_high", "n"],
        aggfunc="first",
        sort=False,
    )
    table = table.swaplevel(0, 1, axis=1)
    cols = [(b, s) for b in order for s in ("mean", "ci_low", "ci_high", "n") if (b, s) in table]
    row_order = list(dict.fromkeys(map(tuple, summary_df[keys].values.tolist())))
    return table.reindex(
        index=pd.MultiIndex.from_tuples(row_order, names=keys), columns=pd.MultiIndex.from_tuples(cols)
    )


def curve(records: pd.DataFrame, x: str = "frames") -> pd.DataFrame:
    """Per-length accuracy of one group: columns x, length, n, mean, ci_low, ci_high."""
    df = records.assign(_x=x_values(records, x))
    rows = []
    for (length, xv), g in df.groupby(["length", "_x"], sort=True):
        row = {"x": float(xv), "length": int(length)}
        row.update(_stats(g["correct"]))
        rows.append(row)
    return pd.DataFrame(rows)


def delta(target: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """target − baseline on the union grid (NaN where either side has no data)."""
    index = sorted(set(target.index) | set(baseline.index))
    columns = sorted(set(target.columns) | set(baseline.columns))
    return target.reindex(index=index, columns=columns) - baseline.reindex(index=index, columns=columns)


def group_mean(records: pd.DataFrame) -> tuple[float, float, float, int]:
    """(mean, ci_low, ci_high, n) of some records."""
    st = _stats(records["correct"])
    return st["mean"], st["ci_low"], st["ci_high"], st["n"]
