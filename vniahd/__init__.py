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

Subpackages, one concept each:

- :mod:`vniahd.rope`     position layouts, frequency allocations, presets, rotation (all RoPE math)
- :mod:`vniahd.media`    video decoding, frame sampling, haystack cache, mp4 export
- :mod:`vniahd.needles`  needle-set schema, loaders (native + reference format), demo set builder
- :mod:`vniahd.plan`     the grid and distractor schedules (pure functions)
- :mod:`vniahd.dataset`  dataset directories: write, open, inspect
- :mod:`vniahd.models`   model backends (hf:PATH, random:*, tiny) behind one interface
- :mod:`vniahd.evaluate` the evaluation runner, scoring modes, embedding cache, results
- :mod:`vniahd.report`   heatmaps, comparisons, summary tables, report.html
- :mod:`vniahd.tiny`     the embedded default model: encoder, training, demo

``vniahd.evaluate`` and ``vniahd.report`` are both the subpackage and the API function: the
subpackage module is callable (calling it calls :func:`vniahd._api.evaluate` /
:func:`vniahd._api.report`), whichever way it was imported first.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from vniahd._api import get_variant, load_model, open_dataset
from vniahd.errors import UnknownNameError, VniahdError

if TYPE_CHECKING:
    import inspect

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

_CALLABLE_SUBPACKAGES = ("evaluate", "report")  # subpackage name = vniahd._api function name


class _CallableSubpackage(types.ModuleType):
    """A subpackage that, called, runs the :mod:`vniahd._api` function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from vniahd import _api

        return getattr(_api, self.__name__.rpartition(".")[2])(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # inspect.signature(vniahd.evaluate)
        import inspect

        from vniahd import _api

        return inspect.signature(getattr(_api, self.__name__.rpartition(".")[2]))


class _Package(types.ModuleType):
    # The import system sets ``vniahd.evaluate`` to the subpackage once it is imported (by anyone);
    # making that module callable keeps ``vniahd.evaluate(...)`` working in every import order.
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CALLABLE_SUBPACKAGES and type(value) is types.ModuleType:
            value.__class__ = _CallableSubpackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
for _name in _CALLABLE_SUBPACKAGES:  # already imported (e.g. importlib.reload of this package)
    if f"{__name__}.{_name}" in sys.modules:
        setattr(sys.modules[__name__], _name, sys.modules[f"{__name__}.{_name}"])
del _name


def __getattr__(name: str) -> Any:
    """PEP 562: ``generate`` (:func:`vniahd.dataset.generate.generate`, what ``vniahd generate``
    calls), ``evaluate`` and ``report`` import what they need on first use."""
    if name == "generate":
        from vniahd.dataset.generate import generate

        globals()[name] = generate
        return generate
    if name in _CALLABLE_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
