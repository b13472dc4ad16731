"""A vniahd score equals what the model's own transformers code computes for the same input.

Everything vniahd does around the model — the cached vision embeddings spliced in without vision
start/end tokens, positions from vniahd.rope, the allocation swap, scoring only the answer rows —
is checked here against one call of the full ``…ForConditionalGeneration`` of each family
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3-VL-MoE, GLM-4.1V, GLM-4.5V, Qwen3.5, Qwen3.5-MoE): token
ids with the model's own image placeholder (one image per frame), pixels from the family's own
transformers image processor, the model's own splice (with Qwen3-VL's DeepStack features added
after its first layers; GLM's partial rotary, in adjacent pairs for GLM-4.1V and NeoX halves for
GLM-4.5V) and LM head.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluate_fixtures import NearTies, assert_same_outcomes, make_dataset

from vniahd.evaluation import EvalConfig, Runner
from vniahd.models import get_backend
from vniahd.rope import get_variant
from vniahd.rope.hf import model_position_ids


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("own") / "ds")


def own_logits(be, frames: np.ndarray, before: list[int], after: list[int], answer: list[int], positions):
    """Logits of the answer rows from the full model's own forward (its splice, its head)."""
    pc = be.patch
    glm = type(be.model).__name__.startswith("Glm4v")
    if glm:  # GLM-4.1V's own processor (its pixel budget spans the 2 frames of a temporal group)
        from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

        proc = Glm4vImageProcessorPil(patch_size=pc.patch_size, merge_size=pc.merge_size)
    else:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        proc = Qwen2VLImageProcessorPil(
            patch_size=pc.patch_size,
            merge_size=pc.merge_size,
            temporal_patch_size=pc.temporal_patch_size,
            image_mean=list(pc.image_mean),
            image_std=list(pc.image_std),
            size={"shortest_edge": pc.min_pixels, "longest_edge": pc.max_pixels},
        )
    px = proc(images=list(frames), return_tensors="np")  # each frame its own temporal group
    grids = px["image_grid_thw"]
    gh, gw = int(grids[0][1]), int(grids[0][2])
    placeholder = be.tokenizer.token_id("<|image_pad|>")
    be.model.config.image_token_id = placeholder  # the random model's vocabulary is the byte tokenizer's
    tokens = len(frames) * (gh // pc.merge_size) * (gw // pc.merge_size)
    ids = before + [placeholder] * tokens + after + answer
    with torch.inference_mode():
        out = be.model(
            input_ids=torch.tensor([ids]),
            pixel_values=torch.from_numpy(px["pixel_values"]),
            image_grid_thw=torch.from_numpy(grids),
            # 4-stream variants (VRoPE) get the padding row transformers needs (rope/hf.py)
            position_ids=model_position_ids(positions[:, None, : len(ids)].float()),
        )
    s = len(ids) - len(answer)
    return out.logits[0, s - 1 : s - 1 + len(answer)].float()


def last_sample(dataset, be, variant, out):
    """(runner, row, prepared, inputs) of the plan's last sample (needle and distractor inside)
    under ``variant``, prompt embeddings materialised."""
    runner = Runner(dataset, be, EvalConfig(variants=[variant], progress=False), out)
    row = runner.rows()[-1]
    hay = runner.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    images = runner.cache.images(
        {n: dataset.image(n) for n in [row["needle_image"], *row["distractor_images"]]}
    )
    prepared = runner.prepare(row, hay, images)
    return runner, row, prepared, runner.with_positions(prepared, runner.variants[0])


def assert_fast_equals_alone(dataset, be, variants, root, **settings):
    """The full evaluator (prefix sharing asked for, 7-token prefill chunks, batches of 4) gives
    the answers and option log-probabilities of scoring every sample alone in one pass
    (``settings``: more :class:`EvalConfig` for both, e.g. ``prompt="native"``). Returns the
    fast runner's prefix statistics."""
    from vniahd.evaluation import read_results

    stats = {}

    def run(out, **kw):
        config = EvalConfig(variants=variants, scoring="choice", progress=False, **settings, **kw)
        runner = Runner(dataset, be, config, root / out)
        runner.run()
        stats[out] = runner.prefix_stats
        return {(r["sample_id"], r["variant"]): r for r in read_results(root / out)}

    with NearTies(be) as ties:
        fast = run("fast", batch_size=4, prefill_chunk=7)
        alone = run("alone", batch_size=1, prefill_chunk=0, prefix_sharing=False)
    assert fast.keys() == alone.keys() and len(fast) == len(variants) * len(dataset.samples)
    # packed batches, chunks and a shared cache round differently from one pass per sample:
    # numbers to a tolerance, answers equal unless a near tie could flip them
    assert_same_outcomes(fast, alone, tol=1e-4, ties=ties.count)
    return stats["fast"]


@pytest.mark.parametrize(
    "spec",
    [
        "random:qwen2-vl",
        "random:qwen2.5-vl?hidden=64&heads=2",
        "random:qwen3-vl",
        "random:qwen3-vl-moe",
        "random:glm-4.1v?heads=2",
        "random:glm-4.5v?heads=2",
        "random:qwen3.5",
        "random:qwen3.5-moe",
    ],
)
@pytest.mark.parametrize(
    "name", ["native", "videorope", "vanilla", "hope", "vrope", "videorope-plus", "mhrope"]
)
def test_answer_logits_equal_the_models_own_forward(dataset, tmp_path, spec, name):
    be = get_backend(spec)
    if name == "mhrope" and be.rotary.kv_heads < 3:  # its default split needs a KV head per stream
        name = "mhrope:heads=1/0/1"
    # the model's own allocation: M-RoPE blocks (Qwen2/2.5-VL) or interleaved t/h/w (Qwen3-VL)
    native = {"mrope-blocks": "mrope", "interleaved": "mrope-interleaved"}[be.rotary.native_allocation]
    variant = get_variant(native if name == "native" else name)
    runner, row, prep, inputs = last_sample(dataset, be, variant, tmp_path / "out")
    s, answer = inputs.prompt_len, list(inputs.answer_ids)
    before = be.tokenizer.encode(runner.config.template.before)
    after_start = len(before) + prep.num_frames * runner.cache.tokens_per_frame
    after_ids = be.tokenizer.encode(
        runner.config.template.render_after(runner.builder.question(dataset.needles[row["needle_id"]]))
    )
    assert s == after_start + len(after_ids)
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        emb = torch.cat([inputs.embeds, be.embed_text(answer)])
        hidden = be.hidden_states(emb[None], inputs.positions[:, None, : len(emb)])
        ours = be.logits(hidden[0, s - 1 : s - 1 + len(answer)])
        if name != "native":  # the model has no such allocation of its own: apply ours to it too
            theirs = own_logits(be, dataset.frames(row), before, after_ids, answer, inputs.positions)
    if name == "native":  # the model's own rotary module, untouched, against our swapped-in one
        theirs = own_logits(be, dataset.frames(row), before, after_ids, answer, inputs.positions)
    # Same math, same kernels: equal to float32 rounding (bit-equal on the machines seen so far).
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # The comparison can see a position error: a random model barely depends on positions, yet
    # moving every stream by 3 from token 20 on moves the logits far beyond the tolerance.
    moved = inputs.positions.clone()
    moved[:, 20:] += 3
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        hidden = be.hidden_states(emb[None], moved[:, None, : len(emb)])
        wrong = be.logits(hidden[0, s - 1 : s - 1 + len(answer)])
    assert (wrong - theirs).abs().max() > 1e-4


def test_qwen3_vl_deepstack_travels_through_every_evaluation_path(dataset, tmp_path):
    """Qwen3-VL's DeepStack features reach the text model through the cache, the shared prefix,
    prefill chunks that cut through the video and right-padded batches: the full evaluator's
    answers and option log-probabilities equal scoring each sample alone in one pass, and the
    features matter (dropping them changes the logits)."""
    be = get_backend("random:qwen3-vl")
    variants = [get_variant("videorope"), get_variant("mrope-interleaved")]
    assert_fast_equals_alone(dataset, be, variants, tmp_path)

    runner, _, _, inputs = last_sample(dataset, be, variants[0], tmp_path / "x")
    d = be.hidden_size
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        pos = inputs.positions[:, None, : len(inputs.embeds)]
        full = be.hidden_states(inputs.embeds[None], pos)
        dropped = inputs.embeds.clone()
        dropped[:, d:-1] = 0  # the same tokens without their DeepStack features
        assert (be.hidden_states(dropped[None], pos) - full).abs().max() > 1e-3


@pytest.mark.parametrize("spec", ["random:qwen3.5", "random:qwen3.5-moe"])
def test_qwen3_5_runs_without_prefix_sharing_and_says_why(dataset, tmp_path, spec):
    """Qwen3.5's recurrent layers cannot be cropped back: the runner scores without prefix
    sharing (run.json says why) and gets what independent scoring gets; a multi-token option is
    scored on a copy of the prompt's cache, equal to scoring it in one pass."""
    import dataclasses
    import json

    from vniahd.evaluation.scoring import score

    be = get_backend(spec)
    variants = [get_variant("videorope")]
    assert_fast_equals_alone(dataset, be, variants, tmp_path)  # prefix sharing asked for there
    evaluation = json.loads((tmp_path / "fast" / "run.json").read_text())["evaluation"]
    assert evaluation["prefix_sharing"] is False
    assert "cannot be cropped back" in evaluation["prefix_sharing_off_because"]

    runner, _, _, inputs = last_sample(dataset, be, variants[0], tmp_path / "x")
    multi = dataclasses.replace(inputs, letters=["A", "B"], answer="B", letter_ids=[[65, 66], [50, 48, 48]])
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        got = score(be, multi, "choice").extra["option_logprobs"]
        for letter, ids in zip(multi.letters, multi.letter_ids):  # one pass over prompt + option
            emb = torch.cat([multi.embeds, be.embed_text(ids[:-1])])
            hidden = be.hidden_states(emb[None], multi.positions[:, None, : len(emb)])[0]
            s = multi.prompt_len
            lp = torch.log_softmax(be.logits(hidden[s - 1 :]), dim=-1)
            want = float(sum(lp[i, t] for i, t in enumerate(ids)))
            assert got[letter] == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize(
    "spec",
    [
        "random:qwen2.5-vl?hidden=64&heads=2",
        "random:qwen3-vl-moe",
        "random:glm-4.1v?heads=2",
        "random:glm-4.5v?heads=2",
    ],
)
def test_prefix_tree_walk_equals_independent_scoring_per_family(dataset, tmp_path, spec):
    """Prefix sharing, chunked prefill and batching give every family what scoring each sample
    alone gives (Qwen2-VL: tests/test_evaluate_prefix.py; Qwen3-VL, Qwen3.5 and Qwen3.5-MoE: above)."""
    assert_fast_equals_alone(dataset, get_backend(spec), [get_variant("videorope")], tmp_path)


def test_published_designs_share_prefixes_and_pack_like_scoring_alone(dataset, tmp_path):
    """NoPE pairs (HoPE), four streams (VRoPE), per-KV-head plans (MHRoPE), scaled frequencies
    (VideoRoPE++), float ring positions (Circle-RoPE) and fractional 1-D positions (V2PE) through
    prefix sharing, 7-token prefill chunks and packed batches of 4: the answers and option
    log-probabilities of scoring every sample alone."""
    be = get_backend("random:qwen3-vl")  # 4 KV heads: MHRoPE's default split needs one per stream
    names = ["hope", "vrope", "mhrope", "videorope-plus", "circle-rope", "v2pe"]
    stats = assert_fast_equals_alone(dataset, be, [get_variant(n) for n in names], tmp_path)
    assert stats["reused_tokens"] > 0  # the prefix really was shared
