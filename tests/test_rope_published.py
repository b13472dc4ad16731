"""The published designs after VideoRoPE, pinned to their authors' code.

Every table below was produced by running the authors' own position / frequency functions
(official repositories where they exist, JJJYmmm/Multimodal-RoPEs otherwise; file and line in
each test) on the sequence ``Text(2), Video(T, H, W), Text(2)`` — the N = 2 text tokens are
``[text, <vision_start>]`` and the M = 2 after are ``[<vision_end>, text]`` — with the frames as
one grid. Values are copied from those runs to 5 decimals where the code worked in float32.
A second group re-derives each rule from its closed form on random grids.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from vniahd.errors import VniahdError
from vniahd.rope import Text, Video, get_variant
from vniahd.rope.angles import rotary_angles

SEQ = [Text(2), Video(2, 2, 3), Text(2)]


def rows(name: str, seq=SEQ) -> list[list[float]]:
    """Positions per token, [L][K]."""
    return get_variant(name).positions(seq).t().tolist()


def assert_table(got, want, atol: float = 0.0) -> None:
    """Equal shapes and values within ``atol`` (0: exactly)."""
    a, b = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, rtol=0, atol=atol), (a - b).abs().max()


def plan_text(name: str, num_pairs: int, kv_heads: int | None = None, sections=None) -> str:
    v = get_variant(name)
    return v.pair_plan(num_pairs, sections, kv_heads).describe(v.stream_names)


# --- positions: golden tables from the authors' code ---------------------------------------------

# hrlics/HoPE modeling_hope.py get_dynamic_rope_index L1538-L1660, s = 0.75 (eval_vision_niah.py L195)
HOPE_075 = [
    [0, 0, 0], [1, 1, 1],
    [2, 2, 1], [2, 2, 2], [2, 2, 3], [2, 3, 1], [2, 3, 2], [2, 3, 3],
    [2.75, 2.75, 1.75], [2.75, 2.75, 2.75], [2.75, 2.75, 3.75],
    [2.75, 3.75, 1.75], [2.75, 3.75, 2.75], [2.75, 3.75, 3.75],
    [3.75, 3.75, 3.75], [4.75, 4.75, 4.75],
]  # fmt: skip

# Wiselnn570/VideoRoPE videorope_plus/.../rotary_embedding.py get_input_t_scale_modify_positions_tensor
# L1667-L1770 with scale_factor 2.0 (model_runner.py L805): text after at the all-stream max + 1
VIDEOROPE_PLUS = [
    [0, 0, 0], [1, 1, 1],
    [2, 2, 1], [2, 2, 2], [2, 2, 3], [2, 3, 1], [2, 3, 2], [2, 3, 3],
    [4, 4, 3], [4, 4, 4], [4, 4, 5], [4, 5, 3], [4, 5, 4], [4, 5, 5],
    [6, 6, 6], [7, 7, 7],
]  # fmt: skip

# johncaged/VRoPE vrope.py VRoPE(half_head_dim=8).__call__ (generate_nd_positions L106-L154);
# its output is one position per pair, pair i = stream i mod 4, so streams = pairs 0..3
VROPE = [
    [0, 0, 0, 0], [1, 1, 1, 1],
    [2, 4, 3, 5], [3, 3, 4, 4], [4, 2, 5, 3], [3, 5, 2, 4], [4, 4, 3, 3], [5, 3, 4, 2],
    [6, 8, 7, 9], [7, 7, 8, 8], [8, 6, 9, 7], [7, 9, 6, 8], [8, 8, 7, 7], [9, 7, 8, 6],
    [10, 10, 10, 10], [11, 11, 11, 11],
]  # fmt: skip

# JJJYmmm/Multimodal-RoPEs pos_design/mrope_i.py L122-L132 (spatial_reset=True, temporal_stride 1);
# OmniRoPE / ILRoPE (pos_design/omnirope.py L55-L122) gave the same table
SPATIAL_RESET = [
    [0, 0, 0], [1, 1, 1],
    [2, 0, 0], [2, 0, 1], [2, 0, 2], [2, 1, 0], [2, 1, 1], [2, 1, 2],
    [3, 0, 0], [3, 0, 1], [3, 0, 2], [3, 1, 0], [3, 1, 1], [3, 1, 2],
    [5, 5, 5], [6, 6, 6],
]  # fmt: skip

# Multimodal-RoPEs pos_design/mmrope.py L83-L132 with position_scale (4, 8, 8)
MMROPE_488 = [
    [0, 0, 0], [1, 1, 1],
    [2, 2, 2], [2, 2, 10], [2, 2, 18], [2, 10, 2], [2, 10, 10], [2, 10, 18],
    [6, 2, 2], [6, 2, 10], [6, 2, 18], [6, 10, 2], [6, 10, 10], [6, 10, 18],
    [19, 19, 19], [20, 20, 20],
]  # fmt: skip

# Multimodal-RoPEs pos_design/v2pe.py L56-L112, the whole video one block of 12 tokens
V2PE_16 = [
    0,
    1,
    2.33333,
    3.66667,
    5,
    6.33333,
    7.66667,
    9,
    10.33333,
    11.66667,
    13,
    14.33333,
    15.66667,
    17,
    18,
    19,
]
V2PE_1 = [
    0,
    1,
    1.08333,
    1.16667,
    1.25,
    1.33333,
    1.41667,
    1.5,
    1.58333,
    1.66667,
    1.75,
    1.83333,
    1.91667,
    2,
    3,
    4,
]

# lose4578/CircleRoPE code/modular_qwen2_5_vl_circle_rope.py get_rope_index on an image (H=2, W=3),
# config.json radius 10, alpha 0.5, move_to_origin
CIRCLE_IMAGE = [
    [0, 0, 0], [1, 1, 1],
    [2.00000, 9.07107, -5.07107], [9.52747, 0.97540, -4.50287], [7.83187, -5.86487, 4.03300],
    [-6.16497, 6.08248, 6.08248], [-6.10042, 5.16288, 6.93754], [-5.90782, 4.19328, 7.71454],
    [10.52747, 10.52747, 10.52747], [11.52747, 11.52747, 11.52747],
]  # fmt: skip


@pytest.mark.parametrize(
    "name, table",
    [
        ("hope", HOPE_075),
        ("videorope-plus", VIDEOROPE_PLUS),
        ("vrope", VROPE),
        ("mrope-i", SPATIAL_RESET),
        ("mhrope", SPATIAL_RESET),
        ("ilrope", SPATIAL_RESET),
        ("omnirope", SPATIAL_RESET),
        ("mmrope:scale=4/8/8", MMROPE_488),
    ],
)
def test_positions_equal_the_authors_code(name, table):
    assert_table(rows(name), table)


def test_v2pe_positions_equal_the_authors_code():
    for stride, table in ((16, V2PE_16), (1, V2PE_1)):
        got = rows(f"v2pe:visual_stride={stride},block=video")
        assert all(len(set(r)) == 1 for r in got)  # 1-D: one value on every stream
        assert [r[0] for r in got] == pytest.approx(table, abs=1e-5)


def test_v2pe_frame_blocks_restart_after_the_ceiling():
    # block=frame: each frame of 6 tokens is its own block of stride 16 (δ = 8/3), the next block
    # starts at the ceiling of the last one: 1 → 3.667 … 17, then 17 → 19.667 … 33; text 34, 35
    got = [r[0] for r in rows("v2pe")]
    assert got == pytest.approx(
        [0, 1, *(1 + k * 16 / 6 for k in range(1, 7)), *(17 + k * 16 / 6 for k in range(1, 7)), 34, 35]
    )


def test_circle_rope_image_equals_the_official_code():
    got = rows("circle-rope", [Text(2), Video(1, 2, 3), Text(2)])
    assert_table(got, CIRCLE_IMAGE, atol=1e-5)
    # the official run on a 4×5 image after 3 text tokens resumed text at 12.149420738220215
    after = rows("circle-rope", [Text(3), Video(1, 4, 5), Text(1)])[-1]
    assert after == pytest.approx([12.14942] * 3, abs=1e-5)


def test_videorope_plus_text_after_differs_from_the_t_max_rule():
    # official vLLM run: N=3, T=2, H=4, W=5 resumes text at 8 (t max 5, stream max 7); the
    # repository's V-RULER eval (t max + 1) resumes at 6 — text_after=code reproduces that one
    seq = [Text(3), Video(2, 4, 5), Text(1)]
    assert rows("videorope-plus", seq)[-1] == [8, 8, 8]
    assert rows("videorope-plus:text_after=code", seq)[-1] == [6, 6, 6]


# --- allocations: pair maps and frequency multipliers --------------------------------------------


def test_pair_maps_at_head_dim_128():
    # official maps, read from the authors' apply functions with tagged cos values
    assert plan_text("hope", 64) == "hw" * 24 + "-" * 16  # modeling_hope.py L279-L288
    assert plan_text("videorope-plus", 64) == "hw" * 24 + "t*" * 16  # RE+ m_modify_forward L1043-L1060
    assert plan_text("vrope", 64) == "abcd" * 16  # vrope.py L150
    assert plan_text("circle-rope", 64) == "t" * 16 + "h" * 24 + "w" * 24  # stock Qwen2.5-VL
    # Multimodal-RoPEs freq_allocation/*.py
    assert plan_text("mrope-i", 64) == "thw" * 20 + "tttt"
    assert plan_text("mmrope", 64) == "tthwhwhw" * 8
    assert plan_text("videorope-mmr", 64) == "t" + "hw" * 23 + "h" + "t" * 16
    assert plan_text("hope-mmr", 64) == "-" + "hw" * 23 + "h" + "-" * 16
    assert plan_text("omnirope", 64) == "t" * 16 + "h" * 24 + "w" * 24


def test_pair_maps_follow_the_models_sections():
    # HoPE / VideoRoPE++ patch Qwen2-VL and take its mrope_section: with (2, 3, 3) of 8 pairs
    # the official functions gave hwhwhw + 2 NoPE / 2 temporal pairs
    assert plan_text("hope", 8, sections=(2, 3, 3)) == "hwhwhw--"
    assert plan_text("videorope-plus", 8, sections=(2, 3, 3)) == "hwhwhwt*t*"


def test_yarn_v_multipliers_equal_the_official_post_init():
    # RE+ post_init 'videorope++_v1' L885-L933, θ = 1e6, L = 32768, factor 4, D = 128
    expected = [0.34776, 0.34019, 0.33279, 0.32554, 0.31846, 0.31153, 0.30475, 0.29811,
                0.29163, 0.28528, 0.27907, 0.273, 0.26705, 0.26124, 0.25556, 0.24999]  # fmt: skip
    scale = get_variant("videorope-plus").pair_plan(64, (16, 24, 24)).scale
    assert scale[:48].tolist() == [1.0] * 48
    assert scale[48:].tolist() == pytest.approx(expected, abs=5e-6)
    # D=16, sections (2, 3, 3): multipliers 0.30475, 0.24999 on pairs 6, 7
    assert get_variant("videorope-plus").pair_plan(8, (2, 3, 3)).scale[6:].tolist() == pytest.approx(
        [0.30475, 0.24999], abs=5e-6
    )
    # the shipped script's factor 1.0 turns YaRN-V off
    assert get_variant("videorope-plus:factor=1").pair_plan(64, (16, 24, 24)).scale.tolist() == [1.0] * 64


def test_mhrope_gives_each_kv_head_one_stream_and_leftover_heads_nope():
    # Multimodal-RoPEs freq_allocation/mhrope.py L11-L46: (2, 3, 3) of 8 KV heads;
    # (1, 1, 1) of 4 → head 3 NoPE
    assert plan_text("mhrope", 4, kv_heads=8) == "|".join(["tttt"] * 2 + ["hhhh"] * 3 + ["wwww"] * 3)
    assert plan_text("mhrope:heads=1/1/1", 4, kv_heads=4) == "tttt|hhhh|wwww|----"
    with pytest.raises(VniahdError, match="KV heads"):
        get_variant("mhrope").pair_plan(4, None)  # no kv_heads given
    with pytest.raises(VniahdError, match="need 9 KV heads"):
        get_variant("mhrope:heads=3/3/3").pair_plan(4, None, 8)
    with pytest.raises(VniahdError, match="heads=t/h/w"):
        get_variant("mhrope").pair_plan(4, None, 2)  # 2 heads cannot cover t, h and w by default


# --- angles: the whole variant, against re-derivations from the closed forms ----------------------


def _random_grid(rng: random.Random) -> tuple[int, int, int, int, int]:
    return rng.randint(0, 5), rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 5), rng.randint(0, 4)


def _closed_form(name: str, n: int, frames: int, height: int, width: int, m: int) -> list[list[float]]:
    """Positions re-derived per token from each paper's formula (not vniahd's functions)."""
    out: list[list[float]] = [[float(i)] * (4 if name == "vrope" else 3) for i in range(n)]
    for f in range(frames):
        for r in range(height):
            for c in range(width):
                if name == "hope":
                    t = n + 0.75 * f
                    out.append([t, t + r - (height - 1) // 2, t + c - (width - 1) // 2])
                elif name == "vrope":
                    base = n + f * (height + width - 1)
                    fr, fc = height - 1 - r, width - 1 - c
                    out.append([base + r + c, base + r + fc, base + fr + c, base + fr + fc])
                else:  # mrope-i: spatial reset
                    out.append([n + f, r, c])
    if name == "hope":
        start = n + 0.75 * (frames - 1) + 1
    elif name == "vrope":
        start = n + frames * (height + width - 1)
    else:
        start = n + max(frames - 1, height - 1, width - 1) + 1
    out += [[start + k] * len(out[0]) for k in range(m)] if out else []
    return out


@pytest.mark.parametrize("name", ["hope", "vrope", "mrope-i"])
def test_angles_match_a_rederivation_on_random_grids(name):
    rng = random.Random(7)
    head_dim, theta = 16, 1e4
    freqs = [theta ** (-2 * j / head_dim) for j in range(head_dim // 2)]
    maps = {"hope": "hwhwhw--", "vrope": "abcdabcd", "mrope-i": "thwthwtt"}[name]
    streams = {"t": 0, "h": 1, "w": 2, "a": 0, "b": 1, "c": 2, "d": 3}
    for _ in range(10):
        n, t, h, w, m = _random_grid(rng)
        pos = _closed_form(name, n, t, h, w, m)
        expected = [
            [0.0 if maps[j] == "-" else p[streams[maps[j]]] * freqs[j] for j in range(len(maps))] for p in pos
        ]
        got = rotary_angles(get_variant(name), [Text(n), Video(t, h, w), Text(m)], head_dim, theta, (2, 3, 3))
        assert_table(got, expected, atol=1e-12)


def test_per_head_angles_are_one_table_per_kv_head():
    seq = [Text(1), Video(2, 2, 2), Text(1)]
    got = rotary_angles(get_variant("mhrope:heads=1/1/1"), seq, 8, 100.0, kv_heads=4)
    assert got.shape == (4, 10, 4)  # [kv_heads, tokens, pairs]
    pos = get_variant("mhrope").positions(seq)  # [3, L]
    freqs = torch.tensor([100.0 ** (-2 * j / 8) for j in range(4)], dtype=torch.float64)
    for head in range(3):
        assert torch.allclose(got[head], pos[head][:, None] * freqs, rtol=1e-15, atol=0)
    assert bool((got[3] == 0).all())  # the leftover head is NoPE


def test_angles_cli_json_carries_kv_heads_for_per_head_variants(capsys):
    import json

    from vniahd.cli import main

    code = main([
        "angles", "--variant", "mhrope", "--head-dim", "8", "--theta", "100", "--kv-heads", "8",
        "--text-before", "1", "--frames", "1", "--grid", "1x2", "--text-after", "1", "--json",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["kv_heads"] == 8 and data["pairs"] == 4 and data["tokens"] == 4
    assert len(data["angles"]) == 8 and len(data["angles"][0]) == 4
    # heads 0-1 read t: the second token (first visual, t = 1) rotates pair 0 by 1 radian
    assert data["angles"][0][1][0] == pytest.approx(1.0)
    assert math.isclose(data["angles"][7][1][0], 0.0)  # head 7 reads w, column 0 of frame 0


def test_a_layout_with_fewer_streams_than_the_allocation_is_refused():
    with pytest.raises(VniahdError, match="reads 4 position streams"):
        get_variant("mrope+cyclic")


def _cli_json(capsys, *argv) -> dict:
    import json

    from vniahd.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_freqs_and_positions_commands_name_every_stream_scale_and_head(capsys):
    got = _cli_json(capsys, "freqs", "--variant", "hope", "--head-dim", "16", "--json")
    assert got["axes"] == list("hwhwhw--") and got["scale"] == [1.0] * 6 + [0.0] * 2  # sections 2/3/3
    got = _cli_json(capsys, "freqs", "--variant", "vrope", "--head-dim", "16", "--json")
    assert got["axes"] == list("abcdabcd") and "scale" not in got
    got = _cli_json(
        capsys, "freqs", "--variant", "mhrope:heads=1/1/1", "--head-dim", "4", "--kv-heads", "4", "--json"
    )
    assert got["kv_heads"] == 4 and got["axes"] == [["t", "t"], ["h", "h"], ["w", "w"], ["-", "-"]]
    # four streams, by name; the first frame of a 1x2 grid after 2 text tokens (VRoPE table rule)
    got = _cli_json(capsys, "positions", "--variant", "vrope", "--frames", "1", "--grid", "1x2", "--json")
    assert [got[s] for s in "abcd"] == [
        [0, 1, 2, 3, 4, 5],
        [0, 1, 3, 2, 4, 5],
        [0, 1, 2, 3, 4, 5],
        [0, 1, 3, 2, 4, 5],
    ]
    # --sections keeps the allocation's own parameters
    got = _cli_json(
        capsys,
        "freqs",
        "--variant",
        "videorope-plus:factor=1",
        "--head-dim",
        "8",
        "--sections",
        "1,1,2",
        "--json",
    )
    assert "scale" not in got  # factor 1: no scaling, even with other sections


def test_parameter_mistakes_are_refused_and_records_load_back(tmp_path):
    import json

    from vniahd.rope import RotaryConfig, load_variant_file
    from vniahd.rope.model import applied_allocation

    # a cycle over more streams than the layout fills; a 3-stream cycle on a 3-stream layout is fine
    with pytest.raises(VniahdError, match="reads 5 position streams"):
        get_variant("vrope:streams=5")
    assert plan_text("mrope+cyclic:streams=3", 6) == "thwthw"
    # YaRN-V's NTK ratio (f·L−1)/(L−1) must stay positive
    with pytest.raises(VniahdError, match="must exceed 1"):
        get_variant("videorope-plus:factor=0.00001").pair_plan(64, (16, 24, 24))
    # a recorded variant with allocation parameters loads back as a variant file
    for name in ("mhrope:heads=1/1/2", "videorope-plus:factor=2", "vrope"):
        v = get_variant(name)
        path = tmp_path / "v.json"
        path.write_text(json.dumps({k: v.to_dict()[k] for k in v.to_dict() if k != "spec"}))
        loaded = load_variant_file(path)
        assert loaded.spec == v.spec and loaded.allocation_params == v.allocation_params, name
    # what run.json records survives its JSON round trip unchanged (a resume compares them)
    v = get_variant("mhrope:heads=1/1/2")
    record = {**v.to_dict(), **applied_allocation(v, RotaryConfig(32, 1e4, (4, 6, 6), kv_heads=4))}
    assert json.loads(json.dumps(record)) == record
