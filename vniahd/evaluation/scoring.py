"""Scoring modes: how one sample's forward pass becomes ``correct`` / ``prediction``.

Every mode takes a :class:`SampleInputs` (the prompt's spliced embeddings and the variant's
position ids, built by the runner) and returns a :class:`Score`. The LM head is applied only to
the rows that are scored — never ``vocab × sequence`` logits (the reference code's fp32 logits
over ~400k tokens cost ~33 GB per GPU; see docs/footguns.md).

- ``reference``: teacher-forced answer tokens in one forward pass; correct iff the argmax at every
  answer position equals the answer token (the published V-NIAH-D protocol).
- ``choice``: the summed log-probability of each option letter's tokens as the continuation;
  prediction = argmax. Short-answer needles (no options) fall back to ``reference`` and say so.
- ``generate``: greedy decoding with a KV cache up to ``max_new_tokens``; the option letter (or
  the short answer) is read from the text by the sample's answer rule
  (:mod:`vniahd.evaluation.answers`), and the raw text is kept.

A :class:`Context` says where the pass starts: a KV cache holding the prompt's first rows (a
shared prefix, :mod:`vniahd.evaluation.execution.prefix`) and the prefill chunk size; every mode feeds only
the rows after them (``Context.fed_from``) through :func:`vniahd.evaluation.execution.chunked.forward_rows`
and crops the cache back afterwards (to ``Context.kept``), keeping any shared rows the pass
computed for the samples after it. :func:`score_batch` scores several samples of the
single-pass modes in one pass: a right-padded batch, or on a CPU backend that can, packed
segments of one row over the shared cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from vniahd.evaluation.answers import ANSWER_RULES, normalize_answer
from vniahd.evaluation.execution.chunked import Feed, RowFn, concat_rows, crop_to, forward_rows

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import TextModel
    from vniahd.evaluation.execution.attention_scope import AttentionScope
    from vniahd.evaluation.execution.prefix import PromptSource


@dataclass
class SampleInputs:
    """One sample, ready for the text model.

    ``embeds``: the prompt's embeddings (text before, visual tokens, text after) — a tensor
    ``[S, hidden]`` on the model device, or a :class:`vniahd.evaluation.execution.prefix.PromptSource` that
    gathers rows ``[a, b)`` on demand (long prompts: one chunk on the device at a time).
    ``positions`` [3, S + room] float64: the variant's position ids for the prompt followed by
    ``room`` further text tokens (answer / options / generated tokens) — a layout's text
    positions after the video do not depend on how many tokens follow, so slicing is exact.
    """

    embeds: torch.Tensor | PromptSource
    positions: torch.Tensor
    answer: str
    answer_ids: list[int]
    letters: list[str] | None = None  # option letters for multiple choice, else None
    letter_ids: list[list[int]] | None = None
    answer_rule: str = "option"  # how generate reads a letter (vniahd.evaluation.answers.ANSWER_RULES)

    @property
    def prompt_len(self) -> int:
        return int(len(self.embeds))

    def prompt_rows(self, a: int, b: int) -> torch.Tensor:
        """Prompt embeddings of rows ``[a, b)``."""
        if isinstance(self.embeds, torch.Tensor):
            return self.embeds[a:b]
        return self.embeds.rows(a, b)


@dataclass
class Score:
    correct: bool
    prediction: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Where a sample's forward pass starts: ``cache`` holds its prompt rows ``[0, start)`` (a
    shared prefix; None = nothing cached, ``start`` must be 0); ``chunk`` > 0 bounds the rows per
    forward call (chunked prefill). Scoring crops ``cache`` back to :attr:`kept` tokens.

    ``cached`` < ``start``: the cache holds only rows ``[0, cached)``; rows ``[cached, start)``
    (shared with other samples, :meth:`SharedPrefix.plan`) are computed in the same forward pass
    as the sample's own rows and stay in the cache: one call instead of two. ``retain``: the
    tokens the cache keeps afterwards, if not ``start`` (a packed batch's shared rows beyond
    what the next sample shares)."""

    cache: Any = None
    start: int = 0
    chunk: int = 0
    cached: int | None = None
    retain: int | None = None
    scope: AttentionScope | None = None  # None / full: ordinary causal attention

    @property
    def fed_from(self) -> int:
        """The first prompt row this pass feeds."""
        return self.start if self.cached is None else self.cached

    @property
    def kept(self) -> int:
        """The tokens the cache holds after scoring."""
        return self.start if self.retain is None else self.retain


