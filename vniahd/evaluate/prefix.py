"""Shared-prefix scheduling and KV reuse.

Samples of one haystack length (and one haystack window offset) read the same haystack frames
before their first inserted frame (needle or distractor), after the same system text. Their
token sequences therefore share a prefix ``[system text, haystack frames 0 .. q−1]`` where ``q``
is the sample's first inserted slot. Every layout of :mod:`vniahd.rope` is causal: a token's
position depends only on the tokens before it (the video's frame count T enters only the text
*after* the video), so the prefix's positions are the same in every sample that shares it
(``tests/test_evaluate_prefix.py`` checks this for every preset, fractional δ included).

Schedule (:class:`SharedPrefix`): samples of a group are ordered by first inserted slot. The KV
cache of the common prefix is computed once and extended incrementally as the next sample's
first slot moves right; each sample's suffix (its first inserted frame onwards, the question, the
teacher-forced answer) is evaluated on top of it, and the cache is cropped back to the prefix.
Each token of the group's shared prefix is computed once; the work equals the per-group prefix
tree of the samples' token sequences (the floor that ``bench/eval_prefix.py`` measures).

:class:`PromptSource` produces a sample's prompt embeddings lazily, ``rows(a, b)`` at a time:
haystack frame embeddings stay in the host memmap and only the frames a chunk needs are moved
to the device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from vniahd.evaluate.chunked import Feed, forward_rows

if TYPE_CHECKING:
    from vniahd.evaluate.cache import EmbeddingCache
    from vniahd.evaluate.contracts import BackendLike

#: What a prompt's first rows are made of: (text-before ids, frame refs); see
#: :meth:`PromptSource.prefix_identity`.
PrefixIdentity = tuple[tuple[int, ...], tuple[tuple[str, Any], ...]]


class PromptSource:
    """A sample's prompt ``[text before | T frames × tokens_per_frame | text after]`` as lazily
    gathered embedding rows on the model device."""

    def __init__(
        self,
        backend: BackendLike,
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
                    0, self.backend.hidden_size, dtype=self.backend.dtype, device=self.backend.device
                )
            )
            setattr(self, attr, emb)
        return cast(torch.Tensor, getattr(self, attr))

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


def first_inserted_frame(refs: Sequence[tuple[str, Any]]) -> int:
    """Index of the first non-haystack frame (= the sample's first inserted slot)."""
    for i, (kind, _) in enumerate(refs):
        if kind != "haystack":
            return i
    return len(refs)


def _is_prefix(short: PrefixIdentity, long: PrefixIdentity) -> bool:
    return short[0] == long[0] and len(short[1]) <= len(long[1]) and long[1][: len(short[1])] == short[1]


class SharedPrefix:
    """The KV cache of one shared prefix, extended incrementally (see the module docstring).

    ``tokens`` is what the cache holds now; ``advance`` makes it hold a given sample's prefix
    (extending, or starting over when that sample does not continue the current prefix)."""

    def __init__(self, backend: BackendLike, chunk: int = 0):
        self.backend = backend
        self.chunk = chunk
        self.cache: Any = None  # a transformers DynamicCache once started
        self.tokens = 0
        self.identity: PrefixIdentity | None = None
        self.positions: torch.Tensor | None = None  # [3, tokens] positions the cache was built at
        self.computed_tokens = 0  # prefix tokens run through the model (for tests / benchmarks)
        self.resets = 0

    def reset(self) -> None:
        self.cache = None
        self.tokens = 0
        self.identity = None
        self.positions = None

    def _same_positions(self, positions: torch.Tensor | None) -> bool:
        """Whether the cached rows sit at ``positions``' first rows too. Every preset layout is
        causal (a frame's position does not depend on how many frames follow), so samples of
        different lengths share their prefix; a layout where that fails is caught here and gets
        its own cache instead of wrong keys."""
        if positions is None or self.positions is None:
            return True
        n = self.positions.shape[-1]
        return positions.shape[-1] >= n and torch.equal(self.positions, positions[:, :n].to(self.positions))

    def usable(self, source: PromptSource, frames: int, positions: torch.Tensor | None = None) -> int:
        """Tokens of the current cache that ``source``'s prefix of ``frames`` frames (at
        ``positions``, when given) can reuse (0 when the cache holds something else)."""
        if self.identity is None or not _is_prefix(self.identity, source.prefix_identity(frames)):
            return 0
        if not self._same_positions(positions):
            return 0
        return self.tokens

    def advance(self, source: PromptSource, positions: torch.Tensor, frames: int) -> int:
        """Make the cache hold ``source``'s prompt rows before frame ``frames`` (positions
        ``[3, ≥ prefix]`` are that sample's own); returns the prefix length in tokens."""
        ident = source.prefix_identity(frames)
        target = source.prefix_tokens(frames)
        if (
            self.identity is None
            or not _is_prefix(self.identity, ident)
            or self.cache is None
            or not self._same_positions(positions)
        ):
            self.reset()
            self.resets += 1
            self.cache = self.backend.new_cache()
        if target > self.tokens:
            start = self.tokens
            feed = Feed(
                n=target - start,
                rows=lambda a, b: source.rows(start + a, start + b),
                positions=positions[:, start:target],
                keep=[],
            )
            forward_rows(self.backend, [feed], self.cache, self.chunk)
            self.computed_tokens += target - start
            self.tokens = target
            self.positions = positions[:, :target].detach().clone()
        self.identity = ident
        return self.tokens


def fork_cache(backend: BackendLike, cache: Any, batch: int) -> Any:
    """A new cache holding ``cache``'s tokens repeated over a batch of ``batch`` (the original is
    untouched: DynamicCache layers concatenate into new tensors on update)."""
    if cache is None or int(cache.get_seq_length()) == 0:
        return None
    new = backend.new_cache()
    for i, layer in enumerate(cache.layers):
        k, v = layer.keys, layer.values
        new.layers[i].update(k.expand(batch, *k.shape[1:]), v.expand(batch, *v.shape[1:]))
    return new
