"""Against transformers (installed package, tiny configs built here, no weights downloaded):
our rotation equals the Qwen2-VL / Qwen2.5-VL / Qwen3-VL text rotary modules bit for bit, and the
swapped-in :class:`AllocatedRotaryEmbedding` changes exactly what it should."""

from __future__ import annotations

import logging
import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from vniahd.errors import VniahdError  # noqa: E402
from vniahd.rope import (  # noqa: E402
    Image,
    Text,
    Video,
    allocation_axes,
    apply_rotary,
    get_variant,
    inv_freq,
    rope_cos_sin,
)
from vniahd.rope.hf import (  # noqa: E402
    AllocatedRotaryEmbedding,
    allocation_installed,
    install_allocation,
    rotary_config,
    rotary_module,
    uninstall_allocation,
)

logging.getLogger("transformers").setLevel(logging.ERROR)

TEXT = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def qwen2_text(sections=(2, 3, 3), theta=1e4, init=0.02):
    cfg = transformers.Qwen2VLTextConfig(
        **TEXT,
        initializer_range=init,
        rope_parameters={"rope_type": "default", "rope_theta": theta, "mrope_section": list(sections)},
    )
    torch.manual_seed(0)
    return transformers.Qwen2VLTextModel(cfg).eval()


def qwen3_text(sections=(4, 2, 2)):
    cfg = transformers.Qwen3VLTextConfig(
        **TEXT,
        head_dim=16,
        rope_parameters={"rope_type": "default", "rope_theta": 5e5, "mrope_section": list(sections)},
    )
    torch.manual_seed(0)
    return transformers.Qwen3VLTextModel(cfg).eval()


def mixed_positions(variant: str, offset: int = 0) -> torch.Tensor:
    pos = get_variant(variant).positions([Text(3 + offset), Video(3, 2, 3), Text(2), Image(2, 2), Text(2)])
    return pos[:, None, :]


def test_mrope_blocks_equals_qwen2vl_module_bitwise():
    model = qwen2_text()
    rot = model.rotary_emb
    assert torch.equal(rot.inv_freq, inv_freq(16, 1e4))
    for offset in (0, 5000):  # large positions too: float32 rounding must match
        pos = mixed_positions("mrope", offset).long()
        x = torch.zeros(1, pos.shape[-1], 32)
        cos_hf, sin_hf = rot(x, pos)
        cos, sin = rope_cos_sin(pos, rot.inv_freq, allocation_axes("mrope-blocks", 8, (2, 3, 3)))
        assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)
    # and the other allocation really differs on visual tokens
    cos_lta, _ = rope_cos_sin(pos, rot.inv_freq, allocation_axes("lta", 8, (2, 3, 3)))
    assert not torch.equal(cos_lta, cos_hf)


def test_mrope_blocks_equals_qwen2_5_vl_module_bitwise():
    cfg = transformers.Qwen2_5_VLTextConfig(
        **TEXT, rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
    )
    model = transformers.Qwen2_5_VLTextModel(cfg).eval()
    pos = mixed_positions("mrope-timed").long()
    cos_hf, sin_hf = model.rotary_emb(torch.zeros(1, pos.shape[-1], 32), pos)
    cos, sin = rope_cos_sin(pos, inv_freq(16, 1e6), allocation_axes("mrope-blocks", 8, (2, 3, 3)))
    assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)
    assert rotary_config(model).native_allocation == "mrope-blocks"


def test_interleaved_equals_qwen3vl_module_bitwise():
    model = qwen3_text()
    pos = mixed_positions("mrope-interleaved", 123).long()
    cos_hf, sin_hf = model.rotary_emb(torch.zeros(1, pos.shape[-1], 32), pos)
    cos, sin = rope_cos_sin(pos, inv_freq(16, 5e5), allocation_axes("interleaved", 8, (4, 2, 2)))
    assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)
    # the preset's default sections for P = 8 are exactly this map
    assert torch.equal(get_variant("mrope-interleaved").axes(8), allocation_axes("interleaved", 8, (4, 2, 2)))
    cfg = rotary_config(model)
    assert (cfg.head_dim, cfg.num_pairs, cfg.theta, cfg.sections, cfg.native_allocation) == (
        16,
        8,
        5e5,
        (4, 2, 2),
        "interleaved",
    )


