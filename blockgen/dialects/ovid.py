"""Ovid MEDLINE: read a line-numbered search strategy into one query, and write one.

Systematic-review strategies are written as numbered lines that refer to each other::

    1  exp Malaria/
    2  malaria.ti,ab.
    3  1 or 2
    4  (rapid adj3 test$).tw.
    5  3 and 4
    6  limit 5 to humans

:meth:`Ovid.read` (and :func:`convert_ovid`) resolves the line references from the final line
down and returns one nested query, here
``("Malaria"[Mesh] OR malaria[tiab]) AND "rapid test*"[tw:~2]``, with a :class:`Note` for
everything it had to decide, drop or approximate. This reader has no grammar file: real
strategies are messy (stray brackets, hit counts, labelled sections, PubMed lines mixed in),
so it is a tolerant tokenizer and an operator-precedence parser; what it repairs is noted
(kind ``"malformed syntax repaired"``).

Reading (Ovid -> tree):

* ``exp Heading/`` -> ``"Heading"[Mesh]``; ``Heading/`` -> ``"Heading"[Mesh:NoExp]``; the focus
  star ``*Heading/`` -> ``[majr:NoExp]``, ``exp *Heading/`` -> ``[majr]``; subheadings
  (``Lung/ra, ri [Radiography]``) are dropped (noted), the heading is kept; a bracket after a
  heading without subheading codes is a comment.
* Field suffixes on words, phrases or groups give every term a tag: ``.ti,ab.`` -> ``tiab``;
  ``.ti.`` ``.ab.`` ``.pt.`` ``.au.`` -> ``ti`` ``ab`` ``pt`` ``au``; ``.tw.`` ``.mp.``
  ``.kf.`` ``.kw.`` and mixtures of text fields -> ``tw``; ``.sh.`` -> ``Mesh:NoExp`` (a
  subject heading, not exploded); ``.hw.`` -> ``Mesh``; ``.fs.`` -> ``sh``; date fields drop
  the operand (noted); others are noted.
* Words side by side are a **phrase** in Ovid (``heart attack.tw.`` finds the words next to
  each other): ``Phrase("heart attack", "tw")``. In a strategy written with PubMed tags
  (``fungal infection[tw]``, no Ovid suffix or heading anywhere) they are PubMed's words
  side by side: ``Term("fungal infection", "tw")``.
* Truncation ``$``, ``$N``, ``*N`` and ``:`` -> ``*``; the wildcard ``?`` (one character or
  none) stays; ``#`` (exactly one character) -> ``?`` (noted: broader). Characters a word
  cannot hold are dropped (noted: ``C++`` -> ``C``); control characters are dropped (noted).
* Proximity: ``a adj b`` is the phrase ``"a b"``; ``a adjN b`` is ``"a b"[<field>:~N-1]`` (any
  order, at most N-1 words between: Ovid's rule, PubMed's ``~``); OR-groups around ``adj``
  are distributed (``(heart or cardiac) adj3 attack`` -> two proximity phrases); a phrase
  inside proximity or too many combinations are approximated (noted). ``near/N``, ``w/N``,
  ``nN`` are read as ``adjN`` (noted). Proximity binds tighter than and/or/not.
* Line combinations ``1 or 2 or 3``, ``or/1-5``, ``and/1,3``, ``OR 1-14``, ``#1 OR #2``,
  ``(3 AND 13)``, ``17 not 18`` and inline Boolean in any letter case. and/or/not without
  parentheses are read left to right (as PubMed does; Ovid's own order is unconfirmed).
* ``limit N to ...`` -> line N (noted); ``remove duplicates from N`` -> line N; references
  to missing or later lines are dropped (noted). If the last line holds no reference but
  earlier lines do (a strategy cut off in the source), the last line that does is used
  (noted). A strategy without any line reference is read as one query, its lines joined by
  OR unless an operator joins them.
* Lines may carry their own numbers (``1. exp Malaria/``, ``#2 ...``) and Ovid hit counts
  (``(1234)``); brackets after a line combination (``or/1-7 [Triage keywords]``) and
  ``Total references = N`` are comments. Strategies in labelled sections (``1 Index test:
  ...``, ``1a``, ``A. 1a and (2a or 3)``, ``Final search: A or B``) are resolved by label.
* Lines are split on ``\\n`` (and ``\\r\\n``) only. Parentheses nest to any depth and line
  references chain to any length: nothing here recurses.

Every tree read here can be written in blockgen's syntax (``blockgen.is_valid(str(query))``).

Writing (tree -> Ovid): one numbered line per concept block and a last line combining them
(``1 and 2``, ``(1 and 2) not 3``); inside a line every compound operand in parentheses,
field suffixes per term (``malaria.ti,ab.``), ``exp Heading/``, proximity as ``adjN``.
Ovid has no CORE field filters or comparisons, and no proximity of three or more words:
those are noted (dropped, or written as AND).
"""

from __future__ import annotations

import re
import unicodedata

import regex
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

from blockgen.dialects._walk import BOTH_SIDES, flatten, fold_nodes, map_leaves, not_with_dropped_side
from blockgen.dialects.base import Dialect, DialectError, Note, Reading, Writing
from blockgen.dialects.tags import CANONICAL, OVID_SUFFIX, Tag, canonical, parse_tag, tag_text
from blockgen.grammar import letter_class, terminal_regex
from blockgen.parser import is_valid
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term, make_and, make_or
from blockgen.text import normalise

__all__ = ["LIMIT_KINDS", "Ovid", "OvidConversion", "OvidError", "convert_ovid", "from_ovid", "summarize"]

#: The most OR-combinations a proximity operator is distributed over before it is
#: approximated by AND.
MAX_PROXIMITY_COMBINATIONS = 64
#: The longest range of lines ``or/a-b`` expands.
MAX_RANGE = 500


class OvidError(DialectError):
    """A strategy from which no usable query results (names the line)."""


#: Note kinds that only narrow the result set by date, language or study population.
LIMIT_KINDS = frozenset({"date limit dropped", "limit line dropped"})


@dataclass(frozen=True)
class OvidConversion:
    """The converted ``query``, the :class:`Note` of everything that was ``dropped`` or
    approximated, and the number of strategy ``lines`` read."""

    query: Node
    dropped: tuple[Note, ...]
    lines: int

    @property
    def notes(self) -> tuple[Note, ...]:
        """The notes (same as :attr:`dropped`)."""
        return self.dropped

    @property
    def clean(self) -> bool:
        """True when nothing was dropped or approximated."""
        return not self.dropped

    @property
    def only_limits_dropped(self) -> bool:
        """True when every note is a dropped limit (``limit N to ...``, a date line or a
        ``[crdt]`` date range), so the query finds a superset of the original's records
        with the same topical structure. True for a clean conversion too."""
        return all(note.kind in LIMIT_KINDS for note in self.dropped)


# ---------------------------------------------------------------------------- constants

