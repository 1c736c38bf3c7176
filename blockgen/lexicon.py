"""A decode-time lexicon: every word the model writes is a known word.

A model that spells words from pieces (WordPiece ``mis ##in ##post``, BPE) can write non-words
(``misinpost``). With a :class:`Lexicon` given to :meth:`blockgen.QueryGenerator.generate`
(``lexicon=``), a token is refused when it would

* continue the word being written into something that is no prefix of a known word, or
* end the word being written (a blank, a bracket, a quote, a digit, the end of the query) while
  that word is not a known word.

A *word* is a run of letters, compared case-insensitively and without accents (as the quality
benchmark counts words: ``benchmarks/quality.py``): digits, blanks and punctuation end it. Before
the truncation wildcard ``*`` a word need only be the start of a known word (``tomograph*``; a
``?`` ends a word as a blank does). Words inside a field tag are checked too (``[mesh]`` is a
word, ``[tiab]`` is not, unless the lexicon has it). The prompt's own words are always known (:meth:`Lexicon.with_words`, done per prompt by ``generate``).

The check works on the bytes of the tokens (:mod:`blockgen.tokens`), so it fits any tokenizer;
:class:`TokenLexicon` precomputes what each token does to a word once per vocabulary, and
:class:`LexiconRow` follows one sequence: ``allows(token)`` (microseconds, for rejection
sampling) and ``mask()`` (the allowed tokens as booleans, cached per word so far). It is applied
next to the grammar: the decoder draws from the model, refuses what the lexicon refuses, and
masks a row that keeps drawing refused tokens (:mod:`blockgen.decoding`). It gives way when
nothing else is left: a token that budget-aware closing forces is written even if it ends a
non-word, and a row whose grammar allows no lexicon token is decoded without it for that step.

>>> lex = Lexicon(["climate", "change"])
>>> lex.is_word("Climate"), lex.is_prefix("chan"), lex.is_prefix("chx")
(True, True, False)
"""

from __future__ import annotations

import bisect
import hashlib
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

__all__ = ["Lexicon", "TokenLexicon", "LexiconRow", "fold", "words", "english_lexicon", "WORD_LIST"]

#: Debian ``wamerican-large``: the English word list of the default lexicon.
WORD_LIST = Path("/usr/share/dict/american-english-large")
#: Characters before which a word need only be the start of a known word (truncation). Not ``?``:
#: ``behavio?r`` stands for one letter, so its stem alone says little.
WILDCARDS = frozenset("*")
#: Masks kept per :class:`LexiconRow` family (one per word so far).
MASK_CACHE = 4096


def fold(text: str) -> str:
    """Lower case without accents (as uncased tokenizers read text)."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _is_letter(ch: str) -> bool:
    return ch.isalpha()


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, folded (``"COVID-19 in Zürich"`` -> covid, in, zurich)."""
    out, run = [], []
    for ch in fold(text):
        if _is_letter(ch):
            run.append(ch)
        elif run:
            out.append("".join(run))
            run = []
    if run:
        out.append("".join(run))
    return out