def _pos(inputs: SampleInputs, start: int, stop: int) -> torch.Tensor:
    return inputs.positions[:, None, start:stop]  # [3, 1, n]


def _text_rows(backend: TextModel, ids: list[int]) -> RowFn:
    if not ids:
        return lambda a, b: torch.empty(0, backend.row_width, dtype=backend.dtype, device=backend.device)
    emb = backend.embed_text(list(ids)).to(backend.dtype)
    return lambda a, b: emb[a:b]


def prompt_feed(
    backend: TextModel, inputs: SampleInputs, start: int, extra_ids: list[int], keep: Iterable[int]
) -> Feed:
    """Rows ``[start, S)`` of the prompt followed by ``extra_ids`` (teacher-forced tokens)."""
    s = inputs.prompt_len
    if not 0 <= start < s:
        raise ValueError(f"prefix of {start} tokens leaves no prompt row of {s} to score from")
    rows = concat_rows(
        (s - start, lambda a, b: inputs.prompt_rows(start + a, start + b)),
        (len(extra_ids), _text_rows(backend, extra_ids)),
    )
    return Feed(
        n=s - start + len(extra_ids),
        rows=rows,
        positions=inputs.positions[:, start : s + len(extra_ids)],
        keep=list(keep),
    )


def reference_feed(backend: TextModel, inputs: SampleInputs, start: int) -> Feed:
    """Prompt + answer tokens; keeps the rows that predict each answer token (row s-1+j)."""
    s, ans = inputs.prompt_len, list(inputs.answer_ids)
    return prompt_feed(backend, inputs, start, ans, [s - 1 - start + j for j in range(len(ans))])


def reference_from_hidden(backend: TextModel, inputs: SampleInputs, hidden: torch.Tensor) -> Score:
    # The LM head sees len(answer) rows only.
    pred = backend.logits(hidden).argmax(-1).tolist()
    ans = list(inputs.answer_ids)
    return Score(
        correct=pred == ans,
        prediction=backend.tokenizer.decode(pred),
        extra={"predicted_ids": pred, "answer_ids": ans},
    )


def score_reference(backend: TextModel, inputs: SampleInputs, ctx: Context | None = None) -> Score:
    """Teacher-forced: correct iff argmax == answer token at every answer position."""
    ctx = ctx or Context()
    if ctx.scope is not None and not ctx.scope.is_full:
        return reference_from_hidden(backend, inputs, _local_hidden(backend, inputs, ctx))
    hidden = forward_rows(backend, [reference_feed(backend, inputs, ctx.fed_from)], ctx.cache, ctx.chunk)[0]
    crop_to(ctx.cache, ctx.kept)
    return reference_from_hidden(backend, inputs, hidden)


def _local_hidden(backend: TextModel, inputs: SampleInputs, ctx: Context) -> torch.Tensor:
    """The answer rows' hidden states when each sees only its own process's rows
    (:mod:`vniahd.evaluation.execution.attention_scope`): one pass per process holding one."""
    from vniahd.evaluation.execution.attention_scope import local_feeds

    assert ctx.scope is not None
    if ctx.cache is not None or ctx.start:
        raise ValueError("a zigzag-local pass starts from an empty cache (no shared prefix)")
    feed = reference_feed(backend, inputs, 0)
    parts: dict[int, torch.Tensor] = {}
    for local, ks in local_feeds(ctx.scope, feed.rows, feed.positions, feed.n, feed.keep):
        for k, h in zip(ks, forward_rows(backend, [local], None, ctx.chunk)[0]):
            parts[k] = h
    return torch.stack([parts[k] for k in range(len(feed.keep))])


