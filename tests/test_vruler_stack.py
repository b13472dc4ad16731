"""The lengthy multimodal stack (V-RULER's fifth task): the released arithmetic worked by hand and
replayed from the released loop, the released (LongVideoBench) item format, the dataset, the
prompt the model is given (checked token by token), the released answer rule, and the report.

Expectations are independent of the code under test: hand-computed filler counts, a replay of the
released per-prompt loop written here from its description, the byte-level tokenizer's known
lengths (one token per byte), frames read straight from the clip files, and the released scorer's
string rule applied by hand.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vniahd.cli import main
from vniahd.dataset import Dataset
from vniahd.errors import VniahdError
from vniahd.evaluation.answers import released_stack_letter
from vniahd.needles import load_task_items
from vniahd.plan.tasks import NOISE_TEXT, noise_repeats, plan_task

SIZE = (36, 64)
SENTENCE_BYTES = len(NOISE_TEXT.encode())  # random:* models tokenise one byte per token: 37


# --- the released arithmetic ----------------------------------------------------------------------
def test_filler_counts_by_hand():
    # 224000-token context minus the released 32768 visual tokens = 191232; a 9-token sentence:
    # noise_time = 191232.0 // 9 = 21248.0; depth 0.2: floor(21248·0.8) = floor(16998.4) = 16998,
    # floor(21248·0.2) = floor(4249.6) = 4249
    assert noise_repeats(191232, 9, 0.2, "reference") == (16998, 4249)  # (before clip, after clip)
    assert noise_repeats(191232, 9, 0.2, "depth") == (4249, 16998)
    # released depth 0: all filler before the clip, which then sits right before the question
    assert noise_repeats(191232, 9, 0.0, "reference") == (21248, 0)
    assert noise_repeats(191232, 9, 1.0, "reference") == (0, 21248)
    # vniahd's default: depth 0 is the start of the context, as in V-NIAH
    assert noise_repeats(191232, 9, 0.0, "depth") == (0, 21248)
    # 100 // 37 = 2.0 sentences fit; depth 0.4: floor(0.8) = 0 before, floor(1.2) = 1 after
    assert noise_repeats(100, 37, 0.4, "depth") == (0, 1)
    with pytest.raises(VniahdError, match="encodes to no tokens"):
        noise_repeats(100, 0, 0.5, "depth")


def test_released_loop_replay_equals_the_reference_placement_on_the_released_grid():
    """eval_v_ruler_lengthy_multimodal_stack.py L231-247 as described: ``max_training_length`` an
    argparse float (``.sh`` L43: context − 32768), ``noise_time = max_training_length //
    len(encode(noise_text))``, the sentinel's literal depth list, math.floor of float products."""
    items = [(f"item{i}", ()) for i in range(5)]
    trials = plan_task("stack", items, placement="reference")
    assert len(trials) == 10 * 5 * 6  # CONTEXT_LENGTHS × items × depths
    for sentence in (9, 10, 37):
        want = {}
        for context_length in range(224000, 296001, 8000):
            max_training_length = float(context_length - 32768)
            noise_time = max_training_length // sentence
            for i in range(5):
                for depth in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]:
                    pre = math.floor(noise_time * (1 - depth))
                    post = math.floor(noise_time * depth)
                    want[f"C{context_length}_D{depth:g}_item{i}"] = (pre, post)
        got = {
            t.sample_id: noise_repeats(t.text_tokens, sentence, float(t.depth), t.placement) for t in trials
        }
        assert got == want


def test_the_plan_follows_the_released_loop_order_and_budgets():
    trials = plan_task("stack", [("item0", ()), ("item1", ())], [1000, 2000], ["0", "0.5"], visual_tokens=400)
    assert [t.sample_id for t in trials] == [
        "C1000_D0_item0",
        "C1000_D0.5_item0",
        "C1000_D0_item1",
        "C1000_D0.5_item1",
        "C2000_D0_item0",
        "C2000_D0.5_item0",
        "C2000_D0_item1",
        "C2000_D0.5_item1",
    ]
    assert {t.text_tokens for t in trials} == {600, 1600} and {t.placement for t in trials} == {"depth"}
    with pytest.raises(VniahdError, match="shorter than the 400 tokens"):
        plan_task("stack", [("item0", ())], [300], ["0"], visual_tokens=400)