def tiny_qwen2_text(sections, theta=100.0, seed=0):
    """head_dim 8 (4 rotary pairs): small enough to write every angle by hand."""
    cfg = transformers.Qwen2VLTextConfig(
        **{**TEXT, "hidden_size": 16, "intermediate_size": 32},
        rope_parameters={"rope_type": "default", "rope_theta": theta, "mrope_section": list(sections)},
    )
    torch.manual_seed(seed)
    return transformers.Qwen2VLTextModel(cfg).eval()


# Two tokens at (t, h, w) = (3, 5, 7) and (10, 20, 30); pair n turns at 100^(-2n/8) per position.
HAND_POS = torch.tensor([[[3.0, 10.0]], [[5.0, 20.0]], [[7.0, 30.0]]])  # [3, B=1, S=2]


def hand_cos_sin(streams: str):
    """cos/sin [1, 2, 8] written out from the definition: pair n of token s has the angle
    position[stream of pair n] * 100^(-2n/8), and the halves are duplicated (NeoX layout)."""
    freq = [100.0 ** (-2 * n / 8) for n in range(4)]
    tokens = [dict(t=3.0, h=5.0, w=7.0), dict(t=10.0, h=20.0, w=30.0)]
    angles = [[tok[a] * f for a, f in zip(streams, freq)] for tok in tokens]
    cos = torch.tensor([[math.cos(a) for a in row] * 2 for row in angles], dtype=torch.float64)
    sin = torch.tensor([[math.sin(a) for a in row] * 2 for row in angles], dtype=torch.float64)
    return cos[None], sin[None]


def test_installed_allocations_equal_hand_computed_cos_sin():
    """The swapped-in module's cos/sin against values written from the definition, not from
    vniahd's own rope_cos_sin / allocation functions; transformers' native module first, to show
    that the hand formula is the one transformers uses (M-RoPE sections 2/1/1 = pairs t,t,h,w)."""
    model = tiny_qwen2_text((2, 1, 1))
    x = torch.zeros(1, 2, 16)
    cos, sin = model.rotary_emb(x, HAND_POS)
    want_cos, want_sin = hand_cos_sin("tthw")
    torch.testing.assert_close(cos.double(), want_cos, atol=1e-5, rtol=0)
    torch.testing.assert_close(sin.double(), want_sin, atol=1e-5, rtol=0)
    # VideoRoPE LTA, sections (t=2, h=1, w=1): h and w alternate on the fast pairs, t takes the
    # two slowest; Qwen3-VL interleaving with the same sections: t, h, w, then t.
    for name, streams in (
        ("lta", "hwtt"),
        ("interleaved", "thwt"),
        ("lta-sequential", "hwtt"),
        ("uniform", "tttt"),
    ):
        with allocation_installed(model, allocation_axes(name, 4, (2, 1, 1))):
            cos, sin = model.rotary_emb(x, HAND_POS)
        want_cos, want_sin = hand_cos_sin(streams)
        torch.testing.assert_close(cos.double(), want_cos, atol=1e-5, rtol=0, msg=name)
        torch.testing.assert_close(sin.double(), want_sin, atol=1e-5, rtol=0, msg=name)