#: Ovid field codes -> PubMed-style tag (None: drop the tag, keep the term).
_TEXT_CODES = {"tw", "mp", "kf", "kw", "ot"}
_FIELD_TAGS = {
    "ti": "ti", "ab": "ab", "pt": "pt", "sh": "Mesh:NoExp", "hw": "Mesh", "fs": "sh", "xs": "sh",
    "nm": "nm", "af": "all", "ot": "ot", "rn": "rn", "au": "au", "jn": "ta", "jw": "ta",
    "so": "ta", "lg": "la", "in": "ad",
}
#: Fields that PubMed's text-word tag [tw] searches (title, abstract, other terms, MeSH
#: headings and subheadings, substance names): a mixture of them reads as [tw].
_TW_COVERS = _TEXT_CODES | {"ti", "ab", "hw", "sh", "fs", "nm"}
#: Date and update fields: an operand restricted to these is a date limit, dropped.
_DATE_CODES = {"ed", "dc", "dp", "yr", "da", "ep", "ez", "em", "up", "dd"}
_KNOWN_CODES = _TEXT_CODES | set(_FIELD_TAGS) | _DATE_CODES | {"ps", "rs", "tx", "xm", "px", "st", "ui", "ds", "cm"}

_CODE = r"(?:" + "|".join(sorted(_KNOWN_CODES, key=len, reverse=True)) + r")"
#: A field suffix at the end of a term: ``.ti,ab.``, ``.tw``, ``.ti. ab .``, ``.ab,.``
_SUFFIX_RE = re.compile(r"\.\s*(" + _CODE + r"(?:\s*[,.]?\s*" + _CODE + r")*)\s*[,.\s]*$", re.IGNORECASE)
#: A field suffix token on its own, after ``)`` or a phrase.
_SUFFIX_TOKEN_RE = re.compile(r"\.\s*(" + _CODE + r"\b(?:\s*[,.]?\s*" + _CODE + r"\b)*)(?:\s*[,.])*", re.IGNORECASE)
#: MeSH heading: ``Heading/``, ``Heading/ra, ri [Radiography]``, ``Heading/ EXP``.
_MESH_RE = re.compile(
    r"^(?P<head>.+?)\s*/\s*(?P<sub>[a-z]{2}(?:\s*,\s*[a-z]{2})*)?\s*(?P<note>\[[^\]]*\])?\s*(?P<exp>exp)?\s*$",
    re.IGNORECASE,
)
_PROXIMITY = re.compile(r"^(?:(?P<adj>adj)(?P<n>\d*)|(?P<other>near/?|w/|n|next/?)(?P<m>\d*))$", re.IGNORECASE)
_OPERATORS = {"and", "or", "not"}
_QUOTE_CHARS = "\"\u201c\u201d"
_LETTERS = letter_class()[1:-1]  # the grammar's letters (\p{L}\p{M}\p{N}), shared by import
_LEADING_NON_LETTERS = regex.compile(rf"^[^{_LETTERS}]+")
_TRAILING_NON_LETTERS = regex.compile(rf"[^{_LETTERS}*?]+$")

