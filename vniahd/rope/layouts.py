"""Position layouts: how the three position streams (t, h, w) are filled for a sequence.

Every layout maps a list of segments (:mod:`vniahd.rope.segments`) to a float64 tensor of shape
``[3, S]`` (rows t, h, w). Values are integers except for a fractional diagonal ``delta``. The
exact rules are in docs/rope-math.md ("Layouts"); each function below cites its source.

Several videos/images and text runs may follow one another: every layout keeps a running "next
position" and each segment starts from it, advancing it by the layout's own rule (the rule it
applies to text after a video). An :class:`~vniahd.rope.segments.Image` is a one-frame video.

Registry: :data:`LAYOUTS` maps a name to a :class:`Layout`, which is callable as
``layout(segments, **params)`` and knows its parameters and their defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope.components import (
    Layout,
    Positions,
    finish,
    frame_grid,
    grid_positions,
    number_check,
    text_run,
)
from vniahd.rope.segments import Segment, Text, Video

# --------------------------------------------------------------------------------------------
# Layout functions. Each takes the checked segment list and its (validated) parameters.
# --------------------------------------------------------------------------------------------


def vanilla_positions(segments: Sequence[Segment]) -> Positions:
    """1D RoPE over the flattened sequence: token i gets (i, i, i) (Su et al., RoFormer)."""
    n = sum(seg.num_tokens for seg in segments)
    return text_run(0.0, n)


def tad_positions(segments: Sequence[Segment]) -> Positions:
    """TAD-RoPE as implemented in the VideoRoPE release code (its V-NIAH-D evaluation script).

    Value = flat index + a time index that advances by one per text token and by one per visual
    frame, the same on all streams. For ``Text(S0), Video(T,H,W), Text(M)``: text before 2τ;
    token j of frame f at ``2·S0 + f·(HW+1) + j``; k-th text after at ``2·S0 + T·(HW+1) + 2k``.
    """
    flat, time = 0, 0
    chunks: list[torch.Tensor] = []
    for seg in segments:
        if isinstance(seg, Text):
            chunks.append(text_run(float(flat + time), seg.n, step=2.0))
            flat += seg.n
            time += seg.n
            continue
        hw = seg.height * seg.width
        for _ in range(seg.frames):
            chunks.append(text_run(float(flat + time), hw))
            flat += hw
            time += 1  # one time step per frame, not per visual token
    return finish(chunks)


def _mrope_video(start: float, seg: Video, time_index: Callable[[int], float]) -> tuple[torch.Tensor, float]:
    rows, cols = frame_grid(seg.height, seg.width)
    hw = seg.height * seg.width
    frames = []
    for f in range(seg.frames):
        t = torch.full((hw,), start + time_index(f), dtype=torch.float64)
        frames.append(torch.stack([t, start + rows, start + cols]))
    pos = torch.cat(frames, dim=1)
    # Qwen2-VL: the next segment starts at max over all three streams + 1.
    return pos, float(pos.max().item()) + 1.0


def mrope_positions(segments: Sequence[Segment]) -> Positions:
    """M-RoPE (Qwen2-VL, arXiv 2409.12191 §2.1; original ``get_rope_index`` semantics).

    Text before at (τ,τ,τ); visual token at (S0+f, S0+r, S0+c); the next segment starts at the
    maximum over all three streams + 1 = ``S0 + max(T, H, W)``.
    """
    return grid_positions(segments, lambda s, seg: _mrope_video(s, seg, float))


def mrope_timed_positions(
    segments: Sequence[Segment], second_per_grid_t: float, tokens_per_second: float
) -> Positions:
    """M-RoPE with absolute time (Qwen2.5-VL, arXiv 2502.13923 §2.1).

    As :func:`mrope_positions` but the temporal index of frame f is
    ``int(f · second_per_grid_t · tokens_per_second)`` (transformers
    ``Qwen2_5_VLModel.get_rope_index``: ``time_tensor.long()``, i.e. truncation). The next segment
    starts at max over all streams + 1.
    """

    def time_index(f: int) -> float:
        return float(int(f * second_per_grid_t * tokens_per_second))

    return grid_positions(segments, lambda s, seg: _mrope_video(s, seg, time_index))


def mrope_frames_positions(segments: Sequence[Segment]) -> Positions:
    """M-RoPE with every frame of a video laid out as its own one-frame grid (Qwen3-VL, GLM-4.1V).

    Frame f of a video starts at ``S_f`` and its tokens sit at ``(S_f, S_f + r, S_f + c)``: the
    temporal stream stays put inside a frame. The next frame (or the text after the video) starts
    one past the largest value, ``S_{f+1} = S_f + max(H, W)``. With the family's own prompt, time
    is carried by the timestamp text between the frames (``<1.5 seconds>``, GLM's ``1``), which
    counts up like any text. So on a video whose frames are separated by text this equals
    :func:`mrope_positions` on one-frame :class:`~vniahd.rope.segments.Image` s; on frames spliced
    back to back, frame f starts at ``S0 + f·max(H, W)``.

    Source: Qwen3-VL (its processor writes ``<t seconds><|vision_start|>frame<|vision_end|>`` per
    frame, and ``Qwen3VLModel.get_rope_index``, transformers 4.57 and 5.x, splits a video's
    ``grid_thw`` into T one-frame grids); GLM-4.1V (its processor writes
    ``<|begin_of_image|>frame<|end_of_image|>seconds`` per frame; ``Glm4vModel.get_rope_index``
    gives every video-token run t index 0 and starts the next run at the maximum + 1).
    """

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        rows, cols = frame_grid(seg.height, seg.width)
        step = float(max(seg.height, seg.width))
        frames = []
        for f in range(seg.frames):
            s = start + step * f
            frames.append(torch.stack([torch.full_like(rows, s), s + rows, s + cols]))
        return torch.cat(frames, dim=1), start + step * seg.frames

    return grid_positions(segments, video)


def diagonal_positions(segments: Sequence[Segment], delta: float, text_after: str) -> Positions:
    """VideoRoPE's Diagonal Layout + Adjustable Temporal Spacing (arXiv 2502.05173 §3, Eq. 7).

    ``t = S0 + δ·f``; ``h = t + r − ⌊(H−1)/2⌋``; ``w = t + c − ⌊(W−1)/2⌋``, so every frame's
    centre token sits on (t, t, t) (for even W the column offsets run −(W/2−1)..W/2).
    The next segment starts at ``S0 + δ(T−1) + 1`` (``text_after='code'``: max of the t stream
    + 1, as the released code and checkpoints do), ``S0 + δ·T`` (``'paper'``: Eq. 7) or one past
    the largest value of any stream, ``S0 + δ(T−1) + max(⌈(H−1)/2⌉, ⌈(W−1)/2⌉) + 1``
    (``'max'``: VideoRoPE++'s vLLM code, ``get_input_t_scale_modify_positions_tensor``).
    """

    def video(start: float, seg: Video) -> tuple[torch.Tensor, float]:
        rows, cols = frame_grid(seg.height, seg.width)
        row_off = rows - (seg.height - 1) // 2
        col_off = cols - (seg.width - 1) // 2
        frames = []
        for f in range(seg.frames):
            t = start + delta * f
            frames.append(torch.stack([torch.full_like(rows, t), t + row_off, t + col_off]))
        pos = torch.cat(frames, dim=1)
        if text_after == "code":
            nxt = start + delta * (seg.frames - 1) + 1.0
        elif text_after == "max":
            nxt = float(pos.max().item()) + 1.0
        else:
            nxt = start + delta * seg.frames
        return pos, nxt

    return grid_positions(segments, video)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def _check_delta(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out) or out <= 0:
        raise VniahdError(
            f"diagonal layout: delta must be a positive number, got {value!r} "
            "(the paper uses 2; 0.5, 1 and 3 appear in its ablation)"
        )
    return out


def _check_text_after(value: Any) -> str:
    if value not in ("code", "paper", "max"):
        raise VniahdError(
            f"diagonal layout: text_after must be 'code' (released code: S0+δ(T−1)+1), 'paper' "
            f"(Eq. 7: S0+δT) or 'max' (VideoRoPE++ vLLM: one past the largest stream value), got {value!r}"
        )
    return str(value)


#: Qwen2.5-VL defaults: the processor samples 2 fps with temporal_patch_size 2, so one temporal
#: group spans 1.0 s; ``vision_config.tokens_per_second`` is 2 in the released configs.
MROPE_TIMED_DEFAULTS = {"second_per_grid_t": 1.0, "tokens_per_second": 2.0}


def timed_params(
    layout: str, model_params: Mapping[str, Any], fps: float | None, frames_per_group: int = 1
) -> dict[str, float]:
    """What the data and the model say about a timed layout's parameters (``mrope-timed``; empty
    for any other layout): one temporal group spans ``frames_per_group`` sampled frames, so
    ``second_per_grid_t = frames_per_group / fps``; ``tokens_per_second`` is the model config's
    (``model_params``, the backend's ``layout_params``). Only what is known is returned."""
    if layout != "mrope-timed":
        return {}
    params: dict[str, float] = {}
    if fps:
        params["second_per_grid_t"] = float(frames_per_group) / float(fps)
    if "tokens_per_second" in model_params:
        params["tokens_per_second"] = float(model_params["tokens_per_second"])
    return params


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "vanilla",
            vanilla_positions,
            "flat index i on all three streams (1D RoPE)",
            "Su et al., RoFormer (arXiv 2104.09864) Eq. 34",
        ),
        Layout(
            "tad",
            tad_positions,
            "flat index + time index (text per token, visual per frame), same on all streams",
            "TAD-RoPE as implemented in the VideoRoPE release code (V-NIAH-D evaluation script)",
        ),
        Layout(
            "mrope",
            mrope_positions,
            "(S0+f, S0+r, S0+c); next segment at max(t,h,w)+1",
            "Qwen2-VL (arXiv 2409.12191) §2.1 M-RoPE; original get_rope_index semantics",
        ),
        Layout(
            "mrope-timed",
            mrope_timed_positions,
            "as mrope, temporal index int(f·second_per_grid_t·tokens_per_second)",
            "Qwen2.5-VL (arXiv 2502.13923) §2.1; transformers Qwen2_5_VLModel.get_rope_index",
            defaults=dict(MROPE_TIMED_DEFAULTS),
            checks={
                "second_per_grid_t": number_check("mrope-timed layout", "second_per_grid_t"),
                "tokens_per_second": number_check("mrope-timed layout", "tokens_per_second"),
            },
        ),
        Layout(
            "mrope-frames",
            mrope_frames_positions,
            "each frame its own grid (S_f, S_f+r, S_f+c); next frame at S_f + max(H,W)",
            "Qwen3-VL / GLM-4.1V get_rope_index (a video's grid split into one-frame grids; time "
            "carried by timestamp text between frames)",
        ),
        Layout(
            "diagonal",
            diagonal_positions,
            "t=S0+δf, frame centre on (t,t,t); text after per 'code' or 'paper'",
            "VideoRoPE (arXiv 2502.05173) §3 Eq. 7 (DL + ATS); released code for text_after='code'",
            defaults={"delta": 2.0, "text_after": "code"},
            checks={"delta": _check_delta, "text_after": _check_text_after},
        ),
    )
}


def get_layout(name: str) -> Layout:
    """The registered layout ``name``; unknown names raise :class:`UnknownNameError`."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UnknownNameError("layout", name, list(LAYOUTS)) from None


def layout_positions(name: str, segments: Sequence[Segment], **params: Any) -> Positions:
    """Positions [3, S] of ``segments`` under layout ``name`` with ``params``."""
    return get_layout(name)(segments, **params)


def register_layout(layout: Layout) -> Layout:
    """Add a published design's layout to :data:`LAYOUTS` (a name is registered once)."""
    if layout.name in LAYOUTS:
        raise AssertionError(f"layout {layout.name!r} registered twice")
    LAYOUTS[layout.name] = layout
    return layout
