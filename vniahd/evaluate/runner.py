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
and window offset, ordered by their first inserted slot (:func:`order_samples`), so that samples
sharing a haystack prefix are adjacent — the order prefix sharing needs. Results are appended one
line per (sample, variant, scoring) as each finishes; a rerun skips the keys already present.

At scale (defaults; issue 6):

- **prefix sharing** (:mod:`.prefix`): within a (variant, length, offset) group the KV cache of
  the common prefix is computed once and extended; each sample's suffix runs on top of it;
- **chunked prefill** (:mod:`.chunked`): at most ``prefill_chunk`` tokens per forward call;
- **batching**: consecutive short samples of a group run as one right-padded batch
  (``batch_size``; ``auto`` = while batch × longest suffix ≤ :data:`AUTO_BATCH_TOKENS`);
- **multi-process** (:mod:`.distributed`): under torchrun / accelerate each rank evaluates its
  share of the groups into ``results.rank{K}.jsonl``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from vniahd.errors import VniahdError
from vniahd.evaluate import distributed
from vniahd.evaluate.cache import EmbeddingCache
from vniahd.evaluate.chunked import default_prefill_chunk
from vniahd.evaluate.grouping import (  # noqa: F401  (re-exported: the runner's public helpers)
    first_inserted_slot,
    length_groups,
    order_samples,
    prefix_groups,
)
from vniahd.evaluate.memory import PeakMemory
from vniahd.evaluate.prefix import PromptSource, SharedPrefix, first_inserted_frame, fork_cache
from vniahd.evaluate.prompt import TEMPLATES, PromptTemplate
from vniahd.evaluate.results import (
    ResultsWriter,
    check_and_write_run,
    check_run,
    read_results,
    result_key,
)
from vniahd.evaluate.scoring import SCORING_MODES, Context, SampleInputs, batchable, score, score_batch
from vniahd.evaluate.variants import (  # noqa: F401  (re-exported)
    build_segments,
    effective_sections,
    resolve_variant,
    variant_axes,
)

#: ``batch_size="auto"``: grow a batch while (batch size × its longest suffix) stays within this
#: many tokens, up to :data:`AUTO_BATCH_MAX` samples — only short sequences batch (on a CPU the
#: per-call overhead of a tiny model dominates them; long ones gain nothing from batching).
AUTO_BATCH_TOKENS = 1024
AUTO_BATCH_MAX = 16


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
    prefix_sharing: bool = True
    prefill_chunk: int | None = None  # None = auto (chunked.DEFAULT_CHUNK by device); 0 = off
    batch_size: int | str = "auto"  # a number, or "auto" (see AUTO_BATCH_TOKENS)
    dist: distributed.DistInfo | None = None  # None = from the environment (RANK, WORLD_SIZE…)


