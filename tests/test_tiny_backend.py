"""Smoke test: a few training steps, then an evaluation through the ``tiny`` backend and the
evaluator's runner; the runner's path and the training path give the same logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vniahd.errors import VniahdError
from vniahd.rope import get_variant

SIZE = (64, 112)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A small haystack video, a recipe that trains 3 steps on it, and a generated dataset."""
    import os

    root = tmp_path_factory.mktemp("tiny")
    old = os.environ.get("VNIAHD_CACHE")
    os.environ["VNIAHD_CACHE"] = str(root / "cache")
    from vniahd.dataset.generate import generate
    from vniahd.media import write_mp4
    from vniahd.models.tiny.model import TinyConfig
    from vniahd.models.tiny.recipe import Recipe
    from vniahd.needles import demo_needles_path
    from vniahd.training.train import TrainConfig

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(1, 8, 14, 3)).astype(np.float32)
    frames = [
        np.clip(np.kron(base[0] + 12 * i, np.ones((8, 8, 1))), 0, 255).astype(np.uint8) for i in range(20)
    ]
    video = write_mp4(frames, root / "hay.mp4", 1.0)
    recipe = Recipe(
        train=TrainConfig(
            steps=3, batch_size=4, length=6, model=TinyConfig(num_layers=1, intermediate_size=64)
        ),
        haystack=video,
        frame_size=SIZE,
        card_augmentations=1,
    )
    ds = generate(
        haystack=video,
        needles=demo_needles_path(),
        out=root / "ds",
        lengths="6",
        depths="0,1",
        schedule="reference",
        period=3,
        size=SIZE,
        repeats=1,
        progress=False,
    )
    yield {"root": root, "recipe": recipe, "dataset": ds}
    if old is None:
        os.environ.pop("VNIAHD_CACHE", None)
    else:
        os.environ["VNIAHD_CACHE"] = old


def make_backend(recipe, train: bool):
    from vniahd.models.base import BackendOptions
    from vniahd.models.tiny.backend import TinyBackend

    return TinyBackend("tiny", recipe, BackendOptions(), train_if_missing=train, progress=False)


def test_missing_checkpoint_names_the_train_command(env):
    backend = make_backend(env["recipe"].with_train(seed=99), train=False)
    with pytest.raises(VniahdError, match="vniahd train-tiny --variant tad --seed 99"):
        with backend.use_variant(get_variant("tad")):
            pass


def test_train_then_evaluate_through_the_runner(env):
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.prompt_templates import get_template

    recipe, ds = env["recipe"], env["dataset"]
    backend = make_backend(recipe, train=True)
    out = env["root"] / "results"
    for name in ("vanilla", "videorope"):
        v = get_variant(name)
        settings = EvalConfig(variants=[v], prompt_template=get_template("reference"), progress=False)
        summary = Runner(ds, backend, settings, out).run()
        assert summary[name]["total"] == len(ds.samples) == 12  # 1 length × 2 depths × 6 needles
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {r["variant"] for r in lines} == {"vanilla", "videorope"}
    assert all(r["model"] == "tiny" and r["tokens_per_frame"] == 4 for r in lines)
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["rotary"]["sections"] == [4, 6, 6]
    # the evaluator packs its batches on the CPU: answerable before and after a model is applied
    assert run["evaluation"]["packed_batches"] is True
    with backend.use_variant(get_variant("vanilla")):
        assert backend.can_pack
    assert run["model"]["rotary"]["temporal_period"] == pytest.approx(62.83, abs=0.01)
    # the checkpoint is in transformers format, with our metadata
    ckpt = Path(backend.loaded["videorope"])
    assert (ckpt / "text_model" / "config.json").is_file()
    meta = json.loads((ckpt / "tiny.json").read_text())
    assert meta["variant_name"] == "videorope" and meta["steps"] == 3 and meta["seed"] == 0
    # a second backend loads (does not train) the same weights
    again = make_backend(recipe, train=False)
    again.pin_variant(get_variant("videorope"))
    backend.pin_variant(get_variant("videorope"))
    for k, t in backend.model.state_dict().items():
        assert torch.equal(t, again.model.state_dict()[k]), k


