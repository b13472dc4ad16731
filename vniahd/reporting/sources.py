"""What report inputs become: :class:`Source` (one per input, for the provenance section),
:class:`Loaded`, the records table's :data:`COLUMNS`, readable names, and the file helpers every
loader shares (:mod:`vniahd.reporting.load`, :mod:`vniahd.reporting.reference`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.files import sha256_file
from vniahd.records import read_checked

#: Columns of the records table, in order.
COLUMNS = (
    "model",
    "model_spec",
    "model_fp",
    "variant",
    "scoring",
    "schedule",
    "dataset",
    "dataset_tag",
    "benchmark",
    "length",
    "depth",
    "depth_pct",
    "needle_id",
    "sample_id",
    "correct",
    "tokens_per_frame",
    "num_tokens",
    "source",
)
#: ``dataset`` of an input without a dataset fingerprint: its own path (never pooled).
SOURCE_PREFIX = "source:"


@dataclass
class Source:
    """Where some records came from, for the report's provenance section."""

    path: str
    kind: str  # "results" or "reference"
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    run: dict | None = None  # run.json contents (results dirs only)
    num_records: int = 0
    notes: list[str] = field(default_factory=list)
    #: Dataset identity: the fingerprint from run.json, or ``source:<path>`` when there is none.
    dataset: str = ""
    #: Model fingerprint from run.json ("" when unknown).
    model_fp: str = ""
    #: Frames between distractors (run.json's dataset.period), when recorded.
    period: float | None = None


@dataclass
class Loaded:
    """All records from every input, plus one :class:`Source` per input."""

    records: pd.DataFrame
    sources: list[Source]


def model_short_name(spec: str) -> str:
    """A readable, filename-safe model name from a backend spec.

    ``hf:/path/to/Qwen2-VL-7B`` → ``Qwen2-VL-7B`` (last path component: the checkpoint's name);
    ``random:qwen2-vl`` → ``random-qwen2-vl``; anything outside ``[A-Za-z0-9._-]`` becomes ``-``.
    """
    spec = str(spec).strip()
    if spec.startswith("hf:"):
        tail = spec[3:].rstrip("/\\")
        spec = tail.replace("\\", "/").rsplit("/", 1)[-1] or tail or "hf"
    return safe_name(spec)


def safe_name(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._-]`` replaced by one ``-`` (for
    file names); never empty, never starting or ending in ``-`` or ``.``."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return out or "unnamed"


def where(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else str(path)


def number(value: Any, key: str, path: Path, line: int, *, integer: bool = False) -> float:
    """``value`` as a finite number, or a VniahdError naming the key, file and line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VniahdError(
            f"{where(path, line)}: {key!r} must be a finite number, got {value!r}; fix or delete that line"
        )
    if integer and float(value) != int(value):
        raise VniahdError(f"{where(path, line)}: {key!r} must be a whole number, got {value!r}")
    return float(value)


def read_text(path: Path) -> str:
    """A text file's contents, or one VniahdError naming it and why it cannot be read."""
    return read_checked(path).decode("utf-8")


def file_sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise VniahdError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from None
