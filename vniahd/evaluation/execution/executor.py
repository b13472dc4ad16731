"""The group executor: score one work unit (a variant's window-offset group, all lengths) with a
shared prefix, batching short samples, and turn each score into a result record.

Within a group the samples come in prefix-tree order; one KV cache walks the tree
(:meth:`vniahd.evaluation.execution.prefix.SharedPrefix.plan`): it keeps what the next batch shares with
the previous one, crops the rest, and grows along the batch to what the sample after it will
share; each batch's suffixes run on top of it. Every node of the tree is computed once. The
variant must already be applied to the backend (``backend.use_variant``); positions always come
from :mod:`vniahd.rope`, never from transformers' ``get_rope_index``.

Batches run in one forward pass each: on a CPU backend that can pack, as segments of one row over
the shared cache, after the rows of the shared prefix the cache still lacks (so the prefix grows
in the batch's own pass); elsewhere as a right-padded batch over a copy of the cache, the prefix
grown in a pass of its own before it. A lone sample's pass also grows the prefix.

Bitwise resume: batches and cache steps are planned from the *whole* group
(:func:`vniahd.evaluation.planning.work_plan.cut_batches`), never from what is left, so a resumed run does
exactly the float operations of an uninterrupted one. A batch with any missing member is
recomputed whole (only the missing records are emitted); a batch whose members are all done still
advances the shared prefix as the uninterrupted run did, so later batches see the same cache — by
rerunning its whole pass where that pass is what grows the prefix.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vniahd.evaluation.execution.attention_scope import FULL, AttentionScope
from vniahd.evaluation.execution.chunked import crop_to
from vniahd.evaluation.execution.memory import PeakMemory
from vniahd.evaluation.execution.prefix import SharedPrefix, fork_cache
from vniahd.evaluation.execution.samples import Prepared, SampleBuilder
from vniahd.evaluation.planning.work_plan import AUTO_PACK_TOKENS, cut_batches
from vniahd.evaluation.scoring import SCORING, Context, SampleInputs, Score, score, score_batch

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike
    from vniahd.rope import Variant


@dataclass(frozen=True)
class Measurement:
    """How long a result took and how much memory it needed: kept out of the result line (it
    depends on the machine and the schedule) and written beside it."""

    seconds: float
    peak_mem_bytes: int | None
    peak_mem_kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "peak_mem_bytes": self.peak_mem_bytes,
            "peak_mem_kind": self.peak_mem_kind,
        }


class GroupExecutor:
    """Scores groups for one backend, scoring mode and schedule (see module docstring)."""

    def __init__(
        self,
        backend: BackendLike,
        builder: SampleBuilder,
        *,
        scoring: str,
        max_new_tokens: int,
        prefix_sharing: bool,
        prefill_chunk: int,
        batch_size: int | str,
        scope: AttentionScope = FULL,
    ):
        self.backend = backend
        self.builder = builder
        self.scoring = scoring
        self.max_new_tokens = max_new_tokens
        self.prefix_sharing = prefix_sharing
        self.prefill_chunk = prefill_chunk
        self.batch_size = batch_size
        self.scope = scope  # zigzag-local: batch size 1, no prefix (EvalConfig sees to it)
        # a V-RULER task dataset's rule, read once (dataset.config merges its dicts on each read)
        self.placement = str(builder.dataset.config.get("placement") or "reference")
        # on a CPU backend that can, batches run as packed segments of one row (chunked.py)
        self.packed = backend.can_pack and batch_size != 1
        self.prefix_stats = {"computed_tokens": 0, "reused_tokens": 0}

    @property
    def pack_tokens(self) -> int:
        """The most tokens a packed batch's pass may feed: the shared prefix it grows, then its
        members' remainders (0: batches are right-padded instead)."""
        if not self.packed:
            return 0
        chunk = self.prefill_chunk if self.prefill_chunk and self.prefill_chunk > 0 else 0
        if self.batch_size == "auto":
            return min(AUTO_PACK_TOKENS, chunk) if chunk else AUTO_PACK_TOKENS
        return chunk or 2**62

    def batches(self, prepared: Sequence[Prepared], shares: Sequence[int]) -> list[list[int]]:
        """A group's samples cut into batches of indices (a function of the group alone);
        ``shares[i]``: frames sample i shares with sample i + 1 (:func:`_shared_with_next`)."""
        mode = SCORING[self.scoring]
        shared_prev = [0] + [_tokens(p, f) for p, f in zip(prepared[1:], shares[:-1])]
        return cut_batches(
            [p.total_tokens for p in prepared],
            [mode.can_batch(p.inputs) for p in prepared],
            shared_prev if self.prefix_sharing else [0] * len(prepared),
            self.batch_size,
            self.pack_tokens,
        )

    def run_group(
        self,
        variant: Variant,
        rows: Sequence[dict[str, Any]],
        haystack: np.ndarray,
        images: Mapping[str, torch.Tensor],
        done: Collection[str] = (),
    ) -> Iterator[tuple[dict[str, Any], Measurement]]:
        """Score the group ``rows`` (one window offset, in plan order) under ``variant``; yields
        ``(record, measurement)`` for every sample whose id is not in ``done``."""
        be = self.backend
        prepared = [self.builder.prepare(r, haystack, images, lazy=True) for r in rows]
        shares = _shared_with_next(prepared)
        prefix = SharedPrefix(be, self.prefill_chunk)
        peak = PeakMemory(be.device)
        for idx in self.batches(prepared, shares):
            batch = [prepared[i] for i in idx]
            try:
                missing = [p.sample_id not in done for p in batch]
                if not any(missing) and not self.prefix_sharing:
                    continue
                t0 = time.perf_counter()
                peak.start()
                inputs = [self.builder.with_positions(p, variant) for p in batch]
                cached, start, retain = self._prefix_step(prefix, batch, inputs, [shares[i] for i in idx])
                if not any(missing) and cached == start:
                    crop_to(prefix.cache, retain)
                    continue  # the prefix step is all this batch contributes on a resume
                results = self._score(batch, inputs, prefix, start, cached, retain)
                grown = (retain if len(batch) == 1 else start) - cached  # shared rows this pass computed
                self.prefix_stats["computed_tokens"] += grown
                if not any(missing):
                    continue  # its pass grew the shared prefix (as in the uninterrupted run): no records
                measurement = Measurement(
                    round((time.perf_counter() - t0) / len(batch), 4), peak.read(), peak.kind
                )
                # rows before each member's own that it did not compute itself
                self.prefix_stats["reused_tokens"] += (
                    cached if len(batch) == 1 else start * len(batch) - grown
                )
                for p, inp, res, todo in zip(batch, inputs, results, missing):
                    if todo:
                        yield self.record(p, variant, res, inp), measurement
            finally:  # their text embeddings are not needed again (the cache holds what is)
                for p in batch:
                    p.source.release()
        self.prefix_stats["computed_tokens"] += prefix.computed_tokens

    def _prefix_step(
        self, prefix: SharedPrefix, batch: list[Prepared], inputs: list[SampleInputs], shares: list[int]
    ) -> tuple[int, int, int]:
        """Walk the shared cache to ``batch`` (see :meth:`SharedPrefix.plan`). ``shares[i]``:
        frames member i shares with the sample after it. Returns ``(cached, start, retain)``:
        the cache holds ``cached`` tokens; the members' own rows start after ``start`` (all that
        every member shares); after the batch the cache keeps ``retain`` (what the sample after
        the batch shares with the batch's first member, along whom the cache grows). Rows
        ``[cached, start)`` of the first member are left to the batch's own pass (one model call
        instead of two) unless the batch is right-padded; then they are fed here."""
        if not self.prefix_sharing:
            return 0, 0, 0
        first = batch[0]
        if len(batch) == 1:
            common = len(first.source.refs)
        else:
            common = min(shares[:-1])
        grow = min(shares)  # consecutive shares: the first member and the next sample share this much
        positions = inputs[0].positions
        cached, retain = prefix.plan(first.source, positions, min(grow, common), common)
        if len(batch) == 1 or common < 0:  # a lone sample feeds from `cached` and keeps `retain`
            return cached, retain, retain
        start = max(retain, first.source.prefix_tokens(common))
        if cached < start and not self.packed:  # a padded batch forks a cache holding them
            prefix.grow(first.source, positions, cached, start)
            cached = start
        return cached, start, retain

    def _score(
        self,
        batch: list[Prepared],
        inputs: list[SampleInputs],
        prefix: SharedPrefix,
        start: int,
        cached: int,
        retain: int,
    ) -> list[Score]:
        """Score ``batch`` (see :meth:`_prefix_step` for ``cached``, ``start``, ``retain``); the
        pass computes rows ``[cached, start)`` along the first member, and leaves ``prefix``'s
        cache holding ``retain`` tokens."""
        be = self.backend
        cache = prefix.cache if start else None
        if len(batch) == 1:
            ctx = Context(cache, start, self.prefill_chunk, cached, scope=self.scope)
            return [score(be, inputs[0], self.scoring, max_new_tokens=self.max_new_tokens, ctx=ctx)]
        if self.packed:  # segments of one row over the shared cache itself, cropped back after
            ctx = Context(cache, start, self.prefill_chunk, cached, retain)
            return score_batch(be, inputs, self.scoring, ctx, packed=True)
        ctx = Context(fork_cache(be, prefix.cache, len(batch)) if start else None, start, self.prefill_chunk)
        crop_to(prefix.cache, retain)  # the fork holds what the members share; the walk keeps less
        return score_batch(be, inputs, self.scoring, ctx)

    def record(
        self, prepared: Prepared, variant: Variant, result: Score, inputs: SampleInputs
    ) -> dict[str, Any]:
        """The result line of one sample (see :data:`vniahd.evaluation.results.store.REQUIRED_KEYS`):
        a function of the plan, the model and the variant only, never of the schedule."""
        be = self.backend
        row = prepared.row
        rec: dict[str, Any] = {
            "sample_id": prepared.sample_id,
            "variant": variant.name,
            "scoring": self.scoring,
            "model": be.spec,
            "seed": be.seed,
            "length": int(row["length"]),
            "depth": float(row["depth"]),
            "needle_id": str(row["needle_id"]),
            "schedule": str(row.get("schedule", "")),
            "repeat": int(row.get("repeat", 0) or 0),
            "correct": bool(result.correct),
            "prediction": result.prediction,
            "answer": inputs.answer,
            "num_frames": prepared.num_frames,
            "tokens_per_frame": self.builder.cache.tokens_per_frame,
            "num_tokens": inputs.prompt_len + (len(inputs.answer_ids) if self.scoring == "reference" else 0),
            "frame_mode": be.options.frame_mode,
        }
        task = str(row.get("task") or "niah")
        if task != "niah":  # a V-RULER task: its report is its own benchmark (reporting/load.py)
            rec["task"] = task
            rec["placement"] = self.placement
        if prepared.filler is not None:  # the stack: how its text budget was spent in this model's tokens
            rec["text_tokens"] = int(row["text_tokens"])
            rec["filler_sentences"] = list(prepared.filler)
            rec["sentence_tokens"] = self.builder.sentence_tokens
            if self.scoring == "generate":
                rec["answer_rule"] = inputs.answer_rule
        if not self.scope.is_full:
            rec["attention_scope"] = self.scope.name
        for key in ("option_logprobs", "raw_text", "fallback"):
            if key in result.extra:
                rec[key] = result.extra[key]
        return rec


def _shared_with_next(prepared: Sequence[Prepared]) -> list[int]:
    """Frames each sample shares with the next one of its group; -1 where the next one does not
    share even the text before the video (its filler differs, in the stack task) and for the last."""
    from vniahd.evaluation.planning.work_plan import common_frames

    def shared(a: Prepared, b: Prepared) -> int:
        if a.source.before_ids != b.source.before_ids:
            return -1
        return common_frames(a.source.refs, b.source.refs)

    return [shared(prepared[i], prepared[i + 1]) for i in range(len(prepared) - 1)] + [-1] if prepared else []


def _tokens(p: Prepared, frames: int) -> int:
    return p.source.prefix_tokens(frames) if frames >= 0 else 0
