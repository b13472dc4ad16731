"""Multi-process evaluation: rank handling, the deterministic split, and a real 2-process
torchrun (gloo, CPU) whose merged shards equal a single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from evaluate_fixtures import NearTies, assert_same_outcomes, make_dataset

from vniahd.errors import VniahdError
from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.evaluation.planning.distributed import DistInfo, assign, from_env
from vniahd.evaluation.results.store import result_key
from vniahd.models import get_backend
from vniahd.rope import get_variant

VARIANTS = ["mrope", "videorope"]


def test_from_env_and_naming():
    assert from_env({}) == DistInfo(0, 1, 0)
    info = from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (info.rank, info.world_size, info.local_rank, info.enabled) == (3, 4, 1, True)
    assert info.results_file() == "results.rank3.jsonl"
    assert DistInfo().results_file() == "results.jsonl"
    assert info.device("cuda") == "cuda:1" and info.device("cpu") == "cpu"
    assert info.device("cuda:0") == "cuda:0"  # an explicit device is kept
    with pytest.raises(VniahdError, match="WORLD_SIZE"):
        from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(VniahdError, match="integers"):
        from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_assign_is_lpt_and_deterministic():
    costs = [("a", 5.0), ("b", 9.0), ("c", 4.0), ("d", 4.0), ("e", 1.0)]
    # by cost: b(9)→r0, a(5)→r1, c(4)→r1 (5<9), d(4)→r0? loads r0=9, r1=9 → tie → r0; e→r1 (13 vs 10)
    assert assign(costs, 2) == [["b", "d"], ["a", "c", "e"]]
    assert assign(list(reversed(costs)), 2) == [["d", "b"], ["e", "c", "a"]]  # same sets, input order
    assert assign(costs, 1) == [["a", "b", "c", "d", "e"]]
    assert assign(costs[:1], 3) == [["a"], [], []]


def comparable(records):
    return sorted((result_key(r), r["correct"], r["prediction"], r["num_tokens"]) for r in records)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    ds = make_dataset(root / "ds")
    be = get_backend("random:qwen2-vl")
    settings = EvalConfig(
        variants=[get_variant(v) for v in VARIANTS], cache_dir=root / "cache", progress=False
    )
    with NearTies(be) as ties:
        Runner(ds, be, settings, root / "single").run()  # also fills the embedding cache
    return root, ds, be, ties.count


def assert_same_as_single(root, out, ties):
    """The ranks' lines against the single process's: another thread count (torchrun's ranks
    run with 1), and a rank that starts inside a window-offset group grows its shared prefix
    from there, so their floats round differently — the same answers unless a near tie."""
    got = {result_key(r): r for r in read_results(out)}
    want = {result_key(r): r for r in read_results(root / "single")}
    assert {k: r["num_tokens"] for k, r in got.items()} == {k: r["num_tokens"] for k, r in want.items()}
    assert_same_outcomes(got, want, tol=1e-4, ties=ties)


def test_torchrun_two_processes_equals_single(setup):
    root, ds, _, ties = setup
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VNIAHD_CACHE": str(root / "vcache")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "vniahd",
        "eval",
        "--dataset",
        str(ds.path),
        "--model",
        "random:qwen2-vl",
        "--variant",
        VARIANTS[0],
        "--variant",
        VARIANTS[1],
        "--out",
        str(root / "multi"),
        "--cache-dir",
        str(root / "cache"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = root / "multi"
    shards = sorted(p.name for p in out.glob("results*.jsonl"))
    assert shards == ["results.rank0.jsonl", "results.rank1.jsonl"]
    per_shard = [len(read_results_file(out / s)) for s in shards]
    assert all(n > 0 for n in per_shard)  # both ranks did work
    assert_same_as_single(root, out, ties)
    run = json.loads((out / "run.json").read_text())
    assert run["evaluation"]["world_size"] == 2 and len(run["runs"]) == 1  # written once
    # each rank ran one contiguous range of the run order (variant, then first inserted slot
    # across lengths), so it grew its caches in order and recomputed at most the prefix at its cut
    from vniahd.evaluation.planning.work_plan import order_samples

    order = [(v, str(r["sample_id"])) for v in VARIANTS for r in order_samples(ds.samples.to_dict("records"))]
    positions = [
        sorted(order.index((r["variant"], r["sample_id"])) for r in read_results_file(out / s))
        for s in shards
    ]
    for pos in positions:
        assert pos == list(range(pos[0], pos[0] + len(pos)))


def read_results_file(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rank_resumes_its_own_shard(setup, tmp_path):
    """A rank (simulated in-process: barriers are no-ops without a process group) redoes only the
    lines missing from its shard; rank 1 checks run.json and never writes it."""
    root, ds, be, ties = setup
    out = tmp_path / "out"

    def settings(rank):
        return EvalConfig(
            variants=[get_variant(v) for v in VARIANTS],
            cache_dir=root / "cache",
            progress=False,
        )

    with pytest.raises(VniahdError, match="run.json is missing"):
        Runner(ds, be, settings(1), out, dist=DistInfo(1, 2, 1)).run()
    for rank in (0, 1):
        Runner(ds, be, settings(rank), out, dist=DistInfo(rank, 2, rank)).run()
    full = comparable(read_results(out))
    assert_same_as_single(root, out, ties)
    shard = out / "results.rank1.jsonl"
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])  # 3 lost, one of them torn
    run_before = (out / "run.json").read_text()
    again = Runner(ds, be, settings(1), out, dist=DistInfo(1, 2, 1))
    again.run()
    assert sum(again.counts.values()) == 3
    assert comparable(read_results(out)) == full
    assert (out / "run.json").read_text() == run_before