# --- the released item format ---------------------------------------------------------------------
def _items_json(folder, items, clips=("c0.mp4",)):
    for name in clips:
        (folder / name).write_bytes(b"not decoded by the loader " + name.encode())
    path = folder / "lengthy_multimodal_stack.json"
    path.write_text(json.dumps(items, indent=4))
    return path


LVB = {
    "video_id": "v0",
    "question": "What color are these words?",
    "question_wo_referring_query": "What color?",
    "candidates": ["Yellow", "Blue", "All are black"],
    "correct_choice": 2,
    "position": [1],
    "question_category": "S2A",
    "id": "v0_1",
    "video_path": "c0.mp4",
    "duration": 9.0,
    "answer": "(C) All are black",
}


def test_items_read_as_released(tmp_path):
    path = _items_json(tmp_path, [LVB, {**LVB, "candidates": ["x", "y", "x"], "correct_choice": 2}])
    items = load_task_items(path)  # the task from the released file name
    assert items.task == "stack" and [it.id for it in items] == ["item0", "item1"]
    first = items.items[0]
    assert first.prompt == (
        "Question: What color are these words?\nOptions:\n(A) Yellow\n(B) Blue\n(C) All are black"
    )
    assert first.answer == "C" and first.options == ("Yellow", "Blue", "All are black")
    assert first.video == (tmp_path / "c0.mp4").resolve() and first.source_id == "v0_1"
    assert first.category == "S2A" and first.images == ()
    # qa_template finds the answer by text, and its loop has no break: the last equal candidate
    assert items.items[1].answer == "C"


def test_item_errors_name_the_fix(tmp_path):
    with pytest.raises(VniahdError, match="--clips DIR"):
        load_task_items(_items_json(tmp_path, [{**LVB, "video_path": "missing.mp4"}]))
    with pytest.raises(VniahdError, match="index of the right candidate"):
        load_task_items(_items_json(tmp_path, [{**LVB, "correct_choice": 3}]))
    with pytest.raises(VniahdError, match="2 to 5 texts"):
        load_task_items(_items_json(tmp_path, [{**LVB, "candidates": list("abcdef")}]))
    with pytest.raises(VniahdError, match="needs video_path, question, candidates, correct_choice"):
        load_task_items(_items_json(tmp_path, [{"question": "q"}]))
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "c0.mp4").write_bytes(b"x")
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps([LVB]))
    assert load_task_items(path, "stack", clips).items[0].video == (clips / "c0.mp4").resolve()


@pytest.mark.parametrize(
    "text, letter",
    [
        ("D", "D"),
        ("(D) All are black", "D"),
        ("The answer is C.", "C"),
        ("Answer: B", "B"),
        # the released list fuses "Best answer:" and "Best option:", so "Best option:" stays and
        # its capital B is the first A-E
        ("Best option: A", "B"),
        ("Based on the video, it is C", "B"),  # the first A-E anywhere, inside a word too
        ("none of these options is shown here in the video at all", ""),  # > 10 words, no A-E
        ("no letter", ""),
        ("", ""),
    ],
)
def test_released_answer_rule(text, letter):
    assert released_stack_letter(text) == letter


# --- the dataset ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two clips at 2 fps: 7 and 12 pictures, each picture a distinct random texture."""
    from vniahd.media import write_mp4

    folder = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(5)
    for name, n in (("c0.mp4", 7), ("c1.mp4", 12)):
        write_mp4(rng.integers(0, 256, (n, *SIZE, 3), dtype=np.uint8), folder / name, fps=2)
    items = [LVB, {**LVB, "video_id": "v1", "id": "v1_0", "video_path": "c1.mp4", "correct_choice": 0}]
    path = folder / "lengthy_multimodal_stack.json"
    path.write_text(json.dumps(items))
    return path


