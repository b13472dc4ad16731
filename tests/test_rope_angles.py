"""``vniahd angles`` and :func:`vniahd.rope.angles.rotary_angles`: the angle of every rotary pair of
every token, against tables written by hand from docs/rope-math.md and against transformers'
own rotary modules (installed package, tiny configs built here, no weights downloaded)."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from vniahd.cli import main
from vniahd.rope import PRESETS, RotaryConfig, Text, Video, get_variant, variant_plan
from vniahd.rope.angles import rotary_angles

TINY = ["--head-dim", "8", "--theta", "100", "--text-before", "1", "--frames", "2", "--grid", "1x2"]
TINY += ["--text-after", "1"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def angles_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, "angles", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# θ = 100, d = 8: pair j turns θ^(−2j/8) = 10^(−j/2) radians per position.
F = [100.0 ** (-2 * j / 8) for j in range(4)]


def hand_table(positions: list[tuple[float, float, float]], streams: str) -> list[list[float]]:
    """angle[i][j] = position_i[stream of pair j] · θ^(−2j/d), written out from the definition."""
    return [[dict(zip("thw", pos))[s] * f for s, f in zip(streams, F)] for pos in positions]


# Text(1), Video(2, 1, 2), Text(1); S0 = 1 (docs/rope-math.md, "Layouts", mrope row):
# text (τ,τ,τ); visual (S0+f, S0+r, S0+c); text after S0 + max(T, H, W) + k = 1 + 2 = 3.
MROPE_POS = [(0, 0, 0), (1, 1, 1), (1, 1, 2), (2, 1, 1), (2, 1, 2), (3, 3, 3)]
# diagonal, δ = 2, text_after=code (same section): t = S0 + δf; h = t + r − ⌊(H−1)/2⌋ = t;
# w = t + c − ⌊(W−1)/2⌋ = t + c; text after S0 + δ(T−1) + 1 + k = 1 + 2 + 1 = 4.
VIDEOROPE_POS = [(0, 0, 0), (1, 1, 1), (1, 1, 2), (3, 3, 3), (3, 3, 4), (4, 4, 4)]


def test_mrope_and_videorope_hand_tables(capsys):
    # sections (t,h,w) = (1,1,2): mrope-blocks gives pairs t,h,w,w ("Allocations": blocks from the
    # fastest pair); lta gives h,w,w,t (h/w alternate while both have pairs left, the remainder
    # to the larger, then the slowest s_t pairs to t).
    for variant, pos, streams in (("mrope", MROPE_POS, "thww"), ("videorope", VIDEOROPE_POS, "hwwt")):
        got = angles_json(capsys, "--variant", variant, *TINY, "--sections", "1,1,2")
        assert (got["variant"], got["tokens"], got["pairs"]) == (variant, 6, 4)
        want = hand_table(pos, streams)
        for row_got, row_want in zip(got["angles"], want, strict=True):
            assert row_got == pytest.approx(row_want, rel=1e-15, abs=0)
    # the same numbers spelled out for one token: mrope, frame 1 (0,1) at (2,1,2)
    assert angles_json(capsys, "--variant", "mrope", *TINY, "--sections", "1,1,2")["angles"][
        4
    ] == pytest.approx([2.0, 0.31622776601683794, 0.2, 0.06324555320336759], rel=1e-15)


def test_block_allocations_take_the_given_sections_as_a_model_does():
    """--sections plays the model's mrope_section: the axes are those of variant_plan on a model
    with that config, for every preset (interleaved keeps its own default, uniform has none)."""
    segs = [Text(2), Video(3, 2, 3), Text(2)]
    for name, variant in PRESETS.items():
        rotary = RotaryConfig(head_dim=16, theta=1e4, sections=(2, 3, 3), kv_heads=4)
        plan = variant_plan(variant, rotary)
        if plan.per_head:  # one table per KV head: tests/test_rope_published.py
            continue
        pos = variant.positions(segs)
        want = torch.stack(
            [
                pos[int(a)] * (float(c) * 1e4 ** (-2 * j / 16))
                for j, (a, c) in enumerate(zip(plan.streams, plan.scale))
            ],
            dim=1,
        )
        got = rotary_angles(variant, segs, 16, 1e4, (2, 3, 3))
        assert got.dtype == torch.float64 and got.shape == (pos.shape[1], 8)
        torch.testing.assert_close(got, want, rtol=1e-15, atol=0, msg=name)
    # and the sections matter: (4,2,2) is not mrope's default split of 8 pairs, (2,3,3)
    mrope = get_variant("mrope")
    assert not torch.equal(
        rotary_angles(mrope, segs, 16, 1e4, (4, 2, 2)), rotary_angles(mrope, segs, 16, 1e4)
    )


# ------------------------------------------------------------------ against transformers alone
def _hf_cos_sin(model, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin transformers' text rotary module hands to every attention layer ([1, L, d])."""
    x = torch.zeros(1, pos.shape[-1], model.config.hidden_size)
    return model.rotary_emb(x, pos)


