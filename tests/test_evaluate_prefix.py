"""Shared prefixes: positions are causal, and prefix-shared evaluation equals independent."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from evaluate_fixtures import NearTies, assert_same_outcomes, make_dataset

from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.evaluation.execution.chunked import crop_to, forward_rows
from vniahd.evaluation.execution.executor import _shared_with_next
from vniahd.evaluation.execution.prefix import SharedPrefix, fork_cache
from vniahd.evaluation.planning.flops import FlopCounter
from vniahd.evaluation.results.store import result_key
from vniahd.evaluation.runner import build_segments, prefix_groups
from vniahd.evaluation.scoring import Context, reference_feed, score
from vniahd.models import get_backend
from vniahd.rope import PRESETS, get_variant, parse_variant, variant_axes
from vniahd.rope.hf import install_allocation

# random:qwen2-vl has 2 KV heads: MHRoPE's default needs 3 (one per stream), so give it t and h
PRESET_SPECS = [name if not PRESETS[name].per_head else f"{name}:heads=1/1/0" for name in sorted(PRESETS)]
ALL_VARIANTS = PRESET_SPECS + [
    "videorope:delta=0.5",
    "videorope:delta=0.5,text_after=paper",
    "mrope-timed:second_per_grid_t=0.7,tokens_per_second=3",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # lengths 10 and 14 with period 3 give groups of 6 samples with varied first inserted slots
    return make_dataset(
        tmp_path_factory.mktemp("prefix") / "ds",
        lengths=(10, 14),
        depths=("0", "0.3", "0.6", "1"),
        haystack_frames=16,
    )


@pytest.fixture(scope="module")
def backend():
    return get_backend("random:qwen2-vl")


@pytest.mark.parametrize("spec", ALL_VARIANTS)
@pytest.mark.parametrize("mode", ["video", "image"])
def test_prefix_positions_do_not_depend_on_what_follows(spec, mode):
    """Every layout is causal: the positions of [text before, frames 0..k-1] are the same whatever
    the frame count T and the text after (which differ between samples sharing a prefix)."""
    variant = parse_variant(spec)
    nb, grid = 7, (2, 3)
    full = variant.positions(build_segments(nb, 12, grid, 30, mode))
    for frames, after in [(11, 5), (13, 40), (20, 1)]:
        other = variant.positions(build_segments(nb, frames, grid, after, mode))
        for k in (0, 1, 5, 11):
            n = nb + k * grid[0] * grid[1]
            assert torch.equal(full[:, :n], other[:, :n]), (spec, mode, frames, k)
    # …and the text after the video does move with T (the check above is not vacuous)
    assert not torch.equal(full[:, -1], variant.positions(build_segments(nb, 13, grid, 30, mode))[:, -1])


def _runner(ds, be, out, cache, variants, scoring="reference", **kw):
    settings = EvalConfig(
        variants=[parse_variant(v) for v in variants], scoring=scoring, cache_dir=cache, progress=False, **kw
    )
    return Runner(ds, be, settings, out)


def _by_key(records):
    return {result_key(r): r for r in records}


@pytest.mark.parametrize("batch_size", [1, "auto"], ids=["one-by-one", "packed"])
@pytest.mark.parametrize("scoring", ["reference", "choice", "generate"])
def test_shared_prefix_equals_independent_evaluation(dataset, backend, tmp_path, scoring, batch_size):
    """The prefix-tree walk (all lengths of an offset on one cache) gives the answers and logits of
    scoring every sample on its own, for every preset and a fractional δ — one sample per pass,
    or packed batches that also grow the shared prefix in their own pass."""
    variants = [*PRESET_SPECS, "videorope:delta=0.5"]
    shared = _runner(
        dataset,
        backend,
        tmp_path / "shared",
        tmp_path / "c",
        variants,
        scoring,
        batch_size=batch_size,
        prefill_chunk=0,
    )
    calls = []
    real = backend.hidden_states
    backend.hidden_states = lambda *a, **k: calls.append(k.get("segments")) or real(*a, **k)
    try:
        with NearTies(backend) as ties:
            shared.run()
    finally:
        del backend.hidden_states
    if batch_size == "auto" and scoring != "generate":  # generate never batches
        assert shared.executor.packed and any(seg and len(seg) > 1 for seg in calls)
    alone = _runner(
        dataset,
        backend,
        tmp_path / "alone",
        tmp_path / "c",
        variants,
        scoring,
        batch_size=1,
        prefill_chunk=0,
        prefix_sharing=False,
    )
    with ties:
        alone.run()
    a, b = _by_key(read_results(tmp_path / "shared")), _by_key(read_results(tmp_path / "alone"))
    assert set(a) == set(b) and len(a) == len(variants) * len(dataset.samples)
    # a shared cache and packed batches round differently from one sample per pass: numbers to
    # a tolerance, answers equal unless a near tie could flip them
    assert_same_outcomes(a, b, tol=2e-4, ties=ties.count)
    # the prefix really was shared: tokens reused from the cache, far more than recomputed
    assert shared.prefix_stats["reused_tokens"] > 2 * shared.prefix_stats["computed_tokens"] > 0
    assert alone.prefix_stats["reused_tokens"] == 0


def _prepared_group(ds, be, tmp_path, variant):
    runner = _runner(ds, be, tmp_path / "o", tmp_path / "c", [variant.name])
    rows = runner.rows()
    hay = runner.cache.haystack(ds.haystack_frames(), ds.haystack_key)
    names = {n for r in rows for n in [r["needle_image"], *r["distractor_images"]]}
    images = runner.cache.images({n: ds.image(n) for n in names})
    ((_, group),) = [g for g in prefix_groups(rows) if g[0] == 0]  # offset 0: all lengths
    install_allocation(be.language_model, variant_axes(variant, be.rotary))
    return runner, [runner.prepare(r, hay, images, lazy=True) for r in group]


@pytest.mark.parametrize("name", ["mrope", "videorope", "tad"])
def test_prefix_logits_equal_full_forward(dataset, backend, tmp_path, name):
    """Scored rows' logits on top of the incrementally extended prefix cache equal those of an
    independent full forward pass (fp tolerance), for every sample of a length group."""
    variant = get_variant(name)
    runner, group = _prepared_group(dataset, backend, tmp_path, variant)
    prefix = SharedPrefix(backend, chunk=0)
    shares = _shared_with_next(group)
    firsts = []
    with torch.inference_mode():
        for p, share in zip(group, shares):
            inputs = runner.with_positions(p, variant)
            start = prefix.follow(p.source, inputs.positions, share, len(p.source.refs))
            firsts.append(start)
            got = forward_rows(backend, [reference_feed(backend, inputs, start)], prefix.cache)[0]
            crop_to(prefix.cache, start)
            assert prefix.cache.get_seq_length() == start
            full = torch.cat([p.source.materialize(), backend.embed_text(inputs.answer_ids)])
            hidden = backend.hidden_states(full[None], inputs.positions[:, None, : len(full)])[0]
            s = inputs.prompt_len
            want = hidden[s - 1 : s - 1 + len(inputs.answer_ids)]
            torch.testing.assert_close(backend.logits(got), backend.logits(want), atol=1e-4, rtol=1e-4)
    assert len(set(firsts)) > 2  # the cache walked the tree: kept, cropped and grew
    assert prefix.resets == 1  # one group, one cache
    # each sample computed only what it does not share with the previous one (the tree's nodes)
    tokens = [p.inputs.prompt_len for p in group]
    shared = [0] + [p.source.prefix_tokens(f) for p, f in zip(group[1:], shares[:-1])]
    assert prefix.computed_tokens <= sum(t - sh for t, sh in zip(tokens, shared))


def test_multi_token_choice_and_generate_on_a_shared_cache(dataset, backend, tmp_path):
    variant = get_variant("videorope")
    runner, group = _prepared_group(dataset, backend, tmp_path, variant)
    prefix = SharedPrefix(backend, chunk=0)
    shares = _shared_with_next(group)
    with torch.inference_mode():
        for p, share in zip(group[:3], shares):
            inputs = runner.with_positions(p, variant)
            inputs = dataclasses.replace(
                inputs, letters=["A", "B", "C"], answer="B", letter_ids=[[65, 66], [50, 48, 48], [67]]
            )
            start = prefix.follow(p.source, inputs.positions, share, len(p.source.refs))
            for mode in ("choice", "generate"):
                with NearTies(backend) as ties:
                    got = score(backend, inputs, mode, max_new_tokens=4, ctx=Context(prefix.cache, start))
                    assert prefix.cache.get_seq_length() == start  # cropped back to the prefix
                    eager = dataclasses.replace(inputs, embeds=p.source.materialize())
                    want = score(backend, eager, mode, max_new_tokens=4)
                # over a cache vs one pass: other shapes round differently, so the answers agree
                # where no near tie could flip them
                rec = lambda x: {"correct": x.correct, "prediction": x.prediction, **x.extra}  # noqa: E731
                assert_same_outcomes({0: rec(got)}, {0: rec(want)}, tol=1e-4, ties=ties.count)
                if mode == "generate" and not ties.count:
                    assert got.extra["generated_ids"] == want.extra["generated_ids"]


def test_dynamic_cache_crop_semantics(backend):
    """transformers 5.x: crop(-n) drops n tokens; crop(+n) raises (so crop_to uses -n)."""
    cache = backend.new_cache()
    emb = torch.randn(1, 9, backend.row_width)
    pos = torch.arange(9.0).expand(3, 1, 9)
    with torch.inference_mode():
        backend.hidden_states(emb, pos, cache=cache)
    assert cache.get_seq_length() == 9
    with pytest.raises(Exception):  # noqa: B017  (any failure will do: transformers' own refusal)
        cache.crop(4)
    crop_to(cache, 6)
    assert cache.get_seq_length() == 6
    fork = fork_cache(backend, cache, 3)
    assert fork.get_seq_length() == 6 and fork.layers[0].keys.shape[0] == 3
    with torch.inference_mode():
        backend.hidden_states(torch.randn(3, 2, backend.row_width), torch.zeros(3, 3, 2), cache=fork)
    assert cache.get_seq_length() == 6 and cache.layers[0].keys.shape[0] == 1  # original untouched


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("scoring", ["reference", "choice"])
def test_batched_equals_unbatched(dataset, backend, tmp_path, scoring, packed):
    variants = ["mrope", "videorope"]
    one = _runner(dataset, backend, tmp_path / "one", tmp_path / "c", variants, scoring, batch_size=1)
    with NearTies(backend) as ties:
        one.run()
    many = _runner(dataset, backend, tmp_path / "many", tmp_path / "c", variants, scoring, batch_size=4)
    assert many.executor.packed  # a CPU backend packs; padded is the path of other devices
    many.executor.packed = packed
    batches = []
    orig = many.executor.batches
    many.executor.batches = lambda *a: batches.append(b := orig(*a)) or b
    calls = []
    real = backend.hidden_states
    backend.hidden_states = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        with ties:
            many.run()
    finally:
        del backend.hidden_states
    assert max(len(b) for bs in batches for b in bs) == 4  # batching really happened
    if packed and scoring == "reference":
        # one model call per batch: the shared prefix grows inside the batch's own pass
        assert len(calls) == sum(len(bs) for bs in batches)
    a, b = _by_key(read_results(tmp_path / "one")), _by_key(read_results(tmp_path / "many"))
    # other batch shapes round differently: numbers to a tolerance, answers unless a near tie
    assert_same_outcomes(b, a, tol=2e-4, ties=ties.count)


@pytest.mark.parametrize("scoring", ["reference", "choice", "generate"])
def test_lm_head_never_sees_a_sequence(dataset, backend, tmp_path, scoring):
    """No step allocates vocab × sequence logits: the LM head's input has at most as many rows
    as the longest answer (reference) or one row (choice, generate), per sample in a batch."""
    seen = []
    handle = backend.lm_head.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    try:
        with FlopCounter(backend) as counter:
            _runner(
                dataset, backend, tmp_path / "o", tmp_path / "c", ["videorope"], scoring, batch_size=1
            ).run()
    finally:
        handle.remove()
    longest_answer = 3  # "200" in the byte tokenizer
    rows = [int(torch.tensor(s[:-1]).prod()) if len(s) > 1 else 1 for s in seen]
    assert seen and max(rows) <= longest_answer
    assert counter.max_head_rows == max(rows) and counter.tokens > 0


def _rows(spec):
    """(sample id, length, first inserted slot, frames) → planner-like rows at offset 0."""
    return [
        dict(sample_id=sid, length=L, needle_slot=q, distractor_slots=[], num_frames=L + 1, haystack_offset=0)
        for sid, L, q in spec
    ]


def test_samples_of_every_length_share_one_prefix_group():
    """Offset 0 for all lengths: one group, ordered by first inserted slot, so each haystack
    prefix is computed once for all lengths (the global prefix-tree floor)."""
    from vniahd.evaluation.planning.work_plan import plan_units

    rows = _rows([("a", 10, 9), ("b", 4, 1), ("c", 8, 3), ("d", 4, 3), ("e", 10, 2)])
    (unit,) = plan_units(rows, [get_variant("vanilla")])
    assert unit.sample_ids == ["b", "e", "d", "c", "a"]  # slots 1, 2, 3 (length 4 first), 3, 9


def test_split_units_is_contiguous_balanced_and_pays_only_restarts():
    """Hand-checkable costs (token counts, 1 token per frame, no text): the split covers the run
    in order, its shares' costs add up to the single-process cost plus one prefix recomputation
    per cut, and no share costs more than the evenly split total plus one restart and one sample."""
    from vniahd.evaluation.planning.work_plan import cost_profile, plan_units, split_cost, split_units

    rows = _rows([(f"s{i}", 40, 2 * i + 1) for i in range(12)])
    units = plan_units(rows, [get_variant("vanilla"), get_variant("tad")])

    def profile(u):
        return cost_profile(u.rows, text_before=0, tokens_per_frame=1, prefix_sharing=True)

    # one sample's suffix = 41 frames + 64 text − slot; prefix growth 2 per sample after the first
    marginal, restart = profile(units[0])
    assert marginal[:2] == [1 + (41 + 64 - 1), 2 + (41 + 64 - 3)] and restart[:2] == [0, 1]
    single = sum(sum(profile(u)[0]) for u in units)
    for world in (1, 2, 3, 4, 8):
        shares = split_units(units, world, profile)
        assert len(shares) == world
        flat = [(u.variant.name, sid) for share in shares for u in share for sid in u.sample_ids]
        assert flat == [(u.variant.name, sid) for u in units for sid in u.sample_ids]
        costs = split_cost(shares, profile)
        cuts = [u for share in shares for u in share if u.key[2] > 0]
        # a part starting at sample k recomputes its prefix (slot 2k+1 frames) instead of
        # growing it by 2: 2k − 1 extra tokens per cut, nothing else
        assert sum(costs) == single + sum(2 * u.key[2] - 1 for u in cuts)
        assert len(cuts) <= world - 1
        assert max(costs) <= single / world + max(restart) + 2 * max(marginal) + 30


def test_auto_batches_only_when_they_waste_almost_nothing():
    """Hand-made lengths and shares: auto batching stops where padding or recomputing a deeper
    shared prefix would cost more than AUTO_BATCH_MAX_EXTRA (2 %) of the batch's own work; an
    explicit batch size batches regardless."""
    from vniahd.evaluation.planning.work_plan import cut_batches

    ok = [True] * 4
    # samples 1-3 share 50 tokens with their predecessor; sample 3 is 40 tokens shorter (padding)
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 50, 50], "auto") == [[0, 1, 2], [3]]
    # sample 2 shares 80 with sample 1: in one batch it would recompute 30 of them
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 80, 50], "auto") == [[0, 1], [2], [3]]
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 80, 50], 4) == [[0, 1, 2, 3]]
    assert cut_batches([100, 100, 100, 60], [True, False, True, True], [0, 50, 50, 50], 4) == [
        [0],
        [1],
        [2, 3],
    ]


@pytest.fixture(scope="module")
def deep_dataset(tmp_path_factory):
    """Three lengths, seven depths: batches whose first member shares more with the sample before
    it than the walk's cache still holds."""
    return make_dataset(
        tmp_path_factory.mktemp("deep") / "ds",
        lengths=(6, 10, 14),
        depths=("0", "0.15", "0.3", "0.45", "0.6", "0.8", "1"),
        haystack_frames=16,
    )


