"""The resumable evaluation runner: dataset × backend × variants → results directory.

The loop, and what each step delegates to:

1. the work plan (:mod:`.work_plan`): samples ordered and grouped so that samples sharing a
   haystack prefix are adjacent, one unit per (variant, length, offset), this rank's share;
2. the embedding cache (:mod:`.cache`): haystack frames and needle images encoded once;
3. per variant, ``backend.use_variant(variant)``: the backend applies the variant (allocation,
   and for the tiny model that variant's own weights) and restores the model afterwards;
4. the group executor (:mod:`.executor`): samples built by :mod:`.samples`, prefix sharing,
   chunked prefill, batching, the scoring mode;
5. the result sink (:mod:`.sink`): one line per (sample, variant, scoring) as each finishes; a
   rerun skips the keys already present and writes byte-identical lines for the rest.

Multi-process runs (:mod:`.distributed`): under torchrun / accelerate each rank evaluates its
share of the units into ``results.rank{K}.jsonl``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.evaluation.config import EvalConfig, Summary, check_resume
from vniahd.evaluation.execution.chunked import default_prefill_chunk
from vniahd.evaluation.execution.embedding_cache import EmbeddingCache
from vniahd.evaluation.execution.executor import GroupExecutor
from vniahd.evaluation.execution.memory import PeakMemory, retain_freed_heap
from vniahd.evaluation.execution.prompt_layout import prompt_layout
from vniahd.evaluation.execution.samples import Prepared, SampleBuilder
from vniahd.evaluation.execution.variants import resolve_variant  # noqa: F401  (re-exported)
from vniahd.evaluation.planning import distributed
from vniahd.evaluation.planning.estimate import RunEstimate
from vniahd.evaluation.planning.work_plan import (  # noqa: F401  (re-exported: the runner's public helpers)
    AUTO_BATCH_MAX,
    AUTO_BATCH_MAX_EXTRA,
    AUTO_BATCH_TOKENS,
    Profile,
    WorkUnit,
    cost_profile,
    length_groups,
    my_units,
    order_samples,
    plan_units,
    prefix_groups,
)
from vniahd.evaluation.results.lock import ResultsLock
from vniahd.evaluation.results.sink import ResultSink
from vniahd.evaluation.results.store import (
    check_and_write_run,
    check_run,
    result_key,
    run_results,
    summarize,
)
from vniahd.evaluation.scoring import SampleInputs
from vniahd.rope.segments import build_segments  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike, DatasetLike, TextModelBackendLike
    from vniahd.rope import Variant


class Runner:
    """Evaluate ``dataset`` with ``backend`` into ``out_dir`` (see module docstring)."""

    def __init__(
        self,
        dataset: DatasetLike,
        backend: BackendLike,
        config: EvalConfig,
        out_dir: str | Path,
        on_result: Callable[[dict[str, Any]], None] | None = None,
        *,
        dist: distributed.DistInfo | None = None,
        lock: ResultsLock | None = None,
    ):
        """``config`` is checked on construction; ``dist``: this process's place in a
        multi-process run (default: from the environment, RANK, WORLD_SIZE…); ``lock``: the
        results directory's lock, already held by the caller (``vniahd eval`` takes it before
        loading the model), which :meth:`run` then holds and releases."""
        settings = self.config = config
        self.dataset = dataset
        self.backend = backend
        self.out_dir = Path(out_dir)
        self.on_result = on_result
        self.fps = dataset.config.get("fps")
        # Temporal group = frames_per_group consecutive sampled frames (2 in the released protocol).
        self.frames_per_group = int(dataset.frames_per_group)
        self.variants = [
            resolve_variant(v, backend, self.fps, self.frames_per_group) for v in settings.variant_list
        ]
        self.cache = EmbeddingCache(
            backend,
            dataset.frame_size,
            root=settings.cache_dir,
            chunk=settings.encode_batch,
            progress=settings.progress,
        )
        self.grid = self.cache.grid
        self.tokenizer = backend.tokenizer
        self.dist = dist if dist is not None else distributed.from_env()
        self.lock = lock
        chunk = settings.prefill_chunk
        self.prefill_chunk = default_prefill_chunk(backend.device) if chunk is None else int(chunk)
        self.batch_size: int | str = settings.batch_size
        self.prompt_layout = prompt_layout(settings.prompt, backend, self.fps, self.frames_per_group)
        self.builder = SampleBuilder(
            dataset, backend, self.cache, settings.template, settings.max_new_tokens, self.prompt_layout
        )
        # A model whose cache cannot be cropped back (recurrent layers) cannot share prefixes.
        self.prefix_sharing = bool(settings.prefix_sharing and backend.can_crop_cache)
        self.prefix_sharing_off = (
            "" if self.prefix_sharing or not settings.prefix_sharing else backend.cache_note
        )
        self.executor = GroupExecutor(
            backend,
            self.builder,
            scoring=settings.scoring,
            max_new_tokens=settings.max_new_tokens,
            prefix_sharing=self.prefix_sharing,
            prefill_chunk=self.prefill_chunk,
            batch_size=self.batch_size,
            scope=settings.scope,
        )
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    @property
    def prefix_stats(self) -> dict[str, int]:
        return self.executor.prefix_stats

    # ---- plan ----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The samples to evaluate (the first ``limit`` in dataset order), in run order."""
        records = cast("list[dict[str, Any]]", self.dataset.samples.to_dict("records"))
        if self.config.limit is not None:
            records = records[: self.config.limit]
        return order_samples(records)

    def units(self) -> list[WorkUnit]:
        """Every work unit of the run, in run order (all ranks)."""
        return plan_units(self.rows(), self.variants)

    def _flop_model(self) -> Callable[[int, int], float] | None:
        """The backend's FLOP model ``forward(n, past)``, or None (costs then count tokens)."""
        from vniahd.evaluation.planning.flops import ModelShape

        try:
            # A backend without a language_model (or its config) raises AttributeError here.
            return ModelShape.from_backend(cast("TextModelBackendLike", self.backend)).forward
        except (AttributeError, TypeError, VniahdError):
            return None

    def cost_profile(self, unit: WorkUnit) -> Profile:
        """Per-sample FLOPs of a unit under the prefix-shared schedule (marginal, restart): what
        the multi-process split balances and the ETA weighs."""
        return cost_profile(
            unit.rows,
            text_before=len(self.tokenizer.encode(self.config.template.before)),
            tokens_per_frame=self.cache.tokens_per_frame + self.prompt_layout.text_per_frame(self.tokenizer),
            prefix_sharing=self.prefix_sharing,
            forward=self._flop_model(),
        )

    def estimated_cost(self, unit: WorkUnit) -> float:
        """FLOPs of running a unit from an empty cache."""
        return sum(self.cost_profile(unit)[0])

    def evaluation_settings(self) -> dict[str, Any]:
        """How the work is scheduled (recorded in run.json; results do not depend on it)."""
        return {
            "prefix_sharing": self.prefix_sharing,
            **({"prefix_sharing_off_because": self.prefix_sharing_off} if self.prefix_sharing_off else {}),
            "prefill_chunk": self.prefill_chunk,
            "batch_size": self.batch_size,
            "auto_batch_tokens": AUTO_BATCH_TOKENS,
            "auto_batch_max": AUTO_BATCH_MAX,
            "batch_max_extra": AUTO_BATCH_MAX_EXTRA,
            # packed: batches run as segments of one row over the shared cache (CPU backends)
            "packed_batches": self.executor.packed,
            **({"auto_pack_tokens": self.executor.pack_tokens} if self.executor.packed else {}),
            "world_size": self.dist.world_size,
            "peak_mem_kind": PeakMemory(self.backend.device).kind,
        }

    def run_record(self) -> dict[str, Any]:
        """What run.json records for this run (:mod:`vniahd.evaluation.results.run_record`)."""
        from vniahd.evaluation.results.run_record import run_record

        return run_record(self)

    # ---- per sample (thin delegates, for callers that build samples themselves) ------------
    def prepare(
        self,
        row: dict[str, Any],
        haystack: np.ndarray,
        images: Mapping[str, torch.Tensor],
        lazy: bool = False,
    ) -> Prepared:
        return self.builder.prepare(row, haystack, images, lazy=lazy)

    def with_positions(self, prepared: Prepared, variant: Variant) -> SampleInputs:
        return self.builder.with_positions(prepared, variant)

    def sample_inputs(self, sample_id: str, variant: Variant) -> tuple[Prepared, SampleInputs]:
        """Sample ``sample_id`` built as the evaluator builds it (frames encoded through the
        cache, prompt materialised) and its inputs under ``variant``: for callers that look at
        one sample (export-inputs, the attention analysis)."""
        row = self.dataset.sample(sample_id).to_dict()
        hay = self.cache.haystack(*self.haystack_input())
        images = self.cache.images({n: self.dataset.image(n) for n in _image_names([row])})
        prepared = self.prepare(row, hay, images)
        return prepared, self.with_positions(prepared, variant)

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> Summary:
        """Evaluate everything not yet in the results directory; returns :func:`summarize`.
        Holds the directory's lock (:mod:`.lock`) throughout, so two runs never interleave."""
        lock, self.lock = self.lock, None  # a lock handed over is held once, released here
        try:
            record = self.run_record()  # before the lock: a refused variant writes nothing
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        if self.backend.device.type == "cpu":
            retain_freed_heap()  # no page-fault churn between forward passes (memory.py)
        with (
            lock
            if lock is not None
            else ResultsLock(self.out_dir, self.dist.rank if self.dist.enabled else None)
        ):
            return self._run_locked(record)

    def _run_locked(self, record: dict[str, Any]) -> Summary:
        info = self.dist
        if self.prefix_sharing_off and self.config.progress and info.is_main:
            from vniahd.notices import status

            status(f"prefix sharing off: {self.prefix_sharing_off}")
        check_resume(self.out_dir, record["runs"][0], record["attention_scope"])
        if info.is_main:
            check_and_write_run(self.out_dir, record)
        distributed.barrier(info)
        if not info.is_main:
            check_run(self.out_dir, record)
        done = {result_key(r) for r in run_results(self.out_dir, self.dataset.samples)}
        scoring = self.config.scoring
        units = self.units()

        # Ids still to score per unit; every rank reads the same done keys before any rank writes.
        def missing(u: WorkUnit) -> set[str]:
            return {sid for sid in u.sample_ids if (sid, u.variant.name, scoring) not in done}

        mine = [u for u in my_units(units, info.rank, info.world_size, self.cost_profile) if missing(u)]
        left = {u.key: missing(u) for u in mine}
        haystack, images = self._encode([u for u in units if missing(u)], mine)
        sink = ResultSink(
            self.out_dir,
            info.results_file(),
            total=sum(len(left[u.key]) for u in mine),
            progress=self.config.progress,
            desc=f"evaluate[rank {info.rank}]" if info.enabled else "evaluate",
            on_result=self.on_result,
            stamp={"dataset": self.dataset.fingerprint},
        )
        estimate = self._estimate(mine, left)
        estimate.start(sum(len(left[u.key]) for u in mine))
        with sink:
            for variant, variant_units in _by_variant(mine):
                assert haystack is not None and images is not None  # this rank has work: encoded
                # The backend applies the variant (allocation, and for the tiny model its own
                # weights) and restores the model afterwards; it must apply what run.json says.
                with self.backend.use_variant(variant) as applied, torch.inference_mode():
                    recorded = record["variants"][variant.name]
                    if any(recorded.get(k) != v for k, v in applied.items()):
                        raise VniahdError(
                            f"the backend applied {applied} for variant {variant.name!r}, "
                            f"but run.json records {recorded}"
                        )
                    for unit in variant_units:
                        t0 = time.perf_counter()
                        sink.status(f"{variant.name} {estimate.eta_text()}".rstrip())
                        estimate.unit_started()
                        done_ids = set(unit.sample_ids) - left[unit.key]
                        for rec, measurement in self.executor.run_group(
                            variant, unit.rows, haystack, images, done_ids
                        ):
                            sink.add(rec, measurement)
                        self.timings[variant.name] = (
                            self.timings.get(variant.name, 0.0) + time.perf_counter() - t0
                        )
                        estimate.unit_done(unit.key)
        self.counts = dict(sink.counts)
        distributed.barrier(info)
        results, names = run_results(self.out_dir, self.dataset.samples), [v.name for v in self.variants]
        return cast("Summary", summarize(results, scoring=scoring, variants=names))

    def _estimate(self, mine: Sequence[WorkUnit], left: dict[Any, set[str]]) -> RunEstimate:
        """The cost of this process's work left: each unit's FLOPs × the share of it left."""
        unit = "FLOPs" if self._flop_model() is not None else "token units"
        costs: dict[Hashable, float] = {
            u.key: self.estimated_cost(u) * len(left[u.key]) / max(1, len(u.rows)) for u in mine
        }
        return RunEstimate(
            costs,
            unit=unit,
            device_type=self.backend.device.type,
            announce=self.config.progress and self.dist.is_main,
        )

    def haystack_input(self) -> tuple[np.ndarray, str]:
        """The haystack as temporal groups and its cache key: one frame per group, or (with
        ``frames_per_group`` = 2) ``[G, 2, H, W, 3]`` pairs of consecutive frames."""
        if self.frames_per_group == 1:
            return self.dataset.haystack_frames(), self.dataset.haystack_key
        return self.dataset.haystack_groups(), f"{self.dataset.haystack_key}-fpg{self.frames_per_group}"

    def _encode(
        self, with_work: Sequence[WorkUnit], mine: Sequence[WorkUnit]
    ) -> tuple[np.ndarray | None, dict[str, torch.Tensor] | None]:
        """Haystack embeddings and the images of every unit with work left (a resumed batch is
        recomputed whole, so all samples of such a unit). Rank 0 fills the embedding cache for
        everyone; the other ranks then read it from disk."""
        if not with_work:
            return None, None
        info = self.dist
        t0 = time.perf_counter()
        haystack = images = None
        if info.is_main:
            haystack = self.cache.haystack(*self.haystack_input())
            needed = _image_names(r for u in with_work for r in u.rows)
            images = self.cache.images({n: self.dataset.image(n) for n in needed})
        distributed.barrier(info)
        if not info.is_main:
            haystack = self.cache.haystack(*self.haystack_input())
            needed = _image_names(r for u in mine for r in u.rows)
            images = self.cache.images({n: self.dataset.image(n) for n in needed})
        self.timings["encode"] = time.perf_counter() - t0
        return haystack, images


def _by_variant(units: Sequence[WorkUnit]) -> list[tuple[Variant, list[WorkUnit]]]:
    """Consecutive runs of units with the same variant (units are variant-outer)."""
    out: list[tuple[Variant, list[WorkUnit]]] = []
    for unit in units:
        if out and out[-1][0] is unit.variant:
            out[-1][1].append(unit)
        else:
            out.append((unit.variant, [unit]))
    return out


def _image_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    from vniahd.records import inserted_images

    return sorted({name for r in rows for name in inserted_images(r).values()})
