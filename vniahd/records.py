"""The records the pipeline's stages hand each other, and the rules about them. Torch-free.

- :class:`Sample` — one planned benchmark sample (plan → dataset ``samples.parquet`` → evaluate);
  :meth:`Sample.from_row` turns a parquet/DataFrame row back into a ``Sample``.
- result lines — one JSON object per (sample, variant, scoring) in ``results*.jsonl``:
  :data:`RESULT_KEYS` every line carries, :func:`result_key` (the resume key) and
  :func:`check_result` (the one validator, used by the evaluator's reader and by reports).
- :class:`RunManifest` — ``run.json``: what produced a results directory, and **the** identity rule
  (:meth:`RunManifest.mismatches`): results may only be pooled or appended when the dataset, the
  model (spec and weights), the frame mode, the prompt (template and layout) and the generation
  settings are the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError

__all__ = ["RESULT_KEYS", "RunManifest", "Sample", "check_result", "result_key"]


# ---- samples --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One benchmark sample: a haystack window of ``length`` frames with the needle at
    ``needle_slot`` (and distractors at ``distractor_slots``); ``num_frames`` counts the inserted
    frames too."""

    sample_id: str
    length: int
    depth: float
    needle_id: str
    repeat: int
    haystack_offset: int
    needle_slot: int
    distractor_slots: list[int] = field(default_factory=list)
    needle_image: str = ""
    distractor_images: list[str] = field(default_factory=list)
    num_frames: int = 0
    schedule: str = ""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Sample:
        """A ``Sample`` from a dict or a parquet/DataFrame row (numpy scalars and arrays become
        Python ints, floats, strings and lists)."""
        try:
            return cls(
                sample_id=str(row["sample_id"]),
                length=int(row["length"]),
                depth=float(row["depth"]),
                needle_id=str(row["needle_id"]),
                repeat=int(row.get("repeat", 0) or 0),
                haystack_offset=int(row.get("haystack_offset", 0) or 0),
                needle_slot=int(row["needle_slot"]),
                distractor_slots=[int(s) for s in _as_list(row.get("distractor_slots"))],
                needle_image=str(row.get("needle_image", "") or ""),
                distractor_images=[str(s) for s in _as_list(row.get("distractor_images"))],
                num_frames=int(row.get("num_frames", 0) or 0),
                schedule=str(row.get("schedule", "") or ""),
            )
        except KeyError as exc:
            raise VniahdError(
                f"sample record lacks {exc.args[0]!r}; regenerate the dataset with 'vniahd generate'"
            ) from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value)


# ---- result lines -------------------------------------------------------------------------------
#: Keys every result line carries (docs/architecture.md, "Results directory").
RESULT_KEYS = (
    "sample_id",
    "variant",
    "scoring",
    "model",
    "length",
    "depth",
    "needle_id",
    "schedule",
    "correct",
    "prediction",
    "answer",
    "num_frames",
    "tokens_per_frame",
    "num_tokens",
)


def result_key(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    """The resume key: one line per (sample, variant, scoring) in a results directory."""
    return (str(rec["sample_id"]), str(rec["variant"]), str(rec["scoring"]))


def check_result(obj: Any, where: str) -> dict[str, Any]:
    """``obj`` if it is a valid result line, else a :class:`VniahdError` naming ``where`` (file
    and line) and the problem."""
    if not isinstance(obj, dict):
        raise VniahdError(
            f"{where}: expected a JSON object per line, got {type(obj).__name__}; fix or delete that line"
        )
    missing = [k for k in RESULT_KEYS if k not in obj]
    if missing:
        raise VniahdError(
            f"{where}: result is missing {', '.join(missing)}; a results line needs "
            + ", ".join(RESULT_KEYS)
            + " (docs/architecture.md)"
        )
    correct = obj["correct"]
    if not isinstance(correct, bool) and correct not in (0, 1):
        raise VniahdError(f"{where}: 'correct' must be true/false, got {correct!r}")
    for key, integer in (("length", True), ("depth", False)):
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise VniahdError(
                f"{where}: {key!r} must be a finite number, got {value!r}; fix or delete that line"
            )
        if integer and float(value) != int(value):
            raise VniahdError(f"{where}: {key!r} must be a whole number, got {value!r}")
    if not 0.0 <= float(obj["depth"]) <= 1.0:
        raise VniahdError(f"{where}: 'depth' must be a fraction in [0, 1], got {obj['depth']}")
    return obj


# ---- run.json -----------------------------------------------------------------------------------
#: run.json fields that must be equal for two results directories (or a directory and a new
#: run) to be the same experiment.
IDENTITY: tuple[tuple[str, ...], ...] = (
    ("dataset", "fingerprint"),
    ("model", "spec"),
    ("model", "fingerprint"),
    ("frame_mode",),
    ("prompt_template",),
    ("prompt_layout", "name"),
    ("generate", "max_new_tokens"),
)

#: What an identity field means when a run.json predates it (so older results directories keep
#: matching the runs that produced them).
IDENTITY_DEFAULTS: dict[tuple[str, ...], Any] = {("prompt_layout", "name"): "reference"}


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


@dataclass(frozen=True)
class RunManifest:
    """The contents of a ``run.json`` (see module docstring)."""

    data: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> RunManifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VniahdError(f"{path} is unreadable ({exc}); restore it or choose another --out") from None
        if not isinstance(data, dict):
            raise VniahdError(f"{path} is not a JSON object; restore it or choose another --out")
        return cls(data)

    @property
    def dataset_fingerprint(self) -> str | None:
        return _get(self.data, ("dataset", "fingerprint"))

    @property
    def model_spec(self) -> str | None:
        return _get(self.data, ("model", "spec"))

    @property
    def model_fingerprint(self) -> str | None:
        return _get(self.data, ("model", "fingerprint"))

    @property
    def variants(self) -> dict[str, Any]:
        return dict(self.data.get("variants") or {})

    def origin(self) -> tuple[str | None, str | None]:
        """(dataset fingerprint, model fingerprint): what reports group results by."""
        return self.dataset_fingerprint, self.model_fingerprint

    def mismatches(
        self, other: RunManifest | Mapping[str, Any], fields: tuple[tuple[str, ...], ...] = IDENTITY
    ) -> list[tuple[str, Any, Any]]:
        """``(field, ours, theirs)`` for every identity field that differs (empty = same origin).
        ``fields`` narrows the rule, e.g. to the dataset and model spec before a model loads."""
        theirs = other.data if isinstance(other, RunManifest) else dict(other)
        out = []
        for key in fields:
            ours, other_value = _get(self.data, key), _get(theirs, key)
            default = IDENTITY_DEFAULTS.get(key)
            ours = default if ours is None else ours
            other_value = default if other_value is None else other_value
            if ours != other_value:
                out.append((".".join(key), ours, other_value))
        return out

    def same_origin(self, other: RunManifest | Mapping[str, Any]) -> bool:
        return not self.mismatches(other)