@pytest.mark.parametrize("batch_size,chunk", [(16, 296), (16, 344), (16, 424), ("auto", 0), (4, 260)])
def test_a_packed_pass_feeds_what_the_plan_budgeted(deep_dataset, backend, tmp_path, batch_size, chunk):
    """The work plan predicts each packed pass exactly: the shared prefix it grows (what the walk's
    cache lacks) plus its members' remainders stay within the pack budget, so no head has to be
    split off into a pass of its own."""
    runner = _runner(
        deep_dataset,
        backend,
        tmp_path / "o",
        tmp_path / "c",
        ["videorope"],
        "choice",
        batch_size=batch_size,
        prefill_chunk=chunk,
    )
    ex = runner.executor
    assert ex.packed
    steps, packed = [], []
    real_step, real_hidden = ex._prefix_step, backend.hidden_states

    def step(*a):
        steps.append(real_step(*a))
        return steps[-1]

    def hidden(embeds, pos, cache=None, segments=None, shared=0):
        if segments is not None:
            cached, start, _ = steps[-1]
            packed.append((int(embeds.shape[1]), shared, start - cached))
        return real_hidden(embeds, pos, cache=cache, segments=segments, shared=shared)

    ex._prefix_step, backend.hidden_states = step, hidden
    try:
        runner.run()
    finally:
        del backend.hidden_states
    assert packed, "no packed pass ran"
    assert any(head > 0 for _, _, head in packed)  # passes that grew the prefix were among them
    for rows, shared, head in packed:
        assert shared == head and rows <= ex.pack_tokens, (rows, shared, head, ex.pack_tokens)


