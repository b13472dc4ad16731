"""``vniahd.analysis``: attention pooled per frame from all rotary pairs or a band of them."""

from __future__ import annotations

import math

import pytest
import torch
from evaluate_fixtures import make_dataset

from vniahd.analysis.attention import MASS_PARTS, sample_attention
from vniahd.analysis.attention_math import channel_weights, pair_channels, pooled_attention
from vniahd.models import get_backend
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("attn") / "ds")


def eager_weights(be, variant, emb, positions) -> list:
    """The attention weights the model's own eager attention returns, one per attention layer
    (None where a layer has none), caught from each attention module's output."""
    lm = be.language_model
    caught: list = []
    hooks = [
        layer.self_attn.register_forward_hook(lambda m, args, out: caught.append(out[1]))
        for layer in lm.layers
        if hasattr(layer, "self_attn")
    ]
    with be.use_variant(variant), torch.inference_mode():
        lm.config._attn_implementation = "eager"
        try:
            be.hidden_states(emb[None], positions[:, None, : len(emb)])
        finally:
            lm.config._attn_implementation = "sdpa"
            for h in hooks:
                h.remove()
    return caught


def test_two_pair_toy_case_by_hand():
    """One head, d = 4 (2 pairs, NeoX: pair 0 = channels 0 and 2, pair 1 = channels 1 and 3), two
    tokens: the band of pair 0 keeps q0·k0 + q2·k2 only; softmax over the 2 visible keys."""
    q = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]])  # [H=1, S=2, D=4]
    k = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [0.5, -1.0, 2.0, 0.0]]])
    groups = torch.tensor([0, 1])
    w = channel_weights(torch.tensor([[True, False]]), 4, 2, "neox", with_unrotated=False)
    assert w.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    got = pooled_attention(q, k, 0.5, groups, 2, torch.tensor([1]), w)
    l0 = 0.5 * (1 * 1 + 3 * 1)  # query 1 · key 0 on channels 0, 2
    l1 = 0.5 * (1 * 0.5 + 3 * 2.0)
    p1 = math.exp(l1) / (math.exp(l0) + math.exp(l1))
    assert got[0].tolist() == pytest.approx([1 - p1, p1])
    # the two pairs' terms add up to the full logits (all channels)
    full = pooled_attention(q, k, 0.5, groups, 2, torch.tensor([1]))
    l_full = (0.5 * (1 + 2 + 3 + 4), 0.5 * (0.5 - 2 + 6 + 0))
    p_full = 1 / (1 + math.exp(l_full[0] - l_full[1]))
    assert full[0].tolist() == pytest.approx([1 - p_full, p_full])
    assert pair_channels(2, "adjacent").tolist() == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    "spec",
    [
        "random:qwen2-vl",
        "random:qwen2.5-vl?hidden=64&heads=2",
        "random:qwen3-vl",  # DeepStack features ride along the rows
        "random:qwen3-vl-moe",
        "random:glm-4.1v?heads=2",  # adjacent pairs, partial rotary
        "random:glm-4.5v?heads=2",
        "random:qwen3.5",  # full-attention layers only (the others have no rotary)
        "random:qwen3.5-moe",
    ],
)
def test_all_band_is_the_models_own_attention(dataset, spec, tmp_path):
    """Band ``all`` equals transformers' eager attention weights (output_attentions=True), pooled
    the same way, on the same input; the needle masses sum to 1."""
    _check_all_band(dataset, get_backend(spec), tmp_path, "reference")


@pytest.mark.parametrize("spec", ["random:qwen2-vl", "random:qwen3-vl"])
def test_all_band_is_the_models_own_attention_with_the_native_prompt(dataset, spec, tmp_path):
    """With the family's own video markup (vision start/end tokens; Qwen3-VL's timestamps
    between frames) the text tokens between frames count as text, and band ``all`` is still the
    model's own attention."""
    _check_all_band(dataset, get_backend(spec), tmp_path, "native", between_frames=spec.endswith("qwen3-vl"))