def _text_model(kind: str, head_dim: int, theta: float, sections):
    transformers = pytest.importorskip("transformers")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    common = dict(
        vocab_size=64,
        hidden_size=2 * head_dim,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        rope_parameters={"rope_type": "default", "rope_theta": theta, "mrope_section": list(sections)},
    )
    if kind == "qwen2":
        return transformers.Qwen2VLTextModel(transformers.Qwen2VLTextConfig(**common)).eval()
    return transformers.Qwen3VLTextModel(transformers.Qwen3VLTextConfig(**common, head_dim=head_dim)).eval()


def _check_cos_sin(got_angles: list[list[float]], cos_hf: torch.Tensor, sin_hf: torch.Tensor, atol: float):
    a = torch.tensor(got_angles, dtype=torch.float64)  # [L, P]
    want_cos = torch.cat([a.cos(), a.cos()], dim=-1)[None]  # NeoX halves duplicated
    want_sin = torch.cat([a.sin(), a.sin()], dim=-1)[None]
    torch.testing.assert_close(cos_hf.double(), want_cos, atol=atol, rtol=0)
    torch.testing.assert_close(sin_hf.double(), want_sin, atol=atol, rtol=0)


@pytest.mark.parametrize(
    "head_dim, theta, sections, seq",
    [
        (8, 100.0, (1, 1, 2), TINY[4:]),
        (128, 1e6, (16, 24, 24), []),  # Qwen2-VL-7B's rotary config, the default sequence
    ],
)
def test_mrope_angles_equal_qwen2vl_rotary_module(capsys, head_dim, theta, sections, seq):
    """transformers' Qwen2VLRotaryEmbedding (float32, it splits pairs by mrope_section itself),
    fed the JSON's positions as position_ids [3, 1, L], gives cos/sin of our float64 angles."""
    model = _text_model("qwen2", head_dim, theta, sections)
    flags = ["--head-dim", str(head_dim), "--theta", str(theta), "--sections", ",".join(map(str, sections))]
    got = angles_json(capsys, "--variant", "mrope", *flags, *seq)
    pos = get_variant("mrope").positions(
        [Text(1), Video(2, 1, 2), Text(1)] if seq else [Text(2), Video(3, 2, 3), Text(2)]
    )
    assert got["tokens"] == pos.shape[1] and got["pairs"] == head_dim // 2
    # pair 0 reads t, so the JSON's first column is the t stream itself: the positions fed in
    assert [row[0] for row in got["angles"]] == pos[0].tolist()
    cos_hf, sin_hf = _hf_cos_sin(model, pos[:, None, :].long())
    _check_cos_sin(got["angles"], cos_hf, sin_hf, atol=2e-6)  # float32 rounding of angles < 20


def test_videorope_seq_xy_angles_equal_qwen2vl_on_permuted_streams(capsys):
    """A diagonal-layout variant checked through transformers alone: LTA-sequential with sections
    (t,h,w) = (1,1,2) reads h, w, w, t, which is transformers' M-RoPE with mrope_section
    (s_h, s_w, s_t) = (1, 2, 1) fed the streams in the order (h, w, t)."""
    model = _text_model("qwen2", 8, 100.0, (1, 2, 1))
    got = angles_json(capsys, "--variant", "videorope-seq-xy", *TINY, "--sections", "1,1,2")
    pos = torch.tensor(VIDEOROPE_POS, dtype=torch.long).t()  # hand positions, [3, L]
    cos_hf, sin_hf = _hf_cos_sin(model, pos[[1, 2, 0]][:, None, :])
    _check_cos_sin(got["angles"], cos_hf, sin_hf, atol=1e-6)


