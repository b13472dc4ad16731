"""The one evaluation configuration: every ``vniahd eval`` option, named and checked once.

:class:`EvalConfig` is built by the CLI (:meth:`EvalConfig.from_args`), by ``vniahd.evaluate``
(its keywords are these fields) and by code that drives a :class:`~vniahd.evaluation.Runner`
itself; the runner records :meth:`EvalConfig.to_dict` in run.json (``config``). Each field's name
is its flag's (``--encode-batch`` is ``encode_batch``; ``--no-prefix-sharing`` is
``prefix_sharing=False``; ``--variant`` is ``variants``). Values are checked in
``__post_init__``, so a bad one raises :class:`~vniahd.errors.VniahdError` naming the flag before
any dataset is opened or model loaded. The module itself is torch-free, but importing it runs
``vniahd.evaluation``'s ``__init__`` (which loads the runner and torch).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Union

from vniahd.errors import UnknownNameError, VniahdError

if TYPE_CHECKING:
    from vniahd.evaluation.execution.attention_scope import AttentionScope
    from vniahd.prompt_templates import PromptTemplate
    from vniahd.rope import Variant

VariantLike = Union[str, "Variant"]
TemplateLike = Union[str, "PromptTemplate"]

#: Options whose change between a run and its resume would change result lines (the batch and
#: prefix-cache plan): a resume with another value is refused (:func:`check_resume`).
RESUME_PINNED = ("batch_size", "prefill_chunk", "prefix_sharing")

_FLAGS = {"prefix_sharing": "--no-prefix-sharing", "variants": "--variant"}


def flag(option: str) -> str:
    """The CLI flag of an :class:`EvalConfig` field."""
    return _FLAGS.get(option, "--" + option.replace("_", "-"))


class VariantSummary(TypedDict):
    """One variant's accuracy in the scoring mode of the run."""

    correct: int
    total: int
    accuracy: float


#: What ``vniahd.evaluate`` and :meth:`Runner.run` return: variant name → its summary.
Summary = dict[str, VariantSummary]