def test_packed_batches_have_no_padding_only_a_token_budget():
    """Packing (a CPU backend): no padding to pay, so a shorter member joins freely; a pack stops
    at the token budget (sum of remainders from the pack's common prefix) or at 2 % recomputed."""
    from vniahd.evaluation.planning.work_plan import AUTO_PACK_MAX, cut_batches

    ok = [True] * 4
    # padded, sample 3 (40 shorter) costs 40 pads > 2 %; packed it costs nothing
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 50, 50], "auto", pack_tokens=2048) == [[0, 1, 2, 3]]
    # one pass: the common prefix the cache lacks (50, along sample 0), then the remainders
    # from it: 50 + (50 + 50 + 50 + 10) = 210 tokens
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 50, 50], "auto", pack_tokens=210) == [[0, 1, 2, 3]]
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 50, 50], "auto", pack_tokens=209) == [[0, 1, 2], [3]]
    assert cut_batches([100, 100], ok[:2], [0, 50], "auto", pack_tokens=149) == [[0], [1]]
    # sample 2 shares 80 with sample 1: in a pack with it (or with 3, whose common prefix is 50)
    # it would recompute 30 tokens, more than 2 % of the pack's own work
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 80, 50], "auto", pack_tokens=2048) == [
        [0, 1],
        [2],
        [3],
    ]
    # an explicit size packs regardless of the waste, within the budget
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 80, 50], 4, pack_tokens=2048) == [[0, 1, 2, 3]]
    # budget 100: [0, 1] feeds 50 + 100; [1, 2] feeds 30 (80 − 50) + 20 + 20; [1, 2, 3] 0 + 110
    assert cut_batches([100, 100, 100, 60], ok, [0, 50, 80, 50], 4, pack_tokens=100) == [[0], [1, 2], [3]]
    # the walk's cache follows each batch's FIRST member: after [0, 1] it holds what sample 0
    # shares with sample 2 (0 tokens), not what sample 1 does (10), so a pack starting at 2 also
    # feeds those 10: [2, 3, 4] would need 10 + 3 × 30 = 100 > 90 tokens, [2, 3] needs 70
    ok5 = [True] * 5
    assert cut_batches([40] * 5, ok5, [0, 0, 10, 10, 10], 3, pack_tokens=90) == [[0, 1], [2, 3], [4]]
    many = cut_batches([10] * 200, [True] * 200, [0] + [9] * 199, "auto", pack_tokens=10**6)
    assert max(len(b) for b in many) == AUTO_PACK_MAX
