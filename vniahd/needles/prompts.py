"""The question text a model sees for a needle.

Native needles are composed as ``"Options: A. x B. y C. z D. w\\n<question>"``: the options come
first so that the query attribute (e.g. the card colour) is the last thing before the answer. A
small model learns that as a one-hop lookup, a two-hop question with the options last did not train
(tiny-model feasibility prototype). The answer instruction is the LLaVA/lmms-eval convention for
multiple choice and short answers, appended on its own line when ``instruction=True``.

Reference-format needles carry their own verbatim prompt, which is returned unchanged (with
``instruction=False`` a trailing known instruction sentence is removed); :func:`parse_options`
and :func:`prompt_options` read the options back out of such a prompt (the reference and the
V-RULER loaders both use them).
"""

from __future__ import annotations

import re

from vniahd.errors import VniahdError
from vniahd.needles.schema import LETTERS, Needle, option_letter, validate_answer

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


_LINE_OPTION = re.compile(r"^\s*\(?([A-Z])[.)]\s*(.+?)\s*$")


def parse_options(prompt: str) -> tuple[str, tuple[str, ...] | None]:
    """Split a prompt into (question, options). Options are ``A.``/``(A)``/``A)`` markers, one per
    line or inline, consecutive from A; fewer than two found → ``(prompt, None)``.

    The question is the text before the first option marker (or, for line options, the non-option
    lines without a trailing answer instruction).
    """
    lines = prompt.splitlines()
    found: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = _LINE_OPTION.match(line)
        if m and m.group(1) == LETTERS[len(found)]:
            found.append((i, m.group(2)))
        elif found:
            if len(found) >= 2:
                break
            found = []
    if len(found) >= 2:
        idx = {i for i, _ in found}

        rest = [
            ln
            for i, ln in enumerate(lines)
            if i not in idx
            and ln.strip()
            and ln.strip() not in KNOWN_INSTRUCTIONS
            and ln.strip().rstrip(":") != "Options"
        ]
        return "\n".join(rest).strip(), tuple(t for _, t in found)
    # Inline: "… A. x B. y C. z D. w" — each marker must follow whitespace or start of text.
    starts: list[tuple[int, int]] = []
    pos = 0
    for letter in LETTERS:
        m = re.compile(rf"(?:^|(?<=\s))\(?{letter}[.)]\s+").search(prompt, pos)
        if not m:
            break
        starts.append((m.start(), m.end()))
        pos = m.end()
    if len(starts) < 2:
        return prompt.strip(), None

    opts, tail = [], ""
    for k, (_, end) in enumerate(starts):
        stop = starts[k + 1][0] if k + 1 < len(starts) else len(prompt)
        text, _, after = prompt[end:stop].partition("\n")
        for ins in KNOWN_INSTRUCTIONS:  # an instruction run on after the last option is not part of it
            text = text.split(ins, 1)[0]
        opts.append(text.strip())
        if k + 1 == len(starts):
            tail = after
    head = prompt[: starts[0][0]].strip()
    if head.endswith("Options:"):
        head = head[: -len("Options:")].strip()
    tail_lines = [
        ln.strip() for ln in tail.splitlines() if ln.strip() and ln.strip() not in KNOWN_INSTRUCTIONS
    ]
    return "\n".join([x for x in [head, *tail_lines] if x]), tuple(opts)


def prompt_options(where: str, prompt: str, answer: str) -> tuple[str, tuple[str, ...] | None]:
    """(question, options) of a verbatim prompt, checked against its answer.

    A letter answer needs parsed options; a non-letter answer is a short answer even if the prompt
    happens to contain option-like text.
    """
    question, options = parse_options(prompt)
    if options is not None and not (len(answer) == 1 and answer in LETTERS):
        options = None
    if options is None and len(answer) == 1 and answer in LETTERS[:8]:
        raise VniahdError(
            f"{where}: answer {answer!r} looks like an option letter but no options "
            "were found in the prompt; write them as 'A. text' lines or inline"
        )
    validate_answer(where, answer, options)
    return question, options
