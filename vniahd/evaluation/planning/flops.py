"""A FLOP model of the decoder text path, and the prefix-tree floor of a set of sequences.

Counted (multiply-add = 2 FLOPs), per token and layer, for a Qwen2-style decoder:

- linear layers: q/o projections ``2·h·(heads·d)`` each, k/v projections ``2·h·(kv·d)`` each, the
  gated MLP ``3 · 2·h·I`` (gate, up, down);
- attention: ``QKᵀ`` and ``A·V`` ``2 · 2·heads·d·ctx``, where ``ctx`` is the number of keys the
  token attends to (its own index + 1 under a causal mask);
- the LM head ``2·h·V`` per row it is applied to.

Norms, rotary, softmax and embedding lookups are left out (O(h) per token: < 0.1 % at any size
here). This is the usual accounting of Kaplan et al. 2020 ("Scaling Laws", Table 1) with the
attention term kept exact per context length instead of averaged.

The *prefix-tree floor* (:func:`trie_flops`) is the least exact computation for a set of
sequences under causal attention: identical prefixes (same tokens at the same positions) need
computing once, so the cost is that of the trie of all sequences, each node paid once at its
depth. Sequences are given as lists of atoms ``(key, n_tokens)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

    from vniahd.evaluation.contracts import TextModelBackendLike


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def from_backend(cls, backend: TextModelBackendLike) -> ModelShape:
        c: Any = backend.language_model.config
        head_dim = int(getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads)
        return cls(
            hidden=int(c.hidden_size),
            layers=int(c.num_hidden_layers),
            heads=int(c.num_attention_heads),
            kv_heads=int(c.num_key_value_heads),
            head_dim=head_dim,
            intermediate=int(c.intermediate_size),
            vocab=int(backend.vocab_size),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def linear_per_token(self) -> float:
        h, d = self.hidden, self.head_dim
        per_layer = 2 * h * self.heads * d * 2 + 2 * h * self.kv_heads * d * 2 + 3 * 2 * h * self.intermediate
        return float(self.layers * per_layer)

    def head_per_row(self) -> float:
        return float(2 * self.hidden * self.vocab)

    def attention(self, n_new: int, n_past: int) -> float:
        """QKᵀ + AV for ``n_new`` tokens after ``n_past`` cached ones (causal)."""
        keys = n_new * n_past + n_new * (n_new + 1) / 2  # Σ_i (n_past + i + 1)
        return float(self.layers * 4 * self.heads * self.head_dim * keys)

    def forward(self, n_new: int, n_past: int = 0, head_rows: int = 0) -> float:
        return (
            self.linear_per_token() * n_new + self.attention(n_new, n_past) + self.head_per_row() * head_rows
        )

    def head_share(self, context: float = 0.0) -> float:
        """The LM head's share of one token's FLOPs (head on that token) at ``context`` keys."""
        att = self.layers * 4 * self.heads * self.head_dim * (context + 1)
        return self.head_per_row() / (self.linear_per_token() + att + self.head_per_row())


def trie_flops(shape: ModelShape, sequences: Iterable[Sequence[tuple[Hashable, int]]]) -> dict[str, float]:
    """Forward FLOPs of the prefix tree (trie) of ``sequences`` (no LM head; add the scored rows'
    head separately) and the number of distinct token nodes."""
    root: dict[Hashable, Any] = {}
    flops = 0.0
    tokens = 0
    for seq in sequences:
        node, depth = root, 0
        for key, n in seq:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
                flops += shape.forward(n, depth)
                tokens += n
            node, depth = child, depth + n
    return {"flops": flops, "tokens": tokens}


class FlopCounter:
    """Counts the FLOPs a backend actually runs, by wrapping ``hidden_states`` (tokens fed and
    the cache length they attend over, pads included; packed segments each over the cache and
    themselves) and hooking ``lm_head`` (rows)."""

    def __init__(self, backend: TextModelBackendLike, shape: ModelShape | None = None):
        self.backend = backend
        self.shape = shape or ModelShape.from_backend(backend)
        self.flops = 0.0
        self.tokens = 0
        self.head_rows = 0
        self.max_head_rows = 0
        self._orig: Callable[..., torch.Tensor] | None = None
        self._hook: RemovableHandle | None = None

    def __enter__(self) -> FlopCounter:
        be = self.backend
        self._had = "hidden_states" in vars(be)
        self._orig = be.hidden_states

        def counted(
            embeds: torch.Tensor,
            position_ids: torch.Tensor,
            cache: Any = None,
            segments: Sequence[int] | None = None,
            shared: int = 0,
        ) -> torch.Tensor:
            past = int(cache.get_seq_length()) if cache is not None else 0
            b, n = int(embeds.shape[0]), int(embeds.shape[1])
            # packed segments attend to the cache, the shared head and themselves, not to each other
            body = sum(self.shape.forward(s, past + shared) for s in (segments or [n - shared]))
            self.flops += b * (self.shape.forward(shared, past) + body)
            self.tokens += b * n
            assert self._orig is not None
            if segments is None:  # backends without packing take no such keywords
                return self._orig(embeds, position_ids, cache=cache)
            return self._orig(embeds, position_ids, cache=cache, segments=segments, shared=shared)

        be.hidden_states = counted  # type: ignore[method-assign]  # instance attribute shadows the method

        def head(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            rows = int(torch.as_tensor(args[0].shape[:-1]).prod()) if args[0].dim() > 1 else 1
            self.head_rows += rows
            self.max_head_rows = max(self.max_head_rows, rows)
            self.flops += rows * self.shape.head_per_row()

        self._hook = be.lm_head.register_forward_pre_hook(head)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._had:
            self.backend.hidden_states = self._orig  # type: ignore[method-assign, assignment]
        else:
            del self.backend.hidden_states  # the class's method shows through again
        assert self._hook is not None
        self._hook.remove()
