"""Evaluation: prompt templates, the embedding cache, scoring modes, the resumable runner, results.

Typical use::

    from vniahd.dataset import Dataset
    from vniahd.models import get_backend
    from vniahd.rope import get_variant
    from vniahd.evaluate import EvalSettings, Runner

    runner = Runner(Dataset.open("data/demo"), get_backend("random:qwen2-vl"),
                    EvalSettings(variants=[get_variant("mrope")]), "results/demo-random")
    summary = runner.run()   # {"mrope": {"correct": .., "total": .., "accuracy": ..}}
"""

from vniahd.evaluate.cache import CacheStats, EmbeddingCache
from vniahd.evaluate.chunked import Feed, default_prefill_chunk, forward_rows
from vniahd.evaluate.contracts import BackendLike, DatasetLike, TextModelBackendLike, TokenizerLike
from vniahd.evaluate.distributed import DistInfo
from vniahd.evaluate.flops import FlopCounter, ModelShape, trie_flops
from vniahd.evaluate.memory import PeakMemory
from vniahd.evaluate.prefix import PromptSource, SharedPrefix, fork_cache
from vniahd.evaluate.prompt import TEMPLATES, PromptTemplate, get_template
from vniahd.evaluate.results import (
    REQUIRED_KEYS,
    ResultsWriter,
    check_and_write_run,
    check_run,
    read_results,
    result_key,
    summarize,
)
from vniahd.evaluate.runner import EvalSettings, Runner
from vniahd.evaluate.samples import Prepared
from vniahd.evaluate.scoring import (
    SCORING_MODES,
    Context,
    SampleInputs,
    Score,
    parse_choice,
    score,
    score_batch,
)
from vniahd.evaluate.variants import build_segments
from vniahd.evaluate.work_plan import length_groups, order_samples, prefix_groups

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
