"""Labels that tell report inputs apart where names alone would merge them: ``dataset_tag`` and
``benchmark`` per dataset, and a tagged ``model`` per model identity (:mod:`vniahd.reporting.load`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vniahd.files import sha256_bytes
from vniahd.reporting.aggregate import benchmark_label
from vniahd.reporting.sources import SOURCE_PREFIX, Source


def distinct_tags(ids: list[str], candidates: dict[str, list[str]]) -> dict[str, str]:
    """A distinct tag per id: the first of its candidates (most readable first) that no other id
    shares at that rank, else the first 8 digits of a hash of the id (longer until distinct)."""
    out = {i: "" for i in ids}
    pending = list(ids)
    for rank in range(max((len(c) for c in candidates.values()), default=0)):
        tried = {i: (candidates.get(i) or [])[rank : rank + 1] for i in pending}
        counts: dict[str, int] = {}
        for c in tried.values():
            if c:
                counts[c[0]] = counts.get(c[0], 0) + 1
        for i, c in tried.items():
            if c and counts[c[0]] == 1:
                out[i] = c[0]
        pending = [i for i in pending if not out[i]]
    for width in (8, 16, 64):
        for i in ids:
            if not out[i] or list(out.values()).count(out[i]) > 1:
                out[i] = sha256_bytes(i)[:width]
        if len(set(out.values())) == len(ids):
            break
    return out


def label(records: pd.DataFrame, sources: list[Source]) -> None:
    """Add ``dataset_tag`` and ``benchmark``, and make ``model`` distinct per model identity."""
    by_dataset = {s.dataset: s for s in sources}
    records["dataset_tag"] = ""
    for schedule, g in records.groupby("schedule", sort=False):
        datasets = list(dict.fromkeys(g["dataset"]))
        if len(datasets) < 2:
            continue
        candidates: dict[str, list[str]] = {}
        for d in datasets:
            src = by_dataset.get(d)
            period = [f"period {src.period:g}"] if src is not None and src.period is not None else []
            if not d.startswith(SOURCE_PREFIX):
                candidates[d] = period + [f"dataset {d[:8]}", f"dataset {d[:16]}"]
            else:  # an input of its own: the directory (or the reference file's directory) name
                own = Path(d[len(SOURCE_PREFIX) :])
                own = own.parent if d.endswith(".json") else own
                candidates[d] = [own.name, f"{own.parent.name}/{own.name}"]
        tags = distinct_tags(datasets, candidates)
        mask = records["schedule"] == schedule
        records.loc[mask, "dataset_tag"] = records.loc[mask, "dataset"].map(tags)
    records["benchmark"] = [
        benchmark_label(s, t) for s, t in zip(records["schedule"], records["dataset_tag"])
    ]
    models = records[["model", "model_spec", "model_fp"]].drop_duplicates()
    for short, g in models.groupby("model", sort=False):
        if len(g) < 2:
            continue
        ids = [f"{spec}\0{fp}" for spec, fp in zip(g["model_spec"], g["model_fp"])]
        if len(set(g["model_spec"])) == len(g):  # distinct specs: a hash of the spec, as before
            candidates = {i: [sha256_bytes(i.split("\0")[0])[:8]] for i in ids}
        else:  # one spec, several weights: the fingerprint
            candidates = {i: [fp[:8], fp[:16]] if fp else [] for i, fp in zip(ids, g["model_fp"])}
        tags = distinct_tags(ids, candidates)
        for spec, fp, i in zip(g["model_spec"], g["model_fp"], ids):
            mask = (records["model_spec"] == spec) & (records["model_fp"] == fp)
            records.loc[mask, "model"] = f"{short} ({tags[i]})"
