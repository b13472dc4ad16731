"""Shared-prefix scheduling and KV reuse.

Samples whose haystack window starts at the same offset feed the same tokens (the system text,
then the same haystack frames and, where their frame sequences agree, the same needle and
distractor images) for as long as their frame sequences agree, whatever their lengths. Every
layout of :mod:`vniahd.rope` is causal: a token's position depends only on the tokens before it
(the video's frame count T enters only the text *after* the video), so shared rows also sit at
the same positions (``tests/test_evaluate_prefix.py`` checks this for every preset); the cache
compares positions anyway and starts over where a layout breaks this.

Schedule (:class:`SharedPrefix`): the samples of a group come in lexicographic order of their
frame sequences — a depth-first walk of their prefix tree. One KV cache walks the tree
(:meth:`SharedPrefix.follow`): before a sample (or batch) it keeps the rows the sample shares
with the cached path, crops the rest, and grows along the sample to what the next sample will
share; the sample's own remainder (and the question, the teacher-forced answer) is evaluated on
top and cropped away. Each node of the tree is computed once: the work equals the global
prefix-tree floor that ``bench/eval_prefix.py`` measures (up to batching).

:class:`PromptSource` produces a sample's prompt embeddings lazily, ``rows(a, b)`` at a time:
haystack frame embeddings stay in the host memmap and only the frames a chunk needs are moved
to the device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from vniahd.evaluation.execution.chunked import Feed, crop_to, forward_rows
from vniahd.evaluation.planning.work_plan import common_frames

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import TextModel
    from vniahd.evaluation.execution.embedding_cache import EmbeddingCache

#: What a prompt's first rows are made of: (text-before ids, frame refs); see
#: :meth:`PromptSource.prefix_identity`.
PrefixIdentity = tuple[tuple[int, ...], tuple[tuple[str, Any], ...]]


class PromptSource:
    """A sample's prompt ``[text before | T frames × tokens_per_frame | text after]`` as lazily
    gathered embedding rows on the model device."""

    def __init__(
        self,
        backend: TextModel,
        cache: EmbeddingCache,
        refs: Sequence[tuple[str, Any]],
        haystack: np.ndarray,
        images: Mapping[str, torch.Tensor],
        before_ids: list[int],
        after_ids: list[int],
    ):
        self.backend = backend
        self.cache = cache
        self.refs = list(refs)
        self.haystack = haystack
        self.images = images
        self.before_ids = list(before_ids)
        self.tpf = int(cache.tokens_per_frame)
        self.nb = len(self.before_ids)
        self.nv = len(self.refs) * self.tpf
        self.after_ids = list(after_ids)
        self._before: torch.Tensor | None = None
        self._after: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.nb + self.nv + len(self.after_ids)

    def _text(self, which: str) -> torch.Tensor:
        ids = self.before_ids if which == "before" else self.after_ids
        attr = "_" + which
        if getattr(self, attr) is None:
            emb = (
                self.backend.embed_text(ids).to(self.backend.dtype)
                if ids
                else torch.empty(
                    0, self.backend.row_width, dtype=self.backend.dtype, device=self.backend.device
                )
            )
            setattr(self, attr, emb)
        return cast(torch.Tensor, getattr(self, attr))

    def release(self) -> None:
        """Drop the cached text embeddings (gathered again if asked for): a stack sample's text
        is its filler, ~200k rows, which must not stay on the device once the sample is scored."""
        self._before = self._after = None

    def rows(self, a: int, b: int) -> torch.Tensor:
        """Embeddings of prompt rows ``[a, b)`` on the model device."""
        parts: list[torch.Tensor] = []
        nb, nv = self.nb, self.nv
        if a < nb:
            parts.append(self._text("before")[a : min(b, nb)])
        lo, hi = max(a, nb), min(b, nb + nv)
        if lo < hi:
            f0, f1 = (lo - nb) // self.tpf, (hi - nb - 1) // self.tpf + 1
            frames = self.cache.gather(self.refs[f0:f1], self.haystack, self.images)
            off = f0 * self.tpf + nb
            parts.append(frames[lo - off : hi - off].to(device=self.backend.device, dtype=self.backend.dtype))
        if b > nb + nv:
            parts.append(self._text("after")[max(a, nb + nv) - nb - nv : b - nb - nv])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def materialize(self) -> torch.Tensor:
        return self.rows(0, len(self))

    # ---- prefix identity -----------------------------------------------------------------
    def prefix_tokens(self, frames: int) -> int:
        """Tokens of the prompt before frame ``frames``."""
        return self.nb + frames * self.tpf

    def prefix_identity(self, frames: int) -> PrefixIdentity:
        """What the prompt's first :meth:`prefix_tokens` rows are made of (exact equality of two
        identities ⇔ equal embeddings at equal positions, by causality)."""
        return (tuple(self.before_ids), tuple(self.refs[:frames]))


class SharedPrefix:
    """One KV cache walking a group's prefix tree (see the module docstring).

    ``tokens`` is what the cache holds now; :meth:`follow` crops it to what the next sample shares
    and grows it along that sample (starting over when nothing is shared)."""

    def __init__(self, backend: TextModel, chunk: int = 0):
        self.backend = backend
        self.chunk = chunk
        self.cache: Any = None  # a transformers DynamicCache once started
        self.tokens = 0
        self.identity: PrefixIdentity | None = None
        self.positions: torch.Tensor | None = None  # [3, tokens] positions the cache was built at
        self.computed_tokens = 0  # prefix tokens fed by grow() (a batch's own pass counts its own)
        self.resets = 0

    def reset(self) -> None:
        self.cache = None
        self.tokens = 0
        self.identity = None
        self.positions = None

    def follow(self, source: PromptSource, positions: torch.Tensor, grow: int, common: int) -> int:
        """Walk the prefix tree to ``source``: keep the cached rows it shares (at most ``common``
        frames, what every sample about to use the cache shares), crop the rest, then extend along
        ``source`` to ``grow`` frames (what the next sample will share). Returns the tokens held:
        the suffixes of the samples using the cache start there. Never recomputes a row it holds.
        ``grow = -1``: nothing after shares anything (not even the text before the video), so a
        cache that holds nothing usable stays empty."""
        cached, target = self.plan(source, positions, grow, common)
        self.grow(source, positions, cached, target)
        return target

    def grow(self, source: PromptSource, positions: torch.Tensor, cached: int, target: int) -> None:
        """Feed ``source``'s rows ``[cached, target)`` into the cache (what :meth:`plan` left)."""
        if target > cached:
            self.computed_tokens += target - cached
            feed = Feed(
                n=target - cached,
                rows=lambda a, b: source.rows(cached + a, cached + b),
                positions=positions[:, cached:target],
                keep=[],
            )
            forward_rows(self.backend, [feed], self.cache, self.chunk)

    def plan(self, source: PromptSource, positions: torch.Tensor, grow: int, common: int) -> tuple[int, int]:
        """:meth:`follow` without the growing: crops the cache to what ``source`` shares and
        returns ``(cached, target)``: the tokens the cache holds now and the tokens it must hold
        for the samples that use it. The caller feeds ``source``'s rows ``[cached, target)``
        itself — in the same forward pass as the samples' own rows (one call instead of two,
        ``scoring.Context.cached``) — and crops the cache back to ``target`` after."""
        before, refs = source.prefix_identity(len(source.refs))
        keep = -1  # frames kept; -1 = not even the text before the video
        if self.cache is not None and self.identity is not None and self.identity[0] == before:
            keep = min(common_frames(self.identity[1], refs), common)
            n = source.prefix_tokens(keep)
            if self.positions is None or not torch.equal(
                self.positions[:, :n], positions[:, :n].to(self.positions)
            ):
                keep = -1  # a layout whose positions depend on what follows: start over
        if keep < 0:
            self.reset()
            self.resets += 1
            self.cache = self.backend.new_cache()
        elif source.prefix_tokens(keep) < self.tokens:
            crop_to(self.cache, source.prefix_tokens(keep))
            self.tokens = source.prefix_tokens(keep)
            assert self.positions is not None
            self.positions = self.positions[:, : self.tokens]
        target_frames = max(grow, keep)
        if target_frames < 0:
            self.identity = None
            return 0, 0
        cached, target = self.tokens, source.prefix_tokens(target_frames)
        if target > cached:
            self.tokens = target
            self.positions = positions[:, :target].detach().clone()
        self.identity = (before, refs[:target_frames])
        return cached, self.tokens


def fork_cache(backend: TextModel, cache: Any, batch: int) -> Any:
    """A new cache holding ``cache``'s tokens repeated over a batch of ``batch`` (the original is
    untouched: DynamicCache layers concatenate into new tensors on update)."""
    if cache is None or int(cache.get_seq_length()) == 0:
        return None
    new = backend.new_cache()
    for i, layer in enumerate(cache.layers):
        k, v = layer.keys, layer.values
        new.layers[i].update(k.expand(batch, *k.shape[1:]), v.expand(batch, *v.shape[1:]))
    return new
