"""Fuzz vniahd's integrity checks: edit a dataset or a results directory at random (or kill an
evaluation mid-run), run the command that reads it, and classify what happened.

Not part of ``make test`` (minutes). From the repository root: ``PYTHONPATH=. .venv/bin/python
scripts/fuzz_integrity.py --rounds 50 --seed 0 --work /tmp/fuzz --report fuzz_report.json``.

Baselines: a small demo dataset, one ``eval`` of it (random-weight Qwen2-VL, mrope), ``inspect``
and ``plot``. Each round edits a fresh copy at random (dataset: byte flip, JSON value, JSON
whitespace, parquet cell, delete/truncate a file -> ``inspect`` + a fresh ``eval``; results:
duplicate, foreign or torn line, run.json value -> ``plot`` + a resuming ``eval``) or SIGKILLs an
``eval`` at a random moment and resumes it, and classifies each command:

- ``refused``: exit status != 0, a ``vniahd: error:`` line, no traceback (good);
- ``identical``: exit 0 and the output equals the untouched run's (the edit was harmless, good);
- ``TRACEBACK``: a Python traceback on stderr (bad);
- ``warned``: exit 0, the output differs, and a ``vniahd: warning:`` line says why (e.g. a torn
  last results line, skipped by ``plot``; good);
- ``WRONG NUMBER``: exit 0, but results lines / eval's summary / summary.csv / inspect's output
  differ from the untouched run's (bad);
- ``other``: a non-zero exit without an error line or traceback (see the report).

Prints counts per (edit kind, command) × outcome; every run goes to ``--report`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODEL = "random:qwen2-vl?layers=1&hidden=32&heads=2&kv_heads=1&intermediate=64"
GENERATE = ["--haystack", "demo", "--needles", "demo", "--lengths", "8,16", "--depths", "0,1"]
GENERATE += ["--period", "6", "--size", "56x84"]
OUTCOMES = ("refused", "identical", "warned", "TRACEBACK", "WRONG NUMBER", "other")
DATASET_EDITS = ("flip_byte", "json_value", "json_reformat", "parquet_cell", "delete_file", "truncate_file")
RESULTS_EDITS = ("duplicate_line", "foreign_line", "torn_line", "run_json_value")
KINDS = (*DATASET_EDITS, *RESULTS_EDITS, "kill_resume")


@dataclass
class Run:
    rc: int
    out: str
    err: str
    seconds: float


@dataclass
class Outcome:
    round: int
    kind: str
    detail: str
    command: str
    outcome: str
    rc: int
    stderr_tail: str


class Fuzzer:
    def __init__(self, work: Path, rng: random.Random, timeout: float) -> None:
        self.work, self.rng, self.timeout = work, rng, timeout
        self.env = {**os.environ, "VNIAHD_CACHE": str(work / "cache")}
        self.ds, self.res = work / "base" / "ds", work / "base" / "res"
        self.eval_seconds = 5.0
        self.base_results = ""
        self.base_inspect = ""
        self.base_summary = ""
        self.base_eval = ""

    # ---- running vniahd ----------------------------------------------------------------------
    def vniahd(self, *args: str | Path, cache: Path | None = None) -> Run:
        env = dict(self.env, VNIAHD_CACHE=str(cache)) if cache else self.env
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                [sys.executable, "-m", "vniahd", *map(str, args)],
                capture_output=True,
                text=True,
                env=env,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            return Run(-1, "", err + "\n[fuzz: timed out]", time.perf_counter() - t0)
        return Run(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)

    def eval_args(self, ds: Path, out: Path) -> list[str | Path]:
        return [
            "eval",
            "--dataset",
            ds,
            "--model",
            MODEL,
            "--variant",
            "mrope",
            "--out",
            out,
            "--no-progress",
        ]

    def setup(self) -> None:
        shutil.rmtree(self.work / "base", ignore_errors=True)
        steps: list[list[str | Path]] = [
            ["generate", *GENERATE, "--out", self.ds],
            self.eval_args(self.ds, self.res),
            ["plot", self.res, "--out", self.work / "base" / "plot"],
        ]
        for args in steps:
            run = self.vniahd(*args)
            if run.rc != 0:
                raise SystemExit(f"fuzz setup failed: vniahd {' '.join(map(str, args))}\n{run.err}")
            if args[0] == "eval":
                self.eval_seconds, self.base_eval = run.seconds, eval_numbers(run.out)
        self.base_results = results_text(self.res)
        self.base_inspect = self.inspect_text(self.ds)
        self.base_summary = (self.work / "base" / "plot" / "summary.csv").read_text()

    def inspect_text(self, ds: Path) -> str:
        run = self.vniahd("inspect", ds)
        return run.out.replace(str(ds), "DS")

    # ---- checks ------------------------------------------------------------------------------
    def check_dataset(self, ds: Path, r: int, kind: str, detail: str) -> list[Outcome]:
        cache, out = self.work / f"cache-{r}", self.work / f"res-{r}"  # fresh: no stale cache hit
        inspect = self.vniahd("inspect", ds)
        run = self.vniahd(*self.eval_args(ds, out), cache=cache)
        tag = (r, kind, detail)
        found = [
            outcome(tag, "inspect", inspect, inspect.out.replace(str(ds), "DS"), self.base_inspect),
            outcome(tag, "eval", run, results_text(out), self.base_results),
        ]
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        return found

    def check_results(self, res: Path, r: int, kind: str, detail: str) -> list[Outcome]:
        plot_dir, tag = self.work / f"plot-{r}", (r, kind, detail)
        plot = self.vniahd("plot", res, "--out", plot_dir)
        summary = plot_dir / "summary.csv"
        csv = summary.read_text() if summary.is_file() else None
        shutil.rmtree(plot_dir, ignore_errors=True)
        resume = self.vniahd(*self.eval_args(self.ds, res))  # its summary reads the edited lines
        return [
            outcome(tag, "plot", plot, csv, self.base_summary),
            outcome(tag, "eval", resume, eval_numbers(resume.out), self.base_eval),
        ]

    # ---- one round ---------------------------------------------------------------------------
    def round(self, r: int) -> list[Outcome]:
        kind = self.rng.choice(KINDS)
        if kind == "kill_resume":
            return self.kill_resume(r)
        if kind in DATASET_EDITS:
            ds = self.work / f"ds-{r}"
            shutil.copytree(self.ds, ds)
            detail = getattr(self, kind)(ds)
            try:
                return self.check_dataset(ds, r, kind, detail)
            finally:
                shutil.rmtree(ds, ignore_errors=True)
        res = self.work / f"res-{r}"
        shutil.copytree(self.res, res)
        detail = getattr(self, kind)(res)
        try:
            return self.check_results(res, r, kind, detail)
        finally:
            shutil.rmtree(res, ignore_errors=True)

    def kill_resume(self, r: int) -> list[Outcome]:
        out, cache = self.work / f"res-{r}", self.work / f"cache-{r}"
        delay = self.rng.uniform(0.0, self.eval_seconds)
        env = dict(self.env, VNIAHD_CACHE=str(cache))
        cmd = [sys.executable, "-m", "vniahd", *map(str, self.eval_args(self.ds, out))]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
            detail = f"finished before the kill at {delay:.2f}s"
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            detail = f"SIGKILL after {delay:.2f}s"
        resume = self.vniahd(*self.eval_args(self.ds, out), cache=cache)
        found = [outcome((r, "kill_resume", detail), "eval", resume, results_text(out), self.base_results)]
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        return found

    # ---- edits (each returns a description) --------------------------------------------------
    def pick_file(self, root: Path) -> Path:
        return self.rng.choice(sorted(p for p in root.rglob("*") if p.is_file()))

    def flip_byte(self, root: Path) -> str:
        path = self.pick_file(root)
        data = bytearray(path.read_bytes())
        if not data:
            return f"{path.relative_to(root)} is empty, left alone"
        at, bit = self.rng.randrange(len(data)), self.rng.randrange(8)
        data[at] ^= 1 << bit
        path.write_bytes(bytes(data))
        return f"{path.relative_to(root)} byte {at} bit {bit}"

    def json_value(self, root: Path) -> str:
        return self.edit_json(root / "dataset.json")

    def run_json_value(self, res: Path) -> str:
        return self.edit_json(res / "run.json")

    def edit_json(self, path: Path) -> str:
        obj = json.loads(path.read_text())
        leaves = list(json_leaves(obj, ()))
        where, value = self.rng.choice(leaves)
        new = mutate(value, self.rng)
        set_in(obj, where, new)
        path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        return f"{path.name} {'/'.join(map(str, where))}: {value!r} -> {new!r}"[:200]

    def json_reformat(self, root: Path) -> str:
        path = root / "dataset.json"
        path.write_text(json.dumps(json.loads(path.read_text()), indent=4) + "\n\n")
        return "dataset.json re-indented (whitespace only)"

    def parquet_cell(self, root: Path) -> str:
        import pandas as pd

        path = root / "samples.parquet"
        df = pd.read_parquet(path)
        i, col = self.rng.randrange(len(df)), self.rng.choice(list(df.columns))
        old = df[col].iloc[i]
        if hasattr(old, "tolist") and not isinstance(old, str):
            old = old.tolist()
        new = mutate(old, self.rng)
        cells = df[col].tolist()
        cells[i] = new
        df[col] = pd.Series(cells, dtype=object if isinstance(new, list) else None)
        df.to_parquet(path, index=False)
        return f"samples.parquet row {i} {col}: {old!r} -> {new!r}"

    def delete_file(self, root: Path) -> str:
        path = self.pick_file(root)
        path.unlink()
        return f"deleted {path.relative_to(root)}"

    def truncate_file(self, root: Path) -> str:
        path = self.pick_file(root)
        size = path.stat().st_size
        keep = self.rng.randrange(size) if size else 0
        with path.open("r+b") as fh:
            fh.truncate(keep)
        return f"{path.relative_to(root)} truncated {size} -> {keep} bytes"

    def results_lines(self, res: Path) -> tuple[Path, list[str]]:
        path = res / "results.jsonl"
        return path, path.read_text().splitlines(keepends=True)

    def duplicate_line(self, res: Path) -> str:
        path, lines = self.results_lines(res)
        i = self.rng.randrange(len(lines))
        lines.insert(self.rng.randrange(len(lines) + 1), lines[i])
        path.write_text("".join(lines))
        return f"results line {i} duplicated"

    def foreign_line(self, res: Path) -> str:
        path, lines = self.results_lines(res)
        i = self.rng.randrange(len(lines))
        obj = json.loads(lines[i])
        key = self.rng.choice(["model", "sample_id", "variant", "schedule", "correct", "length"])
        obj[key] = not obj[key] if isinstance(obj[key], bool) else mutate(obj[key], self.rng)
        lines.append(json.dumps(obj, sort_keys=True) + "\n")
        path.write_text("".join(lines))
        return f"appended line {i} with {key} = {obj[key]!r}"

    def torn_line(self, res: Path) -> str:
        path, lines = self.results_lines(res)
        i = self.rng.choice([len(lines) - 1, self.rng.randrange(len(lines))])
        cut = self.rng.randrange(1, len(lines[i]) - 1)
        lines[i] = lines[i][:cut] + ("\n" if i < len(lines) - 1 else "")
        path.write_text("".join(lines))
        return f"results line {i} of {len(lines)} cut at {cut}"


def classify(run: Run, produced: str | None, baseline: str) -> str:
    if "Traceback (most recent call last)" in run.err:
        return "TRACEBACK"
    if run.rc != 0:
        errors = [x for x in run.err.splitlines() if x.startswith("vniahd: error:")]
        return "refused" if len(errors) == 1 else "other"
    if produced == baseline:
        return "identical"
    # e.g. a torn last line (a killed run's signature): reported without it, and said so
    warned = any(x.startswith("vniahd: warning:") for x in run.err.splitlines())
    return "warned" if warned else "WRONG NUMBER"


def outcome(tag: tuple[int, str, str], command: str, run: Run, produced: str | None, base: str) -> Outcome:
    tail = "\n".join(run.err.strip().splitlines()[-6:])
    return Outcome(*tag, command, classify(run, produced, base), run.rc, tail)


def results_text(out: Path) -> str:
    """The result lines of a results directory, sorted (resume appends in another order)."""
    files = sorted(out.glob("results*.jsonl")) if out.is_dir() else []
    return "".join(sorted(line for f in files for line in f.read_text().splitlines(keepends=True)))


def eval_numbers(stdout: str) -> str:
    """The variant rows of eval's summary: name, accuracy, correct/total."""
    return "\n".join(" ".join(x.split()[:3]) for x in stdout.splitlines() if x.startswith("mrope "))


