"""Tiny-model training: determinism, identical data across variants, loss on answers only,
the learning-rate schedule, the haystack split and the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vniahd.models.tiny.encoder import FEATURE_DIM
from vniahd.models.tiny.model import TinyConfig
from vniahd.models.tiny.sequence import PromptFormat
from vniahd.models.tiny.vocab import split_words, text_tokenizer
from vniahd.rope import get_variant
from vniahd.training.data import DataConfig, TrainingData, split_clips
from vniahd.training.episodes import EpisodeSampler, vocabulary_words
from vniahd.training.train import TrainConfig, build_model, collate, lr_factor, train

OBJECTS = ("cat", "coffee", "rocket", "horse", "coins")
COLOURS = ("red", "blue", "green", "yellow")


def synthetic_data(seed: int = 0, frames: int = 24) -> TrainingData:
    """Random 'features' (the training loop only sees features) for a small haystack and one
    card per (object, colour) pair."""
    g = torch.Generator().manual_seed(seed)
    cfg = DataConfig(
        haystack_fingerprint="synthetic",
        clips=((0, frames),),
        objects=OBJECTS,
        colours=COLOURS,
        heldout_pairs=(),
    )
    pairs = cfg.train_pairs
    return TrainingData(
        cfg,
        torch.rand(frames, 4, FEATURE_DIM, generator=g),
        np.arange(frames),
        torch.rand(len(pairs), 4, FEATURE_DIM, generator=g),
        list(pairs),
    )


def small_cfg(seed: int = 0, steps: int = 3) -> TrainConfig:
    return TrainConfig(
        seed=seed,
        steps=steps,
        batch_size=4,
        length=6,
        model=TinyConfig(hidden_size=32, num_heads=2, head_dim=16, intermediate_size=64, sections=(2, 3, 3)),
        prompt=PromptFormat(),
    )


def tokenizer_for(cfg: TrainConfig):
    return text_tokenizer(vocabulary_words(list(OBJECTS), list(COLOURS), cfg.prompt))


def test_same_seed_same_weights_after_n_steps():
    data, cfg = synthetic_data(), small_cfg(seed=3)
    tok = tokenizer_for(cfg)
    a = train(cfg, get_variant("videorope"), data, tok, progress=False)
    b = train(cfg, get_variant("videorope"), data, tok, progress=False)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert a.losses == b.losses
    # …and the weights did move, differently for another seed.
    c = train(small_cfg(seed=4), get_variant("videorope"), data, tok, progress=False)
    init = build_model(cfg, tok.vocab_size, get_variant("videorope")).state_dict()
    name = "projector.linear.weight"
    assert not torch.equal(sa[name], init[name])
    assert not torch.equal(sa[name], c.model.state_dict()[name])


def test_batch_projects_each_distinct_frame_once_and_matches_per_episode_features():
    """Fast path (distinct frames projected once, then gathered) == slow path (each episode's
    frames gathered in order by ``episodes.frame_features``, then projected)."""
    from vniahd.training.episodes import frame_features
    from vniahd.training.train import embed_batch

    data, cfg = synthetic_data(), small_cfg()
    tok = tokenizer_for(cfg)
    variant = get_variant("mrope")
    model = build_model(cfg, tok.vocab_size, variant)
    episodes = EpisodeSampler(data, length=6, seed=2).batch(0, 8)
    batch = collate(episodes, data, tok, cfg.prompt, variant, cfg.model)
    total = sum(len(e.frames) for e in episodes)
    assert len(batch.unique_features) < total  # 8 windows of a 24-frame haystack overlap
    with torch.no_grad():
        fast = embed_batch(model, batch)  # [B, S, d]
        for i, e in enumerate(episodes):
            slow = model.embed_frames(frame_features(data, e)).flatten(0, 1)  # [F*4, d]
            start = len(batch.embeds_parts[i][0])
            torch.testing.assert_close(fast[i, start : start + len(slow)], slow, rtol=1e-5, atol=1e-6)


def test_every_variant_gets_identical_episodes_and_initial_weights():
    """Data and initial weights depend on the seed only; the variant changes positions/axes."""
    data, cfg = synthetic_data(), small_cfg()
    tok = tokenizer_for(cfg)
    s1 = EpisodeSampler(data, length=6, seed=7)
    s2 = EpisodeSampler(data, length=6, seed=7)
    assert s1.batch(5, 8) == s2.batch(5, 8)
    assert s1.batch(5, 8) != s1.batch(6, 8)
    w = {
        n: build_model(cfg, tok.vocab_size, get_variant(n)).state_dict()
        for n in ("vanilla", "tad", "mrope", "videorope")
    }
    for n in ("tad", "mrope", "videorope"):
        for k in w["vanilla"]:
            assert torch.equal(w["vanilla"][k], w[n][k])
    eps = s1.batch(0, 4)
    pv = collate(eps, data, tok, cfg.prompt, get_variant("vanilla"), cfg.model).position_ids
    pm = collate(eps, data, tok, cfg.prompt, get_variant("mrope"), cfg.model).position_ids
    assert not torch.equal(pv, pm)


def test_loss_reads_only_answer_tokens():
    """Targets are exactly the answer tokens, read off the row before each of them."""
    data, cfg = synthetic_data(), small_cfg()
    tok = tokenizer_for(cfg)
    eps = EpisodeSampler(data, length=6, seed=0, instruction=False).batch(0, 4)
    b = collate(eps, data, tok, cfg.prompt, get_variant("mrope"), cfg.model)
    for i, e in enumerate(eps):
        ans = tok.encode(e.answer)
        assert b.targets[i, : len(ans)].tolist() == ans
        before, frames, after = b.embeds_parts[i]
        s = len(before) + frames * 4 + len(after) - len(ans)
        assert b.target_rows[i, 0] == s - 1
        assert list(after[-len(ans) :]) == ans  # teacher-forced answer at the end of the sequence


def test_episode_slots_follow_the_planner():
    """Needle and distractor land where vniahd.plan.insert_slots puts them."""
    data = synthetic_data()
    sampler = EpisodeSampler(data, length=10, distractor_prob=1.0, seed=1)
    for e in sampler.batch(0, 20):
        assert len(e.frames) == 10 + 1 + len(e.distractor_slots)
        assert e.frames[e.needle_slot][0] == "c"
        for s in e.distractor_slots:
            assert e.frames[s][0] == "c"
        assert sum(1 for k, _ in e.frames if k == "c") == 1 + len(e.distractor_slots)
    # distractor_prob=1 always places one (the spacing is drawn among those that fit)
    assert all(len(e.distractor_slots) == 1 for e in sampler.batch(1, 20))


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 100, 0.05) == pytest.approx(0.2)  # (0+1)/5
    assert lr_factor(4, 100, 0.05) == pytest.approx(1.0)
    assert lr_factor(5, 100, 0.05) == pytest.approx(1.0)  # cosine starts at 1
    assert lr_factor(100, 100, 0.05) == pytest.approx(0.0)
    # 25 steps, 20 % warm-up = 5 steps; the cosine runs over the other 20: half way at step 15
    assert lr_factor(15, 25, 0.2) == pytest.approx(0.5)
    assert lr_factor(10, 25, 0.2) == pytest.approx(0.5 * (1 + np.cos(np.pi / 4)))


def test_split_keeps_a_portion_of_every_clip():
    train_idx, held = split_clips(((0, 10), (10, 15), (15, 35)), 0.6)
    assert train_idx.tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
        10,
        11,
        12,
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
    ]
    assert held.tolist() == [6, 7, 8, 9, 13, 14, 27, 28, 29, 30, 31, 32, 33, 34]
    assert not set(train_idx) & set(held)


def test_keyword_tokenizer_keeps_content_words_and_drops_boilerplate():
    """The vocabulary is the question's content words (hand-listed here); the chat template, the
    answer instruction and punctuation vanish, so the colour is the last token whatever the
    template — the tokens are identical under the reference and plain templates."""
    from vniahd.prompt_templates import get_template
    from vniahd.training.episodes import compose_question

    words = vocabulary_words(list(OBJECTS), list(COLOURS))
    options = [f"{letter}. {o}" for letter in "ABCD" for o in sorted(OBJECTS)]  # 4 × 5 whole options
    assert words == sorted(["<pad>", "<unk>"]) + sorted(
        [
            "A",
            "B",
            "C",
            "D",
            "Options",
            "Which",
            "blue",
            "card",
            "cat",
            "coffee",
            "coins",
            "coloured",
            "green",
            "horse",
            "is",
            "object",
            "on",
            "red",
            "rocket",
            "yellow",
        ]
        + options
    )
    assert "A. coins" in words and len(words) == 2 + 20 + 20
    tok = text_tokenizer(words)
    q = compose_question("red", ["cat", "coffee", "rocket", "horse"], "B", instruction=True)
    seqs = []
    for name in ("reference", "plain"):
        t = get_template(name)
        ids = tok.encode(t.before) + tok.encode(t.render_after(q))
        seqs.append([tok.tokenizer.id_to_token(i) for i in ids])
    assert (
        seqs[0]
        == seqs[1]
        == [
            "Options",
            "A. cat",
            "B. coffee",
            "C. rocket",
            "D. horse",
            "Which",
            "object",
            "is",
            "on",
            "card",
            "coloured",
            "red",
        ]
    )
    assert tok.encode(get_template("reference").before) == []
    assert tok.encode("B") == [words.index("B")]
    # the tokenizers pipeline splits like the pure-Python rule
    text = "Options: A. cat\nWhich object?"
    assert [w for w in split_words(text) if w in words] == [
        tok.tokenizer.id_to_token(i) for i in tok.encode(text)
    ]


def test_option_tokens_are_embedded_as_letter_plus_object():
    """``A. cat`` → E[A] + E[cat]; every other token is itself alone (hand-built table)."""
    from vniahd.models.tiny.vocab import option_parts

    vocab = {"<pad>": 0, "<unk>": 1, "A": 2, "A. cat": 3, "B": 4, "B. dog": 5, "cat": 6, "C. cat": 7}
    parts = option_parts(vocab)  # [8, 2]
    assert parts.tolist() == [[0, -1], [1, -1], [2, -1], [2, 6], [4, -1], [5, -1], [6, -1], [7, -1]]
    # ("B. dog": no "dog" in the vocabulary; "C. cat": no "C" — both stay whole tokens)
    cfg = small_cfg()
    tok = tokenizer_for(cfg)
    from vniahd.training.train import tokenizer_vocab

    v = tokenizer_vocab(tok)
    model = build_model(cfg, len(v), get_variant("vanilla"), v)
    e = model.text_model.embed_tokens.weight
    with torch.no_grad():
        got = model.embed_text(torch.tensor([v["B. coffee"], v["coffee"], v["red"]]))
    torch.testing.assert_close(got[0], e[v["B"]] + e[v["coffee"]])
    torch.testing.assert_close(got[1], e[v["coffee"]])
    torch.testing.assert_close(got[2], e[v["red"]])


@pytest.mark.parametrize("tie", [True, False])
def test_checkpoint_round_trip_keeps_the_head_tied_or_untied(tmp_path, tie):
    """Tied: the head *is* the embedding matrix after training and after loading, and the
    checkpoint stores it once; untied: its own weights survive the round trip."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from vniahd.models.tiny.checkpoints import load_checkpoint, save_checkpoint

    data, cfg = synthetic_data(), small_cfg(steps=2)
    cfg = replace(cfg, model=replace(cfg.model, tie_embeddings=tie))
    tok = tokenizer_for(cfg)
    model = train(cfg, get_variant("videorope"), data, tok, progress=False).model
    assert (model.lm_head.weight is model.text_model.embed_tokens.weight) is tie
    words = vocabulary_words(list(OBJECTS), list(COLOURS), cfg.prompt)
    path = save_checkpoint(model, words, [], {"variant_name": "videorope"}, tmp_path / "ckpt")
    assert ("lm_head.weight" in load_file(str(path / "heads.safetensors"))) is not tie
    loaded, *_ = load_checkpoint(path)
    assert (loaded.lm_head.weight is loaded.text_model.embed_tokens.weight) is tie
    assert loaded.config.tie_embeddings is tie
    for k, t in model.state_dict().items():
        assert torch.equal(t, loaded.state_dict()[k]), k


def test_configs_written_before_head_tying_load_untied():
    d = TinyConfig().to_dict()
    del d["tie_embeddings"]
    assert TinyConfig.from_dict(d).tie_embeddings is False
    assert TinyConfig().tie_embeddings is True


def test_registering_a_template_changes_no_tiny_checkpoint_key():
    """The tiny vocabulary comes from the built-in templates only: a user's registered template
    must not change the vocabulary (and so every checkpoint key)."""
    from vniahd.needles import COLOURS, OBJECTS
    from vniahd.prompt_templates import TEMPLATES, PromptTemplate
    from vniahd.training.episodes import vocabulary_words

    before = vocabulary_words(list(OBJECTS), list(COLOURS))
    TEMPLATES["mine"] = PromptTemplate("mine", "Watch carefully zebra ", "{question} Reply quickly: ")
    try:
        assert vocabulary_words(list(OBJECTS), list(COLOURS)) == before
    finally:
        del TEMPLATES["mine"]
