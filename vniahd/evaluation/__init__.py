"""Evaluation: prompt templates, the embedding cache, scoring modes, the resumable runner, results.

Typical use::

    from vniahd.dataset import Dataset
    from vniahd.models import get_backend
    from vniahd.rope import get_variant
    from vniahd.evaluation import EvalSettings, Runner

    runner = Runner(Dataset.open("data/demo"), get_backend("random:qwen2-vl"),
                    EvalSettings(variants=[get_variant("mrope")]), "results/demo-random")
    summary = runner.run()   # {"mrope": {"correct": .., "total": .., "accuracy": ..}}
"""

from vniahd.evaluation.contracts import BackendLike, DatasetLike, TextModelBackendLike, TokenizerLike
from vniahd.evaluation.execution.chunked import Feed, default_prefill_chunk, forward_rows
from vniahd.evaluation.execution.embedding_cache import CacheStats, EmbeddingCache
from vniahd.evaluation.execution.memory import PeakMemory
from vniahd.evaluation.execution.prefix import PromptSource, SharedPrefix, fork_cache
from vniahd.evaluation.execution.samples import Prepared
from vniahd.evaluation.execution.variants import build_segments
from vniahd.evaluation.planning.distributed import DistInfo
from vniahd.evaluation.planning.flops import FlopCounter, ModelShape, trie_flops
from vniahd.evaluation.planning.work_plan import length_groups, order_samples, prefix_groups
from vniahd.evaluation.results.store import (
    REQUIRED_KEYS,
    ResultsWriter,
    check_and_write_run,
    check_run,
    read_results,
    result_key,
    summarize,
)
from vniahd.evaluation.runner import EvalSettings, Runner
from vniahd.evaluation.scoring import (
    SCORING_MODES,
    Context,
    SampleInputs,
    Score,
    parse_choice,
    score,
    score_batch,
)
from vniahd.prompt_templates import TEMPLATES, PromptTemplate, get_template

__all__ = [
    "BackendLike",
    "DatasetLike",
    "TextModelBackendLike",
    "TokenizerLike",
    "Context",
    "DistInfo",
    "Feed",
    "FlopCounter",
    "ModelShape",
    "PeakMemory",
    "PromptSource",
    "SharedPrefix",
    "check_run",
    "default_prefill_chunk",
    "fork_cache",
    "forward_rows",
    "prefix_groups",
    "score_batch",
    "trie_flops",
    "CacheStats",
    "EmbeddingCache",
    "EvalSettings",
    "Prepared",
    "PromptTemplate",
    "REQUIRED_KEYS",
    "ResultsWriter",
    "Runner",
    "SCORING_MODES",
    "SampleInputs",
    "Score",
    "TEMPLATES",
    "build_segments",
    "check_and_write_run",
    "get_template",
    "length_groups",
    "order_samples",
    "parse_choice",
    "read_results",
    "result_key",
    "score",
    "summarize",
]
