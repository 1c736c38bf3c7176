"""Lucene / Elasticsearch ``query_string``: read and write it (``grammar/lucene.lark``).

This is the syntax of the CORE search behind Sim4IA; tantivy's query parser reads the same
(``tests/test_dialects_lucene.py`` checks the writer against a real tantivy index).

**Reading**:

* AND binds tighter than OR (``a OR b AND c`` is ``a OR (b AND c)``); parentheses group.
* ``NOT x``, ``-x`` and ``!x`` exclude ``x``; an excluded operand is joined to the operands
  beside it by AND: ``a NOT b``, ``a -b`` and ``a AND NOT b`` all mean ``a NOT b``;
  ``a AND -b AND -c`` is ``a NOT (b OR c)``. An exclusion with nothing to exclude from
  (``-b`` alone, ``a OR -b``) is an error: Lucene engines disagree on what it means. After an
  OR list without parentheses (``a OR c NOT b``) the exclusion is read for the operand before
  it only, ``a OR (c NOT b)``, and noted, because Lucene's classic parser and tantivy apply it
  to the whole list.
* Operands with no operator between them are joined by the engine's default operator, OR
  unless the dialect is built with ``default_operator="AND"`` (noted); ``+x`` is read as
  ``AND x`` (noted).
* Operators are upper case (``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``); lower-case
  ``and``/``or``/``not`` are words, as Lucene reads them (noted).
* ``title:x`` and ``abstract:x`` become the tags ``ti`` / ``ab``, ``keywords:x`` ``ot``
  (the field map is a constructor argument); ``(title:x OR abstract:x)`` is ``x[tiab]``; any
  other field is a field filter ``name:value`` (``fieldsOfStudy:"biology"``);
  ``field:(a OR b)`` gives the field to every term inside. ``yearPublished>=2019``,
  ``year:>=2019`` and ``year:[2019 TO 2024]`` are comparisons.
* ``"a b"~3`` is proximity (noted: Lucene's slop also counts word order, so "any order
  within 3 words" is broader), except a pair ``"a b"~3 OR "b a"~3``, which is exactly "any
  order within 3 words" (how the writer writes it). Boosts ``^2`` are dropped (they only
  rank), fuzziness ``word~1`` too (noted). Lucene's ``?`` is exactly one character where
  blockgen's is one or none (noted). Typographic quotes are read as quotes (noted: Lucene
  itself does not).

**Writing**: every compound operand in parentheses (Lucene's precedence is not to be relied
on); exclusion as ``P AND -(N)``; tags as fields (``tiab`` -> ``(title:x OR abstract:x)``);
several words of one term ANDed; blockgen's ``?`` (one character or none) as
``(behavior OR behavio?r)``; proximity of two words as ``("a b"~N OR "b a"~N)``. Lucene cannot
express MeSH headings, proximity of three or more words or of truncated words, or truncation
inside a phrase: these are approximated by a broader query, noted.
"""

from __future__ import annotations

import itertools
import re
from typing import Optional

from lark import Token

from blockgen.dialects import _lark
from blockgen.dialects._walk import fold_nodes, map_leaves
from blockgen.dialects.base import Dialect, DialectError, Note, Reading, Writing
from blockgen.dialects.tags import Tag, canonical, parse_tag, tag_text
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term, make_and, make_or

__all__ = ["Lucene", "FIELDS"]

NAME = "lucene"
_NAMES = {
    "OR": "OR", "AND": "AND", "NOT": "NOT", "MINUS": '"-"', "PLUS": '"+"', "FIELD": "a field:", "COMPARE": "a comparison",
    "CMPVALUE": "a comparison", "RANGE": "a [range]", "PHRASE": 'a "quoted phrase"', "TILDE": "~N", "BOOST": "^N",
    "WORD": "a term", "LPAR": '"("', "RPAR": '")"', "$END": "the end of the query",
}
_HINTS = {'"': "a quote that is never closed?", "\u201c": "a quote that is never closed?", "\\": "a '\\' at the end escapes nothing"}

