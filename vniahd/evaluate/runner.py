"""The resumable evaluation runner: dataset × backend × variants → results directory.

Per sample (variant-independent, :meth:`Runner.prepare`): the frame refs of the sample, their
cached embeddings gathered from the host memmap and moved to the device, the prompt text
embeddings around them (spliced, no vision start/end tokens), the answer / option token ids, and
the sequence segments ``[Text(before), Video(T, H, W) | T × Image(H, W), Text(after + room)]``.

Per (variant, sample) (:meth:`Runner.score_sample`): ``variant.positions(segments)`` → position
ids ``[3, 1, S]``, the variant's allocation already installed in the text rotary module, then the
scoring mode. Positions always come from :mod:`vniahd.rope`, never from transformers'
``get_rope_index``.

Order: variants outer (one allocation swap each); inside, samples grouped by length (ascending)
and ordered by their first inserted slot (:func:`order_samples`), so that samples sharing a
haystack prefix are adjacent — the order prefix sharing needs. Results are appended one line per
(sample, variant, scoring) as each finishes; a rerun skips the keys already present.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from vniahd.errors import VniahdError
from vniahd.evaluate.cache import EmbeddingCache
from vniahd.evaluate.prompt import TEMPLATES, PromptTemplate
from vniahd.evaluate.results import (
    ResultsWriter,
    check_and_write_run,
    read_results,
    result_key,
)
from vniahd.evaluate.scoring import SCORING_MODES, SampleInputs, score

#: Allocations whose section counts follow the model's own mrope_section when the variant fixes
#: none ("counts stay equal to M-RoPE's", DESIGN §2).
_MODEL_SECTION_ALLOCATIONS = ("mrope-blocks", "lta", "lta-sequential")


@dataclass
class EvalSettings:
    variants: list  # vniahd.rope.Variant
    scoring: str = "reference"
    limit: int | None = None
    template: PromptTemplate = field(default_factory=lambda: TEMPLATES["reference"])
    max_new_tokens: int = 8
    results_file: str = "results.jsonl"
    encode_chunk: int = 16
    cache_root: str | Path | None = None
    progress: bool = True


@dataclass
class Prepared:
    """One sample ready for scoring under any variant."""

    row: dict
    inputs: SampleInputs
    segments: list
    num_frames: int

    @property
    def sample_id(self) -> str:
        return str(self.row["sample_id"])


def first_inserted_slot(row: dict) -> int:
    slots = [int(row["needle_slot"])] + [int(s) for s in (row.get("distractor_slots") or [])]
    return min(slots)


def order_samples(rows: Iterable[dict]) -> list[dict]:
    """Group by length (ascending), then by first inserted slot, then sample id."""
    return sorted(rows, key=lambda r: (int(r["length"]), first_inserted_slot(r), str(r["sample_id"])))


def length_groups(rows: Sequence[dict]) -> list[tuple[int, list[dict]]]:
    """Consecutive (length, rows) groups of an ordered sample list."""
    groups: list[tuple[int, list[dict]]] = []
    for r in rows:
        if groups and groups[-1][0] == int(r["length"]):
            groups[-1][1].append(r)
        else:
            groups.append((int(r["length"]), [r]))
    return groups


def resolve_variant(variant, backend, fps: float | None):
    """Fill a timed layout's defaults from the data: one temporal group is one dataset frame, so
    ``second_per_grid_t = 1/fps``; ``tokens_per_second`` comes from the model config."""
    if variant.layout != "mrope-timed":
        return variant
    from vniahd.rope import get_layout

    defaults = dict(get_layout("mrope-timed").defaults)
    if dict(variant.layout_params) != defaults:
        return variant  # the user set them explicitly
    params = dict(defaults)
    if fps:
        params["second_per_grid_t"] = 1.0 / float(fps)
    if "tokens_per_second" in backend.layout_params:
        params["tokens_per_second"] = float(backend.layout_params["tokens_per_second"])
    return dataclasses.replace(variant, layout_params=params)


def effective_sections(variant, rotary) -> tuple[int, int, int] | None:
    if variant.allocation == "uniform":
        return None
    if variant.sections is None and variant.allocation in _MODEL_SECTION_ALLOCATIONS:
        return tuple(rotary.sections)
    return variant.sections_for(rotary.num_pairs)


def variant_axes(variant, rotary) -> torch.Tensor:
    """Axis per rotary pair for ``variant`` on a model with ``rotary`` (see
    :func:`effective_sections`: the model's own sections unless the variant fixes them)."""
    from vniahd.rope import allocation_axes

    return allocation_axes(variant.allocation, rotary.num_pairs, effective_sections(variant, rotary))


def build_segments(n_before: int, frames: int, grid: tuple[int, int], n_after: int, frame_mode: str):
    from vniahd.rope import Image, Text, Video

    if frame_mode == "video":
        visual = [Video(frames, grid[0], grid[1])]
    else:
        visual = [Image(grid[0], grid[1]) for _ in range(frames)]
    return [Text(n_before), *visual, Text(n_after)]


class Runner:
    """Evaluate ``dataset`` with ``backend`` into ``out_dir`` (see module docstring)."""

    def __init__(self, dataset, backend, settings: EvalSettings, out_dir: str | Path,
                 on_result: Callable[[dict], None] | None = None):
        if settings.scoring not in SCORING_MODES:
            from vniahd.errors import UnknownNameError

            raise UnknownNameError("scoring mode", settings.scoring, SCORING_MODES)
        if not settings.variants:
            raise VniahdError("no --variant given; name at least one (e.g. --variant mrope)")
        names = [v.name for v in settings.variants]
        if len(set(names)) != len(names):
            raise VniahdError(f"variant names repeat in {names}; give each variant once")
        self.dataset = dataset
        self.backend = backend
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.on_result = on_result
        self.fps = dataset.config.get("fps")
        self.variants = [resolve_variant(v, backend, self.fps) for v in settings.variants]
        self.cache = EmbeddingCache(backend, dataset.frame_size, root=settings.cache_root,
                                    chunk=settings.encode_chunk, progress=settings.progress)
        self.grid = self.cache.grid
        self.tokenizer = backend.tokenizer
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    # ---- plan ----------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The samples to evaluate (the first ``limit`` in dataset order), in run order."""
        df = self.dataset.samples
        records = df.to_dict("records")
        if self.settings.limit is not None:
            records = records[: max(0, int(self.settings.limit))]
        return order_samples(records)

    def run_record(self) -> dict:
        ds = self.dataset
        cfg = ds.config
        return {
            "dataset": {"path": str(Path(ds.path).resolve()), "fingerprint": ds.fingerprint,
                        "haystack_key": ds.haystack_key, "frame_size": list(ds.frame_size),
                        "num_samples": int(len(ds.samples)),
                        **{k: cfg.get(k) for k in ("schedule", "period", "fps", "seed", "lengths",
                                                   "depths") if k in cfg}},
            "model": self.backend.describe(),
            "variants": {v.name: {**v.to_dict(),
                                  "effective_sections": (list(s) if (s := effective_sections(v, self.backend.rotary)) else None),
                                  "axes": "".join("thw"[int(a)] for a in variant_axes(v, self.backend.rotary))}
                         for v in self.variants},
            "frame_mode": self.backend.options.frame_mode,
            "tokens_per_frame": self.cache.tokens_per_frame,
            "visual_grid": list(self.grid),
            "encoder_key": self.cache.key,
            "prompt_template": self.settings.template.to_dict(),
            "scoring": [self.settings.scoring],
            "generate": {"max_new_tokens": self.settings.max_new_tokens},
            "runs": [{"started_utc": _utc(), "variants": [v.name for v in self.variants],
                      "scoring": self.settings.scoring, "limit": self.settings.limit}],
            "provenance": _provenance(),
        }

    # ---- per sample ----------------------------------------------------------------------
    def _question(self, needle) -> str:
        from vniahd.needles import prompt_text

        return prompt_text(needle)

    def prepare(self, row: dict, haystack, images: dict) -> Prepared:
        """Embeddings, token ids and segments of one sample (variant-independent)."""
        be = self.backend
        needle = self.dataset.needles[row["needle_id"]]
        refs = self.dataset.frame_sequence(row)
        before = self.tokenizer.encode(self.settings.template.before)
        after = self.tokenizer.encode(self.settings.template.render_after(self._question(needle)))
        answer_ids = self.tokenizer.encode(needle.answer)
        letters = letter_ids = None
        if needle.options:
            from vniahd.needles.schema import option_letter

            letters = [option_letter(i) for i in range(len(needle.options))]
            letter_ids = [self.tokenizer.encode(x) for x in letters]
        visual = self.cache.gather(refs, haystack, images).to(be.device)
        parts = [be.embed_text(before), visual, be.embed_text(after)] if before else \
            [visual, be.embed_text(after)]
        embeds = torch.cat([p.to(be.dtype) for p in parts], dim=0)
        room = max([len(answer_ids), self.settings.max_new_tokens] + [len(x) for x in letter_ids or []])
        segments = build_segments(len(before), len(refs), self.grid, len(after) + room,
                                  be.options.frame_mode)
        inputs = SampleInputs(embeds=embeds, positions=torch.empty(0), answer=needle.answer,
                              answer_ids=answer_ids, letters=letters, letter_ids=letter_ids)
        return Prepared(row=row, inputs=inputs, segments=segments, num_frames=len(refs))

    def score_sample(self, prepared: Prepared, variant) -> dict:
        """Score one prepared sample under ``variant`` (its allocation must be installed)."""
        be = self.backend
        start = time.perf_counter()
        if be.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(be.device)
        positions = variant.positions(prepared.segments).to(be.device)
        inputs = dataclasses.replace(prepared.inputs, positions=positions)
        result = score(be, inputs, self.settings.scoring, max_new_tokens=self.settings.max_new_tokens)
        row = prepared.row
        rec = {
            "sample_id": prepared.sample_id, "variant": variant.name, "scoring": self.settings.scoring,
            "model": be.spec, "length": int(row["length"]), "depth": float(row["depth"]),
            "needle_id": str(row["needle_id"]), "schedule": str(row.get("schedule", "")),
            "repeat": int(row.get("repeat", 0) or 0),
            "correct": bool(result.correct), "prediction": result.prediction, "answer": inputs.answer,
            "num_frames": prepared.num_frames, "tokens_per_frame": self.cache.tokens_per_frame,
            "num_tokens": inputs.prompt_len + (len(inputs.answer_ids) if self.settings.scoring == "reference" else 0),
            "frame_mode": be.options.frame_mode,
        }
        for key in ("option_logprobs", "raw_text", "fallback"):
            if key in result.extra:
                rec[key] = result.extra[key]
        if be.device.type == "cuda":
            torch.cuda.synchronize(be.device)
            rec["peak_mem_bytes"] = int(torch.cuda.max_memory_allocated(be.device))
        rec["seconds"] = round(time.perf_counter() - start, 4)
        return rec

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> dict:
        """Evaluate everything not yet in the results directory; returns :func:`summarize`."""
        check_and_write_run(self.out_dir, self.run_record())
        rows = self.rows()
        done = {result_key(r) for r in read_results(self.out_dir)}
        scoring = self.settings.scoring
        todo = {v.name: [r for r in rows if (str(r["sample_id"]), v.name, scoring) not in done]
                for v in self.variants}
        total = sum(len(x) for x in todo.values())
        if total:
            t0 = time.perf_counter()
            haystack = self.cache.haystack(self.dataset.haystack_frames(), self.dataset.haystack_key)
            needed = sorted({name for rs in todo.values() for r in rs
                             for name in [r["needle_image"], *(r.get("distractor_images") or [])]})
            images = self.cache.images({n: self.dataset.image(n) for n in needed})
            self.timings["encode"] = time.perf_counter() - t0
        bar = _bar(total, self.settings.progress)
        try:
            with ResultsWriter(self.out_dir / self.settings.results_file) as writer, torch.inference_mode():
                for variant in self.variants:
                    if not todo[variant.name]:
                        continue
                    t_var = time.perf_counter()
                    self.backend.install_allocation(variant_axes(variant, self.backend.rotary))
                    for row in todo[variant.name]:
                        bar.set_postfix_str(f"{variant.name} L={row['length']}", refresh=False)
                        rec = self.score_sample(self.prepare(row, haystack, images), variant)
                        writer.append(rec)
                        self.counts[variant.name] = self.counts.get(variant.name, 0) + 1
                        bar.update(1)
                        if self.on_result is not None:
                            self.on_result(rec)
                    self.timings[variant.name] = time.perf_counter() - t_var
        finally:
            bar.close()
        return summarize(read_results(self.out_dir), scoring=scoring,
                         variants=[v.name for v in self.variants])


def summarize(records: Sequence[dict], scoring: str | None = None,
              variants: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Accuracy per variant: ``{name: {"correct", "total", "accuracy"}}`` (one scoring mode)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if scoring is not None and r.get("scoring") != scoring:
            continue
        if variants is not None and r.get("variant") not in variants:
            continue
        d = out.setdefault(r["variant"], {"correct": 0, "total": 0})
        d["total"] += 1
        d["correct"] += int(bool(r["correct"]))
    for d in out.values():
        d["accuracy"] = d["correct"] / d["total"] if d["total"] else float("nan")
    if variants is not None:
        out = {v: out[v] for v in variants if v in out}
    return out


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluate", unit="sample", disable=not enabled or total == 0,
                dynamic_ncols=True)


def _utc() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _provenance() -> dict:
    from vniahd.provenance import provenance

    return provenance()
