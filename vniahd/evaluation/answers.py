"""Reading a generated answer: which option letter (or short answer) a model's text names.

Scoring a given answer is kept apart from producing it (``--scoring generate`` decodes, then one
rule here reads the text), so the rule can be checked on strings alone:

- ``option`` (:func:`parse_choice`, vniahd's rule): a leading letter (``"B"``, ``"(B)"``,
  ``"B. cat"``), else the first standalone valid letter, else none.
- ``lvb`` (:func:`released_stack_letter`): the rule of V-RULER's stack scorer
  (``videorope_plus/v_ruler/eval/check_lengthy_multimodal_stack.py:49-71``, LongVideoBench's
  ``extract_characters_regex``), kept with its quirks: it deletes a list of answer prefixes in
  which two pairs are fused by missing commas (``"The best option isThe correct option is"``,
  ``"Best answer:Best option:"``), so "The best option is", "The correct option is", "Best
  answer:" and "Best option:" are not deleted when they stand alone; it returns nothing for more
  than 10 words without any of A-E, and otherwise the first A-E *anywhere*, inside a word too:
  "Best option: A" and "Based on …" read as B.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

__all__ = ["ANSWER_RULES", "RELEASED_PREFIXES", "normalize_answer", "parse_choice", "released_stack_letter"]


def parse_choice(text: str, letters: list[str]) -> str:
    """The option letter a generated answer names: a leading letter (``"B"``, ``"(B)"``,
    ``"B. cat"``), else the first standalone valid letter; ``""`` when none."""
    valid = "".join(letters)
    stripped = text.strip()
    m = re.match(rf"^[\(\[]?([{valid}])(?:[\)\]\.:,\s]|$)", stripped)
    if m:
        return m.group(1)
    m = re.search(rf"(?<![A-Za-z])([{valid}])(?![A-Za-z])", stripped)
    return m.group(1) if m else ""


def normalize_answer(text: str) -> str:
    """Case-folded, whitespace-collapsed, surrounding punctuation removed (short answers)."""
    text = " ".join(text.strip().split()).lower()
    return text.strip(string.punctuation + " ")


#: The prefixes the released stack scorer deletes, as its list evaluates (two pairs fused).
RELEASED_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
    "Answer:",
    "Option:",
)


def released_stack_letter(text: str, letters: list[str] | None = None) -> str:
    """The letter V-RULER's stack scorer reads from ``text`` (module docstring); ``letters`` is
    ignored: the released rule always looks for A-E."""
    s = text.strip()
    for prefix in RELEASED_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCDE]", s):
        return ""
    m = re.search(r"[ABCDE]", s)
    return m[0] if m else ""


#: name → rule ``(generated text, option letters) -> letter`` for multiple-choice answers.
ANSWER_RULES: dict[str, Callable[[str, list[str]], str]] = {
    "option": parse_choice,
    "lvb": released_stack_letter,
}
