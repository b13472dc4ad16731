"""The runner: resume after a crash, torn lines, the embedding cache, refusal, results format."""

from __future__ import annotations

import json

import pytest
from evaluate_fixtures import make_dataset

from vniahd.errors import VniahdError
from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.evaluation.results.store import REQUIRED_KEYS, result_key
from vniahd.evaluation.runner import length_groups, order_samples
from vniahd.models import get_backend
from vniahd.rope import get_variant

VARIANTS = ["vanilla", "videorope"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("runner") / "ds")


@pytest.fixture(scope="module")
def backend():
    return get_backend("random:qwen2-vl")


def make_runner(ds, be, out, cache, scoring="reference", variants=VARIANTS, on_result=None, **kw):
    settings = EvalConfig(
        variants=[get_variant(v) for v in variants], scoring=scoring, cache_dir=cache, progress=False, **kw
    )
    return Runner(ds, be, settings, out, on_result=on_result)


def comparable(records):
    return sorted(
        ({k: v for k, v in r.items() if k not in ("seconds", "peak_mem_bytes")} for r in records),
        key=lambda r: result_key(r),
    )


class Crash(Exception):
    pass


@pytest.mark.parametrize("scoring", ["reference", "choice"])
def test_interrupted_then_resumed_equals_uninterrupted(dataset, backend, tmp_path, scoring):
    full = make_runner(dataset, backend, tmp_path / "full", tmp_path / "cache", scoring)
    full.run()
    expected = read_results(tmp_path / "full")
    assert len(expected) == 2 * len(dataset.samples)

    seen = []

    def crash_after_7(rec):
        seen.append(rec)
        if len(seen) == 7:
            raise Crash

    with pytest.raises(Crash):
        make_runner(
            dataset, backend, tmp_path / "resumed", tmp_path / "cache", scoring, on_result=crash_after_7
        ).run()
    assert len(read_results(tmp_path / "resumed")) == 7
    # a kill in the middle of a write leaves a torn last line: the next run must cope
    with open(tmp_path / "resumed" / "results.jsonl", "ab") as fh:
        fh.write(b'{"sample_id": "L10_D0.5_mc_r0", "varia')
    resumed = make_runner(dataset, backend, tmp_path / "resumed", tmp_path / "cache", scoring)
    resumed.run()
    got = read_results(tmp_path / "resumed")
    keys = [result_key(r) for r in got]
    assert len(keys) == len(set(keys)) == len(expected)  # no duplicates, nothing lost
    assert comparable(got) == comparable(expected)
    assert sum(resumed.counts.values()) == len(expected) - 7
    # every line of the file parses (the torn tail was cut before appending)
    for line in (tmp_path / "resumed" / "results.jsonl").read_text().splitlines():
        json.loads(line)


def test_cache_second_run_encodes_nothing(dataset, backend, tmp_path):
    first = make_runner(dataset, backend, tmp_path / "a", tmp_path / "cache", variants=["vanilla"])
    first.run()
    stored = len(dataset.haystack_frames())
    assert first.cache.stats.haystack_frames_encoded == stored
    assert first.cache.stats.images_encoded == 4  # 2 needles + 2 distractors
    # another variant, another results dir, a fresh process-level cache object: zero encodes
    second = make_runner(dataset, backend, tmp_path / "b", tmp_path / "cache", variants=["tad", "mrope"])
    second.run()
    assert second.cache.stats.frames_encoded == 0
    assert second.cache.stats.images_loaded == 4
    # cached embeddings equal fresh ones
    import numpy as np

    hay = second.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    # bit for bit against the same batch the cache encoded (its first chunk of frames): another
    # batch shape may round differently
    chunk = first.cache.chunk
    fresh = backend.encode_frames(np.asarray(dataset.haystack_frames()[:chunk]))
    np.testing.assert_array_equal(np.asarray(hay[:chunk]), fresh.numpy())


def test_cache_resumes_a_partial_haystack(dataset, backend, tmp_path):
    runner = make_runner(dataset, backend, tmp_path / "a", tmp_path / "cache", encode_batch=4)
    calls = []
    original = runner.cache._encode

    def crash_on_second_chunk(frames):
        calls.append(len(frames))
        if len(calls) == 2:
            raise Crash
        return original(frames)

    runner.cache._encode = crash_on_second_chunk
    with pytest.raises(Crash):
        runner.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    again = make_runner(dataset, backend, tmp_path / "a", tmp_path / "cache", encode_batch=4)
    again.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    assert again.cache.stats.haystack_frames_encoded == len(dataset.haystack_frames()) - 4


