"""Chunked (and batched) forward passes that keep only the hidden rows a scorer asks for.

One primitive, :func:`forward_rows`, serves every scoring path:

- **Chunked prefill.** A sequence of ``n`` rows is fed ``chunk`` rows at a time into a KV cache,
  so activations (MLP width × chunk, attention scores chunk × context) are bounded by the chunk,
  not the sequence. It is exact: the causal mask for a chunk of ``q`` queries over ``k > q`` keys
  is the lower-right-aligned one (query ``i`` of the chunk sees keys ``0 .. k−q+i``). transformers
  5.x builds that mask explicitly whenever ``q > 1`` and ``q != k`` (``masking_utils.
  _ignore_causal_mask_sdpa`` returns False there), and never hands SDPA ``is_causal=True`` with
  ``q < k`` (torch's ``is_causal`` is upper-left aligned, which would be wrong). On the CPU the
  backend passes a mask-free equivalent instead (:mod:`vniahd.models.attention`: the cached keys
  unmasked plus a causal block over the new ones); ``tests/test_evaluate_chunked.py`` checks both
  the equality to an unchunked pass and the causality of a chunk over a longer cache.
- **Batching.** Several sequences are right-padded to one length and run as a batch. No attention
  mask is needed for the rows we keep: with right padding every real row precedes its padding,
  so causal attention never lets a real row see a pad. Pad rows compute garbage that is dropped.
- **Packing** (CPU, :func:`forward_packed`). Where the backend can, sequences that continue one
  shared cache run as segments of a single row instead: each segment attends to the cache and to
  itself, never to another segment (:mod:`vniahd.models.attention`). No pads, no per-member copy
  of the cache, and one call of the model's Python per batch: on a CPU the per-call overhead and
  the small matrix products of short suffixes are what batching is there to amortise.
- **Row selection.** Only the requested rows' final hidden states are kept (a few per sample),
  so the LM head never sees ``vocab × sequence`` (the reference code's full fp32 logits cost
  ~33 GB per GPU; docs/footguns.md).

Rows are produced lazily by a callable ``rows(a, b) -> Tensor[b-a, hidden]`` on the model device,
so a long prompt's embeddings are gathered from the host memmap one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import TextModel

#: ``--prefill-chunk auto``: tokens per chunk on CUDA (bounded activation memory at 7B scale:
#: MLP 4096 × 18944 × 2 B ≈ 155 MB per projection) and on CPU (larger: fewer Python round trips).
DEFAULT_CHUNK = {"cuda": 4096, "cpu": 8192}


def default_prefill_chunk(device: torch.device | str) -> int:
    """The ``auto`` chunk size for ``device`` (see :data:`DEFAULT_CHUNK`)."""
    kind = torch.device(device).type
    return DEFAULT_CHUNK.get(kind, DEFAULT_CHUNK["cpu"])


def crop_to(cache: Any, length: int) -> None:
    """Drop the newest tokens of ``cache`` so it holds ``length``. transformers 5.x
    ``DynamicCache.crop(n)`` takes a *negative* n = tokens to remove (a positive n raises)."""
    if cache is None:
        return
    extra = int(cache.get_seq_length()) - int(length)
    if extra < 0:
        raise ValueError(f"cache holds {cache.get_seq_length()} tokens, cannot crop to {length}")
    if extra:
        cache.crop(-extra)


RowFn = Callable[[int, int], torch.Tensor]


@dataclass
class Feed:
    """One sequence to feed: ``n`` rows from ``rows(a, b)``, positions ``[3, n]`` (float64, CPU
    is fine), and the row indices (0-based, ascending, ``< n``) whose hidden states to keep."""

    n: int
    rows: RowFn
    positions: torch.Tensor
    keep: Sequence[int]


def concat_rows(*parts: tuple[int, RowFn]) -> RowFn:
    """A row function over consecutive parts ``(length, rows)``."""
    starts: list[int] = []
    total = 0
    for n, _ in parts:
        starts.append(total)
        total += n

    def rows(a: int, b: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        for (n, fn), s in zip(parts, starts):
            lo, hi = max(a, s), min(b, s + n)
            if lo < hi:
                out.append(fn(lo - s, hi - s))
        return out[0] if len(out) == 1 else torch.cat(out, dim=0)

    return rows


def tensor_rows(t: torch.Tensor) -> RowFn:
    return lambda a, b: t[a:b]


def forward_rows(
    backend: TextModel,
    feeds: Sequence[Feed],
    cache: Any = None,
    chunk: int = 0,
    packed: bool = False,
    head: Feed | None = None,
) -> list[torch.Tensor]:
    """Run ``feeds`` (one batch) on top of ``cache`` and return, per feed, the final hidden states
    of its ``keep`` rows as ``[len(keep), hidden]``.

    ``cache`` holds the tokens before every feed's row 0 (batch size ``len(feeds)``, or None for
    an empty prefix); it is extended in place by the fed rows, pads included. ``chunk`` > 0 feeds
    at most that many rows per call; when the batch does not fit in one chunk and no cache was
    given, a private cache carries the chunks and is discarded.

    ``packed`` (a backend that :attr:`~vniahd.models.base.Backend.can_pack`): the feeds share
    ``cache`` at batch size 1 and run as segments of one row in a single call (no padding, see
    :func:`forward_packed`); they must fit in one chunk, with ``head`` (rows every feed
    continues, fed first) if given.
    """
    if not feeds:
        return []
    if packed and len(feeds) > 1:
        return forward_packed(backend, feeds, cache, chunk, head)
    if head is not None:
        raise ValueError("a shared head is for several packed feeds only")
    length = max(f.n for f in feeds)
    step = chunk if chunk and chunk > 0 else length
    if cache is None and length > step:
        cache = backend.new_cache()
    batch = len(feeds)
    kept: list[list[torch.Tensor]] = [[] for _ in feeds]
    keep_idx = [torch.as_tensor(list(f.keep), dtype=torch.long) for f in feeds]
    for a in range(0, length, step):
        b = min(length, a + step)
        if batch == 1:
            f = feeds[0]
            emb = f.rows(a, b)[None]
            pos = f.positions[:, None, a:b]
        else:
            emb, pos = _padded(backend, feeds, a, b)
        hidden = backend.hidden_states(emb, pos, cache=cache)
        for i, idx in enumerate(keep_idx):
            sel = idx[(idx >= a) & (idx < b)]
            if len(sel):
                kept[i].append(hidden[i, (sel - a).to(hidden.device)])
        del hidden
    hidden_size = backend.hidden_size  # the model width d (hidden states, not rows)
    return [torch.cat(k, dim=0) if k else torch.empty(0, hidden_size, device=backend.device) for k in kept]


def forward_packed(
    backend: TextModel, feeds: Sequence[Feed], cache: Any, chunk: int = 0, head: Feed | None = None
) -> list[torch.Tensor]:
    """:func:`forward_rows` for feeds packed as segments of one row: every feed's rows attend to
    ``cache`` (batch size 1, or None), to ``head`` and causally to its own rows, never to another
    feed's (``Backend.hidden_states(..., segments=…, shared=…)``). ``head``: rows every feed
    continues (the shared prefix still to compute), fed first, attending to ``cache`` and
    causally to itself; its ``keep`` is ignored. Exact like batching, without the pads and the
    per-member copy of the cache; ``cache`` is extended by all fed rows, head first. A head that
    would take the pass over ``chunk`` rows is fed on its own first (chunked); the feeds alone
    must fit in one chunk (the work plan's pack budget sees to it)."""
    if head is not None and chunk and head.n + sum(f.n for f in feeds) > chunk:
        forward_rows(backend, [head], cache, chunk)  # the head alone first, chunked
        head = None
    parts = ([head] if head is not None else []) + list(feeds)
    total = sum(f.n for f in parts)
    if chunk and total > chunk:
        raise ValueError(f"{len(parts)} packed feeds of {total} rows exceed the prefill chunk ({chunk})")
    emb = torch.cat([f.rows(0, f.n) for f in parts], dim=0)[None]
    pos = torch.cat([f.positions[:, : f.n].to(torch.float64).cpu() for f in parts], dim=1)[:, None]
    shared = head.n if head is not None else 0
    hidden = backend.hidden_states(emb, pos, cache=cache, segments=[f.n for f in feeds], shared=shared)[0]
    out: list[torch.Tensor] = []
    start = shared
    for f in feeds:
        idx = torch.as_tensor(list(f.keep), dtype=torch.long, device=hidden.device) + start
        out.append(hidden[idx])
        start += f.n
    return out


def _padded(backend: TextModel, feeds: Sequence[Feed], a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows [a, b) of every feed, right-padded with zeros; pads repeat the last real position
    (any value is exact for the kept rows, see the module docstring)."""
    width = b - a
    emb = torch.zeros(len(feeds), width, backend.row_width, dtype=backend.dtype, device=backend.device)
    pos = torch.zeros(feeds[0].positions.shape[0], len(feeds), width, dtype=torch.float64)  # K streams
    for i, f in enumerate(feeds):
        hi = min(b, f.n)
        if hi > a:
            emb[i, : hi - a] = f.rows(a, hi).to(backend.dtype)
            pos[:, i, : hi - a] = f.positions[:, a:hi].to(torch.float64).cpu()
            pos[:, i, hi - a :] = f.positions[:, hi - 1 : hi].to(torch.float64).cpu()
        else:
            pos[:, i, :] = f.positions[:, f.n - 1 : f.n].to(torch.float64).cpu()
    return emb, pos
