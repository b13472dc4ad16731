"""The question text a model sees for a needle.

Native needles are composed as ``"Options: A. x B. y C. z D. w\\n<question>"``: the options come
first so that the query attribute (e.g. the card colour) is the last thing before the answer. A
small model learns that as a one-hop lookup, a two-hop question with the options last did not train
(tiny-model feasibility prototype). The answer instruction is the LLaVA/lmms-eval convention for
multiple choice and short answers, appended on its own line when ``instruction=True``.

Reference-format needles carry their own verbatim prompt, which is returned unchanged (with
``instruction=False`` a trailing known instruction sentence is removed).
"""

from __future__ import annotations

from vniahd.needles.schema import Needle, option_letter

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
SHORT_INSTRUCTION = "Answer the question using a single word or phrase."
KNOWN_INSTRUCTIONS = (MC_INSTRUCTION, SHORT_INSTRUCTION)


def options_line(options: tuple[str, ...] | list[str]) -> str:
    """``"Options: A. cat B. coffee …"`` on one line."""
    return "Options: " + " ".join(f"{option_letter(i)}. {o}" for i, o in enumerate(options))


def instruction_for(needle: Needle) -> str:
    return MC_INSTRUCTION if needle.is_multiple_choice else SHORT_INSTRUCTION


def prompt_text(needle: Needle, instruction: bool = True) -> str:
    """The user-turn text for ``needle`` (the video frames come before it)."""
    if needle.prompt is not None:
        text = needle.prompt
        if not instruction:
            stripped = text.rstrip()
            for ins in KNOWN_INSTRUCTIONS:
                if stripped.endswith(ins):
                    return stripped[: -len(ins)].rstrip()
        return text
    body = needle.question.strip()
    if needle.options is not None:
        body = options_line(needle.options) + "\n" + body
    if instruction:
        body += "\n" + instruction_for(needle)
    return body
