"""Keyword tokenizer of the tiny video LM.

The tiny model knows a closed list of ~30 content words (question words, colours, objects, option
letters) and **drops everything else**: punctuation, chat markup, answer instructions. Words are
maximal runs of ASCII letters/digits; every other non-space character is its own (dropped) token.
Matching is case-sensitive, so the option letter ``A`` and the article ``a`` stay different.

Why drop instead of ``<unk>``: the question's attribute (the card colour) is then the last token
before the answer whatever template and instruction the evaluator wraps around the question. Issue
7's prototype found that exactly this makes the task learnable for a 2-layer model (the query token
looks the card up itself); with the attribute ~20 boilerplate tokens before the answer, our 2-layer
model stayed at chance on distractor episodes for 800+ steps (the extra positional hop must be
learnt before any content hop pays off). It also makes the tiny model indifferent to prompt
templates: ``reference``, ``plain`` and custom ones give the same token sequence.

The tokenizer is a ``tokenizers`` WordLevel model (whitespace split, then every non-alphanumeric
character isolated) wrapped in the evaluator's :class:`vniahd.models.tokenizer.TextTokenizer`
interface; :func:`split_words` is the pure-Python statement of the same splitting rule.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from vniahd.files import write_text_atomic

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
_WORD = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


def split_words(text: str) -> list[str]:
    """``"Which object? A cat"`` → ``["Which", "object", "?", "A", "cat"]``."""
    return _WORD.findall(text)


def build_vocabulary(texts: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Specials, then every word of ``texts`` and ``extra`` sorted (deterministic)."""
    seen = {w for t in texts for w in split_words(t)} | set(extra)
    return list(SPECIALS) + sorted(seen - set(SPECIALS))


def make_tokenizer(words: list[str], special_tokens: Iterable[str] = ()):
    """A ``tokenizers.Tokenizer`` over ``words`` (ids = list positions); ``special_tokens`` (e.g.
    chat markers a prompt template writes) are added after the words and matched whole."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if list(words[:len(SPECIALS)]) != list(SPECIALS):
        raise ValueError(f"vocabulary must start with {SPECIALS}")
    if len(set(words)) != len(words):
        raise ValueError("vocabulary has duplicate words")
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(r"[^A-Za-z0-9]"), behavior="isolated"),
    ])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    specials = [t for t in special_tokens if t not in words]
    if specials:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def text_tokenizer(words: list[str], special_tokens: Iterable[str] = ()):
    """The evaluator-facing tokenizer for a word list: out-of-vocabulary words are dropped."""
    from vniahd.models.tokenizer import TextTokenizer

    class KeywordTokenizer(TextTokenizer):
        def encode(self, text: str) -> list[int]:
            unk = self.tokenizer.token_to_id(UNK)
            return [i for i in self.tokenizer.encode(text, add_special_tokens=False).ids if i != unk]

    tok = make_tokenizer(words, special_tokens)
    return KeywordTokenizer(tokenizer=tok, source="vniahd tiny keyword vocabulary "
                            "(out-of-vocabulary words dropped)", stop_ids=[])


def save_words(path: str | Path, words: list[str], special_tokens: Iterable[str] = ()) -> None:
    write_text_atomic(path, json.dumps({"type": "vniahd-word-level", "words": list(words),
                                        "special_tokens": list(special_tokens)}, indent=1) + "\n")


def load_words(path: str | Path) -> tuple[list[str], list[str]]:
    data = json.loads(Path(path).read_text())
    return list(data["words"]), list(data.get("special_tokens", []))
