"""A vniahd score equals what the model's own transformers code computes for the same input.

Everything vniahd does around the model — the cached vision embeddings spliced in without vision
start/end tokens, positions from vniahd.rope, the allocation swap, scoring only the answer rows —
is checked here against one call of the full ``Qwen2VLForConditionalGeneration`` /
``Qwen2_5_VLForConditionalGeneration``: token ids with the model's own video placeholder,
pixels from transformers' own image processor, the model's own splice and LM head.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluate_fixtures import make_dataset

from vniahd.evaluate import EvalSettings, Runner
from vniahd.models import get_backend
from vniahd.rope import get_variant


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("own") / "ds")


def own_logits(be, frames: np.ndarray, before: list[int], after: list[int], answer: list[int], positions):
    """Logits of the answer rows from the full model's own forward (its splice, its head)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    proc = Qwen2VLImageProcessorPil(patch_size=be.patch.patch_size, merge_size=be.patch.merge_size)
    px = proc(images=list(frames), return_tensors="np")  # each frame its own temporal group
    grids = px["image_grid_thw"]
    t, gh, gw = len(frames), int(grids[0][1]), int(grids[0][2])
    video = be.tokenizer.token_id("<|video_pad|>")
    be.model.config.video_token_id = video  # the random model's vocabulary is the byte tokenizer's
    tokens = t * (gh // be.patch.merge_size) * (gw // be.patch.merge_size)
    ids = before + [video] * tokens + after + answer
    with torch.inference_mode():
        out = be.model(
            input_ids=torch.tensor([ids]),
            pixel_values_videos=torch.from_numpy(px["pixel_values"]),
            video_grid_thw=torch.tensor([[t, gh, gw]]),
            position_ids=positions[:, None, : len(ids)].float(),
        )
    s = len(ids) - len(answer)
    return out.logits[0, s - 1 : s - 1 + len(answer)].float()


@pytest.mark.parametrize("spec", ["random:qwen2-vl", "random:qwen2.5-vl?hidden=64&heads=2"])
@pytest.mark.parametrize("name", ["mrope", "videorope", "vanilla"])
def test_answer_logits_equal_the_models_own_forward(dataset, tmp_path, spec, name):
    be = get_backend(spec)
    variant = get_variant(name)
    runner = Runner(dataset, be, EvalSettings(variants=[variant], progress=False), tmp_path / "out")
    row = runner.rows()[-1]  # the longest sample: needle and distractor inside
    hay = runner.cache.haystack(dataset.haystack_frames(), dataset.haystack_key)
    names = [row["needle_image"], *row["distractor_images"]]
    images = runner.cache.images({n: dataset.image(n) for n in names})
    prep = runner.prepare(row, hay, images)
    inputs = runner.with_positions(prep, runner.variants[0])
    s, answer = inputs.prompt_len, list(inputs.answer_ids)
    before = be.tokenizer.encode(runner.settings.template.before)
    after_start = len(before) + prep.num_frames * runner.cache.tokens_per_frame
    after_ids = be.tokenizer.encode(
        runner.settings.template.render_after(runner.builder.question(dataset.needles[row["needle_id"]]))
    )
    assert s == after_start + len(after_ids)
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        emb = torch.cat([inputs.embeds, be.embed_text(answer)])
        hidden = be.hidden_states(emb[None], inputs.positions[:, None, : len(emb)])
        ours = be.logits(hidden[0, s - 1 : s - 1 + len(answer)])
        if name != "mrope":  # the model has no such allocation of its own: apply ours to it too
            theirs = own_logits(be, dataset.frames(row), before, after_ids, answer, inputs.positions)
    if name == "mrope":  # M-RoPE is the model's native allocation: its own rotary module, untouched
        theirs = own_logits(be, dataset.frames(row), before, after_ids, answer, inputs.positions)
    # Same math, same kernels: equal to float32 rounding (bit-equal on the machines seen so far).
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # The comparison can see a position error: a random model barely depends on positions, yet
    # moving every stream by 3 from token 20 on moves the logits far beyond the tolerance.
    moved = inputs.positions.clone()
    moved[:, 20:] += 3
    with be.use_variant(runner.variants[0]), torch.inference_mode():
        hidden = be.hidden_states(emb[None], moved[:, None, : len(emb)])
        wrong = be.logits(hidden[0, s - 1 : s - 1 + len(answer)])
    assert (wrong - theirs).abs().max() > 1e-4
