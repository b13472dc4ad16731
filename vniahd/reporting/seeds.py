"""A verdict across seeds (or checkpoints): per-replicate means, t-intervals, drops, paired differences.

A *replicate* is one trained model: one (model spec, model fingerprint). Replicates are grouped
into a *family* that the table summarises:

- ``across="seeds"``: a family is one model spec with its seed taken out. The tiny model's seed
  is in its spec (``tiny?seed=1&steps=500`` → family ``tiny?steps=500``, seed 1; plain ``tiny`` is
  seed 0, :class:`vniahd.training.train.TrainConfig`'s default), or else in run.json's model record
  (``model.tiny.train_config.seed``, or ``model.seed``). A model with no seed (``hf:``,
  ``random:``) is a family of its own with one replicate.
- ``across="models"``: every model is a replicate of one family (checkpoints compared as if they
  were seeds of one recipe) — for a user comparing checkpoints.
- ``across="auto"`` (the report's default): ``seeds`` when some family has two or more seeds,
  else nothing. ``across="none"``: nothing.

Statistics (all in accuracy points, i.e. percent):

- A replicate's value on a benchmark is its mean accuracy over every scored sample (pooled over
  cells), as in the summary table.
- The across-seed mean is the mean of the per-replicate values; its 95% interval is a Student-t
  interval over those values (:func:`vniahd.reporting.stats.t_interval`), so it includes the
  between-seed variation; its ends are clipped to 0..100. With one replicate there is no
  between-seed interval.
- The V-NIAH → V-NIAH-D drop is, per replicate, V-NIAH accuracy minus V-NIAH-D accuracy
  (positive = the distractors cost accuracy), with the same t-interval over replicates that have
  both.
- A paired comparison (variant − baseline) is, per replicate that has both, the difference of
  their accuracies on one benchmark; a t-interval over those differences; *consistent in k of
  n* counts the replicates whose difference has the sign of the mean difference. A difference is
  called only when its interval excludes zero ("no difference shown" otherwise, and always with a
  single replicate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.reporting import aggregate
from vniahd.reporting.sources import Source, model_short_name
from vniahd.reporting.stats import t_interval

ACROSS = ("auto", "seeds", "models", "none")
#: The tiny model's seed when its spec names none (TrainConfig.seed's default).
TINY_DEFAULT_SEED = 0
#: The variant paired comparisons are made against when none is given (the paper's baseline).
DEFAULT_BASELINE = "mrope"


def split_seed(spec: str) -> tuple[str, int | None]:
    """(the spec without its seed, the seed) from a ``name?key=value&…`` spec; seed None if absent."""
    base, sep, query = str(spec).partition("?")
    if not sep:
        return base, None
    params = parse_qsl(query, keep_blank_values=True)
    seed: int | None = None
    rest = []
    for k, v in params:
        if k == "seed" and v.strip().lstrip("-").isdigit():
            seed = int(v)
        else:
            rest.append(f"{k}={v}")
    return base + ("?" + "&".join(rest) if rest else ""), seed


def run_seed(run: dict | None) -> int | None:
    """The seed in run.json's model record (``model.tiny.train_config.seed`` or ``model.seed``)."""
    model = run.get("model") if isinstance(run, dict) else None
    if not isinstance(model, dict):
        return None
    for value in (
        ((model.get("tiny") or {}).get("train_config") or {}).get("seed")
        if isinstance(model.get("tiny"), dict)
        else None,
        model.get("seed"),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def seed_of(spec: str, run: dict | None = None) -> int | None:
    """A model's seed: from its spec, else run.json's model record, else the tiny default."""
    base, seed = split_seed(spec)
    if seed is not None:
        return seed
    seed = run_seed(run)
    if seed is not None:
        return seed
    return TINY_DEFAULT_SEED if base.partition("?")[0] == "tiny" else None


@dataclass
class Row:
    """One (family, variant, scoring, benchmark) of the across-seed table."""

    family: str
    variant: str
    scoring: str
    schedule: str
    dataset: str
    benchmark: str
    values: list[tuple[str, float]]  # (replicate label, accuracy in points), replicate order
    mean: float
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass
class Drop:
    """V-NIAH minus one distractor benchmark, per replicate, for one (family, variant, scoring)."""

    family: str
    variant: str
    scoring: str
    benchmark: str  # the distractor benchmark's label
    values: list[tuple[str, float]]
    mean: float
    lo: float
    hi: float


@dataclass
class Pair:
    """variant − baseline on one benchmark, per replicate."""

    family: str
    variant: str
    baseline: str
    scoring: str
    benchmark: str
    values: list[tuple[str, float]]
    mean: float
    lo: float
    hi: float
    consistent: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def called(self) -> bool:
        """The interval excludes zero (never with fewer than two replicates)."""
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)