_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
      | (?P<combo>(?:or|and)\s*/\s*\#?\d+(?:\s*[-,]\s*\#?\d+)*)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<quote>["“”][^"“”\n]*["“”])
      | (?P<tag>\[[^\]\n]*\])
      | (?P<stray>["“”\[\]])
      | (?P<word>[^\s()"“”\[\]]+)
    """,
    re.IGNORECASE | re.VERBOSE,
)

_LIMIT_RE = re.compile(r"^limit\s+#?(\d+)\s+to\b(.*)$", re.IGNORECASE)
_RANGE_LINE_RE = re.compile(r"^(or|and)\s+#?(\d+)\s*-\s*#?(\d+)$", re.IGNORECASE)
_REF_RE = re.compile(r"^#?(\d+)$")
_RANGE_PART_RE = re.compile(r"^#?(\d+)(?:\s*-\s*#?(\d+))?$")


class _Sink:
    """Where the notes of one line go."""

    def __init__(self, notes: list[Note], line: Optional[int]):
        self.notes, self.line = notes, line

    def add(self, kind: str, detail: str) -> None:
        self.notes.append(Note(kind, self.line, detail))


# ------------------------------------------------------------------------------ tokens


@dataclass(frozen=True)
class _Tok:
    kind: str  # lp rp quote tag word op prox combo suffix stray stray_star
    text: str
    start: int
    end: int


def _tokenize(line: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(line):
        if toks and toks[-1].kind == "rp" and line.startswith("*", pos):
            toks.append(_Tok("stray_star", "*", pos, pos + 1))  # ``newborn)*``: a typo
            pos += 1
            continue
        if toks and toks[-1].kind in ("rp", "quote", "stray_star"):
            m = _SUFFIX_TOKEN_RE.match(line, pos)
            if m:
                toks.append(_Tok("suffix", m.group(1), m.start(), m.end()))
                pos = m.end()
                continue
        m = _TOKEN_RE.match(line, pos)
        assert m is not None  # the word alternative matches any other character
        kind = m.lastgroup or "word"
        text = m.group(0)
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "word":
            low = text.lower()
            if low in _OPERATORS:
                kind = "op"
            elif _PROXIMITY.match(low) and toks and toks[-1].kind not in ("op", "prox", "lp"):
                kind = "prox"
        toks.append(_Tok(kind, text, m.start(), m.end()))
    return toks


# ------------------------------------------------------------------------------ leaves

_WILDCARD_NOTE = "'#' (exactly one character) read as '?' (one character or none)"


def _clean_word(word: str, sink: _Sink) -> str:
    """Ovid truncation to grammar wildcards; strip what a word cannot hold at its edges (noted)."""
    w = re.sub(r"\$\d*", "*", word)
    w = re.sub(r"(?<=\*)\d+$", "", w)
    w = w.replace(":", "*")
    if "#" in w:
        w = w.replace("#", "?")
        sink.add("wildcard approximated", f"{word!r}: {_WILDCARD_NOTE}")
    w = re.sub(r"\*+", "*", w)
    wild = w
    w = _LEADING_NON_LETTERS.sub("", w)
    w = _TRAILING_NON_LETTERS.sub("", w)
    if w != wild:
        what = f"read as {w!r}: characters a word cannot hold dropped" if w else "holds no letter: dropped"
        sink.add("characters dropped", f"{word!r} {what}")
    return w


def _fits(word: str) -> bool:
    return bool(word) and word.upper() not in ("AND", "OR", "NOT") and terminal_regex("WORD").fullmatch(word) is not None


def _leaf(text: str, tag: Optional[str], sink: _Sink, quoted: bool = False, phrase: bool = True) -> Optional[Node]:
    """A Term (one word, or PubMed words side by side when ``phrase`` is False) or a Phrase
    (Ovid's words side by side, a quoted phrase, a heading); None if nothing is left."""
    text = " ".join(text.replace('"', " ").replace("“", " ").replace("”", " ").split())
    if not text:
        return None
    if quoted or "," in text:  # "Heart Defects, Congenital": a heading, kept whole
        return Phrase(re.sub(r"\$\d*", "*", text), tag)
    words = [w for w in (_clean_word(w, sink) for w in text.split()) if w]
    if words and all(_fits(w) for w in words):
        if len(words) == 1 or not phrase:
            return Term(" ".join(words), tag)
        return Phrase(" ".join(words), tag)
    if not words:
        return None
    joined = re.sub(r"\$\d*", "*", " ".join(text.split()))
    sink.add("term quoted", f"quoted a term that is not plain words: {joined!r}")
    return Phrase(joined, tag)


def _with_tag(node: Optional[Node], tag: Optional[str]) -> Optional[Node]:
    """Give every untagged Term/Phrase in ``node`` the tag ``tag`` (a proximity phrase keeps
    its distance and takes the field)."""
    if tag is None or node is None:
        return node

    def retag(leaf: Node) -> Node:
        if not isinstance(leaf, (Term, Phrase)):
            return leaf
        old = parse_tag(leaf.tag)
        if old.proximity is not None and old.field in (None, "all"):
            new = parse_tag(tag)
            return type(leaf)(leaf.text, tag_text(Tag(new.field, old.proximity)))
        return leaf if leaf.tag else type(leaf)(leaf.text, tag)

    return map_leaves(node, retag)


def _suffix_tag(codes_text: str, sink: _Sink) -> tuple[Optional[str], bool]:
    """(tag, is_date) for a field suffix such as ``ti,ab,kf``."""
    codes = [c.lower() for c in re.findall(r"[A-Za-z]{2}", codes_text)]
    if codes and all(c in _DATE_CODES for c in codes):
        return None, True
    kept = [c for c in codes if c not in _DATE_CODES]
    if set(kept) == {"ti", "ab"}:
        return "tiab", False
    if len(set(kept)) == 1 and kept[0] in _FIELD_TAGS:
        return _FIELD_TAGS[kept[0]], False
    if kept and set(kept) <= _TW_COVERS:
        return "tw", False  # text fields that PubMed's [tw] searches too
    if {"ti", "ab"} <= set(kept):
        sink.add("field suffix approximated", f"field suffix .{','.join(codes)}. read as [tiab]")
        return "tiab", False
    mapped = [_FIELD_TAGS[c] for c in kept if c in _FIELD_TAGS]
    if mapped:
        sink.add("field suffix approximated", f"field suffix .{','.join(codes)}. read as [{mapped[0]}]")
        return mapped[0], False
    sink.add("field suffix approximated", f"field suffix .{','.join(codes)}. dropped")
    return None, False


_KNOWN_TAGS = frozenset(CANONICAL.values())
#: PubMed date tags: an operand with one of these is a date limit, dropped.
_PUBMED_DATE_TAGS = {"crdt", "dp", "edat", "pdat", "mhda", "dcom", "lr", "epdat", "ppdat"}


def _pubmed_tag(raw: str, sink: _Sink, comment: bool = False) -> Optional[str]:
    """A PubMed tag ``[tiab]``/``[MeSH Terms]``/``[tiab:~3]`` in its canonical spelling, or None.

    Anything else in brackets is a comment when ``comment`` (after a line combination, a
    group or a MeSH heading: ``or/1-7 [Triage keywords]``) or starts with ``mp=`` (Ovid's
    spelled-out ``.mp.`` fields) and is ignored; otherwise it is an unknown field, noted.
    """
    inner = raw.strip()[1:-1].strip()
    low = " ".join(inner.lower().split())
    if parse_tag(inner).field in _KNOWN_TAGS:
        return canonical(inner)
    if not (comment or low.startswith("mp=")):
        sink.add("bracket note dropped", f"bracket note {raw} dropped")
    return None


def _atom(text: str, tag_tok: Optional[str], sink: _Sink, pubmed_words: bool) -> Optional[Node]:
    """Interpret the raw text of one operand (words, a phrase, a MeSH heading)."""
    text = text.strip()
    if tag_tok and tag_tok.strip()[1:-1].strip().lower() in _PUBMED_DATE_TAGS:
        sink.add("date limit dropped", f"date limit dropped: {text}{tag_tok}")
        return None
    tag: Optional[str] = _pubmed_tag(tag_tok, sink) if tag_tok else None
    m = _SUFFIX_RE.search(text)
    if m and m.start() > 0:
        stag, is_date = _suffix_tag(m.group(1), sink)
        if is_date:
            sink.add("date limit dropped", f"date limit dropped: {text}")
            return None
        text = text[: m.start()].strip()
        tag = tag or stag
    explode = False
    if re.match(r"^exp\s+", text, re.IGNORECASE):
        explode, text = True, re.sub(r"^exp\s+", "", text, flags=re.IGNORECASE)
    focus = text.startswith("*")  # ``*Dementia/``: MeSH major topic
    if focus:
        text = text.lstrip("*").strip()
    mesh = _MESH_RE.match(text)
    if mesh and not tag:
        head = mesh.group("head").strip().strip('"“”').strip()
        if mesh.group("sub"):  # a bracket without subheading codes is a comment
            sub = mesh.group("sub") + (" " + mesh.group("note") if mesh.group("note") else "")
            sink.add("subheading dropped", f"subheading /{sub.strip()} dropped from {head}")
        explode = explode or bool(mesh.group("exp"))
        kind = "majr" if focus else "Mesh"
        return _leaf(head, kind if explode else f"{kind}:NoExp", sink, quoted=True)
    if focus:
        sink.add("MeSH focus dropped", f"MeSH focus * without a heading '/' dropped: *{text}")
    if explode and tag not in ("Mesh", "majr"):
        sink.add("exp ignored", f"exp without a heading '/' ignored: {text}")
    stripped = text.strip()
    quoted = len(stripped) >= 2 and stripped[0] in _QUOTE_CHARS and stripped[-1] in _QUOTE_CHARS and not re.search(r'["“”]', stripped[1:-1])
    pubmed = pubmed_words or (tag_tok is not None and tag is not None)
    return _leaf(stripped[1:-1] if quoted else stripped, tag, sink, quoted=quoted, phrase=not pubmed)


# ------------------------------------------------------------------------------ proximity


def _units(node: Node) -> "Optional[list[tuple[tuple[str, ...], Optional[str], Optional[int]]]]":
    """The alternatives of an operand of ``adj``: (words, field tag, slack) per OR-item, where
    slack is the distance of a proximity phrase (None: adjacent words); None if an item is not
    words (an AND, a NOT, a heading, a filter, PubMed's words side by side)."""
    items = node.items if isinstance(node, Or) else (node,)
    out = []
    for item in items:
        if not isinstance(item, (Term, Phrase)):
            return None
        tag = parse_tag(item.tag)
        if tag.heading:
            return None
        words = tuple(item.text.split())
        if isinstance(item, Term) and len(words) > 1:
            return None  # PubMed's words side by side: not one unit of adjacent words
        out.append((words, None if tag.field in (None, "all") else tag.field, tag.proximity))
    return out


def _proximity(left: Node, right: Node, tok: _Tok, sink: _Sink) -> Node:
    """``left adj[N] right`` (see the module docstring)."""
    m = _PROXIMITY.match(tok.text.lower())
    assert m is not None
    if m.group("other") is not None:
        n = int(m.group("m") or 1)
        sink.add("proximity read as adj", f"{tok.text} read as adj{n} (any order, at most {n - 1} words between)")
        distance: Optional[int] = n - 1
    else:
        distance = int(m.group("n")) - 1 if m.group("n") else None  # plain adj: next to, in order
    lefts, rights = _units(left), _units(right)
    fallback = None
    if lefts is None or rights is None:
        fallback = "an operand is not words"
    elif len(lefts) * len(rights) > MAX_PROXIMITY_COMBINATIONS:
        fallback = f"more than {MAX_PROXIMITY_COMBINATIONS} combinations"
    elif len({t for _, t, _ in lefts + rights}) > 1:
        fallback = "the operands have different fields"
    elif distance is None and any(slack is not None for _, _, slack in lefts + rights):
        fallback = "adj next to a proximity"
    if fallback is not None:
        sink.add("proximity approximated", f"proximity {tok.text} read as AND ({fallback})")
        return make_and([left, right])
    field = lefts[0][1]  # type: ignore[index]
    out: list[Node] = []
    loose = False
    for lw, _, ls in lefts:  # type: ignore[union-attr]
        for rw, _, rs in rights:  # type: ignore[union-attr]
            words = " ".join(lw + rw)
            if distance is None:
                out.append(Phrase(words, tag_text(Tag(field))))
                continue
            # a phrase or an earlier proximity inside: all the words within the summed slack
            loose = loose or len(lw) > 1 or len(rw) > 1 or ls is not None or rs is not None
            out.append(Phrase(words, tag_text(Tag(field, distance + (ls or 0) + (rs or 0)))))
    if loose:
        sink.add("proximity approximated", f"proximity {tok.text} with a phrase or a chain read as proximity of all the words (broader)")
    return make_or(out)


# ------------------------------------------------------------------------------ parser


class _Frame:
    """One parenthesised level of a line: its operands, the operator before each (None before
    the first) and an operator still waiting for its right operand."""

    __slots__ = ("items", "ops", "pending")

    def __init__(self) -> None:
        self.items: list[Optional[Node]] = []
        self.ops: list[Optional[_Tok]] = []
        self.pending: Optional[_Tok] = None


class _LineParser:
    """An operator-precedence parser over the tokens of one line, with an explicit stack:
    proximity first, then and/or/not left to right; any depth."""

    def __init__(self, line: str, toks: list[_Tok], resolve, sink: _Sink, current: int = 10**9, pubmed_words: bool = False):
        self.line, self.toks, self.sink, self.current = line, toks, sink, current
        self.pubmed_words = pubmed_words
        self._resolve_line = resolve
        self.refs: set[int] = set()  # the nodes of referenced lines (kept whole when combined)
        self.i = 0

    def peek(self) -> Optional[_Tok]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def resolve(self, k: int) -> Optional[Node]:
        node = self._resolve_line(k)
        if node is not None:
            self.refs.add(id(node))
        return node

    def _join(self, op: str, items: list) -> Node:
        """``make_or``/``make_and`` of ``items``, but a referenced line's node is kept whole
        (not copied item by item), so a chain ``n or x`` of 100,000 lines stays linear; the
        strategy's query is flattened once at the end (:func:`blockgen.dialects._walk.flatten`)."""
        kind = Or if op == "or" else And
        if not any(id(item) in self.refs and isinstance(item, kind) for item in items):
            return make_or(items) if op == "or" else make_and(items)
        flat: list[Node] = []
        for item in items:
            if isinstance(item, kind) and id(item) not in self.refs:
                flat.extend(item.items)
            else:
                flat.append(item)
        return flat[0] if len(flat) == 1 else kind(tuple(flat))

    def _deliver(self, frame: _Frame, node: Optional[Node], tok: _Tok) -> None:
        if not frame.items:
            frame.items.append(node)
            frame.ops.append(None)
            return
        op = frame.pending
        if op is None:
            self.sink.add("malformed syntax repaired", f"missing operator before {tok.text!r} read as OR")
            op = _Tok("op", "or", tok.start, tok.start)
        frame.items.append(node)
        frame.ops.append(op)
        frame.pending = None

    def parse(self) -> Optional[Node]:
        stack = [_Frame()]
        skipping = False  # inside a run of operators without a left operand (noted once)
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            frame = stack[-1]
            if tok.kind in ("op", "prox"):
                self.i += 1
                if not frame.items:
                    if not skipping:
                        self.sink.add("malformed syntax repaired", f"operator {tok.text!r} without a left operand skipped")
                    skipping = True
                elif frame.pending is not None:
                    self.sink.add("malformed syntax repaired", f"operator {tok.text!r} after {frame.pending.text!r} skipped")
                else:
                    frame.pending = tok
                continue
            skipping = False
            if tok.kind == "lp":
                self.i += 1
                stack.append(_Frame())
                continue
            if tok.kind == "rp":
                self.i += 1
                if len(stack) == 1:
                    self.sink.add("malformed syntax repaired", f"unbalanced {tok.text!r} skipped")
                    continue
                stack.pop()
                node = self._after_group(self._close(frame))
                self._deliver(stack[-1], node, tok)
                continue
            if tok.kind == "stray_star":
                self.i += 1
                self.sink.add("malformed syntax repaired", "stray '*' after ')' dropped")
                continue
            self._deliver(frame, self._operand(), tok)
        while len(stack) > 1:
            frame = stack.pop()
            self.sink.add("malformed syntax repaired", "unclosed '(' closed at the end of the line")
            self._deliver(stack[-1], self._close(frame), self.toks[-1])
        return self._close(stack[0])

    def _close(self, frame: _Frame) -> Optional[Node]:
        """Combine a level's operands: proximity first, then and/or/not left to right."""
        if frame.pending is not None:
            self.sink.add("malformed syntax repaired", f"operator {frame.pending.text!r} with nothing after it dropped")
        merged: list[Optional[Node]] = []
        merged_ops: list[Optional[_Tok]] = []
        for node, op in zip(frame.items, frame.ops):
            if op is not None and op.kind == "prox" and merged:
                left = merged[-1]
                if left is None or node is None:
                    merged[-1] = left if node is None else node
                else:
                    merged[-1] = _proximity(left, node, op, self.sink)
                continue
            merged.append(node)
            merged_ops.append(op)
        if not merged:
            return None
        # left to right, a run of one operator at a time (linear time); a dropped operand
        # (None) keeps what is left of it, and a NOT without a left side drops its right side
        result: Optional[Node] = merged[0]
        run_op: Optional[str] = None
        run: list[Node] = []
        for node, op in zip(merged[1:], merged_ops[1:]):
            name = op.text.lower() if op is not None else "or"
            if name in ("and", "or") and name == run_op and node is not None:
                run.append(node)
                continue
            result = self._flush(result, run_op, run)
            run_op, run = None, []
            if name in ("and", "or") and result is not None and node is not None:
                run_op, run = name, [node]
            else:
                result = self._combine(result, name, node)
        return self._flush(result, run_op, run)

    def _flush(self, left: Optional[Node], op: Optional[str], run: list) -> Optional[Node]:
        if not run or left is None:
            return left
        return self._join(op or "or", [left, *run])

    def _combine(self, left: Optional[Node], op: str, right: Optional[Node]) -> Optional[Node]:
        if left is None:
            return None if op == "not" else right
        if right is None:
            return left
        if op in ("or", "and"):
            return self._join(op, [left, right])
        return Not(left, right)

    def _after_group(self, node: Optional[Node]) -> Optional[Node]:
        if self.peek() is not None and self.peek().kind == "stray_star":
            self.i += 1
            self.sink.add("malformed syntax repaired", "stray '*' after ')' dropped")
        return self._trailing(self._group_suffix(node))

    def _operand(self) -> Optional[Node]:
        tok = self.toks[self.i]
        if tok.kind == "combo":
            self.i += 1
            return self._trailing(self._combo(tok.text))
        return self._trailing(self._words())

    def _trailing(self, node: Optional[Node]) -> Optional[Node]:
        """Bracket notes after an operand (``or/1-7 [Triage keywords]``, ``[mp=...]``)."""
        while self.peek() is not None and self.peek().kind == "tag":
            raw = self.toks[self.i].text
            self.i += 1
            tag = _pubmed_tag(raw, self.sink, comment=True)
            if tag is not None and node is not None:
                node = _with_tag(node, tag)
        return node

    def _group_suffix(self, node: Optional[Node]) -> Optional[Node]:
        tok = self.peek()
        if tok is not None and tok.kind == "suffix":
            self.i += 1
            tag, is_date = _suffix_tag(tok.text, self.sink)
            if is_date:
                self.sink.add("date limit dropped", f"date limit dropped: (...).{tok.text}")
                return None
            return _with_tag(node, tag)
        if tok is not None and tok.kind == "tag":
            self.i += 1
            tag = _pubmed_tag(tok.text, self.sink, comment=True)
            return _with_tag(node, tag)
        return node

    def _combo(self, text: str) -> Optional[Node]:
        op, _, rest = text.partition("/")
        nums: list[int] = []
        for part in rest.split(","):
            part = part.strip()
            m = _RANGE_PART_RE.match(part)
            if not part:
                continue
            if m is None:
                self.sink.add("range not understood", f"range {part} not understood, dropped")
                continue
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else a
            if b < a or b - a > MAX_RANGE:
                self.sink.add("range not understood", f"range {part} not understood, dropped")
                continue
            nums.extend(range(a, b + 1))
        missing = [k for k in nums if k >= self.current]
        if missing:
            self.sink.add("reference to a missing line", f"references to missing lines {missing[0]}-{missing[-1]} dropped")
        nodes = [n for n in (self.resolve(k) for k in nums if k < self.current) if n is not None]
        if not nodes:
            return None
        return self._join("or" if op.strip().lower() == "or" else "and", nodes)

    def _words(self) -> Optional[Node]:
        """One operand made of side-by-side words/phrases, an optional tag and suffix."""
        start = self.i
        while self.peek() is not None and self.peek().kind in ("word", "quote", "stray"):
            self.i += 1
        run = self.toks[start : self.i]
        tag_tok: Optional[str] = None
        if self.peek() is not None and self.peek().kind == "tag":
            tag_tok = self.toks[self.i].text
            self.i += 1
            # Ovid subheading notes "Lung/ra [Radiography]" belong to the heading.
            inner = " ".join(tag_tok[1:-1].split())
            known = parse_tag(inner).field in _KNOWN_TAGS or inner.lower() in _PUBMED_DATE_TAGS
            if run and not known and "/" in self.line[run[0].start : run[-1].end]:
                text = self.line[run[0].start : self.toks[self.i - 1].end]
                return _atom(text, None, self.sink, self.pubmed_words)
        suffix: Optional[str] = None
        if self.peek() is not None and self.peek().kind == "suffix":
            suffix = self.toks[self.i].text
            self.i += 1
        if not run:
            if tag_tok:
                self.sink.add("malformed syntax repaired", f"tag {tag_tok} without a term skipped")
            elif self.i == start:
                self.i += 1  # a token no operand starts with (cannot happen: kept for safety)
            return None
        if any(t.kind == "stray" for t in run):
            self.sink.add("malformed syntax repaired", "unbalanced quote or bracket dropped")
        if len(run) == 1 and _REF_RE.match(run[0].text):
            return self.resolve(int(_REF_RE.match(run[0].text).group(1)))  # type: ignore[union-attr]
        text = self.line[run[0].start : run[-1].end]
        text = text.replace("“", '"').replace("”", '"')
        if any(t.kind == "stray" for t in run):
            text = " ".join(t.text for t in run if t.kind != "stray")
        node = _atom(text, tag_tok, self.sink, self.pubmed_words)
        if node is not None and suffix is not None:
            tag, is_date = _suffix_tag(suffix, self.sink)
            if is_date:
                self.sink.add("date limit dropped", f"date limit dropped: {text}.{suffix}")
                return None
            node = _with_tag(node, tag)
        return node


# ----------------------------------------------------------------------------- strategy


#: A line's own number in front of it: ``1. exp Malaria/``, ``#2 malaria.ti,ab.``, ``3) ...``.
_NUMBER_PREFIX_RE = re.compile(r"^#?(\d+)[.):]?\s+(?=\S)")
#: A hit count after a line, as Ovid exports it: ``exp Malaria/ (12345)``.
_HIT_COUNT_RE = re.compile(r"\s+\(\d[\d,]*\)$")
#: An annotation after a query: ``... [tw])Total references = 1551``.
_TOTAL_RE = re.compile(r"\s*\btotal\s+(?:references|records|hits|results)\b\s*[=:]?\s*[\d,]+\s*$", re.IGNORECASE)
_DEDUP_RE = re.compile(r"^remove\s+duplicates\s+from\s+#?(\d+)$", re.IGNORECASE)
#: Control and format characters that read as a blank (the rest are dropped).
_BLANK_CONTROLS = set("\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")


def _sanitize(line: str, sink: _Sink) -> str:
    """``line`` without control, format and surrogate characters (noted); tabs and other
    blank-like controls become a space."""
    out: list[str] = []
    dropped: list[str] = []
    for ch in line:
        if ch in _BLANK_CONTROLS:
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\u200d":
            dropped.append(ch)
        else:
            out.append(ch)
    if dropped:
        sink.add("control character dropped", f"control or format characters dropped: {''.join(dropped)!r}")
    return "".join(out)


def _split_lines(strategy: str) -> list[str]:
    """Lines split on ``\\n`` (and ``\\r\\n``) only: U+2028, U+0085, ``\\x0b`` and ``\\x0c``
    do not end a line."""
    return [line[:-1] if line.endswith("\r") else line for line in strategy.split("\n")]


def _strategy_lines(strategy: str, notes: list[Note]) -> list[str]:
    """The non-empty lines, cleaned of control characters and annotations, and of their own
    numbers if every (or nearly every) line carries them (``1. exp Malaria/``, ``#2 ...``)."""
    raw = [line for line in _split_lines(strategy) if line.strip()]
    lines = []
    for number, line in enumerate(raw, 1):
        line = _TOTAL_RE.sub("", _sanitize(line, _Sink(notes, number))).strip()
        lines.append(line)
    lines = [line for line in lines if line]
    if len(lines) >= 2:
        own = [bool(m) and int(m.group(1)) == i for i, m in enumerate((_NUMBER_PREFIX_RE.match(x) for x in lines), 1)]
        if sum(own) >= 0.8 * len(lines):
            lines = [_NUMBER_PREFIX_RE.sub("", x, count=1) if o else x for x, o in zip(lines, own)]
        if sum(bool(_HIT_COUNT_RE.search(x)) for x in lines) >= 0.8 * len(lines):
            lines = [_HIT_COUNT_RE.sub("", x) for x in lines]
    return lines


def _refs_in(line: str) -> bool:
    """Whether a line refers to other lines (``1 or 2``, ``or/1-5``, ``#3``, ``limit 4``)."""
    if _LIMIT_RE.match(line) or _RANGE_LINE_RE.match(line) or _DEDUP_RE.match(line):
        return True
    toks = _tokenize(line)
    if any(t.kind == "combo" for t in toks):
        return True
    words = [t for t in toks if t.kind in ("word", "quote", "stray")]
    if any(t.text.startswith("#") and _REF_RE.match(t.text) for t in words):
        return True
    if len(toks) >= 2 and toks[0].kind == "word" and _REF_RE.match(toks[0].text) and toks[1].kind == "op":
        return True  # ``3 and (rapid adj3 test$).tw.``
    return bool(words) and all(t.kind == "word" and _REF_RE.match(t.text) for t in words)


def _numbers_in(line: str) -> set[int]:
    """Every line number ``line`` may refer to (a superset: all its numbers and ranges)."""
    found = {int(x) for x in re.findall(r"\d+", line) if len(x) < 7}
    for a, b in re.findall(r"(\d+)\s*-\s*#?(\d+)", line):
        lo, hi = int(a), int(b)
        if lo <= hi and hi - lo <= MAX_RANGE:
            found.update(range(lo, hi + 1))
    return found


# Strategies written in labelled sections (some PubMed strategies in CLEF TAR):
#   1 Index test: clinical red flags        <- section header: label, title, colon
#   1a                                      <- a label on its own line
#   "straight leg raising"[tw] OR ...       <- the content of the label above
#   Searches (combinations)                 <- prose, ignored
#   A. 1a and (2a or 3) and 2b not 5        <- a labelled combination
#   Final search: A or B or C or D          <- the final combination
_SECTION_HEADER_RE = re.compile(r"^(?P<label>\d+[a-z]?)\.?\s+(?P<title>[A-Za-z][^:\[\]\"“”/]{2,80}):\s*(?P<rest>.*)$")
_LABEL_LINE_RE = re.compile(r"^(?P<label>\d+[a-z]?)\.?$")
_LABELLED_COMBINATION_RE = re.compile(r"^(?P<label>[A-Z])[.:)]\s+(?P<expr>.+)$")
_TITLED_COMBINATION_RE = re.compile(r"^[A-Za-z][A-Za-z ]{2,40}:\s*(?P<expr>.+)$")
_LABEL_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")


def _is_prose(line: str) -> bool:
    """A line without any query syntax (``Search combination``)."""
    return not re.search(r"\b(?:AND|OR|NOT)\b|[\[\]\"“”*/$]|\.(?:ti|ab|tw|mp|pt|sh)\b", line)


def _rewrite_labels(expr: str, refs: dict[str, str]) -> Optional[str]:
    """``1a and (2a or 3)`` with every label replaced by its line reference; None if the
    expression holds anything but labels, operators and parentheses."""
    out: list[str] = []
    for tok in _LABEL_TOKEN_RE.findall(expr):
        if tok in "()" or tok.lower() in _OPERATORS:
            out.append(tok)
        elif tok in refs:
            out.append(refs[tok])
        else:
            return None
    return " ".join(out) if any(t not in "()" and t.lower() not in _OPERATORS for t in out) else None


def _section_lines(lines: list[str]) -> Optional[tuple[list[str], int]]:
    """Rewrite a strategy in labelled sections as numbered lines; returns the lines (same
    numbering as ``lines``; headers and prose become empty) and the final line's number,
    or None if ``lines`` is not such a strategy."""
    if sum(bool(_SECTION_HEADER_RE.match(x)) for x in lines) < 2:
        return None
    virtual = [""] * len(lines)
    refs: dict[str, str] = {}  # label -> "#n" or "(#a OR #b)"
    children: dict[str, list[str]] = {}
    label: Optional[str] = None  # the label waiting for its content
    owner: Optional[int] = None  # the index of the content line being continued
    final: Optional[int] = None
    for i, line in enumerate(lines):
        header = _SECTION_HEADER_RE.match(line)
        alone = _LABEL_LINE_RE.match(line)
        combination = _LABELLED_COMBINATION_RE.match(line)
        titled = _TITLED_COMBINATION_RE.match(line)
        if header or alone:
            label, owner = (header or alone).group("label"), None  # type: ignore[union-attr]
            parent = re.match(r"\d+", label).group(0)  # type: ignore[union-attr]
            if parent != label:
                children.setdefault(parent, []).append(label)
            rest = header.group("rest").strip() if header else ""
            if rest and not _is_prose(rest):  # ``3 Target condition: radiculopath*[tw] OR ...``
                refs[label], virtual[i], owner, label = f"#{i + 1}", rest, i, None
            continue
        for_refs = {**refs, **{p: "(" + " OR ".join(refs[c] for c in cs if c in refs) + ")" for p, cs in children.items() if p not in refs and any(c in refs for c in cs)}}
        expr = None
        if combination:
            expr = _rewrite_labels(combination.group("expr"), for_refs)
        if expr is None and titled:
            expr = _rewrite_labels(titled.group("expr"), for_refs)
        if expr is None:
            expr = _rewrite_labels(line, for_refs)
        if expr is not None:
            virtual[i], final, owner, label = expr, i + 1, None, None
            if combination:
                refs[combination.group("label")] = f"#{i + 1}"
            continue
        if _is_prose(line):
            continue
        if label is not None and label not in refs:
            refs[label], virtual[i], owner, label = f"#{i + 1}", line, i, None
        elif owner is not None:
            starts_op = re.match(r"^(?:AND|OR|NOT)\b", line, re.IGNORECASE)
            virtual[owner] += " " + line if starts_op else " OR " + line
        else:
            virtual[i] = line
    if final is None:
        return None
    return virtual, final


_PUBMED_TAG_RE = re.compile(r"\[\s*(?:tiab|tw|ti|ab|mh|mesh|majr|pt|sh|nm|title/abstract|mesh terms|all fields|text word)\b[^\]]*\]", re.IGNORECASE)
_OVID_SYNTAX_RE = re.compile(r"\.\s*(?:ti|ab|tw|mp|pt|sh|kf|kw|hw|fs|af|ot)\b|/\s*$|^\s*exp\s|\badj\d*\b|\$", re.IGNORECASE | re.MULTILINE)


def _pubmed_style(lines: list[str]) -> bool:
    """A strategy written with PubMed tags and no Ovid syntax: words side by side are
    PubMed's (ANDed words), not Ovid's phrases."""
    text = "\n".join(lines)
    return bool(_PUBMED_TAG_RE.search(text)) and not _OVID_SYNTAX_RE.search(text)


def _read_strategy(strategy: str) -> tuple[Node, tuple[Note, ...], int]:
    """The query of a strategy, its notes and its number of non-empty lines (or OvidError)."""
    if not isinstance(strategy, str):
        raise TypeError(f"convert_ovid() needs the strategy text, not {type(strategy).__name__}")
    strategy = normalise(strategy)  # NFC, as every reader of blockgen.text
    notes: list[Note] = []
    lines = _strategy_lines(strategy, notes)
    if not lines:
        raise OvidError("the strategy is empty")
    pubmed_words = _pubmed_style(lines)
    sections = _section_lines(lines)
    if sections is not None:
        virtual, last = sections
        root = _resolve(virtual, last, notes, pubmed_words)
        where = f"line {last}"
    else:
        has_refs = [_refs_in(line) for line in lines]
        if len(lines) == 1 or not any(has_refs[1:]):
            root = _single_query(lines, notes, pubmed_words)
            where, last = "the strategy", len(lines)
        else:
            last = len(lines)
            if not has_refs[-1]:
                last = max(i + 1 for i, r in enumerate(has_refs) if r)
                notes.append(Note("lines ignored", last + 1, f"lines {last + 1}-{len(lines)} ignored (no line reference after line {last})"))
            root = _resolve(lines, last, notes, pubmed_words)
            where = f"line {last}"
    if root is not None:
        root = flatten(root)  # referenced lines were kept whole while the lines were built
    if root is None:
        why = f" ({'; '.join(str(n) for n in notes[:3])})" if notes else ""
        raise OvidError(f"{where} gives no usable query: {lines[last - 1]!r}{why}")
    bad = [leaf for leaf in set(_leaves(root)) if not is_valid(str(leaf))]
    if bad:  # pragma: no cover - the leaves are built to fit the grammar
        raise OvidError(f"{where}: the converted query holds a term that is not valid: {bad[0]!r}")
    return root, tuple(notes), len(lines)


def _leaves(query: Node) -> list[Node]:
    out: list[Node] = []
    fold_nodes(query, out.append, lambda node, kids: None)
    return out


def _line_node(lines: list[str], n: int, resolve, sink: _Sink, pubmed_words: bool) -> Optional[Node]:
    """The query of line ``n`` alone, its references given by ``resolve``."""
    line = lines[n - 1]
    limit = _LIMIT_RE.match(line)
    rng = _RANGE_LINE_RE.match(line)
    dedup = _DEDUP_RE.match(line)
    if limit:
        sink.add("limit line dropped", f"limit dropped: {line}")
        target = int(limit.group(1))
        if target >= n and n > 1:  # numbering off in the source: limit the line before
            sink.add("limit on the wrong line", f"limit refers to line {target}, read as line {n - 1}")
            target = n - 1
        return resolve(target)
    if dedup:  # ``remove duplicates from 50``: the same records
        return resolve(int(dedup.group(1)))
    if rng:
        line = f"{rng.group(1)}/{rng.group(2)}-{rng.group(3)}"
    return _LineParser(line, _tokenize(line), resolve, sink, n, pubmed_words).parse()


def _resolve(lines: list[str], last: int, notes: list[Note], pubmed_words: bool = False) -> Optional[Node]:
    """The query of line ``last`` (1-based) with its references resolved. Lines refer only to
    earlier lines, so they are built in order, each once, with no recursion; only the notes
    of the lines the result uses are kept."""
    reach: set[int] = set()
    todo = [last]
    while todo:
        n = todo.pop()
        if n in reach or not 1 <= n <= len(lines):
            continue
        reach.add(n)
        todo.extend(k for k in _numbers_in(lines[n - 1]) if k < n)
        if _LIMIT_RE.match(lines[n - 1]):
            todo.append(n - 1)  # a limit on its own line number limits the line before
    built: dict[int, Optional[Node]] = {}
    uses: dict[int, set[int]] = {}
    line_notes: dict[int, list[Note]] = {}
    for n in sorted(reach):
        sink = _Sink(line_notes.setdefault(n, []), n)
        uses[n] = set()

        def resolve(k: int, n: int = n, sink: _Sink = sink) -> Optional[Node]:
            if not 1 <= k < n or k not in built:
                sink.add("reference to a missing line", f"reference to missing line {k} dropped")
                return None
            uses[n].add(k)
            return built[k]

        built[n] = _line_node(lines, n, resolve, sink, pubmed_words)
    used: set[int] = set()
    todo = [last]
    while todo:
        n = todo.pop()
        if n not in used:
            used.add(n)
            todo.extend(uses.get(n, ()))
    for n in sorted(used):
        notes.extend(line_notes.get(n, ()))
    return built.get(last)


def _single_query(lines: list[str], notes: list[Note], pubmed_words: bool) -> Optional[Node]:
    """A strategy without line references: one query over all its lines."""
    joined: list[str] = []
    for i, line in enumerate(lines):
        if joined:
            prev_toks = _tokenize(joined[-1])
            toks = _tokenize(line)
            ends_op = bool(prev_toks) and prev_toks[-1].kind in ("op", "lp")
            starts_op = bool(toks) and toks[0].kind in ("op", "rp")
            if not (ends_op or starts_op):
                joined.append("OR")
                notes.append(Note("lines joined with OR", i + 1, "joined to the line before with OR"))
        joined.append(line)
    text = " ".join(joined)
    sink = _Sink(notes, None if len(lines) > 1 else 1)

    def resolve(k: int) -> Optional[Node]:
        sink.add("reference to a missing line", f"reference to missing line {k} dropped")
        return None

    return _LineParser(text, _tokenize(text), resolve, sink, pubmed_words=pubmed_words).parse()


def convert_ovid(strategy: str) -> OvidConversion:
    """Convert a line-numbered Ovid/PubMed ``strategy`` into one nested block query.

    Returns the query, the :class:`Note` of what was dropped or approximated, and the number
    of non-empty lines. Raises :class:`OvidError` when nothing usable results.
    """
    query, notes, lines = _read_strategy(strategy)
    return OvidConversion(query=query, dropped=notes, lines=lines)


def from_ovid(strategy: str) -> Node:
    """The query of :func:`convert_ovid` (notes discarded)."""
    return convert_ovid(strategy).query


def summarize(strategies: Iterable[tuple[str, str]]) -> dict:
    """Conversion figures over ``(topic, strategy)`` pairs: how many convert, how many with
    nothing dropped (``clean``), how many with at most limits dropped (``only_limits``,
    clean ones included), and per note kind the number of strategies with such a note."""
    total = converted = clean = only_limits = 0
    kinds: Counter = Counter()
    failures: list[str] = []
    for topic, strategy in strategies:
        total += 1
        try:
            conv = convert_ovid(strategy)
        except OvidError as err:
            failures.append(f"{topic}: {err}")
            continue
        converted += 1
        clean += conv.clean
        only_limits += conv.only_limits_dropped
        kinds.update({n.kind for n in conv.dropped})
    return {
        "total": total, "converted": converted, "clean": clean, "only_limits": only_limits,
        "kinds": kinds.most_common(), "failures": failures,
    }


# ------------------------------------------------------------------------------ dialect


class Ovid(Dialect):
    """Ovid MEDLINE: numbered lines, ``adjN``, ``$``, ``.ti,ab.``, ``exp X/`` (see the module docstring)."""

    name = "ovid"
    description = "Ovid MEDLINE: numbered lines, adjN, $, .ti,ab., exp Heading/"

    def read(self, text: str) -> Reading:
        query, notes, _ = _read_strategy(text)
        return Reading(query, notes)

    def write(self, query: Node) -> Writing:
        if not isinstance(query, Node):
            raise TypeError(f"format() needs a parsed query, not {type(query).__name__}")
        return _Writer().write(query)


# ------------------------------------------------------------------------------ writing

_PLAIN_WORD = regex.compile(rf"[{_LETTERS}][{_LETTERS}*?'\-]*")
_RESERVED = re.compile(r"^(?:and|or|not|exp|limit|adj\d*|near/?\d*|next/?\d*|w/\d+|n\d+|\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Out:
    """A written operand: its text without a field suffix, the suffix (``ti,ab``; None: none),
    and whether it needs parentheses before a suffix or inside another operator."""

    bare: str
    suffix: Optional[str]
    compound: bool

    def full(self) -> str:
        if self.suffix is None:
            return self.bare
        return (f"({self.bare})" if self.compound else self.bare) + f".{self.suffix}."


class _Writer:
    def __init__(self) -> None:
        self.notes: list[Note] = []

    def note(self, kind: str, detail: str) -> None:
        self.notes.append(Note(kind, None, detail))

    @staticmethod
    def _plain(word: str) -> bool:
        return bool(_PLAIN_WORD.fullmatch(word)) and not _RESERVED.match(word)

    def _suffix(self, field: Optional[str], what: str) -> Optional[str]:
        if field is None or field == "all":
            return None
        if field in OVID_SUFFIX:
            return OVID_SUFFIX[field]
        self.note("tag dropped", f"{what}: Ovid has no field suffix for [{field}]; searched in the default fields")
        return None

    def _word(self, word: str) -> str:
        return word if self._plain(word) else '"' + word.replace('"', " ").strip() + '"'

    def leaf(self, node: Node) -> Optional[_Out]:
        if isinstance(node, (Term, Phrase)):
            tag = parse_tag(node.tag)
            words = node.text.split()
            if tag.heading:
                head = node.text if all(self._plain(w) or re.fullmatch(r"[\w,'\-]+", w) and not _RESERVED.match(w) for w in words) else f'"{node.text}"'
                star = "*" if tag.major else ""
                return _Out(("exp " if tag.exploded else "") + f"{star}{head}/", None, False)
            suffix = self._suffix(tag.field, node.text)
            if tag.proximity is not None and len(words) > 1:
                if len(words) == 2:
                    return _Out(f"{self._word(words[0])} adj{tag.proximity + 1} {self._word(words[1])}", suffix, True)
                self.note("proximity approximated", f"{node.text!r} within {tag.proximity} words: Ovid's adj joins two operands; written as AND of the words")
                return _Out(" and ".join(self._word(w) for w in words), suffix, True)
            if isinstance(node, Phrase):
                plain = len(words) > 1 and all(self._plain(w) for w in words)
                return _Out(node.text if plain else '"' + node.text.replace('"', " ") + '"', suffix, False)
            if len(words) == 1:
                return _Out(self._word(words[0]), suffix, False)
            return _Out(" and ".join(self._word(w) for w in words), suffix, True)
        if isinstance(node, Field):
            self.note("term dropped", f"field filter {node.name}:{node.value} has no Ovid form: dropped")
            return None
        if isinstance(node, Comparison):
            self.note("term dropped", f"comparison {node.name}{node.op}{node.value} has no Ovid form (use a limit line): dropped")
            return None
        raise TypeError(f"not a query node: {node!r}")

    def inner(self, node: Node, kids: list[Optional[_Out]]) -> Optional[_Out]:
        if isinstance(node, Not):
            kept = not_with_dropped_side(kids, self.note)
            if kept is not BOTH_SIDES:
                return kept
        parts = [k for k in kids if k is not None]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        op = " or " if isinstance(node, Or) else " and " if isinstance(node, And) else " not "
        suffixes = {p.suffix for p in parts}
        if len(suffixes) == 1 and None not in suffixes:  # one suffix for the whole group
            texts = [f"({p.bare})" if p.compound else p.bare for p in parts]
            return _Out(op.join(texts), parts[0].suffix, True)
        texts = [_group(p) for p in parts]
        return _Out(op.join(texts), None, True)

    def line(self, node: Node) -> Optional[str]:
        out = fold_nodes(node, self.leaf, self.inner)
        return None if out is None else out.full()

    def write(self, query: Node) -> Writing:
        if isinstance(query, And):
            blocks, combine = list(query.items), " and ".join
        elif isinstance(query, Not):
            positive = list(query.positive.items) if isinstance(query.positive, And) else [query.positive]
            blocks = positive + [query.negative]
            combine = None
        else:
            text = self.line(query)
            if text is None:
                raise DialectError("nothing is left to write in Ovid syntax: " + "; ".join(n.detail for n in self.notes))
            return Writing(text, tuple(self.notes))
        lines: list[str] = []
        numbers: list[Optional[int]] = []
        for block in blocks:
            text = self.line(block)
            if text is None:
                numbers.append(None)
                continue
            lines.append(text)
            numbers.append(len(lines))
        if isinstance(query, Not):
            pos = [str(n) for n in numbers[:-1] if n is not None]
            neg = numbers[-1]
            if not pos:
                raise DialectError("nothing is left to write in Ovid syntax: " + "; ".join(n.detail for n in self.notes))
            left = " and ".join(pos)
            if len(pos) > 1:
                left = f"({left})"
            final = left if neg is None else f"{left} not {neg}"
        else:
            kept = [str(n) for n in numbers if n is not None]
            if not kept:
                raise DialectError("nothing is left to write in Ovid syntax: " + "; ".join(n.detail for n in self.notes))
            final = combine(kept)  # type: ignore[misc]
        if len(lines) == 1 and final == "1":
            return Writing(lines[0], tuple(self.notes))
        lines.append(final)
        return Writing("\n".join(f"{i} {line}" for i, line in enumerate(lines, 1)), tuple(self.notes))


def _group(out: _Out) -> str:
    """An operand of and/or/not: parenthesised when compound and not already closed by a suffix."""
    if out.suffix is not None:
        return out.full()
    return f"({out.bare})" if out.compound else out.bare