class Lexicon:
    """An immutable set of known words (folded), with fast prefix tests.

    ``Lexicon(words)`` keeps the letter runs of each given string (``"rock'n'roll"`` gives
    ``rock``, ``n``, ``roll``); :meth:`with_words` adds words without copying the others.
    """

    def __init__(self, entries: Iterable[str] = (), *, _layers: Sequence[tuple[str, ...]] = ()):
        found: set[str] = set()
        for entry in entries:
            found.update(words(entry))
        layers = [layer for layer in _layers if layer]
        if found:
            layers.append(tuple(sorted(found)))
        self._layers: tuple[tuple[str, ...], ...] = tuple(layers)
        self.key = hashlib.sha256("\x00".join("\x01".join(layer[:3] + layer[-3:]) + str(len(layer))
                                              for layer in self._layers).encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: Union[str, Path], use_cache: bool = True) -> "Lexicon":
        """One word per line (a Debian word list, say); a possessive ``'s`` is dropped.

        The folded, sorted words are cached on disk (keyed by the file's path, size and time)."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError as err:
            raise ValueError(f"cannot read the word list {path}: {err.strerror or err}") from None
        cached = _cache_file(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}") if use_cache else None
        if cached is not None and cached.is_file():
            try:
                return cls(_layers=[tuple(cached.read_text(encoding="utf-8").split("\n"))])
            except (OSError, UnicodeDecodeError):
                pass
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as err:
            raise ValueError(f"cannot read the word list {path}: {err.strerror or err}") from None
        lexicon = cls(line[:-2] if line.endswith("'s") else line for line in lines)
        if cached is not None and len(lexicon._layers) == 1:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text("\n".join(lexicon._layers[0]), encoding="utf-8")
                tmp.replace(cached)
            except OSError:
                pass
        return lexicon

    def with_words(self, entries: Iterable[str]) -> "Lexicon":
        """This lexicon plus the words of ``entries`` (itself when they add nothing)."""
        new = {w for e in entries for w in words(e)}
        new = {w for w in new if not self.is_word(w)}
        if not new:
            return self
        return Lexicon(_layers=(*self._layers, tuple(sorted(new))))

    def __len__(self) -> int:
        return sum(len(layer) for layer in self._layers)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.is_word(word)

    def is_word(self, word: str) -> bool:
        """Whether ``word`` (folded here) is a known word."""
        word = fold(word)
        for layer in self._layers:
            i = bisect.bisect_left(layer, word)
            if i < len(layer) and layer[i] == word:
                return True
        return False

    def is_prefix(self, prefix: str) -> bool:
        """Whether some known word starts with ``prefix`` (folded here; ``""`` is a prefix of all)."""
        prefix = fold(prefix)
        for layer in self._layers:
            i = bisect.bisect_left(layer, prefix)
            if i < len(layer) and layer[i].startswith(prefix):
                return True
        return False

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words)"


def _cache_file(key: str) -> Optional[Path]:
    from blockgen.tokens import cache_dir

    return cache_dir() / f"lexicon-{hashlib.sha256(key.encode()).hexdigest()[:20]}.txt"


@lru_cache(maxsize=4)
def _english(path: str, extra: tuple[str, ...]) -> Lexicon:
    return Lexicon.from_file(path).with_words(extra)


def english_lexicon(extra: Iterable[str] = (), path: Union[str, Path] = WORD_LIST) -> Lexicon:
    """Debian's ``wamerican-large`` word list (plus ``extra`` words), loaded once per process.

    Raises ``ValueError`` with the fix when the list is not installed.
    """
    if not Path(path).is_file():
        raise ValueError(f"the English word list {path} is missing: apt-get install wamerican-large "
                         "(or pass lexicon=False, or your own blockgen.Lexicon)")
    return _english(str(path), tuple(sorted(set(extra))))


# --------------------------------------------------------------------------- per vocabulary
class _Word:
    """What the lexicon needs to know about one token's text (see :class:`TokenLexicon`)."""

    __slots__ = ("lead", "closes", "wild", "inner", "tail", "slow")

    def __init__(self, text: str):
        # lead: letters that continue the word being written; closes: a boundary follows them;
        # wild: that boundary is a wildcard; inner: whole words between boundaries; tail: the
        # letters after the last boundary (a new word); slow: brackets, checked char by char.
        self.slow = "[" in text or "]" in text
        self.inner: tuple[str, ...] = ()
        if text.isalpha():  # the common cases first: a word piece ...
            self.lead, self.closes, self.wild, self.tail = fold(text), False, False, ""
            return
        if text[:1] == " " and text[1:].isalpha():  # ... and a word after a blank
            self.lead, self.closes, self.wild, self.tail = "", True, False, fold(text[1:])
            return
        i = 0
        while i < len(text) and _is_letter(text[i]):
            i += 1
        self.lead = fold(text[:i])
        self.closes = i < len(text)
        self.wild = self.closes and text[i] in WILDCARDS
        self.tail = ""
        if self.closes:
            parts = words(text[i:])
            ends_in_letter = _is_letter(text[-1])
            self.tail = parts[-1] if parts and ends_in_letter else ""
            self.inner = tuple(parts[:-1] if self.tail else parts)