def _generate(needles, out, *extra):
    size = f"{SIZE[0]}x{SIZE[1]}"
    args = ["generate", "--task", "stack", "--needles", str(needles), "--lengths", "200,300"]
    rc = main(
        [*args, "--depths", "0:1:0.5", "--visual-tokens", "100", "--size", size, "--out", str(out), *extra]
    )
    assert rc == 0
    return Dataset.open(out)


def _clip_frames(path, fps=2.0):
    from vniahd.media.readers import read_frames

    return read_frames(path, fps=fps, size=SIZE)


def test_each_sample_reads_its_whole_clip(clips, tmp_path):
    ds = _generate(clips, tmp_path / "d")
    df = ds.samples.set_index("sample_id")
    assert len(df) == 2 * 3 * 2 and ds.config["task"] == "stack" and ds.config["placement"] == "depth"
    assert sorted(set(df["length"])) == [200, 300]
    assert all(df["text_tokens"] == df["length"] - 100)
    c0, c1 = _clip_frames(clips.parent / "c0.mp4"), _clip_frames(clips.parent / "c1.mp4")
    assert (len(c0), len(c1)) == (7, 12)
    for sid, clip in (("C200_D0.5_item0", c0), ("C300_D1_item1", c1)):
        row = df.loc[sid].to_dict() | {"sample_id": sid}
        assert row["num_frames"] == len(clip) and list(row["needle_slots"]) == []
        assert np.array_equal(ds.frames(row), clip)  # exactly the clip, in order
    assert df.loc["C200_D0_item1", "haystack_offset"] == 7  # clips stored end to end
    assert [c["groups"] for c in ds.meta["haystack"]["clips"]] == [7, 12]


def test_groups_of_two_and_the_frame_cap(clips, tmp_path):
    ds = _generate(clips, tmp_path / "d", "--frames-per-group", "2", "--max-clip-frames", "8")
    df = ds.samples.set_index("sample_id")
    # clip 0: 7 frames, under the cap → 3 groups, the odd last frame dropped
    # clip 1: 12 frames → 8 kept at numpy.linspace(0, 11, 8).round():
    # 0, 1.57, 3.14, 4.71, 6.29, 7.86, 9.43, 11 → 0, 2, 3, 5, 6, 8, 9, 11 → 4 groups
    assert df.loc["C200_D0_item0", "num_frames"] == 3 and df.loc["C200_D0_item1", "num_frames"] == 4
    c0, c1 = _clip_frames(clips.parent / "c0.mp4"), _clip_frames(clips.parent / "c1.mp4")
    for sid, want in (("C300_D0.5_item0", c0[:6]), ("C300_D0.5_item1", c1[[0, 2, 3, 5, 6, 8, 9, 11]])):
        row = df.loc[sid].to_dict() | {"sample_id": sid}
        assert np.array_equal(ds.frames(row), want)
    assert ds.meta["haystack"]["clips"][1]["kept_frames"] == [0, 2, 3, 5, 6, 8, 9, 11]


def test_generate_refuses_what_means_nothing_for_the_stack(clips, tmp_path, capsys):
    for extra, what in (
        (["--schedule", "reference"], "--schedule"),
        (["--haystack", str(clips.parent / "c0.mp4")], "has no haystack"),
        (["--repeats", "2"], "--repeats"),
    ):
        assert (
            main(
                ["generate", "--task", "stack", "--needles", str(clips), "--out", str(tmp_path / "x"), *extra]
            )
            == 2
        )
        assert what in capsys.readouterr().err
    video = clips.parent / "c0.mp4"
    rc = main(
        [
            "generate",
            "--haystack",
            str(video),
            "--needles",
            "demo",
            "--clips",
            "x",
            "--out",
            str(tmp_path / "y"),
        ]
    )
    assert rc == 2 and "only for --task stack" in capsys.readouterr().err
    rc = main(["generate", "--needles", "demo", "--out", str(tmp_path / "z")])
    assert rc == 2 and "--haystack is needed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_protocol_vruler_keeps_the_released_placement_and_subtitle_items_are_left_out(
    clips, tmp_path, capsys
):
    items = json.loads(clips.read_text())
    path = clips.parent / "with_subtitles.json"
    path.write_text(json.dumps([items[0], {**items[1], "question": "What do the subtitles say?"}, items[1]]))
    ds = _generate(path, tmp_path / "d", "--protocol", "vruler")
    assert ds.config["placement"] == "reference" and ds.config["protocol"] == "vruler"
    assert sorted(set(ds.samples["needle_id"])) == ["item0", "item2"]  # item1 mentions subtitles
    assert "1 item(s) whose question mentions subtitles left out" in capsys.readouterr().err
    assert ds.frames_per_group == 2  # the protocol's groups of two frames


