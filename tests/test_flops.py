"""The FLOP model (hand-computed values), the prefix-tree floor, the counter, and the GPU
benchmark's CPU-side logic (tiny shape smoke)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from vniahd.evaluation.execution.chunked import Feed, forward_rows, tensor_rows
from vniahd.evaluation.planning.flops import FlopCounter, ModelShape, trie_flops
from vniahd.models import get_backend

SEVEN_B = ModelShape(
    hidden=3584, layers=28, heads=28, kv_heads=4, head_dim=128, intermediate=18944, vocab=152064
)


def test_seven_b_per_token_numbers():
    # per layer: q,o 2·3584·3584 each; k,v 2·3584·512 each; MLP 3·2·3584·18944
    per_layer = 2 * (2 * 3584 * 3584) + 2 * (2 * 3584 * 512) + 3 * 2 * 3584 * 18944
    assert SEVEN_B.linear_per_token() == 28 * per_layer == 13_050_576_896
    assert SEVEN_B.head_per_row() == 2 * 3584 * 152064 == 1_089_994_752
    assert SEVEN_B.head_share() == pytest.approx(0.0771, abs=2e-4)  # at zero context


def test_attention_and_forward():
    s = ModelShape(hidden=8, layers=2, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10)
    # 3 new tokens after 5 cached: keys seen 6 + 7 + 8 = 21; 4·heads·d per key per layer
    assert s.attention(3, 5) == 2 * 4 * 2 * 4 * 21
    assert s.forward(3, 5, head_rows=2) == 3 * s.linear_per_token() + s.attention(3, 5) + 2 * 2 * 8 * 10
    # splitting a pass into chunks costs the same FLOPs (the cache supplies the keys)
    assert s.forward(7, 0) == pytest.approx(s.forward(4, 0) + s.forward(3, 4))


def test_trie_floor():
    s = ModelShape(hidden=8, layers=1, heads=1, kv_heads=1, head_dim=8, intermediate=8, vocab=4)
    a = [("sys", 3), ("f0", 2), ("needle", 2)]
    b = [("sys", 3), ("f0", 2), ("f1", 2), ("needle", 2)]
    c = [("sys", 3), ("x", 1)]
    got = trie_flops(s, [a, b, c])
    want = (
        s.forward(3, 0)
        + s.forward(2, 3)
        + s.forward(2, 5)
        + s.forward(2, 5)
        + s.forward(2, 7)
        + s.forward(1, 3)
    )
    assert got["flops"] == pytest.approx(want) and got["tokens"] == 3 + 2 + 2 + 2 + 2 + 1
    assert trie_flops(s, [a, a])["flops"] == trie_flops(s, [a])["flops"]


def test_counter_counts_what_runs():
    be = get_backend("random:qwen2-vl")
    shape = ModelShape.from_backend(be)
    emb = torch.randn(20, be.row_width)
    pos = torch.arange(20.0).expand(3, 20)
    with torch.inference_mode(), FlopCounter(be) as c:
        h = forward_rows(be, [Feed(20, tensor_rows(emb), pos, [18, 19])], chunk=8)[0]
        be.logits(h)
    assert c.tokens == 20 and c.head_rows == 2 and c.max_head_rows == 2
    assert c.flops == pytest.approx(shape.forward(20, 0, head_rows=2))
    assert "hidden_states" not in vars(be)  # unwrapped again


def test_counter_counts_packed_segments_over_the_cache_and_head_only():
    """A packed pass (cache of 6, head of 4, segments of 3 and 5): the head attends to 6 + its
    own, each segment to 6 + 4 + its own — as if each had run alone after the head."""
    be = get_backend("random:qwen2-vl")
    shape = ModelShape.from_backend(be)
    emb, pos = torch.randn(18, be.row_width), torch.arange(18.0).expand(3, 18)
    cache = be.new_cache()
    with torch.inference_mode():
        be.hidden_states(emb[None, :6], pos[:, None, :6], cache=cache)
        head = Feed(4, tensor_rows(emb[6:10]), pos[:, 6:10], [])
        feeds = [
            Feed(3, tensor_rows(emb[10:13]), pos[:, 10:13], [2]),
            Feed(5, tensor_rows(emb[13:]), pos[:, 10:15], [4]),
        ]
        with FlopCounter(be) as c:
            forward_rows(be, feeds, cache, packed=True, head=head)
    # keys seen: head 7+8+9+10; segment of 3: 11+12+13; segment of 5: 11+…+15
    keys = (7 + 8 + 9 + 10) + (11 + 12 + 13) + (11 + 12 + 13 + 14 + 15)
    assert c.tokens == 12
    assert c.flops == pytest.approx(
        12 * shape.linear_per_token() + shape.layers * 4 * shape.heads * shape.head_dim * keys
    )


def _load_bench(name: str):
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_scale_tiny_cpu_smoke(capsys):
    mod = _load_bench("gpu_scale")
    rc = mod.main(
        ["--shape", "tiny", "--device", "cpu", "--frames", "4,9", "--tokens-per-frame", "6", "--chunk", "16"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "frames=4" in out and "frames=9" in out and "projected 450-sample grid" in out
