"""Position layouts and presets: golden tables computed by hand (docs/rope-math.md), multi-segment rules,
properties, and the variant registry / spec parser.

Golden case unless stated: N=2 text, T=3 frames of H×W = 3×4 (row-major), M=2 text, so S0 = 2
and S = 40. Every expected list below was worked out on paper from the formulas in docs/rope-math.md.
"""

from __future__ import annotations

import json

import pytest
import torch

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope import (
    LAYOUTS,
    PRESETS,
    Image,
    Text,
    Variant,
    Video,
    get_variant,
    layout_positions,
    load_variant_file,
    make_variant,
    parse_variant,
)

SEQ = [Text(2), Video(3, 3, 4), Text(2)]


def streams(pos: torch.Tensor) -> tuple[list, list, list]:
    assert pos.dtype == torch.float64 and pos.shape[0] == 3
    return tuple(pos[i].tolist() for i in range(3))  # type: ignore[return-value]


# ---- golden tables ----------------------------------------------------------------------------


def test_vanilla_golden():
    t, h, w = streams(layout_positions("vanilla", SEQ))
    expected = [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
        20,
        21,
        22,
        23,
        24,
        25,
        26,
        27,
        28,
        29,
        30,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        38,
        39,
    ]
    assert t == expected and h == expected and w == expected


def test_tad_golden():
    # text before 2τ; frame f token j: 2·S0 + f·(HW+1) + j = 4 + 13f + j; text after 4 + 39 + 2k
    t, h, w = streams(layout_positions("tad", SEQ))
    expected = [
        0,
        2,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        14,
        15,
        17,
        18,
        19,
        20,
        21,
        22,
        23,
        24,
        25,
        26,
        27,
        28,
        30,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        38,
        39,
        40,
        41,
        43,
        45,
    ]
    assert t == expected and h == expected and w == expected


MROPE_H = [
    0,
    1,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
]
MROPE_W = [
    0,
    1,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
    2,
    3,
    4,
    5,
]


def test_mrope_golden():
    # (S0+f, S0+r, S0+c); text after at S0 + max(T,H,W) = 2 + 4 = 6
    t, h, w = streams(layout_positions("mrope", SEQ))
    assert t == [
        0,
        1,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        3,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        6,
        7,
    ]
    assert h == MROPE_H + [6, 7]
    assert w == MROPE_W + [6, 7]


def test_mrope_timed_golden_defaults():
    # defaults 1.0 s/grid × 2 tokens/s: t = 2 + 2f; after = max over streams (6) + 1 = 7
    t, h, w = streams(layout_positions("mrope-timed", SEQ))
    assert t == [
        0,
        1,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        6,
        7,
        8,
    ]
    assert h == MROPE_H + [7, 8]
    assert w == MROPE_W + [7, 8]


def test_mrope_timed_truncates():
    # 0.7 × 2 = 1.4 per frame: int(0) = 0, int(1.4) = 1, int(2.8) = 2; after = max(4,4,5)+1 = 6
    t, h, w = streams(layout_positions("mrope-timed", SEQ, second_per_grid_t=0.7, tokens_per_second=2))
    assert t[2:38] == [2] * 12 + [3] * 12 + [4] * 12
    assert t[38:] == h[38:] == w[38:] == [6, 7]
    assert h == MROPE_H + [6, 7]


DIAG_D2_H = [
    0,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    6,
    6,
    6,
    6,
    7,
    7,
    7,
    7,
]
DIAG_D2_W = [
    0,
    1,
    1,
    2,
    3,
    4,
    1,
    2,
    3,
    4,
    1,
    2,
    3,
    4,
    3,
    4,
    5,
    6,
    3,
    4,
    5,
    6,
    3,
    4,
    5,
    6,
    5,
    6,
    7,
    8,
    5,
    6,
    7,
    8,
    5,
    6,
    7,
    8,
]
DIAG_D2_T = [
    0,
    1,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    4,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
    6,
]


