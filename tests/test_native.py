"""``--variant native`` and ``--prompt native``, checked against the families' own code.

- positions: with the native prompt and the native variant, vniahd's position ids equal what the
  model's own ``get_rope_index`` (transformers) computes from the exported ``input_ids`` and grid
  tensors — for Qwen3-VL, Qwen3-VL-MoE, Qwen3.5 and GLM-4.1V. For Qwen2-VL and Qwen2.5-VL vniahd
  follows the authors' released ``get_rope_index`` (text after a video one past the largest
  position) where transformers 5.x starts it at ``S0 + max(H, W)``: a hand-computed table shows
  the two rules, and the exported sample differs from transformers exactly after the video;
- prompt text: the native markup equals what the family's processor writes for the same video
  (its ``replace_video_token``: Qwen3-VL's ``<t seconds>`` timestamps, GLM-4.1V's frame markers);
- logits: the export replayed through the stock ``*ForConditionalGeneration.forward`` equals
  vniahd's logits, and the log-probabilities the evaluator wrote with prefix sharing, chunked
  prefill and batching on, for every family (float32, ≤ 1e-4);
- the CLI runs ``--variant native --variant videorope --scoring choice`` and records the prompt
  layout and what ``native`` resolved to in run.json; the two prompt layouts never share a
  results directory.
"""

from __future__ import annotations

import json
import types

import pytest
import torch
from evaluate_fixtures import assert_same_outcomes, make_dataset

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.evaluation import EvalConfig, Runner, read_results
from vniahd.models import get_backend
from vniahd.rope import Text, Video, get_variant, layout_positions

FAMILIES = {
    "random:qwen2-vl": ("mrope", "mrope-blocks"),
    "random:qwen2.5-vl?hidden=64&heads=2": ("mrope-timed", "mrope-blocks"),
    "random:qwen3-vl": ("mrope-frames", "interleaved"),
    "random:qwen3-vl-moe": ("mrope-frames", "interleaved"),
    "random:qwen3.5": ("mrope-frames", "interleaved"),
    "random:glm-4.1v?heads=2": ("mrope-frames", "mrope-blocks"),
    "random:glm-4.5v?heads=2": ("mrope-frames", "mrope-blocks"),
    "random:qwen3.5-moe": ("mrope-frames", "interleaved"),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("native") / "ds")


@pytest.fixture(scope="module")
def backends():
    cache: dict[str, object] = {}

    def get(spec):
        if spec not in cache:
            cache[spec] = get_backend(spec)
        return cache[spec]

    return get


# ---- what native resolves to --------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_native_resolves_to_the_familys_layout_and_the_models_own_sections(dataset, backends, spec):
    be = backends(spec)
    runner = Runner(dataset, be, EvalConfig(variants=[get_variant("native")], progress=False), "unused")
    v = runner.variants[0]
    assert (v.name, v.layout, v.allocation) == ("native", *FAMILIES[spec])
    assert v.sections == tuple(be.rotary.sections)
    if v.layout == "mrope-timed":  # from the model config and the dataset (1 fps, one frame a group)
        assert v.layout_params == {"second_per_grid_t": 1.0, "tokens_per_second": 2.0}
    record = runner.run_record()["variants"]["native"]
    assert record["resolved_from"] == "native" and record["layout"] == v.layout


def test_native_needs_a_model_family():
    from vniahd.models.families import family_of

    with pytest.raises(VniahdError, match="tiny model is trained per variant"):
        family_of(types.SimpleNamespace(spec="tiny", family=None))
    with pytest.raises(VniahdError, match="only on a model"):
        get_variant("native").positions([Text(2)])
    with pytest.raises(VniahdError, match="takes no parameters"):
        get_variant("native", delta=2)


# ---- positions: Qwen2-VL, the authors' rule against transformers 5.x -----------------------------