#: blockgen tag -> Lucene field, for the tags that are one field.
FIELDS = {"ti": "title", "ab": "abstract", "ot": "keywords"}
#: blockgen tags that are several Lucene fields.
_MULTI = {"tiab": ("ti", "ab"), "tw": ("ti", "ab", "ot")}
_OPERAND_END = {"RPAR", "PHRASE", "WORD", "TILDE", "BOOST", "RANGE", "CMPVALUE", "COMPARE"}
_OPERAND_START = {"LPAR", "PHRASE", "WORD", "FIELD", "COMPARE", "NOT", "MINUS", "PLUS"}
_SPECIAL = set('+-=&|><!(){}[]^"~:\\/')
_MAX_WILDCARD_VARIANTS = 3


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _escape(word: str) -> str:
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in word)


def _compared(name: str, op: str, raw: str) -> Comparison:
    """A comparison from its parts as written; a quoted value (``>="2019"``) stays quoted."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return Comparison(name, op, _unescape(raw[1:-1]), quoted=True)
    return Comparison(name, op, _unescape(raw))


def _escape_field(name: str) -> str:
    """A field name as the FIELD terminal of grammar/lucene.lark reads it back: word characters
    (and dots after the first), every other character escaped."""
    return "".join(
        ch if re.fullmatch(r"\w", ch) or (ch == "." and i) else "\\" + ch for i, ch in enumerate(name)
    )


class Lucene(Dialect):
    """Lucene/Elasticsearch ``query_string`` (see the module docstring).

    ``default_operator``: how operands side by side are joined (``"OR"``, Lucene's default,
    or ``"AND"``); ``fields``: blockgen tag -> field name (default :data:`FIELDS`).
    """

    name = NAME
    description = "Lucene/Elasticsearch query_string: AND binds tighter than OR, field:term, -exclusion"

    def __init__(self, default_operator: str = "OR", fields: Optional[dict[str, str]] = None):
        if default_operator not in ("OR", "AND"):
            raise ValueError(f"default_operator must be 'OR' or 'AND', not {default_operator!r}")
        self.default_operator = default_operator
        self.fields = dict(FIELDS if fields is None else fields)
        self.tags = {v.lower(): k for k, v in self.fields.items()}

    # ------------------------------------------------------------------ reading

    def read(self, text: str) -> Reading:
        if not isinstance(text, str):
            raise TypeError(f"a query must be a str, not {type(text).__name__}")
        return _Reader(self, text).read()

    # ------------------------------------------------------------------ writing

    def write(self, query: Node) -> Writing:
        if not isinstance(query, Node):
            raise TypeError(f"format() needs a parsed query, not {type(query).__name__}")
        return _Writer(self).write(query)


class _Reader:
    def __init__(self, dialect: Lucene, text: str):
        self.dialect, self.text = dialect, text
        self.notes: list[Note] = []
        # Notes that hold only while their leaf stays in the tree, and the sloppy phrases, by
        # id(leaf); the leaf is stored with them so that its id is not reused.
        self.pending: dict[int, tuple[Node, list[Note]]] = {}
        self.sloppy: dict[int, Node] = {}

    def note(self, kind: str, tok: Token, detail: str, leaf: Optional[Node] = None) -> None:
        note = Note(kind, tok.line, f"{detail} (column {tok.column})")
        if leaf is None:
            self.notes.append(note)
        else:
            self.pending.setdefault(id(leaf), (leaf, []))[1].append(note)

    def error(self, tok: Token, hint: str):
        return _lark.syntax_error(NAME, self.text, tok.start_pos, (), hint, _NAMES)

    # -- token pass

    def _tokens(self) -> list[Token]:
        tokens = _lark.lex(NAME, self.text, _NAMES, _HINTS)
        if not tokens:
            raise _lark.syntax_error(NAME, self.text, len(self.text), ("WORD", "PHRASE", "LPAR"), "the query is empty", _NAMES)
        out: list[Token] = []
        last_op: list[Optional[str]] = [None]  # the last explicit operator at each depth
        required = False  # the operand before was marked '+'
        for tok in tokens:
            if tok.type == "WORD" and tok.value.upper() in ("AND", "OR", "NOT"):
                self.note("lower-case operator", tok, f"{tok.value!r} is a word in Lucene (operators are upper case)")
            if out and out[-1].type in _OPERAND_END and tok.type in _OPERAND_START:
                if tok.type in ("NOT", "MINUS"):
                    op = "AND"
                    if last_op[-1] == "OR":
                        self.note(
                            "ambiguous exclusion", tok,
                            f"{tok.value!r} after an OR list without parentheses: read for the operand before it only "
                            "(Lucene's classic parser and tantivy exclude it from the whole list)",
                        )
                elif tok.type == "PLUS" or required:
                    op = "AND"
                else:
                    op = self.dialect.default_operator
                    self.note("implicit operator", tok, f"no operator before {tok.value!r}: read as {op}, the default operator")
                out.append(Token.new_borrow_pos(op, op, tok))
                required = False
            if tok.type in ("AND", "OR"):
                last_op[-1] = tok.type
                required = False
            elif tok.type == "LPAR":
                last_op.append(None)
            elif tok.type == "RPAR" and len(last_op) > 1:
                last_op.pop()
            elif tok.type == "PLUS":
                required = True
                self.note("implicit operator", tok, "'+' (required) read as joined by AND")
            out.append(tok)
        return out

    # -- fold rules

    def _word(self, tok: Token) -> str:
        word = _unescape(tok.value)
        return word

    def leaf(self, tree, kids: list) -> Node:
        first = kids[0]
        tilde = next((k for k in kids[1:] if k.type == "TILDE"), None)
        boost = next((k for k in kids[1:] if k.type == "BOOST"), None)
        if boost is not None:
            self.note("boost dropped", boost, f"boost {boost.value} dropped (it only ranks)")
        if first.type == "PHRASE":
            if first.value[0] != '"' or first.value[-1] != '"':
                self.note("typographic quote", first, f"typographic quotes of {first.value!r} read as quotes (Lucene itself does not)")
            inner = " ".join(_unescape(first.value[1:-1]).split())
            if not inner:
                raise self.error(first, "an empty phrase")
            if tilde is not None and len(inner.split()) > 1:
                slop = int(float(tilde.value[1:] or "2"))
                node = Phrase(inner, tag_text(Tag(None, slop)))
                self.sloppy[id(node)] = node
                self.note(
                    "proximity approximated", tilde,
                    f'"{inner}"{tilde.value}: Lucene\'s slop also counts word order; read as any order within {slop} words (broader)',
                    leaf=node,
                )
                return node
            if tilde is not None:
                self.note("fuzziness dropped", tilde, f"{tilde.value} after a one-word phrase dropped")
            node = Phrase(inner)
        else:
            word = self._word(first)
            if tilde is not None:
                self.note("fuzziness dropped", tilde, f"fuzzy match {first.value}{tilde.value} read as the word itself (narrower)")
            node = Term(word)
        if "?" in node.text:
            self.note("wildcard approximated", first, f"Lucene's ? is exactly one character, blockgen's one or none: {node.text!r} is read broader", leaf=node)
        return node

    def _field_tag(self, name: str) -> Optional[str]:
        low = name.lower()
        if low in self.dialect.tags:
            return self.dialect.tags[low]
        tag = parse_tag(name).field
        return tag if tag in FIELDS or tag in _MULTI else None

    def fielded(self, tree, kids: list) -> Node:
        field_tok, value = kids
        name = _unescape(field_tok.value[:-1])
        if isinstance(value, Token):  # a range or a comparison value
            return self._comparison(name, value)
        tag = self._field_tag(name)

        def retag(leaf: Node) -> Node:
            if isinstance(leaf, (Term, Phrase)) and tag is not None:
                old = parse_tag(leaf.tag)
                if old.field not in (None, "all"):
                    return leaf
                new = type(leaf)(leaf.text, tag_text(Tag(tag, old.proximity)))
            elif isinstance(leaf, (Term, Phrase)):
                new = Field(name, leaf.text, quoted=isinstance(leaf, Phrase))
                if parse_tag(leaf.tag).proximity is not None:
                    self.note("proximity approximated", field_tok, f"proximity in the field filter {name}: read as a phrase")
            else:
                return leaf
            if id(leaf) in self.pending:
                self.pending.setdefault(id(new), (new, []))[1].extend(self.pending[id(leaf)][1])
            if id(leaf) in self.sloppy:
                self.sloppy[id(new)] = new
            return new

        mapped = map_leaves(value, retag)
        assert mapped is not None
        return mapped

    def _comparison(self, name: str, tok: Token) -> Node:
        value = tok.value
        if tok.type == "CMPVALUE":
            m = re.match(r"(>=|<=|>|<)(.*)", value)
            assert m
            return _compared(name, m.group(1), m.group(2))
        inclusive_low, inclusive_high = value[0] == "[", value[-1] == "]"
        parts = value[1:-1].split()
        if len(parts) != 3 or parts[1] != "TO":
            raise self.error(tok, "a range is [low TO high]")
        low, high = parts[0], parts[2]
        out = []
        if low != "*":
            out.append(Comparison(name, ">=" if inclusive_low else ">", low))
        if high != "*":
            out.append(Comparison(name, "<=" if inclusive_high else "<", high))
        if not out:
            raise self.error(tok, "a range [* TO *] limits nothing")
        return make_and(out)

    def compare(self, tree, kids: list) -> Node:
        m = re.match(r"((?:\\.|[^\\<>=])+)(>=|<=|>|<)(.*)", kids[0].value)  # split a COMPARE token
        assert m
        return _compared(_unescape(m.group(1)), m.group(2), m.group(3))

    def group(self, tree, kids: list) -> Node:
        if len(kids) > 1:
            self.note("boost dropped", kids[1], f"boost {kids[1].value} dropped (it only ranks)")
        return kids[0]

    def unary(self, tree, kids: list) -> tuple:
        if len(kids) == 2:
            sign = kids[0]
            return ("+" if sign.type == "PLUS" else "-"), kids[1], sign
        return "", kids[0], tree  # its first token is found only for an error message

    def and_expr(self, tree, kids: list) -> Node:
        items = [k for k in kids if isinstance(k, tuple)]
        positive = [node for sign, node, _ in items if sign != "-"]
        negative = [node for sign, node, _ in items if sign == "-"]
        if not positive:
            where = items[0][2]
            tok = where if isinstance(where, Token) else _first_token(where)
            raise self.error(tok, "an exclusion needs something to exclude from: write a AND -b, not -b alone or a OR -b")
        node = make_and(positive)
        return Not(node, make_or(negative)) if negative else node

    def or_expr(self, tree, kids: list) -> Node:
        items = [k for k in kids if not isinstance(k, Token)]
        return _merge(make_or(items), self.sloppy) if len(items) > 1 else items[0]

    def start(self, tree, kids: list) -> Node:
        return kids[0]

    def read(self) -> Reading:
        tokens = self._tokens()
        tree = _lark.parse_tokens(NAME, self.text, tokens, _NAMES)
        rules = {name: getattr(self, name) for name in ("leaf", "fielded", "compare", "group", "unary", "and_expr", "or_expr", "start")}
        query = _lark.fold(tree, rules)
        assert isinstance(query, Node)
        notes = list(self.notes)
        seen: set[int] = set()
        for leaf in _leaves(query):
            if id(leaf) in self.pending and id(leaf) not in seen:
                seen.add(id(leaf))
                notes.extend(self.pending[id(leaf)][1])
        notes.sort(key=lambda n: (n.line or 0, _column(n)))
        return Reading(query, tuple(notes))


def _column(note: Note) -> int:
    m = re.search(r"\(column (\d+)\)$", note.detail)
    return int(m.group(1)) if m else 0


def _first_token(tree) -> Token:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Token):
            return node
        stack.extend(reversed(node.children))
    raise AssertionError("an operand without a token")  # pragma: no cover


def _leaves(query: Node) -> list[Node]:
    out: list[Node] = []
    fold_nodes(query, lambda leaf: out.append(leaf), lambda node, kids: None)
    return out


def _merge(node: Node, sloppy: dict[int, Node]) -> Node:
    """Undo the writer's expansions inside one OR: ``"a b"~N OR "b a"~N`` is one proximity
    leaf; the same leaf in ``ti`` and ``ab`` is ``tiab`` (and with ``ot``, ``tw``);
    ``behavior OR behavio?r`` is ``behavio?r``."""
    if not isinstance(node, Or):
        return node
    items = list(node.items)
    # 1. sloppy pairs
    for i, a in enumerate(items):
        if a is None or id(a) not in sloppy:
            continue
        words = a.text.split()
        if len(words) != 2:
            continue
        twin = Phrase(f"{words[1]} {words[0]}", a.tag)
        for j in range(i + 1, len(items)):
            if items[j] is not None and id(items[j]) in sloppy and items[j] == twin:
                items[i], items[j] = Phrase(a.text, a.tag), None  # a fresh leaf: no pending note
                break
    items = [x for x in items if x is not None]
    # 2. one leaf in several fields
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(items):
        if isinstance(x, (Term, Phrase)):
            tag = parse_tag(x.tag)
            groups.setdefault((type(x), x.text, tag.proximity), []).append(i)
    drop: set[int] = set()
    for (cls, text, proximity), where in groups.items():
        fields = {parse_tag(items[i].tag).field: i for i in where}
        for multi in ("tw", "tiab"):
            parts = _MULTI[multi]
            if all(p in fields for p in parts) and not drop & {fields[p] for p in parts}:
                keep = fields[parts[0]]
                items[keep] = cls(text, tag_text(Tag(multi, proximity)))
                drop.update(fields[p] for p in parts[1:])
                break
    items = [x for i, x in enumerate(items) if i not in drop]
    # 3. the variants of a word with ?
    terms = {x.text: i for i, x in enumerate(items) if isinstance(x, Term) and x.tag is None}
    drop = set()
    for text, i in terms.items():
        marks = text.count("?")
        if not marks or marks > _MAX_WILDCARD_VARIANTS:
            continue
        variants = {v for v in _variants(text) if v != text}
        if all(v in terms for v in variants):
            items[i] = Term(text)
            drop.update(terms[v] for v in variants)
    items = [x for k, x in enumerate(items) if k not in drop]
    return make_or(items)


def _variants(word: str) -> list[str]:
    """``behavio?r`` -> ``behavior``, ``behavio?r``: each ``?`` dropped or kept."""
    pieces = word.split("?")
    out = []
    for keep in itertools.product((False, True), repeat=len(pieces) - 1):
        out.append(pieces[0] + "".join(("?" if k else "") + p for k, p in zip(keep, pieces[1:])))
    return out


# ------------------------------------------------------------------------------ writing


class _Writer:
    def __init__(self, dialect: Lucene):
        self.dialect = dialect
        self.notes: list[Note] = []

    def note(self, kind: str, detail: str) -> None:
        self.notes.append(Note(kind, None, detail))

    def _fields(self, field: Optional[str], what: str) -> Optional[list[Optional[str]]]:
        """The Lucene fields of a tag (``[None]``: the default fields); None drops the tag."""
        if field is None or field == "all":
            return [None]
        parts = _MULTI.get(field, (field,))
        if all(p in self.dialect.fields for p in parts):
            return [self.dialect.fields[p] for p in parts]
        self.note("tag dropped", f"{what}: Lucene has no field for [{field}]; searched in the default fields")
        return [None]

    @staticmethod
    def _on(field: Optional[str], text: str) -> str:
        return f"{field}:{text}" if field else text

    def _any(self, parts: list[str]) -> str:
        parts = list(dict.fromkeys(parts))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _word(self, word: str, fields: list[Optional[str]]) -> str:
        if "?" in word:
            marks = word.count("?")
            variants = _variants(word) if marks <= _MAX_WILDCARD_VARIANTS else [word.replace("?", "*")]
            if marks > _MAX_WILDCARD_VARIANTS:
                self.note("wildcard approximated", f"{word!r}: more than {_MAX_WILDCARD_VARIANTS} '?' written as '*'")
        else:
            variants = [word]
        if "" in variants:  # `??` may stand for nothing at all: no Lucene term does
            variants = [v for v in variants if v] or [word.replace("?", "*")]
            self.note("wildcard approximated", f"{word!r} may match nothing; written without the empty variant")
        # a variant spelt like an operator (`OR?` -> `OR`) is escaped, or Lucene reads the operator
        return self._any([self._on(f, "\\" + v if v in ("AND", "OR", "NOT") else _escape(v)) for v in variants for f in fields])

    def _phrase(self, words: list[str], fields: list[Optional[str]], slop: Optional[int] = None) -> str:
        body = " ".join(re.sub(r'(["\\\\\u201c\u201d\u201e\u201f])', r"\\\1", w) for w in words)  # quotes the reader knows, escaped
        tail = f"~{slop}" if slop is not None else ""
        return self._any([self._on(f, f'"{body}"{tail}') for f in fields])

    def leaf(self, node: Node) -> str:
        if isinstance(node, (Term, Phrase)):
            tag = parse_tag(node.tag)
            words = node.text.split()
            if tag.heading:
                self.note("tag approximated", f"{node.text!r}[{canonical(node.tag)}]: Lucene has no subject headings; the heading is searched as a phrase")
                return self._phrase(words, [None]) if len(words) > 1 else self._word(words[0], [None])
            fields = self._fields(tag.field, node.text)
            assert fields is not None
            wild = any(c in node.text for c in "*?")
            if tag.proximity is not None and len(words) > 1:
                if len(words) == 2 and not wild:
                    a, b = words
                    return self._any([self._on(f, f'"{x} {y}"~{tag.proximity}') for f in fields for x, y in ((a, b), (b, a))])
                why = "truncated words" if wild else "three or more words"
                self.note("proximity approximated", f"{node.text!r} within {tag.proximity} words: Lucene has no proximity of {why}; written as AND of the words")
                return "(" + " AND ".join(self._word(w, fields) for w in words) + ")"
            if isinstance(node, Phrase):
                if wild and len(words) > 1:
                    self.note("truncation approximated", f'"{node.text}": Lucene has no truncation inside a phrase; written as AND of the words')
                    return "(" + " AND ".join(self._word(w, fields) for w in words) + ")"
                return self._word(words[0], fields) if wild else self._phrase(words, fields)
            if len(words) == 1:
                return self._word(words[0], fields)
            return "(" + " AND ".join(self._word(w, fields) for w in words) + ")"
        if isinstance(node, Field):
            value = f'"{node.value}"' if node.quoted or " " in node.value else _escape(node.value)
            return f"{_escape_field(node.name)}:{value}"
        if isinstance(node, Comparison) and node.op == "=":
            self.note("comparison approximated", f"{node}: Lucene has no = comparison; written as the field filter {node.name}:{node.value}")
            value = f'"{node.value}"' if node.quoted or " " in node.value else _escape(node.value)
            return f"{_escape_field(node.name)}:{value}"
        if isinstance(node, Comparison):
            value = '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"' if node.quoted else _escape(node.value)
            return f"{_escape_field(node.name)}:{node.op}{value}"
        raise TypeError(f"not a query node: {node!r}")

    def write(self, query: Node) -> Writing:
        def inner(node: Node, kids: list[tuple[str, Node]]) -> tuple[str, Node]:
            if isinstance(node, Not):
                (p, pnode), (n, nnode) = kids
                if isinstance(pnode, (Or, Not)):
                    p = f"({p})"
                n = f"({n})" if isinstance(nnode, (And, Or, Not)) else n
                return f"{p} AND -{n}", node
            op = " OR " if isinstance(node, Or) else " AND "
            return op.join(f"({t})" if isinstance(c, (And, Or, Not)) else t for t, c in kids), node

        text, _ = fold_nodes(query, lambda leaf: (self.leaf(leaf), leaf), inner)
        if not text:
            raise DialectError("nothing to write")  # pragma: no cover
        return Writing(text, tuple(self.notes))