def test_runner_path_equals_training_path(env):
    """The answer logits of one dataset sample computed by the evaluator path (spliced rows,
    runner positions, installed allocation) equal those of the training path (collate)."""
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models.tiny.features import frame_features
    from vniahd.needles import prompt_text
    from vniahd.prompt_templates import get_template
    from vniahd.training.data import TrainingData
    from vniahd.training.episodes import Episode
    from vniahd.training.train import collate, embed_batch

    recipe, ds = env["recipe"], env["dataset"]
    backend = make_backend(recipe, train=True)
    v = get_variant("mrope")
    backend.pin_variant(v)
    runner = Runner(
        ds,
        backend,
        EvalConfig(variants=[v], prompt_template=get_template("reference"), progress=False),
        env["root"] / "r2",
    )
    row = ds.samples.to_dict("records")[-1]  # depth 1 with a distractor before the needle
    assert len(row["distractor_slots"]) == 1
    hay = runner.cache.haystack(ds.haystack_frames(), ds.haystack_key)
    names = [row["needle_image"], *row["distractor_images"]]
    images = runner.cache.images({n: ds.image(n) for n in names})
    prep = runner.prepare(row, hay, images)
    positions = v.positions(prep.segments)
    s = prep.inputs.prompt_len
    ans = prep.inputs.answer_ids
    with torch.inference_mode():
        emb = torch.cat([prep.inputs.embeds, backend.embed_text(ans)])
        hidden = backend.hidden_states(emb[None], positions[:, None, : s + len(ans)])
        runner_logits = backend.logits(hidden[0, s - 1])

    # the same sample as a training episode
    refs = ds.frame_sequence(row)
    hay_frames = ds.haystack_frames()
    feats = frame_features(
        np.stack([hay_frames[i] if k == "haystack" else ds.image(i) for k, i in refs]), progress=False
    )
    data = TrainingData(recipe.data_config, feats, np.arange(len(feats)), feats[:0], [])
    ep = Episode(
        tuple(("h", i) for i in range(len(refs))),
        prompt_text(ds.needles[row["needle_id"]]),
        row_answer(ds, row),
        row["needle_slot"],
        tuple(row["distractor_slots"]),
    )
    batch = collate([ep], data, backend.tokenizer, recipe.train.prompt, v, recipe.train.model)
    with torch.inference_mode():
        h = backend.model.hidden_states(embed_batch(backend.model, batch), batch.position_ids)
        train_logits = backend.model.logits_at(h, batch.target_rows)[0, 0]
    torch.testing.assert_close(runner_logits, train_logits, rtol=1e-4, atol=1e-5)


def row_answer(ds, row) -> str:
    return ds.needles[row["needle_id"]].answer


def _sorted_lines(out: Path, variant: str) -> list[bytes]:
    return sorted(
        line
        for line in (out / "results.jsonl").read_bytes().splitlines()
        if json.loads(line)["variant"] == variant
    )


@pytest.mark.integration
def test_two_variants_in_one_run_are_each_scored_with_their_own_weights(env):
    """The tiny model holds one checkpoint per variant: a run with two variants must score each
    with its own weights — the vanilla lines equal those of a vanilla-only run — and run.json
    must say which checkpoint scored which variant."""
    from vniahd.evaluation import EvalConfig, Runner

    recipe, ds, root = env["recipe"], env["dataset"], env["root"]
    vanilla, mrope = get_variant("vanilla"), get_variant("mrope")

    def run(variants, out):
        settings = EvalConfig(variants=variants, scoring="choice", progress=False)
        Runner(ds, make_backend(recipe, train=True), settings, out).run()

    run([vanilla, mrope], root / "both")
    run([vanilla], root / "vanilla-only")
    run([mrope], root / "mrope-only")
    assert _sorted_lines(root / "both", "vanilla") == _sorted_lines(root / "vanilla-only", "vanilla")
    assert _sorted_lines(root / "both", "mrope") == _sorted_lines(root / "mrope-only", "mrope")
    weights = {
        n: v["weights"] for n, v in json.loads((root / "both" / "run.json").read_text())["variants"].items()
    }
    assert weights["vanilla"]["trained_for"] == "vanilla" and weights["mrope"]["trained_for"] == "mrope"
    assert weights["vanilla"]["checkpoint_key"] != weights["mrope"]["checkpoint_key"]
    # the two checkpoints really differ, so the equalities above can tell them apart
    a, b = make_backend(recipe, train=False), make_backend(recipe, train=False)
    a.pin_variant(vanilla)
    b.pin_variant(mrope)
    assert any(not torch.equal(t, b.model.state_dict()[k]) for k, t in a.model.state_dict().items())


def test_pinned_weights_refuse_another_variant_before_writing(env):
    """tiny?variant=mrope pins the mrope-trained weights; scoring vanilla with them would be a
    mislabelled number, so the run is refused before anything is written."""
    from vniahd.evaluation import EvalConfig, Runner

    backend = make_backend(env["recipe"], train=True)
    backend.pin_variant(get_variant("mrope"))
    out = env["root"] / "pinned"
    settings = EvalConfig(variants=[get_variant("vanilla"), get_variant("mrope")], progress=False)
    with pytest.raises(VniahdError, match=r"pinned to the weights trained for 'mrope'.*drop 'variant='"):
        Runner(env["dataset"], backend, settings, out).run()
    assert not out.exists() or not any(out.iterdir())
    # the pinned variant itself is fine, and its weights are the ones recorded
    Runner(env["dataset"], backend, EvalConfig(variants=[get_variant("mrope")], progress=False), out).run()
    run = json.loads((out / "run.json").read_text())
    assert run["variants"]["mrope"]["weights"]["trained_for"] == "mrope"


def test_allocation_axes_follow_the_model_sections_in_training_and_evaluation():
    """One rule for the axes: a tiny model with sections (2, 7, 7) trains and is evaluated on the
    same per-pair streams (it used to train on the default t=P//4 split)."""
    from vniahd.models.tiny.model import TinyConfig, TinyVideoLM
    from vniahd.rope import variant_axes

    cfg = TinyConfig(num_layers=1, intermediate_size=32, sections=(2, 7, 7))
    model = TinyVideoLM(cfg, vocab_size=8)
    model.set_variant(get_variant("mrope"))
    installed = model.text_model.rotary_emb.axes.tolist()
    assert installed == [0] * 2 + [1] * 7 + [2] * 7  # hand-written: t t h×7 w×7
    assert installed == variant_axes(get_variant("mrope"), cfg.rotary).tolist()
