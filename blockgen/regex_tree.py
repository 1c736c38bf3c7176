"""Parse the regexes of a lark grammar's terminals into a small tree of character sets.

The tree has four node kinds: :class:`Chars` (one character from a set), :class:`Seq`,
:class:`Alt` and :class:`Repeat`. It covers what terminal regexes use: literals, escapes,
character classes (negated, with ``\\p{..}``/``\\w``/... inside), ``.``, groups (capturing,
non-capturing, named, with scoped flags such as ``(?i:...)``), alternation and the
quantifiers ``* + ? {m} {m,} {m,n}`` (lazy ones mean the same language). What a
one-character atom matches is asked of the regex engine (:func:`blockgen.charset.atom_set`).
Constructs that are not regular or depend on context (anchors, lookarounds, backreferences,
possessive quantifiers, atomic groups) raise :class:`RegexNotSupported`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from blockgen import charset
from blockgen.charset import Ranges


class RegexNotSupported(ValueError):
    """A regex construct that has no equivalent in a context-free grammar of characters."""


@dataclass(frozen=True)
class Chars:
    """One character from ``ranges``."""

    ranges: Ranges


@dataclass(frozen=True)
class Seq:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Alt:
    options: tuple["Node", ...]


@dataclass(frozen=True)
class Repeat:
    item: "Node"
    min: int
    max: Optional[int]  # None: no upper bound


Node = Union[Chars, Seq, Alt, Repeat]

_FLAG_LETTERS = set("aiLmsuxV0V1fbepr")


def literal(text: str) -> Node:
    """The tree matching exactly ``text``."""
    return Seq(tuple(Chars(charset.of_chars(c)) for c in text))


def parse(pattern: str, engine: str = "re", flags: int = 0) -> Node:
    """The tree of ``pattern`` as ``engine`` (``"re"`` or ``"regex"``) reads it with compile ``flags``."""
    parser = _Parser(pattern, engine, flags)
    node = parser.alternation("")
    if parser.pos != len(pattern):
        raise RegexNotSupported(f"unbalanced ')' at {parser.pos} in {pattern!r}")
    return node


class _Parser:
    def __init__(self, pattern: str, engine: str, flags: int):
        self.text, self.pos, self.engine, self.flags = pattern, 0, engine, flags

    # ------------------------------------------------------------------ helpers
    def _peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    def _fail(self, what: str) -> RegexNotSupported:
        return RegexNotSupported(f"{what} (at {self.pos} in {self.text!r}) has no grammar equivalent")

    def _atom(self, source: str, inline: str) -> Chars:
        try:
            return Chars(charset.atom_set(source, self.engine, self.flags, "".join(sorted(set(inline)))))
        except ValueError as err:
            raise RegexNotSupported(str(err)) from None

    # ------------------------------------------------------------------ grammar of regexes
    def alternation(self, inline: str) -> Node:
        options = [self.sequence(inline)]
        while self._peek() == "|":
            self.pos += 1
            options.append(self.sequence(inline))
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence(self, inline: str) -> Node:
        items: list[Node] = []
        while self._peek() not in ("", "|", ")"):
            if self.text.startswith("(?", self.pos) and self._global_flags_group():
                inline += self._take_global_flags()
                continue
            items.append(self.quantified(self.atom(inline)))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def quantified(self, node: Node) -> Node:
        while True:
            c = self._peek()
            if c in ("*", "+", "?"):
                self.pos += 1
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{" and self._counted() is not None:
                lo, hi, length = self._counted()
                self.pos += length
            else:
                return node
            if self._peek() == "?":  # lazy: same language
                self.pos += 1
            elif self._peek() == "+":
                raise self._fail("a possessive quantifier")
            node = Repeat(node, lo, hi)

    def _counted(self) -> Optional[tuple[int, Optional[int], int]]:
        end = self.text.find("}", self.pos)
        if end < 0:
            return None
        body = self.text[self.pos + 1 : end]
        lo, sep, hi = body.partition(",")
        if not (lo.isdigit() or (sep and lo == "")) or (hi and not hi.isdigit()):
            return None
        low = int(lo) if lo else 0
        high = (int(hi) if hi else None) if sep else low
        if high is not None and high < low:
            raise self._fail("a {m,n} with n < m")
        return low, high, end - self.pos + 1

    def _global_flags_group(self) -> bool:
        j = self.pos + 2
        while j < len(self.text) and self.text[j] in _FLAG_LETTERS:
            j += 1
        return j > self.pos + 2 and j < len(self.text) and self.text[j] == ")"

    def _take_global_flags(self) -> str:
        end = self.text.index(")", self.pos)
        letters = self.text[self.pos + 2 : end]
        self.pos = end + 1
        return self._checked_flags(letters)

    def _checked_flags(self, letters: str) -> str:
        if "V1" in letters or "x" in letters:
            raise self._fail(f"the inline flags {letters!r}")
        return letters.replace("V0", "")

    def atom(self, inline: str) -> Node:
        c = self._peek()
        if c == "(":
            return self._group(inline)
        if c == "[":
            end = self._class_end()
            source, self.pos = self.text[self.pos : end], end
            return self._atom(source, inline)
        if c == ".":
            self.pos += 1
            return self._atom(".", inline)
        if c == "\\":
            return self._escape(inline)
        if c in ("^", "$"):
            raise self._fail(f"the anchor {c!r}")
        if c in ("*", "+", "?", "{"):
            if c == "{" and self._counted() is None:  # a literal brace
                self.pos += 1
                return self._atom("\\{", inline)
            raise self._fail(f"a quantifier {c!r} with nothing before it")
        self.pos += 1
        return self._atom(c if c not in ".^$|?*+()[]{}\\" else "\\" + c, inline)

    def _group(self, inline: str) -> Node:
        self.pos += 1
        if self._peek() == "?":
            kind = self.text[self.pos + 1 : self.pos + 3]
            if kind.startswith(":"):
                self.pos += 2
            elif kind.startswith("P<") or (kind.startswith("<") and kind not in ("<=", "<!")):
                self.pos = self.text.index(">", self.pos) + 1
            elif kind.startswith("#"):
                self.pos = self.text.index(")", self.pos) + 1
                return Seq(())
            elif kind[:1] in ("=", "!") or kind in ("<=", "<!"):
                raise self._fail("a lookaround")
            elif kind.startswith(">"):
                raise self._fail("an atomic group")
            elif kind.startswith("|"):  # branch reset: only changes group numbers
                self.pos += 2
            else:
                j = self.pos + 1
                while j < len(self.text) and self.text[j] in _FLAG_LETTERS | {"-"}:
                    j += 1
                if j >= len(self.text) or self.text[j] != ":":
                    raise self._fail("this group")
                on, _, off = self.text[self.pos + 1 : j].partition("-")
                inline = "".join(f for f in inline + self._checked_flags(on) if f not in off)
                self.pos = j + 1
        node = self.alternation(inline)
        if self._peek() != ")":
            raise self._fail("an unclosed group")
        self.pos += 1
        return node

    def _class_end(self) -> int:
        """Index just past the character class that starts at ``self.pos``."""
        i = self.pos + 1
        if i < len(self.text) and self.text[i] == "^":
            i += 1
        if i < len(self.text) and self.text[i] == "]":
            i += 1
        while i < len(self.text):
            c = self.text[i]
            if c == "\\":
                i += 2
            elif c == "[" and self.text.startswith("[:", i):  # POSIX class of the regex module
                i = self.text.index(":]", i) + 2
            elif c == "]":
                return i + 1
            else:
                i += 1
        raise self._fail("an unclosed character class")

    def _escape(self, inline: str) -> Node:
        start = self.pos
        c = self._peek(1)
        if c == "":
            raise self._fail("a trailing backslash")
        if c in "AZzbBGKX" or (c.isdigit() and c != "0") or c == "g":
            raise self._fail(f"the escape \\{c}")
        if c in "pPN" and self._peek(2) == "{":
            end = self.text.index("}", self.pos) + 1
        elif c in "pP":
            end = self.pos + 3
        elif c == "x":
            end = self.text.index("}", self.pos) + 1 if self._peek(2) == "{" else self.pos + 4
        elif c == "u":
            end = self.pos + 6
        elif c == "U":
            end = self.pos + 10
        elif c == "0":
            end = self.pos + 2
            while end < len(self.text) and end < self.pos + 4 and self.text[end] in "01234567":
                end += 1
        else:
            end = self.pos + 2
        self.pos = end
        return self._atom(self.text[start:end], inline)