def test_qwen2_vl_text_after_video_authors_rule_vs_transformers(backends):
    """3 text tokens, a video of T = 4 groups of 2 × 3 merged tokens, 2 text tokens. Authors'
    Qwen2-VL (transformers 4.45 get_rope_index): next = max over all positions + 1 = 3 + max(T, H,
    W) = 7. transformers 5.x: 3 + max(H, W) = 6, so the question reuses the last frame's t."""
    be = backends("random:qwen2-vl")
    frames = [(3 + f, 3 + r, 3 + c) for f in range(4) for r in range(2) for c in range(3)]
    text_before = [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    authors = text_before + frames + [(7, 7, 7), (8, 8, 8)]
    transformers_5 = text_before + frames + [(6, 6, 6), (7, 7, 7)]

    ours = layout_positions("mrope", [Text(3), Video(4, 2, 3), Text(2)])
    assert [tuple(int(x) for x in ours[:, i]) for i in range(ours.shape[1])] == authors

    ids = torch.zeros(1, 3 + 24 + 2, dtype=torch.long)
    mm = torch.zeros_like(ids, dtype=torch.int32)
    mm[0, 3:27] = 2  # video tokens
    merge = be.model.config.vision_config.spatial_merge_size
    theirs, _ = be.model.model.get_rope_index(
        ids, mm, video_grid_thw=torch.tensor([[4, 2 * merge, 3 * merge]])
    )
    assert [tuple(int(x) for x in theirs[:, 0, i]) for i in range(theirs.shape[2])] == transformers_5


# ---- the native prompt text is the family's processor's -----------------------------------------


def _processor_video_text(processor_cls, frames: int, fps: float, frames_per_group: int, **attrs):
    """What the family's processor's ``replace_video_token`` writes for a video of ``frames``
    temporal groups of 2 merged tokens each (one group = its frames; a one-frame group is that
    frame repeated, as the image processor pads it)."""
    from transformers.video_utils import VideoMetadata

    indices = [g * frames_per_group + k for g in range(frames) for k in range(frames_per_group)]
    if frames_per_group == 1:
        indices = [i for i in indices for _ in range(2)]  # the frame repeated to fill the group
    proc = types.SimpleNamespace(
        video_processor=types.SimpleNamespace(merge_size=2, temporal_patch_size=2), **attrs
    )
    if hasattr(processor_cls, "_calculate_timestamps"):
        proc._calculate_timestamps = lambda *a: processor_cls._calculate_timestamps(proc, *a)
    if hasattr(processor_cls, "replace_frame_token_id"):
        proc.replace_frame_token_id = lambda *a, **k: processor_cls.replace_frame_token_id(proc, *a, **k)
    video_inputs = {
        "video_grid_thw": torch.tensor([[frames, 2, 4]]),  # 2 merged tokens per group
        "video_metadata": [VideoMetadata(total_num_frames=len(indices), fps=fps, frames_indices=indices)],
    }
    return processor_cls.replace_video_token(proc, video_inputs, 0)


@pytest.mark.parametrize("fps, frames_per_group", [(1.0, 1), (2.0, 2), (0.5, 1)])
def test_qwen3_vl_markup_equals_its_processor(fps, frames_per_group):
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    from vniahd.evaluation.execution.prompt_layout import PromptLayout
    from vniahd.models.families import FAMILIES

    layout = PromptLayout(
        "native", markup=FAMILIES["qwen3_vl"].markup, fps=fps, frames_per_group=frames_per_group
    )
    texts = layout.texts("", "", 12)
    ours = "".join(t + "<|video_pad|>" * 2 for t in texts[:-1]) + texts[-1]
    theirs = _processor_video_text(
        Qwen3VLProcessor,
        12,
        fps,
        frames_per_group,
        vision_start_token="<|vision_start|>",
        vision_end_token="<|vision_end|>",
        video_token="<|video_pad|>",
    )
    # the released processor replaces the chat template's whole
    # <|vision_start|><|video_pad|><|vision_end|> by the per-frame markup
    assert ours == theirs
    assert ours.startswith("<0.0 seconds><|vision_start|>" if frames_per_group == 1 else "<0.2 seconds>")


def test_transformers_5_keeps_the_chat_templates_outer_markers_around_qwen3_vl_frames():
    """transformers 5.x's generic text expansion replaces only <|video_pad|>, so the chat
    template's <|vision_start|> … <|vision_end|> stays around the per-frame markup; the released
    processor replaced the whole triple. vniahd's native prompt is the released one
    (docs/footguns.md)."""
    from transformers.processing_utils import ProcessorMixin

    from vniahd.evaluation.execution.prompt_layout import PromptLayout
    from vniahd.models.families import FAMILIES

    texts = PromptLayout("native", markup=FAMILIES["qwen3_vl"].markup, fps=1.0).texts("", "", 2)
    per_frame = "".join(t + "<|video_pad|>" for t in texts[:-1]) + texts[-1]
    chat = "A<|vision_start|><|video_pad|><|vision_end|>B"  # what Qwen3-VL's chat template writes
    proc = types.SimpleNamespace(
        video_token="<|video_pad|>",
        image_token="<|image_pad|>",
        all_special_multimodal_tokens=["<|image_pad|>", "<|video_pad|>"],
    )
    (expanded,), _ = ProcessorMixin.get_text_with_replacements(proc, [chat], videos_replacements=[per_frame])
    assert expanded == "A<|vision_start|>" + per_frame + "<|vision_end|>B"  # transformers 5.x
    assert expanded != "A" + per_frame + "B"  # the released processor, and vniahd


@pytest.mark.parametrize("fps, frames_per_group", [(1.0, 1), (2.0, 2), (0.5, 1)])
def test_glm_markup_equals_its_processor(fps, frames_per_group):
    from transformers.models.glm4v.processing_glm4v import Glm4vProcessor

    from vniahd.evaluation.execution.prompt_layout import PromptLayout
    from vniahd.models.families import FAMILIES

    layout = PromptLayout(
        "native", markup=FAMILIES["glm4v"].markup, fps=fps, frames_per_group=frames_per_group
    )
    texts = layout.texts("", "", 12)
    ours = "".join(t + "<|image|>" * 2 for t in texts[:-1]) + texts[-1]
    theirs = _processor_video_text(Glm4vProcessor, 12, fps, frames_per_group, image_token="<|image|>")
    # GLM-4.1V's chat template writes <|begin_of_video|><|video|><|end_of_video|>
    assert ours == "<|begin_of_video|>" + theirs + "<|end_of_video|>"


def test_qwen2_vl_markup_wraps_the_video_and_image_mode_wraps_each_frame():
    from vniahd.evaluation.execution.prompt_layout import PromptLayout
    from vniahd.models.families import FAMILIES
    from vniahd.rope.segments import frame_segments

    markup = FAMILIES["qwen2_vl"].markup
    video = PromptLayout("native", markup=markup).texts("A", "B", 3)
    assert video == ["A<|vision_start|>", "", "", "<|vision_end|>B"]
    image = PromptLayout("native", frame_mode="image", markup=markup).texts("A", "B", 2)
    assert image == ["A<|vision_start|>", "<|vision_end|><|vision_start|>", "<|vision_end|>B"]
    # frames with no text between them stay one video; text between them makes one-frame grids
    assert frame_segments([3, 0, 0, 2], (2, 3), "video", 1) == [Text(3), Video(3, 2, 3), Text(3)]
    assert frame_segments([3, 4, 0, 2], (2, 3), "video", 0) == [
        Text(3),
        Video(1, 2, 3),
        Text(4),
        Video(2, 2, 3),
        Text(2),
    ]


# ---- replay through the stock forward and the stock get_rope_index ------------------------------


def _replay(be, out):
    """The stock forward on the exported files (the random model's byte vocabulary needs its
    placeholder ids set), and its own get_rope_index on the same files."""
    from safetensors.torch import load_file

    meta = json.loads(out.with_name(out.name + ".json").read_text())
    model = be.model
    model.config.image_token_id = meta["image_token_id"]
    model.config.video_token_id = meta["video_token_id"]
    tensors = load_file(str(out))
    with torch.inference_mode():
        logits = model(**tensors).logits[0, meta["scored_rows"]].float()
    grids = {
        k: tensors[k] for k in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts") if k in tensors
    }
    positions, _ = model.model.get_rope_index(tensors["input_ids"], tensors["mm_token_type_ids"], **grids)
    return meta, tensors, logits, positions[:, 0].float()


@pytest.mark.integration
@pytest.mark.parametrize("spec", list(FAMILIES))
def test_native_replay_equals_vniahd_and_the_models_own_positions(dataset, backends, tmp_path, spec):
    from safetensors.torch import load_file

    from vniahd.evaluation.export import export_inputs

    be = backends(spec)
    mc = dataset.samples[dataset.samples["needle_id"] == "mc"]
    sample = str(mc["sample_id"].iloc[-1])  # multiple choice; needle and distractor inside
    out = tmp_path / "s.safetensors"
    rec = export_inputs(dataset, be, get_variant("native"), sample, out, scoring="choice", prompt="native")
    assert rec["allocation"]["native"] and rec["prompt_layout"]["name"] == "native"
    meta, tensors, logits, theirs = _replay(be, out)
    want = load_file(str(out.with_name(out.name + ".expected.safetensors")))["expected_logits"]
    torch.testing.assert_close(logits, want, atol=1e-4, rtol=0)

    ours = tensors["position_ids"][:, 0]
    video = (tensors["mm_token_type_ids"][0] == 2).nonzero()[:, 0]
    assert len(video) > 0  # the frames went as one video, as the processor hands one over
    if FAMILIES[spec][0] == "mrope-frames":  # transformers computes what the authors' code does
        assert torch.equal(ours, theirs)
    else:  # Qwen2-VL / Qwen2.5-VL: equal up to the video's end; after it the authors' rule
        end = int(video[-1]) + 1
        assert torch.equal(ours[:, :end], theirs[:, :end])
        t_last = float(ours[0, end - 1])  # the last frame's t
        gh, gw = (int(x) // 2 for x in tensors["video_grid_thw"][0, 1:])
        start = float(ours[0, int(video[0])])  # S0: the first visual token's t
        # <|vision_end|>, the first text token after the video
        assert float(ours[0, end]) == max(t_last + 1, start + gh, start + gw)
        assert float(theirs[0, end]) == start + max(gh, gw)
        assert bool((ours[:, end:] > theirs[:, end:]).all())

    # the evaluator (prefix sharing, 7-token prefill chunks, batches of 4) wrote the same numbers
    settings = EvalConfig(
        variants=[get_variant("native")],
        scoring="choice",
        progress=False,
        prompt="native",
        batch_size=4,
        prefill_chunk=7,
    )
    Runner(dataset, be, settings, tmp_path / "r").run()
    (line,) = [r for r in read_results(tmp_path / "r") if r["sample_id"] == sample]
    logprobs = torch.log_softmax(logits[-1], dim=-1)
    letters = {k: be.tokenizer.encode(k) for k in line["option_logprobs"]}
    # the export scores the sample alone, the run in packed batches (other rounding): the same
    # verdict unless two options are closer than the rounding drift
    alone = torch.log_softmax(want[-1], dim=-1)
    exported = {k: float(alone[ids[0]]) for k, ids in letters.items()}
    assert_same_outcomes({0: line}, {0: {**rec, "option_logprobs": exported}}, tol=1e-4)
    for letter, lp in line["option_logprobs"].items():
        assert lp == pytest.approx(float(logprobs[letters[letter][0]]), abs=1e-4)


@pytest.mark.integration
@pytest.mark.parametrize(
    "spec", ["random:qwen3-vl", "random:glm-4.1v?heads=2", "random:qwen2.5-vl?hidden=64&heads=2"]
)
def test_native_prompt_shares_prefixes_and_equals_scoring_alone(dataset, backends, tmp_path, spec):
    """With text between the frames (timestamps, frame markers) the shared prefix stops before
    the text after a sample's last shared frame: prefix sharing, chunked prefill and batching
    give what scoring every sample alone gives, and prefixes are still reused."""
    from test_models_own_forward import assert_fast_equals_alone

    variants = [get_variant("native"), get_variant("videorope")]
    stats = assert_fast_equals_alone(dataset, backends(spec), variants, tmp_path, prompt="native")
    assert stats["reused_tokens"] > 0


@pytest.mark.parametrize("spec", ["random:qwen2-vl", "random:glm-4.1v?heads=2"])
def test_native_prompt_in_image_mode_wraps_each_frame_as_an_image(dataset, tmp_path, spec):
    """--frame-mode image: every frame is an image with the family's image markers; the stock
    forward and get_rope_index agree with vniahd (one-frame grids, so no after-video rule)."""
    from safetensors.torch import load_file

    from vniahd.evaluation.export import export_inputs

    be = get_backend(spec, frame_mode="image")
    sample = str(dataset.samples["sample_id"].iloc[-1])
    out = tmp_path / "s.safetensors"
    export_inputs(dataset, be, get_variant("native"), sample, out, scoring="choice", prompt="native")
    meta, tensors, logits, theirs = _replay(be, out)
    want = load_file(str(out.with_name(out.name + ".expected.safetensors")))["expected_logits"]
    torch.testing.assert_close(logits, want, atol=1e-4, rtol=0)
    assert "image_grid_thw" in tensors and torch.equal(tensors["position_ids"][:, 0], theirs)
    start = be.tokenizer.encode(FAMILIES_MARKUP[spec])
    ids = tensors["input_ids"][0].tolist()
    assert ids.count(start[0]) == int(tensors["image_grid_thw"].shape[0])  # one marker per frame


FAMILIES_MARKUP = {"random:qwen2-vl": "<|vision_start|>", "random:glm-4.1v?heads=2": "<|begin_of_image|>"}


# ---- the CLI and run.json -----------------------------------------------------------------------


def _eval(ds, out, model, *extra):
    return main(
        [
            "eval",
            "--dataset",
            str(ds.path),
            "--model",
            model,
            "--variant",
            "native",
            "--variant",
            "videorope",
            "--scoring",
            "choice",
            "--out",
            str(out),
            "--limit",
            "4",
            "--no-progress",
            *extra,
        ]
    )


def test_cli_records_the_prompt_layout_and_refuses_mixing_them(dataset, tmp_path, capsys):
    out = tmp_path / "r"
    assert _eval(dataset, out, "random:qwen3-vl", "--prompt", "native") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["prompt_layout"]["name"] == "native" and run["prompt_layout"]["family"] == "Qwen3-VL"
    assert run["prompt_layout"]["markup"]["frame_before"] == "<{t:.1f} seconds><|vision_start|>"
    native = run["variants"]["native"]
    assert (native["resolved_from"], native["layout"], native["allocation"]) == (
        "native",
        "mrope-frames",
        "interleaved",
    )
    assert {r["variant"] for r in read_results(out)} == {"native", "videorope"}
    capsys.readouterr()
    assert _eval(dataset, out, "random:qwen3-vl") == 2  # --prompt reference into a native dir
    assert "prompt_layout.name" in capsys.readouterr().err


def test_reports_keep_the_two_prompt_layouts_apart(dataset, tmp_path):
    """Same dataset, model and variant names, the two prompt layouts: a report pools neither."""
    from vniahd.reporting.load import load_inputs

    for prompt in ("reference", "native"):
        settings = EvalConfig(
            variants=[get_variant("native")], scoring="choice", limit=3, progress=False, prompt=prompt
        )
        Runner(dataset, get_backend("random:qwen3-vl"), settings, tmp_path / prompt).run()
    loaded = load_inputs([tmp_path / "reference", tmp_path / "native"])
    counts = loaded.records.groupby("variant").size().to_dict()
    assert counts == {"native": 3, "native [native prompt]": 3}


def test_cli_rejects_native_where_there_is_none(dataset, tmp_path, capsys):
    assert main(["positions", "--variant", "native"]) == 2
    assert "only on a model" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("spec", list(FAMILIES))
def test_cli_native_and_videorope_run_for_every_family(dataset, tmp_path, spec):
    """The acceptance command, default (reference) prompt: frames spliced, native positions."""
    out = tmp_path / "r"
    assert _eval(dataset, out, spec) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["prompt_layout"] == {"name": "reference"}
    assert run["variants"]["native"]["layout"] == FAMILIES[spec][0]
    assert len(read_results(out)) == 8


def test_old_run_json_without_a_prompt_layout_is_the_reference_one():
    from vniahd.records import RunManifest

    old = RunManifest({"prompt_template": {"name": "reference"}})
    assert (
        old.mismatches({"prompt_template": {"name": "reference"}, "prompt_layout": {"name": "reference"}})
        == []
    )
    assert old.mismatches(
        {"prompt_template": {"name": "reference"}, "prompt_layout": {"name": "native"}}
    ) == [("prompt_layout.name", "reference", "native")]