def test_demo_clips_from_a_missing_video_and_exported_videos_are_refused(clips, tmp_path, capsys):
    rc = main(
        ["generate", "--task", "stack", "--needles", "demo", "--haystack", str(tmp_path / "no.mp4")]
        + ["--out", str(tmp_path / "x")]
    )
    assert rc == 2 and "video file not found" in capsys.readouterr().err
    rc = main(
        [
            "generate",
            "--task",
            "stack",
            "--needles",
            str(clips),
            "--export-videos",
            "--out",
            str(tmp_path / "y"),
        ]
    )
    assert rc == 2 and "drop --export-videos" in capsys.readouterr().err


# --- the prompt the model is given ----------------------------------------------------------------
@pytest.mark.parametrize("placement", ["depth", "reference"])
def test_the_prompt_holds_the_filler_in_the_models_tokens(clips, tmp_path, placement):
    """The byte tokenizer spells the sentence in 37 tokens. Context 300 − 100 visual tokens = 200
    tokens of filler: 200.0 // 37 = 5 sentences; at depth 0.5 floor(2.5) = 2 go on each side; at
    depth 0 the depth placement puts all 5 after the clip, the released one all 5 before."""
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models import get_backend
    from vniahd.prompt_templates import get_template

    ds = _generate(clips, tmp_path / "d", "--placement", placement)
    be = get_backend("random:qwen2-vl")
    runner = Runner(ds, be, EvalConfig(variants=["mrope"], progress=False), tmp_path / "r")
    template = get_template("reference")
    tok = be.tokenizer
    prompt = ds.needles["item1"].prompt
    expected = {"C300_D0.5_item1": (2, 2), "C300_D0_item1": (0, 5) if placement == "depth" else (5, 0)}
    for sid, (pre, post) in expected.items():
        prep, _ = runner.sample_inputs(sid, runner.variants[0])
        assert prep.filler == (pre, post)
        # byte-level ids are the bytes: the template's text, then the sentence's bytes pre times
        filler_before, filler_after = list((NOISE_TEXT * pre).encode()), list((NOISE_TEXT * post).encode())
        assert prep.source.before_ids == tok.encode(template.before) + filler_before
        assert prep.source.after_ids == filler_after + tok.encode(template.render_after(prompt))
        assert len(filler_before) == SENTENCE_BYTES * pre
        assert len(prep.source.refs) == 12  # the whole clip between them


def test_the_native_prompt_wraps_the_clip_between_the_fillers(clips, tmp_path):
    """--prompt native: Qwen2-VL's markers go around the clip, the filler outside them, as the
    released chat template writes ``{pre}<|vision_start|><|video_pad|><|vision_end|>{post}{question}``."""
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models import get_backend
    from vniahd.prompt_templates import get_template

    ds = _generate(clips, tmp_path / "d")
    be = get_backend("random:qwen2-vl")
    runner = Runner(ds, be, EvalConfig(variants=["mrope"], progress=False, prompt="native"), tmp_path / "r")
    template, tok = get_template("reference"), be.tokenizer
    prep, _ = runner.sample_inputs("C300_D0.5_item0", runner.variants[0])
    chunks = prep.source.chunks
    filler = list((NOISE_TEXT * 2).encode())  # 200 // 37 = 5 sentences, floor(2.5) on each side
    assert chunks[0] == tok.encode(template.before) + filler + tok.encode("<|vision_start|>")
    assert chunks[-1] == tok.encode("<|vision_end|>") + filler + tok.encode(
        template.render_after(ds.needles["item0"].prompt)
    )
    assert all(c == [] for c in chunks[1:-1]) and len(chunks) == 7 + 1