@dataclass(frozen=True)
class EvalConfig:
    """Every evaluation option (see module docstring); strings are resolved on construction:
    ``variants`` to :class:`~vniahd.rope.Variant`, ``prompt_template`` to a
    :class:`~vniahd.prompt_templates.PromptTemplate`, ``prefill_chunk="auto"`` to ``None``."""

    variants: Sequence[VariantLike]
    scoring: str = "reference"
    limit: int | None = None
    prompt_template: TemplateLike = "reference"
    prompt: str = "reference"  # prompt layout: reference | native (execution/prompt_layout.py)
    max_new_tokens: int = 8
    encode_batch: int = 16
    cache_dir: str | Path | None = None  # None: $VNIAHD_CACHE/embeddings
    prefix_sharing: bool = True
    prefill_chunk: int | str | None = None  # None / "auto": by device (chunked.py); 0 = off
    batch_size: int | str = "auto"  # a number, or "auto" (work_plan.AUTO_BATCH_TOKENS)
    progress: bool = True
    attention_scope: str | AttentionScope = "full"  # full | zigzag-local:W (attention_scope.py)

    def __post_init__(self) -> None:
        from vniahd.prompt_templates import PromptTemplate, get_template
        from vniahd.rope import get_variant

        v = self.variants
        given = [v] if isinstance(v, str) or not isinstance(v, Sequence) else v
        variants = tuple(get_variant(x) for x in given)
        if not variants:
            raise VniahdError("no --variant given; name at least one (e.g. --variant mrope)")
        names = [x.name for x in variants]
        if len(set(names)) != len(names):
            raise VniahdError(f"variant names repeat in {names}; give each variant once")
        t = self.prompt_template
        set_ = object.__setattr__
        set_(self, "variants", variants)
        set_(self, "prompt_template", t if isinstance(t, PromptTemplate) else get_template(t))
        chunk = self.prefill_chunk
        set_(self, "prefill_chunk", None if chunk in (None, "auto") else _count(chunk, "prefill_chunk", 0))
        if self.batch_size != "auto":
            set_(self, "batch_size", _count(self.batch_size, "batch_size", 1, auto=True))
        if self.limit is not None:
            set_(self, "limit", _count(self.limit, "limit", 1))
        set_(self, "max_new_tokens", _count(self.max_new_tokens, "max_new_tokens", 1))
        set_(self, "encode_batch", _count(self.encode_batch, "encode_batch", 1))
        self._check_names()
        self._resolve_scope()

    def _resolve_scope(self) -> None:
        """The released harness's zigzag view scores teacher-forced answers, one sample per
        pass: each scored row sees its own process's chunks only, so no prefix is shared."""
        from vniahd.evaluation.execution.attention_scope import AttentionScope, parse_scope

        scope = self.attention_scope
        scope = scope if isinstance(scope, AttentionScope) else parse_scope(str(scope))
        object.__setattr__(self, "attention_scope", scope)
        if scope.is_full:
            return
        if self.scoring != "reference":
            raise VniahdError(
                f"--attention-scope {scope.name} emulates the released harness, which scores "
                f"teacher-forced answer tokens; use --scoring reference (got {self.scoring!r})"
            )
        object.__setattr__(self, "prefix_sharing", False)
        object.__setattr__(self, "batch_size", 1)

    def _check_names(self) -> None:
        from vniahd.evaluation.execution.prompt_layout import PROMPT_LAYOUTS
        from vniahd.evaluation.scoring import SCORING_MODES

        if self.scoring not in SCORING_MODES:
            raise UnknownNameError("scoring mode", self.scoring, SCORING_MODES)
        if self.prompt not in PROMPT_LAYOUTS:
            raise UnknownNameError("prompt layout", self.prompt, PROMPT_LAYOUTS)

    # Typed views of the resolved fields (construction accepts the looser input types).
    @property
    def variant_list(self) -> list[Variant]:
        return list(self.variants)  # type: ignore[arg-type]  # resolved in __post_init__

    @property
    def scope(self) -> AttentionScope:
        return self.attention_scope  # type: ignore[return-value]  # resolved in __post_init__

    @property
    def template(self) -> PromptTemplate:
        return self.prompt_template  # type: ignore[return-value]  # resolved in __post_init__

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalConfig:
        """The configuration ``vniahd eval``'s parsed arguments describe."""
        return cls(
            variants=args.variant,
            scoring=args.scoring,
            limit=args.limit,
            prompt_template=args.prompt_template,
            prompt=args.prompt,
            max_new_tokens=args.max_new_tokens,
            encode_batch=args.encode_batch,
            cache_dir=args.cache_dir,
            prefix_sharing=not args.no_prefix_sharing,
            prefill_chunk=args.prefill_chunk,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            attention_scope=args.attention_scope,
        )

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON (run.json's ``config``): variants by name, the template's text."""
        return {
            "variants": [v.name for v in self.variant_list],
            "scoring": self.scoring,
            "limit": self.limit,
            "prompt_template": self.template.to_dict(),
            "prompt": self.prompt,
            "max_new_tokens": self.max_new_tokens,
            "encode_batch": self.encode_batch,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "prefix_sharing": self.prefix_sharing,
            "prefill_chunk": "auto" if self.prefill_chunk is None else self.prefill_chunk,
            "batch_size": self.batch_size,
            "progress": self.progress,
            "attention_scope": self.scope.name,
        }


def _count(value: Any, option: str, minimum: int, auto: bool = False) -> int:
    try:
        n = int(value)
        ok = n >= minimum and (not isinstance(value, float) or value == n)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        what = f"an integer >= {minimum}" + (" or 'auto'" if auto or option == "prefill_chunk" else "")
        raise VniahdError(f"{flag(option)} must be {what}, got {value!r}")
    return n


def check_resume(results_dir: Path, resolved: dict[str, Any], scope: str = "full") -> None:
    """Refuse to resume ``results_dir`` with a :data:`RESUME_PINNED` option (as the runner
    resolved it, e.g. ``prefill_chunk`` in tokens) other than its last invocation's (run.json
    ``runs``): batches and prefix-cache steps would be cut differently and result lines could
    differ from an uninterrupted run's. A directory without results is not a resume."""
    from vniahd.evaluation.results.store import RUN_FILE, read_results
    from vniahd.records import RunManifest

    path = results_dir / RUN_FILE
    if not path.is_file() or not read_results(results_dir):
        return
    data = RunManifest.read(path).data
    before = data.get("attention_scope") or "full"
    if before != scope:  # checked first: the scope also fixes the batch plan, named below
        raise VniahdError(
            f"{results_dir} holds results scored with --attention-scope {before}, this run asks "
            f"for {scope}; results of different attention scopes must not be mixed — rerun with "
            f"--attention-scope {before}, or choose another --out"
        )
    runs = data.get("runs") or []
    last = runs[-1] if runs and isinstance(runs[-1], dict) else {}
    for option in RESUME_PINNED:
        if option in last and option in resolved and last[option] != resolved[option]:
            old, new = _setting(option, last[option]), _setting(option, resolved[option])
            fix = _setting(option, last[option], fix=True)
            raise VniahdError(
                f"{results_dir} was run with {old}, this run has {new}; a resume must cut batches "
                f"and prefix-cache steps as the run it continues did — {fix}, or choose another --out"
            )


def _setting(option: str, value: Any, fix: bool = False) -> str:
    if option == "prefix_sharing":
        if fix:
            return "rerun without --no-prefix-sharing" if value else "rerun with --no-prefix-sharing"
        return "prefix sharing " + ("on" if value else "off")
    return f"{'rerun with ' if fix else ''}{flag(option)} {value}"
