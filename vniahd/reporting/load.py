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
as duplicates of, reference-prompt results. When several datasets share a schedule,
``dataset_tag`` tells them apart (``period 4``, or the fingerprint's first 8 digits) and
``benchmark`` is the readable label (``V-NIAH-D [period 4]``); when several models share a short
name, ``model`` gets a tag too (``Qwen2-VL-7B (1a2b3c4d)``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.files import sha256_bytes, sha256_file
from vniahd.records import RESULT_KEYS, RunManifest, check_result

#: Keys every results line must carry: the evaluator's contract, :data:`vniahd.records.RESULT_KEYS`.
REQUIRED_KEYS = RESULT_KEYS
#: Columns of the records table, in order.
COLUMNS = (
    "model",
    "model_spec",
    "model_fp",
    "variant",
    "scoring",
    "schedule",
    "dataset",
    "dataset_tag",
    "benchmark",
    "length",
    "depth",
    "depth_pct",
    "needle_id",
    "sample_id",
    "correct",
    "tokens_per_frame",
    "num_tokens",
    "source",
)
#: A result's identity across inputs: the same dataset, model, sample, variant and scoring.
RESULT_IDENTITY = ("dataset", "model_spec", "model_fp", "sample_id", "variant", "scoring")
#: Appended to the variant names of a results directory scored with ``--prompt native``.
NATIVE_PROMPT_TAG = "[native prompt]"
#: ``dataset`` of an input without a dataset fingerprint: its own path (never pooled).
SOURCE_PREFIX = "source:"
REFERENCE_NAME = "all_accuracies.json"
REFERENCE_KEYS = ("Num. Frame", "Frame Depth", "Score")
#: Tokens per frame of the reference protocol (252×448 frames; docs/reference-protocol.md).
REFERENCE_TOKENS_PER_FRAME = 144


@dataclass
class Source:
    """Where some records came from, for the report's provenance section."""

    path: str
    kind: str  # "results" or "reference"
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    run: dict | None = None  # run.json contents (results dirs only)
    num_records: int = 0
    notes: list[str] = field(default_factory=list)
    #: Dataset identity: the fingerprint from run.json, or ``source:<path>`` when there is none.
    dataset: str = ""
    #: Model fingerprint from run.json ("" when unknown).
    model_fp: str = ""
    #: Frames between distractors (run.json's dataset.period), when recorded.
    period: float | None = None


@dataclass
class Loaded:
    """All records from every input, plus one :class:`Source` per input."""

    records: pd.DataFrame
    sources: list[Source]


def model_short_name(spec: str) -> str:
    """A readable, filename-safe model name from a backend spec.

    ``hf:/path/to/Qwen2-VL-7B`` → ``Qwen2-VL-7B`` (last path component: the checkpoint's name);
    ``random:qwen2-vl`` → ``random-qwen2-vl``; anything outside ``[A-Za-z0-9._-]`` becomes ``-``.
    """
    spec = str(spec).strip()
    if spec.startswith("hf:"):
        tail = spec[3:].rstrip("/\\")
        spec = tail.replace("\\", "/").rsplit("/", 1)[-1] or tail or "hf"
    return safe_name(spec)


def safe_name(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._-]`` replaced by one ``-`` (for
    file names); never empty, never starting or ending in ``-`` or ``.``."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return out or "unnamed"


def _where(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else str(path)


def _number(value: Any, key: str, path: Path, line: int, *, integer: bool = False) -> float:
    """``value`` as a finite number, or a VniahdError naming the key, file and line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VniahdError(
            f"{_where(path, line)}: {key!r} must be a finite number, got {value!r}; fix or delete that line"
        )
    if integer and float(value) != int(value):
        raise VniahdError(f"{_where(path, line)}: {key!r} must be a whole number, got {value!r}")
    return float(value)


def _record_from_line(obj: Any, path: Path, line: int) -> dict:
    check_result(obj, _where(path, line))  # the evaluator's own contract (vniahd.records)
    correct = obj["correct"]
    depth = float(obj["depth"])
    length = int(obj["length"])
    tpf = obj.get("tokens_per_frame")
    ntok = obj.get("num_tokens")
    spec = str(obj["model"])
    return {
        "model": model_short_name(spec),
        "model_spec": spec,
        "variant": str(obj["variant"]),
        "scoring": str(obj["scoring"]),
        "schedule": str(obj["schedule"]),
        "length": int(length),
        "depth": depth,
        "needle_id": str(obj.get("needle_id", "")),
        "sample_id": str(obj.get("sample_id", f"line{line}")),
        "correct": float(bool(correct)),
        "tokens_per_frame": float(tpf) if isinstance(tpf, (int, float)) else math.nan,
        "num_tokens": float(ntok) if isinstance(ntok, (int, float)) else math.nan,
    }


def read_jsonl(path: Path, notes: list[str] | None = None) -> list[dict]:
    """Records of one results jsonl file; a malformed line raises a VniahdError naming it.

    As in :mod:`vniahd.evaluation.results.store`, an unparsable *last* line is a torn write from a run
    killed (or still running) mid-line: it is skipped and a note is added to ``notes``.
    """
    rows = []
    lines = _read_text(path).split("\n")
    last = max((i for i, t in enumerate(lines) if t.strip()), default=-1)
    for i, text in enumerate(lines):
        line_no = i + 1
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            if i == last:
                if notes is not None:
                    notes.append(
                        f"{path.name}, line {line_no}: torn last line skipped (run "
                        "interrupted or still running)"
                    )
                continue
            raise VniahdError(
                f"{_where(path, line_no)}: not valid JSON ({exc.msg}) and not the last line, so "
                "not a torn write; fix or delete that line"
            ) from None
        rows.append(_record_from_line(obj, path, line_no))
    return rows


def load_results_dir(path: str | Path, shards: list[Path] | None = None) -> tuple[pd.DataFrame, Source]:
    """Records of one evaluator results directory (all ``results*.jsonl`` shards + ``run.json``).

    ``shards`` narrows the read to some jsonl files of the directory. Several lines for the same
    (sample, model, variant, scoring, schedule) — e.g. a resumed run that rescored a sample — count
    once (the last one wins) and a note is recorded.
    """
    path = Path(path)
    if not path.is_dir():
        raise VniahdError(
            f"results directory {path} does not exist; pass a directory written by "
            "'vniahd eval' or an all_accuracies.json file"
        )
    shards = sorted(path.glob("results*.jsonl")) if shards is None else shards
    if not shards:
        raise VniahdError(
            f"{path} has no results*.jsonl; pass a directory written by "
            "'vniahd eval' (or a reference all_accuracies.json)"
        )
    source = Source(path=str(path.resolve()), kind="results")
    rows: list[dict] = []
    for shard in shards:
        shard_rows = read_jsonl(shard, source.notes)
        rows.extend(shard_rows)
        source.files[shard.name] = _sha256(shard)
    _read_run_json(path / "run.json", source)
    for r in rows:
        r.update(source=source.path, dataset=source.dataset, model_fp=source.model_fp)
    if ((source.run or {}).get("prompt_layout") or {}).get("name") == "native":
        # another experiment than the reference prompt's: never pooled or deduplicated with it
        for r in rows:
            r["variant"] = f"{r['variant']} {NATIVE_PROMPT_TAG}"
        source.notes.append(f"--prompt native: its variants are labelled '{NATIVE_PROMPT_TAG}'")
    if not rows:
        raise VniahdError(
            f"{path}: the results*.jsonl files hold no results yet; run or finish 'vniahd eval' first"
        )
    df = pd.DataFrame(rows)
    before = len(df)
    df = df.drop_duplicates(subset=["sample_id", "model_spec", "variant", "scoring", "schedule"], keep="last")
    if len(df) < before:
        source.notes.append(f"{before - len(df)} duplicate result line(s) counted once (last kept)")
    source.num_records = len(df)
    return df, source


def _read_text(path: Path) -> str:
    """A text file's contents, or one VniahdError naming it and why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VniahdError(
            f"{path} is not UTF-8 text; pass results written by 'vniahd eval' or an all_accuracies.json file"
        ) from None
    except IsADirectoryError:
        raise VniahdError(
            f"{path} is a directory, not a results file; rename it or pass the results files themselves"
        ) from None
    except OSError as exc:
        raise VniahdError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from None


def _sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise VniahdError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from None


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
        data = json.loads(_read_text(run_path))
    except json.JSONDecodeError as exc:
        raise VniahdError(
            f"{_where(run_path, exc.lineno)}: not valid JSON ({exc.msg}); "
            "restore run.json or rerun the evaluation"
        ) from None
    if not isinstance(data, dict):
        raise VniahdError(f"{run_path} is not a JSON object; restore run.json or rerun the evaluation")
    source.run = data
    source.files["run.json"] = _sha256(run_path)
    dataset_fp, model_fp = RunManifest(data).origin()
    source.dataset = str(dataset_fp) if dataset_fp else own
    source.model_fp = str(model_fp) if model_fp else ""
    source.period = _period(data.get("dataset"))
    if not dataset_fp:
        source.notes.append(
            "run.json names no dataset fingerprint: these results are pooled with no other input"
        )


def _json_list_items(text: str, path: Path) -> list[tuple[Any, int]]:
    """Parse a top-level JSON list, returning each element with the line it starts on."""
    decoder = json.JSONDecoder()

    def fail(msg: str, pos: int) -> VniahdError:
        return VniahdError(
            f"{_where(path, text.count(chr(10), 0, pos) + 1)}: {msg}; expected a "
            'JSON list of {"Num. Frame", "Frame Depth", "Score"} objects'
        )

    n, i = len(text), 0

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    i = skip(i)
    if i >= n or text[i] != "[":
        raise fail("not a JSON list", i)
    i = skip(i + 1)
    items: list[tuple[Any, int]] = []
    if i < n and text[i] == "]":
        return items
    while True:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise fail(f"not valid JSON ({exc.msg})", exc.pos) from None
        items.append((obj, text.count("\n", 0, i) + 1))
        i = skip(end)
        if i < n and text[i] == ",":
            i = skip(i + 1)
            continue
        if i < n and text[i] == "]":
            if skip(i + 1) != n:
                raise fail("unexpected text after the list", skip(i + 1))
            return items
        raise fail("expected ',' or ']'", i)


def load_reference_accuracies(
    path: str | Path,
    *,
    variant: str | None = None,
    model: str = "reference",
    schedule: str = "unknown",
    tokens_per_frame: float = REFERENCE_TOKENS_PER_FRAME,
) -> tuple[pd.DataFrame, Source]:
    """Records of a reference ``all_accuracies.json`` (see the module docstring for the mapping)."""
    path = Path(path)
    if path.is_dir():
        path = path / REFERENCE_NAME
    if not path.is_file():
        raise VniahdError(
            f"reference results file {path} does not exist; pass an "
            "all_accuracies.json written by the V-NIAH scripts"
        )
    if path.name == "run.json":
        raise VniahdError(
            f"{path} is a results directory's run.json, not a results file; pass the "
            f"directory {path.parent} instead"
        )
    items = _json_list_items(_read_text(path), path)
    if not items:
        raise VniahdError(f"{path}: the list is empty; nothing to plot")
    if variant is None:
        variant = path.parent.name if path.name == REFERENCE_NAME else path.stem
    rows: list[dict[str, Any]] = []
    depths: list[float] = []
    for obj, line in items:
        if not isinstance(obj, dict):
            raise VniahdError(f"{_where(path, line)}: expected an object, got {type(obj).__name__}")
        missing = [k for k in REFERENCE_KEYS if k not in obj]
        if missing:
            raise VniahdError(
                f"{_where(path, line)}: entry is missing {', '.join(map(repr, missing))}"
                '; every entry needs "Num. Frame", "Frame Depth" and "Score"'
            )
        frames = _number(obj["Num. Frame"], "Num. Frame", path, line, integer=True)
        depth = _number(obj["Frame Depth"], "Frame Depth", path, line)
        score = obj["Score"]
        score = float(score) if isinstance(score, bool) else _number(score, "Score", path, line)
        if not 0.0 <= score <= 1.0 or frames <= 0 or depth < 0:
            raise VniahdError(
                f"{_where(path, line)}: need Score in [0, 1], Num. Frame > 0 and "
                f"Frame Depth >= 0; got {obj!r}"
            )
        depths.append(depth)
        rows.append({"length": int(frames), "depth": depth, "correct": score, "line": line})
    # The scripts write percents (0..100); a file whose depths are all <= 1 is in fractions.
    scale = 1.0 if max(depths) <= 1.0 else 100.0
    spec = f"{model}"
    for r in rows:
        r["depth"] = r["depth"] / scale
        if r["depth"] > 1.0:
            raise VniahdError(
                f"{_where(path, r['line'])}: Frame Depth {r['depth'] * scale} is above 100 percent"
            )
        r.update(
            model=model_short_name(spec),
            model_spec=spec,
            variant=variant,
            scoring="reference",
            schedule=schedule,
            needle_id="",
            sample_id=f"line{r.pop('line')}",
            tokens_per_frame=float(tokens_per_frame),
            num_tokens=math.nan,
            source=str(path.resolve()),
            dataset=f"{SOURCE_PREFIX}{path.resolve()}",
            model_fp="",
        )
    source = Source(
        path=str(path.resolve()),
        kind="reference",
        files={path.name: _sha256(path)},
        num_records=len(rows),
        dataset=f"{SOURCE_PREFIX}{path.resolve()}",
    )
    source.notes.append(
        f"reference file: Frame Depth read as {'fractions' if scale == 1 else 'percent'}; each entry "
        "is one cell score, so n counts cells (a conservative interval); schedule unknown; "
        f"{tokens_per_frame:g} tokens per frame assumed"
    )
    return pd.DataFrame(rows), source


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
        elif any(p.glob("results*.jsonl")):
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
    _note_settings_that_differ(sources)
    records["depth_pct"] = (records["depth"] * 100).round(6)
    _label(records, sources)
    return Loaded(records=records[list(COLUMNS)].reset_index(drop=True), sources=sources)


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


def _tags(ids: list[str], candidates: dict[str, list[str]]) -> dict[str, str]:
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


def _label(records: pd.DataFrame, sources: list[Source]) -> None:
    """Add ``dataset_tag`` and ``benchmark``, and make ``model`` distinct per model identity."""
    from vniahd.reporting.aggregate import benchmark_label  # aggregate imports this module

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
        tags = _tags(datasets, candidates)
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
        tags = _tags(ids, candidates)
        for spec, fp, i in zip(g["model_spec"], g["model_fp"], ids):
            mask = (records["model_spec"] == spec) & (records["model_fp"] == fp)
            records.loc[mask, "model"] = f"{short} ({tags[i]})"
