"""``summary.csv`` and ``summary.md``: the numbers behind the figures, with Wilson 95% intervals.

The CSV is the long form, one row per (model, variant, scoring, benchmark), in fractions — a
benchmark being one dataset (``dataset``: its fingerprint, or ``source:<path>`` for an input
pooled with no other) of one schedule, and a model one spec with one fingerprint. The
markdown has the paper's Table 3 layout first (one row per model/variant/scoring, one column per
benchmark: V-NIAH, V-NIAH-D, …, accuracy in percent with the 95% interval) and the long form
with the near/far halves of the lengths below it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import pandas as pd

from vniahd.files import write_text_atomic
from vniahd.reporting import aggregate, seeds

CSV_COLUMNS = (
    "model",
    "model_spec",
    "variant",
    "scoring",
    "schedule",
    "benchmark",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "near_lengths",
    "near_n",
    "near_mean",
    "near_ci_low",
    "near_ci_high",
    "far_lengths",
    "far_n",
    "far_mean",
    "far_ci_low",
    "far_ci_high",
    "lengths",
    "depths",
    "dataset",
    "model_fp",
)


def pct_ci(mean: float, lo: float, hi: float) -> str:
    """ "87.3 (84.1–90.0)": percent with the 95% interval, or "–" when there is no data."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{100 * mean:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"


def write_csv(summary_df: pd.DataFrame, path: str | Path) -> Path:
    write_text_atomic(path, summary_df[list(CSV_COLUMNS)].to_csv(index=False, float_format="%.6g"))
    return Path(path)


