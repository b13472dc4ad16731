"""Results directories: append-only ``results*.jsonl`` and ``run.json`` provenance.

Durability: every result line is written with one ``write`` + ``flush``, so a run killed at any
moment loses at most the sample in flight (what the process wrote is the kernel's, whatever
happens to the process). Lines reach the disk itself (``fsync``) at most :data:`FSYNC_SECONDS`
apart and when the writer closes, so a machine that loses power loses at most that much work,
which a resume recomputes bit-identically — an fsync per line cost ~10 % of a CPU run of small
samples (``bench/eval_prefix.py``). A kill in the middle of a write can leave a torn last line (no
newline, or half a JSON object); readers drop it, and the writer cuts it off before appending so
the next line starts clean. A malformed line *before* the last one is not a crash artefact and is
reported as an error.

``run.json`` says what produced the directory (dataset, model, variants, frame mode, prompt
template, scoring settings, provenance). Appending to a directory made from another dataset or
model is refused: mixed results would silently corrupt every aggregate.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.files import check_out_dir, write_json_atomic
from vniahd.records import RESULT_KEYS, RESULTS_GLOB, RunManifest, read_result_file
from vniahd.records import read_results as read_results  # re-exported (explicitly, for mypy)
from vniahd.records import result_key as result_key  # re-exported (explicitly, for mypy)

RUN_FILE = "run.json"

#: Longest time a written result line waits for its ``fsync`` (see the module docstring).
FSYNC_SECONDS = 1.0

#: Keys every result line carries (the one definition is :data:`vniahd.records.RESULT_KEYS`).
REQUIRED_KEYS = RESULT_KEYS


#: Per-result measurements (seconds, peak memory) live beside the results, not in them: result
#: lines must be byte-identical however a run was interrupted and resumed.
TIMINGS_GLOB = "timings*.jsonl"
TIMING_KEYS = ("sample_id", "variant", "scoring", "seconds", "peak_mem_bytes", "peak_mem_kind")


class ResultsWriter:
    """Appends records to one results file, flushed per line and fsync'd at most
    :data:`FSYNC_SECONDS` apart and on close; each record must carry the ``required`` keys
    (:data:`REQUIRED_KEYS` for results, :data:`TIMING_KEYS` for timings)."""

    def __init__(self, path: str | Path, required: tuple[str, ...] = REQUIRED_KEYS):
        self.required = required
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _, valid = read_result_file(self.path)
            if valid != self.path.stat().st_size:  # cut a torn tail so appends start on a new line
                with open(self.path, "r+b") as fh:
                    fh.truncate(valid)
                    fh.flush()
                    os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")
        if _last_byte(self.path) not in (b"", b"\n"):
            self._fh.write(b"\n")  # a complete last record written without its newline
        self._synced = time.monotonic()
        self._dirty = False

    def append(self, record: Mapping[str, Any]) -> None:
        missing = [k for k in self.required if k not in record]
        if missing:
            raise ValueError(f"result record lacks {missing}")
        line = json.dumps(record, sort_keys=True, default=_json_default).encode() + b"\n"
        self._fh.write(line)
        self._fh.flush()
        self._dirty = True
        if time.monotonic() - self._synced >= FSYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Put every line written so far on the disk."""
        if self._dirty and not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._dirty = False
        self._synced = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return b""
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


# ---- run.json ---------------------------------------------------------------------------------
def _compare(results_dir: Path, old: RunManifest, run: Mapping[str, Any]) -> dict[str, Any]:
    """Raise unless ``run`` may append to a directory described by ``old`` (the identity rule of
    :class:`vniahd.records.RunManifest`); return the variants merged."""
    for what, a, b in old.mismatches(run):
        raise VniahdError(
            f"{results_dir} holds results from a different {what.split('.')[0]} ({what}: {a!r} there, "
            f"{b!r} now); results of different runs must not be mixed — choose another --out"
        )
    variants = old.variants
    for name, spec in (run.get("variants") or {}).items():
        if name in variants and variants[name] != spec:
            raise VniahdError(
                f"{results_dir} already has variant {name!r} with other parameters "
                f"({variants[name]} there); choose another --out or another name"
            )
        variants[name] = spec
    return variants


def check_and_write_run(results_dir: str | Path, run: dict[str, Any]) -> dict[str, Any]:
    """Create ``run.json``, or check an existing one matches ``run`` and merge the new variants
    and scoring modes into it. Raises :class:`VniahdError` on any mismatch."""
    results_dir = Path(results_dir)
    path = results_dir / RUN_FILE
    check_out_dir(results_dir, "results")
    if path.exists() and not read_results(results_dir):
        # A run that failed before its first result (a missing checkpoint, a bad flag) leaves
        # run.json alone: the corrected command may start over instead of being refused.
        path.unlink()
    if not path.exists():
        if results_dir.is_dir() and any(results_dir.glob(RESULTS_GLOB)) and read_results(results_dir):
            raise VniahdError(
                f"{results_dir} holds results but no {RUN_FILE}, so their origin is "
                "unknown; choose another --out"
            )
        write_json_atomic(path, run)
        return run
    old = RunManifest.read(path)
    variants = _compare(results_dir, old, run)
    merged = {
        **old.data,
        "variants": variants,
        "scoring": sorted(set(old.data.get("scoring") or []) | set(run.get("scoring") or [])),
        "runs": list(old.data.get("runs") or []) + list(run.get("runs") or []),
    }
    write_json_atomic(path, merged)
    return merged


def check_run(results_dir: str | Path, run: Mapping[str, Any]) -> dict[str, Any]:
    """Check (never write) that ``run.json`` exists and covers ``run``: what the ranks other than
    0 of a multi-process run do after rank 0 wrote it."""
    results_dir = Path(results_dir)
    path = results_dir / RUN_FILE
    if not path.is_file():
        raise VniahdError(
            f"{path} is missing although rank 0 should have written it; check that "
            "every rank sees the same --out directory (a shared filesystem)"
        )
    old = RunManifest.read(path)
    _compare(results_dir, old, run)
    missing = set(run.get("variants") or {}) - set(old.variants)
    if missing:
        raise VniahdError(
            f"{path} lacks variants {sorted(missing)} that this rank runs; every rank "
            "must be started with the same arguments"
        )
    return old.data


def run_results(results_dir: str | Path, samples: Any) -> list[dict[str, Any]]:
    """The distinct results of ``results_dir``, every line checked against its run.json and the
    dataset's ``samples`` (a DataFrame): :func:`vniahd.run_results.read_run_results`."""
    from vniahd.run_results import PLAN_FIELDS, read_run_results

    plan = {
        str(row["sample_id"]): {"length": int(row["length"]), "depth": float(row["depth"]), "needle_id": str(row["needle_id"])}
        for row in samples[["sample_id", *PLAN_FIELDS]].to_dict("records")
    }
    path = Path(results_dir) / RUN_FILE
    return read_run_results(results_dir, RunManifest.read(path) if path.is_file() else None, plan)


def summarize(
    records: Sequence[dict[str, Any]], scoring: str | None = None, variants: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Accuracy per variant: ``{name: {"correct", "total", "accuracy"}}`` (one scoring mode)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if scoring is not None and r.get("scoring") != scoring:
            continue
        if variants is not None and r.get("variant") not in variants:
            continue
        d = out.setdefault(r["variant"], {"correct": 0, "total": 0})
        d["total"] += 1
        d["correct"] += int(bool(r["correct"]))
    for d in out.values():
        d["accuracy"] = d["correct"] / d["total"] if d["total"] else float("nan")
    if variants is not None:
        out = {v: out[v] for v in variants if v in out}
    return out