def json_leaves(obj: Any, where: tuple[Any, ...]) -> Any:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from json_leaves(v, (*where, k))
    elif isinstance(obj, list) and obj:
        for k, v in enumerate(obj):
            yield from json_leaves(v, (*where, k))
    else:
        yield where, obj


def set_in(obj: Any, where: tuple[Any, ...], value: Any) -> None:
    for k in where[:-1]:
        obj = obj[k]
    obj[where[-1]] = value


def mutate(value: Any, rng: random.Random) -> Any:
    """A plausible other value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1, 7])
    if isinstance(value, float):
        return value + rng.choice([-0.25, 0.5, 1.0])
    if isinstance(value, str):
        return rng.choice([value + "x", value[:-1], value.upper() if value != value.upper() else value + "0"])
    if isinstance(value, list):
        if not value:
            return [1]
        out = list(value)
        out[0] = mutate(out[0], rng)
        return out
    return 0 if value is None else value


def table(found: list[Outcome]) -> str:
    counts = Counter((f"{o.kind}/{o.command}", o.outcome) for o in found)
    rows = sorted({k for k, _ in counts})
    width = max([len(r) for r in rows] + [12])
    head = f"{'edit/command':<{width}}" + "".join(f"{o:>14}" for o in OUTCOMES)
    body = [f"{r:<{width}}" + "".join(f"{counts.get((r, o), 0):>14}" for o in OUTCOMES) for r in rows]
    total = Counter(o.outcome for o in found)
    foot = f"{'total':<{width}}" + "".join(f"{total.get(o, 0):>14}" for o in OUTCOMES)
    return "\n".join([head, *body, foot])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vniahd-fuzz"))
    ap.add_argument("--report", type=Path, default=Path("fuzz_report.json"))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    fuzzer = Fuzzer(args.work.resolve(), random.Random(args.seed), args.timeout)
    fuzzer.setup()
    found: list[Outcome] = []
    t0 = time.perf_counter()
    for r in range(args.rounds):
        round_found = fuzzer.round(r)
        found.extend(round_found)
        said = ", ".join(f"{o.command}: {o.outcome}" for o in round_found)
        print(f"round {r:3d} {round_found[0].kind:<15} {said}  ({round_found[0].detail})", flush=True)
    print(table(found))
    bad = [o for o in found if o.outcome in ("TRACEBACK", "WRONG NUMBER", "other")]
    report = {
        "rounds": args.rounds,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "counts": Counter(f"{o.kind}/{o.command}: {o.outcome}" for o in found),
        "outcomes": [asdict(o) for o in found],
    }
    args.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"{len(bad)} bad outcome(s) of {len(found)}; report: {args.report}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
