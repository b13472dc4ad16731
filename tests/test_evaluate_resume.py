"""Bitwise resume: a run stopped at any moment and resumed writes exactly the result lines of an
uninterrupted run — byte for byte after sorting, option log-probabilities included.

Batching makes this non-trivial: a batch's floats depend on its members (padding, matmul shapes),
and the shared prefix's floats depend on how the KV cache was grown. Both must be planned from the
whole group, not from what a resumed run has left to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from evaluate_fixtures import make_dataset

from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.rope import get_variant

VARIANTS = ["vanilla", "videorope"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("resume") / "ds")


@pytest.fixture(scope="module")
def backend():
    return get_backend("random:qwen2-vl")


def run(
    ds, be, out: Path, scoring: str, on_result=None, schedule: list | None = None, packed: bool = True
) -> Runner:
    """One run; ``schedule`` collects what it computed: ("batch", group, sample ids) per scored
    batch and ("prefix", group, first member's frames, shares, cache resets so far, (tokens
    cached, tokens the batch starts after)) per cache step, where a group is (variant name, its
    sample ids)."""
    # batch size 4: batches form whatever their waste, so the test exercises resumed batches
    settings = EvalConfig(
        variants=[get_variant(v) for v in VARIANTS], scoring=scoring, progress=False, batch_size=4
    )
    runner = Runner(ds, be, settings, out, on_result=on_result)
    assert runner.executor.packed  # a CPU backend packs its batches (and grows the prefix in them)
    runner.executor.packed = packed  # False: right-padded batches over a forked cache (GPU path)
    if schedule is not None:
        ex = runner.executor
        score, step = ex._score, ex._prefix_step
        variant = {}

        def run_group(v, rows, *a, **k):
            variant["name"] = (v.name, tuple(str(r["sample_id"]) for r in rows))  # the group
            return type(ex).run_group(ex, v, rows, *a, **k)

        def scored(batch, *a):
            schedule.append(("batch", variant["name"], tuple(p.sample_id for p in batch)))
            return score(batch, *a)

        def stepped(prefix, batch, inputs, shares):
            tokens = step(prefix, batch, inputs, shares)
            refs = tuple(batch[0].source.refs)
            schedule.append(("prefix", variant["name"], refs, tuple(shares), prefix.resets, tokens))
            return tokens

        ex.run_group, ex._score, ex._prefix_step = run_group, scored, stepped
        runner.run()
        return runner
    runner.run()
    return runner


def sorted_lines(out: Path) -> list[bytes]:
    return sorted((out / "results.jsonl").read_bytes().splitlines())


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def uninterrupted(dataset, backend, tmp_path_factory):
    """Lines of one uninterrupted run per scoring mode (computed once)."""
    out = {}
    for scoring in ("reference", "choice"):
        for packed in (True, False):
            d = tmp_path_factory.mktemp(f"full-{scoring}")
            schedule: list = []
            run(dataset, backend, d, scoring, schedule=schedule, packed=packed)
            out[scoring, packed] = sorted_lines(d)
            out[scoring, packed, "schedule"] = schedule
            assert len(out[scoring, packed]) == len(VARIANTS) * len(dataset.samples)
            # batching and prefix sharing really happened, or the test would prove little
            assert max(len(s[2]) for s in schedule if s[0] == "batch") > 1
            assert any(s[0] == "prefix" and s[-1][1] > 0 for s in schedule)
            # …and packed batches grew the shared prefix in their own pass
            assert any(s[0] == "prefix" and s[-1][0] < s[-1][1] for s in schedule) == packed
    return out


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("scoring", ["reference", "choice"])
@pytest.mark.parametrize("stop_after", [1, 3, 5, 9, 13])
def test_stopped_and_resumed_lines_are_byte_identical(
    dataset, backend, uninterrupted, tmp_path, scoring, stop_after, packed
):
    seen = []

    def crash(rec):
        seen.append(rec)
        if len(seen) == stop_after:
            raise Crash

    with pytest.raises(Crash):
        run(dataset, backend, tmp_path, scoring, on_result=crash, packed=packed)
    assert len(read_results(tmp_path)) == stop_after
    schedule: list = []
    resumed = run(dataset, backend, tmp_path, scoring, schedule=schedule, packed=packed)
    assert sum(resumed.counts.values()) == len(uninterrupted[scoring, packed]) - stop_after
    assert sorted_lines(tmp_path) == uninterrupted[scoring, packed]
    # The mechanism, not only this machine's floats (other CPUs round other batch shapes
    # differently): every batch the resumed run computed is a batch of the uninterrupted run,
    # and the prefix steps it took are the uninterrupted run's steps, in the same order.
    full = uninterrupted[scoring, packed, "schedule"]
    assert {s for s in schedule if s[0] == "batch"} <= {s for s in full if s[0] == "batch"}
    groups = {s[1] for s in schedule}
    assert groups, "the resumed run computed nothing"
    for group in groups:
        assert [s for s in schedule if s[0] == "prefix" and s[1] == group] == [
            s for s in full if s[0] == "prefix" and s[1] == group
        ]
    # A step that leaves growing the prefix to its batch's pass is followed by that pass, even
    # when every member is done: growing it any other way would round differently.
    for step, after in zip(schedule, schedule[1:] + [None]):
        if step[0] == "prefix" and step[-1][0] < step[-1][1]:
            assert after is not None and after[0] == "batch" and after[1] == step[1], step


def test_measurements_live_beside_the_results(dataset, backend, tmp_path):
    """Seconds and peak memory differ between runs, so they are in timings.jsonl, one line per
    result, and never in a result line."""
    run(dataset, backend, tmp_path, "choice")
    results = read_results(tmp_path)
    timings = read_results(tmp_path, pattern="timings*.jsonl")
    key = lambda r: (r["sample_id"], r["variant"], r["scoring"])  # noqa: E731
    assert sorted(map(key, results)) == sorted(map(key, timings))
    assert not any({"seconds", "peak_mem_bytes"} & set(r) for r in results)
    assert all(t["seconds"] >= 0 and t["peak_mem_kind"] for t in timings)


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from vniahd.evaluation.results import sink

    stop_after = int(sys.argv[1])
    original = sink.ResultSink.add
    written = []

    def add(self, record, measurement):
        original(self, record, measurement)
        written.append(record)
        if len(written) == stop_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush beyond what was written

    sink.ResultSink.add = add
    from vniahd.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def cli_args(dataset, out: Path) -> list[str]:
    return [
        "eval",
        "--dataset",
        str(dataset.path),
        "--model",
        "random:qwen2-vl",
        "--scoring",
        "choice",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--no-progress",
        *[a for v in VARIANTS for a in ("--variant", v)],
    ]


#: Every CLI run of these tests uses one thread count: float reductions may split differently
#: with another, and the comparison is bit for bit.
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def uninterrupted_cli(dataset, tmp_path_factory) -> list[bytes]:
    """Sorted lines of one uninterrupted `vniahd eval --scoring choice` in a subprocess."""
    out = tmp_path_factory.mktemp("cli-full") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "vniahd", *cli_args(dataset, out)],
        env=CLI_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted_lines(out)


@pytest.mark.integration
@pytest.mark.parametrize("stop_after", [2, 7])
def test_sigkilled_cli_eval_resumes_to_identical_lines(dataset, uninterrupted_cli, tmp_path, stop_after):
    """`vniahd eval --scoring choice` killed with SIGKILL, then rerun: the same lines."""
    out = tmp_path / "out"
    args = cli_args(dataset, out)
    env = CLI_ENV
    killed = subprocess.run(
        [sys.executable, "-c", _KILLER, str(stop_after), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(read_results(out)) == stop_after
    resumed = subprocess.run(
        [sys.executable, "-m", "vniahd", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert sorted_lines(out) == uninterrupted_cli


_STALLER = textwrap.dedent("""
    import sys, time
    from vniahd.evaluation.results import sink

    original = sink.ResultSink.add

    def add(self, record, measurement):
        original(self, record, measurement)
        print("first result written", flush=True)
        time.sleep(600)  # hold the results directory as a long run would

    sink.ResultSink.add = add
    from vniahd.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.integration
def test_second_evaluation_into_one_results_dir_is_refused_until_the_first_dies(
    dataset, uninterrupted_cli, tmp_path
):
    """Two real processes: the second gets one line naming the first's pid; after the first is
    killed (its lock goes with it), the same command completes with no duplicate line."""
    out = tmp_path / "out"
    args = cli_args(dataset, out)
    env = CLI_ENV
    first = subprocess.Popen(
        [sys.executable, "-c", _STALLER, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "first result written"
        second = subprocess.run(
            [sys.executable, "-m", "vniahd", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert f"in use by another evaluation (pid {first.pid} on " in second.stderr
        assert "choose another --out" in second.stderr
        assert len(read_results(out)) == 1  # the refused run wrote nothing
    finally:
        first.kill()
        first.wait()
    again = subprocess.run(
        [sys.executable, "-m", "vniahd", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert sorted_lines(out) == uninterrupted_cli
