"""Read needle sets: the native JSON format and the reference V-NIAH(-D) format (docs/reference-protocol.md).

Native (``needles/README.md``)::

    {"name": "demo", "needles": [{"id": "red-cat", "image": "red-cat.jpg",
      "question": "Which object is on the card coloured red?",
      "options": ["coffee", "cat", "rocket", "horse"], "answer": "B",
      "distractors": ["blue-rocket.jpg"]}]}

Reference: a JSON list of ``{"path", "prompt", "answer"}`` plus a parallel distractor file with the
same entries whose ``path`` is the distractor image. The prompt is kept verbatim; options are parsed
out of it (``A. x`` / ``(A) x`` / ``A) x`` lines, or inline) so that choice scoring can use them.
A reference list whose every item names its own distractor in ``interrupt_path`` (V-RULER's
``v_niah_d.json``) needs no parallel file (:func:`vniahd.needles.vruler.interrupt_needle_set`).

Image paths are relative to the JSON file (falling back to the path as written, i.e. relative to
the working directory, since reference files in the wild use both; for the reference format, last
to ``images/`` beside the JSON file, the layout of the released V-NIAH-D needle sets).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.files import sha256_bytes
from vniahd.needles.demo import demo_needles_path
from vniahd.needles.json_file import read_needle_json
from vniahd.needles.prompts import prompt_options
from vniahd.needles.schema import Needle, NeedleSet, validate_answer

NATIVE_KEYS = {"id", "image", "question", "options", "answer", "distractors", "prompt", "meta"}
REFERENCE_KEYS = {"path", "prompt", "answer"}


def _resolve_image(where: str, base: Path, value: Any, what: str, *, released_layout: bool = False) -> Path:
    """``value`` relative to the needle file, else as written; with ``released_layout`` (reference
    format) last in ``images/`` beside the file, where the released V-NIAH-D needle sets keep them
    (``vision_niah_d/needle_datasets/dataset.json`` lists ``zoo.png`` for ``images/zoo.png``)."""
    if not isinstance(value, str) or not value:
        raise VniahdError(f"{where}: {what} must be a non-empty path string, got {value!r}")
    candidates = [base / value, Path(value)] + ([base / "images" / value] if released_layout else [])
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise VniahdError(
        f"{where}: {what} {value!r} not found (looked at {candidates[0]}); "
        "image paths are relative to the needle file"
    )


def _native(path: Path, data: Any, raw: bytes) -> NeedleSet:
    entries = data.get("needles") if isinstance(data, dict) else data
    name = data.get("name", "") if isinstance(data, dict) else ""
    if not isinstance(entries, list):
        raise VniahdError(f"{path}: 'needles' must be a list of needle objects")
    base = path.parent
    needles, blobs = [], [raw]
    for i, e in enumerate(entries):
        where = f"{path}: needle {i}" + (
            f" (id {e.get('id')!r})" if isinstance(e, dict) and "id" in e else ""
        )
        if not isinstance(e, dict):
            raise VniahdError(f"{where}: must be a JSON object with id, image, question, answer")
        unknown = set(e) - NATIVE_KEYS
        if unknown:
            raise VniahdError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(NATIVE_KEYS)}")
        for key in ("id", "image", "question", "answer"):
            if key not in e:
                raise VniahdError(f"{where}: missing {key!r}; every needle needs id, image, question, answer")
        nid, question, answer = str(e["id"]), e["question"], e["answer"]
        if not isinstance(question, str):
            raise VniahdError(f"{where}: 'question' must be a string")
        answer = str(answer).strip()
        options = e.get("options")
        if options is not None:
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                raise VniahdError(
                    f"{where}: 'options' must be a list of strings (or absent for a short answer)"
                )
            options = tuple(options)
        validate_answer(where, answer, options)
        image = _resolve_image(where, base, e["image"], "image")
        dists = e.get("distractors", [])
        if not isinstance(dists, list):
            raise VniahdError(f"{where}: 'distractors' must be a list of image paths")
        distractors = tuple(_resolve_image(where, base, d, f"distractor {k}") for k, d in enumerate(dists))
        prompt = e.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise VniahdError(f"{where}: 'prompt' must be a string")
        meta = e.get("meta", {})
        if not isinstance(meta, dict):
            raise VniahdError(f"{where}: 'meta' must be an object")
        needles.append(
            Needle(
                id=nid,
                image=image,
                question=question,
                answer=answer,
                options=options,
                distractors=distractors,
                prompt=prompt,
                meta=meta,
            )
        )
        blobs += [image.read_bytes()] + [d.read_bytes() for d in distractors]
    return NeedleSet(tuple(needles), sha256_bytes(*blobs), str(path), "native", name)


def _reference_entries(path: Path, data: Any) -> list[dict]:
    if not isinstance(data, list):
        raise VniahdError(f"{path}: the reference format is a JSON list of {{path, prompt, answer}}")
    for i, e in enumerate(data):
        if not isinstance(e, dict) or not REFERENCE_KEYS <= set(e):
            raise VniahdError(f"{path}: entry {i}: needs 'path', 'prompt' and 'answer'")
    return data


def _reference_ids(entries: list[dict]) -> list[str]:
    """Ids from the image file stems (made file-name safe); index-suffixed if stems collide."""
    stems = [
        re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(e["path"])).stem).lstrip("_.-") or "needle" for e in entries
    ]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{s}-{i}" for i, s in enumerate(stems)]


def _reference(path: Path, data: Any, raw: bytes, distractor_path: Path | None) -> NeedleSet:
    entries = _reference_entries(path, data)
    blobs = [raw]
    dist_entries: list[dict] | None = None
    if distractor_path is not None:
        ddata, draw = read_needle_json(distractor_path)
        dist_entries = _reference_entries(distractor_path, ddata)
        blobs.append(draw)
        if len(dist_entries) != len(entries):
            raise VniahdError(
                f"{distractor_path}: {len(dist_entries)} entries but {path} has "
                f"{len(entries)}; the distractor file must list the same entries in order"
            )
    ids = _reference_ids(entries)
    needles = []
    for i, (e, nid) in enumerate(zip(entries, ids)):
        where = f"{path}: entry {i} (id {nid!r})"
        prompt = e["prompt"]
        if not isinstance(prompt, str):
            raise VniahdError(f"{where}: 'prompt' must be a string")
        answer = str(e["answer"]).strip()
        question, options = prompt_options(where, prompt, answer)
        image = _resolve_image(where, path.parent, e["path"], "image", released_layout=True)
        distractors: tuple[Path, ...] = ()
        if dist_entries is not None:
            assert distractor_path is not None  # dist_entries is read from it
            d = dist_entries[i]
            dwhere = f"{distractor_path}: entry {i} (id {nid!r})"
            if d["prompt"] != prompt or str(d["answer"]).strip() != answer:
                raise VniahdError(
                    f"{dwhere}: prompt/answer differ from {path} entry {i}; the "
                    "distractor file must list the same entries in the same order"
                )
            distractors = (
                _resolve_image(
                    dwhere, distractor_path.parent, d["path"], "distractor image", released_layout=True
                ),
            )
        needles.append(
            Needle(
                id=nid,
                image=image,
                question=question,
                answer=answer,
                options=options,
                distractors=distractors,
                prompt=prompt,
            )
        )
        blobs += [image.read_bytes()] + [p.read_bytes() for p in distractors]
    return NeedleSet(
        tuple(needles),
        sha256_bytes(*blobs),
        str(path),
        "reference",
        path.stem,
        str(distractor_path) if distractor_path is not None else None,
    )


def detect_format(data: Any) -> str:
    if isinstance(data, dict) and "needles" in data:
        return "native"
    if isinstance(data, list) and data and all(isinstance(e, dict) for e in data):
        if all("path" in e and "prompt" in e for e in data):
            return "reference"
        if all("image" in e for e in data):
            return "native"
    return "unknown"


def load_needle_set(path: str | Path, distractor_path: str | Path | None = None) -> NeedleSet:
    """Load a native or reference needle set (format detected from the JSON shape).

    ``path`` may be ``"demo"`` for the bundled demo set. ``distractor_path`` is the reference
    format's parallel distractor file; native files list distractors per needle instead. With the
    demo set, ``distractor_path="demo"`` names the demo's own distractors (so a command written
    for reference-format files, ``--needles X --distractor-needles Y``, runs on the demo as
    ``--needles demo --distractor-needles demo``).
    """
    if distractor_path is not None and str(distractor_path) == "demo":
        if str(path) != "demo":
            raise VniahdError(
                "--distractor-needles demo names the demo set's own distractors and goes "
                "with --needles demo; for your own needles pass the distractor file"
            )
        distractor_path = None
    elif str(path) == "demo" and distractor_path is not None:
        raise VniahdError(
            f"the demo needle set brings its own distractor images; drop --distractor-needles "
            f"{distractor_path} (or pass --distractor-needles demo)"
        )
    if str(path) == "demo":
        path = demo_needles_path()
    path = Path(path)
    data, raw = read_needle_json(path)
    fmt = detect_format(data)
    if fmt == "native":
        if distractor_path is not None:
            raise VniahdError(
                f"{path} is a native needle file, which lists distractors per needle; "
                "drop --distractor-needles (it is for the reference format)"
            )
        return _native(path, data, raw)
    if fmt == "reference":
        from vniahd.needles.vruler import has_interrupt_paths, interrupt_needle_set

        if distractor_path is None and has_interrupt_paths(data):  # V-RULER's v_niah_d.json
            return interrupt_needle_set(path)
        return _reference(path, data, raw, Path(distractor_path) if distractor_path else None)
    raise VniahdError(
        f'{path}: not a needle set; expected a native file ({{"needles": [...]}}) or '
        'a reference list of {"path", "prompt", "answer"} (see needles/README.md)'
    )
