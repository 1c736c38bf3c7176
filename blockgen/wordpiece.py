"""WordPiece (BERT) tokenizers for the grammar engine: the bytes of every token, and an encoder to match.

llguidance needs the bytes each token adds to the text; ``llguidance.hf.from_tokenizer`` refuses
WordPiece ("can't determine decoder type"). A WordPiece tokenizer has no bytes of its own: its
decoder joins the tokens with blanks. blockgen reads a WordPiece token as follows (agreed with the
constrained decoder; a query's text is the concatenation of its tokens' bytes):

* special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``) and the ``[unusedN]``
  placeholders -> ``b""``;
* ``##x`` -> ``b"x"`` (continues the word);
* a token that is one punctuation or symbol character (not a letter or digit) -> that character
  with no blank before it: ``child`` ``*`` -> ``child*``, ``level`` ``"`` -> ``level"``;
* the added operator tokens ``AND``, ``OR``, ``NOT`` -> ``b" AND"``, ``b" OR"``, ``b" NOT"``;
* every other token ``t`` -> ``b" " + t``.

So ``(`` ``climate`` ``OR`` ``"`` ``sea`` ``level`` ``"`` ``)`` reads ``( climate OR" sea level")``:
the blanks this inserts are free in the grammar (between tokens, and squeezed inside a phrase).

:func:`encode` turns query text into ids whose bytes read back as the same query: a word right
after inner punctuation (``covid-19``, ``alzheimer's``, ``behavio?r``) or after ``[`` continues with
``##`` pieces, so that no blank splits it. The tokenizer lower-cases and strips accents (it is
uncased), so the query that comes back is the lower-cased one, operators excepted:
:func:`round_trips` checks that. Pure functions of the tokenizer; no model is loaded here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Optional

#: The operators, added to an uncased vocabulary as tokens of their own (upper case, not normalised).
OPERATORS = ("AND", "OR", "NOT")
#: Punctuation after which a word starts a new term (a blank there changes nothing):
#: after any other punctuation inside a word (``-``, ``'``, ``/``, ``*``, ``[`` ...) the word goes on
#: with ``##`` pieces.
OPENERS = frozenset('()"')
_PIECE = re.compile(r"\s+|[^\W_]+|.", re.DOTALL)
_UNUSED = re.compile(r"\[unused\d+\]\Z")
#: BERT's limit: a longer word is one [UNK].
MAX_WORD_CHARS = 100


def is_wordpiece(hf_tokenizer: Any) -> bool:
    """True if ``hf_tokenizer`` is a fast tokenizer with a WordPiece model (BERT and kin)."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordPiece"


def _prefix(hf_tokenizer: Any) -> str:
    return getattr(hf_tokenizer.backend_tokenizer.model, "continuing_subword_prefix", "##") or "##"


def _is_symbol(text: str) -> bool:
    """One character that is neither a letter nor a digit."""
    return len(text) == 1 and unicodedata.category(text)[0] not in "LN"


def special_token_ids(hf_tokenizer: Any) -> list[int]:
    """Ids that write nothing: the tokenizer's special tokens and the ``[unusedN]`` placeholders."""
    ids = set(hf_tokenizer.all_special_ids)
    ids.update(i for i, tok in getattr(hf_tokenizer, "added_tokens_decoder", {}).items() if tok.special)
    ids.update(i for piece, i in hf_tokenizer.get_vocab().items() if _UNUSED.match(piece))
    return sorted(ids)


def token_bytes(hf_tokenizer: Any) -> list[bytes]:
    """The bytes of every token id of a WordPiece tokenizer, by the convention of this module."""
    if not is_wordpiece(hf_tokenizer):
        raise ValueError(f"{type(hf_tokenizer).__name__} is not a WordPiece tokenizer")
    prefix = _prefix(hf_tokenizer)
    vocab = hf_tokenizer.get_vocab()
    size = max(len(hf_tokenizer), max(vocab.values()) + 1)
    table = [b""] * size
    special = set(special_token_ids(hf_tokenizer))
    for piece, i in vocab.items():
        if i in special:
            continue
        if piece.startswith(prefix) and len(piece) > len(prefix):
            table[i] = piece[len(prefix):].encode("utf-8")
        elif _is_symbol(piece):
            table[i] = piece.encode("utf-8")
        else:
            table[i] = b" " + piece.encode("utf-8")
    return table


def decode(hf_tokenizer: Any, ids: Any) -> str:
    """The text of ``ids``: the concatenation of their bytes (see the module docstring)."""
    table = _table(hf_tokenizer)
    return b"".join(table[i] for i in ids if 0 <= i < len(table)).decode("utf-8", "replace")


