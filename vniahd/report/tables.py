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
from vniahd.report import aggregate

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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    first = first_numeric_column(header)
    lines = [
        "| " + " | ".join(map(esc, header)) + " |",
        "|" + "|".join("---" if i < first else "--:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(summary_df: pd.DataFrame, sources: list[str]) -> str:
    wide = markdown_table(*wide_rows(summary_df))
    long = markdown_table(*long_rows(summary_df))
    src = "\n".join(f"- `{s}`" for s in sources)
    return (
        "# V-NIAH / V-NIAH-D summary\n\n"
        "Accuracy in percent with Wilson 95% confidence intervals; n = scored samples "
        "(cells for reference all_accuracies.json files).\n\n"
        f"{wide}\n\n"
        "## Per benchmark, with near and far halves of the lengths\n\n"
        "Near = the shorter ⌈L/2⌉ of the L haystack lengths (in frames), far = the rest.\n\n"
        f"{long}\n\n"
        f"Sources:\n{src}\n"
    )


def write_markdown(summary_df: pd.DataFrame, path: str | Path, sources: list[str]) -> Path:
    write_text_atomic(path, summary_markdown(summary_df, sources))
    return Path(path)