def test_interleaved_angles_equal_qwen3vl_rotary_module(capsys):
    """mrope-interleaved at head dim 16 uses its default sections (4,2,2) = Qwen3-VL's own split."""
    model = _text_model("qwen3", 16, 5e5, (4, 2, 2))
    got = angles_json(capsys, "--variant", "mrope-interleaved", "--head-dim", "16", "--theta", "5e5")
    pos = get_variant("mrope-interleaved").positions([Text(2), Video(3, 2, 3), Text(2)])
    cos_hf, sin_hf = _hf_cos_sin(model, pos[:, None, :].long())
    _check_cos_sin(got["angles"], cos_hf, sin_hf, atol=1e-6)


# ------------------------------------------------------------------------------------ the CLI
def test_json_shape_with_defaults_and_vanilla_is_1d_rope(capsys):
    got = angles_json(capsys, "--variant", "vanilla")
    # defaults: 2 text, 3 frames of 2x3, 2 text; head dim 128, theta 1e6
    assert set(got) == {"variant", "tokens", "pairs", "angles"}
    assert (got["tokens"], got["pairs"]) == (2 + 3 * 2 * 3 + 2, 64)
    assert len(got["angles"]) == 22 and all(len(row) == 64 for row in got["angles"])
    # vanilla: token i sits at i on every stream, so pair j of every token (text included) turns
    # by i · 1e6^(−2j/128)
    for i, row in enumerate(got["angles"]):
        assert row == pytest.approx([i * 1e6 ** (-2 * j / 128) for j in range(64)], rel=1e-15, abs=0)
    assert got["angles"][21][0] == 21.0  # radians, not reduced modulo 2π
    assert got["angles"][21][0] > 2 * math.pi


def test_table_labels_and_pair_selection(capsys):
    code, out, _ = run(capsys, "angles", "--variant", "mrope", *TINY, "--sections", "1,1,2")
    assert code == 0
    assert "sections (t,h,w) 1,1,2" in out and "axes thww" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("token"))
    assert header.split() == ["token", "kind", "0t", "1h", "2w", "3w"]
    assert lines[-2].split() == ["4", "frame", "1", "(0,1)", "2", "0.316228", "0.2", "0.0632456"]
    assert lines[-1].split()[:3] == ["5", "text", "3"]
    _, out, _ = run(capsys, "angles", "--variant", "vanilla", "--pairs", "62:")
    header = next(line for line in out.splitlines() if line.startswith("token"))
    assert header.split() == ["token", "kind", "62t", "63t"]
    _, out, _ = run(capsys, "angles", "--variant", "vanilla")  # 64 pairs: first and last three
    header = next(line for line in out.splitlines() if line.startswith("token"))
    assert header.split() == ["token", "kind", "0t", "1t", "2t", "...", "61t", "62t", "63t"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--grid", "0x2"], "--grid"),
        (["--frames", "0"], "--frames"),
        (["--head-dim", "7"], "head dim"),
        (["--theta", "-1"], "theta"),
        (["--sections", "1,2"], "--sections"),
        (["--head-dim", "8", "--sections", "1,1,1"], "sum to 3"),
        (["--pairs", "3:2"], "--pairs"),
        (["--variant", "native"], "give --model SPEC"),
        (["--variant", "nosuch"], "nosuch"),
    ],
)
def test_user_mistakes_are_one_line(capsys, argv, needle):
    if "--variant" not in argv:
        argv = ["--variant", "mrope", *argv]
    code, out, err = run(capsys, "angles", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("vniahd: error:"), err
    assert needle in err


def test_model_gives_the_rotary_config_and_native(capsys):
    """--model reads the rotated head dim from the model's own config (GLM-4.1V rotates half of
    each head), resolves native for it, and adds its family's markup tokens around the frames."""
    from vniahd.models import get_backend

    spec = "random:glm-4.1v?heads=2"
    cfg = get_backend(spec).language_model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    rotated = int(head_dim * cfg.rope_parameters["partial_rotary_factor"])
    bare = ["--text-before", "1", "--frames", "2", "--grid", "1x2", "--text-after", "1"]
    got = angles_json(capsys, "--variant", "native", "--model", spec, *bare)
    assert got["pairs"] == rotated // 2 < head_dim // 2
    assert got["tokens"] > 1 + 2 * 2 + 1  # GLM's begin/end-of-image markers and timestamps
    code, _, err = run(capsys, "angles", "--variant", "mrope", "--model", spec, "--theta", "5")
    assert code != 0 and "drop --theta" in err


def test_native_without_a_model_names_the_fix(capsys):
    code, _, err = run(capsys, "angles", "--variant", "native")
    assert code != 0 and "--model" in err
