"""PubMed: read and write PubMed's search syntax (``grammar/pubmed.lark``).

**Reading** (as PubMed reads it, and where PubMed's rules leave a choice, as decided here):

* AND, OR and NOT are one level, evaluated **left to right**: ``a AND b OR c`` is
  ``(a AND b) OR c``; parentheses group.
* Terms with no operator between them are ANDed (noted); bare words side by side are one
  term of several words (``heart attack[tiab]``), which means the same.
* **Lower- and mixed-case** ``and``/``or``/``not``: NLM says lower case is a search word, yet
  strategies pasted from word processors carry the Cochrane animal filter as
  ``not (animals[mh] not humans[mh])`` and mean the operator. Decision: such a word is read as
  the **operator**, except between two bare words of a run that ends in a tag
  (``sensitivity and specificity[mh]``, ``wit and humor [mh]``), where it is a word of the
  term, as PubMed reads it. Every such decision is a note (kind ``"lower-case operator"``).
* Typographic quotes (“ ” „) are quotes, in any pairing with straight ones; curly apostrophes
  in words become ``'`` (notes). A blank may stand before a tag (``malaria [mh]``).
* Tags in any spelling PubMed knows become one canonical spelling
  (:mod:`blockgen.dialects.tags`): ``[Title/Abstract]`` -> ``tiab``, ``[MeSH Terms]`` ->
  ``Mesh``, ``[mh:noexp]`` -> ``Mesh:NoExp``, ``[Majr]`` -> ``majr``, ``[tiab:~3]`` -> a
  proximity tag ``tiab:~3``; an unknown tag is kept as written (noted).
* A search history, one search a line (``#1 ...``, ``#3 #1 OR #2``): ``#n`` refers to the
  n-th non-empty line; a line's own label (``#2`` or ``2.`` in front of line 2) is dropped;
  the last line is the query.
* Date ranges ``2010:2020[dp]`` and ``"2010/01/01"[dp] : "2020/12/31"[dp]`` become two
  comparisons ``dp>=2010 AND dp<=2020``.

Anything else that does not parse (an unclosed quote or parenthesis, an operator with nothing
after it) is a :class:`~blockgen.dialects.base.DialectSyntaxError` naming line and column.

**Writing**: one line; every compound operand is parenthesised except a NOT's left operand
(left to right needs none there); tags in their short spelling; truncation only at the end of
a word (``behavio?r`` becomes ``behavio*``, noted); proximity only in ``[ti]``/``[tiab]``/
``[ad]`` and without truncation (else the words are ANDed, noted); CORE field filters and
other comparisons have no PubMed form (dropped, noted).
"""

from __future__ import annotations

import re
from typing import Optional

from lark import Token

from blockgen.dialects import _lark
from blockgen.dialects._walk import BOTH_SIDES, fold_nodes, not_with_dropped_side
from blockgen.dialects.base import Dialect, DialectError, Note, Reading, Writing
from blockgen.dialects.tags import CANONICAL, DATE_TAGS, canonical, parse_tag
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term, make_and, make_or

__all__ = ["PubMed"]

NAME = "pubmed"
_NAMES = {
    "OP": "AND, OR, NOT", "REF": "a search reference #n", "PHRASE": 'a "quoted phrase"', "TAG": "a [field tag]",
    "WORD": "a word", "COLON": '":"', "LPAR": '"("', "RPAR": '")"', "$END": "the end of the query",
}
_HINTS = {'"': "a quote that is never closed?", "\u201c": "a quote that is never closed?", "\u201d": "a quote that is never closed?", "[": "a tag that is never closed?", "]": "a ']' without '['"}
_QUOTES = '"\u201c\u201d\u201e\u201f'
_APOSTROPHES = {"\u2019": "'", "\u2018": "'"}
_OPERAND_END = {"RPAR", "PHRASE", "TAG", "REF", "WORD"}
_OPERAND_START = {"LPAR", "PHRASE", "REF", "WORD"}
#: Fields where PubMed supports proximity.
PROXIMITY_FIELDS = ("ti", "tiab", "ad")
_LABEL = re.compile(r"^(?:#?(\d+)[.):]?)$")
#: Comparison names written as PubMed's publication date.
_YEAR_NAMES = {"yearpublished", "year", "publicationyear", "py"}