def _check_all_band(dataset, be, tmp_path, prompt, between_frames=False):
    from vniahd.analysis.attention import token_frames
    from vniahd.evaluation import EvalConfig, Runner

    sample = str(dataset.samples["sample_id"].iloc[-1])
    got = sample_attention(
        dataset, be, [get_variant("videorope")], sample, bands=("all", "temporal"), prompt=prompt
    )
    layers = got["variants"]["videorope"]["layers"]
    frames = got["frames"]
    # the same input through the model's eager attention
    runner = Runner(dataset, be, EvalConfig(variants=["videorope"], progress=False, prompt=prompt), tmp_path)
    prep, inputs = runner.sample_inputs(sample, runner.variants[0])
    emb = torch.cat([inputs.prompt_rows(0, inputs.prompt_len), be.embed_text(list(inputs.answer_ids))])
    # the model's own eager attention returns its weights; catch them from each attention module
    attentions = [a for a in eager_weights(be, runner.variants[0], emb, inputs.positions) if a is not None]
    assert len(attentions) == len(layers)
    groups = token_frames(prep.segments)
    visual = torch.nonzero(groups >= 0).flatten()
    # Qwen3-VL's native markup puts a timestamp between frames; Qwen2-VL's only wraps the video
    assert (int(visual[-1] - visual[0]) + 1 > len(visual)) == between_frames
    one_hot = torch.zeros(len(emb), frames, dtype=torch.float64)
    one_hot[visual, groups[visual]] = 1
    for rec, att in zip(layers, attentions):
        pooled = (att[0].double() @ one_hot).mean(0)[visual]  # [visual rows, F]
        want = torch.zeros(frames, frames, dtype=torch.float64).index_add_(0, groups[visual], pooled)
        want /= torch.bincount(groups[visual], minlength=frames)[:, None]
        got_map = torch.tensor(rec["bands"]["all"]["frame_map"])
        assert (got_map - want).abs().max() <= 1e-5
        for band in ("all", "temporal"):
            mass = rec["bands"][band]["mass"]
            assert list(mass) == list(MASS_PARTS) and sum(mass.values()) == pytest.approx(1.0, abs=1e-9)
    assert got["needle_frames"] and got["frames"] == prep.num_frames


