"""Replay one scored sample with transformers alone: the inputs of the stock forward, and what
vniahd computed from them.

:func:`export_inputs` writes three files for one (sample, variant):

- ``FILE`` (safetensors): keyword arguments of the family's stock ``*ForConditionalGeneration
  .forward`` — ``input_ids`` with the model's own image placeholder token wherever a temporal group
  goes (one image per group, as its processor lays out an image), ``pixel_values`` and
  ``image_grid_thw`` (the rows its processor would give; tested equal in
  ``tests/test_models_own_forward.py``), vniahd's ``position_ids`` ``[3, 1, L]``, ``attention_mask``
  and, where the forward takes it, ``mm_token_type_ids``. With the ``native`` prompt layout (video
  mode) the frames go as one video instead, as the family's processor hands a video over: its
  video placeholder (GLM: ``<|image|>`` inside ``<|begin_of_video|>``), ``pixel_values_videos``,
  ``video_grid_thw`` ``[[T, H, W]]``, the family's markers and timestamps in ``input_ids``, and
  (Qwen2.5-VL) ``second_per_grid_ts``; so the family's own ``get_rope_index`` can be run on the
  same files (``tests/test_native.py``);
- ``FILE.json``: sample, variant, scoring, the prompt layout, the rows that were scored, the
  token ids used as image and video placeholders, for choice scoring each option's token ids, the
  allocation (and whether the model's own rotary module already does it), and vniahd's
  ``prediction`` / ``correct`` (those of the results line for that sample);
- ``FILE.expected.safetensors``: the logits vniahd computed at the scored rows.

``model(**load_file(FILE)).logits[0, scored_rows]`` then equals the expected logits: the model's own
splice, vision tower (DeepStack included) and LM head, from files a user can inspect. A variant
whose allocation is not the model's own needs it installed first:
``install_allocation(model, PairPlan(tensor(streams), tensor(scale, dtype=float64)))`` from the
JSON's ``replay_plan`` (``vniahd.rope.hf``, ``vniahd.rope.PairPlan``), which covers NoPE, scaled
and per-KV-head pairs.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.evaluation.config import EvalConfig
from vniahd.evaluation.execution.prompt_layout import text_chunks
from vniahd.evaluation.runner import Runner
from vniahd.evaluation.scoring import score
from vniahd.files import atomic_write, write_json_atomic
from vniahd.models.families import by_backend_family
from vniahd.models.patchify import patchify_frames
from vniahd.rope import allocation_axes, variant_plan
from vniahd.rope.hf import model_position_ids

#: The preset that is each native allocation (what the model's own rotary module computes).
NATIVE_PRESET = {"mrope-blocks": "mrope", "interleaved": "mrope-interleaved"}


def export_inputs(
    dataset: Any,
    backend: Any,
    variant: Any,
    sample_id: str,
    out: str | Path,
    scoring: str = "reference",
    prompt: str = "reference",
) -> dict[str, Any]:
    """Write the replay files for ``sample_id`` under ``variant`` with prompt layout ``prompt``
    (see the module docstring); returns the JSON record."""
    from safetensors.torch import save

    if not backend.stock_forward:
        raise VniahdError(
            f"{backend.spec} has no stock transformers forward to replay (the tiny model's frame "
            "encoder is vniahd's own); export inputs of an hf: or random: model"
        )
    if scoring not in ("reference", "choice"):
        raise VniahdError(
            f"export-inputs replays teacher-forced scoring; use --scoring reference or choice, not {scoring}"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runner = Runner(
        dataset,
        backend,
        EvalConfig(variants=[variant], scoring=scoring, progress=False, prompt=prompt),
        out.parent,
    )
    variant = runner.variants[0]  # timed layouts filled in from the data, as in an evaluation
    row = dataset.sample(sample_id).to_dict()
    prepared, inputs = runner.sample_inputs(sample_id, variant)
    tok = backend.tokenizer
    # the text token ids the evaluator laid out around (and, native, between) the frames
    chunks = text_chunks(prepared.source)
    layout = runner.prompt_layout
    answer = list(inputs.answer_ids) if scoring == "reference" or not inputs.letters else []
    if scoring == "choice" and inputs.letters and any(len(ids) != 1 for ids in inputs.letter_ids or []):
        raise VniahdError("export-inputs replays choice scoring of single-token options only")

    # Pixels: one temporal group per slot, exactly the rows vniahd's encoder fed the tower. The
    # reference prompt hands them over as one image per group; the native prompt in video mode
    # as one video of T groups, as the family's processor does (the tower's output is the same:
    # it attends within a group).
    groups = dataset.groups(row)  # [T, F, H, W, 3]
    pixel_values, (_, gh, gw) = patchify_frames(groups, backend.patch)
    as_video = layout.native and backend.options.frame_mode == "video"
    image_token, video_token = _placeholders(backend)
    placeholder = int(tok.token_id(video_token if as_video else image_token))
    kind = 2 if as_video else 1  # mm_token_type_ids: 1 = image token, 2 = video token
    tokens_per_group = (gh // backend.patch.merge_size) * (gw // backend.patch.merge_size)
    ids, types = list(chunks[0]), [0] * len(chunks[0])
    for chunk in chunks[1:]:
        ids += [placeholder] * tokens_per_group + list(chunk)
        types += [kind] * tokens_per_group + [0] * len(chunk)
    ids += answer
    types += [0] * len(answer)
    prompt_len = len(ids) - len(answer)
    if prompt_len != inputs.prompt_len:
        raise RuntimeError(f"export lays out {prompt_len} prompt tokens, the evaluator {inputs.prompt_len}")
    scored = list(range(prompt_len - 1, prompt_len - 1 + max(1, len(answer))))
    # a 4-stream variant (VRoPE) gets the extra row transformers needs (vniahd.rope.hf.model_position_ids)
    positions = model_position_ids(inputs.positions[:, None, : len(ids)].to(torch.float32))
    pixels = torch.from_numpy(np.ascontiguousarray(pixel_values)).to(torch.float32)
    tensors = {"input_ids": torch.tensor([ids], dtype=torch.long)}
    if as_video:
        tensors["pixel_values_videos"] = pixels
        tensors["video_grid_thw"] = torch.tensor([[len(groups), gh, gw]], dtype=torch.long)
    else:
        tensors["pixel_values"] = pixels
        tensors["image_grid_thw"] = torch.tensor([[1, gh, gw]] * len(groups), dtype=torch.long)
    tensors["position_ids"] = positions.contiguous()
    tensors["attention_mask"] = torch.ones(1, len(ids), dtype=torch.long)
    forward_args = inspect.signature(backend.model.forward).parameters
    if "mm_token_type_ids" in forward_args:
        tensors["mm_token_type_ids"] = torch.tensor([types], dtype=torch.int32)
    if as_video and "second_per_grid_ts" in forward_args and runner.fps:
        # Qwen2.5-VL: seconds per temporal group (its get_rope_index reads it; the forward does
        # not, since position_ids are given)
        seconds = float(runner.frames_per_group) / float(runner.fps)
        tensors["second_per_grid_ts"] = torch.tensor([seconds], dtype=torch.float32)

    # What vniahd computes on the same input: the spliced rows at its positions, its head.

    embeds = inputs.embeds
    assert isinstance(embeds, torch.Tensor)  # prepared eagerly above
    with backend.use_variant(variant) as applied, torch.inference_mode():
        emb = embeds if not answer else torch.cat([embeds, backend.embed_text(answer)])
        hidden = backend.hidden_states(emb[None], inputs.positions[:, None, : len(emb)])
        expected = backend.logits(hidden[0, scored]).float().cpu()
        result = score(backend, inputs, scoring)
    rot = backend.rotary  # what the model's own rotary module computes: its allocation, its sections
    native_axes = allocation_axes(rot.native_allocation, rot.num_pairs, rot.sections)
    plan = variant_plan(variant, backend.rotary)
    # a 4-stream layout never is the model's own, even where its pairs read streams 0..2
    native_streams = len(variant.stream_names) == 3
    is_native = plan.plain and native_streams and bool(torch.equal(plan.streams, native_axes))
    expected_file = out.with_name(out.name + ".expected.safetensors")
    # through atomic_write, like the JSON beside them: the umask's mode (safetensors' own
    # save_file creates 0600 files) and no half-written file if interrupted
    for path, content in ((out, tensors), (expected_file, {"expected_logits": expected.contiguous()})):
        with atomic_write(path) as fh:
            fh.write(save(content))
    record = {
        "sample_id": sample_id,
        "variant": variant.name,
        "variant_spec": variant.to_dict(),
        "scoring": scoring,
        "model": backend.spec,
        "model_class": type(backend.model).__name__,
        "scored_rows": scored,
        "prompt_layout": layout.record(),
        "image_token_id": int(tok.token_id(image_token)),
        "video_token_id": int(tok.token_id(video_token)),
        # choice scoring: log_softmax(logits[scored row]) at these ids is each option's log-prob
        "option_token_ids": (
            dict(zip(inputs.letters, inputs.letter_ids or []))
            if scoring == "choice" and inputs.letters
            else None
        ),
        "allocation": {**applied, "native": is_native},
        "replay_needs_allocation": None if is_native else applied["axes"],
        # what install_allocation(model, PairPlan(streams, scale)) needs: per pair (per KV head for
        # a per-head variant) the position stream it reads and its frequency multiplier (0 = NoPE)
        "replay_plan": None
        if is_native
        else {"streams": plan.streams.tolist(), "scale": plan.scale.tolist(), "per_head": plan.per_head},
        "expected_logits": expected_file.name,
        "prediction": result.prediction,
        # reference scoring: the argmax token at each answer position (the prediction decodes them)
        "predicted_ids": result.extra.get("predicted_ids"),
        "correct": bool(result.correct),
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    write_json_atomic(out.with_name(out.name + ".json"), json.loads(json.dumps(record, default=str)))
    return record


def _placeholders(backend: Any) -> tuple[str, str]:
    """The image and video placeholder tokens of the backend's family (Qwen's ``<|image_pad|>`` /
    ``<|video_pad|>`` for a model vniahd knows no family of)."""

    fam = by_backend_family(backend.family)
    if fam is None:
        return "<|image_pad|>", "<|video_pad|>"
    return fam.markup.image_token, fam.markup.video_token
