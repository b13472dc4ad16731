"""``--attention-scope zigzag-local:W``: the released harness's per-process view, reproduced.

The released V-NIAH-D / V-RULER harness pads a sequence with 1…2W rows to a multiple of 2W, cuts
it into 2W chunks, gives process r chunks r and 2W−1−r, and (its ring-attention patch reaching
Llama only) lets each process attend within its own chunks. The references here are independent
of vniahd's per-process feeds: a hand-computed chunk table, and the model run on the whole
sequence with a dense boolean mask (full-attention families) or on each process's concatenation
cut by hand (hybrid Qwen3.5, whose recurrent layers a mask cannot restrict).
"""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from evaluate_fixtures import make_dataset
from model_helpers import FAMILY_SPECS

import vniahd.models.attention as attention_module
from vniahd.errors import VniahdError
from vniahd.evaluation import EvalConfig, Runner
from vniahd.evaluation.execution.attention_scope import AttentionScope, parse_scope
from vniahd.evaluation.scoring import Context, score_reference
from vniahd.models import get_backend
from vniahd.rope import get_variant


def test_chunk_table_by_hand():
    w2 = AttentionScope(2)  # 4 chunks
    # 30 rows: pad 4 − 30 mod 4 = 2 → 32 rows, chunks of 8: [0,8) p0, [8,16) p1, [16,24) p1, [24,32) p0
    assert w2.padded_length(30) == 32
    assert [w2.process_of(i, 32) for i in (0, 7, 8, 15, 16, 23, 24, 31)] == [0, 0, 1, 1, 1, 1, 0, 0]
    assert w2.visible_rows(27, 30) == [*range(0, 8), *range(24, 28)]
    assert w2.visible_rows(5, 30) == list(range(6))
    assert w2.visible_rows(20, 30) == [*range(8, 16), *range(16, 21)]
    # a multiple of 2W still gets a full chunk-count of pads (the release pads 1…16, never 0)
    assert w2.padded_length(32) == 36
    w8 = parse_scope("zigzag-local:8")
    assert (w8.padded_length(160), w8.padded_length(161), w8.padded_length(175)) == (176, 176, 176)
    assert w8.name == "zigzag-local:8" and parse_scope("full").is_full


@pytest.mark.parametrize("bad", ["zigzag", "zigzag-local:0", "zigzag-local:x", "local:8", ""])
def test_bad_scope_names_the_fix(bad):
    with pytest.raises(VniahdError, match="zigzag-local:W"):
        parse_scope(bad)


def test_scope_needs_reference_scoring_and_turns_sharing_off():
    with pytest.raises(VniahdError, match="--scoring reference"):
        EvalConfig(variants=["mrope"], scoring="choice", attention_scope="zigzag-local:8")
    cfg = EvalConfig(variants=["mrope"], attention_scope="zigzag-local:8")
    assert (cfg.prefix_sharing, cfg.batch_size) == (False, 1)
    assert cfg.to_dict()["attention_scope"] == "zigzag-local:8"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("scope") / "ds")


def _inputs(dataset, be, variant, out):
    """The plan's last sample (needle and distractor inside) under ``variant``, materialised."""
    runner = Runner(dataset, be, EvalConfig(variants=[variant], progress=False), out)
    row = runner.rows()[-1]
    hay = runner.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    images = runner.cache.images(
        {n: dataset.image(n) for n in [row["needle_image"], *row["distractor_images"]]}
    )
    return runner, runner.with_positions(runner.prepare(row, hay, images), runner.variants[0])


def _dense_mask(scope: AttentionScope, n: int) -> torch.Tensor:
    """[1, 1, n, n] additive mask: row i sees j ≤ i of its own process (from the chunk table)."""
    padded = scope.padded_length(n)
    proc = torch.tensor([scope.process_of(i, padded) for i in range(n)])
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool)) & (proc[:, None] == proc[None, :])
    mask = torch.zeros(n, n)
    mask[~allowed] = float("-inf")
    return mask[None, None]


@contextlib.contextmanager
def _under_mask(mask: torch.Tensor):
    """Every forward pass inside gets ``mask`` as its attention mask (the backend's one hook)."""
    real = attention_module.cached_attention_mask
    attention_module.cached_attention_mask = lambda *a, **k: mask
    try:
        yield
    finally:
        attention_module.cached_attention_mask = real


