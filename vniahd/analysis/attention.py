"""Attention to the needle, per layer, per frequency band and per variant, for dataset samples.

For one sample and one variant the model runs its own forward pass on the prompt and the
teacher-forced answer (exactly the input reference scoring uses); every attention layer's rotated
queries and keys are pooled as they come (:mod:`vniahd.analysis.capture`), so a long sample holds
one layer at a time. Per layer and band (:mod:`vniahd.rope.bands`):

- ``frame_map`` F × F: ``[i][j]`` = attention weight (softmax over every key the query sees, from
  that band's logit terms), averaged over heads and over the visual tokens of query frame i,
  summed over the visual tokens of key frame j;
- ``mass``: the same for the answer positions' queries (the rows that predict the answer), summed
  over the needle frame(s), the distractor frame(s), the rest of the haystack and the text; the
  four parts sum to 1.

The returned dict is the ``vniahd attention --json`` contract.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vniahd.analysis.attention_math import channel_weights, pooled_attention
from vniahd.errors import VniahdError
from vniahd.records import Sample
from vniahd.rope.segments import Segment, Text

if TYPE_CHECKING:
    from vniahd.prompt_templates import PromptTemplate

MASS_PARTS = ("needle", "distractor", "haystack", "text")


def token_frames(segments: Sequence[Segment]) -> torch.Tensor:
    """Frame (temporal group) index of every token, counting frames across the prompt; −1 for text."""
    out: list[int] = []
    frame = 0
    for seg in segments:
        if isinstance(seg, Text):
            out += [-1] * seg.n
            continue
        per = seg.height * seg.width
        for _ in range(seg.frames):
            out += [frame] * per
            frame += 1
    return torch.tensor(out, dtype=torch.long)


def sample_attention(
    dataset: Any,
    backend: Any,
    variants: Sequence[Any],
    sample_id: str,
    bands: Sequence[str] = ("all", "temporal"),
    layers: Sequence[int] | None = None,
    chunk: int = 256,
    log: Callable[[str], None] | None = None,
    *,
    prompt: str = "reference",
    prompt_template: str | PromptTemplate = "reference",
) -> dict[str, Any]:
    """The ``--json`` record of one sample (module docstring) under each of ``variants``;
    ``prompt`` and ``prompt_template`` lay the prompt out as ``vniahd eval``'s options do."""
    from vniahd.evaluation import EvalConfig, Runner

    config = EvalConfig(
        variants=list(variants), progress=False, prompt=prompt, prompt_template=prompt_template
    )
    with tempfile.TemporaryDirectory() as tmp:  # the runner prepares inputs only; it writes nothing
        runner = Runner(dataset, backend, config, Path(tmp))
        return _sample_attention(runner, dataset, backend, sample_id, bands, layers, chunk, log)


def _sample_attention(
    runner: Any,
    dataset: Any,
    backend: Any,
    sample_id: str,
    bands: Sequence[str],
    layers: Sequence[int] | None,
    chunk: int,
    log: Callable[[str], None] | None,
) -> dict[str, Any]:
    row = dataset.sample(sample_id).to_dict()
    # slots count the video's temporal groups, which are the prompt's frames
    needle = sorted(Sample.from_row(row).needle_slots)
    distractor = sorted({int(s) for s in row.get("distractor_slots") or []})
    out: dict[str, Any] = {"model": backend.spec, "sample_id": str(sample_id)}
    records: dict[str, Any] = {}
    for variant in runner.variants:
        # inside the variant: a backend whose weights depend on it (the tiny model) embeds with them
        with backend.use_variant(variant), torch.inference_mode():
            prepared, _ = runner.sample_inputs(sample_id, variant)
            out.update(frames=prepared.num_frames, needle_frames=needle, distractor_frames=distractor)
            layers_out = _variant_layers(
                runner, prepared, variant, backend, (needle, distractor), bands, layers, chunk, log
            )
        records[variant.name] = {"layers": layers_out}
    out["variants"] = records
    return out


def _variant_layers(
    runner: Any,
    prepared: Any,
    variant: Any,
    backend: Any,
    marked: tuple[list[int], list[int]],
    bands: Sequence[str],
    layers: Sequence[int] | None,
    chunk: int,
    log: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    """The per-layer records of one variant (module docstring): one forward pass, pooled as it
    runs; called with the variant applied."""
    from vniahd.analysis.capture import rotated_qk
    from vniahd.rope.bands import band_pairs
    from vniahd.rope.model import variant_plan

    rot = backend.rotary
    num_frames = prepared.num_frames
    frames_of = token_frames(prepared.segments)
    inputs = runner.with_positions(prepared, variant)
    answer = list(inputs.answer_ids)
    prompt = inputs.prompt_len
    emb = torch.cat([inputs.prompt_rows(0, prompt), backend.embed_text(answer)])
    seq = len(emb)
    # the segments reserve room for answers after the prompt: text, like the answer rows
    groups = torch.cat([frames_of, torch.full((max(0, seq - len(frames_of)),), -1, dtype=torch.long)])[:seq]
    visual = torch.nonzero(groups >= 0).flatten()
    answer_rows = torch.arange(prompt - 1, prompt - 1 + len(answer))
    category = torch.full((seq,), 3, dtype=torch.long)  # text
    category[groups >= 0] = 2  # haystack
    for f in marked[1]:
        category[groups == f] = 1  # distractor
    for f in marked[0]:
        category[groups == f] = 0  # needle
    plan = variant_plan(variant, rot)
    weights: dict[str, torch.Tensor | None] = {
        band: None
        if band == "all"  # every channel: the model's own attention
        else channel_weights(
            band_pairs(plan, variant.stream_names, band), rot.head_dim, rot.num_pairs, rot.pair_layout, False
        )
        for band in bands
    }
    for band, w in weights.items():
        if w is not None and not bool(w.any()) and log:
            log(f"{variant.name} has no pairs in band {band!r}: its logits are all 0, a uniform softmax")
    rows_frame = groups[visual]
    per_frame = torch.bincount(rows_frame, minlength=num_frames).clamp(min=1)[:, None]
    records: list[dict[str, Any]] = []

    def on_layer(caught: Any) -> None:
        if layers is not None and caught.layer not in layers:
            return
        entry: dict[str, Any] = {"layer": caught.layer, "bands": {}}
        for band, w in weights.items():
            per_query = pooled_attention(
                caught.q, caught.k, caught.scaling, groups, num_frames, visual, w, chunk
            )
            frame_map = torch.zeros(num_frames, num_frames, dtype=torch.float64).index_add_(
                0, rows_frame, per_query
            )
            mass = pooled_attention(caught.q, caught.k, caught.scaling, category, 4, answer_rows, w, chunk)
            entry["bands"][band] = {
                "frame_map": (frame_map / per_frame).tolist(),
                "mass": dict(zip(MASS_PARTS, mass.mean(0).tolist())),
            }
        records.append(entry)
        if log:
            log(f"{variant.name}: layer {caught.layer} pooled")

    with rotated_qk(backend.language_model, on_layer):
        backend.hidden_states(emb[None], inputs.positions[:, None, :seq])
    if not records:
        raise VniahdError(f"no attention layer matched --layers {list(layers or [])}")
    return records
