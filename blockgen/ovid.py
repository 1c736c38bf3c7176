"""Convert a line-numbered Ovid MEDLINE (or PubMed) search strategy into one block query.

Systematic-review strategies are written as numbered lines that refer to each other::

    1  exp Malaria/
    2  malaria.ti,ab.
    3  1 or 2
    4  (rapid adj3 test$).tw.
    5  3 and 4
    6  limit 5 to humans

:func:`convert_ovid` resolves the line references from the final line down and returns
one nested query, here ``("Malaria"[Mesh] OR malaria[tiab]) AND (rapid[tw] AND test*[tw])``,
together with readable notes of everything it had to drop or approximate.

Mapping (Ovid -> blockgen):

* ``exp Heading/`` -> ``"Heading"[Mesh]``; ``Heading/`` -> ``"Heading"[Mesh:NoExp]``;
  the focus star (major topic) ``*Heading/`` -> ``"Heading"[majr:NoExp]``, ``exp *Heading/``
  -> ``"Heading"[majr]``; subheadings (``Lung/ra, ri [Radiography]``) are dropped (noted),
  the heading is kept; a bracket after a heading without subheading codes
  (``exp Neck Injuries/ [includes whiplash injuries]``) is a comment.
* Field suffixes on words, phrases or parenthesised groups become a tag on every term:

  ==================================  =========  ====================================
  Ovid suffix                         tag        note
  ==================================  =========  ====================================
  ``.ti,ab.`` / ``.ab,ti.``           ``[tiab]``
  ``.ti.`` ``.ab.`` ``.pt.`` ``.au.``  ``[ti]`` ``[ab]`` ``[pt]`` ``[au]``
  ``.tw.`` ``.mp.`` ``.kf.`` ``.kw.``  ``[tw]``    PubMed's text words: title, abstract,
  and any mixture of text fields                 MeSH, substance names, other terms
  (``.ti,ab,kf.``, ``.tw,ot.``,
  ``.ti,ab,kf,hw.``, ``.sh,kf.``)
  ``.sh.`` / ``.hw.``                 ``[Mesh]``
  ``.fs.`` / ``.xs.``                 ``[sh]``   PubMed subheading
  ``.nm.`` ``.rn.`` ``.af.`` ``.ot.``  ``[nm]`` ``[rn]`` ``[all]`` ``[ot]``
  ``.jn.`` ``.lg.``                    ``[ta]`` ``[la]``
  date fields ``.ed.`` ``.dp.`` ...   --         the operand is dropped (noted)
  anything else (``.cm.``)            --         tag dropped, term kept (noted)
  ==================================  =========  ====================================

  PubMed tags (``[tiab]``, ``[Mesh]``, ``[MeSH Terms]``, ``[mh:noexp]``, ``[Title/Abstract]``
  ...) are kept in their short spelling; ``[crdt]``/``[dp]`` date ranges are dropped (noted).
* Truncation ``$``, ``$N``, ``*N`` and ``:`` -> ``*``; the wildcard ``#`` -> ``?``.
* Multi-word unquoted terms stay one term of words side by side (``low molecular weight
  heparin[tw]``); quoted phrases stay phrases; headings with a comma are quoted.
* Line combinations ``1 or 2 or 3``, ``or/1-5``, ``and/1,3``, ``OR 1-14``, ``#1 OR #2``,
  ``(3 AND 13)``, ``17 not 18`` and inline Boolean in any letter case. Mixed operators
  without parentheses are read left to right (as PubMed does).
* Proximity ``adj``, ``adjN``, ``near/N``, ``w/N`` -> AND (noted: looser than the original).
* ``limit N to ...`` -> line N (noted); ``remove duplicates from N`` -> line N; references
  to missing or later lines are dropped (noted). If the last line holds no reference but
  earlier lines do (a strategy cut off in the source), the last line that does is used
  (noted). A strategy without any line reference is read as one query, its lines joined
  by OR unless an operator joins them.
* Lines may carry their own numbers (``1. exp Malaria/``, ``#2 ...``) and Ovid hit counts
  (``(1234)``); brackets after a line combination (``or/1-7 [Triage keywords]``) and
  ``Total references = N`` are comments. Strategies in labelled sections (``1 Index test:
  ...``, ``1a``, ``A. 1a and (2a or 3)``, ``Final search: A or B``) are resolved by label.

Every result satisfies ``blockgen.is_valid(str(query))``: words that do not fit the
grammar's ``WORD`` terminal are cleaned or the term is quoted.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from blockgen.grammar import terminal_regex
from blockgen.parser import is_valid
from blockgen.query import And, Node, Not, Or, Phrase, Term, make_and, make_or

__all__ = ["LIMIT_KINDS", "OvidConversion", "OvidError", "convert_ovid", "from_ovid", "note_kind", "summarize"]


class OvidError(ValueError):
    """A strategy from which no usable query results (names the line)."""


@dataclass(frozen=True)
class OvidConversion:
    """The converted ``query``, readable notes of what was ``dropped`` or approximated, and
    the number of strategy ``lines`` read."""

    query: Node
    dropped: tuple[str, ...]
    lines: int

    @property
    def clean(self) -> bool:
        """True when nothing was dropped or approximated."""
        return not self.dropped

    @property
    def only_limits_dropped(self) -> bool:
        """True when every note is a dropped limit (``limit N to ...``, a date line or a
        ``[crdt]`` date range), so the query finds a superset of the original's records
        with the same topical structure. True for a clean conversion too."""
        return all(note_kind(note) in LIMIT_KINDS for note in self.dropped)


# ---------------------------------------------------------------------------- constants

#: Ovid field codes -> PubMed-style tag (None: drop the tag, keep the term).
_TEXT_CODES = {"tw", "mp", "kf", "kw", "ot"}
_FIELD_TAGS = {
    "ti": "ti", "ab": "ab", "pt": "pt", "sh": "Mesh", "hw": "Mesh", "fs": "sh", "xs": "sh",
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
_TAG_OK = re.compile(r"^[A-Za-z][A-Za-z \/:~0-9-]*$")
_PROXIMITY = re.compile(r"^(?:adj\d*|near/?\d*|w/\d+|n\d+|next/?\d*)$", re.IGNORECASE)
_OPERATORS = {"and", "or", "not"}

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


# ------------------------------------------------------------------------------ tokens


@dataclass(frozen=True)
class _Tok:
    kind: str  # lp rp quote tag word op prox combo suffix
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

_WORD = None


def _word_re():
    global _WORD
    if _WORD is None:
        _WORD = terminal_regex("WORD")
    return _WORD


def _clean_word(word: str) -> str:
    """Ovid truncation to grammar wildcards; strip what a word cannot hold at its edges."""
    w = re.sub(r"\$\d*", "*", word)
    w = re.sub(r"(?<=\*)\d+$", "", w)
    w = w.replace(":", "*").replace("#", "?")
    w = re.sub(r"\*+", "*", w)
    w = re.sub(r"^[^0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё]+", "", w)
    w = re.sub(r"[^0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё*?]+$", "", w)
    return w


def _fits(word: str) -> bool:
    return bool(word) and word.upper() not in ("AND", "OR", "NOT") and _word_re().fullmatch(word) is not None


def _leaf(text: str, tag: Optional[str], notes: list[str], quoted: bool = False) -> Optional[Node]:
    """A Term (words that fit the grammar) or else a Phrase; None if nothing is left."""
    text = " ".join(text.replace('"', " ").replace("“", " ").replace("”", " ").split())
    if not text:
        return None
    if quoted or "," in text:  # "Heart Defects, Congenital": a heading, kept whole
        return Phrase(re.sub(r"\$\d*", "*", text), tag)
    words = [_clean_word(w) for w in text.split()]
    words = [w for w in words if w]
    if words and all(_fits(w) for w in words):
        return Term(" ".join(words), tag)
    phrase = " ".join(text.split())
    phrase = re.sub(r"\$\d*", "*", phrase)
    notes.append(f"quoted a term that is not plain words: {phrase!r}")
    return Phrase(phrase, tag)


def _with_tag(node: Node, tag: Optional[str]) -> Node:
    """Give every untagged Term/Phrase in ``node`` the tag ``tag``."""
    if tag is None:
        return node
    if isinstance(node, (Term, Phrase)):
        return node if node.tag else type(node)(node.text, tag)
    if isinstance(node, Or):
        return make_or(_with_tag(i, tag) for i in node.items)
    if isinstance(node, And):
        return make_and(_with_tag(i, tag) for i in node.items)
    if isinstance(node, Not):
        return Not(_with_tag(node.positive, tag), _with_tag(node.negative, tag))
    return node


def _suffix_tag(codes_text: str, notes: list[str]) -> tuple[Optional[str], bool]:
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
        notes.append(f"field suffix .{','.join(codes)}. read as [tiab]")
        return "tiab", False
    mapped = [_FIELD_TAGS[c] for c in kept if c in _FIELD_TAGS]
    if mapped:
        notes.append(f"field suffix .{','.join(codes)}. read as [{mapped[0]}]")
        return mapped[0], False
    notes.append(f"field suffix .{','.join(codes)}. dropped")
    return None, False


#: PubMed tags kept as they are (lower case -> spelling); anything else in brackets is a note.
_PUBMED_TAGS = {
    "tiab": "tiab", "tw": "tw", "ti": "ti", "ab": "ab", "pt": "pt", "sh": "sh", "nm": "nm",
    "all": "all", "all fields": "all", "ot": "ot", "la": "la", "au": "au", "ta": "ta", "rn": "rn",
    "majr": "majr", "mh": "Mesh", "mesh": "Mesh", "mesh terms": "Mesh", "mesh:noexp": "Mesh:NoExp",
    "mh:noexp": "Mesh:NoExp", "title/abstract": "tiab", "text word": "tw", "title": "ti",
    "publication type": "pt", "subheading": "sh", "sb": "sb", "majr:noexp": "majr:NoExp",
    "supplementary concept": "nm", "substance name": "nm",
}
#: PubMed date tags: an operand with one of these is a date limit, dropped.
_PUBMED_DATE_TAGS = {"crdt", "dp", "edat", "pdat", "mhda", "dcom", "lr", "epdat", "ppdat"}


def _pubmed_tag(raw: str, notes: list[str], comment: bool = False) -> Optional[str]:
    """A PubMed tag ``[tiab]``/``[MeSH Terms]`` in the spelling kept, or None.

    Anything else in brackets is a comment when ``comment`` (after a line combination, a
    group or a MeSH heading: ``or/1-7 [Triage keywords]``) or starts with ``mp=`` (Ovid's
    spelled-out ``.mp.`` fields) and is ignored; otherwise it is an unknown field, noted.
    """
    inner = raw.strip()[1:-1].strip()
    low = " ".join(inner.lower().split())
    if low in _PUBMED_TAGS:
        return _PUBMED_TAGS[low]
    if re.fullmatch(r"tiab:~\d+", low):
        notes.append(f"proximity tag {raw} read as [tiab]")
        return "tiab"
    if not (comment or low.startswith("mp=")):
        notes.append(f"bracket note {raw} dropped")
    return None


def _atom(text: str, tag_tok: Optional[str], notes: list[str]) -> Optional[Node]:
    """Interpret the raw text of one operand (words, a phrase, a MeSH heading)."""
    text = text.strip()
    if tag_tok and tag_tok.strip()[1:-1].strip().lower() in _PUBMED_DATE_TAGS:
        notes.append(f"date limit dropped: {text}{tag_tok}")
        return None
    tag: Optional[str] = _pubmed_tag(tag_tok, notes) if tag_tok else None
    m = _SUFFIX_RE.search(text)
    if m and m.start() > 0:
        stag, is_date = _suffix_tag(m.group(1), notes)
        if is_date:
            notes.append(f"date limit dropped: {text}")
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
            notes.append(f"subheading /{sub.strip()} dropped from {head}")
        explode = explode or bool(mesh.group("exp"))
        kind = "majr" if focus else "Mesh"
        return _leaf(head, kind if explode else f"{kind}:NoExp", notes, quoted=True)
    if focus:
        notes.append(f"MeSH focus * without a heading '/' dropped: *{text}")
    if explode and tag not in ("Mesh", "majr"):
        notes.append(f"exp without a heading '/' ignored: {text}")
    stripped = text.strip()
    quoted = len(stripped) >= 2 and stripped[0] in '"“”' and stripped[-1] in '"“”' and not re.search(r'["“”]', stripped[1:-1])
    return _leaf(stripped[1:-1] if quoted else stripped, tag, notes, quoted=quoted)


# ------------------------------------------------------------------------------ parser


class _LineParser:
    """Recursive descent over the tokens of one line; operators fold left to right."""

    def __init__(
        self, line: str, toks: list[_Tok], resolve: Callable[[int], Optional[Node]], notes: list[str], current: int = 10**9
    ):
        self.line, self.toks, self.resolve, self.notes, self.current = line, toks, resolve, notes, current
        self.i = 0

    def peek(self) -> Optional[_Tok]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Optional[Node]:
        node = self.expr()
        while self.peek() is not None:  # an unbalanced ")": skip it, keep folding left to right
            tok = self.toks[self.i]
            self.i += 1
            self.notes.append(f"unbalanced {tok.text!r} skipped")
            node = self._fold(node)
        return node

    def expr(self) -> Optional[Node]:
        return self._fold(self.operand())

    def _fold(self, node: Optional[Node]) -> Optional[Node]:
        """Read ``op operand`` pairs after ``node`` up to a ``)`` or the end of the line."""
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "rp":
                return node
            if tok.kind in ("op", "prox"):
                self.i += 1
                if tok.kind == "prox":
                    self.notes.append(f"proximity {tok.text} read as AND")
                    op = "and"
                else:
                    op = tok.text.lower()
                right = self.operand()
                node = self._combine(node, op, right)
            else:  # two operands side by side (e.g. after a group): read as OR
                self.notes.append(f"missing operator before {tok.text!r} read as OR")
                right = self.operand()
                node = self._combine(node, "or", right)

    @staticmethod
    def _combine(left: Optional[Node], op: str, right: Optional[Node]) -> Optional[Node]:
        if left is None:
            return None if op == "not" else right
        if right is None:
            return left
        if op == "or":
            return make_or([left, right])
        if op == "and":
            return make_and([left, right])
        return Not(left, right)

    def operand(self) -> Optional[Node]:
        tok = self.peek()
        if tok is None:
            return None
        if tok.kind == "lp":
            self.i += 1
            inner = self.expr()
            if self.peek() is not None and self.peek().kind == "rp":
                self.i += 1
            else:
                self.notes.append("unclosed '(' closed at the end of the line")
            if self.peek() is not None and self.peek().kind == "stray_star":
                self.i += 1
                self.notes.append("stray '*' after ')' dropped")
            return self._trailing(self._group_suffix(inner))
        if tok.kind == "stray_star":
            self.i += 1
            self.notes.append("stray '*' after ')' dropped")
            return self.operand()
        if tok.kind == "combo":
            self.i += 1
            return self._trailing(self._combo(tok.text))
        if tok.kind in ("op", "prox", "rp"):
            self.i += 1
            if tok.kind != "rp":
                self.notes.append(f"operator {tok.text!r} without a left operand skipped")
            return self.operand() if tok.kind != "rp" else None
        return self._trailing(self._words())

    def _trailing(self, node: Optional[Node]) -> Optional[Node]:
        """Bracket notes after an operand (``or/1-7 [Triage keywords]``, ``[mp=...]``)."""
        while self.peek() is not None and self.peek().kind == "tag":
            raw = self.toks[self.i].text
            self.i += 1
            tag = _pubmed_tag(raw, self.notes, comment=True)
            if tag is not None and node is not None:
                node = _with_tag(node, tag)
        return node

    def _group_suffix(self, node: Optional[Node]) -> Optional[Node]:
        tok = self.peek()
        if tok is not None and tok.kind == "suffix":
            self.i += 1
            tag, is_date = _suffix_tag(tok.text, self.notes)
            if is_date:
                self.notes.append(f"date limit dropped: (...).{tok.text}")
                return None
            return _with_tag(node, tag) if node is not None else None
        if tok is not None and tok.kind == "tag":
            self.i += 1
            tag = _pubmed_tag(tok.text, self.notes, comment=True)
            return _with_tag(node, tag) if node is not None else None
        return node

    def _combo(self, text: str) -> Optional[Node]:
        op, _, rest = text.partition("/")
        nums: list[int] = []
        for part in rest.split(","):
            part = part.replace("#", "").strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a or b - a > 500:
                    self.notes.append(f"range {part} not understood, dropped")
                    continue
                nums.extend(range(a, b + 1))
            elif part:
                nums.append(int(part))
        current = self.current
        missing = [k for k in nums if k >= current]
        if missing:
            self.notes.append(f"references to missing lines {missing[0]}-{missing[-1]} dropped")
        nodes = [n for n in (self.resolve(k) for k in nums if k < current) if n is not None]
        if not nodes:
            return None
        return make_or(nodes) if op.strip().lower() == "or" else make_and(nodes)

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
            inner = " ".join(tag_tok[1:-1].lower().split())
            known = inner in _PUBMED_TAGS or inner in _PUBMED_DATE_TAGS
            if run and not known and "/" in self.line[run[0].start : run[-1].end]:
                text = self.line[run[0].start : self.toks[self.i - 1].end]
                return _atom(text, None, self.notes)
        suffix: Optional[str] = None
        if self.peek() is not None and self.peek().kind == "suffix":
            suffix = self.toks[self.i].text
            self.i += 1
        if not run:
            if tag_tok:
                self.notes.append(f"tag {tag_tok} without a term skipped")
            return None
        if any(t.kind == "stray" for t in run):
            self.notes.append("unbalanced quote or bracket dropped")
        if len(run) == 1 and _REF_RE.match(run[0].text):
            return self.resolve(int(_REF_RE.match(run[0].text).group(1)))
        text = self.line[run[0].start : run[-1].end]
        text = text.replace("“", '"').replace("”", '"')
        if sum(1 for t in run if t.kind == "stray"):
            text = " ".join(t.text for t in run if t.kind != "stray")
        node = _atom(text, tag_tok, self.notes)
        if node is not None and suffix is not None:
            tag, is_date = _suffix_tag(suffix, self.notes)
            if is_date:
                self.notes.append(f"date limit dropped: {text}.{suffix}")
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


def _strategy_lines(strategy: str) -> list[str]:
    """The non-empty lines, stripped of annotations and of their own numbers if every
    (or nearly every) line carries them (``1. exp Malaria/``, ``#2 ...``)."""
    lines = [_TOTAL_RE.sub("", line).strip() for line in strategy.splitlines()]
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
    return bool(words) and all(t.kind == "word" and _REF_RE.match(t.text) for t in words)


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


def convert_ovid(strategy: str) -> OvidConversion:
    """Convert a line-numbered Ovid/PubMed ``strategy`` into one nested block query.

    Returns the query, readable notes of what was dropped or approximated, and the number
    of non-empty lines. Raises :class:`OvidError` when nothing usable results.
    """
    if not isinstance(strategy, str):
        raise TypeError(f"convert_ovid() needs the strategy text, not {type(strategy).__name__}")
    lines = _strategy_lines(strategy)
    if not lines:
        raise OvidError("the strategy is empty")
    notes: list[str] = []
    sections = _section_lines(lines)
    if sections is not None:
        virtual, last = sections
        root = _resolve(virtual, last, notes)
        where = f"line {last}"
    else:
        has_refs = [_refs_in(line) for line in lines]
        if len(lines) == 1 or not any(has_refs[1:]):
            root = _single_query(lines, notes)
            where, last = "the strategy", len(lines)
        else:
            last = len(lines)
            if not has_refs[-1]:
                last = max(i + 1 for i, r in enumerate(has_refs) if r)
                notes.append(f"lines {last + 1}-{len(lines)} ignored (no line reference after line {last})")
            root = _resolve(lines, last, notes)
            where = f"line {last}"
    if root is None:
        why = f" ({'; '.join(notes[:3])})" if notes else ""
        raise OvidError(f"{where} gives no usable query: {lines[last - 1]!r}{why}")
    text = str(root)
    if not is_valid(text):  # pragma: no cover - the leaves are built to fit the grammar
        raise OvidError(f"{where}: the converted query is not valid: {text}")
    return OvidConversion(query=root, dropped=tuple(notes), lines=len(lines))


def _resolve(lines: list[str], last: int, notes: list[str]) -> Optional[Node]:
    """The query of line ``last`` (1-based), its references resolved recursively."""
    cache: dict[int, Optional[Node]] = {}
    active: set[int] = set()

    def line_node(n: int) -> Optional[Node]:
        if n in cache:
            return cache[n]
        active.add(n)
        line = lines[n - 1]
        limit = _LIMIT_RE.match(line)
        rng = _RANGE_LINE_RE.match(line)
        dedup = _DEDUP_RE.match(line)
        if limit:
            notes.append(f"line {n}: limit dropped: {line}")
            target = int(limit.group(1))
            if target >= n and n > 1:  # numbering off in the source: limit the line before
                notes.append(f"line {n}: limit refers to line {target}, read as line {n - 1}")
                target = n - 1
            node = resolve_from(n)(target)
        elif dedup:  # ``remove duplicates from 50``: the same records
            node = resolve_from(n)(int(dedup.group(1)))
        elif rng:
            text = f"{rng.group(1)}/{rng.group(2)}-{rng.group(3)}"
            node = _LineParser(text, _tokenize(text), resolve_from(n), line_notes(n), n).parse()
        else:
            node = _LineParser(line, _tokenize(line), resolve_from(n), line_notes(n), n).parse()
        active.discard(n)
        cache[n] = node
        return node

    def line_notes(n: int) -> "_Notes":
        return _Notes(notes, f"line {n}: ")

    def resolve_from(current: int) -> Callable[[int], Optional[Node]]:
        def resolve(k: int) -> Optional[Node]:
            if not 1 <= k <= len(lines) or k >= current or k in active:
                notes.append(f"line {current}: reference to missing line {k} dropped")
                return None
            return line_node(k)

        return resolve

    return line_node(last)


class _Notes(list):
    """A notes sink that prefixes each note with its line."""

    def __init__(self, target: list[str], prefix: str):
        super().__init__()
        self._target, self._prefix = target, prefix

    def append(self, note: str) -> None:  # type: ignore[override]
        self._target.append(self._prefix + note)


def _single_query(lines: list[str], notes: list[str]) -> Optional[Node]:
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
                if len(lines) > 1:
                    notes.append(f"line {i + 1}: joined to the line before with OR")
        joined.append(line)
    text = " ".join(joined)
    return _LineParser(text, _tokenize(text), lambda k: None, notes).parse()


def from_ovid(strategy: str) -> Node:
    """The query of :func:`convert_ovid` (notes discarded)."""
    return convert_ovid(strategy).query


# ---------------------------------------------------------------------------- reporting


#: (kind, pattern) in the order tried: the kind of a note, for counting and filtering.
_NOTE_KINDS = (
    ("date limit dropped", r"date limit dropped"),
    ("limit line dropped", r"limit dropped"),
    ("limit on the wrong line", r"limit refers to line"),
    ("proximity read as AND", r"proximity"),
    ("subheading dropped", r"subheading"),
    ("MeSH focus dropped", r"MeSH focus"),
    ("field suffix approximated", r"field suffix"),
    ("bracket note dropped", r"bracket note"),
    ("reference to a missing line", r"references? to missing line"),
    ("term quoted", r"quoted a term"),
    ("lines joined with OR", r"joined to the line before"),
    ("lines ignored", r"ignored \(no line reference"),
    ("malformed syntax repaired", r"missing operator|unbalanced|unclosed|without a (?:left operand|term)|stray"),
    ("exp ignored", r"exp without"),
    ("range not understood", r"range .* not understood"),
)
#: Note kinds that only narrow the result set by date, language or study population.
LIMIT_KINDS = frozenset({"date limit dropped", "limit line dropped"})


def note_kind(note: str) -> str:
    """The kind of a :attr:`OvidConversion.dropped` note, e.g. ``"proximity read as AND"``."""
    for kind, pattern in _NOTE_KINDS:
        if re.search(pattern, note):
            return kind
    return "other"


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
        kinds.update({note_kind(n) for n in conv.dropped})
    return {
        "total": total, "converted": converted, "clean": clean, "only_limits": only_limits,
        "kinds": kinds.most_common(), "failures": failures,
    }


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m blockgen.ovid topics.jsonl``: the same as ``blockgen ovid --topics topics.jsonl``."""
    from types import SimpleNamespace

    from blockgen.cli_ovid import run

    args = sys.argv[1:] if argv is None else argv
    return run(SimpleNamespace(topics=args[0] if args else "../shared/data/clef_tar/topics.jsonl"))


if __name__ == "__main__":
    raise SystemExit(main())