@pytest.mark.parametrize("text_after, after", [("code", [7, 8]), ("paper", [8, 9])])
def test_diagonal_golden_delta2_even_width(text_after, after):
    # t = 2 + 2f; h = t + r − 1; w = t + c − 1 (W = 4 even: offsets −1..2)
    # code: S0 + δ(T−1) + 1 = 7; paper: S0 + δT = 8
    t, h, w = streams(layout_positions("diagonal", SEQ, delta=2, text_after=text_after))
    assert t == DIAG_D2_T + after
    assert h == DIAG_D2_H + after
    assert w == DIAG_D2_W + after


@pytest.mark.parametrize("text_after, after", [("code", [4, 5]), ("paper", [3.5, 4.5])])
def test_diagonal_golden_delta_half(text_after, after):
    # t = 2 + 0.5f; code: 2 + 0.5·2 + 1 = 4; paper: 2 + 0.5·3 = 3.5
    t, h, w = streams(layout_positions("diagonal", SEQ, delta=0.5, text_after=text_after))
    assert (
        t
        == [
            0,
            1,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            2.5,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
        ]
        + after
    )
    assert (
        h
        == [
            0,
            1,
            1,
            1,
            1,
            1,
            2,
            2,
            2,
            2,
            3,
            3,
            3,
            3,
            1.5,
            1.5,
            1.5,
            1.5,
            2.5,
            2.5,
            2.5,
            2.5,
            3.5,
            3.5,
            3.5,
            3.5,
            2,
            2,
            2,
            2,
            3,
            3,
            3,
            3,
            4,
            4,
            4,
            4,
        ]
        + after
    )
    assert (
        w
        == [
            0,
            1,
            1,
            2,
            3,
            4,
            1,
            2,
            3,
            4,
            1,
            2,
            3,
            4,
            1.5,
            2.5,
            3.5,
            4.5,
            1.5,
            2.5,
            3.5,
            4.5,
            1.5,
            2.5,
            3.5,
            4.5,
            2,
            3,
            4,
            5,
            2,
            3,
            4,
            5,
            2,
            3,
            4,
            5,
        ]
        + after
    )


def test_diagonal_golden_odd_grid():
    # 1 text, 2 frames of 3×3, 1 text, δ = 2: offsets −1..1 both ways; after (code) 1 + 2 + 1 = 4
    t, h, w = streams(layout_positions("diagonal", [Text(1), Video(2, 3, 3), Text(1)]))
    assert t == [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4]
    assert h == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4]
    assert w == [0, 0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 3, 4, 2, 3, 4, 2, 3, 4, 4]


# ---- several segments -------------------------------------------------------------------------

MULTI = [Text(1), Image(2, 2), Text(1), Video(2, 1, 2), Text(1)]


@pytest.mark.parametrize(
    "name, params, t, h, w",
    [
        ("vanilla", {}, list(range(11)), list(range(11)), list(range(11))),
        # flat+time: text 0; image 2..5 (flat 1, time 1); text 5+2 = 7; frames 9,10 | 12,13; text 15
        (
            "tad",
            {},
            [0, 2, 3, 4, 5, 7, 9, 10, 12, 13, 15],
            [0, 2, 3, 4, 5, 7, 9, 10, 12, 13, 15],
            [0, 2, 3, 4, 5, 7, 9, 10, 12, 13, 15],
        ),
        # image at 1 → next max(1,2,2)+1 = 3; video at 4 → next max(5,4,5)+1 = 6
        (
            "mrope",
            {},
            [0, 1, 1, 1, 1, 3, 4, 4, 5, 5, 6],
            [0, 1, 1, 2, 2, 3, 4, 4, 4, 4, 6],
            [0, 1, 2, 1, 2, 3, 4, 5, 4, 5, 6],
        ),
        # as mrope but video t = 4 + 2f → next max(6,4,5)+1 = 7
        (
            "mrope-timed",
            {},
            [0, 1, 1, 1, 1, 3, 4, 4, 6, 6, 7],
            [0, 1, 1, 2, 2, 3, 4, 4, 4, 4, 7],
            [0, 1, 2, 1, 2, 3, 4, 5, 4, 5, 7],
        ),
        # each frame its own grid: image at 1 → next 1+max(2,2) = 3; video frames (1×2) at 4 and
        # 4+max(1,2) = 6, t fixed inside a frame; next 6+2 = 8
        (
            "mrope-frames",
            {},
            [0, 1, 1, 1, 1, 3, 4, 4, 6, 6, 8],
            [0, 1, 1, 2, 2, 3, 4, 4, 6, 6, 8],
            [0, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8],
        ),
        # image (H=W=2: offsets 0,1) at 1, code next 1+0+1 = 2; video at 3: t 3,5, next 3+2+1 = 6
        (
            "diagonal",
            {},
            [0, 1, 1, 1, 1, 2, 3, 3, 5, 5, 6],
            [0, 1, 1, 2, 2, 2, 3, 3, 5, 5, 6],
            [0, 1, 2, 1, 2, 2, 3, 4, 5, 6, 6],
        ),
        # paper: image next 1 + 2 = 3; video at 4: t 4,6, next 4 + 4 = 8
        (
            "diagonal",
            {"text_after": "paper"},
            [0, 1, 1, 1, 1, 3, 4, 4, 6, 6, 8],
            [0, 1, 1, 2, 2, 3, 4, 4, 6, 6, 8],
            [0, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8],
        ),
    ],
)
def test_multi_segment_golden(name, params, t, h, w):
    assert streams(layout_positions(name, MULTI, **params)) == (t, h, w)