def _continuation_logprob(
    backend: TextModel, inputs: SampleInputs, last_logprobs: torch.Tensor, ids: list[int], cache: Any
) -> float:
    """log p(ids | prompt): the first token from the prompt's last row, the rest by extending
    ``cache`` (then cropped back to the prompt so the next option starts from the same state)."""
    total = float(last_logprobs[ids[0]])
    if len(ids) > 1:
        if not backend.can_crop_cache:
            import copy

            # recurrent layers cannot be cropped back: extend a copy, keep the prompt's state
            cache = copy.deepcopy(cache)
        s = inputs.prompt_len
        emb = backend.embed_text(ids[:-1]).to(backend.dtype)
        hidden = backend.hidden_states(emb[None], _pos(inputs, s, s + len(ids) - 1), cache=cache)
        lp = torch.log_softmax(backend.logits(hidden[0]), dim=-1)
        total += float(lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:], device=lp.device)].sum())
        if backend.can_crop_cache:
            crop_to(cache, s)
    return total


def _options(inputs: SampleInputs) -> tuple[list[str], list[list[int]]]:
    """A multiple-choice sample's option letters and their token ids (set together)."""
    assert inputs.letters is not None and inputs.letter_ids is not None
    return inputs.letters, inputs.letter_ids


def choice_is_single_token(inputs: SampleInputs) -> bool:
    return bool(inputs.letters) and all(len(ids) == 1 for ids in _options(inputs)[1])


def choice_from_last(
    backend: TextModel, inputs: SampleInputs, last_hidden: torch.Tensor, cache: Any = None
) -> Score:
    letters, letter_ids = _options(inputs)
    last = torch.log_softmax(backend.logits(last_hidden.reshape(-1)), dim=-1)
    logprobs = {
        letter: _continuation_logprob(backend, inputs, last, ids, cache)
        for letter, ids in zip(letters, letter_ids)
    }
    best = max(logprobs, key=lambda k: (logprobs[k], -letters.index(k)))
    return Score(correct=best == inputs.answer, prediction=best, extra={"option_logprobs": logprobs})


def score_choice(backend: TextModel, inputs: SampleInputs, ctx: Context | None = None) -> Score:
    """Sum of log-probabilities of each option's continuation; argmax wins."""
    ctx = ctx or Context()
    if not inputs.letters:
        score = score_reference(backend, inputs, ctx)
        score.extra["fallback"] = "reference (short-answer needle has no options)"
        return score
    s = inputs.prompt_len
    # A KV cache is only needed when some option spans several tokens; single-token options
    # (the usual letters) are all read off the prompt's last row.
    cache = ctx.cache
    if cache is None and not choice_is_single_token(inputs):
        cache = backend.new_cache()
    feed = prompt_feed(backend, inputs, ctx.fed_from, [], [s - 1 - ctx.fed_from])
    last = forward_rows(backend, [feed], cache, ctx.chunk)[0]
    score = choice_from_last(backend, inputs, last, cache)
    crop_to(ctx.cache, ctx.kept)
    return score


def score_generate(
    backend: TextModel, inputs: SampleInputs, max_new_tokens: int = 8, ctx: Context | None = None
) -> Score:
    """Greedy decoding with a KV cache; stops at ``<|im_end|>`` / ``<|endoftext|>``."""
    ctx = ctx or Context()
    s = inputs.prompt_len
    cache = ctx.cache if ctx.cache is not None else backend.new_cache()
    hidden = forward_rows(
        backend, [prompt_feed(backend, inputs, ctx.fed_from, [], [s - 1 - ctx.fed_from])], cache, ctx.chunk
    )[0]
    generated: list[int] = []
    stop = set(backend.tokenizer.stop_ids)
    for k in range(max_new_tokens):
        token = int(backend.logits(hidden[-1]).argmax())
        if token in stop:
            break
        generated.append(token)
        if k + 1 == max_new_tokens:
            break
        emb = backend.embed_text([token]).to(backend.dtype)
        hidden = backend.hidden_states(emb[None], _pos(inputs, s + k, s + k + 1), cache=cache)[0]
    crop_to(ctx.cache, ctx.kept)
    raw = backend.tokenizer.decode(generated)
    if inputs.letters:
        prediction = ANSWER_RULES[inputs.answer_rule](raw, inputs.letters)
        correct = prediction == inputs.answer
    else:
        prediction = raw.strip()
        correct = normalize_answer(raw) == normalize_answer(inputs.answer)
    return Score(correct=correct, prediction=prediction, extra={"raw_text": raw, "generated_ids": generated})