def test_cli_writes_the_contract_the_masses_and_the_figures(dataset, tmp_path, capsys):
    import csv
    import json

    from vniahd.cli import main

    out, js = tmp_path / "out", tmp_path / "a.json"
    argv = ["attention", "--dataset", str(dataset.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    argv += ["--variant", "hope", "--limit", "2", "--out", str(out), "--json", str(js), "--no-progress"]
    assert main(argv) == 0
    records = json.loads(js.read_text())
    assert len(records) == 2
    rec = records[0]
    assert set(rec) == {"model", "sample_id", "frames", "needle_frames", "distractor_frames", "variants"}
    assert set(rec["variants"]) == {"mrope", "hope"}
    layer = rec["variants"]["hope"]["layers"][0]
    assert set(layer) == {"layer", "bands"} and set(layer["bands"]) == {"all", "temporal"}
    f = rec["frames"]
    assert len(layer["bands"]["all"]["frame_map"]) == f and len(layer["bands"]["all"]["frame_map"][0]) == f
    # HoPE never rotates by t: its temporal band has no pairs, so every logit is 0 and the softmax
    # is uniform over the visible keys: the needle frame and the distractor frame (one frame of
    # the same number of tokens each, both before the answer) get the same mass
    assert len(rec["needle_frames"]) == len(rec["distractor_frames"]) == 1
    for hope_layer in rec["variants"]["hope"]["layers"]:
        mass = hope_layer["bands"]["temporal"]["mass"]
        assert mass["needle"] == pytest.approx(mass["distractor"], rel=1e-12)
    rows = list(csv.DictReader((out / "masses.csv").open()))
    assert len(rows) == 2 * 2 * 2 * 2  # samples x variants x layers x bands
    assert {r["band"] for r in rows} == {"all", "temporal"}
    run = json.loads((out / "run.json").read_text())
    assert run["peak_memory"]["cpu_max_rss_bytes"] > 0 and run["samples"] == [r["sample_id"] for r in records]
    assert len(list(out.glob("frame-maps-*.png"))) == 2
    assert "answer's attention mass" in capsys.readouterr().out


def test_cli_mistakes_are_one_line(dataset, tmp_path, capsys):
    from vniahd.cli import main

    base = ["attention", "--dataset", str(dataset.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    for extra, msg in (
        (["--sample", "nope"], "not in"),
        (["--band", "spiral"], "unknown band"),
        (["--limit", "0"], "--limit"),
    ):
        assert main([*base, *extra, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_hybrid_models_say_which_layers_the_maps_cover(dataset, tmp_path, capsys):
    from vniahd.cli import main

    argv = ["attention", "--dataset", str(dataset.path), "--model", "random:qwen3.5", "--variant", "mrope"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "3 of 4 layers have no rotary attention" in err and "[3]" in err
    # a layer without rotary attention (or beyond the model) is refused before anything runs
    assert main([*argv, "--layers", "0,3,9", "--out", str(tmp_path / "p"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "layer(s) [0, 9] have no rotary attention" in err and "[3]" in err
    assert not (tmp_path / "p" / "masses.csv").exists()


def test_repeated_samples_and_bands_count_once(dataset, tmp_path):
    import csv

    from vniahd.cli import main

    sid = str(dataset.samples["sample_id"].iloc[0])
    argv = ["attention", "--dataset", str(dataset.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    argv += ["--sample", sid, "--sample", sid, "--band", "temporal", "--band", "temporal", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    rows = list(csv.DictReader((tmp_path / "o" / "masses.csv").open()))
    layers = {r["layer"] for r in rows}
    assert len(rows) == len(layers) and {r["band"] for r in rows} == {"temporal"}


def test_memory_model_fits_a_7b_model_at_1000_frames_on_one_80_gb_gpu():
    """Qwen2-VL-7B's shapes (config.json: hidden 3584, 28 layers, 28 heads, 4 KV heads, head dim
    128, MLP 18944, vocab 152064; 8.29 B parameters with the vision tower), bfloat16, 1,000 frames
    of 144 tokens: every component by hand, and the total under 80 GB."""
    from vniahd.analysis.memory_model import attention_memory
    from vniahd.evaluation.planning.flops import ModelShape

    shape = ModelShape(
        hidden=3584, layers=28, heads=28, kv_heads=4, head_dim=128, intermediate=18944, vocab=152064
    )
    tokens, frames = 1000 * 144 + 256, 1000
    got = attention_memory(shape, 8_291_375_616, tokens, frames, dtype_bytes=2, chunk=256)
    assert got["weights"] == 8_291_375_616 * 2
    assert "kv_cache" not in got  # the analysis pass keeps none (use_cache=False)
    assert got["layer_activations"] == (2 * 3584 + 2 * 18944) * tokens * 2
    assert got["captured_qk"] == (28 + 4) * tokens * 128 * 4 + 2 * 28 * tokens * 128 * 4
    assert got["pooling"] == tokens * 1001 * 8 + 28 * 256 * 1001 * 8 + 3 * 28 * 256 * 256 * 8
    assert got["total"] == sum(v for k, v in got.items() if k != "total")
    assert got["total"] < 80e9, got["total"] / 1e9  # 37.3 GB


def test_run_record_carries_the_memory_model_next_to_the_measured_peak(dataset, tmp_path):
    import json

    from vniahd.cli import main

    argv = ["attention", "--dataset", str(dataset.path), "--model", "random:qwen2-vl", "--variant", "mrope"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    model = run["memory_model"]
    assert model["total"] > model["weights"] > 0 and model["frames"] == int(
        dataset.samples["num_frames"].iloc[0]
    )


def _dense(q, k, scaling, groups, num_groups, rows, weights_per_query_head=None):
    """Brute force: the full causal softmax per query head, pooled per group (a re-derivation)."""
    heads = q.shape[0]
    k = k.repeat_interleave(heads // k.shape[0], dim=0).double()
    q = (
        q.double()
        if weights_per_query_head is None
        else q.double() * weights_per_query_head.double()[:, None, :]
    )
    logits = torch.einsum("hqd,hkd->hqk", q, k) * scaling
    seq = q.shape[1]
    logits = logits.masked_fill(torch.ones(seq, seq, dtype=torch.bool).triu(1), -torch.inf)
    p = torch.softmax(logits, -1)[:, rows]
    one_hot = torch.zeros(seq, num_groups, dtype=torch.float64)
    one_hot[torch.nonzero(groups >= 0).flatten(), groups[groups >= 0]] = 1
    return (p @ one_hot).mean(0)


def test_per_head_bands_and_partial_rotary_channels_against_brute_force():
    """MHRoPE heads 1/1/0 on 4 query heads over 2 KV heads: the temporal band is all rotated
    channels of KV head 0 (query heads 0, 1) and nothing of KV head 1 (query heads 2, 3); a
    restricted band never keeps the unrotated channels of a partial-rotary head."""
    from vniahd.rope.bands import band_pairs

    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(4, 9, 8, generator=g), torch.randn(2, 9, 8, generator=g)
    groups = torch.tensor([-1, 0, 0, 1, 1, 2, 2, -1, -1])
    v = get_variant("mhrope:heads=1/1/0")
    mask = band_pairs(v.pair_plan(4, None, 2), v.stream_names, "temporal")  # [2 KV heads, 4 pairs]
    w = channel_weights(mask, 8, 4, "neox", with_unrotated=False)  # [2, 8]
    assert torch.equal(w, torch.tensor([[1.0] * 8, [0.0] * 8]))
    rows = torch.arange(9)
    got = pooled_attention(q, k, 0.3, groups, 3, rows, w, chunk=4)
    want = _dense(q, k, 0.3, groups, 3, rows, w.repeat_interleave(2, dim=0))
    assert torch.allclose(got, want, atol=1e-12)
    # partial rotary (GLM: 4 of 8 channels rotated, adjacent pairs): a band leaves channels 4..7 out
    w = channel_weights(torch.tensor([True, False]), 8, 2, "adjacent", with_unrotated=False)
    assert w.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert (
        channel_weights(torch.tensor([False, False]), 8, 2, "adjacent", with_unrotated=True).tolist()[4:]
        == [1.0] * 4
    )


def test_masses_are_the_models_own_attention_at_the_answer_rows(dataset, tmp_path):
    """The answer's masses under band all equal the model's own eager attention weights at the rows
    that predict the answer tokens, summed over the needle slot's frame, the distractor slots'
    frames, the other frames and the text (read from the dataset's row, not from the analysis)."""
    from vniahd.analysis.attention import token_frames
    from vniahd.evaluation import EvalConfig, Runner

    be = get_backend("random:qwen2-vl")
    table = dataset.samples
    sample = str(table[table["distractor_slots"].map(len) > 0]["sample_id"].iloc[-1])
    got = sample_attention(dataset, be, [get_variant("mrope")], sample, bands=("all",))
    row = dataset.sample(sample).to_dict()
    runner = Runner(dataset, be, EvalConfig(variants=["mrope"], progress=False), tmp_path)
    names = [row["needle_image"], *row["distractor_images"]]
    hay = runner.cache.haystack(*runner.haystack_input())
    prep = runner.prepare(row, hay, runner.cache.images({n: dataset.image(n) for n in names}))
    inputs = runner.with_positions(prep, runner.variants[0])
    answer = list(inputs.answer_ids)
    emb = torch.cat([inputs.prompt_rows(0, inputs.prompt_len), be.embed_text(answer)])
    caught = eager_weights(be, runner.variants[0], emb, inputs.positions)
    frames = token_frames(prep.segments)[: len(emb)]
    frames = torch.cat([frames, torch.full((len(emb) - len(frames),), -1)])
    parts = {
        "needle": frames == int(row["needle_slot"]),
        "distractor": torch.isin(frames, torch.tensor(list(row["distractor_slots"]))),
    }
    parts["haystack"] = (frames >= 0) & ~parts["needle"] & ~parts["distractor"]
    parts["text"] = frames < 0
    rows = torch.arange(inputs.prompt_len - 1, inputs.prompt_len - 1 + len(answer))
    assert got["needle_frames"] == [int(row["needle_slot"])]
    for rec, att in zip(got["variants"]["mrope"]["layers"], caught):
        weights = att[0].double()[:, rows]  # [H, answer rows, keys]
        for part, mask in parts.items():
            want = float(weights[..., mask].sum(-1).mean())
            assert rec["bands"]["all"]["mass"][part] == pytest.approx(want, abs=1e-6), part


def test_the_analysis_pass_keeps_no_kv_cache(dataset):
    """The memory model counts no KV cache: the pass must run with use_cache=False."""
    be = get_backend("random:qwen2-vl")
    import functools

    seen = []
    real = be.language_model.forward

    @functools.wraps(real)  # the backend reads the cache keyword from the signature
    def spy(*args, **kwargs):
        seen.append(kwargs.get("use_cache"))
        return real(*args, **kwargs)

    be.language_model.forward = spy
    sample = str(dataset.samples["sample_id"].iloc[0])
    sample_attention(dataset, be, [get_variant("mrope")], sample, bands=("all",))
    assert seen and all(v is False for v in seen)