def test_installed_lta_sequential_equals_transformers_on_permuted_streams():
    """End to end through every layer, against transformers alone: LTA-sequential (pairs h…h,
    w…w, t…t) is what transformers' own M-RoPE module computes when its sections are (s_h, s_w,
    s_t) and the position streams are fed in the order (h, w, t), since its chunk i reads stream i."""
    st, sh, sw = 2, 3, 3
    ours = qwen2_text(sections=(st, sh, sw), init=0.5)
    ref = qwen2_text(sections=(sh, sw, st), init=0.5)  # same seed: the same weights
    for a, b in zip(ours.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
    pos = get_variant("videorope").positions([Text(4), Video(3, 2, 3), Text(3)])[:, None, :]
    x = torch.randn(1, pos.shape[-1], 32)
    with torch.no_grad():
        want = ref(inputs_embeds=x, position_ids=pos[[1, 2, 0]]).last_hidden_state
        native = ours(inputs_embeds=x, position_ids=pos).last_hidden_state
        install_allocation(ours, allocation_axes("lta-sequential", 8, (st, sh, sw)))
        got = ours(inputs_embeds=x, position_ids=pos).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert not torch.allclose(native, want, atol=1e-3)  # the allocation matters here


def test_apply_rotary_equals_transformers():
    from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb

    torch.manual_seed(3)
    q, k = torch.randn(2, 3, 5, 8), torch.randn(2, 1, 5, 8)
    angles = torch.randn(2, 5, 4) * 10
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    for ours, theirs in zip(apply_rotary(q, k, cos, sin), apply_rotary_pos_emb(q, k, cos, sin)):
        assert torch.equal(ours, theirs)


def test_swapped_native_allocation_changes_nothing():
    model = qwen2_text()
    pos = mixed_positions("videorope")  # float positions are fine too
    x = torch.randn(1, pos.shape[-1], 32)
    with torch.no_grad():
        ref = model(inputs_embeds=x, position_ids=pos).last_hidden_state
        install_allocation(model, allocation_axes("mrope-blocks", 8, (2, 3, 3)))
        out = model(inputs_embeds=x, position_ids=pos).last_hidden_state
    assert isinstance(model.rotary_emb, AllocatedRotaryEmbedding)
    assert torch.equal(out, ref)


def test_swapped_lta_changes_visual_tokens_only():
    model = qwen2_text(init=0.5)  # larger weights: attention that depends on position visibly
    seq = [Text(4), Video(3, 2, 3), Text(3)]
    pos = get_variant("videorope").positions(seq)[:, None, :]
    x = torch.randn(1, pos.shape[-1], 32)
    text_only = torch.arange(12, dtype=torch.float64).expand(3, 1, 12)
    xt = torch.randn(1, 12, 32)
    with torch.no_grad():
        native = model(inputs_embeds=x, position_ids=pos).last_hidden_state
        native_text = model(inputs_embeds=xt, position_ids=text_only).last_hidden_state
        with allocation_installed(model, get_variant("videorope").axes(8)):
            lta = model(inputs_embeds=x, position_ids=pos).last_hidden_state
            lta_text = model(inputs_embeds=xt, position_ids=text_only).last_hidden_state
    assert not isinstance(model.rotary_emb, AllocatedRotaryEmbedding)  # restored
    diff = (lta - native).abs().amax(-1)[0]
    assert torch.equal(lta[0, :4], native[0, :4])  # causal text before the video: identical
    assert bool((diff[4:] > 1e-3).all())  # visual tokens (and the text that sees them) change
    assert torch.equal(lta_text, native_text)  # t = h = w: no allocation can matter


def test_install_finds_module_in_full_models():
    text = dict(TEXT, rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]})
    full = transformers.Qwen2VLForConditionalGeneration(
        transformers.Qwen2VLConfig(
            text_config=text, vision_config=dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2)
        )
    )
    for model in (full, full.model, full.model.language_model):
        cfg = rotary_config(model)
        assert (cfg.head_dim, cfg.num_pairs, cfg.sections) == (16, 8, (2, 3, 3))
        installed = install_allocation(model, allocation_axes("lta", 8, (2, 3, 3)))
        assert full.model.language_model.rotary_emb is installed
        assert rotary_config(model).sections == (2, 3, 3)  # still reads the original
        uninstall_allocation(model)
        assert type(rotary_module(full)).__name__ == "Qwen2VLRotaryEmbedding"
    # installing twice wraps the original, not the previous wrapper
    install_allocation(full, torch.zeros(8, dtype=torch.long))
    second = install_allocation(full, torch.ones(8, dtype=torch.long))
    assert type(second.base).__name__ == "Qwen2VLRotaryEmbedding"

    q3 = transformers.Qwen3VLForConditionalGeneration(
        transformers.Qwen3VLConfig(
            text_config=dict(
                TEXT,
                head_dim=16,
                rope_parameters={"rope_type": "default", "rope_theta": 5e5, "mrope_section": [4, 2, 2]},
            ),
            vision_config=dict(
                depth=1,
                hidden_size=32,
                intermediate_size=32,
                num_heads=2,
                out_hidden_size=32,
                deepstack_visual_indexes=[],
            ),
        )
    )
    assert rotary_config(q3).native_allocation == "interleaved"
    install_allocation(q3, allocation_axes("lta", 8, (4, 2, 2)))
    assert isinstance(q3.model.language_model.rotary_emb, AllocatedRotaryEmbedding)


def test_install_errors():
    model = qwen2_text()
    with pytest.raises(VniahdError, match="8 rotary pairs"):
        install_allocation(model, torch.zeros(16, dtype=torch.long))
    with pytest.raises(VniahdError, match="could not find a text rotary module"):
        install_allocation(torch.nn.Linear(2, 2), torch.zeros(8, dtype=torch.long))
