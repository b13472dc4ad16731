"""Keyword tokenizer of the tiny video LM.

The tiny model knows a closed list of ~60 content words (question words, colours, objects, option
letters, and whole options such as ``A. cat``) and **drops everything else**: punctuation, chat
markup, answer instructions. Words are, in order of precedence: an option (a capital letter, a
full stop, one space and a word: ``A. cat``), a maximal run of ASCII letters/digits, or any other
non-space character (dropped). Matching is case-sensitive, so the option letter ``A`` and the
article ``a`` stay different.

Why whole options are single tokens: with ``A``, ``cat`` as two tokens, mapping the object found
on the card to its letter needs a previous-token head *and* a content match, on top of the card
lookup — three hops for a 2-layer model. Trained that way, the model answered the short-answer
question 0.99 of the time but stayed at chance on multiple choice for 1500 steps in one seed of two
(mrope, seed 0). One token per option leaves two hops: the colour token fetches the card's object,
then matches it to an option token whose embedding carries the letter.

Why drop instead of ``<unk>``: the question's attribute (the card colour) is then the last token
before the answer whatever template and instruction the evaluator wraps around the question. The
feasibility prototype found that this makes the task learnable for a 2-layer model (the query token
looks the card up itself); with the attribute ~20 boilerplate tokens before the answer, our 2-layer
model stayed at chance on distractor episodes for 800+ steps (the extra positional hop must be
learnt before any content hop pays off). It also makes the tiny model indifferent to prompt
templates: ``reference``, ``plain`` and custom ones give the same token sequence.

The tokenizer is a ``tokenizers`` WordLevel model (pre-tokenized by the word pattern above)
wrapped in the evaluator's :class:`vniahd.models.tokenizer.TextTokenizer` interface;
:func:`split_words` is the pure-Python statement of the same splitting rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vniahd.files import write_text_atomic
from vniahd.models.tokenizer import TextTokenizer

if TYPE_CHECKING:
    import torch

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
_OPTION_PATTERN = r"(?P<letter>[A-Z])\. (?P<word>[A-Za-z]+)"  # prompt_text's "A. cat"
_WORD_PATTERN = r"[A-Z]\. [A-Za-z]+|[A-Za-z0-9]+|[^\sA-Za-z0-9]"  # the option first, ungrouped
_WORD = re.compile(_WORD_PATTERN)
_OPTION = re.compile(_OPTION_PATTERN)


def option_parts(vocab: dict[str, int]) -> torch.Tensor:
    """[V, 2] token ids whose embeddings make up each token: ``(id("A"), id("cat"))`` for the
    option token ``A. cat``, ``(i, -1)`` for every other token ``i`` (itself alone).

    The tiny model embeds an option as the *sum* of its letter's and its object's embeddings
    (:meth:`vniahd.models.tiny.model.TinyVideoLM.embed_text`), so the object's word embedding (shared
    with the short-answer task) and the letter's serve all 4 × 8 options instead of 32 separately
    learnt embeddings."""
    import torch

    size = max(vocab.values()) + 1
    parts = torch.stack([torch.arange(size), torch.full((size,), -1)], dim=1)
    for word, i in vocab.items():
        m = _OPTION.fullmatch(word)
        if m and m["letter"] in vocab and m["word"] in vocab:
            parts[i] = torch.tensor([vocab[m["letter"]], vocab[m["word"]]])
    return parts


def split_words(text: str) -> list[str]:
    """``"Which object? A. cat B"`` → ``["Which", "object", "?", "A. cat", "B"]``."""
    return _WORD.findall(text)


def make_tokenizer(words: list[str], special_tokens: Iterable[str] = ()):
    """A ``tokenizers.Tokenizer`` over ``words`` (ids = list positions); ``special_tokens`` (e.g.
    chat markers a prompt template writes) are added after the words and matched whole."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if list(words[: len(SPECIALS)]) != list(SPECIALS):
        raise ValueError(f"vocabulary must start with {SPECIALS}")
    if len(set(words)) != len(words):
        raise ValueError("vocabulary has duplicate words")
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token=UNK))
    # The words are the pattern's matches; what lies between them (whitespace) is removed.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_WORD_PATTERN), behavior="removed", invert=True)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    specials = [t for t in special_tokens if t not in words]
    if specials:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def text_tokenizer(words: list[str], special_tokens: Iterable[str] = ()):
    """The evaluator-facing tokenizer for a word list: out-of-vocabulary words are dropped."""

    class KeywordTokenizer(TextTokenizer):
        def encode(self, text: str) -> list[int]:
            unk = self.tokenizer.token_to_id(UNK)
            return [i for i in self.tokenizer.encode(text, add_special_tokens=False).ids if i != unk]

    tok = make_tokenizer(words, special_tokens)
    return KeywordTokenizer(
        tokenizer=tok, source="vniahd tiny keyword vocabulary (out-of-vocabulary words dropped)", stop_ids=[]
    )


def save_words(path: str | Path, words: list[str], special_tokens: Iterable[str] = ()) -> None:
    write_text_atomic(
        path,
        json.dumps(
            {"type": "vniahd-word-level", "words": list(words), "special_tokens": list(special_tokens)},
            indent=1,
        )
        + "\n",
    )


def load_words(path: str | Path) -> tuple[list[str], list[str]]:
    data = json.loads(Path(path).read_text())
    return list(data["words"]), list(data.get("special_tokens", []))
