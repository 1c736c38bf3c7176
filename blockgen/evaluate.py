"""What a query means: a Boolean evaluator of query trees over documents with fields.

The meaning of every node, on one :class:`Document`:

* **Words.** A field's text is split into *tokens*: maximal runs of Unicode letters and
  digits, lower-cased (``"COVID-19 in Kyiv's"`` -> ``covid 19 in kyiv s``; tantivy's default
  tokenizer does the same). A query word is split the same way, keeping the wildcards ``*``
  (any run of letters/digits, also none) and ``?`` (one letter/digit or none, as Ovid's ``?``):
  ``COVID-19`` is the tokens ``covid 19``, ``child*`` one pattern. A word *occurs* in a field
  where its tokens stand side by side, in order.
* ``Term("climate change", tag)``: **every** word occurs in a field the tag searches; the
  words are independent (another field, any order). This is PubMed's implicit AND.
* ``Phrase("climate change", tag)``: the words occur side by side, in order, in one field.
* A tag decides the fields (:func:`blockgen.dialects.tags.fields_of`): untagged and ``[all]``
  search every text field; ``tiab`` the title and abstract; ``tw`` also other terms ...
* A heading tag (``Mesh``, ``Mesh:NoExp``, ``majr``, ``majr:NoExp``) matches the document's
  subject headings by **name** (case and spacing ignored), not words: exploded tags also
  match every heading below the named one in the hierarchy given to :class:`Evaluator`;
  ``majr`` tags only headings marked major.
* A proximity tag (``tiab:~3``) on a leaf of words: the words (each once, in any order)
  occur in one field with at most 3 other tokens in the window between the first and the last
  of them (for two words: at most 3 tokens between them, PubMed's rule).
* ``Field(name, value)``: the text field ``name`` holds ``value`` as a phrase, or the
  document's value ``name`` equals ``value`` (case ignored).
* ``Comparison(name, op, value)``: the document's value ``name`` compared with ``value``:
  as numbers when both are numbers, else as text cut to the length of ``value`` (so the date
  ``2020/05/01 <= 2020`` holds: PubMed's ranges are inclusive by their precision).
* ``Or``: any item; ``And``: every item; ``Not(p, n)``: ``p`` and not ``n``.

Evaluation walks the tree with an explicit stack, so depth is not limited by recursion.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Sequence

from blockgen.dialects.tags import TEXT_FIELDS, fields_of, parse_tag
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term

__all__ = ["Document", "Evaluator", "evaluate", "select", "tokens"]

_TOKEN = re.compile(r"[^\W_]+")
#: Proximity with more words than this is checked over at most this many occurrences each.
_MAX_OCCURRENCES = 64


@dataclass(frozen=True)
class Document:
    """A document: text ``fields`` (``{"ti": ..., "ab": ...}``), subject ``headings`` (name ->
    major topic?), and ``values`` for comparisons and field filters (``{"dp": "2019/05/01"}``)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    headings: Mapping[str, bool] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)