class TokenLexicon:
    """What every token of a vocabulary does to the word being written, computed once.

    ``tokens``: the bytes of every token id (``GrammarEngine.tokens``); ``special``: ids that
    write nothing (never refused). Tokens that are not whole UTF-8 text (byte pieces of a
    byte-level BPE) are followed byte by byte in :class:`LexiconRow`.
    """

    _memory: dict[str, "TokenLexicon"] = {}

    def __init__(self, tokens: Sequence[bytes], special: Iterable[int] = ()):
        self.tokens = list(tokens)
        self.size = len(self.tokens)
        special = set(special)
        self.info: list[Optional[_Word]] = []
        for i, raw in enumerate(self.tokens):
            if i in special or not raw:
                self.info.append(None)
                continue
            try:
                self.info.append(_Word(raw.decode("utf-8")))
            except UnicodeDecodeError:
                self.info.append(None)
        self.opaque = np.array([info is None and bool(raw) and i not in special
                                for i, (info, raw) in enumerate(zip(self.info, self.tokens))], dtype=bool)
        self.neutral = np.array([info is None for info in self.info], dtype=bool)
        # tokens that start a new word or write no letters before a boundary: allowed when the word so
        # far is complete, and their own words fit
        self.boundary_first = np.array([info is not None and not info.lead and info.closes and not info.slow
                                        for info in self.info], dtype=bool)
        # tokens with letters that continue the word so far, grouped in a trie of their letters
        self.trie: dict = {}
        self.slow_ids = [i for i, info in enumerate(self.info) if info is not None and info.slow or self.opaque[i]]
        for i, info in enumerate(self.info):
            if info is None or info.slow or not info.lead:
                continue
            node = self.trie
            for ch in info.lead:
                node = node.setdefault(ch, {})
            node.setdefault(None, []).append(i)
        self.by_tail: dict[str, list[int]] = {}
        for i, info in enumerate(self.info):
            if info is not None and info.tail:
                self.by_tail.setdefault(info.tail, []).append(i)
        self._rest: dict[str, np.ndarray] = {}

    @classmethod
    def for_tokens(cls, tokens: Sequence[bytes], special: Iterable[int] = ()) -> "TokenLexicon":
        """The :class:`TokenLexicon` of a vocabulary (built once per process: about 0.3 s for 30,000 tokens)."""
        special = frozenset(special)
        key = hashlib.sha256(b"\x00".join(tokens) + repr(sorted(special)).encode()).hexdigest()
        found = cls._memory.get(key)
        if found is None:
            found = cls._memory[key] = cls(tokens, special)
        return found

    def rest_ok(self, lexicon: Lexicon) -> np.ndarray:
        """Per token: its whole inner words are known and its tail starts a known word (lexicon-dependent)."""
        ok = self._rest.get(lexicon.key)
        if ok is None:
            ok = np.ones(self.size, dtype=bool)
            for i, info in enumerate(self.info):
                if info is None or not info.closes:
                    continue
                if info.tail and not lexicon.is_prefix(info.tail):
                    ok[i] = False
                elif info.inner and not all(lexicon.is_word(w) for w in info.inner):
                    ok[i] = False
            if len(self._rest) > 64:
                self._rest.clear()
            self._rest[lexicon.key] = ok
        return ok

    def row(self, lexicon: Lexicon) -> "LexiconRow":
        """A fresh :class:`LexiconRow` (nothing written yet) for ``lexicon``."""
        return LexiconRow(self, lexicon, _Masks(self, lexicon))


class _Masks:
    """Allowed-token masks of one (vocabulary, lexicon), cached per word so far (shared by rows)."""

    def __init__(self, vocab: TokenLexicon, lexicon: Lexicon):
        self.vocab = vocab
        self.lexicon = lexicon
        self.cache: dict[str, np.ndarray] = {}
        self._rest: Optional[np.ndarray] = None

    @property
    def rest(self) -> np.ndarray:
        if self._rest is None:
            self._rest = self.vocab.rest_ok(self.lexicon)
        return self._rest

    def mask(self, word: str) -> np.ndarray:
        found = self.cache.get(word)
        if found is not None:
            return found
        v, lex = self.vocab, self.lexicon
        out = v.neutral & ~v.opaque
        complete = not word or lex.is_word(word)
        if complete:
            out |= v.boundary_first & self.rest
        else:  # a wildcard may end a started word
            for i in np.flatnonzero(v.boundary_first):
                if v.info[i].wild and self.rest[i]:
                    out[i] = True
        self._walk(v.trie, word, out)
        for i in v.slow_ids:
            out[i] = _check(v.tokens[i], word, lex)
        if len(self.cache) >= MASK_CACHE:
            self.cache.clear()
        self.cache[word] = out
        return out

    def _walk(self, node: dict, word: str, out: np.ndarray) -> None:
        lex, info = self.lexicon, self.vocab.info
        stack = [(node, word)]
        while stack:
            node, sofar = stack.pop()
            for ch, child in node.items():
                if ch is None:
                    for i in child:  # tokens whose letters end here
                        t = info[i]
                        if not t.closes:
                            out[i] = True
                        elif (t.wild or lex.is_word(sofar)) and self.rest[i]:
                            out[i] = True
                    continue
                nxt = sofar + ch
                if lex.is_prefix(nxt):
                    stack.append((child, nxt))


