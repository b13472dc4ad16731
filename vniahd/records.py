"""The records the pipeline's stages hand each other, and the rules about them. Torch-free.

- :class:`Sample` — one planned benchmark sample (plan → dataset ``samples.parquet`` → evaluate);
  :meth:`Sample.from_row` turns a parquet/DataFrame row back into a ``Sample``.
- result lines — one JSON object per (sample, variant, scoring) in ``results*.jsonl``
  (:data:`RESULTS_GLOB`): :data:`RESULT_KEYS` every line carries, **the** identity of a result
  (:func:`result_key` within a results directory, :data:`RESULT_IDENTITY` across directories),
  :func:`check_result` (the one validator) and :func:`read_result_file` / :func:`read_results`
  (the one reader, torn last lines dropped; used by the evaluator and by reports).
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

__all__ = [
    "RESULTS_GLOB",
    "RESULT_IDENTITY",
    "RESULT_KEYS",
    "RunManifest",
    "Sample",
    "check_result",
    "haystack_window",
    "inserted_images",
    "read_result_file",
    "read_results",
    "result_files",
    "result_key",
]


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
    # V-RULER tasks (vniahd.plan.tasks): every needle's slot, id and image, in the item's order;
    # for the one-needle task (niah) they repeat needle_slot / needle_id / needle_image.
    task: str = "niah"
    needle_slots: list[int] = field(default_factory=list)
    needle_ids: list[str] = field(default_factory=list)
    needle_images: list[str] = field(default_factory=list)
    # the stack task: the filler budget in tokens (its ``length`` is the context length in tokens)
    text_tokens: int = 0

    def __post_init__(self) -> None:
        if self.task == "niah" and not self.needle_slots and self.needle_slot >= 0:
            object.__setattr__(self, "needle_slots", [self.needle_slot])
            object.__setattr__(self, "needle_ids", [self.needle_id])
            object.__setattr__(self, "needle_images", [self.needle_image])

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    def identity_row(self) -> dict[str, Any]:
        """What the dataset fingerprint hashes: a one-needle sample's row without the per-needle
        lists it implies (so V-NIAH(-D) datasets keep the fingerprints they had before tasks)."""
        row = asdict(self)
        if self.task != "stack":  # only the stack has a text budget
            row.pop("text_tokens")
        if self.task == "niah":
            for key in ("task", "needle_slots", "needle_ids", "needle_images"):
                row.pop(key)
        return row

    @property
    def window(self) -> int:
        """How many haystack slots the sample reads (:func:`haystack_window`)."""
        return haystack_window(self.to_row())

    @property
    def inserted_images(self) -> dict[int, str]:
        """Slot → image name of every inserted frame (needles and distractors)."""
        return inserted_images(self.to_row())

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
                # datasets written before tasks have no such columns: one needle (__post_init__)
                task=str(row.get("task") or "niah"),
                needle_slots=[int(s) for s in _as_list(row.get("needle_slots"))],
                needle_ids=[str(s) for s in _as_list(row.get("needle_ids"))],
                needle_images=[str(s) for s in _as_list(row.get("needle_images"))],
                text_tokens=int(row.get("text_tokens", 0) or 0),
            )
        except KeyError as exc:
            raise VniahdError(
                f"sample record lacks {exc.args[0]!r}; regenerate the dataset with 'vniahd generate'"
            ) from None


def inserted_images(row: Mapping[str, Any]) -> dict[int, str]:
    """Slot → image name of every inserted frame of a sample row (a dict or DataFrame row): the
    needles (``needle_slots``, or the one ``needle_slot`` of a row written before tasks; a
    negative slot is no needle, counting's bare haystack) and the distractors."""
    slots = [int(s) for s in _as_list(row.get("needle_slots"))]
    if slots:
        out = dict(zip(slots, (str(n) for n in _as_list(row.get("needle_images")))))
    elif int(row["needle_slot"]) >= 0:
        out = {int(row["needle_slot"]): str(row.get("needle_image", "") or "needle")}
    else:
        out = {}
    out.update(
        zip(
            (int(s) for s in _as_list(row.get("distractor_slots"))),
            (str(n) for n in _as_list(row.get("distractor_images"))),
        )
    )
    return out


def haystack_window(row: Mapping[str, Any]) -> int:
    """How many haystack slots a sample row reads: its ``length`` — except the stack task's, whose
    length is the context in tokens and whose haystack is its clip, every one of its
    ``num_frames`` slots (:mod:`vniahd.dataset.stack`)."""
    if str(row.get("task") or "niah") == "stack":
        return int(row["num_frames"])
    return int(row["length"])


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


#: What tells results apart within one results directory (whose run.json fixes the dataset and
#: the model): one line per (sample, variant, scoring). It is the resume key.
RESULT_KEY_FIELDS = ("sample_id", "variant", "scoring")
#: A result's identity across results directories (the report's record columns): the same
#: dataset and model (:meth:`RunManifest.origin`: ``dataset``, ``model_spec``, ``model_fp``)
#: and the same :data:`RESULT_KEY_FIELDS`.
RESULT_IDENTITY = ("dataset", "model_spec", "model_fp", *RESULT_KEY_FIELDS)


def result_key(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    """The resume key (:data:`RESULT_KEY_FIELDS`) of a result line."""
    sample_id, variant, scoring = (str(rec[k]) for k in RESULT_KEY_FIELDS)
    return (sample_id, variant, scoring)


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


# ---- result files -------------------------------------------------------------------------------
#: The result files of a results directory: ``results.jsonl``, or per-rank ``results.rank{K}.jsonl``.
RESULTS_GLOB = "results*.jsonl"


def result_files(results_dir: str | Path, pattern: str = RESULTS_GLOB) -> list[Path]:
    """The files of ``results_dir`` matching ``pattern`` (default: its result files), sorted."""
    return sorted(Path(results_dir).glob(pattern))


def read_checked(path: Path) -> bytes:
    """The bytes of a results or report input file, or one VniahdError saying why it cannot be read
    (a directory, unreadable, not UTF-8 text)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise VniahdError(
            f"{path} is a directory, not a results file; rename it or pass the results files themselves"
        ) from None
    except OSError as exc:
        raise VniahdError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from None
    try:
        data.decode("utf-8")  # result lines are ASCII JSON, so even a torn tail decodes
    except UnicodeDecodeError:
        raise VniahdError(
            f"{path} is not UTF-8 text; pass results written by 'vniahd eval' or an all_accuracies.json file"
        ) from None
    return data


def read_result_file(
    path: Path, notes: list[str] | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The JSON objects of a jsonl file, each with its line number, and the byte length of the
    file's valid prefix.

    A run killed mid-write can leave a torn *last* line (no newline, half an object): it is
    dropped (a note goes to ``notes``) and left out of the valid prefix, which the writer cuts
    back to before it appends. A line that is not valid JSON *before* the last one is no crash
    artefact: a :class:`VniahdError` names the file and line, as does a line that is not an object.
    """
    lines = read_checked(path).split(b"\n")
    records: list[tuple[int, dict[str, Any]]] = []
    pos = 0
    for i, raw in enumerate(lines):
        end = pos + len(raw) + (0 if i == len(lines) - 1 else 1)
        if not raw.strip():
            pos = end
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            if all(not r.strip() for r in lines[i + 1 :]):
                if notes is not None:
                    notes.append(
                        f"{path.name}, line {i + 1}: torn last line skipped "
                        "(run interrupted or still running)"
                    )
                return records, pos
            raise VniahdError(
                f"{path}, line {i + 1}: not valid JSON ({exc.msg}) and not the last line, so not a "
                "torn write; fix or delete that line"
            ) from None
        if not isinstance(obj, dict):
            raise VniahdError(
                f"{path}, line {i + 1}: expected a JSON object per line, got {type(obj).__name__}; "
                "fix or delete that line"
            )
        records.append((i + 1, obj))
        pos = end
    return records, pos


def read_results(results_dir: str | Path, pattern: str = RESULTS_GLOB) -> list[dict[str, Any]]:
    """Every complete record of ``results_dir``'s result files (shards included;
    ``pattern="timings*.jsonl"`` reads the measurements instead), torn last lines dropped."""
    return [obj for path in result_files(results_dir, pattern) for _, obj in read_result_file(path)[0]]


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
    ("attention_scope",),
)

#: What an identity field means when a run.json predates it (so older results directories keep
#: matching the runs that produced them).
IDENTITY_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("prompt_layout", "name"): "reference",
    ("attention_scope",): "full",
}


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
