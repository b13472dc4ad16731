"""The results writer's durability: every line is in the file (flushed) as soon as it is appended,
and reaches the disk (fsync) at most FSYNC_SECONDS later and on close."""

from __future__ import annotations

import json

from vniahd.evaluation.results import store as results
from vniahd.evaluation.results.store import TIMING_KEYS, ResultsWriter


def _rec(i: int) -> dict:
    return {"sample_id": f"s{i}", "variant": "v", "scoring": "reference", "seconds": 0.1,
            "peak_mem_bytes": None, "peak_mem_kind": "cpu_peak_rss"}  # fmt: skip


def test_lines_are_flushed_at_once_and_fsynced_in_bounded_batches(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(results.os, "fsync", lambda fd: synced.append(fd))
    clock = [100.0]
    monkeypatch.setattr(results.time, "monotonic", lambda: clock[0])
    path = tmp_path / "timings.jsonl"
    writer = ResultsWriter(path, required=TIMING_KEYS)
    for i in range(3):
        writer.append(_rec(i))
        # readable by another process right away: a kill now loses nothing already appended
        assert path.read_text().count("\n") == i + 1
    assert synced == []  # within FSYNC_SECONDS of opening: not yet on the disk itself
    clock[0] += results.FSYNC_SECONDS
    writer.append(_rec(3))
    assert len(synced) == 1  # the fourth line waited FSYNC_SECONDS: all four go to the disk
    writer.append(_rec(4))
    assert len(synced) == 1
    writer.close()
    assert len(synced) == 2  # closing syncs what is left
    writer.close()
    assert len(synced) == 2
    assert [json.loads(line)["sample_id"] for line in path.read_text().splitlines()] == [
        f"s{i}" for i in range(5)
    ]


def test_close_without_new_lines_does_not_sync(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(results.os, "fsync", lambda fd: synced.append(fd))
    with ResultsWriter(tmp_path / "timings.jsonl", required=TIMING_KEYS):
        pass
    assert synced == []