@pytest.mark.parametrize("spec", list(FAMILY_SPECS.values()))
def test_zigzag_logits_equal_an_independent_reference(dataset, tmp_path, spec):
    be = get_backend(spec)
    runner, inputs = _inputs(dataset, be, get_variant("videorope"), tmp_path / "out")
    s, answer = inputs.prompt_len, list(inputs.answer_ids)
    hybrid = spec.startswith("random:qwen3.5")
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        emb = torch.cat([inputs.embeds, be.embed_text(answer)])
        n = len(emb)
        pos = inputs.positions[:, :n]
        full = be.logits(be.hidden_states(emb[None], pos[:, None])[0, s - 1 : s - 1 + len(answer)])
        for w in (2, 4, 8):
            scope = AttentionScope(w)
            got = be.logits(_scored_hidden(be, inputs, scope))
            if hybrid:  # each process's own concatenation, cut by hand, through the whole model
                size = n // (2 * w) + 1  # rows per chunk: the pad takes n to the next multiple of 2w
                want_rows = []
                for j in range(len(answer)):
                    row = s - 1 + j
                    chunk = row // size
                    proc = min(chunk, 2 * w - 1 - chunk)
                    own = [i for c in (proc, 2 * w - 1 - proc) for i in range(c * size, (c + 1) * size)]
                    idx = torch.tensor([i for i in own if i <= row])
                    want_rows.append(be.hidden_states(emb[idx][None], pos[:, idx][:, None])[0, -1])
                want = be.logits(torch.stack(want_rows))
            else:  # the whole sequence under a dense mask of the chunk table
                with _under_mask(_dense_mask(scope, n)):
                    hidden = be.hidden_states(emb[None], pos[:, None])[0]
                want = be.logits(hidden[s - 1 : s - 1 + len(answer)])
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
            # the reference can tell: the local view is not full attention
            assert (got - full).abs().max() > 1e-4


def _scored_hidden(be, inputs, scope):
    from vniahd.evaluation.scoring import _local_hidden

    return _local_hidden(be, inputs, Context(scope=scope))


def test_answer_rows_across_processes(dataset, tmp_path):
    """With chunks shorter than the answer, the scored rows fall to two processes; each gets
    its own pass and the result equals the dense-mask reference row by row."""
    be = get_backend("random:qwen2-vl")
    runner, inputs = _inputs(dataset, be, get_variant("mrope"), tmp_path / "out")
    s, answer = inputs.prompt_len, list(inputs.answer_ids)
    n = s + len(answer)
    w = n // 4  # chunks of ~2 rows: the answer rows land on several processes
    scope = AttentionScope(w)
    padded = scope.padded_length(n)
    procs = {scope.process_of(s - 1 + j, padded) for j in range(len(answer))}
    assert len(procs) > 1 or len(answer) == 1
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        got = _scored_hidden(be, inputs, scope)
        emb = torch.cat([inputs.embeds, be.embed_text(answer)])
        with _under_mask(_dense_mask(scope, n)):
            want = be.hidden_states(emb[None], inputs.positions[:, None, :n])[0, s - 1 : s - 1 + len(answer)]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert score_reference(be, inputs, Context(scope=scope)).extra["answer_ids"] == answer


def test_eval_records_the_scope_and_refuses_to_mix(dataset, tmp_path):
    from vniahd.evaluation import read_results

    be = get_backend("random:qwen2-vl")
    out = tmp_path / "zz"
    cfg = EvalConfig(variants=["mrope"], attention_scope="zigzag-local:4", progress=False)
    Runner(dataset, be, cfg, out).run()
    run = json.loads((out / "run.json").read_text())
    assert run["attention_scope"] == "zigzag-local:4" and run["config"]["attention_scope"] == "zigzag-local:4"
    recs = read_results(out)
    assert len(recs) == len(dataset.samples) and {r["attention_scope"] for r in recs} == {"zigzag-local:4"}
    with pytest.raises(VniahdError, match="--attention-scope zigzag-local:4, this run asks for full"):
        Runner(dataset, be, EvalConfig(variants=["mrope"], progress=False), out).run()


def test_tiny_model_shows_the_released_identical_middle_rows(demo_haystack, tmp_path):
    """The published signature, reproduced: under zigzag-local:8 the shipped tiny model's answer
    at depths 0.25–0.75 is the same whatever the depth (the needle sits in chunks the answer's
    process never sees), while full attention's answers do depend on it."""
    from vniahd.dataset.generate import generate
    from vniahd.evaluation import read_results
    from vniahd.needles import demo_needles_path

    ds = generate(
        haystack=demo_haystack,
        needles=demo_needles_path(),
        out=tmp_path / "ds",
        lengths="64,128",
        depths="0:1:0.25",
        schedule="none",
        progress=False,
    )
    be = get_backend("tiny")

    def middle(scope: str) -> tuple[dict, float]:
        out = tmp_path / scope.replace(":", "-")
        cfg = EvalConfig(variants=["mrope"], attention_scope=scope, progress=False)
        Runner(ds, be, cfg, out).run()
        answers: dict = {}
        recs = [r for r in read_results(out) if 0 < r["depth"] < 1]
        for r in recs:
            answers.setdefault((r["length"], r["needle_id"], r["repeat"]), set()).add(r["prediction"])
        return answers, sum(r["correct"] for r in recs) / len(recs)

    local, local_acc = middle("zigzag-local:8")
    assert len(local) == 2 * 6 and all(len(p) == 1 for p in local.values())
    _, full_acc = middle("full")
    # full attention finds the needle in the middle; the local view answers from its prior
    assert full_acc > 0.8 and local_acc < 0.5
