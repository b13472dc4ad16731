"""Wide embedding rows: one codec for backends whose evaluator rows carry more than a token.

The evaluator moves one tensor row per sequence position (the embedding cache, prefix sharing,
chunked prefill, right-padded batches and packing all treat rows as opaque). A backend whose text
model needs more per position than a ``d``-wide token embedding packs it into a wider row::

    [ token slice (token_width) | extra slice 0 | … | extra slice L−1 | flag (1) ]

**One flag convention: 1 = visual row, 0 = text row.** A text row holds its embedding in the first
columns of the token slice, zeros elsewhere and flag 0, so an all-zero row (a right-padded batch's
pad) is a text row. Users:

- Qwen3-VL (:mod:`vniahd.models.qwen3_vl`): token slice = the merged visual token (``d``), one extra
  slice of ``d`` per DeepStack level;
- the tiny model (:mod:`vniahd.models.tiny.backend`): token slice = the 1320 frozen encoder
  features of a visual row (the per-variant projector runs inside ``hidden_states``) or the
  ``d``-wide word embedding of a text row; no extra slices.

The flag only routes rows (which positions are visual); no model weight reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: The flag value of a visual row (a text row's flag is 0).
VISUAL = 1.0


@dataclass(frozen=True)
class RowParts:
    """A batch of rows split again: ``token`` ``[..., token_width]``, one ``[..., w]`` tensor per
    extra slice, and ``visual`` (bool ``[...]``: which rows are visual)."""

    token: torch.Tensor
    extras: tuple[torch.Tensor, ...]
    visual: torch.Tensor


@dataclass(frozen=True)
class RowCodec:
    """Packs ``[token | extras… | flag]`` rows and splits them (see the module docstring)."""

    token_width: int
    extra_widths: tuple[int, ...] = ()

    @property
    def width(self) -> int:
        """Columns of one row."""
        return self.token_width + sum(self.extra_widths) + 1

    def text_rows(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[n, k]`` token embeddings (``k ≤ token_width``) → ``[n, width]`` text rows: the
        embedding in the first ``k`` columns, zeros elsewhere, flag 0."""
        k = int(embeddings.shape[-1])
        if k > self.token_width:
            raise ValueError(f"a {k}-wide embedding does not fit the {self.token_width}-wide token slice")
        return torch.cat([embeddings, embeddings.new_zeros(*embeddings.shape[:-1], self.width - k)], dim=-1)

    def visual_rows(self, token: torch.Tensor, extras: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """``[..., token_width]`` tokens and one ``[..., w]`` tensor per extra slice (same leading
        shape, device and dtype) → ``[..., width]`` visual rows, flag 1."""
        if (
            int(token.shape[-1]) != self.token_width
            or tuple(int(e.shape[-1]) for e in extras) != self.extra_widths
        ):
            raise ValueError(
                f"visual row parts {[int(token.shape[-1]), *(int(e.shape[-1]) for e in extras)]} do not "
                f"match the codec's slices {[self.token_width, *self.extra_widths]}"
            )
        flag = token.new_full((*token.shape[:-1], 1), VISUAL)
        return torch.cat([token, *extras, flag], dim=-1)

    def is_visual(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool ``[...]``: which of ``rows`` ``[..., width]`` are visual."""
        return rows[..., -1] > 0.5

    def split(self, rows: torch.Tensor) -> RowParts:
        """``[..., width]`` rows → their token slice, extra slices and visual mask (views)."""
        if int(rows.shape[-1]) != self.width:
            raise ValueError(f"rows are {int(rows.shape[-1])} wide, the codec's are {self.width}")
        extras = []
        start = self.token_width
        for w in self.extra_widths:
            extras.append(rows[..., start : start + w])
            start += w
        return RowParts(rows[..., : self.token_width], tuple(extras), self.is_visual(rows))
