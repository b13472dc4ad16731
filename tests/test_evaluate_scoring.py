"""Scoring modes vs slow, obviously-correct implementations that compute full logits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from evaluate_fixtures import make_dataset

from vniahd.evaluation import EvalConfig, Runner
from vniahd.evaluation.answers import normalize_answer, parse_choice
from vniahd.evaluation.scoring import score
from vniahd.models import get_backend
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    ds = make_dataset(root / "ds")
    be = get_backend("random:qwen2-vl")
    variant = get_variant("videorope")
    runner = Runner(
        ds, be, EvalConfig(variants=[variant], cache_dir=root / "cache", progress=False), root / "out"
    )
    hay = runner.cache.haystack(ds.haystack_frames(), ds.haystack_key)
    rows = runner.rows()
    names = {n for r in rows for n in [r["needle_image"], *r["distractor_images"]]}
    images = runner.cache.images({n: ds.image(n) for n in names})
    from vniahd.rope import variant_axes
    from vniahd.rope.hf import install_allocation

    install_allocation(be.language_model, variant_axes(variant, be.rotary))
    prepared = runner.prepare(rows[-1], hay, images)  # longest sample, multiple-choice or short
    positions = variant.positions(prepared.segments)
    inputs = dataclasses.replace(prepared.inputs, positions=positions)
    return be, inputs


def full_logits(be, inputs, extra_ids):
    """Every row's logits for prompt + ``extra_ids`` (the slow way: LM head over all tokens)."""
    emb = torch.cat([inputs.embeds, be.embed_text(extra_ids)]) if extra_ids else inputs.embeds
    n = emb.shape[0]
    with torch.inference_mode():
        hidden = be.hidden_states(emb[None], inputs.positions[:, None, :n])
        return be.lm_head(hidden[0]).float()


def slow_greedy(be, inputs, steps):
    ids: list[int] = []
    for _ in range(steps):
        ids.append(int(full_logits(be, inputs, ids)[-1].argmax()))
    return ids


class RowCounter:
    """Counts the rows the LM head is applied to."""

    def __init__(self, module):
        self.rows = []
        self.handle = module.register_forward_hook(
            lambda m, a, o: self.rows.append(a[0].reshape(-1, a[0].shape[-1]).shape[0])
        )


def test_reference_equals_full_logits(setup):
    be, inputs = setup
    s = inputs.prompt_len
    greedy = slow_greedy(be, inputs, 3)
    for answer_ids, expect in [
        (greedy, True),
        (greedy[:2] + [(greedy[2] + 1) % 256], False),
        (inputs.answer_ids, None),
    ]:
        inp = dataclasses.replace(inputs, answer_ids=answer_ids)
        counter = RowCounter(be.lm_head)
        with torch.inference_mode():
            got = score(be, inp, "reference")
        counter.handle.remove()
        full = full_logits(be, inp, answer_ids)
        slow_pred = full[s - 1 : s - 1 + len(answer_ids)].argmax(-1).tolist()
        assert got.extra["predicted_ids"] == slow_pred
        assert got.correct == (slow_pred == list(answer_ids))
        if expect is not None:
            assert got.correct is expect
        assert counter.rows == [len(answer_ids)]  # never vocab × sequence


def test_choice_equals_independent_loglikelihoods(setup):
    be, inputs = setup
    s = inputs.prompt_len
    # Multi-token continuations exercise the KV-cache extend/crop path.
    letters, ids = ["A", "B", "C"], [[65], [50, 48, 48], [67, 10]]
    inp = dataclasses.replace(inputs, letters=letters, letter_ids=ids, answer="B")
    with torch.inference_mode():
        got = score(be, inp, "choice")
    expected = {}
    for letter, opt in zip(letters, ids):
        lp = torch.log_softmax(full_logits(be, inp, opt), dim=-1)
        expected[letter] = float(sum(lp[s - 1 + j, t] for j, t in enumerate(opt)))
    for letter in letters:
        assert got.extra["option_logprobs"][letter] == pytest.approx(expected[letter], abs=1e-4)
    best = max(expected, key=expected.get)
    assert got.prediction == best and got.correct == (best == "B")


def test_choice_single_token_and_fallback(setup):
    be, inputs = setup
    s = inputs.prompt_len
    inp = dataclasses.replace(inputs, letters=["A", "B"], letter_ids=[[65], [66]], answer="A")
    with torch.inference_mode():
        got = score(be, inp, "choice")
    lp = torch.log_softmax(full_logits(be, inp, [])[s - 1], dim=-1)
    assert got.extra["option_logprobs"]["A"] == pytest.approx(float(lp[65]), abs=1e-5)
    short = dataclasses.replace(inputs, letters=None, letter_ids=None)
    with torch.inference_mode():
        fb = score(be, short, "choice")
    assert "fallback" in fb.extra and "predicted_ids" in fb.extra


def test_generate_equals_naive_greedy(setup):
    be, inputs = setup
    inp = dataclasses.replace(inputs, letters=None, letter_ids=None, answer="x")
    with torch.inference_mode():
        got = score(be, inp, "generate", max_new_tokens=5)
    naive = slow_greedy(be, inp, 5)
    stop = set(be.tokenizer.stop_ids)
    cut = next((i for i, t in enumerate(naive) if t in stop), len(naive))
    assert got.extra["generated_ids"] == naive[:cut]
    assert got.extra["raw_text"] == be.tokenizer.decode(naive[:cut])


@pytest.mark.parametrize(
    "text,letter",
    [
        ("B", "B"),
        ("(C) rocket", "C"),
        ("The answer is D.", "D"),
        ("A. cat", "A"),
        ("none", ""),
        ("Bread", ""),
    ],
)
def test_parse_choice(text, letter):
    assert parse_choice(text, ["A", "B", "C", "D"]) == letter


def test_normalize_answer():
    assert normalize_answer("  200. ") == "200" and normalize_answer("Two  Hundred!") == "two hundred"
