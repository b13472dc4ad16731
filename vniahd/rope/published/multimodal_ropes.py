"""What JJJYmmm/Multimodal-RoPEs (ICLR 2026, arXiv 2510.23095) does differently from the
official code of designs it reimplements, as presets of their own (``*-mmr``).

- VideoRoPE's pair map there (``freq_allocation/videorope.py`` L9-L22) starts with all pairs on
  t, then sets h on odd j < 2·s_h and w on even j with 2 ≤ j < 2·s_w: pair 0 stays temporal
  (t/h/w = 17/24/23 pairs at P = 64, against VideoRoPE's 16/24/24 with the t pairs last).
- HoPE there (``freq_allocation/hope.py`` L20-L22) zeroes the t stream of every token, so every
  pair of that map reading t (pair 0 and the last s_t) is NoPE; its temporal scale is drawn at
  random from {0.5, …, 1.5} per video even at inference (``pos_design/hope.py`` L129-L131),
  which no fixed preset can reproduce: ``hope-mmr`` fixes δ (default 1, the list's middle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vniahd.rope.allocations import check_sections, register_allocation
from vniahd.rope.components import NOPE, Allocation, H, T, W, choice_check
from vniahd.rope.presets import make_variant, register_preset

CODE = "JJJYmmm/Multimodal-RoPEs"


def mmr_videorope_axes(num_pairs: int, sections: Sequence[int], temporal: str = "rotate") -> torch.Tensor:
    """All pairs t; h on odd j < 2·s_h; w on even j, 2 ≤ j < 2·s_w (``freq_allocation/videorope.py``
    L9-L22); with ``temporal='nope'`` the t pairs are NoPE (HoPE there)."""
    _, sh, sw = check_sections(num_pairs, sections)
    axes = []
    for j in range(num_pairs):
        if j % 2 == 1 and j < 2 * sh:
            axes.append(H)
        elif j % 2 == 0 and 2 <= j < 2 * sw:
            axes.append(W)
        else:
            axes.append(NOPE if temporal == "nope" else T)
    return torch.tensor(axes, dtype=torch.long)


def _temporal(value: Any) -> str:
    return choice_check(
        "lta-mmr allocation", "temporal", {"rotate": "t pairs read t", "nope": "t pairs NoPE"}
    )(value)


LTA_MMR = register_allocation(
    Allocation(
        "lta-mmr",
        mmr_videorope_axes,
        "Multimodal-RoPEs' VideoRoPE map: pair 0 and the lowest pairs t, h odd, w even (temporal=nope: HoPE)",
        f"{CODE} freq_allocation/videorope.py L9-L22; freq_allocation/hope.py L20-L22 for temporal=nope",
        defaults={"temporal": "rotate"},
        checks={"temporal": _temporal},
    ),
    model_sections=True,
)

register_preset(
    make_variant(
        "diagonal",
        "lta-mmr",
        name="videorope-mmr",
        delta=2.0,
        description="VideoRoPE as reimplemented in Multimodal-RoPEs (pair 0 temporal; δ=2)",
        source=f"{CODE} pos_design/videorope.py L105-L142, freq_allocation/videorope.py L9-L22, "
        "configs/videorope.py L9-L20",
    )
)

register_preset(
    make_variant(
        "diagonal",
        "lta-mmr",
        name="hope-mmr",
        delta=1.0,
        temporal="nope",
        description="HoPE as reimplemented in Multimodal-RoPEs "
        "(t pairs of its VideoRoPE map NoPE; δ fixed at 1)",
        source=f"{CODE} pos_design/hope.py L106-L137, freq_allocation/hope.py L14-L50, "
        "configs/hope.py L9-L28",
    )
)
