"""Parser-repair fallback: turn any string into a valid Boolean block query, saying what changed.

>>> r = repair('(climate change or "global warming) and')
>>> r.text
'climate change OR "global warming"'
>>> [e.kind for e in r.edits]
['closed quote', 'normalised operator', 'normalised operator', 'dropped dangling operator']

How it works, in three pure steps:

1. **scan**: a tolerant scanner reads the text into operands (words side by side, quoted
   phrases, PubMed tags, CORE ``field:value`` and ``field>=value``), operators and
   parentheses. A quote that is never closed is closed before the first ``)`` or operator
   word after it (``and``/``or``/``not`` in any case), else at the end; characters a word cannot
   hold (``,`` ``;`` ``!`` a trailing ``.``, ...) are dropped (``$`` truncation becomes ``*``);
   a tag that follows no term is dropped.
2. **fix the sequence**: a state machine drops doubled, leading and dangling operators,
   empty groups and unmatched ``)``, turns ``AND NOT`` into ``NOT``, closes every open
   ``(`` at the end, and puts ``AND`` between two operands that cannot stand side by side
   (``"a" "b"``, ``(a) b``). Only bare words may stand side by side, as in the grammar.
3. **parse** the rebuilt text with the grammar's own parser.

Operators written in lower or mixed case (``or``, ``And``) are ordinary words in the
grammar. When the input is invalid and at least one of them stands where only an operator
can (next to a parenthesis or a phrase), all of them are taken as operators.

Every complete term of the input is kept (its characters that no word can hold aside).
A valid query is returned as it is (canonically formatted, no edits). When nothing usable
is left (an empty string, only punctuation), :func:`repair` raises :class:`RepairError`;
:func:`try_repair` returns ``None`` instead. Nothing else is ever raised for a ``str``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Union

from blockgen.formatter import format_query
from blockgen.grammar import terminal_regex
from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node

OPERATORS = ("AND", "OR", "NOT")
_CMP = re.compile(r"^([^\s:<>=]+?)(>=|<=|>|<|=)(.*)$")
_FIELD = re.compile(r"^([^\s:<>=]+):(.*)$")
_INNER = "-'./&"
_UNCLOSED_END = re.compile(r"\)|\s(?i:and|or|not)(?=\s|$|\()")
_WILDCARDS = "*?"


class RepairError(ValueError):
    """Nothing usable is left in the text (no term at all)."""


@dataclass(frozen=True)
class Edit:
    """One change repair made: ``kind`` (e.g. ``"closed quote"``), the character ``position`` in the input, and ``detail``."""

    kind: str
    position: int
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} at {self.position}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class RepairResult:
    """The repaired ``query`` (a tree), its canonical ``text`` and the ``edits`` made (empty if the input was valid)."""

    query: Node
    text: str
    edits: tuple[Edit, ...] = ()

    @property
    def repaired(self) -> bool:
        """Whether the input had to be changed to become valid."""
        return bool(self.edits)


# ---------------------------------------------------------------- step 1: scan


@dataclass
class _Tok:
    kind: str  # "words", "phrase", "field", "cmp", "op", "(", ")"
    text: str
    pos: int
    tag: Optional[str] = None
    lower_op: bool = False  # a lower/mixed-case and/or/not, still a word


@lru_cache(maxsize=4096)
def _is_letter(ch: str) -> bool:
    return terminal_regex("WORD").fullmatch(ch) is not None


def _clean_word(raw: str, pos: int, edits: list[Edit]) -> list[str]:
    """Split a run of non-blank characters into grammar words, dropping what no word can hold."""
    out: list[str] = []
    current = ""
    dropped = ""

    def flush():
        nonlocal current
        word = current
        # inner punctuation must sit between letters: drop it at the end
        while word and word[-1] in _INNER:
            dropped_chars.append(word[-1])
            word = word[:-1]
        if word:
            out.append(word)
        current = ""

    dropped_chars: list[str] = []
    for ch in raw:
        if ch == "$":
            if current:
                edits.append(Edit("converted truncation", pos, "$ -> *"))
                current += "*"
            else:
                dropped_chars.append(ch)
        elif _is_letter(ch):
            current += ch
        elif ch in _WILDCARDS:
            if current and current[-1] not in _INNER:
                current += ch
            else:
                dropped_chars.append(ch)
        elif ch in _INNER:
            if current and current[-1] not in _INNER:
                current += ch
            else:
                dropped_chars.append(ch)
        else:
            dropped_chars.append(ch)
            flush()
    flush()
    dropped = "".join(dropped_chars)
    if dropped:
        edits.append(Edit("dropped characters", pos, repr(dropped)))
    return out


def _scan(text: str, edits: list[Edit]) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                # never closed: the phrase ends before a ")" or an operator word, else at the end
                stop = _UNCLOSED_END.search(text, i + 1)
                nxt = stop.start() if stop else n
                content = text[i + 1 : nxt]
                edits.append(Edit("closed quote", i, "the phrase was never closed"))
            else:
                content, nxt = text[i + 1 : end], end + 1
            clean = "".join(c if c >= " " and c != "\x7f" else " " for c in content)
            if clean != content:
                edits.append(Edit("dropped characters", i, "control characters in a phrase"))
            if not clean.strip():
                edits.append(Edit("dropped empty phrase", i))
            elif toks and toks[-1].kind == "field" and toks[-1].text.endswith(":") and toks[-1].pos + len(toks[-1].text) == i:
                toks[-1].text += f'"{" ".join(clean.split())}"'
            elif toks and toks[-1].kind == "cmp" and toks[-1].text[-1] in "<>=" and toks[-1].pos + len(toks[-1].text) == i:
                toks[-1].text += f'"{" ".join(clean.split())}"'
            else:
                toks.append(_Tok("phrase", " ".join(clean.split()), i))
            i = nxt
        elif ch == "[":
            end = text.find("]", i + 1)
            body = text[i + 1 : end] if end >= 0 else text[i + 1 :]
            nxt = end + 1 if end >= 0 else n
            tag = " ".join(body.split())
            prev = toks[-1] if toks else None
            if (
                prev is not None
                and prev.kind in ("words", "phrase")
                and prev.tag is None
                and terminal_regex("TAG").fullmatch(f"[{tag}]")
            ):
                prev.tag = tag
                if end < 0:
                    edits.append(Edit("closed tag", i, f"[{tag}]"))
            else:
                edits.append(Edit("dropped tag", i, text[i:nxt]))
            i = nxt
        elif ch == "]":
            edits.append(Edit("dropped characters", i, "']'"))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"[]':
                j += 1
            _scan_run(text[i:j], i, toks, edits, followed_by_quote=j < n and text[j] == '"')
            i = j
    return toks


def _scan_run(run: str, pos: int, toks: list[_Tok], edits: list[Edit], followed_by_quote: bool) -> None:
    """A run of non-blank characters: an operator, a field filter, a comparison or words."""
    if run in OPERATORS:
        toks.append(_Tok("op", run, pos))
        return
    if run.upper() in OPERATORS:
        toks.append(_Tok("words", run, pos, lower_op=True))
        return
    m = _CMP.match(run)
    if m and _clean_word(m.group(1), pos, []) == [m.group(1)]:
        name, op, value = m.groups()
        if value and _clean_word(value, pos, []) == [value]:
            toks.append(_Tok("cmp", run, pos))
            return
        if not value and followed_by_quote:
            toks.append(_Tok("cmp", run, pos))
            return
    m = _FIELD.match(run)
    if m and _clean_word(m.group(1), pos, []) == [m.group(1)]:
        name, value = m.groups()
        if value and _clean_word(value, pos, []) == [value]:
            toks.append(_Tok("field", run, pos))
            return
        if not value and followed_by_quote:
            toks.append(_Tok("field", run, pos))
            return
    for word in _clean_word(run, pos, edits):
        if word in OPERATORS:
            toks.append(_Tok("op", word, pos))
        else:
            toks.append(_Tok("words", word, pos))


# ---------------------------------------------------------------- step 2: fix the sequence


def _normalise_operators(toks: list[_Tok], edits: list[Edit]) -> None:
    """Lower-case and/or/not become operators if one of them stands where only an operator can."""
    candidates = [i for i, t in enumerate(toks) if t.lower_op]
    if not candidates:
        return

    def hard(t: Optional[_Tok]) -> bool:
        return t is not None and (t.kind in ("(", ")", "phrase", "field", "cmp") or t.tag is not None)

    def operator_position(i: int) -> bool:
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        return hard(prev) or hard(nxt) or (prev is not None and prev.kind == "words" and prev.tag is not None)

    if any(operator_position(i) for i in candidates):
        for i in candidates:
            t = toks[i]
            edits.append(Edit("normalised operator", t.pos, f"{t.text} -> {t.text.upper()}"))
            toks[i] = _Tok("op", t.text.upper(), t.pos)


def _operand_text(t: _Tok) -> str:
    if t.kind == "phrase":
        return f'"{t.text}"' + (f"[{t.tag}]" if t.tag else "")
    if t.kind == "words":
        return t.text + (f"[{t.tag}]" if t.tag else "")
    if t.kind in ("field", "cmp") and t.text[-1] in ":<>=":
        return t.text + '"x"'  # pragma: no cover - values are attached while scanning
    return t.text


def _fix(toks: list[_Tok], edits: list[Edit]) -> list[Union[_Tok, str]]:
    out: list[_Tok] = []
    depth = 0

    def last() -> Optional[_Tok]:
        return out[-1] if out else None

    def expecting_operand() -> bool:
        return not out or out[-1].kind in ("op", "(")

    for t in toks:
        if t.kind in ("field", "cmp") and t.text[-1] in ":<>=":
            # a field or comparison whose value never came: keep its name as a word
            name = re.split(r"[:<>=]", t.text)[0]
            edits.append(Edit("dropped empty filter", t.pos, t.text))
            t = _Tok("words", name, t.pos)
        if t.kind in ("words", "phrase", "field", "cmp"):
            if not expecting_operand():
                prev = last()
                side_by_side = prev.kind == "words" and prev.tag is None and t.kind == "words"
                if not side_by_side:
                    edits.append(Edit("inserted AND", t.pos, "between two operands"))
                    out.append(_Tok("op", "AND", t.pos))
            out.append(t)
        elif t.kind == "(":
            if not expecting_operand():
                edits.append(Edit("inserted AND", t.pos, "before a group"))
                out.append(_Tok("op", "AND", t.pos))
            out.append(t)
            depth += 1
        elif t.kind == ")":
            if depth == 0:
                edits.append(Edit("dropped parenthesis", t.pos, "')' without '('"))
                continue
            while out and out[-1].kind == "op":
                edits.append(Edit("dropped dangling operator", out[-1].pos, out[-1].text))
                out.pop()
            if out and out[-1].kind == "(":
                edits.append(Edit("dropped empty group", out[-1].pos))
                out.pop()
                depth -= 1
                continue
            out.append(t)
            depth -= 1
        else:  # operator
            if expecting_operand():
                prev = last()
                if prev is not None and prev.kind == "op":
                    if prev.text == "AND" and t.text == "NOT":
                        edits.append(Edit("replaced AND NOT by NOT", prev.pos))
                        out[-1] = t
                    else:
                        edits.append(Edit("dropped doubled operator", t.pos, t.text))
                elif t.text == "NOT":
                    edits.append(Edit("dropped leading NOT", t.pos, "NOT is binary (a NOT b): there is nothing before it"))
                else:
                    edits.append(Edit("dropped leading operator", t.pos, t.text))
                continue
            out.append(t)
    # the end: no dangling operator or empty group, every group closed
    while True:
        if out and out[-1].kind == "op":
            edits.append(Edit("dropped dangling operator", out[-1].pos, out[-1].text))
            out.pop()
        elif out and out[-1].kind == "(":
            edits.append(Edit("dropped empty group", out[-1].pos))
            out.pop()
            depth -= 1
        else:
            break
    result: list[Union[_Tok, str]] = list(out)
    if depth > 0:
        edits.append(Edit("closed parenthesis", len(out) and out[-1].pos, f"{depth} ')' added"))
        result.extend([")"] * depth)
    return result


def _rebuild(seq: list[Union[_Tok, str]]) -> str:
    parts = []
    for t in seq:
        if isinstance(t, str):
            parts.append(t)
        elif t.kind in ("(", ")", "op"):
            parts.append(t.text)
        else:
            parts.append(_operand_text(t))
    return " ".join(parts)


# ---------------------------------------------------------------- step 3: parse


def repair(text: str) -> RepairResult:
    """Repair ``text`` into a valid query; see the module docstring for what it does.

    Raises :class:`RepairError` when no term is left, ``TypeError`` for a non-string.
    """
    if not isinstance(text, str):
        raise TypeError(f"repair() needs a str, not {type(text).__name__}")
    try:
        query = parse(text)
        return RepairResult(query, format_query(query), ())
    except QuerySyntaxError:
        pass
    edits: list[Edit] = []
    toks = _scan(text, edits)
    _normalise_operators(toks, edits)
    seq = _fix(toks, edits)
    if not any(isinstance(t, _Tok) and t.kind in ("words", "phrase", "field", "cmp") for t in seq):
        raise RepairError("nothing usable to repair: the text holds no term")
    rebuilt = _rebuild(seq)
    try:
        query = parse(rebuilt)
    except QuerySyntaxError as err:  # pragma: no cover - a bug in the steps above
        raise RepairError(f"repair produced an invalid query {rebuilt!r}: {err}") from None
    if not edits:
        edits.append(Edit("reformatted", 0, "spacing only"))
    return RepairResult(query, format_query(query), tuple(edits))


def try_repair(text: str) -> Optional[RepairResult]:
    """Like :func:`repair`, but ``None`` instead of :class:`RepairError` when nothing usable is left."""
    try:
        return repair(text)
    except RepairError:
        return None
