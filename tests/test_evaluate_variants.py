"""The variant really reaches the model: positions and allocation seen by the rotary module."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from evaluate_fixtures import make_dataset

from vniahd.evaluation import EvalConfig, Runner
from vniahd.models import get_backend
from vniahd.needles import prompt_text
from vniahd.rope import Text, Video, get_variant


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("variants") / "ds")


def capture_rotary(be, calls):
    """Record (axes, position_ids, cos, sin) of every rotary call while a variant is applied."""
    original = be.use_variant

    @contextlib.contextmanager
    def use_variant(variant):
        with original(variant) as record:
            module = be.language_model.rotary_emb
            axes = module.axes.clone()
            handle = module.register_forward_hook(
                lambda m, args, out: calls.append((axes, args[1].clone(), out[0].clone(), out[1].clone()))
            )
            try:
                yield record
            finally:
                handle.remove()

    be.use_variant = use_variant


def expected_positions(be, ds, row, variant, n):
    """Independent: the segments of the reference protocol for this row, first n positions."""
    from vniahd.prompt_templates import TEMPLATES

    tpl = TEMPLATES["reference"]
    nb = len(be.tokenizer.encode(tpl.before))
    na = len(be.tokenizer.encode(tpl.render_after(prompt_text(ds.needles[row["needle_id"]]))))
    segs = [Text(nb), Video(int(row["num_frames"]), 2, 3), Text(na + 16)]
    return variant.positions(segs)[:, :n]


def test_variants_change_positions_and_allocation(dataset, tmp_path):
    be = get_backend("random:qwen2-vl")
    calls: list = []
    capture_rotary(be, calls)
    names = ["vanilla", "mrope", "videorope"]
    variants = [get_variant(n) for n in names]
    runner = Runner(
        dataset,
        be,
        EvalConfig(variants=variants, limit=1, cache_dir=tmp_path / "c", progress=False),
        tmp_path / "out",
    )
    runner.run()
    assert len(calls) == 3  # one forward per (sample, variant) in reference mode
    row = runner.rows()[0]
    theta, hd = be.rotary.theta, be.rotary.head_dim
    assert (hd, be.rotary.sections) == (16, (2, 3, 3))  # the hand-written axes below assume it
    # per pair (highest frequency first): uniform; M-RoPE blocks t,t,h,h,h,w,w,w; VideoRoPE's LTA
    # puts h/w interleaved on the high frequencies and t on the 2 lowest
    hand_axes = {"vanilla": "tttttttt", "mrope": "tthhhwww", "videorope": "hwhwhwtt"}
    seen_pos, seen_cos = [], []
    for (axes, pos, cos, sin), variant in zip(calls, variants):
        n = pos.shape[-1]
        want = expected_positions(be, dataset, row, variant, n)
        torch.testing.assert_close(pos[:, 0].double(), want)
        assert "".join("thw"[int(a)] for a in axes) == hand_axes[variant.name]
        # the RoPE definition written out: pair k turns by position[stream of k] · θ^(−2k/d);
        # transformers' layout repeats the P angles in both halves of the head
        streams = np.array(["thw".index(c) for c in hand_axes[variant.name]])
        angle = want.numpy()[streams].T * theta ** (-np.arange(0, hd, 2) / hd)  # [S, P]
        wcos = np.concatenate([np.cos(angle), np.cos(angle)], axis=-1)
        wsin = np.concatenate([np.sin(angle), np.sin(angle)], axis=-1)
        np.testing.assert_allclose(cos[0].double().numpy(), wcos, atol=1e-5, rtol=0)
        np.testing.assert_allclose(sin[0].double().numpy(), wsin, atol=1e-5, rtol=0)
        seen_pos.append(pos)
        seen_cos.append(cos)
    assert not torch.equal(seen_pos[0], seen_pos[2])  # vanilla vs videorope positions
    assert not torch.equal(seen_pos[1], seen_pos[2])  # mrope vs videorope positions
    assert calls[1][0].tolist() != calls[2][0].tolist()  # mrope-blocks vs lta allocation
    assert not torch.allclose(seen_cos[1], seen_cos[2])


@pytest.mark.parametrize("spec", ["random:qwen2-vl", "random:qwen2.5-vl?theta=1e6&hidden=128&heads=2"])
def test_mrope_matches_native_rotary(spec):
    """With mrope, our installed module gives the model's own cos/sin on the same position ids."""
    be = get_backend(spec)
    native = be.language_model.rotary_emb
    variant = get_variant("mrope")
    pos = variant.positions([Text(5), Video(7, 3, 4), Text(6)])[:, None].float()
    x = torch.zeros(1, pos.shape[-1], be.row_width)
    ncos, nsin = native(x, pos)
    with be.use_variant(variant) as record:
        assert be.language_model.rotary_emb is not native
        cos, sin = be.language_model.rotary_emb(x, pos)
    torch.testing.assert_close(cos, ncos, atol=1e-6, rtol=0)
    torch.testing.assert_close(sin, nsin, atol=1e-6, rtol=0)
    assert record["axes"] == "t" * 16 + "h" * 24 + "w" * 24 if be.rotary.num_pairs == 64 else True
    # …and a different allocation does not
    with be.use_variant(get_variant("videorope")):
        assert not torch.allclose(be.language_model.rotary_emb(x, pos)[0], ncos)
    # leaving the block puts the model's own module back
    assert be.language_model.rotary_emb is native


def test_image_frame_mode_lays_out_images(dataset, tmp_path):
    """--frame-mode image: every frame an Image segment (positions differ from one Video)."""
    from vniahd.evaluation.runner import build_segments

    video = build_segments(3, 4, (2, 3), 5, "video")
    image = build_segments(3, 4, (2, 3), 5, "image")
    assert len(video) == 3 and len(image) == 6
    mrope = get_variant("mrope")
    assert not torch.equal(mrope.positions(video), mrope.positions(image))
    be = get_backend("random:qwen2-vl", frame_mode="image")
    runner = Runner(
        dataset,
        be,
        EvalConfig(variants=[mrope], limit=2, cache_dir=tmp_path / "c", progress=False),
        tmp_path / "out",
    )
    runner.run()
    import json

    assert json.loads((tmp_path / "out" / "run.json").read_text())["frame_mode"] == "image"


def test_runner_leaves_the_callers_model_as_it_found_it(dataset, tmp_path):
    """The runner applies each variant through backend.use_variant, which puts the model's own
    rotary module back afterwards — also when scoring fails midway."""
    be = get_backend("random:qwen2-vl")
    native = be.language_model.rotary_emb
    variants = [get_variant("videorope"), get_variant("tad")]
    Runner(dataset, be, EvalConfig(variants=variants, limit=2, progress=False), tmp_path / "out").run()
    assert be.language_model.rotary_emb is native

    def boom(*a, **k):
        raise RuntimeError("scoring failed")

    runner = Runner(dataset, be, EvalConfig(variants=variants, progress=False), tmp_path / "out2")
    runner.executor.run_group = boom
    with pytest.raises(RuntimeError, match="scoring failed"):
        runner.run()
    assert be.language_model.rotary_emb is native