def _check(raw: bytes, word: str, lexicon: Lexicon) -> bool:
    """Whether the token ``raw`` is allowed after the word ``word`` (the slow, exact path)."""
    return LexiconState(word=word).after(raw, lexicon) is not None


class LexiconState:
    """The word being written: its folded letters and the cut UTF-8 bytes of its last token."""

    __slots__ = ("word", "pending", "free")

    def __init__(self, word: str = "", pending: bytes = b"", free: bool = False):
        self.word = word
        self.pending = pending
        #: the word so far was forced (budget) and is no known prefix: not checked until it ends
        self.free = free

    def after(self, raw: bytes, lexicon: Optional[Lexicon]) -> Optional["LexiconState"]:
        """The state after writing ``raw``; ``None`` if ``lexicon`` refuses it (no lexicon: never)."""
        data = self.pending + raw
        try:
            text, pending = data.decode("utf-8"), b""
        except UnicodeDecodeError as err:
            if err.start >= len(data) - 3 and err.reason == "unexpected end of data":
                text, pending = data[: err.start].decode("utf-8", "replace"), data[err.start:]
            else:
                text, pending = data.decode("utf-8", "replace"), b""
        word, free = self.word, self.free
        for ch in text:
            if _is_letter(ch):
                word += fold(ch)
                if lexicon is not None and not free and not lexicon.is_prefix(word):
                    return None
                continue
            if word and lexicon is not None and not free and ch not in WILDCARDS and not lexicon.is_word(word):
                return None
            word, free = "", False
        return LexiconState(word, pending, free)

    def at_end(self, lexicon: Optional[Lexicon]) -> bool:
        """Whether the query may end here (the last word is complete)."""
        return lexicon is None or self.free or not self.word or lexicon.is_word(self.word)


class LexiconRow:
    """One sequence under a lexicon: :meth:`allows` a token, :meth:`mask` of allowed tokens, :meth:`advance`."""

    def __init__(self, vocab: TokenLexicon, lexicon: Lexicon, masks: "_Masks", state: Optional[LexiconState] = None):
        self.vocab = vocab
        self.lexicon = lexicon
        self._masks = masks
        self.state = state or LexiconState()

    def sibling(self) -> "LexiconRow":
        """A fresh row sharing this one's mask cache (another candidate for the same prompt)."""
        return LexiconRow(self.vocab, self.lexicon, self._masks)

    def allows(self, token: int, eos: bool = False) -> bool:
        """Whether writing ``token`` keeps every word known (``eos``: the token ends the query)."""
        if eos:
            return self.state.at_end(self.lexicon)
        if not 0 <= token < self.vocab.size or self.vocab.info[token] is None and not self.vocab.opaque[token]:
            return True
        return self.state.after(self.vocab.tokens[token], self.lexicon) is not None

    def mask(self) -> Optional[np.ndarray]:
        """The tokens :meth:`allows` now, as booleans over the vocabulary (EOS not included: see
        :meth:`allows`); ``None`` when nothing is checked now (a forced word, cut bytes)."""
        s = self.state
        if s.free or s.pending:
            return None
        return self._masks.mask(s.word)

    def advance(self, token: int) -> None:
        """Write ``token`` (always: a refused token that was forced makes its word unchecked)."""
        if not 0 <= token < self.vocab.size or self.vocab.info[token] is None and not self.vocab.opaque[token]:
            return
        raw = self.vocab.tokens[token]
        nxt = self.state.after(raw, self.lexicon)
        if nxt is None:
            nxt = self.state.after(raw, None)
            if nxt.word:
                nxt.free = True
        self.state = nxt
