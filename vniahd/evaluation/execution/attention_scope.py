"""Attention scope: what the scored rows may attend to (``vniahd eval --attention-scope``).

``full`` (the default) is ordinary causal attention over the whole sequence.

``zigzag-local:W`` reproduces what the released V-NIAH-D and V-RULER harnesses actually computed
on Qwen2-VL / Qwen2.5-VL (``vision_niah_d/eval_vision_niah_interrupt.py`` and
``videorope_plus/v_ruler/eval/eval_v_ruler_*.py``, ``eval_forward``). They shard one sequence over
W processes for zigzag ring attention:

1. the sequence (prompt + answer) is padded with ``2W − (L mod 2W)`` rows, between 1 and 2W,
   never 0 (the released code pads to a multiple of 16 for W = 8);
2. it is cut into 2W equal chunks; process r holds chunks r and 2W−1−r, concatenated, with the
   position ids of the full sequence (``easy_context/zigzag_ring_attn/prepare_inputs.py``);
3. the ring-attention patch is installed for Llama/Mistral attention classes only
   (``easy_context/zigzag_ring_attn/monkey_patch.py``), so on Qwen models each process runs plain
   causal attention over its own two chunks and never sees the others.

The answer rows sit in the last chunk, held by process 0 with chunk 0: the scored logits see only
the first and last 1/(2W) of the sequence. A needle in the middle is invisible, which is why the
released ``all_accuracies.json`` rows at depths 0.2–0.8 are identical (docs/reference-protocol.md).

Emulation, exactly: each process's causal order over its local concatenation is the global order
restricted to its chunks (chunk r precedes chunk 2W−1−r in both), so a scored row's hidden state
is the model run on the rows of its own process up to that row, at their global positions. The
pad rows come after every scored row and never influence it; only their count matters (it moves
the chunk boundaries). Every layer sees only local rows, recurrent ones included, as in the
released processes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from vniahd.errors import VniahdError

if TYPE_CHECKING:
    from vniahd.evaluation.execution.chunked import Feed, RowFn

__all__ = ["FULL", "AttentionScope", "parse_scope"]

_ZIGZAG = re.compile(r"^zigzag-local:(\d+)$")


@dataclass(frozen=True)
class AttentionScope:
    """``processes == 0``: full attention; else the released zigzag split over that many."""

    processes: int = 0

    @property
    def name(self) -> str:
        return "full" if self.is_full else f"zigzag-local:{self.processes}"

    @property
    def is_full(self) -> bool:
        return self.processes == 0

    @property
    def chunks(self) -> int:
        return 2 * self.processes

    def padded_length(self, length: int) -> int:
        """``length`` rows plus the released pad of 1…2W rows (never 0)."""
        return length + self.chunks - length % self.chunks

    def process_of(self, row: int, padded: int) -> int:
        """The process holding ``row`` of a padded sequence of ``padded`` rows."""
        chunk = row // (padded // self.chunks)
        return chunk if chunk < self.processes else self.chunks - 1 - chunk

    def visible_rows(self, row: int, length: int) -> list[int]:
        """The rows (ascending) that ``row`` attends to in a sequence of ``length`` unpadded rows:
        its process's rows up to and including itself."""
        padded = self.padded_length(length)
        size = padded // self.chunks
        r = self.process_of(row, padded)
        own = [r, self.chunks - 1 - r]
        return [i for c in own for i in range(c * size, min((c + 1) * size, row + 1))]


FULL = AttentionScope()


def parse_scope(text: str) -> AttentionScope:
    """``full`` or ``zigzag-local:W`` (W ≥ 1 processes)."""
    if text == "full":
        return FULL
    m = _ZIGZAG.match(text.strip())
    if m and int(m.group(1)) >= 1:
        return AttentionScope(int(m.group(1)))
    raise VniahdError(
        f"--attention-scope {text!r}: use 'full' (ordinary causal attention, the default) or "
        "'zigzag-local:W' with W ≥ 1 processes (the released harness's view, W = 8)"
    )


def local_feeds(
    scope: AttentionScope, rows: RowFn, positions: torch.Tensor, length: int, keep: Sequence[int]
) -> list[tuple[Feed, list[int]]]:
    """The feeds that give ``keep``'s hidden states under ``scope``: one per process holding a
    kept row, its rows up to its last kept row at their global positions. Returns ``(feed,
    indices into keep)`` pairs; ``rows``/``positions`` describe the ``length`` unpadded rows."""
    from vniahd.evaluation.execution.chunked import Feed, concat_rows

    by_process: dict[int, list[int]] = {}
    padded = scope.padded_length(length)
    for k, row in enumerate(keep):
        by_process.setdefault(scope.process_of(row, padded), []).append(k)
    out: list[tuple[Feed, list[int]]] = []
    for ks in by_process.values():
        last = max(keep[k] for k in ks)
        visible = scope.visible_rows(last, length)
        spans = _spans(visible)
        feed_rows = concat_rows(*((b - a, _offset(rows, a)) for a, b in spans))
        index = torch.as_tensor(visible, dtype=torch.long)
        local = {row: i for i, row in enumerate(visible)}
        feed = Feed(
            n=len(visible),
            rows=feed_rows,
            positions=positions[:, index],
            keep=[local[keep[k]] for k in ks],
        )
        out.append((feed, ks))
    return out


def _offset(rows: RowFn, a: int) -> RowFn:
    return lambda x, y: rows(a + x, a + y)


def _spans(sorted_rows: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ``sorted_rows`` as half-open spans."""
    spans: list[tuple[int, int]] = []
    for i in sorted_rows:
        if spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans
