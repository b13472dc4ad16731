"""The functions behind vniahd's top-level API (``vniahd.generate``, ``vniahd.evaluation``, …).

Each is the library call its CLI command makes, so Python and ``vniahd …`` behave the same:
:class:`EvalConfig` + :func:`prepare_evaluation` + :meth:`Runner.run` is ``vniahd eval``, :func:`report` is
``vniahd plot``. (``vniahd.generate`` is :func:`vniahd.dataset.generate.generate` itself, the
function ``vniahd generate`` calls.) Importing this module is cheap: torch,
transformers, OpenCV and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Union

from vniahd.errors import VniahdError
from vniahd.files import check_out_dir

if TYPE_CHECKING:
    from vniahd.dataset import Dataset
    from vniahd.evaluation.config import EvalConfig, Summary
    from vniahd.evaluation.planning.distributed import DistInfo
    from vniahd.evaluation.runner import Runner
    from vniahd.models.base import Backend
    from vniahd.prompt_templates import PromptTemplate
    from vniahd.rope.presets import Variant

StrPath = str | Path
VariantLike = Union[str, "Variant"]


def open_dataset(path: StrPath) -> Dataset:
    """Open a dataset directory written by :func:`generate` (or ``vniahd generate``)."""
    from vniahd.dataset import Dataset

    return Dataset.open(path)


def load_model(
    spec: str,
    device: str | None = None,
    dtype: str = "auto",
    frame_mode: str = "video",
    device_map: str | None = None,
    **params: Any,
) -> Backend:
    """Load the model backend named by ``spec`` (``hf:PATH``, ``random:qwen2-vl?layers=2``, ``tiny``).

    ``params`` override the spec's ``?key=value`` parameters. The result can be passed to
    :func:`evaluate` as ``model`` to score several datasets without reloading. ``device``
    (default ``cpu``) puts the whole model on one device; ``device_map`` (``hf:`` only, instead of
    ``device``) spreads it over the machine's GPUs: ``auto``, ``balanced``, ``balanced_low_0``,
    ``sequential``, a JSON file or inline JSON ``{module name: GPU index | "cpu"}``.
    """
    from vniahd.models import get_backend

    check_device_choice(device, device_map)
    return get_backend(
        spec, device=device or "cpu", dtype=dtype, frame_mode=frame_mode, device_map=device_map, **params
    )


def check_device_choice(device: str | None, device_map: str | None) -> None:
    """``device`` and ``device_map`` are two answers to one question: at most one may be given."""
    if device is not None and device_map is not None:
        raise VniahdError(
            f"--device {device} and --device-map {device_map} both say where the model goes; "
            "give one (with --device-map, inputs go to the device of the first layer)"
        )


def get_variant(spec: VariantLike) -> Variant:
    """A RoPE variant from a preset name (``"videorope"``), a spec (``"videorope:delta=1"``,
    ``"diagonal+lta:delta=0.5"``) or a JSON file; a :class:`~vniahd.rope.Variant` is returned as is."""
    from vniahd.rope import get_variant as resolve

    return resolve(spec)


def check_results_dir(out: StrPath, dataset_fingerprint: str, model_spec: str) -> None:
    """Refuse a results directory of another dataset or model before any model is loaded (a cheap
    check; the runner repeats it with the model's weight fingerprint)."""
    from vniahd.records import RunManifest

    check_out_dir(out, "results")
    run = Path(out) / "run.json"
    if not run.is_file():
        return
    try:
        old = RunManifest.read(run)
    except VniahdError:
        return  # the runner reports it
    new = {"dataset": {"fingerprint": dataset_fingerprint}, "model": {"spec": model_spec}}
    for what, _there, _now in old.mismatches(new, fields=(("dataset", "fingerprint"), ("model", "spec"))):
        kind = what.split(".")[0]
        shown = (old.data.get("dataset") or {}).get("path") if kind == "dataset" else repr(old.model_spec)
        raise VniahdError(f"{out} holds results from a different {kind} ({shown}); choose another --out")


class PreparedEvaluation(NamedTuple):
    """What :func:`prepare_evaluation` returns: call ``runner.run()`` next."""

    runner: Runner
    backend: Backend
    dist: DistInfo
    load_seconds: float


def prepare_evaluation(
    dataset: StrPath | Dataset,
    model: str | Backend,
    config: EvalConfig,
    *,
    out: StrPath,
    device: str | None = None,
    dtype: str | None = None,
    frame_mode: str | None = None,
    device_map: str | None = None,
    dist: DistInfo | None = None,
) -> PreparedEvaluation:
    """Everything ``vniahd eval`` does before scoring, cheapest first: open the dataset, check
    ``out``, take its lock (:class:`ResultsLock`: a second run into ``out`` is refused before
    anything loads), join the process group under torchrun, load the model (unless ``model`` is
    a loaded backend) and build the :class:`Runner`, which holds the lock until its run ends.

    ``config`` was checked when built; ``device`` (default ``cpu``) or ``device_map``, ``dtype``
    (``auto``) and ``frame_mode`` (``video``) apply when ``model`` is a spec; a loaded backend
    already has them.
    """
    from vniahd.dataset import Dataset
    from vniahd.evaluation.planning import distributed
    from vniahd.evaluation.results.lock import ResultsLock
    from vniahd.evaluation.runner import Runner
    from vniahd.models.base import resolve_device

    info = dist if dist is not None else distributed.from_env()
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    if isinstance(model, str):
        check_device_choice(device, device_map)
        dev = info.device(device or "cpu") if device_map is None else _device_map_home(device_map)
        resolve_device(dev)
        check_results_dir(out, ds.fingerprint, model)
    else:
        chosen = {"device": device, "dtype": dtype, "frame_mode": frame_mode, "device_map": device_map}
        given = [k for k, v in chosen.items() if v]
        if given:
            raise VniahdError(
                f"{', '.join(given)} only apply when model is a spec string; this backend "
                f"is already loaded (pass them to vniahd.load_model)"
            )
        dev = model.options.device
        check_results_dir(out, ds.fingerprint, model.spec)
    created = not Path(out).exists()
    lock = ResultsLock(out, info.rank if info.enabled else None).acquire()
    try:
        distributed.init(info, dev)
        backend, load_s = _load(model, config, info, dev, dtype, frame_mode, device_map)
        return PreparedEvaluation(
            Runner(ds, backend, config, out, dist=info, lock=lock), backend, info, load_s
        )
    except BaseException:
        lock.release()
        if created:  # leave no trace of a run that never started
            lock.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                Path(out).rmdir()
        raise


def _load(
    model: str | Backend,
    config: EvalConfig,
    info: DistInfo,
    dev: str,
    dtype: str | None,
    frame_mode: str | None,
    device_map: str | None,
) -> tuple[Backend, float]:
    """The backend (``model`` itself when already loaded) and the seconds its loading took."""
    t0 = time.perf_counter()
    if isinstance(model, str) and config.progress and info.is_main:
        from vniahd.notices import status

        status(f"loading model {model} on {dev}")  # 5-20 s for a real checkpoint, silent otherwise
    backend = (
        model
        if not isinstance(model, str)
        else load_model(
            model,
            device=dev if device_map is None else None,
            dtype=dtype or "auto",
            frame_mode=frame_mode or "video",
            device_map=device_map,
        )
    )
    load_s = time.perf_counter() - t0
    if isinstance(model, str):
        backend.progress = config.progress  # e.g. the tiny model's on-demand training bars
    return backend, load_s


def _device_map_home(device_map: str) -> str:
    """The device a process joins the process group with under ``--device-map``: its first GPU
    (:func:`vniahd.models.device_map.rank_gpus`), or the CPU without one."""
    import torch

    from vniahd.models.device_map import rank_gpus

    gpus = rank_gpus(torch.cuda.device_count()) if torch.cuda.is_available() else []
    return f"cuda:{gpus[0]}" if gpus else "cpu"


def evaluate(
    dataset: StrPath | Dataset,
    model: str | Backend,
    variants: VariantLike | Sequence[VariantLike],
    *,
    out: StrPath,
    scoring: str = "reference",
    limit: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    frame_mode: str | None = None,
    device_map: str | None = None,
    prompt_template: str | PromptTemplate = "reference",
    prompt: str = "reference",
    max_new_tokens: int = 8,
    encode_batch: int = 16,
    cache_dir: StrPath | None = None,
    prefix_sharing: bool = True,
    prefill_chunk: int | Literal["auto"] = "auto",
    batch_size: int | Literal["auto"] = "auto",
    progress: bool = True,
    attention_scope: str = "full",
) -> Summary:
    """Score ``model`` on ``dataset`` under each RoPE variant into ``out`` (``vniahd eval``).

    ``dataset``: a directory or an opened :class:`~vniahd.dataset.Dataset`; ``model``: a spec
    (``random:qwen2-vl``, ``hf:PATH``, ``tiny``) or a backend from :func:`load_model`; ``variants``:
    names, specs or :class:`~vniahd.rope.Variant` objects (``"native"``: the model family's own);
    ``prompt``: ``"reference"`` (frames spliced bare) or ``"native"`` (the family's vision markers
    and timestamps). The other keywords are :class:`~vniahd.evaluation.EvalConfig`'s fields and
    mirror the CLI flags (``prefix_sharing=False`` is ``--no-prefix-sharing``, ``device_map`` is
    ``--device-map``, ``attention_scope="zigzag-local:8"`` is the released harness's view); bad
    values raise :class:`VniahdError` before anything loads. Resumable: a
    second call with the same arguments scores only what is missing. Returns
    ``{variant: {"correct", "total", "accuracy"}}`` (:class:`~vniahd.evaluation.VariantSummary`).
    """
    from vniahd.evaluation.config import EvalConfig
    from vniahd.evaluation.planning import distributed

    config = EvalConfig(
        variants=[variants] if isinstance(variants, str) or not isinstance(variants, Sequence) else variants,
        scoring=scoring,
        limit=limit,
        prompt_template=prompt_template,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
        encode_batch=encode_batch,
        cache_dir=cache_dir,
        prefix_sharing=prefix_sharing,
        prefill_chunk=prefill_chunk,
        batch_size=batch_size,
        progress=progress,
        attention_scope=attention_scope,
    )
    prepared = prepare_evaluation(
        dataset,
        model,
        config,
        out=out,
        device=device,
        dtype=dtype,
        frame_mode=frame_mode,
        device_map=device_map,
    )
    try:
        return prepared.runner.run()
    finally:
        distributed.shutdown(prepared.dist)


def report(
    results_dirs: StrPath | Sequence[StrPath],
    out: StrPath,
    baseline: str | None = None,
    x: str = "frames",
    annotate: bool | None = None,
) -> dict[str, Path]:
    """Write heatmaps, comparisons, curves, summary tables and ``report.html`` into ``out``
    (``vniahd plot``); returns file name → path, ``"report.html"`` among them.

    ``results_dirs``: one or more results directories or reference ``all_accuracies.json`` files;
    ``baseline``: a variant name, adds per-cell differences from it; ``x``: ``frames`` or ``tokens``.
    """
    from vniahd.reporting import write_report

    dirs = [results_dirs] if isinstance(results_dirs, (str, os.PathLike)) else list(results_dirs)
    return write_report(dirs, out, baseline=baseline, x=x, annotate=annotate)
