"""vniahd: V-NIAH-D benchmark generation, RoPE-variant evaluation and reports.

From Python, the CLI workflow in a few calls (keywords mirror the CLI flags)::

    import vniahd
    ds = vniahd.generate(haystack="demo", needles="demo", out="data/demo", lengths="8,16",
                         depths="0,1", period=4, size="56x84")
    summary = vniahd.evaluate(ds, "random:qwen2-vl", ["mrope", "videorope"], out="results/demo")
    paths = vniahd.report("results/demo", out="results/demo/report", baseline="mrope")

plus :func:`open_dataset`, :func:`load_model` (reuse one model across calls) and
:func:`get_variant`. User mistakes raise :class:`VniahdError` with a message that says the fix.
``import vniahd`` is light: torch, transformers, OpenCV and matplotlib load on first use.

Subpackages are nouns, one concept each; the verbs above are plain functions:

- :mod:`vniahd.rope`        position layouts, frequency allocations, presets, rotation (all RoPE math)
- :mod:`vniahd.media`       video decoding, frame sampling, haystack cache, mp4 export
- :mod:`vniahd.needles`     needle-set schema, loaders (native + reference format), demo set builder
- :mod:`vniahd.plan`        the grid and distractor schedules (pure functions)
- :mod:`vniahd.dataset`     dataset directories: write, open, inspect
- :mod:`vniahd.models`      model backends (hf:PATH, random:*, tiny) behind one interface
- :mod:`vniahd.evaluation`  the evaluator, by stage: planning, execution, scoring, results
- :mod:`vniahd.reporting`   heatmaps, comparisons, summary tables, report.html
- :mod:`vniahd.training`    training the embedded tiny model
- :mod:`vniahd.demo`        ``vniahd demo``: the public API applied end to end
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vniahd._api import evaluate, get_variant, load_model, open_dataset, report
from vniahd.errors import UnknownNameError, VniahdError

if TYPE_CHECKING:
    from vniahd.dataset.generate import generate

__version__ = "0.1.0"

__all__ = [
    "UnknownNameError",
    "VniahdError",
    "__version__",
    "evaluate",
    "generate",
    "get_variant",
    "load_model",
    "open_dataset",
    "report",
]


if not TYPE_CHECKING:  # a module __getattr__ would make every misspelt name Any to a type checker

    def __getattr__(name: str) -> Any:
        """PEP 562: ``generate`` (what ``vniahd generate`` calls) imports the dataset writer on
        first use, so ``import vniahd`` stays light."""
        if name == "generate":
            from vniahd.dataset.generate import generate

            globals()[name] = generate
            return generate
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