@dataclass
class Prepared:
    """One sample ready for scoring under any variant."""

    row: dict
    inputs: SampleInputs
    segments: list
    num_frames: int
    source: PromptSource | None = None
    first_frame: int = 0  # first inserted frame = the end of the shareable prefix (in frames)

    @property
    def sample_id(self) -> str:
        return str(self.row["sample_id"])


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
        self.dist = settings.dist if settings.dist is not None else distributed.from_env()
        self.prefill_chunk = (default_prefill_chunk(backend.device) if settings.prefill_chunk is None
                              else max(0, int(settings.prefill_chunk)))
        self.batch_size = _check_batch_size(settings.batch_size)
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.prefix_stats = {"computed_tokens": 0, "reused_tokens": 0}

    # ---- plan ----------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The samples to evaluate (the first ``limit`` in dataset order), in run order."""
        df = self.dataset.samples
        records = df.to_dict("records")
        if self.settings.limit is not None:
            records = records[: max(0, int(self.settings.limit))]
        return order_samples(records)

    def evaluation_settings(self) -> dict:
        """How the work is scheduled (recorded in run.json; results do not depend on it)."""
        return {"prefix_sharing": bool(self.settings.prefix_sharing),
                "prefill_chunk": self.prefill_chunk, "batch_size": self.batch_size,
                "auto_batch_tokens": AUTO_BATCH_TOKENS, "auto_batch_max": AUTO_BATCH_MAX,
                "world_size": self.dist.world_size, "peak_mem_kind": PeakMemory(self.backend.device).kind}

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
            "evaluation": self.evaluation_settings(),
            "runs": [{"started_utc": _utc(), "variants": [v.name for v in self.variants],
                      "scoring": self.settings.scoring, "limit": self.settings.limit,
                      **self.evaluation_settings()}],
            "provenance": _provenance(),
        }

    def work_units(self, rows: Sequence[dict]) -> list[tuple[tuple, Any, list[dict]]]:
        """``(key, variant, rows)`` per (variant, length, offset) group, in run order."""
        groups = prefix_groups(rows)
        return [((vi, L, off), v, grp) for vi, v in enumerate(self.variants) for (L, off), grp in groups]

    def estimated_cost(self, group: Sequence[dict]) -> float:
        """FLOPs of a group under the prefix-shared schedule (approximate text lengths): the
        cost the multi-process split balances."""
        from vniahd.evaluate.flops import ModelShape

        tpf = self.cache.tokens_per_frame
        nb = len(self.tokenizer.encode(self.settings.template.before))
        try:
            shape = ModelShape.from_backend(self.backend)
            cost = shape.forward
        except (AttributeError, TypeError):
            def cost(n: int, past: int = 0) -> float:
                return float(n)
        total, prefix = 0.0, 0
        for r in group:
            first = nb + first_inserted_slot(r) * tpf if self.settings.prefix_sharing else 0
            seq = nb + int(r["num_frames"]) * tpf + 64  # ≈ question + answer tokens
            if first > prefix:
                total += cost(first - prefix, prefix)
                prefix = first
            total += cost(seq - first, first)
        return total

    def my_units(self, units):
        info = self.dist
        if not info.enabled:
            return units
        shares = distributed.assign([(key, self.estimated_cost(grp)) for key, _, grp in units],
                                    info.world_size)
        mine = set(shares[info.rank])
        return [u for u in units if u[0] in mine]

    # ---- per sample ----------------------------------------------------------------------
    def _question(self, needle) -> str:
        from vniahd.needles import prompt_text

        return prompt_text(needle)

    def prepare(self, row: dict, haystack, images: dict, lazy: bool = False) -> Prepared:
        """Embeddings, token ids and segments of one sample (variant-independent). ``lazy``:
        the prompt embeddings stay a :class:`PromptSource` (gathered chunk by chunk), else they
        are one tensor on the device."""
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
        source = PromptSource(be, self.cache, refs, haystack, images, before, after)
        room = max([len(answer_ids), self.settings.max_new_tokens] + [len(x) for x in letter_ids or []])
        segments = build_segments(len(before), len(refs), self.grid, len(after) + room,
                                  be.options.frame_mode)
        inputs = SampleInputs(embeds=source if lazy else source.materialize(), positions=torch.empty(0),
                              answer=needle.answer, answer_ids=answer_ids, letters=letters,
                              letter_ids=letter_ids)
        return Prepared(row=row, inputs=inputs, segments=segments, num_frames=len(refs),
                        source=source, first_frame=first_inserted_frame(refs))

    def with_positions(self, prepared: Prepared, variant) -> SampleInputs:
        positions = variant.positions(prepared.segments)
        return dataclasses.replace(prepared.inputs, positions=positions)

    def record(self, prepared: Prepared, variant, result, inputs: SampleInputs) -> dict:
        be = self.backend
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
        return rec

    def score_sample(self, prepared: Prepared, variant, ctx: Context | None = None) -> dict:
        """Score one prepared sample under ``variant`` (its allocation must be installed) on its
        own (no shared prefix unless ``ctx`` gives one)."""
        peak = PeakMemory(self.backend.device)
        start = time.perf_counter()
        peak.start()
        inputs = self.with_positions(prepared, variant)
        ctx = ctx or Context(chunk=self.prefill_chunk)
        result = score(self.backend, inputs, self.settings.scoring,
                       max_new_tokens=self.settings.max_new_tokens, ctx=ctx)
        rec = self.record(prepared, variant, result, inputs)
        rec.update(peak_mem_bytes=peak.read(), peak_mem_kind=peak.kind,
                   seconds=round(time.perf_counter() - start, 4))
        return rec

    # ---- one group -------------------------------------------------------------------------
    def batches(self, prepared: Sequence[Prepared]) -> list[list[Prepared]]:
        """Consecutive samples of one group cut into batches (see :data:`AUTO_BATCH_TOKENS`)."""
        mode = self.settings.scoring
        out: list[list[Prepared]] = []
        cur: list[Prepared] = []
        limit = AUTO_BATCH_MAX if self.batch_size == "auto" else int(self.batch_size)

        def suffix(batch: list[Prepared], p: Prepared) -> int:
            start = batch[0].source.prefix_tokens(batch[0].first_frame) if (
                batch and self.settings.prefix_sharing) else 0
            return p.inputs.prompt_len + len(p.inputs.answer_ids) - start

        for p in prepared:
            ok = limit > 1 and batchable(p.inputs, mode)
            if cur and ok:
                trial = cur + [p]
                longest = max(suffix(trial, q) for q in trial)
                fits = len(trial) <= limit and (self.batch_size != "auto" or len(trial) * longest <= AUTO_BATCH_TOKENS)
                if fits:
                    cur.append(p)
                    continue
            if cur:
                out.append(cur)
            cur = [p] if ok else []
            if not ok:
                out.append([p])
        if cur:
            out.append(cur)
        return out

    def run_group(self, variant, rows: Sequence[dict], haystack, images) -> Iterable[dict]:
        """Score a group's samples (same length and offset, ordered by first inserted slot) with
        a shared prefix; yields one record per sample as its batch finishes."""
        be = self.backend
        prepared = [self.prepare(r, haystack, images, lazy=True) for r in rows]
        sharing = self.settings.prefix_sharing
        prefix = SharedPrefix(be, self.prefill_chunk)
        peak = PeakMemory(be.device)
        batches = self.batches(prepared)
        for bi, batch in enumerate(batches):
            t0 = time.perf_counter()
            peak.start()
            inputs = [self.with_positions(p, variant) for p in batch]
            first = batch[0]
            start = 0
            if sharing:
                last = bi == len(batches) - 1
                if len(batch) == 1 and last:
                    # Nothing after this sample reuses its prefix: run its suffix from whatever
                    # the cache already holds instead of growing the cache first.
                    start = prefix.usable(first.source, first.first_frame)
                else:
                    start = prefix.advance(first.source, inputs[0].positions, first.first_frame)
                if len(batch) > 1 and not all(prefix.usable(p.source, p.first_frame) == start for p in batch):
                    start = 0  # not one shared prefix (cannot happen within a group; be safe)
            if len(batch) == 1:
                ctx = Context(prefix.cache if start else None, start, self.prefill_chunk)
                results = [score(be, inputs[0], self.settings.scoring,
                                 max_new_tokens=self.settings.max_new_tokens, ctx=ctx)]
            else:
                ctx = Context(fork_cache(be, prefix.cache, len(batch)) if start else None, start,
                              self.prefill_chunk)
                results = score_batch(be, inputs, self.settings.scoring, ctx)
                del ctx
            mem = peak.read()
            seconds = (time.perf_counter() - t0) / len(batch)
            self.prefix_stats["reused_tokens"] += start * len(batch)
            for p, inp, res in zip(batch, inputs, results):
                rec = self.record(p, variant, res, inp)
                # Schedule details (prefix reused, batch) stay out of the record: a resumed run
                # schedules differently but must write the same lines (seconds/memory aside).
                rec.update(peak_mem_bytes=mem, peak_mem_kind=peak.kind, seconds=round(seconds, 4))
                yield rec
        self.prefix_stats["computed_tokens"] += prefix.computed_tokens

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> dict:
        """Evaluate everything not yet in the results directory; returns :func:`summarize`."""
        info = self.dist
        record = self.run_record()
        if info.is_main:
            check_and_write_run(self.out_dir, record)
        distributed.barrier(info)
        if not info.is_main:
            check_run(self.out_dir, record)
        rows = self.rows()
        done = {result_key(r) for r in read_results(self.out_dir)}
        scoring = self.settings.scoring
        units = self.work_units(rows)

        def todo_of(unit) -> list[dict]:
            _, v, grp = unit
            return [r for r in grp if (str(r["sample_id"]), v.name, scoring) not in done]

        all_todo = [todo_of(u) for u in units]
        mine = [(u, t) for u in self.my_units(units) if (t := todo_of(u))]
        total = sum(len(t) for _, t in mine)
        haystack = images = None
        if any(all_todo):  # the same answer on every rank (done keys read before any rank writes)
            t0 = time.perf_counter()
            # Rank 0 fills the embedding cache for everyone; the others then read it from disk.
            if info.is_main:
                needed = _image_names(r for t in all_todo for r in t)
                haystack = self.cache.haystack(self.dataset.haystack_frames(), self.dataset.haystack_key)
                images = self.cache.images({n: self.dataset.image(n) for n in needed})
            distributed.barrier(info)
            if not info.is_main:
                needed = _image_names(r for _, t in mine for r in t)
                haystack = self.cache.haystack(self.dataset.haystack_frames(), self.dataset.haystack_key)
                images = self.cache.images({n: self.dataset.image(n) for n in needed})
            self.timings["encode"] = time.perf_counter() - t0
        bar = _bar(total, self.settings.progress,
                   f"evaluate[rank {info.rank}]" if info.enabled else "evaluate")
        results_file = info.results_file(self.settings.results_file)
        try:
            with ResultsWriter(self.out_dir / results_file) as writer, torch.inference_mode():
                installed = None
                for (key, variant, _), todo in mine:
                    if installed is not variant:
                        self.backend.install_allocation(variant_axes(variant, self.backend.rotary))
                        installed = variant
                    t_var = time.perf_counter()
                    bar.set_postfix_str(f"{variant.name} L={key[1]}", refresh=False)
                    for rec in self.run_group(variant, todo, haystack, images):
                        writer.append(rec)
                        self.counts[variant.name] = self.counts.get(variant.name, 0) + 1
                        bar.update(1)
                        if self.on_result is not None:
                            self.on_result(rec)
                    self.timings[variant.name] = self.timings.get(variant.name, 0.0) + time.perf_counter() - t_var
        finally:
            bar.close()
        distributed.barrier(info)
        return summarize(read_results(self.out_dir), scoring=scoring,
                         variants=[v.name for v in self.variants])


def _image_names(rows: Iterable[dict]) -> list[str]:
    return sorted({name for r in rows for name in [r["needle_image"], *(r.get("distractor_images") or [])]})


def _check_batch_size(value) -> int | str:
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise VniahdError(f"--batch-size must be a positive number or 'auto', got {value!r}")
    return n


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


def _bar(total: int, enabled: bool, desc: str = "evaluate"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled or total == 0,
                dynamic_ncols=True)


def _utc() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _provenance() -> dict:
    from vniahd.provenance import provenance

    return provenance()
