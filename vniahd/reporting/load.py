"""Load evaluation results for reports: our results directories and reference ``all_accuracies.json``.

Two inputs become one tidy table of *records* (one row per scored sample, or per reference cell):

- A results directory written by the evaluator (docs/architecture.md, "Results directory"):
  ``results*.jsonl`` (one JSON object per line; per-rank shards are globbed) plus ``run.json``.
- A reference file from the existing V-NIAH / V-NIAH-D scripts: a JSON list of
  ``{"Num. Frame": int, "Frame Depth": number, "Score": number}``. The scripts write the depth as
  a percent (``round(depth * 100, -1)``); we accept a fraction too: if every depth in the file is
  ≤ 1 the file is read as fractions, otherwise as percents. Such a file has no model or variant,
  so the model is ``reference`` and the variant is the name of the directory holding the file
  (the scripts save ``<output>/<model_name>/all_accuracies.json``), or the file's stem when it is
  not called ``all_accuracies.json``. Its schedule is ``unknown`` (the file does not say whether it
  is V-NIAH or V-NIAH-D) and its tokens per frame are 144 (9×16 at 252×448) unless told otherwise.
  Each entry is one record whose ``correct`` is the cell's score (a fraction of needles).

Every malformed input raises :class:`~vniahd.errors.VniahdError` naming the file and line.

**Identity.** Results lines carry no fingerprints; each results directory's ``run.json``
(:class:`vniahd.records.RunManifest`, :meth:`~vniahd.records.RunManifest.origin`) gives the
dataset and model fingerprints of all its records (columns ``dataset`` and ``model_fp``). Reports
group by them, so two datasets whose schedules share a name (e.g. period 4 and period 199) never
merge into one cell, and two results directories of the same dataset, model and variant pool into
one group in which a (sample, variant, scoring) scored in both counts once (a note says so). An
input without a dataset fingerprint (a reference file, or a results directory without
``run.json``) keeps its own identity, ``source:<path>``: it is never pooled with another input.
Results scored with the family's own prompt layout (run.json ``prompt_layout.name`` = ``native``)
are another experiment than the reference prompt's: their variant names get
:data:`NATIVE_PROMPT_TAG` (``native [native prompt]``), so they are never pooled with, or counted
as duplicates of, reference-prompt results; results of the released harness's view
(``--attention-scope zigzag-local:W``) get ``[zigzag-local:W]`` the same way. When several
datasets share a schedule, ``dataset_tag`` tells them apart (``period 4``, or the fingerprint's
first 8 digits) and ``benchmark`` is the readable label (``V-NIAH-D [period 4]``); when several
models share a short name, ``model`` gets a tag too (``Qwen2-VL-7B (1a2b3c4d)``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.records import (
    RESULT_IDENTITY,
    RunManifest,
    result_files,
)
from vniahd.reporting.aggregate import benchmark_label, depth_ignored, is_distractor_schedule, task_schedule
from vniahd.reporting.labels import label
from vniahd.reporting.reference import REFERENCE_NAME, load_reference_accuracies
from vniahd.reporting.sources import (
    COLUMNS,
    SOURCE_PREFIX,
    Loaded,
    Source,
    file_sha256,
    model_short_name,
    read_text,
    where,
)
from vniahd.run_results import read_run_results

__all__ = [
    "COLUMNS",
    "Loaded",
    "Source",
    "load_inputs",
    "load_reference_accuracies",
    "load_results_dir",
    "model_short_name",
]

#: Appended to the variant names of a results directory scored with ``--prompt native``.
NATIVE_PROMPT_TAG = "[native prompt]"


def _record_from_line(obj: Any) -> dict:
    """One report record from a result line already checked (:func:`read_run_results`)."""
    correct = obj["correct"]
    depth = float(obj["depth"])
    length = int(obj["length"])
    tpf = obj.get("tokens_per_frame")
    ntok = obj.get("num_tokens")
    nframes = obj.get("num_frames")
    spec = str(obj["model"])
    task = obj.get("task")
    # a V-RULER task is its own benchmark; its inserted frames are needles, not distractors
    schedule = task_schedule(str(task), str(obj.get("placement") or "reference")) if task else obj["schedule"]
    return {
        "model": model_short_name(spec),
        "model_spec": spec,
        "variant": str(obj["variant"]),
        "scoring": str(obj["scoring"]),
        "schedule": str(schedule),
        "length": int(length),
        "depth": depth,
        "needle_id": str(obj.get("needle_id", "")),
        "sample_id": str(obj["sample_id"]),  # required of every checked line
        "correct": float(bool(correct)),
        "tokens_per_frame": float(tpf) if isinstance(tpf, (int, float)) else math.nan,
        "num_tokens": float(ntok) if isinstance(ntok, (int, float)) else math.nan,
        # the frames inserted besides the needle (num_frames = length + needle + distractors)
        "distractors": (
            0.0
            if task
            else float(nframes - length - 1)
            if isinstance(nframes, int) and not isinstance(nframes, bool)
            else math.nan
        ),
    }


def load_results_dir(path: str | Path, shards: list[Path] | None = None) -> tuple[pd.DataFrame, Source]:
    """Records of one evaluator results directory (all ``results*.jsonl`` shards + ``run.json``).

    ``shards`` narrows the read to some jsonl files of the directory. Every line must be a result
    of the run that run.json describes, and a result repeated verbatim counts once; a line of
    another run, or two different lines for one result, is an error naming the file and line
    (:func:`vniahd.run_results.read_run_results`, the evaluator's own rule).
    """
    path = Path(path)
    if not path.is_dir():
        raise VniahdError(
            f"results directory {path} does not exist; pass a directory written by "
            "'vniahd eval' or an all_accuracies.json file"
        )
    shards = result_files(path) if shards is None else shards
    if not shards:
        raise VniahdError(
            f"{path} has no results*.jsonl; pass a directory written by "
            "'vniahd eval' (or a reference all_accuracies.json)"
        )
    source = Source(path=str(path.resolve()), kind="results")
    _read_run_json(path / "run.json", source)
    # every line checked against run.json, as the evaluator's resume does (vniahd.run_results)
    run = RunManifest(source.run) if source.run is not None else None
    objs = read_run_results(path, run, files=shards, notes=source.notes)
    rows = [_record_from_line(obj) for obj in objs]
    for shard in shards:
        source.files[shard.name] = file_sha256(shard)
    for r in rows:
        r.update(source=source.path, dataset=source.dataset, model_fp=source.model_fp)
    if ((source.run or {}).get("prompt_layout") or {}).get("name") == "native":
        # another experiment than the reference prompt's: never pooled or deduplicated with it
        for r in rows:
            r["variant"] = f"{r['variant']} {NATIVE_PROMPT_TAG}"
        source.notes.append(f"--prompt native: its variants are labelled '{NATIVE_PROMPT_TAG}'")
    scope = (source.run or {}).get("attention_scope") or "full"
    if scope != "full":  # the released harness's view: another measurement, labelled apart
        for r in rows:
            r["variant"] = f"{r['variant']} [{scope}]"
        source.notes.append(
            f"--attention-scope {scope}: each answer row saw only its own process's chunks; "
            f"its variants are labelled '[{scope}]'"
        )
    if not rows:
        raise VniahdError(
            f"{path}: the results*.jsonl files hold no results yet; run or finish 'vniahd eval' first"
        )
    df = pd.DataFrame(rows)  # distinct already: read_run_results counts a repeated line once
    source.num_records = len(df)
    plain = plain_samples_note(df)
    if plain:
        source.notes.append(plain)
    return df, source


def plain_samples_note(df: pd.DataFrame) -> str:
    """A note when samples of a distractor schedule carry no distractor (too short for the
    period): they test plain V-NIAH, yet count under V-NIAH-D, as in the published protocol."""
    if "distractors" not in df:
        return ""
    parts = []
    for schedule, g in df.groupby("schedule", sort=True):
        if not is_distractor_schedule(str(schedule)):
            continue
        samples = g.drop_duplicates("sample_id")
        plain = samples[samples["distractors"] == 0]
        if len(plain):
            lengths = ", ".join(str(n) for n in sorted(set(plain["length"])))
            parts.append(
                f"{len(plain)} of {len(samples)} {benchmark_label(str(schedule))} samples "
                f"(lengths {lengths}) carry no distractor"
            )
    if not parts:
        return ""
    return (
        "; ".join(parts) + ": too short for the distractor period, they test plain V-NIAH but "
        "count under V-NIAH-D, as the published protocol counts them (generate warned; "
        "use longer lengths or a shorter --period to give every sample one)"
    )


def _period(dataset: Any) -> float | None:
    """run.json's dataset.period in frames (a number, or ``{"frames": …}``), if recorded."""
    period = dataset.get("period") if isinstance(dataset, dict) else None
    if isinstance(period, dict):
        period = period.get("frames")
    if isinstance(period, (int, float)) and not isinstance(period, bool) and math.isfinite(period):
        return float(period)
    return None


def _read_run_json(run_path: Path, source: Source) -> None:
    """Fill ``source``'s run, dataset identity, model fingerprint and period from ``run_path``."""
    own = f"{SOURCE_PREFIX}{source.path}"
    if not run_path.is_file():
        source.dataset = own
        source.notes.append(
            "run.json is missing: model and variant details come from the results "
            "lines, and with no dataset fingerprint these results are pooled with "
            "no other input"
        )
        return
    try:
        data = json.loads(read_text(run_path))
    except json.JSONDecodeError as exc:
        raise VniahdError(
            f"{where(run_path, exc.lineno)}: not valid JSON ({exc.msg}); "
            "restore run.json or rerun the evaluation"
        ) from None
    if not isinstance(data, dict):
        raise VniahdError(f"{run_path} is not a JSON object; restore run.json or rerun the evaluation")
    source.run = data
    source.files["run.json"] = file_sha256(run_path)
    dataset_fp, model_fp = RunManifest(data).origin()
    source.dataset = str(dataset_fp) if dataset_fp else own
    source.model_fp = str(model_fp) if model_fp else ""
    source.period = _period(data.get("dataset"))
    if not dataset_fp:
        source.notes.append(
            "run.json names no dataset fingerprint: these results are pooled with no other input"
        )


def load_inputs(paths: Iterable[str | Path]) -> Loaded:
    """Load every input: a results directory, an ``all_accuracies.json``, or a directory holding one.

    The same path given twice is read once. Results of the same dataset and model from several
    inputs pool; a result present in more than one of them (same dataset, model, sample, variant
    and scoring) counts once — the first input's — and the later input's notes say so. Labels that
    tell datasets (and models) apart are added where names alone would merge them (module
    docstring).
    """
    frames: list[pd.DataFrame] = []
    sources: list[Source] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise VniahdError(
                f"results path {p} does not exist; pass results directories written by "
                "'vniahd eval' or all_accuracies.json files"
            )
        key = p.resolve()
        if key in seen:
            continue
        seen.add(key)
        if p.is_file():
            df, src = (
                load_reference_accuracies(p)
                if p.suffix == ".json"
                else load_results_dir(p.parent, shards=[p])
            )
        elif result_files(p):
            df, src = load_results_dir(p)
        elif (p / REFERENCE_NAME).is_file():
            df, src = load_reference_accuracies(p / REFERENCE_NAME)
        else:
            raise VniahdError(
                f"{p} has neither results*.jsonl nor {REFERENCE_NAME}; pass a "
                "directory written by 'vniahd eval' or a reference results file"
            )
        df["input"] = len(sources)
        frames.append(df)
        sources.append(src)
    if not frames:
        raise VniahdError("no results given; pass at least one results directory")
    records = pd.concat(frames, ignore_index=True)
    records = _count_duplicates_once(records, sources)
    records = _one_row_where_depth_is_ignored(records, sources)
    _note_settings_that_differ(sources)
    records["depth_pct"] = (records["depth"] * 100).round(6)
    label(records, sources)
    return Loaded(records=records[list(COLUMNS)].reset_index(drop=True), sources=sources)


def _one_row_where_depth_is_ignored(records: pd.DataFrame, sources: list[Source]) -> pd.DataFrame:
    """Counting and ordering under the released placement repeat the same input at every depth:
    keep the first depth's results (the distinct trials) and say so, rather than count each
    trial once per depth (its interval would be that many times too narrow)."""
    ignored = records["schedule"].map(depth_ignored)
    if not ignored.any():
        return records
    # per variant and scoring: one that never reached the first depth keeps its own first
    first = records[ignored].groupby(["input", "schedule", "variant", "scoring"])["depth"].transform("min")
    drop = ignored.copy()
    drop[ignored] = records.loc[ignored, "depth"] != first
    for (i, schedule), d in records[drop].groupby(["input", "schedule"]):
        src = sources[int(i)]
        mine = (records["input"] == i) & (records["schedule"] == schedule)
        kept = int((mine & ~drop).sum())
        src.notes.append(
            f"{benchmark_label(schedule)}: the released placement ignores depth, so its "
            f"{records.loc[mine, 'depth'].nunique()} depth rows are the same inputs; the report keeps "
            f"the first depth's {kept} results and leaves out {len(d)} repeats (generate with "
            "--placement depth to use depth)"
        )
        src.num_records -= len(d)
    return records[~drop]


def _count_duplicates_once(records: pd.DataFrame, sources: list[Source]) -> pd.DataFrame:
    """Drop results that an earlier input already holds (:data:`RESULT_IDENTITY`), noting it."""
    keys = list(RESULT_IDENTITY)
    # Only across inputs: within one, load_results_dir already kept one line per result (and a
    # reference file's cells may share a line).
    first = records.groupby(keys, sort=False)["input"].transform("first")
    dup = records["input"] != first
    if not dup.any():
        return records
    kept = records[~dup].drop_duplicates(subset=keys, keep="first")[keys + ["input", "correct"]]
    dropped = records[dup].merge(kept, on=keys, how="left", suffixes=("", "_kept"))
    for (later, earlier), d in dropped.groupby(["input", "input_kept"], sort=True):
        n, differ = len(d), int((d["correct"] != d["correct_kept"]).sum())
        a, b = sources[int(earlier)], sources[int(later)]
        disagree = f", {differ} of them scored differently" if differ else ""
        b.notes.append(
            f"{n} result(s) also in {a.path} (same dataset, model, sample, variant and "
            f"scoring{disagree}): counted once, from {a.path}"
        )
        b.num_records -= n
    return records[~dup]


def _note_settings_that_differ(sources: list[Source]) -> None:
    """Results dirs pooled by (dataset, model) whose run.json differs in the other identity
    fields (prompt, frame mode, generation settings): a note, since they still pool."""
    first_of: dict[tuple[str, str], Source] = {}
    for src in sources:
        if src.run is None or src.dataset.startswith(SOURCE_PREFIX):
            continue
        origin = (src.dataset, src.model_fp)
        other = first_of.setdefault(origin, src)
        if other is src or other.path == src.path:
            continue
        differ = [f for f, _ours, _theirs in RunManifest(src.run).mismatches(other.run or {})]
        if differ:
            src.notes.append(
                f"pooled with {other.path} (same dataset and model) although run.json "
                f"differs in {', '.join(differ)}; plot them separately if that matters"
            )
