"""A results directory's own lines: every result line checked against the directory's run.json
(:class:`vniahd.records.RunManifest`) and, where the dataset is at hand, against its plan, with
duplicates counted once. The evaluator's resume and summary and the reports read through
:func:`read_run_results`, so a results file of another run copied into a directory is refused in
one line, by both, and no count exceeds the plan. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.records import RunManifest, check_result, read_result_file, result_files, result_key

__all__ = ["PLAN_FIELDS", "check_run_lines", "line_mismatches", "read_run_results"]


def line_mismatches(obj: Mapping[str, Any], run: RunManifest) -> list[str]:
    """What of result line ``obj`` contradicts ``run`` (its directory's run.json): the model spec,
    the dataset fingerprint and frame mode (where the line records them), the variant (one of
    run.json's) and the scoring mode. Empty = the line may be this run's."""
    out = []
    for key, expected in (
        ("model", run.model_spec),
        ("dataset", run.dataset_fingerprint),
        ("frame_mode", run.data.get("frame_mode")),
    ):
        if expected is not None and key in obj and obj[key] != expected:
            out.append(f"{key} {obj[key]!r}, run.json has {expected!r}")
    if run.variants and obj.get("variant") not in run.variants:
        out.append(f"variant {obj.get('variant')!r} is not among run.json's {sorted(run.variants)}")
    scoring = run.data.get("scoring")
    if isinstance(scoring, list) and scoring and obj.get("scoring") not in scoring:
        out.append(f"scoring {obj.get('scoring')!r}, run.json has {scoring}")
    return out


#: Result-line fields that must agree with the dataset's sample of the same id.
PLAN_FIELDS = ("length", "depth", "needle_id")


def check_run_lines(
    lines: Iterable[tuple[Path, int, dict[str, Any]]],
    run: RunManifest | None,
    plan: Mapping[str, Mapping[str, Any]] | None = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The distinct results among ``lines`` (file, line number, object) of one results directory.

    Every line must be a valid result (:func:`check_result`) of this run (:func:`line_mismatches`
    against ``run``) and, given the dataset's ``plan`` (sample id → sample fields), of a planned
    sample with the same :data:`PLAN_FIELDS`, else a :class:`VniahdError` names the file, the line
    and what differs. A line repeated verbatim counts once; two different lines for one result
    (:func:`result_key`) are an error naming both — so no count can exceed the plan.
    """
    seen: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    out = []
    repeated = 0
    planned, lengths, depths = _grid(run) if plan is None else (None, set(), set())
    last_path = Path(".")
    for path, line, obj in lines:
        where, last_path = f"{path}, line {line}", path
        check_result(obj, where)
        differs = line_mismatches(obj, run) if run is not None else []
        if lengths and not differs and obj["length"] not in lengths:
            differs = [f"length {obj['length']!r} is not in run.json's grid {sorted(lengths)}"]
        if depths and not differs and float(obj["depth"]) not in depths:
            differs = [f"depth {obj['depth']!r} is not in run.json's grid {sorted(depths)}"]
        if plan is not None and not differs:
            sample = plan.get(str(obj["sample_id"]))
            if sample is None:
                differs = [f"sample {obj['sample_id']!r} is not in the dataset"]
            else:
                differs = [
                    f"{k} {obj[k]!r}, the dataset has {sample[k]!r}"
                    for k in PLAN_FIELDS
                    if k in sample and obj.get(k) != sample[k]
                ]
        if differs:
            raise VniahdError(
                f"{where}: not a result of this run ({'; '.join(differs)}); results of different "
                f"runs must not be mixed — move {path.name} out of {path.parent}"
            )
        key = result_key(obj)
        if key in seen:
            if seen[key][1] != obj:
                raise VniahdError(
                    f"{seen[key][0]} and {where} hold different results for sample {key[0]!r}, "
                    f"variant {key[1]!r}, scoring {key[2]!r}; delete the wrong line"
                )
            repeated += 1
            continue
        seen[key] = (where, obj)
        out.append(obj)
    if repeated and notes is not None:
        notes.append(f"{repeated} duplicate result line(s) repeated verbatim, counted once")
    if planned is not None and out:
        _check_counts(out, planned, last_path.parent)
    return out


def _grid(run: RunManifest | None) -> tuple[int | None, set[int], set[float]]:
    """What run.json says of the dataset's plan when the dataset itself is not at hand (reports):
    how many samples its runs could score, and its lengths and depths (empty where an older
    run.json lacks them)."""
    if run is None or not isinstance(run.data.get("dataset"), dict):
        return None, set(), set()
    data = run.data["dataset"]
    count = data.get("num_samples")
    planned = int(count) if isinstance(count, int) else None
    # Every invocation with --limit ran only the first `limit` samples: the largest bounds them all.
    limits = [r.get("limit") for r in run.data.get("runs") or [] if isinstance(r, dict)]
    ints = [n for n in limits if isinstance(n, int)]
    if planned is not None and ints and len(ints) == len(limits):
        planned = min(planned, max(ints))
    lengths = {int(n) for n in data.get("lengths") or []}
    depths = {float(d) for d in data.get("depths") or []}
    return planned, lengths, depths


def _check_counts(results: list[dict[str, Any]], planned: int, directory: Path) -> None:
    """No (variant, scoring) holds more samples than run.json's dataset had: a line with an
    invented sample id cannot pass as one more result."""
    per: dict[tuple[str, str], set[str]] = {}
    for obj in results:
        per.setdefault((str(obj["variant"]), str(obj["scoring"])), set()).add(str(obj["sample_id"]))
    for (variant, scoring), ids in per.items():
        if len(ids) > planned:
            raise VniahdError(
                f"{directory}: variant {variant!r} ({scoring}) holds results for {len(ids)} samples, "
                f"but run.json's runs planned {planned}; results of different runs must not be "
                "mixed — remove the lines that are not this run's"
            )


def read_run_results(
    results_dir: str | Path,
    run: RunManifest | None,
    plan: Mapping[str, Mapping[str, Any]] | None = None,
    files: list[Path] | None = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The distinct results of ``results_dir`` (or of ``files`` in it), each checked against the
    directory's run.json ``run`` and the dataset's ``plan`` (:func:`check_run_lines`)."""
    paths = result_files(results_dir) if files is None else files
    lines = ((p, n, obj) for p in paths for n, obj in read_result_file(p, notes)[0])
    return check_run_lines(lines, run, plan, notes)
