"""Hand-made results directories for the report tests (no tests here; imported by test_report_*).

Writes the evaluator's results format (docs/architecture.md, "Results directory") directly, so the
report tests depend on nothing but that contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path


def write_results(
    out: Path,
    *,
    correct: Callable[[str, str, int, float, str, int], bool],
    variants: Iterable[str] = ("vanilla",),
    schedules: Iterable[str] = ("none",),
    lengths: Iterable[int] = (100, 300),
    depths: Iterable[float] = (0.0, 0.5, 1.0),
    needles: Iterable[str] = ("n0", "n1"),
    repeats: int = 1,
    model: str = "random:qwen2-vl",
    scoring: str = "reference",
    tokens_per_frame: int = 144,
    shards: int = 1,
    skip: Callable[[str, str, int, float], bool] | None = None,
    run_json: bool = True,
    dataset_fp: str = "abc123",
    model_fp: str = "f00d",
    period: float = 198.7,
) -> Path:
    """One results directory; ``correct(variant, schedule, length, depth, needle, repeat)``.

    ``dataset_fp``, ``model_fp`` and ``period`` go into run.json (the identity reports group by)."""
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for variant in variants:
        for schedule in schedules:
            for length in lengths:
                for depth in depths:
                    if skip and skip(variant, schedule, length, depth):
                        continue
                    for needle in needles:
                        for rep in range(repeats):
                            ok = bool(correct(variant, schedule, length, depth, needle, rep))
                            lines.append(
                                json.dumps(
                                    {
                                        "sample_id": f"{schedule}-L{length}-D{depth}-{needle}-r{rep}",
                                        "variant": variant,
                                        "scoring": scoring,
                                        "model": model,
                                        "length": length,
                                        "depth": depth,
                                        "needle_id": needle,
                                        "schedule": schedule,
                                        "correct": ok,
                                        "prediction": "A" if ok else "B",
                                        "answer": "A",
                                        "num_frames": length + (1 if schedule == "none" else 2),
                                        "tokens_per_frame": tokens_per_frame,
                                        "num_tokens": length * tokens_per_frame + 40,
                                    }
                                )
                            )
    for k in range(shards):
        name = "results.jsonl" if shards == 1 else f"results.rank{k}.jsonl"
        (out / name).write_text("".join(line + "\n" for line in lines[k::shards]))
    if run_json:
        (out / "run.json").write_text(
            json.dumps(
                {
                    "dataset": {
                        "path": "/data/ds",
                        "fingerprint": dataset_fp,
                        "schedule": list(schedules)[0],
                        "period": {"frames": period, "spec": str(period)},
                    },
                    "model": {"spec": model, "fingerprint": model_fp},
                    "variants": {v: {"name": v} for v in variants},
                }
            )
        )
    return out