def test_a_template_that_opens_the_video_in_its_text_is_refused(clips, tmp_path):
    from vniahd import evaluate
    from vniahd.prompt_templates import PromptTemplate
    from vniahd.records import read_results

    ds = _generate(clips, tmp_path / "d")
    with pytest.raises(VniahdError, match=r"opens the video in its text .*<\|vision_start\|>"):
        evaluate(
            ds,
            "random:qwen2-vl",
            ["mrope"],
            out=tmp_path / "r",
            prompt_template="qwen-vision-tokens",
            progress=False,
        )
    # a chat marker that opens no video is fine
    other = PromptTemplate("l3", "<|start_header_id|>user<|end_header_id|>\n\n", "{question}<|eot_id|>")
    evaluate(
        ds, "random:qwen2-vl", ["mrope"], out=tmp_path / "l3", prompt_template=other, limit=1, progress=False
    )
    assert len(read_results(tmp_path / "l3")) == 1


def test_a_tokenizer_that_drops_the_sentence_is_refused_before_any_work(clips, tmp_path):
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models import get_backend

    ds = _generate(clips, tmp_path / "d")
    be = get_backend("random:qwen2-vl")
    be.tokenizer.encode = lambda text: [] if text == NOISE_TEXT else [1]  # type: ignore[method-assign]
    with pytest.raises(VniahdError, match="encodes to no tokens"):
        Runner(ds, be, EvalConfig(variants=["mrope"], progress=False), tmp_path / "r")


# --- scoring and the report -----------------------------------------------------------------------
@pytest.fixture
def prepared(monkeypatch):
    """Every sample the evaluator prepares during the test (to look at what it still holds)."""
    from vniahd.evaluation.execution import samples as sample_module

    kept = []
    prepare = sample_module.SampleBuilder.prepare

    def keep(self, *args, **kwargs):
        kept.append(prepare(self, *args, **kwargs))
        return kept[-1]

    monkeypatch.setattr(sample_module.SampleBuilder, "prepare", keep)
    return kept


def test_prefix_sharing_and_batches_score_as_each_sample_alone(clips, tmp_path, prepared):
    """Samples whose filler before the clip differs share no rows; the depth-0 samples (no filler
    before the clip, at every context length) come together and share their clip. Shared scoring
    must equal scoring each sample alone, and no sample's filler embeddings outlive its batch."""
    from evaluate_fixtures import assert_same_outcomes

    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models import get_backend
    from vniahd.records import read_results

    ds = _generate(clips, tmp_path / "d")
    runs, stats = {}, {}
    for name, opts in (("alone", {"prefix_sharing": False, "batch_size": 1}), ("shared", {})):
        cfg = EvalConfig(variants=["videorope"], scoring="choice", progress=False, **opts)
        runner = Runner(ds, get_backend("random:qwen2-vl"), cfg, tmp_path / name)
        runner.run()
        runs[name] = {r["sample_id"]: r for r in read_results(tmp_path / name)}
        stats[name] = dict(runner.prefix_stats)
    assert_same_outcomes(runs["shared"], runs["alone"], tol=1e-4)
    # C200_D0 and C300_D0 of each item hold the same text before the clip, then the same clip
    assert stats["shared"]["reused_tokens"] > 0 and stats["alone"]["reused_tokens"] == 0
    run = json.loads((tmp_path / "shared" / "run.json").read_text())["dataset"]
    assert (run["task"], run["placement"], run["visual_tokens"]) == ("stack", "depth", 100)
    assert run["noise_text"] == NOISE_TEXT and run["lengths"] == [200, 300]
    assert len(prepared) == 2 * 12 and all(
        p.source._before is None and p.source._after is None for p in prepared
    )
    rec = runs["shared"]["C300_D0.5_item0"]
    assert (
        rec["task"] == "stack"
        and rec["filler_sentences"] == [2, 2]
        and rec["sentence_tokens"] == SENTENCE_BYTES
    )
    assert rec["text_tokens"] == 200 and rec["num_frames"] == 7


