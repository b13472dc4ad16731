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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.records import RESULT_KEYS, check_result
from vniahd.files import sha256_file

#: Keys every results line must carry: the evaluator's contract, :data:`vniahd.records.RESULT_KEYS`.
REQUIRED_KEYS = RESULT_KEYS
#: Columns of the records table, in order.
COLUMNS = (
    "model", "model_spec", "variant", "scoring", "schedule", "length", "depth", "depth_pct",
    "needle_id", "sample_id", "correct", "tokens_per_frame", "num_tokens", "source",
)
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
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``-`` (for file names)."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "-" for c in str(text))
    out = out.strip("-.")
    return out or "unnamed"


def _where(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else str(path)


def _number(value: Any, key: str, path: Path, line: int, *, integer: bool = False) -> float:
    """``value`` as a finite number, or a VniahdError naming the key, file and line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VniahdError(f"{_where(path, line)}: {key!r} must be a finite number, got {value!r}; "
                          "fix or delete that line")
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

    As in :mod:`vniahd.evaluate.results`, an unparsable *last* line is a torn write from a run
    killed (or still running) mid-line: it is skipped and a note is added to ``notes``.
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
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
                    notes.append(f"{path.name}, line {line_no}: torn last line skipped (run "
                                 "interrupted or still running)")
                continue
            raise VniahdError(
                f"{_where(path, line_no)}: not valid JSON ({exc.msg}) and not the last line, so "
                "not a torn write; fix or delete that line") from None
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
        raise VniahdError(f"results directory {path} does not exist; pass a directory written by "
                          "'vniahd eval' or an all_accuracies.json file")
    shards = sorted(path.glob("results*.jsonl")) if shards is None else shards
    if not shards:
        raise VniahdError(f"{path} has no results*.jsonl; pass a directory written by "
                          "'vniahd eval' (or a reference all_accuracies.json)")
    source = Source(path=str(path.resolve()), kind="results")
    rows: list[dict] = []
    for shard in shards:
        shard_rows = read_jsonl(shard, source.notes)
        for r in shard_rows:
            r["source"] = source.path
        rows.extend(shard_rows)
        source.files[shard.name] = sha256_file(shard)
    run_path = path / "run.json"
    if run_path.is_file():
        try:
            source.run = json.loads(run_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise VniahdError(f"{_where(run_path, exc.lineno)}: not valid JSON ({exc.msg}); "
                              "restore run.json or rerun the evaluation") from None
        source.files["run.json"] = sha256_file(run_path)
    else:
        source.notes.append("run.json is missing: model and variant details come from the results lines")
    if not rows:
        raise VniahdError(f"{path}: the results*.jsonl files hold no results yet; run or finish "
                          "'vniahd eval' first")
    df = pd.DataFrame(rows)
    before = len(df)
    df = df.drop_duplicates(subset=["sample_id", "model_spec", "variant", "scoring", "schedule"],
                            keep="last")
    if len(df) < before:
        source.notes.append(f"{before - len(df)} duplicate result line(s) counted once (last kept)")
    source.num_records = len(df)
    return df, source


def _json_list_items(text: str, path: Path) -> list[tuple[Any, int]]:
    """Parse a top-level JSON list, returning each element with the line it starts on."""
    decoder = json.JSONDecoder()

    def fail(msg: str, pos: int) -> VniahdError:
        return VniahdError(f"{_where(path, text.count(chr(10), 0, pos) + 1)}: {msg}; expected a "
                           'JSON list of {"Num. Frame", "Frame Depth", "Score"} objects')

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
        raise VniahdError(f"reference results file {path} does not exist; pass an "
                          "all_accuracies.json written by the V-NIAH scripts")
    items = _json_list_items(path.read_text(encoding="utf-8"), path)
    if not items:
        raise VniahdError(f"{path}: the list is empty; nothing to plot")
    if variant is None:
        variant = path.parent.name if path.name == REFERENCE_NAME else path.stem
    rows, depths = [], []
    for obj, line in items:
        if not isinstance(obj, dict):
            raise VniahdError(f"{_where(path, line)}: expected an object, got {type(obj).__name__}")
        missing = [k for k in REFERENCE_KEYS if k not in obj]
        if missing:
            raise VniahdError(f"{_where(path, line)}: entry is missing {', '.join(map(repr, missing))}"
                              "; every entry needs \"Num. Frame\", \"Frame Depth\" and \"Score\"")
        frames = _number(obj["Num. Frame"], "Num. Frame", path, line, integer=True)
        depth = _number(obj["Frame Depth"], "Frame Depth", path, line)
        score = obj["Score"]
        score = float(score) if isinstance(score, bool) else _number(score, "Score", path, line)
        if not 0.0 <= score <= 1.0 or frames <= 0 or depth < 0:
            raise VniahdError(f"{_where(path, line)}: need Score in [0, 1], Num. Frame > 0 and "
                              f"Frame Depth >= 0; got {obj!r}")
        depths.append(depth)
        rows.append({"length": int(frames), "depth": depth, "correct": score, "line": line})
    # The scripts write percents (0..100); a file whose depths are all <= 1 is in fractions.
    scale = 1.0 if max(depths) <= 1.0 else 100.0
    spec = f"{model}"
    for r in rows:
        r["depth"] = r["depth"] / scale
        if r["depth"] > 1.0:
            raise VniahdError(f"{_where(path, r['line'])}: Frame Depth {r['depth'] * scale} is above "
                              "100 percent")
        r.update(model=model_short_name(spec), model_spec=spec, variant=variant, scoring="reference",
                 schedule=schedule, needle_id="", sample_id=f"line{r.pop('line')}",
                 tokens_per_frame=float(tokens_per_frame), num_tokens=math.nan,
                 source=str(path.resolve()))
    source = Source(path=str(path.resolve()), kind="reference",
                    files={path.name: sha256_file(path)}, num_records=len(rows))
    source.notes.append(
        f"reference file: Frame Depth read as {'fractions' if scale == 1 else 'percent'}; each entry "
        "is one cell score, so n counts cells (a conservative interval); schedule unknown; "
        f"{tokens_per_frame:g} tokens per frame assumed")
    return pd.DataFrame(rows), source


def load_inputs(paths: Iterable[str | Path]) -> Loaded:
    """Load every input: a results directory, an ``all_accuracies.json``, or a directory holding one.

    The same path given twice is read once.
    """
    frames, sources, seen = [], [], set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise VniahdError(f"results path {p} does not exist; pass results directories written by "
                              "'vniahd eval' or all_accuracies.json files")
        key = p.resolve()
        if key in seen:
            continue
        seen.add(key)
        if p.is_file():
            df, src = (load_reference_accuracies(p) if p.suffix == ".json"
                       else load_results_dir(p.parent, shards=[p]))
        elif any(p.glob("results*.jsonl")):
            df, src = load_results_dir(p)
        elif (p / REFERENCE_NAME).is_file():
            df, src = load_reference_accuracies(p / REFERENCE_NAME)
        else:
            raise VniahdError(f"{p} has neither results*.jsonl nor {REFERENCE_NAME}; pass a "
                              "directory written by 'vniahd eval' or a reference results file")
        frames.append(df)
        sources.append(src)
    if not frames:
        raise VniahdError("no results given; pass at least one results directory")
    records = pd.concat(frames, ignore_index=True)
    records["depth_pct"] = (records["depth"] * 100).round(6)
    return Loaded(records=records[list(COLUMNS)], sources=sources)