def _note(notes: list[Note], kind: str, tok: Token, detail: str) -> None:
    notes.append(Note(kind, tok.line, f"{detail} (column {tok.column})"))


def _squeeze(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------ reading


def _decide_lower_operators(tokens: list[Token], notes: list[Note]) -> list[Token]:
    """Lower/mixed-case and/or/not: operator, or a word inside a tagged run (module docstring)."""
    out = list(tokens)
    # tag_ahead[i]: the run of bare words and lower-case operators from i ends in a tag
    tag_ahead = [False] * (len(out) + 1)
    for i in range(len(out) - 1, -1, -1):
        tok = out[i]
        if tok.type == "TAG":
            tag_ahead[i] = True
        elif tok.type == "WORD" or (tok.type == "OP" and not tok.value.isupper()):
            tag_ahead[i] = tag_ahead[i + 1]
    for i, tok in enumerate(out):
        if tok.type != "OP" or tok.value.isupper():
            continue
        prev = out[i - 1].type if i > 0 else None
        nxt = out[i + 1].type if i + 1 < len(out) else None
        tagged_run = prev == "WORD" and nxt == "WORD" and tag_ahead[i + 1]
        if tagged_run:
            out[i] = Token.new_borrow_pos("WORD", tok.value, tok)
            _note(notes, "lower-case operator", tok, f"lower-case {tok.value!r} kept as a word of a tagged term, as PubMed reads it")
        else:
            out[i] = Token.new_borrow_pos("OP", tok.value.upper(), tok)
            _note(notes, "lower-case operator", tok, f"lower-case {tok.value!r} read as the operator {tok.value.upper()} (PubMed itself reads lower case as a search word)")
    return out


def _implicit_and(tokens: list[Token], notes: list[Note]) -> list[Token]:
    """Insert AND between two operands with no operator between them (not between bare words)."""
    out: list[Token] = []
    for tok in tokens:
        if out and out[-1].type in _OPERAND_END and tok.type in _OPERAND_START and not (out[-1].type == "WORD" and tok.type == "WORD"):
            _note(notes, "implicit AND", tok, f"no operator before {tok.value!r}: read as AND, as PubMed does")
            out.append(Token.new_borrow_pos("OP", "AND", tok))
        out.append(tok)
    return out


#: Quotes the PubMed reader reads like a straight one (so no phrase may hold them).
_TYPOGRAPHIC_QUOTES = frozenset("\u201c\u201d\u201e\u201f")


class _Builder:
    """Fold rules from the PubMed parse tree to query nodes."""

    def __init__(self, text: str, notes: list[Note], searches: dict[int, Node]):
        self.text, self.notes, self.searches = text, notes, searches

    def _tag(self, tok: Optional[Token]) -> Optional[str]:
        if tok is None:
            return None
        raw = _squeeze(tok.value[1:-1])
        tag = canonical(raw)
        field = parse_tag(raw).field
        if field is not None and field not in CANONICAL.values():
            _note(self.notes, "unknown tag", tok, f"tag [{raw}] is not a PubMed tag blockgen knows: kept as written")
        return tag

    def _words(self, tokens: list[Token]) -> str:
        out = []
        for tok in tokens:
            word = tok.value
            if any(a in word for a in _APOSTROPHES):
                for a, b in _APOSTROPHES.items():
                    word = word.replace(a, b)
                _note(self.notes, "typographic quote", tok, f"curly apostrophe in {tok.value!r} read as '")
            out.append(word)
        return " ".join(out)

    def _phrase(self, tok: Token) -> str:
        if tok.value[0] != '"' or tok.value[-1] != '"':
            _note(self.notes, "typographic quote", tok, f"typographic quotes of {tok.value!r} read as quotes")
        inner = _squeeze(tok.value[1:-1])
        for a, b in _APOSTROPHES.items():
            inner = inner.replace(a, b)
        if not inner:
            raise _lark.syntax_error(NAME, self.text, tok.start_pos, (), "an empty phrase", _NAMES)
        return inner

    def term(self, tree, kids: list) -> Node:
        tag_tok = kids[-1] if kids[-1].type == "TAG" else None
        body = kids[:-1] if tag_tok is not None else kids
        tag = self._tag(tag_tok)
        if body[0].type == "PHRASE":
            return Phrase(self._phrase(body[0]), tag)
        text = self._words(body)
        if tag in DATE_TAGS and len(body) == 1 and text.count(":") == 1:  # 2010:2020[dp]
            low, high = text.split(":")
            if low and high:
                return make_and([Comparison(tag, ">=", low), Comparison(tag, "<=", high)])
        return Term(text, tag)

    def range(self, tree, kids: list) -> Node:
        low, colon, high = kids
        if not (isinstance(low, (Term, Phrase)) and isinstance(high, (Term, Phrase))):
            raise _lark.syntax_error(NAME, self.text, colon.start_pos, (), "a range is two dates with a date tag: 2010[dp] : 2020[dp]", _NAMES)
        tag = high.tag or low.tag
        if tag not in DATE_TAGS:
            raise _lark.syntax_error(NAME, self.text, colon.start_pos, (), "a range needs a date tag such as [dp]", _NAMES)
        return make_and([Comparison(tag, ">=", low.text), Comparison(tag, "<=", high.text)])

    def ref(self, tree, kids: list) -> Node:
        tok = kids[0]
        number = int(tok.value[1:])
        if number not in self.searches:
            raise _lark.syntax_error(NAME, self.text, tok.start_pos, (), f"#{number} is no earlier search of this history", _NAMES)
        return self.searches[number]

    def group(self, tree, kids: list) -> Node:
        return kids[0]

    def expr(self, tree, kids: list) -> Node:
        return fold_left(kids[0], [(op.value, right) for op, right in zip(kids[1::2], kids[2::2])])

    def start(self, tree, kids: list) -> Node:
        return kids[0]

    def rules(self) -> dict:
        return {name: getattr(self, name) for name in ("term", "range", "ref", "group", "expr", "start")}


def fold_left(first: Node, pairs: "list[tuple[str, Node]]") -> Node:
    """Operands joined by AND/OR/NOT of one level, read left to right, in linear time: a run of
    one operator becomes one flat AND/OR (``a OR b OR c AND d`` is ``(a OR b OR c) AND d``)."""

    def build(op: Optional[str], run: list) -> Node:
        return run[0] if op is None else make_and(run) if op == "AND" else make_or(run)

    run_op: Optional[str] = None
    run: list = [first]
    for op, right in pairs:
        if op == "NOT":
            run, run_op = [Not(build(run_op, run), right)], None
        elif op == run_op:
            run.append(right)
        else:
            run, run_op = [build(run_op, run), right], op
    return build(run_op, run)


def _history(tokens: list[Token], text: str) -> Optional[list[tuple[int, list[Token]]]]:
    """The searches of a history (one a line) when the text refers to ``#n``; else None."""
    if not any(t.type == "REF" for t in tokens):
        return None
    lines: dict[int, list[Token]] = {}
    for tok in tokens:
        lines.setdefault(tok.line, []).append(tok)
    if len(lines) < 2:
        first = next(t for t in tokens if t.type == "REF")
        raise _lark.syntax_error(NAME, text, first.start_pos, (), f"{first.value} refers to a search history, but the text is one line", _NAMES)
    searches = []
    for number, (_, toks) in enumerate(sorted(lines.items()), 1):
        first = toks[0]
        label = _LABEL.match(first.value)
        if len(toks) > 1 and label and int(label.group(1)) == number and toks[1].type != "OP":
            toks = toks[1:]  # the line's own number
        searches.append((number, toks))
    return searches


class PubMed(Dialect):
    """PubMed's search syntax: left-to-right operators, implicit AND, tags (see the module docstring)."""

    name = NAME
    description = "PubMed: AND/OR/NOT left to right, implicit AND, [tags], search history #n"

    def read(self, text: str) -> Reading:
        if not isinstance(text, str):
            raise TypeError(f"a query must be a str, not {type(text).__name__}")
        notes: list[Note] = []
        tokens = _lark.lex(NAME, text, _NAMES, _HINTS)
        if not tokens:
            raise _lark.syntax_error(NAME, text, len(text), ("WORD", "PHRASE", "LPAR"), "the query is empty", _NAMES)
        searches: dict[int, Node] = {}
        builder = _Builder(text, notes, searches)
        history = _history(tokens, text)
        if history is None:
            history = [(1, tokens)]
        query: Optional[Node] = None
        for number, toks in history:
            toks = _implicit_and(_decide_lower_operators(toks, notes), notes)
            tree = _lark.parse_tokens(NAME, text, toks, _NAMES)
            query = _lark.fold(tree, builder.rules())  # type: ignore[assignment]
            searches[number] = query  # type: ignore[assignment]
        assert query is not None
        return Reading(query, tuple(notes))

    def write(self, query: Node) -> Writing:
        return _Writer().write(query)


# ------------------------------------------------------------------------------ writing

class _Range(Comparison):
    """Internal, while writing: the range ``low:high[tag]`` of two comparisons."""


_WORD_RX = re.compile(r"[^\s()\[\]\"\u201c\u201d\u201e\u201f:][^\s()\[\]\"\u201c\u201d\u201e\u201f]*")


class _Writer:
    def __init__(self) -> None:
        self.notes: list[Note] = []

    def note(self, kind: str, detail: str) -> None:
        self.notes.append(Note(kind, None, detail))

    def _truncate(self, word: str) -> str:
        """PubMed truncates only at the end of a word and has no ``?``."""
        cut = min((i for i in (word.find("*"), word.find("?")) if i >= 0), default=-1)
        if cut < 0 or (cut == len(word) - 1 and word[cut] == "*"):
            return word
        written = word[:cut] + "*"
        self.note("wildcard approximated", f"{word!r} written as {written!r}: PubMed truncates only at the end of a word")
        return written

    @staticmethod
    def _safe(word: str, kept_operator: bool = False) -> bool:
        """Whether PubMed reads ``word`` back as this one bare word (``kept_operator``: a
        lower-case and/or/not inside a tagged run, which the reader keeps as a word)."""
        if not _WORD_RX.fullmatch(word) or re.fullmatch(r"#\d+", word):
            return False
        return word.upper() not in ("AND", "OR", "NOT") or (kept_operator and not word.isupper())

    def _words(self, text: str, tag: Optional[str]) -> str:
        """Bare words (quoted one by one where PubMed would read them otherwise)."""
        words = [self._truncate(w) for w in text.split()]
        parts = [
            w if self._safe(w, tag is not None and 0 < i < len(words) - 1) else '"' + " ".join(w.replace('"', " ").split()) + '"'
            for i, w in enumerate(words)
        ]
        suffix = f"[{tag}]" if tag else ""
        if all(p == w for p, w in zip(parts, words)):
            return " ".join(parts) + suffix
        return " ".join(p + suffix for p in parts)  # each quoted word is its own (ANDed) operand

    def _phrase(self, text: str, tag: Optional[str]) -> str:
        words = [self._truncate(w) if i == len(text.split()) - 1 else self._truncate_inner(w) for i, w in enumerate(text.split())]
        body = " ".join(words).replace('"', " ")
        return f'"{" ".join(body.split())}"' + (f"[{tag}]" if tag else "")

    def _truncate_inner(self, word: str) -> str:
        if "*" not in word and "?" not in word:
            return word
        return self._truncate(word)

    def leaf(self, node: Node) -> Optional[str]:
        if isinstance(node, (Term, Phrase)) and any(q in node.text for q in _TYPOGRAPHIC_QUOTES):
            # PubMed reads typographic quotes as quotes: inside a phrase they cannot be written
            kept = "".join(c for c in node.text if c not in _TYPOGRAPHIC_QUOTES).strip()
            self.note("characters dropped", f"{node.text!r}: typographic quotes cannot stand inside a PubMed phrase: dropped")
            if not kept:
                self.note("term dropped", f"{node.text!r} holds nothing else: dropped")
                return None
            node = type(node)(" ".join(kept.split()), node.tag)
        if isinstance(node, (Term, Phrase)):
            tag = parse_tag(node.tag)
            short = canonical(node.tag)
            if tag.proximity is not None:
                words = node.text.split()
                wild = any(c in node.text for c in "*?")
                if tag.field in PROXIMITY_FIELDS and len(words) >= 2 and not wild:
                    return f'"{" ".join(words)}"[{short}]'
                base = tag.field if tag.field not in (None, "all") else None
                why = "truncation" if wild else f"[{tag.field}]" if len(words) >= 2 else "a single word"
                self.note("proximity approximated", f"{node.text!r} within {tag.proximity} words: PubMed has no proximity with {why}; written as AND of the words")
                return "(" + " AND ".join(self._words(w, base) for w in words) + ")" if len(words) > 1 else self._words(node.text, base)
            if tag.heading:
                words = node.text.split()
                bare = all(self._safe(w, 0 < i < len(words) - 1) for i, w in enumerate(words))
                return f"{node.text}[{short}]" if isinstance(node, Term) and bare else f'"{node.text}"[{short}]'
            if isinstance(node, Phrase):
                return self._phrase(node.text, short)
            return self._words(node.text, short)
        if isinstance(node, _Range):
            name = node.name if node.name in DATE_TAGS else "dp"
            if name != node.name:
                self.note("tag approximated", f"{node.name} written as PubMed's publication date [{name}]")
            return f"{node.value}[{name}]"
        if isinstance(node, Comparison):
            name = node.name if node.name in DATE_TAGS else "dp" if node.name.lower() in _YEAR_NAMES else None
            if name is None:
                self.note("term dropped", f"comparison {node.name}{node.op}{node.value} has no PubMed form: dropped")
                return None
            if name != node.name:
                self.note("tag approximated", f"{node.name} written as PubMed's publication date [{name}]")
            if node.op == "=":
                return f"{node.value}[{name}]"
            if node.op in (">=", ">"):
                if node.op == ">":
                    self.note("term dropped", f"{node.name}>{node.value} written as from {node.value} (PubMed ranges are inclusive)")
                return f"{node.value}:3000[{name}]"
            if node.op == "<":
                self.note("term dropped", f"{node.name}<{node.value} written as up to {node.value} (PubMed ranges are inclusive)")
            return f"1000:{node.value}[{name}]"
        if isinstance(node, Field):
            self.note("term dropped", f"field filter {node.name}:{node.value} has no PubMed form: dropped")
            return None
        raise TypeError(f"not a query node: {node!r}")

    def write(self, query: Node) -> Writing:
        if not isinstance(query, Node):
            raise TypeError(f"format() needs a parsed query, not {type(query).__name__}")

        def inner(node: Node, kids: list) -> Optional[tuple[str, Node]]:
            parts = [(text, child) for (text, child) in (k for k in kids if k is not None)]
            if isinstance(node, Not):
                kept = not_with_dropped_side(kids, self.note)
                if kept is not BOTH_SIDES:
                    return kept
                (left, lnode), (right, rnode) = kids
                left = left if not _compound(lnode) or isinstance(lnode, (And, Not)) else f"({left})"
                right = f"({right})" if _compound(rnode) else right
                return f"{left} NOT {right}", node
            if not parts:
                return None
            if len(parts) == 1:
                return parts[0]
            op = " OR " if isinstance(node, Or) else " AND "
            texts = [f"({t})" if _compound(c) else t for t, c in parts]
            return op.join(texts), node

        def leaf(node: Node) -> Optional[tuple[str, Node]]:
            text = self.leaf(node)
            return None if text is None else (text, node)

        result = fold_nodes(_merge_ranges(query), leaf, inner)
        if result is None:
            raise DialectError("nothing is left to write in PubMed syntax: " + "; ".join(n.detail for n in self.notes))
        return Writing(result[0], tuple(self.notes))


def _compound(node: Node) -> bool:
    return isinstance(node, (And, Or, Not))


def _merge_ranges(query: Node) -> Node:
    """``dp>=a AND dp<=b`` pairs inside an AND become one range leaf (written ``a:b[dp]``)."""

    def inner(node: Node, kids: list[Node]) -> Node:
        if isinstance(node, Not):
            return node if kids[0] is node.positive and kids[1] is node.negative else Not(kids[0], kids[1])
        if isinstance(node, And):
            out: list[Node] = []
            for kid in kids:
                prev = out[-1] if out else None
                if (
                    isinstance(kid, Comparison) and isinstance(prev, Comparison) and not isinstance(prev, _Range)
                    and prev.name == kid.name and prev.op == ">=" and kid.op == "<="
                    and (kid.name in DATE_TAGS or kid.name.lower() in _YEAR_NAMES)
                ):
                    out[-1] = _Range(kid.name, ":", f"{prev.value}:{kid.value}")
                else:
                    out.append(kid)
            if len(out) == 1:
                return out[0]
            return node if len(out) == len(node.items) and all(a is b for a, b in zip(out, node.items)) else And(tuple(out))
        if all(a is b for a, b in zip(kids, node.items)):
            return node
        return Or(tuple(kids))

    return fold_nodes(query, lambda leaf: leaf, inner)