def test_results_format_and_run_json(dataset, backend, tmp_path):
    make_runner(dataset, backend, tmp_path / "out", tmp_path / "cache", scoring="choice").run()
    recs = read_results(tmp_path / "out")
    for r in recs:
        assert set(REQUIRED_KEYS) <= set(r)
        assert r["tokens_per_frame"] == 6 and r["model"] == "random:qwen2-vl"
        assert r["num_tokens"] > r["num_frames"] * 6
    mc = [r for r in recs if r["needle_id"] == "mc"]
    assert all(set(r["option_logprobs"]) == {"A", "B", "C", "D"} for r in mc)
    assert all("fallback" in r for r in recs if r["needle_id"] == "short")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["dataset"]["fingerprint"] == dataset.fingerprint
    assert run["model"]["rotary"]["sections"] == [2, 3, 3]
    assert run["variants"]["videorope"]["layout_params"]["delta"] == 2.0
    # LTA with 8 pairs, sections (2,3,3): pairs 0..5 alternate h, w; the last 2 (lowest) are t
    assert run["variants"]["videorope"]["axes"] == "hwhwhwtt"
    assert run["variants"]["vanilla"]["effective_sections"] is None
    assert run["frame_mode"] == "video" and run["visual_grid"] == [2, 3]
    assert run["prompt_template"]["name"] == "reference"
    assert "versions" in run["provenance"]


def test_refuses_other_dataset_or_model(dataset, backend, tmp_path):
    make_runner(dataset, backend, tmp_path / "out", tmp_path / "cache", limit=1).run()
    other_ds = make_dataset(tmp_path / "ds2", lengths=(5,))
    with pytest.raises(VniahdError, match="different dataset"):
        make_runner(other_ds, backend, tmp_path / "out", tmp_path / "cache", limit=1).run()
    other_model = get_backend("random:qwen2-vl", seed=3)
    with pytest.raises(VniahdError, match="different model"):
        make_runner(dataset, other_model, tmp_path / "out", tmp_path / "cache", limit=1).run()
    # same dataset and model, a new variant: accepted and merged into run.json
    make_runner(dataset, backend, tmp_path / "out", tmp_path / "cache", variants=["tad"], limit=1).run()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert set(run["variants"]) == {"vanilla", "videorope", "tad"}


def test_order_and_length_groups():
    rows = [
        dict(
            sample_id=s,
            length=L,
            needle_slot=q,
            distractor_slots=d,
            num_frames=L + 1 + len(d),
            needle_image=f"n-{s}.png",
            distractor_images=[f"d-{s}.png"] * len(d),
        )
        for s, L, q, d in [("a", 10, 5, []), ("b", 6, 4, [1]), ("c", 6, 2, [5]), ("d", 10, 8, [3])]
    ]
    ordered = order_samples(rows)
    # one offset: every length shares the haystack prefix, ordered by first inserted slot 1,2,3,5
    assert [r["sample_id"] for r in ordered] == ["b", "c", "d", "a"]
    rows[1]["haystack_offset"] = 7  # another window: its own group, after offset 0
    assert [r["sample_id"] for r in order_samples(rows)] == ["c", "d", "a", "b"]
    assert [(L, [r["sample_id"] for r in rs]) for L, rs in length_groups(ordered)] == [
        (6, ["b", "c"]),
        (10, ["d", "a"]),
    ]


def test_limit_takes_first_samples_in_dataset_order(dataset, backend, tmp_path):
    make_runner(dataset, backend, tmp_path / "out", tmp_path / "cache", variants=["vanilla"], limit=3).run()
    got = {r["sample_id"] for r in read_results(tmp_path / "out")}
    assert got == set(dataset.samples["sample_id"][:3])


def test_run_that_failed_before_its_first_result_does_not_block_the_corrected_command(
    dataset, backend, tmp_path
):
    """A run that wrote run.json but no result (a failure before scoring) leaves a directory the
    corrected command can use, even with another model."""
    out = tmp_path / "out"

    def boom(*a, **k):
        raise RuntimeError("failed before the first result")

    failed = make_runner(dataset, backend, out, tmp_path / "cache", limit=2)
    failed.executor.run_group = boom
    with pytest.raises(RuntimeError):
        failed.run()
    assert (out / "run.json").is_file() and read_results(out) == []
    other_model = get_backend("random:qwen2-vl", seed=3)
    make_runner(dataset, other_model, out, tmp_path / "cache", limit=2).run()
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["spec"] == other_model.spec and len(run["runs"]) == 1
    assert len(read_results(out)) == 2 * len(VARIANTS)


def test_estimate_weighs_work_by_cost_and_warns_on_long_cpu_runs():
    """The ETA extrapolates the measured cost rate (not the sample rate), and a CPU run headed for
    hours gets one warning naming the ways to cut it."""
    from vniahd.evaluation.planning.estimate import RunEstimate, format_duration

    said, warned = [], []
    est = RunEstimate(
        {"short": 1.0, "long": 99.0}, unit="FLOPs", device_type="cpu", say=said.append, warn_=warned.append
    )
    est.start(results_left=20)
    assert said and "100 FLOPs" in said[0]
    est.done, est.elapsed = 1.0, 40.0  # the short group took 40 s: 99 units left at 40 s each
    assert est.eta_seconds() == pytest.approx(99 * 40.0)
    est.done, est.elapsed = 0.0, 0.0
    est.unit_started()
    est.elapsed = 40.0 - 1e-9  # as if the first (short) group took 40 s
    est._t0 = None
    est.unit_done("short")
    assert len(warned) == 1 and "about 1 h 6 min" in warned[0] and "--limit" in warned[0]
    est.unit_done("long")
    assert len(warned) == 1  # said once
    assert format_duration(75) == "1 min 15 s" and format_duration(7300) == "2 h 1 min"