class _Encoder:
    """Greedy longest-match WordPiece over one tokenizer's vocabulary (the same rule as BERT's)."""

    def __init__(self, hf_tokenizer: Any):
        self.vocab = hf_tokenizer.get_vocab()
        self.prefix = _prefix(hf_tokenizer)
        self.unk = hf_tokenizer.unk_token_id
        backend = hf_tokenizer.backend_tokenizer
        self.normalizer = backend.normalizer
        self.operators = {op: self.vocab[op] for op in OPERATORS if op in self.vocab}

    def normalize(self, text: str) -> str:
        return self.normalizer.normalize_str(text) if self.normalizer is not None else text

    def word(self, word: str, continued: bool) -> list[int]:
        """The pieces of one word; all ``##`` pieces when ``continued`` (it goes on from the text before)."""
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        out: list[int] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end]
                if start > 0 or continued:
                    piece = self.prefix + piece
                if piece in self.vocab:
                    out.append(self.vocab[piece])
                    start = end
                    break
            else:
                return [self.unk]
        return out

    def pieces(self, text: str):
        """``(kind, raw, normalised)`` for the blanks, alphanumeric runs and single characters of ``text``."""
        for match in _PIECE.finditer(text):
            raw = match.group(0)
            if raw.isspace():
                yield "blank", raw, " "
            elif raw in self.operators:
                yield "operator", raw, raw
            elif raw[0].isalnum():
                yield "word", raw, self.normalize(raw)
            else:
                yield "symbol", raw, self.normalize(raw)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        after: Optional[str] = None  # the symbol just before, if no blank came between
        for kind, _raw, norm in self.pieces(text):
            if kind == "blank":
                after = None
            elif kind == "operator":
                ids.append(self.operators[norm])
                after = None
            elif kind == "symbol":
                for char in norm.strip() or norm:
                    ids.append(self.vocab.get(char, self.unk))
                after = norm.strip()[-1:] or None
            else:
                continued = after is not None and after not in OPENERS
                # the normaliser may split a word (blanks around CJK characters)
                for n, part in enumerate(norm.split()):
                    ids += self.word(part, continued and n == 0)
                after = None
        return ids

    def normalized_text(self, text: str) -> str:
        """``text`` as the tokenizer sees it: lower-cased, accents stripped, operators kept."""
        return "".join(norm for _kind, _raw, norm in self.pieces(text))


@lru_cache(maxsize=8)
def _encoder_for(key: int, hf_tokenizer: Any) -> _Encoder:
    return _Encoder(hf_tokenizer)


@lru_cache(maxsize=8)
def _table_for(key: int, hf_tokenizer: Any) -> tuple:
    return tuple(token_bytes(hf_tokenizer))


def _key(hf_tokenizer: Any) -> int:
    return id(hf_tokenizer) ^ len(hf_tokenizer)


def _encoder(hf_tokenizer: Any) -> _Encoder:
    return _encoder_for(_key(hf_tokenizer), hf_tokenizer)


def _table(hf_tokenizer: Any) -> tuple:
    return _table_for(_key(hf_tokenizer), hf_tokenizer)


def encode(hf_tokenizer: Any, text: str) -> list[int]:
    """Token ids of query ``text`` whose bytes (:func:`decode`) read back as the same query.

    Blanks are where the convention puts them (before every word, none before a symbol);
    a word right after a symbol other than ``(``, ``)`` or ``"`` continues with ``##`` pieces
    (``covid-19`` -> ``co ##vid - ##19``). Text the vocabulary cannot spell gives ``[UNK]``.
    """
    if not is_wordpiece(hf_tokenizer):
        raise ValueError(f"{type(hf_tokenizer).__name__} is not a WordPiece tokenizer")
    return _encoder(hf_tokenizer).encode(text)


def normalize(hf_tokenizer: Any, text: str) -> str:
    """``text`` lower-cased and accent-stripped as the tokenizer reads it, the operators kept."""
    return _encoder(hf_tokenizer).normalized_text(text)


def round_trips(hf_tokenizer: Any, query: str) -> bool:
    """True if ``query`` encodes to ids that read back as the same (normalised) query."""
    from blockgen.parser import QuerySyntaxError, parse

    ids = encode(hf_tokenizer, query)
    if hf_tokenizer.unk_token_id in ids:
        return False
    try:
        return parse(decode(hf_tokenizer, ids)) == parse(normalize(hf_tokenizer, query))
    except QuerySyntaxError:
        return False