def test_a_resumed_padded_run_releases_every_filler_and_gives_the_same_results(
    clips, tmp_path, prepared, monkeypatch
):
    """Right-padded batches (a backend that cannot pack, as on a GPU) and a resume: batches whose
    members are all done still walk the shared cache; their text must be released too, and the
    resumed results must equal the uninterrupted run's (same plan, same settings)."""
    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.models import get_backend
    from vniahd.records import read_results

    be = get_backend("random:qwen2-vl")
    monkeypatch.setattr(type(be), "can_pack", property(lambda self: False))
    ds = _generate(clips, tmp_path / "d")
    cfg = EvalConfig(variants=["videorope"], scoring="choice", progress=False, batch_size=2)
    Runner(ds, be, cfg, tmp_path / "r").run()
    first = {r["sample_id"]: r for r in read_results(tmp_path / "r")}
    results = tmp_path / "r" / "results.jsonl"
    lines = results.read_text().splitlines()
    dropped = {"C300_D1_item0", "C300_D1_item1"}
    results.write_text("".join(x + "\n" for x in lines if json.loads(x)["sample_id"] not in dropped))
    prepared.clear()
    Runner(ds, be, cfg, tmp_path / "r").run()
    assert len(prepared) == 12 and all(p.source._before is None and p.source._after is None for p in prepared)
    again = {r["sample_id"]: r for r in read_results(tmp_path / "r")}
    assert set(again) == set(first)
    for sid in dropped:
        assert again[sid]["option_logprobs"] == first[sid]["option_logprobs"]


def test_the_filler_counts_in_the_cost_estimate():
    from vniahd.evaluation.planning.work_plan import cost_profile

    rows = [
        {
            "sample_id": s,
            "haystack_offset": 0,
            "num_frames": 3,
            "needle_slot": -1,
            "task": "stack",
            "text_tokens": t,
        }
        for s, t in (("a", 100), ("b", 200))
    ]
    marginal, restart = cost_profile(
        rows, text_before=10, tokens_per_frame=4, prefix_sharing=True, text_after=5
    )
    assert marginal == [10 + 100 + 12 + 5, 10 + 200 + 12 + 5] and restart == [0.0, 0.0]


def test_generate_scoring_reads_the_answer_by_the_released_rule(clips, tmp_path, monkeypatch):
    """A model that always says "Best option: A": the released rule reads B (the capital of
    "Best"), vniahd's own option rule would read A."""
    from vniahd import evaluate
    from vniahd.evaluation.answers import parse_choice
    from vniahd.models import get_backend
    from vniahd.records import read_results

    be = get_backend("random:qwen2-vl")
    monkeypatch.setattr(be.tokenizer, "decode", lambda ids: "Best option: A")
    assert parse_choice("Best option: A", list("ABCD")) == "A"
    ds = _generate(clips, tmp_path / "d")
    evaluate(ds, be, ["mrope"], out=tmp_path / "g", scoring="generate", max_new_tokens=3, progress=False)
    recs = read_results(tmp_path / "g")
    assert len(recs) == 12 and {r["prediction"] for r in recs} == {"B"}
    assert {r["answer_rule"] for r in recs} == {"lvb"}
    # item0's answer is C, item1's A (fixture): B is never right
    assert not any(r["correct"] for r in recs)


def test_report_draws_the_stack_on_a_context_axis(clips, tmp_path):
    import pandas as pd

    from vniahd import evaluate, report
    from vniahd.reporting.aggregate import axis, x_values
    from vniahd.reporting.load import load_inputs

    ds = _generate(clips, tmp_path / "d")
    evaluate(ds, "random:qwen2-vl", ["mrope"], out=tmp_path / "r", progress=False)
    records = load_inputs([tmp_path / "r"]).records
    assert axis(records, "frames") == "context" and set(records["benchmark"]) == {"V-RULER stack"}
    assert sorted(set(x_values(records, "context"))) == [200.0, 300.0]  # tokens, not frames × tokens
    paths = report([tmp_path / "r"], out=tmp_path / "rep")
    table = pd.read_csv(paths["vruler_summary.csv"])
    assert list(table["task"]) == ["stack"] and int(table["n"].iloc[0]) == 12
    assert any("schedule-vruler-stack-depth" in str(p) for p in paths.values())
