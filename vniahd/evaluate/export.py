"""Replay one scored sample with transformers alone: the inputs of the stock forward, and what
vniahd computed from them.

:func:`export_inputs` writes three files for one (sample, variant):

- ``FILE`` (safetensors): keyword arguments of the family's stock ``*ForConditionalGeneration
  .forward`` — ``input_ids`` with the model's own image placeholder token wherever a temporal group
  goes (one image per group, as its processor lays out an image), ``pixel_values`` and
  ``image_grid_thw`` (the rows its processor would give; tested equal in
  ``tests/test_models_own_forward.py``), vniahd's ``position_ids`` ``[3, 1, L]``, ``attention_mask``
  and, where the forward takes it, ``mm_token_type_ids``;
- ``FILE.json``: sample, variant, scoring, the rows that were scored, the token id used as image
  placeholder, for choice scoring each option's token ids, the allocation (and whether the
  model's own rotary module already does it), and vniahd's ``prediction`` / ``correct`` (those
  of the results line for that sample);
- ``FILE.expected.safetensors``: the logits vniahd computed at the scored rows.

``model(**load_file(FILE)).logits[0, scored_rows]`` then equals the expected logits: the model's own
splice, vision tower (DeepStack included) and LM head, from files a user can inspect. A variant
whose allocation is not the model's own needs it installed first
(``vniahd.rope.hf.install_allocation(model, axes)``; the JSON says so).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.files import write_json_atomic

#: The preset that is each native allocation (what the model's own rotary module computes).
NATIVE_PRESET = {"mrope-blocks": "mrope", "interleaved": "mrope-interleaved"}


def export_inputs(
    dataset: Any, backend: Any, variant: Any, sample_id: str, out: str | Path, scoring: str = "reference"
) -> dict[str, Any]:
    """Write the replay files for ``sample_id`` under ``variant`` (see the module docstring);
    returns the JSON record."""
    from safetensors.torch import save_file

    from vniahd.evaluate.runner import EvalSettings, Runner
    from vniahd.models.patchify import patchify_frames
    from vniahd.rope import get_variant, variant_axes

    if not hasattr(backend, "patch") or not hasattr(backend, "model"):
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
        dataset, backend, EvalSettings(variants=[variant], scoring=scoring, progress=False), out.parent
    )
    variant = runner.variants[0]  # timed layouts filled in from the data, as in an evaluation
    row = dataset.sample(sample_id).to_dict()
    hay = runner.cache.haystack(*runner.haystack_input())
    names = [row["needle_image"], *list(row.get("distractor_images") or [])]
    images = runner.cache.images({n: dataset.image(n) for n in names})
    prepared = runner.prepare(row, hay, images)
    inputs = runner.with_positions(prepared, variant)
    tok = backend.tokenizer
    # the text token ids the evaluator spliced around the frames
    before, after = prepared.source.before_ids, prepared.source.after_ids
    answer = list(inputs.answer_ids) if scoring == "reference" or not inputs.letters else []
    if scoring == "choice" and inputs.letters and any(len(ids) != 1 for ids in inputs.letter_ids or []):
        raise VniahdError("export-inputs replays choice scoring of single-token options only")

    # Pixels: one temporal group per slot, exactly the rows vniahd's encoder fed the tower.
    groups = dataset.groups(row)  # [T, F, H, W, 3]
    pixel_values, (_, gh, gw) = patchify_frames(groups, backend.patch)
    grid = torch.tensor([[1, gh, gw]] * len(groups), dtype=torch.long)
    placeholder = int(tok.token_id("<|image_pad|>"))
    tokens_per_group = (gh // backend.patch.merge_size) * (gw // backend.patch.merge_size)
    ids = before + [placeholder] * (len(groups) * tokens_per_group) + after + answer
    prompt_len = len(ids) - len(answer)
    if prompt_len != inputs.prompt_len:
        raise RuntimeError(f"export lays out {prompt_len} prompt tokens, the evaluator {inputs.prompt_len}")
    scored = list(range(prompt_len - 1, prompt_len - 1 + max(1, len(answer))))
    positions = inputs.positions[:, None, : len(ids)].to(torch.float32)
    tensors = {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "pixel_values": torch.from_numpy(np.ascontiguousarray(pixel_values)).to(torch.float32),
        "image_grid_thw": grid,
        "position_ids": positions.contiguous(),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
    }
    if "mm_token_type_ids" in inspect.signature(backend.model.forward).parameters:
        mm = torch.zeros(1, len(ids), dtype=torch.int32)
        mm[0, len(before) : len(before) + len(groups) * tokens_per_group] = 1  # 1 = image token
        tensors["mm_token_type_ids"] = mm

    # What vniahd computes on the same input: the spliced rows at its positions, its head.
    from vniahd.evaluate.scoring import score

    prompt = inputs.embeds
    assert isinstance(prompt, torch.Tensor)  # prepared eagerly above
    with backend.use_variant(variant) as applied, torch.inference_mode():
        emb = prompt if not answer else torch.cat([prompt, backend.embed_text(answer)])
        hidden = backend.hidden_states(emb[None], inputs.positions[:, None, : len(emb)])
        expected = backend.logits(hidden[0, scored]).float().cpu()
        result = score(backend, inputs, scoring)
    native_axes = variant_axes(get_variant(NATIVE_PRESET[backend.rotary.native_allocation]), backend.rotary)
    is_native = bool(torch.equal(variant_axes(variant, backend.rotary), native_axes))
    expected_file = out.with_name(out.name + ".expected.safetensors")
    save_file(tensors, str(out))
    save_file({"expected_logits": expected.contiguous()}, str(expected_file))
    record = {
        "sample_id": sample_id,
        "variant": variant.name,
        "variant_spec": variant.to_dict(),
        "scoring": scoring,
        "model": backend.spec,
        "model_class": type(backend.model).__name__,
        "scored_rows": scored,
        "image_token_id": placeholder,
        # choice scoring: log_softmax(logits[scored row]) at these ids is each option's log-prob
        "option_token_ids": (
            dict(zip(inputs.letters, inputs.letter_ids or []))
            if scoring == "choice" and inputs.letters
            else None
        ),
        "allocation": {**applied, "native": is_native},
        "replay_needs_allocation": None if is_native else applied["axes"],
        "expected_logits": expected_file.name,
        "prediction": result.prediction,
        "correct": bool(result.correct),
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    write_json_atomic(out.with_name(out.name + ".json"), json.loads(json.dumps(record, default=str)))
    return record
