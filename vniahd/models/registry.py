"""Backend specs → loaded backends: ``hf:PATH``, ``random:qwen2-vl?layers=2&hidden=64``, ``tiny``.

The part before the first ``:`` (or the whole spec) picks a factory from :data:`BACKENDS`; a user
adds one with :func:`register_backend`. Factories are named as ``"module:function"`` strings and
imported on first use, so that ``vniahd --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.models.base import FRAME_MODES, Backend, BackendOptions

BackendFactory = Callable[[str, dict, BackendOptions], Backend]

#: prefix → factory, or "module:function" imported on first use.
BACKENDS: dict[str, BackendFactory | str] = {
    "hf": "vniahd.models.hf_qwen:create_backend",
    "random": "vniahd.models.random_qwen:create_backend",
    "tiny": "vniahd.models.tiny.backend:create_backend",
}


def register_backend(prefix: str, factory: BackendFactory | str) -> None:
    """Add a backend: ``factory(rest, params, options)`` gets the spec after ``prefix:`` (up to
    any ``?``), the ``?key=value&…`` parameters as a dict, and the :class:`BackendOptions`."""
    BACKENDS[prefix] = factory


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """``"random:qwen2-vl?layers=2"`` → ``("random", "qwen2-vl", {"layers": "2"})``.

    ``hf:`` keeps everything after the prefix as the path (paths may contain ``?``)."""
    prefix, _, rest = spec.partition(":")
    params: dict = {}
    if prefix != "hf" and "?" in rest:
        rest, _, query = rest.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    elif prefix != "hf" and "?" in prefix:
        prefix, _, query = prefix.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
    return prefix, rest, params


def get_backend(
    spec: str,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    frame_mode: str = "video",
    device_map: str | None = None,
    **params: Any,
) -> Backend:
    """Load the backend named by ``spec``; keyword ``params`` override ``?key=value`` ones.
    ``device_map`` (``hf:`` only) spreads the checkpoint over devices instead of ``device``."""
    if frame_mode not in FRAME_MODES:
        raise VniahdError(f"unknown frame mode {frame_mode!r}; use one of {', '.join(FRAME_MODES)}")
    prefix, rest, spec_params = parse_spec(spec)
    if device_map is not None and prefix != "hf":
        raise VniahdError(
            f"--device-map places the layers of a checkpoint loaded with transformers; {spec} is not "
            "one: use --model hf:PATH, or --device for this model"
        )
    if prefix not in BACKENDS:
        raise UnknownNameError("model backend", prefix, [f"{p}:" if p != "tiny" else p for p in BACKENDS])
    factory = BACKENDS[prefix]
    if isinstance(factory, str):
        module_name, _, func = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise VniahdError(
                f"model backend {prefix!r} is not available in this install "
                f"({exc}); use hf:PATH or random:qwen2-vl"
            ) from exc
        factory = getattr(module, func)
    options = BackendOptions(device=device, dtype=dtype, frame_mode=frame_mode, device_map=device_map)
    options.torch_device()  # fail early on --device cuda without a GPU
    extra = {k: v for k, v in params.items() if v is not None}
    spec_params.update(extra)
    backend = factory(rest, spec_params, options)
    # Record the spec as the user wrote it (results and run.json compare it on resume).
    if extra:
        sep = "&" if "?" in spec else "?"
        spec = spec + sep + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
    backend.spec = spec
    return backend