def test_image_is_one_frame_video():
    for name in LAYOUTS:
        a = layout_positions(name, [Text(3), Image(2, 5), Text(2)])
        b = layout_positions(name, [Text(3), Video(1, 2, 5), Text(2)])
        assert torch.equal(a, b), name


def test_empty_and_bad_segments():
    assert layout_positions("mrope", []).shape == (3, 0)
    with pytest.raises(VniahdError):
        Video(0, 2, 2)
    with pytest.raises(VniahdError):
        Text(-1)
    with pytest.raises(VniahdError):
        layout_positions("mrope", [Text(1), "video"])


# ---- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_text_only_is_1d(preset):
    pos = get_variant(preset).positions([Text(9)])
    assert torch.equal(pos[0], pos[1]) and torch.equal(pos[1], pos[2])
    # TAD counts each text token twice (flat index + time index): 0, 2, 4, …
    step = 2.0 if preset == "tad" else 1.0
    assert pos[0].tolist() == [step * i for i in range(9)]


@pytest.mark.parametrize("height, width", [(1, 1), (3, 3), (3, 4), (4, 4), (5, 2), (9, 16)])
@pytest.mark.parametrize("delta", [0.5, 1, 2, 3])
def test_diagonal_frame_centre_on_diagonal(height, width, delta):
    pos = layout_positions("diagonal", [Text(5), Video(4, height, width), Text(1)], delta=delta)
    centre = ((height - 1) // 2) * width + (width - 1) // 2
    for f in range(4):
        tok = 5 + f * height * width + centre
        t = 5 + delta * f
        assert pos[:, tok].tolist() == [t, t, t]


def test_positions_are_monotone_in_time():
    # every layout with a time stream: it never decreases along the sequence (Circle-RoPE's ring
    # and VRoPE's four spatial streams have none)
    for name in (n for n in LAYOUTS if n not in ("circle", "vrope")):
        t = layout_positions(name, MULTI + SEQ)[0]
        assert bool((t[1:] >= t[:-1]).all()), name


def test_layout_errors():
    with pytest.raises(UnknownNameError) as err:
        layout_positions("spiral", SEQ)
    assert all(name in str(err.value) for name in ("diagonal", "mrope", "mrope-frames", "mrope-timed", "tad"))
    with pytest.raises(VniahdError, match="no parameter delta"):
        layout_positions("mrope", SEQ, delta=2)
    with pytest.raises(VniahdError, match="text_after"):
        layout_positions("diagonal", SEQ, text_after="middle")
    with pytest.raises(VniahdError, match="delta"):
        layout_positions("diagonal", SEQ, delta=0)


# ---- presets and custom variants --------------------------------------------------------------

EXPECTED_PRESETS = {
    "vanilla": ("vanilla", "uniform", {}),
    "tad": ("tad", "uniform", {}),
    "mrope": ("mrope", "mrope-blocks", {}),
    "videorope": ("diagonal", "lta", {"delta": 2.0, "text_after": "code"}),
    "dl": ("diagonal", "mrope-blocks", {"delta": 1.0, "text_after": "code"}),
    "dl-lta": ("diagonal", "lta", {"delta": 1.0, "text_after": "code"}),
    "lta": ("mrope", "lta", {}),
    "videorope-seq-xy": ("diagonal", "lta-sequential", {"delta": 2.0, "text_after": "code"}),
    "mrope-timed": ("mrope-timed", "mrope-blocks", {"second_per_grid_t": 1.0, "tokens_per_second": 2.0}),
    "mrope-interleaved": ("mrope", "interleaved", {}),
    "videorope-released": ("diagonal", "mrope-blocks", {"delta": 2.0, "text_after": "code"}),
}


def test_presets_match_design_table():
    assert set(EXPECTED_PRESETS) <= set(PRESETS)  # the published designs': tests/test_rope_published.py
    for name, (layout, allocation, params) in EXPECTED_PRESETS.items():
        v = get_variant(name)
        assert (v.layout, v.allocation, dict(v.layout_params)) == (layout, allocation, params)
        assert v.description and v.source, name


def test_variant_to_dict_round_trip():
    for v in PRESETS.values():
        d = json.loads(json.dumps(v.to_dict()))
        assert {"name", "layout", "layout_params", "allocation", "sections", "description", "source"} <= set(
            d
        )
        assert Variant.from_dict(d) == v
        assert parse_variant(d["spec"]).positions(SEQ).equal(v.positions(SEQ))


def test_get_variant_overrides():
    v = get_variant("videorope", delta=0.5, text_after="paper")
    assert v.name == "videorope:delta=0.5,text_after=paper"
    assert v.layout_params == {"delta": 0.5, "text_after": "paper"}
    assert v.positions(SEQ)[0, -2:].tolist() == [3.5, 4.5]
    v = get_variant("mrope", sections=(8, 28, 28))
    assert v.sections == (8, 28, 28) and v.axes(64).tolist().count(0) == 8
    with pytest.raises(VniahdError, match="no parameter delta"):
        get_variant("mrope", delta=2)
    with pytest.raises(UnknownNameError) as err:
        get_variant("videoroep")
    for name in EXPECTED_PRESETS:
        assert name in str(err.value)


def test_parse_variant_specs():
    v = parse_variant("diagonal+lta:delta=0.5,text_after=paper")
    assert (v.layout, v.allocation, v.layout_params) == (
        "diagonal",
        "lta",
        {"delta": 0.5, "text_after": "paper"},
    )
    assert parse_variant("videorope") == get_variant("videorope")
    a = parse_variant("mrope+lta:sections=8,28,28")
    b = parse_variant("mrope+lta:sections=8/28/28")
    assert a == b and a.sections == (8, 28, 28)
    assert parse_variant(a.spec) == a
    for bad, exc in [
        ("diagonal+spiral", UnknownNameError),
        ("spiral+lta", UnknownNameError),
        ("videorope:delta", VniahdError),
        ("mrope+lta:sections=1,2", VniahdError),
        ("vanilla:sections=1/1/1", VniahdError),
    ]:
        with pytest.raises(exc):
            parse_variant(bad)


def test_make_variant_and_json_file(tmp_path):
    v = make_variant("tad", "lta", name="my-tad-lta", sections=(2, 3, 3))
    assert v.name == "my-tad-lta" and v.axes(8).tolist() == [1, 2, 1, 2, 1, 2, 0, 0]
    path = tmp_path / "variant.json"
    path.write_text(
        json.dumps(
            {
                "name": "slow-diag",
                "layout": "diagonal",
                "allocation": "lta",
                "params": {"delta": 0.5},
                "sections": [4, 14, 14],
            }
        )
    )
    v = load_variant_file(path)
    assert v.name == "slow-diag" and v.layout_params["delta"] == 0.5 and v.sections == (4, 14, 14)
    assert parse_variant(str(path)) == v
    path.write_text(json.dumps({"preset": "videorope", "params": {"delta": 3}}))
    assert parse_variant(str(path)).layout_params["delta"] == 3.0
    with pytest.raises(VniahdError, match="not found"):
        parse_variant(str(tmp_path / "missing.json"))
    path.write_text("{oops")
    with pytest.raises(VniahdError, match="not valid JSON"):
        load_variant_file(path)
