"""Chunked prefill: exact against one pass, and causal for a chunk over a longer cache."""

from __future__ import annotations

import pytest
import torch
from evaluate_fixtures import NearTies, assert_same_outcomes, make_dataset

from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.evaluation.execution.chunked import Feed, default_prefill_chunk, forward_rows, tensor_rows
from vniahd.evaluation.results.store import result_key
from vniahd.models import get_backend
from vniahd.rope import Text, Video, get_variant, variant_axes
from vniahd.rope.hf import install_allocation


@pytest.fixture(scope="module")
def backend():
    be = get_backend("random:qwen2-vl")
    install_allocation(be.language_model, variant_axes(get_variant("videorope"), be.rotary))
    return be


def _inputs(be, n_video_frames=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    segs = [Text(5), Video(n_video_frames, 2, 3), Text(7)]
    pos = get_variant("videorope").positions(segs)
    emb = torch.randn(pos.shape[1], be.row_width, generator=g)
    return emb, pos


@pytest.mark.parametrize("chunk", [1, 5, 16, 33])
def test_chunked_equals_one_pass(backend, chunk):
    emb, pos = _inputs(backend)
    n = emb.shape[0]
    keep = [0, 3, n // 2, n - 2, n - 1]
    with torch.inference_mode():
        full = backend.hidden_states(emb[None], pos[:, None])[0]
        got = forward_rows(backend, [Feed(n, tensor_rows(emb), pos, keep)], chunk=chunk)[0]
    torch.testing.assert_close(got, full[keep], atol=1e-5, rtol=1e-5)


def test_chunk_over_longer_cache_is_causal_lower_right(backend):
    """A chunk of q queries over k > q keys: query i must see keys 0..k-q+i (lower-right causal).
    Equal to the full pass, and changing a later token of the chunk leaves earlier rows alone."""
    emb, pos = _inputs(backend)
    n, q = emb.shape[0], 10
    p = n - q
    with torch.inference_mode():
        full = backend.hidden_states(emb[None], pos[:, None])[0]
        cache = backend.new_cache()
        backend.hidden_states(emb[None, :p], pos[:, None, :p], cache=cache)
        chunk = backend.hidden_states(emb[None, p:], pos[:, None, p:], cache=cache)[0]
        torch.testing.assert_close(chunk, full[p:], atol=1e-5, rtol=1e-5)
        # An upper-left mask (torch's is_causal with q < k) would let query i see only keys 0..i:
        # i.e. drop most of the cache. Its output differs, so the equality above is a real check.
        changed = emb.clone()
        changed[-1] += 1.0
        cache2 = backend.new_cache()
        backend.hidden_states(changed[None, :p], pos[:, None, :p], cache=cache2)
        chunk2 = backend.hidden_states(changed[None, p:], pos[:, None, p:], cache=cache2)[0]
        torch.testing.assert_close(chunk2[:-1], chunk[:-1], atol=1e-6, rtol=0)
        assert not torch.allclose(chunk2[-1], chunk[-1])
        # the cache's keys matter: a different prefix changes the chunk's rows
        other = emb.clone()
        other[0] += 1.0
        cache3 = backend.new_cache()
        backend.hidden_states(other[None, :p], pos[:, None, :p], cache=cache3)
        chunk3 = backend.hidden_states(emb[None, p:], pos[:, None, p:], cache=cache3)[0]
        assert not torch.allclose(chunk3[0], chunk[0])


def test_batched_feeds_equal_single_feeds(backend):
    """Right-padded batches give each sequence's rows as if it ran alone (no mask needed)."""
    feeds = []
    for i, frames in enumerate([3, 9, 6]):
        emb, pos = _inputs(backend, frames, seed=i)
        n = emb.shape[0]
        feeds.append(Feed(n, tensor_rows(emb), pos, [n - 3, n - 1]))
    with torch.inference_mode():
        alone = [forward_rows(backend, [f])[0] for f in feeds]
        for chunk in (0, 7):
            together = forward_rows(backend, feeds, chunk=chunk)
            for a, b in zip(alone, together):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_default_chunk_sizes():
    assert default_prefill_chunk("cpu") == 8192
    assert default_prefill_chunk(torch.device("cuda", 3)) == 4096


@pytest.mark.parametrize("scoring", ["reference", "generate"])
def test_runner_chunked_equals_unchunked(tmp_path, backend, scoring):
    ds = make_dataset(tmp_path / "ds")
    be = get_backend("random:qwen2-vl")
    out = {}
    with NearTies(be) as ties:
        for chunk in (0, 16):
            settings = EvalConfig(
                variants=[get_variant("mrope"), get_variant("videorope")],
                scoring=scoring,
                cache_dir=tmp_path / "c",
                progress=False,
                prefill_chunk=chunk,
            )
            Runner(ds, be, settings, tmp_path / f"o{chunk}").run()
            out[chunk] = {result_key(r): r for r in read_results(tmp_path / f"o{chunk}")}
    # 16-row chunks round differently from one pass: the same answers unless a near tie
    assert len(out[0]) == 2 * len(ds.samples)
    assert_same_outcomes(out[16], out[0], tol=1e-4, ties=ties.count)
    run = __import__("json").loads((tmp_path / "o16" / "run.json").read_text())
    assert run["evaluation"]["prefill_chunk"] == 16 and run["evaluation"]["prefix_sharing"] is True


def test_packed_feeds_with_a_head_over_the_chunk_equal_one_pass(backend):
    """forward_packed: a head and two feeds over a cache give each feed the rows of one causal pass
    over [cache rows, head, feed]; a head that would take the pass over the chunk is fed alone
    first (chunked), with the same rows; feeds that overflow the chunk by themselves are refused."""
    from vniahd.evaluation.execution.chunked import forward_packed

    emb, pos = _inputs(backend, 12, seed=5)  # 7 + 12 × 6 + 9 rows: a prefix, a head, then feeds
    p, g = 20, 30
    tails = [emb[p + g : p + g + 11], emb[p + g + 11 : p + g + 25]]
    feeds = [Feed(len(t), tensor_rows(t), pos[:, p + g : p + g + len(t)], list(range(len(t)))) for t in tails]
    head = Feed(g, tensor_rows(emb[p : p + g]), pos[:, p : p + g], [])
    with torch.inference_mode():
        want = []
        for t in tails:  # transformers' own causal pass over each whole sequence
            whole = torch.cat([emb[: p + g], t])
            want.append(backend.hidden_states(whole[None], pos[:, None, : len(whole)])[0, p + g :])
        for chunk in (0, 64, 40):  # 40 < 30 + 25: the head goes first, on its own
            cache = backend.new_cache()
            backend.hidden_states(emb[None, :p], pos[:, None, :p], cache=cache)
            got = forward_packed(backend, feeds, cache, chunk, head)
            assert cache.get_seq_length() == p + g + 25
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="exceed the prefill chunk"):
            forward_packed(backend, feeds, backend.new_cache(), 24, None)
