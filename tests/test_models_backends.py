"""Backends: random tiny models, hf:PATH loading, the tokenizer, spec parsing and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_helpers import save_and_reload

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.models import get_backend, parse_spec
from vniahd.models.tokenizer import SPECIAL_TOKENS, byte_tokenizer

FRAMES = np.random.default_rng(3).integers(0, 256, (3, 56, 84, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def qwen2():
    return get_backend("random:qwen2-vl")


def test_tokenizer_bytes_and_specials():
    tok = byte_tokenizer()
    assert tok.encode("B") == [ord("B")]
    assert tok.encode("200") == [ord("2"), ord("0"), ord("0")]
    assert tok.encode("<|im_start|>user") == [256 + SPECIAL_TOKENS.index("<|im_start|>")] + list(b"user")
    text = "<|im_start|>system\nÉté 200?<|im_end|>\n"
    assert tok.decode(tok.encode(text), skip_special_tokens=False) == text
    assert tok.stop_ids == [tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")]


def test_spec_parsing():
    assert parse_spec("random:qwen2-vl?layers=3&hidden=32") == (
        "random",
        "qwen2-vl",
        {"layers": "3", "hidden": "32"},
    )
    assert parse_spec("hf:/a/b?c") == ("hf", "/a/b?c", {})
    assert parse_spec("tiny") == ("tiny", "", {})


@pytest.mark.parametrize("spec", ["random:qwen2-vl", "random:qwen2.5-vl"])
def test_random_backend_encodes_per_frame(spec):
    be = get_backend(spec)
    assert be.visual_grid((56, 84)) == (2, 3)
    out = be.encode_frames(FRAMES)
    assert out.shape == (3, 6, be.row_width) and out.device.type == "cpu"
    # batching must not change a frame's embedding (the cache encodes in chunks) beyond float32
    # rounding: another batch shape may round differently, so a tolerance, not bits
    torch.testing.assert_close(be.encode_frames(FRAMES[1:2])[0], out[1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(out[0], out[1])


def test_random_sizes_and_errors():
    be = get_backend("random:qwen2-vl?layers=1&hidden=48&heads=3&kv_heads=1", seed=5)
    assert be.rotary.head_dim == 16 and be.rotary.sections == (2, 3, 3)
    assert len(be.language_model.layers) == 1
    with pytest.raises(VniahdError, match="unknown random-model parameter"):
        get_backend("random:qwen2-vl?wings=2")
    with pytest.raises(VniahdError, match="sections"):
        get_backend("random:qwen2-vl?sections=1,1,1")
    with pytest.raises(VniahdError, match="unknown random model"):
        get_backend("random:llama")
    with pytest.raises(UnknownNameError):
        get_backend("nope:x")
    with pytest.raises(VniahdError, match="frame mode"):
        get_backend("random:qwen2-vl", frame_mode="audio")


def test_7b_shapes():
    from vniahd.models.random_qwen import resolve_params

    p = resolve_params({"size": "7b"})
    assert (p["layers"], p["hidden"], p["heads"], p["kv_heads"], p["intermediate"], p["vocab"]) == (
        28,
        3584,
        28,
        4,
        18944,
        152064,
    )
    assert p["sections"] == (16, 24, 24) and p["theta"] == 1e6
    assert resolve_params({"size": "7b", "layers": "2"})["layers"] == 2


def test_seed_changes_weights_and_fingerprint(qwen2):
    other = get_backend("random:qwen2-vl", seed=1)
    assert other.fingerprint() != qwen2.fingerprint()
    assert other.encoder_fingerprint((56, 84)) != qwen2.encoder_fingerprint((56, 84))
    same = get_backend("random:qwen2-vl")
    assert same.encoder_fingerprint((56, 84)) == qwen2.encoder_fingerprint((56, 84))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_user_error():
    with pytest.raises(VniahdError, match="no CUDA GPU"):
        get_backend("random:qwen2-vl", device="cuda")


def test_hf_path_round_trip(tmp_path, qwen2):
    """save_pretrained a full tiny Qwen2-VL (vision tower included) and load it through hf:PATH:
    same vision embeddings, same logits."""
    be = save_and_reload(qwen2, tmp_path)
    assert be.spec == f"hf:{tmp_path}" and be.rotary == qwen2.rotary
    assert be.tokenizer.encode("<|im_end|>B") == qwen2.tokenizer.encode("<|im_end|>B")
    torch.testing.assert_close(be.encode_frames(FRAMES), qwen2.encode_frames(FRAMES))
    assert be.encoder_fingerprint((56, 84)) == qwen2.encoder_fingerprint((56, 84))
    emb = torch.randn(1, 20, be.row_width)
    pos = torch.arange(20.0).expand(3, 1, 20)
    with torch.inference_mode():
        torch.testing.assert_close(
            be.logits(be.hidden_states(emb, pos)), qwen2.logits(qwen2.hidden_states(emb, pos))
        )


def test_hf_path_errors(tmp_path):
    with pytest.raises(VniahdError, match="does not exist"):
        get_backend(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(VniahdError, match="no config.json"):
        get_backend(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(VniahdError, match="supported model types"):
        get_backend(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    with pytest.raises(VniahdError) as err:
        get_backend(f"hf:{tmp_path}")
    # one line naming every supported model type
    assert "\n" not in str(err.value) and "'llava_onevision'" in str(err.value)
    for model_type in ("qwen2_vl", "qwen3_vl_moe", "glm4v_moe", "qwen3_5_moe"):
        assert model_type in str(err.value)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    with pytest.raises(VniahdError, match="no weight files"):
        get_backend(f"hf:{tmp_path}")


def test_bfloat16_embeddings_cached_bit_exactly(tmp_path):
    """bf16 embeddings are stored as uint16 bit patterns and come back identical."""
    from vniahd.evaluation.execution.embedding_cache import EmbeddingCache

    be = get_backend("random:qwen2-vl", dtype="bfloat16")
    # rotary frequencies stay float32 (as from_pretrained keeps them); weights are bf16
    assert be.language_model.rotary_emb.inv_freq.dtype == torch.float32
    assert be.lm_head.weight.dtype == torch.bfloat16
    cache = EmbeddingCache(be, (56, 84), root=tmp_path, chunk=2, progress=False)
    hay = cache.haystack(FRAMES, "k" * 64)
    again = EmbeddingCache(be, (56, 84), root=tmp_path, progress=False)
    refs = [("haystack", 2), ("haystack", 0)]
    got = again.gather(refs, again.haystack(FRAMES, "k" * 64), {})
    # encoded as the cache encodes (chunks of 2): another batch shape may round differently, and
    # the claim here is that the cache stores and returns bf16 bits exactly
    want = torch.cat([be.encode_frames(FRAMES[:2]), be.encode_frames(FRAMES[2:])])
    want = want[[2, 0]].reshape(-1, be.row_width)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    assert again.stats.frames_encoded == 0 and hay.dtype == np.uint16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_matches_cpu_fp32_closely():
    gpu = get_backend("random:qwen2-vl", device="cuda")
    cpu = get_backend("random:qwen2-vl")
    assert gpu.dtype == torch.bfloat16 and gpu.device.type == "cuda"
    gpu.model.load_state_dict(cpu.model.state_dict())  # CUDA and CPU random inits differ
    emb = cpu.encode_frames(FRAMES)
    torch.testing.assert_close(gpu.encode_frames(FRAMES).float(), emb, atol=5e-2, rtol=5e-2)


def test_two_frame_group_is_one_temporal_group_of_the_vision_tower():
    """frames_per_group = 2 (the released protocol): a group of two distinct frames goes through
    the vision tower as one temporal group — the tower run directly on those two frames' patches
    (patchify_group, checked against explicit loops in test_models_patchify.py) — and differs
    from repeating either frame."""
    from vniahd.models.patchify import normalize_frames, patchify_group

    be = get_backend("random:qwen2-vl")
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 256, (2, 56, 84, 3), dtype=np.uint8)
    got = be.encode_frames(np.stack([a, b])[None])  # [1 group, tokens, hidden]
    rows = patchify_group(normalize_frames(np.stack([a, b]), be.patch), be.patch)
    gh, gw = 56 // be.patch.patch_size, 84 // be.patch.patch_size
    with torch.inference_mode():
        out = be.visual(torch.from_numpy(rows), grid_thw=torch.tensor([[1, gh, gw]]))
    torch.testing.assert_close(got[0], out.pooler_output.reshape(got.shape[1], -1), rtol=0, atol=0)
    for single in (a, b):
        assert not torch.allclose(got, be.encode_frames(single[None]), atol=1e-3)
    # a group given as [N, 1, H, W, 3] is the frame repeated, exactly as [N, H, W, 3]
    torch.testing.assert_close(be.encode_frames(a[None, None]), be.encode_frames(a[None]), rtol=0, atol=0)
    with pytest.raises(VniahdError, match="1 or 2 frames"):
        be.encode_frames(np.stack([a, b, a])[None])


def test_tiny_model_refuses_two_frame_groups():
    from vniahd.models.tiny.backend import TinyBackend

    frames = np.zeros((1, 2, 64, 112, 3), dtype=np.uint8)
    with pytest.raises(VniahdError, match="--frames-per-group 1"):
        TinyBackend.encode_frames(object.__new__(TinyBackend), frames)


def test_hf_path_round_trip_qwen3_vl(tmp_path):
    """A saved tiny Qwen3-VL loads through hf:PATH as the DeepStack-carrying backend: same rows
    (merged tokens + DeepStack levels + flag), same logits."""
    from vniahd.models.qwen3_vl import Qwen3VLBackend

    q3 = get_backend("random:qwen3-vl")
    assert q3.patch.image_mean == (0.5, 0.5, 0.5)  # its processor's normalisation, saved with it
    be = save_and_reload(q3, tmp_path)
    assert isinstance(be, Qwen3VLBackend) and be.rotary == q3.rotary
    assert be.rotary.native_allocation == "interleaved" and be.deepstack_levels == 2
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    rows = be.encode_frames(frames)
    assert rows.shape[-1] == 64 * 3 + 1 and bool((rows[..., -1] == 1).all())
    torch.testing.assert_close(rows, q3.encode_frames(frames))
    emb = torch.cat([be.embed_text(list(range(5))), rows[0]])[None]
    pos = torch.arange(float(emb.shape[1])).expand(3, 1, -1)
    with torch.inference_mode():
        torch.testing.assert_close(
            be.logits(be.hidden_states(emb, pos)), q3.logits(q3.hidden_states(emb, pos))
        )


@pytest.mark.parametrize(
    ("spec", "layout"), [("random:glm-4.1v?heads=2", "adjacent"), ("random:glm-4.5v?heads=2", "neox")]
)
def test_hf_path_round_trip_glm4v(tmp_path, spec, layout):
    """A saved tiny GLM-4.1V / GLM-4.5V loads through hf:PATH with its partial rotary and pair
    layout (GLM-4.1V adjacent pairs, GLM-4.5V NeoX halves, as their transformers code rotates)
    read from the model and its processor's per-group pixel budget."""
    glm = get_backend(spec)
    pre = {"size": {"shortest_edge": 112 * 112, "longest_edge": 28 * 28 * 15000}}  # GLM's own
    be = save_and_reload(glm, tmp_path, pre)
    assert be.rotary == glm.rotary and be.rotary.pair_layout == layout
    assert be.rotary.rotary_dim == be.rotary.head_dim // 2 and be.patch == glm.patch
    frames = np.random.default_rng(2).integers(0, 256, (2, 56, 84, 3), dtype=np.uint8)
    torch.testing.assert_close(be.encode_frames(frames), glm.encode_frames(frames))


@pytest.mark.parametrize("spec", ["random:qwen3.5", "random:qwen3.5-moe"])
def test_hf_path_round_trip_qwen3_5(tmp_path, spec):
    """A saved tiny Qwen3.5 (-MoE) loads through hf:PATH as the backend that cannot crop its cache."""
    q35 = get_backend(spec)
    assert q35.patch.image_mean == (0.5, 0.5, 0.5)
    be = save_and_reload(q35, tmp_path)
    assert be.can_crop_cache is False and be.rotary == q35.rotary and be.rotary.rotary_dim == 8
    emb = torch.randn(1, 12, be.row_width)
    pos = torch.arange(12.0).expand(3, 1, 12)
    with torch.inference_mode():
        torch.testing.assert_close(
            be.logits(be.hidden_states(emb, pos)), q35.logits(q35.hidden_states(emb, pos))
        )
