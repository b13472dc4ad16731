"""Prompt templates: the text around the spliced frame embeddings.

A template is two strings: ``before`` (text before the first visual token) and ``after`` (text
between the last visual token and the answer), where ``after`` contains ``{question}``. The
answer tokens follow ``after`` directly.

``reference`` is the published V-NIAH-D template (VideoRoPE/LongVA evaluation code; see
docs/reference-protocol.md)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    [frame embeddings, no vision start/end tokens]
    {question}<|im_end|>\\n<|im_start|>assistant\\n
    [answer tokens, teacher-forced]

Other templates are registered in :data:`TEMPLATES` or read from a JSON file
``{"name": ..., "before": ..., "after": "...{question}..."}`` (``--prompt-template FILE``).
The answer is tokenised on its own (not merged with the prompt's last token), as the reference
code does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vniahd.errors import UnknownNameError, VniahdError


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    before: str
    after: str

    def __post_init__(self) -> None:
        if "{question}" not in self.after:
            raise VniahdError(f"prompt template {self.name!r}: 'after' must contain {{question}}")

    def render_after(self, question: str) -> str:
        return self.after.replace("{question}", question)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"

#: The templates that ship with vniahd. Frozen: the tiny model's vocabulary is derived from their
#: text, so registering another template in :data:`TEMPLATES` must not change any checkpoint key.
BUILTIN_TEMPLATES: tuple[PromptTemplate, ...] = (
    PromptTemplate("reference", _SYSTEM, "{question}<|im_end|>\n<|im_start|>assistant\n"),
    # Qwen2-VL's own chat template wraps the video in vision start/end tokens; the reference
    # protocol does not, this one does (useful to check a checkpoint's sensitivity to it).
    PromptTemplate(
        "qwen-vision-tokens",
        _SYSTEM + "<|vision_start|>",
        "<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n",
    ),
    # Bare: no chat markup (for base, non-instruct models).
    PromptTemplate("plain", "", "\n{question}\nAnswer: "),
)

#: name → template: the built-ins, plus any a user registers.
TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in BUILTIN_TEMPLATES}


def get_template(name_or_path: str) -> PromptTemplate:
    """A registered template by name, or one read from a JSON file."""
    if name_or_path in TEMPLATES:
        return TEMPLATES[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file():
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise VniahdError(f"prompt template file {path} not found") from None
        except json.JSONDecodeError as exc:
            raise VniahdError(f"prompt template file {path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not {"before", "after"} <= set(data):
            raise VniahdError(f"prompt template file {path} needs 'before' and 'after' strings")
        return PromptTemplate(str(data.get("name", path.stem)), str(data["before"]), str(data["after"]))
    raise UnknownNameError("prompt template", name_or_path, list(TEMPLATES))
