"""Scoring modes: how one sample's forward pass becomes ``correct`` / ``prediction``.

Every mode takes a :class:`SampleInputs` (the prompt's spliced embeddings and the variant's
position ids, built by the runner) and returns a :class:`Score`. The LM head is applied only to
the rows that are scored — never ``vocab × sequence`` logits (the reference code's fp32 logits
over ~400k tokens cost ~33 GB per GPU, DESIGN §3).

- ``reference``: teacher-forced answer tokens in one forward pass; correct iff the argmax at every
  answer position equals the answer token (the published V-NIAH-D protocol).
- ``choice``: the summed log-probability of each option letter's tokens as the continuation;
  prediction = argmax. Short-answer needles (no options) fall back to ``reference`` and say so.
- ``generate``: greedy decoding with a KV cache up to ``max_new_tokens``; the option letter (or
  the short answer) is parsed from the text, and the raw text is kept.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

import torch

SCORING_MODES = ("reference", "choice", "generate")


@dataclass
class SampleInputs:
    """One sample, ready for the text model.

    ``embeds`` [S, hidden]: prompt embeddings (text before, visual tokens, text after) on the
    model device. ``positions`` [3, S + room] float64: the variant's position ids for the prompt
    followed by ``room`` further text tokens (answer / options / generated tokens) — a layout's
    text positions after the video do not depend on how many tokens follow, so slicing is exact.
    """

    embeds: torch.Tensor
    positions: torch.Tensor
    answer: str
    answer_ids: list[int]
    letters: list[str] | None = None  # option letters for multiple choice, else None
    letter_ids: list[list[int]] | None = None

    @property
    def prompt_len(self) -> int:
        return int(self.embeds.shape[0])


@dataclass
class Score:
    correct: bool
    prediction: str
    extra: dict[str, Any] = field(default_factory=dict)


def _pos(inputs: SampleInputs, start: int, stop: int) -> torch.Tensor:
    return inputs.positions[:, None, start:stop]  # [3, 1, n]


def score_reference(backend, inputs: SampleInputs) -> Score:
    """Teacher-forced: correct iff argmax == answer token at every answer position."""
    s, ans = inputs.prompt_len, inputs.answer_ids
    embeds = torch.cat([inputs.embeds, backend.embed_text(ans).to(inputs.embeds.dtype)], dim=0)
    hidden = backend.hidden_states(embeds[None], _pos(inputs, 0, s + len(ans)))
    # Row s-1+j predicts answer token j: the LM head sees len(ans) rows only.
    logits = backend.logits(hidden[0, s - 1 : s - 1 + len(ans)])
    pred = logits.argmax(-1).tolist()
    return Score(correct=pred == list(ans), prediction=backend.tokenizer.decode(pred),
                 extra={"predicted_ids": pred, "answer_ids": list(ans)})


def _continuation_logprob(backend, inputs: SampleInputs, last_logprobs: torch.Tensor,
                          ids: list[int], cache) -> float:
    """log p(ids | prompt): the first token from the prompt's last row, the rest by extending
    ``cache`` (then cropped back to the prompt so the next option starts from the same state)."""
    total = float(last_logprobs[ids[0]])
    if len(ids) > 1:
        s = inputs.prompt_len
        emb = backend.embed_text(ids[:-1]).to(inputs.embeds.dtype)
        hidden = backend.hidden_states(emb[None], _pos(inputs, s, s + len(ids) - 1), cache=cache)
        lp = torch.log_softmax(backend.logits(hidden[0]), dim=-1)
        total += float(lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:], device=lp.device)].sum())
        cache.crop(-(len(ids) - 1))  # negative = drop that many newest tokens (transformers ≥4.4x, 5.x)
    return total


def score_choice(backend, inputs: SampleInputs) -> Score:
    """Sum of log-probabilities of each option's continuation; argmax wins."""
    if not inputs.letters:
        score = score_reference(backend, inputs)
        score.extra["fallback"] = "reference (short-answer needle has no options)"
        return score
    multi = any(len(ids) > 1 for ids in inputs.letter_ids)
    # A KV cache is only needed when some option spans several tokens; single-token options
    # (the usual letters) are all read off the prompt's last row.
    cache = backend.new_cache() if multi else None
    hidden = backend.hidden_states(inputs.embeds[None], _pos(inputs, 0, inputs.prompt_len), cache=cache)
    last = torch.log_softmax(backend.logits(hidden[0, -1]), dim=-1)
    logprobs = {letter: _continuation_logprob(backend, inputs, last, ids, cache)
                for letter, ids in zip(inputs.letters, inputs.letter_ids)}
    best = max(logprobs, key=lambda k: (logprobs[k], -inputs.letters.index(k)))
    return Score(correct=best == inputs.answer, prediction=best, extra={"option_logprobs": logprobs})


def score_generate(backend, inputs: SampleInputs, max_new_tokens: int = 8) -> Score:
    """Greedy decoding with a KV cache; stops at ``<|im_end|>`` / ``<|endoftext|>``."""
    s = inputs.prompt_len
    cache = backend.new_cache()
    hidden = backend.hidden_states(inputs.embeds[None], _pos(inputs, 0, s), cache=cache)
    generated: list[int] = []
    stop = set(backend.tokenizer.stop_ids)
    for k in range(max_new_tokens):
        token = int(backend.logits(hidden[0, -1]).argmax())
        if token in stop:
            break
        generated.append(token)
        if k + 1 == max_new_tokens:
            break
        emb = backend.embed_text([token]).to(inputs.embeds.dtype)
        hidden = backend.hidden_states(emb[None], _pos(inputs, s + k, s + k + 1), cache=cache)
    raw = backend.tokenizer.decode(generated)
    if inputs.letters:
        prediction = parse_choice(raw, inputs.letters)
        correct = prediction == inputs.answer
    else:
        prediction = raw.strip()
        correct = normalize_answer(raw) == normalize_answer(inputs.answer)
    return Score(correct=correct, prediction=prediction,
                 extra={"raw_text": raw, "generated_ids": generated})


def parse_choice(text: str, letters: list[str]) -> str:
    """The option letter a generated answer names: a leading letter (``"B"``, ``"(B)"``,
    ``"B. cat"``), else the first standalone valid letter; ``""`` when none."""
    valid = "".join(letters)
    stripped = text.strip()
    m = re.match(rf"^[\(\[]?([{valid}])(?:[\)\]\.:,\s]|$)", stripped)
    if m:
        return m.group(1)
    m = re.search(rf"(?<![A-Za-z])([{valid}])(?![A-Za-z])", stripped)
    return m.group(1) if m else ""


def normalize_answer(text: str) -> str:
    """Case-folded, whitespace-collapsed, surrounding punctuation removed (short answers)."""
    text = " ".join(text.strip().split()).lower()
    return text.strip(string.punctuation + " ")


def score(backend, inputs: SampleInputs, mode: str, max_new_tokens: int = 8) -> Score:
    """Dispatch on ``mode`` (one of :data:`SCORING_MODES`)."""
    if mode == "reference":
        return score_reference(backend, inputs)
    if mode == "choice":
        return score_choice(backend, inputs)
    if mode == "generate":
        return score_generate(backend, inputs, max_new_tokens=max_new_tokens)
    from vniahd.errors import UnknownNameError

    raise UnknownNameError("scoring mode", mode, SCORING_MODES)
