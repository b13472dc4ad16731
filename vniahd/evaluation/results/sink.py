"""The result sink: where finished samples go — one durable line in ``results*.jsonl``, its
measurement in ``timings*.jsonl``, the progress bar, per-variant counts and an optional callback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vniahd.evaluation.execution.executor import Measurement
from vniahd.evaluation.results.store import TIMING_KEYS, ResultsWriter


class ResultSink:
    """Context manager appending results (and their measurements) of one process."""

    def __init__(
        self,
        out_dir: Path,
        results_file: str,
        *,
        total: int,
        progress: bool,
        desc: str = "evaluate",
        on_result: Callable[[dict[str, Any]], None] | None = None,
        stamp: dict[str, Any] | None = None,
    ):
        self.results_path = Path(out_dir) / results_file
        self.timings_path = Path(out_dir) / results_file.replace("results", "timings", 1)
        self.total = total
        self.progress = progress
        self.desc = desc
        self.on_result = on_result
        self.stamp = dict(stamp or {})  # fields every line carries (the dataset's fingerprint)
        self.counts: dict[str, int] = {}
        self._results: ResultsWriter | None = None
        self._timings: ResultsWriter | None = None
        self._bar: Any = None

    def __enter__(self) -> ResultSink:
        from tqdm import tqdm

        self._results = ResultsWriter(self.results_path)
        self._timings = ResultsWriter(self.timings_path, required=TIMING_KEYS)
        self._bar = tqdm(
            total=self.total,
            desc=self.desc,
            unit="sample",
            dynamic_ncols=True,
            disable=not self.progress or self.total == 0,
        )
        return self

    def status(self, text: str) -> None:
        self._bar.set_postfix_str(text, refresh=False)

    def add(self, record: dict[str, Any], measurement: Measurement) -> None:
        assert self._results is not None and self._timings is not None
        record = {**record, **self.stamp}
        self._results.append(record)
        self._timings.append(
            {
                "sample_id": record["sample_id"],
                "variant": record["variant"],
                "scoring": record["scoring"],
                **measurement.to_dict(),
            }
        )
        self.counts[record["variant"]] = self.counts.get(record["variant"], 0) + 1
        self._bar.update(1)
        if self.on_result is not None:
            self.on_result(record)

    def __exit__(self, *exc: Any) -> None:
        for part in (self._bar, self._results, self._timings):
            if part is not None:
                part.close()
