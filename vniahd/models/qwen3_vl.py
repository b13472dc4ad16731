"""The Qwen3-VL family adapter: DeepStack visual features ride along in the embedding rows.

Qwen3-VL's vision tower returns, besides the merged visual tokens, one *DeepStack* feature per
token from each of a few vision blocks (``deepstack_visual_indexes``); the text model adds feature
k to the hidden states of the visual positions after its k-th layer (``Qwen3VLTextModel.forward``
takes ``visual_pos_masks`` and ``deepstack_visual_embeds``). An embeddings-only splice would drop
them. So here an evaluator "embedding row" is wider than the model's hidden size ``d``::

    [ token embedding (d) | DeepStack level 0 (d) | … | level L−1 (d) | visual flag (1) ]

A visual row carries its merged token and its L DeepStack features, flag 1; a text row carries its
word embedding, zeros, flag 0 (the one row codec, :class:`vniahd.models.rows.RowCodec`; the row
width is :attr:`~Qwen3VLBackend.row_width`, ``hidden_size`` stays the model's ``d``).
:meth:`Qwen3VLBackend.hidden_states` splits the rows again and
hands the text model exactly what its own forward would: the visual-position mask and the
DeepStack features of the visual rows, in order. Everything the evaluator does with rows — the
embedding cache, prefix sharing, chunked prefill, right-padded batches (padding rows are text
rows) — therefore carries DeepStack through unchanged, and cached embeddings hold it too.

Rotary layout: interleaved t/h/w (``mrope_section`` (24, 20, 20) at 64 pairs); vniahd reads it from
the model's rotary module (:func:`vniahd.rope.hf.rotary_config`). Qwen3-VL's *native* position
scheme gives every frame its own grid preceded by a ``<t seconds>`` timestamp text; vniahd's
layouts place frames as one video (see docs/footguns.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vniahd.files import sha256_json
from vniahd.models.qwen_vl import GROUPING, QwenVLBackend
from vniahd.models.rows import RowCodec


class Qwen3VLBackend(QwenVLBackend):
    """A loaded ``Qwen3VLForConditionalGeneration`` (see the module docstring)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        vc: Any = self.visual.config
        self.deepstack_levels = len(list(vc.deepstack_visual_indexes))
        d = self.hidden_size
        self.rows = RowCodec(token_width=d, extra_widths=(d,) * self.deepstack_levels)

    @property
    def row_width(self) -> int:
        """Width of the evaluator's embedding rows: ``d · (1 + levels) + 1``."""
        return self.rows.width

    # ---- frame encoder -------------------------------------------------------------------
    def token_rows(self, tower_output: Any) -> torch.Tensor:
        """Merged token | DeepStack levels | visual flag, per visual token."""
        merged = tower_output.pooler_output
        # each [n · tokens, d]; a tower spread over GPUs (--device-map) returns them on several
        return self.rows.visual_rows(merged, [f.to(merged.device) for f in tower_output.deepstack_features])

    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str:
        base = super().encoder_fingerprint(frame_size)
        return sha256_json(
            {"base": base, "rows": "merged + deepstack levels + visual flag", "levels": self.deepstack_levels}
        )

    # ---- text path -----------------------------------------------------------------------
    def embed_text(self, ids: list[int]) -> torch.Tensor:
        return self.rows.text_rows(super().embed_text(ids))

    def hidden_states(
        self,
        embeds: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        segments: Sequence[int] | None = None,
        shared: int = 0,
    ) -> torch.Tensor:
        parts = self.rows.split(embeds.to(self.dtype))
        visual = parts.visual  # [B, S]
        kwargs: dict[str, Any] = {}
        if bool(visual.any()):
            kwargs["visual_pos_masks"] = visual
            kwargs["deepstack_visual_embeds"] = [level[visual] for level in parts.extras]
        return self._text_forward(parts.token.contiguous(), position_ids, cache, segments, shared, **kwargs)

    # ---- identity ------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            {
                "deepstack_levels": self.deepstack_levels,
                "grouping": GROUPING,
            }
        )
        return d
