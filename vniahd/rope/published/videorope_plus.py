"""VideoRoPE++ with YaRN-V (the VideoRoPE repository's ``videorope_plus/``, zenodo
10.5281/zenodo.16529245).

Official code: Wiselnn570/VideoRoPE ``videorope_plus/videorope_plus_extrapolation_impl/vllm/
model_executor/layers/rotary_embedding.py`` (RE+ below) and ``.../vllm/worker/model_runner.py``.
- Positions: VideoRoPE's diagonal layout with δ = 2 (hard-coded, ``model_runner.py`` L805); the
  text after the video starts one past the largest value of *any* stream
  (``get_input_t_scale_modify_positions_tensor``, RE+ L1758-L1763): ``diagonal`` with
  ``text_after=max``. The repository's transformers code and its V-RULER evaluation use the t
  stream's maximum instead (``text_after=code``).
- Frequencies (``post_init``, branch ``videorope++_v1``, RE+ L885-L933): VideoRoPE's LTA pair
  map; the s_t temporal pairs rotate with an NTK-scaled base
  ``θ' = θ·((f·L − 1)/(L − 1))^(d/(d−2))`` with L = 32768 (RE+ L780-L783), so temporal pair j's
  frequency is multiplied by ``((f·L − 1)/(L − 1))^(−2j/(d−2))``; spatial pairs are unchanged,
  no attention scaling. f defaults to 4 (RE+ L771); the shipped script passes 1.0, which turns
  the scaling off (``v_ruler/scripts/lengthy_multimodal_stack.sh`` L21).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vniahd.errors import VniahdError
from vniahd.rope.allocations import register_allocation
from vniahd.rope.components import Allocation, PairPlan, T, int_check, number_check, plan_from_axes
from vniahd.rope.presets import make_variant, register_preset
from vniahd.rope.published.hope import alternating_axes

SOURCE = (
    "VideoRoPE++ (Wiselnn570/VideoRoPE videorope_plus/, zenodo 10.5281/zenodo.16529245); "
    "videorope_plus_extrapolation_impl/vllm/model_executor/layers/rotary_embedding.py"
)


def yarn_v_plan(num_pairs: int, sections: Sequence[int], factor: float, original_length: int) -> PairPlan:
    """h/w alternating, then t (``m_modify_forward`` RE+ L1043-L1060); temporal pair j's
    frequency × ``((f·L−1)/(L−1))^(−2j/(d−2))`` with d = 2P
    (RE+ L898-L932: the NTK base over the default base, raised to −2j/d)."""
    if factor * original_length <= 1:
        raise VniahdError(
            f"lta-yarn allocation: factor × original_length must exceed 1 (the NTK ratio "
            f"(f·L−1)/(L−1) is otherwise not positive), got factor={factor:g}, "
            f"original_length={original_length}"
        )
    axes = alternating_axes(num_pairs, sections)
    dim = 2 * num_pairs
    ratio = (factor * original_length - 1) / (original_length - 1)
    j = torch.arange(num_pairs, dtype=torch.float64)
    # dim == 2 has one pair and d−2 = 0: the NTK exponent d/(d−2) is undefined there
    multiplier = ratio ** (-2 * j / (dim - 2)) if dim > 2 else torch.full_like(j, 1 / ratio)
    scale = torch.where(axes == T, multiplier, torch.ones_like(multiplier))
    return plan_from_axes(axes, scale)


YARN_V = register_allocation(
    Allocation(
        "lta-yarn",
        yarn_v_plan,
        "LTA; the temporal pairs rotate with an NTK-scaled base (YaRN-V, factor f, length L)",
        f"{SOURCE} MRotaryEmbedding.post_init 'videorope++_v1' L885-L933",
        defaults={"factor": 4.0, "original_length": 32768},
        checks={
            "factor": number_check("lta-yarn allocation", "factor"),
            "original_length": int_check("lta-yarn allocation", "original_length", minimum=2),
        },
    ),
    model_sections=True,
)

VIDEOROPE_PLUS = register_preset(
    make_variant(
        "diagonal",
        "lta-yarn",
        name="videorope-plus",
        delta=2.0,
        text_after="max",
        description="VideoRoPE++: VideoRoPE (δ=2) with YaRN-V temporal frequencies (factor 4), text "
        "after at the all-stream max + 1 as in its vLLM code",
        source=f"{SOURCE}: positions get_input_t_scale_modify_positions_tensor L1667-L1770 "
        "(δ=2 from model_runner.py L805), frequencies post_init L885-L933",
    )
)
