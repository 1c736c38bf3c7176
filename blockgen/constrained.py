"""Budget-aware closing: what a half-written query still needs, and the token classes to finish it.

Grammar-constrained decoding keeps every prefix *viable* (it can still become a valid
query), but a viable prefix is not a valid query: when ``max_new_tokens`` runs out in the
middle of ``("climate change" OR "global warm`` the output does not parse. blockgen keeps
a reserve instead. For a viable prefix it computes the :class:`Need`:

* ``open_bytes``: bytes still missing from a UTF-8 character cut in the middle,
* ``head``: the rest of an operator cut in the middle (``R`` after ``(a) O``), forced first,
* ``terms``: terms (or characters of a term) that must still be written, for example after
  ``a OR`` or ``(`` or inside ``"`` with nothing in it yet: each costs one *content* token
  (a token that is a whole word by itself, picked by the model),
* ``closers``: the characters that close what is open once that is done (``"``, ``]``, ``)``),
  forced as the tokens the tokenizer gives for them.

``Need.tokens`` is the number of tokens that finishes the query. The rule applied at every
step (see :mod:`blockgen.generate`) is: a sampled token is kept only if the need of the
new prefix still fits in the budget left after it; otherwise the step is spent on
finishing (a content token while a term is missing, else the next forced closer). By
induction the output parses whenever ``max_new_tokens >= MIN_BUDGET`` (one token: the
empty prefix needs one term).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Sequence

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from blockgen.grammar import lark_parser, terminal_regex

#: The smallest ``max_new_tokens`` for which constrained output always parses.
MIN_BUDGET = 1

_TAG_PREFIX = re.compile(r"\[[A-Za-z][A-Za-z /:~0-9-]*\Z")
_PLACEHOLDER = "x"


@dataclass(frozen=True)
class Need:
    """What a viable prefix still needs to become a valid query."""

    open_bytes: int
    terms: int
    closers: str
    head: str = ""

    def tokens(self, encode: Callable[[str], Sequence[int]]) -> int:
        """Tokens that finish the query, with ``encode`` turning forced text into token ids."""
        forced = sum(len(encode(text)) for text in (self.head, self.closers) if text)
        return self.open_bytes + self.terms + forced

    @property
    def complete(self) -> bool:
        return self.open_bytes == 0 and self.terms == 0 and not self.closers and not self.head


def _split_utf8(prefix: bytes) -> tuple[str, int]:
    """Decode ``prefix``; a character cut at the end becomes a placeholder letter.

    Returns the text and how many bytes the cut character still misses.
    """
    try:
        return prefix.decode("utf-8"), 0
    except UnicodeDecodeError as err:
        if err.start < len(prefix) - 3 or err.reason != "unexpected end of data":
            raise
        lead = prefix[err.start]
        width = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
        missing = width - (len(prefix) - err.start)
        return prefix[: err.start].decode("utf-8") + _PLACEHOLDER, missing


def _finish(parser, need_terms: int) -> Optional[tuple[int, str]]:
    """Drive the interactive parser to the end with the fewest tokens: ``)`` where it fits, else one term."""
    closers = ""
    for _ in range(10_000):
        accepts = parser.accepts()
        if "$END" in accepts:
            return need_terms, closers
        if "RPAR" in accepts:
            parser.feed_token(Token("RPAR", ")"))
            closers += ")"
        elif "WORD" in accepts:
            parser.feed_token(Token("WORD", _PLACEHOLDER))
            need_terms += 1
        else:
            return None
    return None  # pragma: no cover - a grammar loop would be a bug


@lru_cache(maxsize=4096)
def need_of(prefix: bytes) -> Optional[Need]:
    """The :class:`Need` of a generated prefix (UTF-8 bytes), or ``None`` if it is not viable."""
    try:
        text, open_bytes = _split_utf8(prefix)
    except UnicodeDecodeError:
        return None
    parser = lark_parser().parse_interactive(text)
    tail = ""
    head = ""
    try:
        for _ in parser.iter_parse():
            pass
    except UnexpectedCharacters as err:
        tail = text[err.pos_in_stream :]
    except UnexpectedToken as err:
        # The last word may be the start of an operator: "(a) O" goes on as "(a) OR".
        token = err.token
        if token.type != "WORD" or token.end_pos != len(text):
            return None
        accepts = parser.accepts()
        keyword = next((k for k in ("AND", "OR", "NOT") if k in accepts and k.startswith(token) and k != token), None)
        if keyword is None:
            return None
        parser.feed_token(Token(keyword, keyword))
        head = keyword[len(token) :]
    except UnexpectedInput:
        return None
    terms = 0
    closers = ""
    if tail:
        accepts = parser.accepts()
        keyword = next((k for k in ("AND", "OR", "NOT") if k in accepts and k.startswith(tail) and k != tail), None)
        if keyword is not None:
            # the start of an operator where no word may stand: "(a) O" goes on as "(a) OR"
            parser.feed_token(Token(keyword, keyword))
            head = keyword[len(tail) :]
            tail = ""
    if tail:
        if tail.startswith('"'):
            if "PHRASE" not in accepts or '"' in tail[1:] or any(c in "\r\n" for c in tail):
                return None
            if not tail[1:].strip(" \t"):
                terms += 1
            parser.feed_token(Token("PHRASE", '"x"'))
            closers = '"'
        elif tail.startswith("["):
            if "TAG" not in accepts:
                return None
            if tail == "[":
                terms += 1
            elif not _TAG_PREFIX.match(tail):
                return None
            parser.feed_token(Token("TAG", "[x]"))
            closers = "]"
        elif tail[0] in "-'./&" and len(tail) == 1:
            # inner punctuation of a word: a letter must follow it
            terms += 1
        else:
            return None
    finished = _finish(parser, terms)
    if finished is None:
        return None
    terms, more = finished
    return Need(open_bytes=open_bytes, terms=terms, closers=closers + more, head=head)


@dataclass
class TokenClasses:
    """Boolean masks over a vocabulary, computed once per tokenizer.

    ``content``: tokens that are a whole word of the grammar, optionally after one space;
    ``single_byte``: tokens of exactly one byte (to finish a cut UTF-8 character).
    """

    content: "object"  # torch.BoolTensor[vocab]
    single_byte: "object"


_classes_memory: dict[str, TokenClasses] = {}


def token_classes(tokens: Sequence[bytes], use_disk: bool = True) -> TokenClasses:
    """The :class:`TokenClasses` of a vocabulary given as the bytes of every token id.

    Cached in memory and on disk (next to the token cache of :mod:`blockgen.tokens`),
    keyed by the vocabulary and the grammar text.
    """
    import hashlib

    import numpy as np
    import torch

    from blockgen.grammar import grammar_text
    from blockgen.tokens import cache_dir

    digest = hashlib.sha256(b"\x00".join(tokens) + grammar_text().encode()).hexdigest()[:24]
    if digest in _classes_memory:
        return _classes_memory[digest]
    path = cache_dir() / f"classes-{digest}.npz"
    if use_disk and path.is_file():
        try:
            data = np.load(path)
            n = len(tokens)
            classes = TokenClasses(
                content=torch.from_numpy(np.unpackbits(data["content"])[:n].astype(bool)),
                single_byte=torch.from_numpy(np.unpackbits(data["single_byte"])[:n].astype(bool)),
            )
            _classes_memory[digest] = classes
            return classes
        except Exception:  # a corrupt cache is rebuilt
            pass
    classes = _compute_classes(tokens)
    if use_disk:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez(tmp, content=np.packbits(classes.content.numpy()), single_byte=np.packbits(classes.single_byte.numpy()))
            tmp.replace(path)
        except OSError:
            pass
    _classes_memory[digest] = classes
    return classes


def _compute_classes(tokens: Sequence[bytes]) -> TokenClasses:
    import torch

    word = terminal_regex("WORD")
    content = torch.zeros(len(tokens), dtype=torch.bool)
    single = torch.zeros(len(tokens), dtype=torch.bool)
    for i, raw in enumerate(tokens):
        if len(raw) == 1:
            single[i] = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        body = text[1:] if text.startswith(" ") else text
        if body and word.fullmatch(body):
            content[i] = True
    return TokenClasses(content=content, single_byte=single)