def batchable(inputs: SampleInputs, mode: str) -> bool:
    """Whether ``mode`` scores this sample from one teacher-forced pass (no per-sample cache
    steps afterwards), so that it can share a batch (see :data:`SCORING`)."""
    return SCORING[mode].can_batch(inputs)


def score_batch(
    backend: TextModel, batch: list[SampleInputs], mode: str, ctx: Context, packed: bool = False
) -> list[Score]:
    """Score several :func:`batchable` samples in one pass.

    Right-padded (default): ``ctx.cache`` holds the common prefix ``[0, ctx.start)`` with batch
    size ``len(batch)`` (see :func:`vniahd.evaluation.execution.prefix.fork_cache`) or is None; it is
    consumed (extended by pads). ``packed`` (a backend that can pack): the samples' remainders
    run as segments of one row over ``ctx.cache`` itself (batch size 1, or None), after the
    first sample's rows ``[ctx.cached, ctx.start)`` as a head they all see, and the cache is
    cropped back to ``ctx.kept`` afterwards, like the single-sample modes do."""
    feeds: list[Feed] = []
    kinds: list[str] = []
    for inputs in batch:
        if mode == "reference" or not inputs.letters:
            feeds.append(reference_feed(backend, inputs, ctx.start))
            kinds.append("reference")
        else:
            s = inputs.prompt_len
            feeds.append(prompt_feed(backend, inputs, ctx.start, [], [s - 1 - ctx.start]))
            kinds.append("choice")
    head = None
    if ctx.fed_from < ctx.start:  # the shared prefix still to compute: a head every member sees
        if not packed:
            raise ValueError("a right-padded batch needs its shared prefix in the cache first")
        first, a = batch[0], ctx.fed_from
        head = Feed(
            n=ctx.start - a,
            rows=lambda i, j: first.prompt_rows(a + i, a + j),
            positions=first.positions[:, a : ctx.start],
            keep=[],
        )
    rows = forward_rows(backend, feeds, ctx.cache, ctx.chunk, packed=packed, head=head)
    if packed:
        crop_to(ctx.cache, ctx.kept)
    out: list[Score] = []
    for inputs, kind, hidden in zip(batch, kinds, rows):
        if kind == "reference":
            sc = reference_from_hidden(backend, inputs, hidden)
            if mode == "choice":
                sc.extra["fallback"] = "reference (short-answer needle has no options)"
        else:
            sc = choice_from_last(backend, inputs, hidden)
        out.append(sc)
    return out


def score(
    backend: TextModel, inputs: SampleInputs, mode: str, max_new_tokens: int = 8, ctx: Context | None = None
) -> Score:
    """Dispatch on ``mode`` (a key of :data:`SCORING`); ``ctx`` = shared prefix / chunking."""
    if mode not in SCORING:
        from vniahd.errors import UnknownNameError

        raise UnknownNameError("scoring mode", mode, SCORING_MODES)
    return SCORING[mode].score(backend, inputs, ctx, max_new_tokens)


@dataclass(frozen=True)
class ScoringMode:
    """A registered scoring mode: how to score one sample, and whether a sample may share a
    batch (:func:`score_batch`) — only modes that score from one teacher-forced pass can."""

    name: str
    score: Callable[[TextModel, SampleInputs, Context | None, int], Score]
    can_batch: Callable[[SampleInputs], bool]
    description: str


#: name → mode. ``reference`` is the published protocol.
SCORING: dict[str, ScoringMode] = {
    m.name: m
    for m in (
        ScoringMode(
            "reference",
            lambda be, x, ctx, n: score_reference(be, x, ctx),
            lambda x: True,
            "teacher-forced answer tokens, correct iff every argmax matches (published protocol)",
        ),
        ScoringMode(
            "choice",
            lambda be, x, ctx, n: score_choice(be, x, ctx),
            lambda x: not x.letters or choice_is_single_token(x),
            "summed log-probability per option letter, argmax wins",
        ),
        ScoringMode(
            "generate",
            lambda be, x, ctx, n: score_generate(be, x, max_new_tokens=n, ctx=ctx),
            lambda x: False,
            "greedy decoding, the answer parsed from the text",
        ),
    )
}
SCORING_MODES = tuple(SCORING)