@dataclass
class Across:
    """Everything the across-seed sections show."""

    mode: str  # "seeds" or "models"
    rows: list[Row]
    drops: list[Drop]
    pairs: list[Pair]
    baseline: str | None
    families: list[str] = field(default_factory=list)
    scorings: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "seed" if self.mode == "seeds" else "model"


def replicate_values(records: pd.DataFrame, sources: list[Source], mode: str) -> pd.DataFrame:
    """One row per (family, replicate, variant, scoring, benchmark): its mean accuracy in points.

    Columns: family, replicate, replicate_label, rep_order, variant, scoring, schedule, dataset,
    benchmark, value.
    """
    runs = {s.path: s.run for s in sources}
    models = records[["model", "model_spec", "model_fp", "source"]].drop_duplicates(
        subset=["model_spec", "model_fp"]
    )
    info: dict[tuple[str, str], tuple[str, str, tuple]] = {}
    for _, m in models.iterrows():
        spec, fp = str(m["model_spec"]), str(m["model_fp"])
        if mode == "models":
            info[(spec, fp)] = ("models", str(m["model"]), (0, str(m["model"])))
            continue
        seed = seed_of(spec, runs.get(str(m["source"])))
        if seed is None:
            info[(spec, fp)] = (str(m["model"]), "no seed", (1, 0))
        else:
            family = model_short_name(split_seed(spec)[0])
            info[(spec, fp)] = (family, f"s{seed}", (0, seed))
    # Two weights under one family and seed label (e.g. retrained elsewhere): tell them apart.
    seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for model_key, (family, lab, _) in info.items():
        seen.setdefault((family, lab), []).append(model_key)
    for (_family, lab), keys in seen.items():
        if len(keys) > 1:
            for spec, fp in keys:
                f, _lab, order = info[(spec, fp)]
                info[(spec, fp)] = (f, f"{lab} ({fp[:8] or 'no fingerprint'})", order + (fp,))
    rows = []
    for key, g in aggregate.groups(records):
        family, lab, order = info[key.model]
        rows.append(
            {
                "family": family,
                "replicate": f"{key.model_spec}\0{key.model_fp}",
                "replicate_label": lab,
                "rep_order": order,
                "variant": key.variant,
                "scoring": key.scoring,
                "schedule": key.schedule,
                "dataset": key.dataset,
                "benchmark": aggregate.label(g, "benchmark"),
                "value": 100.0 * float(g["correct"].mean()),
            }
        )
    return pd.DataFrame(rows)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in replicate order (seed 0, 1, 2, …; models as first seen)."""
    order = sorted(range(len(df)), key=lambda i: df["rep_order"].iloc[i])
    return df.iloc[order]


def across(
    records: pd.DataFrame, sources: list[Source], mode: str = "auto", baseline: str | None = None
) -> Across | None:
    """The across-seed (``mode="seeds"``) or across-model (``"models"``) view; None when ``mode``
    is ``none``, or ``auto`` and no family has two seeds. ``baseline``: the variant of the paired
    comparisons (default :data:`DEFAULT_BASELINE` when present; none otherwise)."""
    if mode not in ACROSS:
        raise VniahdError(f"unknown --across {mode!r}; use one of {', '.join(ACROSS)}")
    if mode == "none":
        return None
    reps = replicate_values(records, sources, "models" if mode == "models" else "seeds")
    if mode == "auto":
        seeded = reps[reps["replicate_label"] != "no seed"]
        if seeded.empty or seeded.groupby("family")["replicate"].nunique().max() < 2:
            return None
        mode = "seeds"
    variants = list(dict.fromkeys(records["variant"]))
    if baseline is None and DEFAULT_BASELINE in variants:
        baseline = DEFAULT_BASELINE
    families = list(dict.fromkeys(reps["family"]))
    variant_order = {v: i for i, v in enumerate(variants)}
    reps = reps.assign(
        _f=reps["family"].map(families.index),
        _v=reps["variant"].map(variant_order),
    )
    # Benchmarks as everywhere else: V-NIAH, V-NIAH-D, then the others (by label, numbers by value).
    benches = sorted(
        set(zip(reps["schedule"], reps["benchmark"])),
        key=lambda sb: (aggregate.schedule_order(sb[0]), aggregate.natural_key(sb[1])),
    )
    reps["_b"] = [benches.index(sb) for sb in zip(reps["schedule"], reps["benchmark"])]
    keys = ["family", "variant", "scoring", "schedule", "dataset", "benchmark"]
    rows: list[Row] = []
    first = reps.sort_values(["_f", "_v", "scoring", "_b"], kind="stable")
    for k, g in first.groupby(keys, sort=False):
        g = _ordered(g)
        vals = list(zip(g["replicate_label"], g["value"]))
        mean, lo, hi = t_interval([v for _, v in vals])
        lo, hi = (max(0.0, lo), min(100.0, hi)) if vals[1:] else (lo, hi)  # accuracy stays in 0..100
        family, variant, scoring, schedule, dataset, bench = map(str, k)
        rows.append(Row(family, variant, scoring, schedule, dataset, bench, vals, mean, lo, hi))
    drops: list[Drop] = []
    for (family, variant, scoring), g in first.groupby(["family", "variant", "scoring"], sort=False):
        plain = g[g["schedule"] == "none"]
        if plain["dataset"].nunique() != 1:
            continue  # no V-NIAH, or several: which one a drop is from would be a guess
        base = dict(zip(plain["replicate"], plain["value"]))
        for (_sched, _ds, bench), d in g[g["schedule"].map(aggregate.is_distractor_schedule)].groupby(
            ["schedule", "dataset", "benchmark"], sort=False
        ):
            d = _ordered(d[d["replicate"].isin(base)])
            vals = [(lab, base[r] - v) for lab, r, v in zip(d["replicate_label"], d["replicate"], d["value"])]
            if vals:
                mean, lo, hi = t_interval([v for _, v in vals])
                drops.append(Drop(str(family), str(variant), str(scoring), str(bench), vals, mean, lo, hi))
    pairs: list[Pair] = []
    if baseline is not None:
        bench_keys = ["family", "scoring", "schedule", "dataset", "benchmark"]
        for bk, g in first.groupby(bench_keys, sort=False):
            b = g[g["variant"] == baseline]
            if b.empty:
                continue
            base = dict(zip(b["replicate"], b["value"]))
            for variant, d in g[g["variant"] != baseline].groupby("variant", sort=False):
                d = _ordered(d[d["replicate"].isin(base)])
                vals = [
                    (lab, v - base[r]) for lab, r, v in zip(d["replicate_label"], d["replicate"], d["value"])
                ]
                if not vals:
                    continue
                mean, lo, hi = t_interval([v for _, v in vals])
                sign = (mean > 0) - (mean < 0)
                consistent = sum(1 for _, v in vals if (v > 0) - (v < 0) == sign)
                pairs.append(
                    Pair(
                        str(bk[0]),
                        str(variant),
                        baseline,
                        str(bk[1]),
                        str(bk[4]),
                        vals,
                        mean,
                        lo,
                        hi,
                        consistent,
                    )
                )
        order = {v: i for i, v in enumerate(variants)}
        pairs.sort(key=lambda p: (families.index(p.family), p.scoring, order[p.variant]))
    return Across(
        mode=mode,
        rows=rows,
        drops=drops,
        pairs=pairs,
        baseline=baseline,
        families=families,
        scorings=list(dict.fromkeys(reps["scoring"])),
    )


def points(v: float, signed: bool = False) -> str:
    if v is None or math.isnan(v):
        return "–"
    return f"{v:+.1f}" if signed else f"{v:.1f}"


def interval_text(mean: float, lo: float, hi: float, n: int, unit: str, signed: bool = False) -> str:
    """``87.4 [83.1, 91.7]``, or ``87.4 (one seed, no between-seed interval)``."""
    if n < 2 or math.isnan(lo):
        return f"{points(mean, signed)} (one {unit}, no between-{unit} interval)"
    return f"{points(mean, signed)} [{points(lo, signed)}, {points(hi, signed)}]"


def per_replicate_text(values: list[tuple[str, float]], signed: bool = False) -> str:
    """``s0 87.4 · s1 85.5 · s2 90.1``."""
    return " · ".join(f"{lab} {points(v, signed)}" for lab, v in values)


def sentence(p: Pair, unit: str, with_scoring: bool = False, with_family: bool = False) -> str:
    """``videorope − mrope on V-NIAH-D: +3.2 points [1.0, 5.4]; consistent in 3 of 3 seeds —
    videorope higher`` (or ``— no difference shown``)."""
    where = p.benchmark + (f", {p.scoring} scoring" if with_scoring else "")
    where = (f"{p.family} · " if with_family else "") + where
    if p.n < 2 or math.isnan(p.lo):
        interval = f"{points(p.mean, True)} points (one {unit}, no between-{unit} interval)"
    else:
        interval = f"{points(p.mean, True)} points [{points(p.lo, True)}, {points(p.hi, True)}]"
    units = f"{unit}s" if p.n != 1 else unit
    if p.called:
        verdict = f"{p.variant} {'higher' if p.mean > 0 else 'lower'}"
    else:
        verdict = "no difference shown"
    return (
        f"{p.variant} − {p.baseline} on {where}: {interval}; consistent in {p.consistent} of "
        f"{p.n} {units} — {verdict}"
    )