def tokens(text: str) -> list[str]:
    """The tokens of a text: runs of letters and digits, lower-cased."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=4096)
def _word_patterns(word: str) -> tuple["re.Pattern[str]", ...]:
    """A query word as a sequence of token patterns (wildcards kept)."""
    out = []
    for run in re.split(r"[^\w*?]|_", word.lower()):
        if not run or not re.search(r"[^\W_]", run):
            continue
        rx = "".join("[^\\W_]*" if ch == "*" else "[^\\W_]?" if ch == "?" else re.escape(ch) for ch in run)
        out.append(re.compile(rx))
    return tuple(out)


def _squeeze_lower(text: str) -> str:
    return " ".join(text.lower().split())


class Evaluator:
    """Evaluates query trees on documents; ``hierarchy`` maps a heading to its parent
    heading(s), for exploded heading tags."""

    def __init__(self, hierarchy: Optional[Mapping[str, "str | Sequence[str]"]] = None):
        self._parents: dict[str, tuple[str, ...]] = {}
        for child, parents in (hierarchy or {}).items():
            ps = (parents,) if isinstance(parents, str) else tuple(parents)
            self._parents[_squeeze_lower(child)] = tuple(_squeeze_lower(p) for p in ps)

    # ------------------------------------------------------------------ leaves

    def _ancestors(self, heading: str) -> set[str]:
        seen = {heading}
        todo = [heading]
        while todo:
            for parent in self._parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def _heading(self, name: str, tag, doc: Document) -> bool:
        want = _squeeze_lower(name)
        for heading, major in doc.headings.items():
            if tag.major and not major:
                continue
            h = _squeeze_lower(heading)
            if h == want or (tag.exploded and want in self._ancestors(h)):
                return True
        return False

    @staticmethod
    def _field_tokens(doc: Document, tag: Optional[str]) -> Iterable[list[str]]:
        names = fields_of(tag)
        if names is None:
            names = tuple(doc.fields) or TEXT_FIELDS
        for name in names:
            text = doc.fields.get(name)
            if text:
                yield tokens(text)

    @staticmethod
    def _spans(patterns: Sequence["re.Pattern[str]"], toks: list[str]) -> list[tuple[int, int]]:
        """Where the token patterns stand side by side: (start, end) token ranges, end exclusive."""
        n = len(patterns)
        if n == 0:
            return []
        return [
            (i, i + n)
            for i in range(len(toks) - n + 1)
            if all(p.fullmatch(toks[i + k]) for k, p in enumerate(patterns))
        ]

    def _words_in(self, words: list[str], tag: Optional[str], doc: Document, phrase: bool) -> bool:
        patterns = [_word_patterns(w) for w in words]
        patterns = [p for p in patterns if p]
        if not patterns:
            return False
        if phrase:
            flat = tuple(itertools.chain.from_iterable(patterns))
            return any(self._spans(flat, toks) for toks in self._field_tokens(doc, tag))
        return all(any(self._spans(p, toks) for toks in self._field_tokens(doc, tag)) for p in patterns)

    def _near(self, words: list[str], base: Optional[str], distance: int, doc: Document) -> bool:
        patterns = [p for p in (_word_patterns(w) for w in words) if p]
        if not patterns:
            return False
        for toks in self._field_tokens(doc, base):
            spans = [self._spans(p, toks)[:_MAX_OCCURRENCES] for p in patterns]
            if not all(spans):
                continue
            for combo in itertools.product(*spans):
                ordered = sorted(combo)
                if any(a[1] > b[0] for a, b in zip(ordered, ordered[1:])):
                    continue  # each word needs its own tokens
                inside = ordered[-1][1] - ordered[0][0] - sum(e - s for s, e in ordered)
                if inside <= distance:
                    return True
        return False

    def _leaf(self, node: Node, doc: Document) -> bool:
        if isinstance(node, (Term, Phrase)):
            tag = parse_tag(node.tag)
            if tag.heading:
                return self._heading(node.text, tag, doc)
            words = node.text.split()
            base = None if tag.field is None else tag.field
            if tag.proximity is not None:
                return self._near(words, base, tag.proximity, doc)
            return self._words_in(words, base, doc, phrase=isinstance(node, Phrase))
        if isinstance(node, Field):
            text = doc.fields.get(node.name)
            if text and self._spans(tuple(itertools.chain.from_iterable(_word_patterns(w) for w in node.value.split())), tokens(text)):
                return True
            value = doc.values.get(node.name)
            return value is not None and _squeeze_lower(str(value)) == _squeeze_lower(node.value)
        if isinstance(node, Comparison):
            return _compare(doc.values.get(node.name), node.op, node.value)
        raise TypeError(f"not a query node: {node!r}")

    # ------------------------------------------------------------------ tree

    def matches(self, query: Node, doc: Document) -> bool:
        """Whether ``doc`` satisfies ``query`` (see the module docstring)."""
        if not isinstance(query, Node):
            raise TypeError(f"evaluate() needs a query tree, not {type(query).__name__}")
        values: list[bool] = []  # post-order: the values of the children of the node being finished
        stack: list[tuple[Node, bool]] = [(query, False)]
        while stack:
            node, expanded = stack.pop()
            if isinstance(node, (Or, And, Not)):
                children = node.items if isinstance(node, (Or, And)) else (node.positive, node.negative)
                if not expanded:
                    stack.append((node, True))
                    stack.extend((child, False) for child in reversed(children))
                    continue
                mine = values[len(values) - len(children):]
                del values[len(values) - len(children):]
                if isinstance(node, Or):
                    values.append(any(mine))
                elif isinstance(node, And):
                    values.append(all(mine))
                else:
                    values.append(mine[0] and not mine[1])
            else:
                values.append(self._leaf(node, doc))
        return values[0]

    def select(self, query: Node, docs: Iterable[Document]) -> list[int]:
        """The indices of the documents ``query`` selects."""
        return [i for i, doc in enumerate(docs) if self.matches(query, doc)]


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(value, op: str, bound: str) -> bool:
    if value is None:
        return False
    value = str(value).strip()
    bound = bound.strip()
    a, b = _number(value), _number(bound)
    if a is None or b is None:
        a, b = value.lower()[: len(bound)], bound.lower()  # type: ignore[assignment]
    return {
        ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "=": a == b,  # type: ignore[operator]
    }[op]


def evaluate(query: Node, doc: Document, hierarchy: Optional[Mapping[str, "str | Sequence[str]"]] = None) -> bool:
    """Whether ``doc`` satisfies ``query``; ``hierarchy`` maps a heading to its parent(s)."""
    return Evaluator(hierarchy).matches(query, doc)


def select(query: Node, docs: Iterable[Document], hierarchy: Optional[Mapping[str, "str | Sequence[str]"]] = None) -> list[int]:
    """The indices of ``docs`` that satisfy ``query``."""
    return Evaluator(hierarchy).select(query, docs)
