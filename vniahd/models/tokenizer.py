"""Text tokenizers behind one small interface.

Two sources:

- :func:`byte_tokenizer` builds a local byte-level tokenizer with the ``tokenizers`` library for
  the random-weight backends: 256 byte tokens (every string encodes, nothing is out of
  vocabulary) plus the Qwen2 chat special tokens (``<|im_start|>``, ``<|im_end|>`` …) and
  GLM-4.1V's vision markers, which are
  matched as single tokens wherever they appear in the text — as Qwen2's own ``tokenizer.json``
  does with its added tokens.
- :func:`load_tokenizer_file` reads a checkpoint's ``tokenizer.json`` (Qwen2-VL ships one).

Both are wrapped in :class:`TextTokenizer`: ``encode`` never adds BOS/EOS (the prompt template
writes every special token it wants explicitly), ``decode`` drops special tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vniahd.errors import VniahdError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: Qwen2 chat / vision special tokens, in Qwen2-VL's order (ids 151643.. in the real vocabulary).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: GLM-4.1V's vision markers (its processor's video / frame markup, vniahd.models.families), so
#: that ``random:glm-4.1v`` can lay a prompt out as GLM does; ids follow the Qwen2 ones.
GLM_VISION_TOKENS: tuple[str, ...] = (
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|image|>",
    "<|video|>",
)

#: Tokens that end an assistant turn (greedy generation stops on any of them).
STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")


@dataclass
class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the ids the evaluator needs."""

    tokenizer: Tokenizer  # imported lazily at run time (annotation only here)
    source: str
    stop_ids: list[int] = field(default_factory=list)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in the text become their single ids."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def fingerprint(self) -> str:
        from vniahd.files import sha256_bytes

        return sha256_bytes(self.tokenizer.to_str())


def _with_stop_ids(tok: Tokenizer, source: str) -> TextTokenizer:
    stop = [i for i in (tok.token_to_id(t) for t in STOP_TOKENS) if i is not None]
    return TextTokenizer(tokenizer=tok, source=source, stop_ids=stop)


def byte_tokenizer() -> TextTokenizer:
    """The local byte-level tokenizer: ids 0..255 are bytes (GPT-2 byte-to-unicode alphabet),
    then the :data:`SPECIAL_TOKENS` in order (``<|endoftext|>`` = 256, ``<|im_start|>`` = 257 …),
    then :data:`GLM_VISION_TOKENS` (270 …).

    Built in code, deterministic, no download. One token per byte keeps multi-token answers
    (e.g. "200" → 3 tokens) in the tests.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # Order the 256 byte symbols by the byte they stand for, so id == byte value.
    byte_to_symbol = _gpt2_bytes_to_unicode()
    vocab = {byte_to_symbol[b]: b for b in range(256)}
    if set(vocab) != set(alphabet):  # pragma: no cover - guards a tokenizers change
        raise RuntimeError("tokenizers' ByteLevel alphabet differs from the GPT-2 byte map")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = (*SPECIAL_TOKENS, *GLM_VISION_TOKENS)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return _with_stop_ids(tok, "local byte-level (vniahd.models.tokenizer.byte_tokenizer)")


def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-unicode map (Radford et al. 2019, encoder.py)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


def load_tokenizer_file(path: str | Path) -> TextTokenizer:
    """Load ``tokenizer.json`` (a file, or a checkpoint directory holding one)."""
    from tokenizers import Tokenizer

    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise VniahdError(
            f"no tokenizer.json in {path}; a Qwen2-VL checkpoint directory must contain the "
            "tokenizer files saved with it (copy tokenizer.json from the original checkpoint)"
        )
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise VniahdError(f"{file} is not a readable tokenizers file ({exc}); re-save it") from exc
    return _with_stop_ids(tok, str(file))