def wide_rows(summary_df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the Table-3 layout."""
    wide = aggregate.wide_summary(summary_df)
    # pandas-stubs type a MultiIndex's items as str / Hashable; here they are tuples of labels.
    columns = cast("Iterable[tuple[str, str]]", wide.columns)
    benchmarks = list(dict.fromkeys(b for b, _ in columns))
    many_models = len(summary_df[["model_spec", "model_fp"]].drop_duplicates()) > 1
    header = (["Model"] if many_models else []) + ["Variant", "Scoring"]
    header += [f"{b} acc. % (95% CI)" for b in benchmarks] + [f"n {b}" for b in benchmarks]
    rows = []
    for key, r in wide.iterrows():
        model, _spec, _fp, variant, scoring = cast("tuple[str, str, str, str, str]", key)
        cells = ([model] if many_models else []) + [variant, scoring]
        cells += [pct_ci(r[(b, "mean")], r[(b, "ci_low")], r[(b, "ci_high")]) for b in benchmarks]
        cells += ["–" if pd.isna(r[(b, "n")]) else str(int(r[(b, "n")])) for b in benchmarks]
        rows.append(cells)
    return header, rows


def long_rows(summary_df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the long form, with the near/far halves of the lengths."""
    header = [
        "Model",
        "Variant",
        "Scoring",
        "Benchmark (schedule)",
        "n",
        "Acc. % (95% CI)",
        "Near lengths",
        "Near acc. %",
        "Far lengths",
        "Far acc. %",
    ]
    rows = []
    for _, r in summary_df.iterrows():
        rows.append(
            [
                r["model"],
                r["variant"],
                r["scoring"],
                f"{r['benchmark']} ({r['schedule']})",
                str(int(r["n"])),
                pct_ci(r["mean"], r["ci_low"], r["ci_high"]),
                r["near_lengths"] or "–",
                pct_ci(r["near_mean"], r["near_ci_low"], r["near_ci_high"]),
                r["far_lengths"] or "–",
                pct_ci(r["far_mean"], r["far_ci_low"], r["far_ci_high"]),
            ]
        )
    return header, rows


def first_numeric_column(header: list[str]) -> int:
    """Index of the first numeric column (they are right-aligned)."""
    return next(i for i, h in enumerate(header) if "acc." in h or h == "n" or h.startswith("n "))


def markdown_table(header: list[str], rows: list[list[str]], num_from: int | None = None) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    first = first_numeric_column(header) if num_from is None else num_from
    lines = [
        "| " + " | ".join(map(esc, header)) + " |",
        "|" + "|".join("---" if i < first else "--:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in rows]
    return "\n".join(lines)


def across_rows(ac: seeds.Across) -> tuple[list[str], list[list[str]], int]:
    """Header, cells and first numeric column of the across-seed table: one row per (model
    family, variant, scoring); per benchmark the mean over replicates with its t-interval and the
    per-replicate values; then the V-NIAH → V-NIAH-D drop."""
    unit = ac.unit
    many_families, many_scorings = len(ac.families) > 1, len(ac.scorings) > 1
    benches = list(dict.fromkeys(r.benchmark for r in ac.rows))
    drop_benches = list(dict.fromkeys(d.benchmark for d in ac.drops))
    plain = next((r.benchmark for r in ac.rows if r.schedule == "none"), "V-NIAH")
    keys = list(dict.fromkeys((r.family, r.variant, r.scoring) for r in ac.rows))
    header = (["Model"] if many_families else []) + ["Variant"] + (["Scoring"] if many_scorings else [])
    num_from = len(header)
    for b in benches:
        header += [f"{b} % mean [95% t-CI]", f"{b} per {unit}"]
    header += [f"Drop {plain} → {b} (points)" for b in drop_benches]
    by_row = {(r.family, r.variant, r.scoring, r.benchmark): r for r in ac.rows}
    by_drop = {(d.family, d.variant, d.scoring, d.benchmark): d for d in ac.drops}
    rows = []
    for family, variant, scoring in keys:
        cells = ([family] if many_families else []) + [variant] + ([scoring] if many_scorings else [])
        for b in benches:
            r = by_row.get((family, variant, scoring, b))
            if r is None:
                cells += ["–", "–"]
            else:
                cells += [
                    seeds.interval_text(r.mean, r.lo, r.hi, r.n, unit),
                    seeds.per_replicate_text(r.values),
                ]
        for b in drop_benches:
            d = by_drop.get((family, variant, scoring, b))
            cells.append(
                "–"
                if d is None
                else f"{seeds.interval_text(d.mean, d.lo, d.hi, len(d.values), unit, signed=True)}"
                f" ({seeds.per_replicate_text(d.values, signed=True)})"
            )
        rows.append(cells)
    return header, rows, num_from


def paired_rows(ac: seeds.Across) -> tuple[list[str], list[list[str]], int]:
    """Header, cells and first numeric column of the paired comparisons (variant − baseline)."""
    unit = ac.unit
    many_families, many_scorings = len(ac.families) > 1, len(ac.scorings) > 1
    header = (
        (["Model"] if many_families else [])
        + ["Comparison"]
        + (["Scoring"] if many_scorings else [])
        + ["Benchmark"]
    )
    num_from = len(header)
    header += [f"Per {unit} (points)", "Mean [95% t-CI] (points)", "Consistent", "Verdict"]
    rows = []
    for p in ac.pairs:
        cells = (
            ([p.family] if many_families else [])
            + [f"{p.variant} − {p.baseline}"]
            + ([p.scoring] if many_scorings else [])
            + [p.benchmark]
        )
        verdict = f"{p.variant} {'higher' if p.mean > 0 else 'lower'}" if p.called else "no difference shown"
        cells += [
            seeds.per_replicate_text(p.values, signed=True),
            seeds.interval_text(p.mean, p.lo, p.hi, p.n, unit, signed=True),
            f"{p.consistent} of {p.n}",
            verdict,
        ]
        rows.append(cells)
    return header, rows, num_from


def across_caption(ac: seeds.Across) -> str:
    """What the across-seed table shows, and how its intervals are made."""
    unit = ac.unit
    n = max((r.n for r in ac.rows), default=0)
    if ac.mode == "models":
        what = (
            "each model (checkpoint) is one replicate, as if they were seeds of one recipe; "
            "its value is its mean accuracy over every scored sample"
        )
    else:
        what = (
            "each seed is one trained model (seed from the model spec, e.g. `tiny?seed=1`, or "
            "run.json's model record); its value is its mean accuracy over every scored sample"
        )
    spread = (
        f"one {unit}, no between-{unit} interval"
        if n < 2
        else f"95% Student-t interval over the per-{unit} means (mean ± t·s/√n, n−1 degrees of "
        f"freedom; clipped to 0–100), so it includes the between-{unit} variation"
    )
    return (
        f"Accuracy in percent, mean over {unit}s: {what}. Interval: {spread}. Drop = V-NIAH minus "
        f"V-NIAH-D accuracy per {unit} (positive: the distractors cost accuracy), with the same "
        "interval."
    )


def paired_caption(ac: seeds.Across) -> str:
    unit = ac.unit
    return (
        f"Each variant minus {ac.baseline}, per {unit} (the same {unit} on both sides), in accuracy "
        f"points, with a 95% Student-t interval over the {unit}s. Consistent = {unit}s whose "
        "difference has the sign of the mean. A difference is called only when its interval "
        "excludes zero."
    )


def across_title(ac: seeds.Across) -> str:
    """``Across seeds — tiny`` (the model named when there is one family), or ``Across models``."""
    if ac.mode == "models":
        return "Across models"
    return "Across seeds" + (f" — {ac.families[0]}" if len(ac.families) == 1 else "")


def across_markdown(ac: seeds.Across) -> str:
    """The across-seed sections of summary.md (table, paired comparisons, one sentence per pair)."""
    title = across_title(ac)
    header, rows, num_from = across_rows(ac)
    out = f"## {title}\n\n{across_caption(ac)}\n\n{markdown_table(header, rows, num_from)}\n\n"
    if ac.baseline is None:
        out += (
            f"No paired comparisons: no baseline variant ({seeds.DEFAULT_BASELINE} is not in these "
            "results; choose one with --baseline).\n\n"
        )
    elif ac.pairs:
        header, rows, num_from = paired_rows(ac)
        many_s, many_f = len(ac.scorings) > 1, len(ac.families) > 1
        lines = "\n".join(f"- {seeds.sentence(p, ac.unit, many_s, many_f)}" for p in ac.pairs)
        out += (
            f"### Paired with {ac.baseline}\n\n{paired_caption(ac)}\n\n"
            f"{markdown_table(header, rows, num_from)}\n\n{lines}\n\n"
        )
    return out


def summary_markdown(
    summary_df: pd.DataFrame, sources: list[str], across: seeds.Across | None = None, extra: str = ""
) -> str:
    """summary.md: the across-seed view (if any), the per-model tables, ``extra`` (the V-RULER
    table), the sources."""
    wide = markdown_table(*wide_rows(summary_df))
    long = markdown_table(*long_rows(summary_df))
    src = "\n".join(f"- `{s}`" for s in sources)
    lead = across_markdown(across) + "## Per model\n\n" if across is not None else ""
    return (
        "# V-NIAH / V-NIAH-D summary\n\n"
        f"{lead}"
        "Accuracy in percent with Wilson 95% confidence intervals; n = scored samples "
        "(cells for reference all_accuracies.json files).\n\n"
        f"{wide}\n\n"
        "## Per benchmark, with near and far halves of the lengths\n\n"
        "Near = the shorter ⌈L/2⌉ of the L haystack lengths (in frames), far = the rest.\n\n"
        f"{long}\n\n" + (f"{extra}\n" if extra else "") + f"Sources:\n{src}\n"
    )


def write_markdown(
    summary_df: pd.DataFrame,
    path: str | Path,
    sources: list[str],
    across: seeds.Across | None = None,
    extra: str = "",
) -> Path:
    write_text_atomic(path, summary_markdown(summary_df, sources, across, extra))
    return Path(path)
