"""Evaluation: score a backend on a dataset under RoPE variants into a resumable results directory.

Typical use (what ``vniahd.evaluate`` does, with a model loaded once)::

    from vniahd.dataset import Dataset
    from vniahd.models import get_backend
    from vniahd.evaluation import EvalConfig, Runner

    config = EvalConfig(variants=["mrope"], batch_size=4)   # checked here, recorded in run.json
    runner = Runner(Dataset.open("data/demo"), get_backend("random:qwen2-vl"), config,
                    "results/demo-random")
    summary = runner.run()   # {"mrope": {"correct": .., "total": .., "accuracy": ..}}

The internals live in the subpackages, by stage: ``planning`` (work plan, FLOPs, ETA, ranks),
``execution`` (samples, prefix sharing, chunked prefill, the embedding cache), ``results``
(the jsonl store, the sink, the lock); import them from their modules.
"""

from vniahd.evaluation.config import EvalConfig, Summary, VariantSummary
from vniahd.evaluation.contracts import BackendLike, DatasetLike, TokenizerLike
from vniahd.evaluation.results.store import read_results, summarize
from vniahd.evaluation.runner import Runner
from vniahd.evaluation.scoring import SCORING_MODES

__all__ = [
    "SCORING_MODES",
    "BackendLike",
    "DatasetLike",
    "EvalConfig",
    "Runner",
    "Summary",
    "TokenizerLike",
    "VariantSummary",
    "read_results",
    "summarize",
]
