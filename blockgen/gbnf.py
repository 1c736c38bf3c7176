"""Write a lark grammar (LALR, contextual lexer) as GBNF, a grammar of characters with no lexer.

GBNF engines (llama.cpp's grammar sampler, xgrammar) read text character by character. A
lark grammar leaves three things to its lexer that they must be told:

1. what a token is: each terminal's regex becomes a rule (:mod:`blockgen.regex_tree`);
2. the ``%ignore``d blanks between tokens;
3. where a blank is *required*: blockgen's lexer reads a token as long as the text is still
   the start of a terminal it looks for in that parser state, so two tokens need a blank
   between them exactly when the second could continue the first (``a AND b``, not
   ``a ANDb``, which is the two words ``a ANDb``; but ``(a)ANDb`` is ``(a) AND b``, as no
   word can follow ``)``). Which terminals the lexer looks for depends on the parser state,
   so the answer depends on the tokens *around* the pair (:mod:`blockgen.lexing`).

The rules of the grammar are therefore copied once per lexing situation that can occur at
their start and end (``query-1``, ``query-2``, ...): each copy threads the situation from
token to token and puts a required or an optional blank before each token. Copies that
turn out the same are merged again, and lark's left-recursive repetition rules are turned
into right recursion (llama.cpp refuses left recursion).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Optional

from blockgen import charset
from blockgen.charset import Ranges
from blockgen.export import ExportError
from blockgen.lexing import OPTIONAL, REQUIRED, Boundary, LexerModel
from blockgen.regex_tree import Alt, Chars, Node, Repeat, Seq

# Production items: ("sep", REQUIRED|OPTIONAL), ("t", terminal), ("nt", variant id).
Item = tuple
Production = tuple


def to_gbnf(parser: Any) -> str:
    """The GBNF text (root rule ``root``) accepting exactly the strings ``parser`` parses."""
    lex = LexerModel(parser)
    builder = _Variants(lex)
    rules, root = builder.build()
    rules = _remove_left_recursion(rules)
    rules = _prune(rules, root)
    _check_no_left_recursion(rules)
    rules, root = _simplify(rules, root)
    return _Writer(lex, rules, root).text()


# --------------------------------------------------------------------------- rule copies per lexing situation
def _boundary_order(b: Boundary) -> tuple:  # a stable order, for a stable text
    return (sorted(b.needs[0]), sorted(b.needs[1]), sorted((n, sorted(r), sorted(u)) for n, (r, u) in b.ahead))


class _Variants:
    """Copies of the grammar's rules, one per lexing situation at their start and at their end.

    A copy is asked for with a key ``(rule, parser state, situation before, lookahead)``: the
    lookahead is the set of terminals that can come right after the rule there, and the
    situations are reduced to what those terminals (and the rule's first ones) depend on,
    so copies are made only where a neighbouring token would be lexed differently.
    """

    def __init__(self, lex: LexerModel):
        self.lex = lex
        self.exits: dict[tuple, set[Boundary]] = {}
        self._states: dict[int, Any] = {}
        self._first, self._nullable = self._first_sets()

    def _live(self, rule: Any) -> bool:
        # lark's lexer drops ignored tokens: a rule that needs one never matches
        return not any(sym.is_term and sym.name in self.lex.ignore for sym in rule.expansion)

    def _first_sets(self) -> tuple[dict, set]:
        first: dict[str, set] = defaultdict(set)
        nullable: set = set()
        changed = True
        while changed:
            changed = False
            for name, rules in self.lex.rules_by_origin.items():
                for rule in filter(self._live, rules):
                    before = (len(first[name]), name in nullable)
                    seq_first, seq_null = self._seq(rule.expansion, first, nullable)
                    first[name] |= seq_first
                    if seq_null:
                        nullable.add(name)
                    changed = changed or before != (len(first[name]), name in nullable)
        return dict(first), nullable

    @staticmethod
    def _seq(symbols, first, nullable) -> tuple[set, bool]:
        out: set = set()
        for sym in symbols:
            if sym.is_term:
                return out | {sym.name}, False
            out |= first.get(sym.name, set())
            if sym.name not in nullable:
                return out, False
        return out, True

    def lookahead(self, symbols, after: frozenset) -> frozenset:
        """The terminals that can come first in ``symbols`` followed by ``after``."""
        seq_first, seq_null = self._seq(symbols, self._first, self._nullable)
        return frozenset(seq_first | (after if seq_null else set()))

    @staticmethod
    def project(b: Boundary, names: frozenset) -> Boundary:
        """``b`` reduced to what terminals in ``names`` depend on."""
        required, unclear = b.needs
        ahead = frozenset((n, needs) for n, needs in b.ahead if n in names)
        return Boundary((required & names, unclear & names), ahead)

    def build(self) -> tuple[dict, tuple]:
        lex = self.lex
        end = frozenset({"$END"})
        start_key = self._register(lex.start, lex.start_state, lex.start_boundary(), end)
        changed = True
        while changed:
            known = len(self.exits)
            changed = False
            for key in list(self.exits):
                outs = {out for rule in lex.rules_by_origin[key[0]] for _, out in self._walk(rule, key)}
                if not outs <= self.exits[key]:
                    self.exits[key] |= outs
                    changed = True
            changed = changed or len(self.exits) > known
        rules: dict[tuple, list[Production]] = defaultdict(list)
        for key in list(self.exits):
            for rule in lex.rules_by_origin[key[0]]:
                for items, out in self._walk(rule, key):
                    if items not in rules[(key, out)]:
                        rules[(key, out)].append(items)
        if not self.exits[start_key]:
            raise ExportError("the grammar accepts no string")
        # blanks are ignored after the last token too
        rules[("root",)] = [
            (("nt", (start_key, out)), ("sep", OPTIONAL)) for out in sorted(self.exits[start_key], key=_boundary_order)
        ]
        return dict(rules), ("root",)

    def _register(self, name: str, state: Any, before: Boundary, follow: frozenset) -> tuple:
        self._states[id(state)] = state
        firsts = frozenset(self._first.get(name, set())) | (follow if name in self._nullable else frozenset())
        key = (name, id(state), self.project(before, firsts), follow)
        self.exits.setdefault(key, set())
        return key

    def _walk(self, rule: Any, key: tuple) -> list[tuple[Production, Boundary]]:
        """Every way through ``rule`` from the copy ``key``: its items and the situation after it."""
        if not self._live(rule):
            return []
        _, state_id, before, follow = key
        paths: list[tuple[Production, Any, Boundary]] = [((), self._states[state_id], before)]
        for k, sym in enumerate(rule.expansion):
            extended = []
            for items, state, bound in paths:
                nxt = state.transitions[sym]
                self._states[id(nxt)] = nxt
                if sym.is_term:
                    kind = self.lex.separator(bound, sym.name)
                    if kind is not None:
                        after = self.lex.after(bound, sym.name, nxt)
                        extended.append((items + (("sep", kind), ("t", sym.name)), nxt, after))
                else:
                    sub = self._register(sym.name, state, bound, self.lookahead(rule.expansion[k + 1 :], follow))
                    for out in sorted(self.exits[sub], key=_boundary_order):
                        extended.append((items + (("nt", (sub, out)),), nxt, out))
            paths = extended
        return [(items, self.project(bound, follow)) for items, _, bound in paths]


# --------------------------------------------------------------------------- left recursion
def _remove_left_recursion(rules: dict) -> dict:
    """Rewrite lark's ``x: x a | b`` repetition rules (left-recursive) as right recursion.

    Right recursion, not ``b (a)*``: in a one-off development measurement (10 Sim4IA queries,
    Llama 3 vocabulary, a busy machine) xgrammar 0.2.9 computed masks at 729 ms p50 with
    loops such as ``([ \\t\\n\\r]+ WORD)*`` that hold a rule reference, and ~5 ms without.

    The copies of one rule that start in the same parser state and situation form a family
    (they differ in lookahead and exit). ``m ::= m' a`` (m, m' in a family) is a step
    ``m' -> m`` reading ``a``; each member becomes a base production followed by a chain of
    steps: ``m ::= base(m0) rest(m0 -> m)``, ``rest(m0 -> m) ::= a rest(m1 -> m) | ""`` (if m0 = m).
    """
    rules = {vid: list(prods) for vid, prods in rules.items()}
    families: dict[tuple, list] = defaultdict(list)
    for vid in rules:
        if len(vid) == 2:
            families[vid[0][:3]].append(vid)

    for family, members in families.items():
        def recursive(p: Production) -> bool:
            return bool(p) and p[0][0] == "nt" and len(p[0][1]) == 2 and p[0][1][0][:3] == family

        steps = [(p[0][1], m, p[1:]) for m in members for p in rules[m] if recursive(p)]
        if not steps:
            continue
        bases = {m: [p for p in rules[m] if not recursive(p)] for m in members}
        for m in members:
            rules[m] = [base + (("nt", ("rest", family, m0, m)),) for m0 in members for base in bases[m0]]
            for m0 in members:
                prods = [rest + (("nt", ("rest", family, m1, m)),) for src, m1, rest in steps if src == m0]
                rules[("rest", family, m0, m)] = prods + ([()] if m0 == m else [])
    return rules


def _nullable(rules: dict) -> set:
    null: set = set()
    changed = True
    while changed:
        changed = False
        for vid, prods in rules.items():
            if vid not in null and any(all(_item_nullable(i, null) for i in p) for p in prods):
                null.add(vid)
                changed = True
    return null


def _item_nullable(item: Item, null: set) -> bool:
    kind = item[0]
    return (kind == "sep" and item[1] == OPTIONAL) or (kind == "nt" and item[1] in null)


def _check_no_left_recursion(rules: dict) -> None:
    """llama.cpp refuses a rule that can reach itself before reading a character."""
    null = _nullable(rules)
    corners: dict = {vid: set() for vid in rules}
    for vid, prods in rules.items():
        for p in prods:
            for item in p:
                if item[0] == "nt":
                    corners[vid].add(item[1])
                if not _item_nullable(item, null):
                    break
    for vid in rules:
        seen, todo = set(), list(corners[vid])
        while todo:
            v = todo.pop()
            if v == vid:
                raise ExportError(f"the grammar is left-recursive through {_label(vid)}, which GBNF engines refuse")
            if v not in seen:
                seen.add(v)
                todo.extend(corners.get(v, ()))


# --------------------------------------------------------------------------- clean-up
def _refs(prod: Production) -> Iterable:
    return (item[1] for item in prod if item[0] == "nt")


def _map(prod: Production, nt) -> Production:
    """``prod`` with every ``("nt", v)`` item replaced by ``nt(v)``."""
    return tuple(nt(item[1]) if item[0] == "nt" else item for item in prod)


def _prune(rules: dict, root: tuple) -> dict:
    """Drop rules that derive no string, then those the root cannot reach; inline empty-only rules."""
    productive: set = set()
    changed = True
    while changed:
        changed = False
        for vid, prods in rules.items():
            if vid not in productive and any(all(r in productive for r in _refs(p)) for p in prods):
                productive.add(vid)
                changed = True
    if root not in productive:
        raise ExportError("the grammar accepts no string")

    def keep(prod: Production) -> Optional[Production]:
        out = []
        for item in prod:
            if item[0] == "nt":
                if item[1] not in productive:
                    return None
                if empty_only.get(item[1]):
                    continue
            out.append(item)
        return tuple(out)

    empty_only = {vid: all(p == () for p in prods) for vid, prods in rules.items()}
    cleaned = {}
    for vid, prods in rules.items():
        if vid in productive:
            kept = [p for p in (keep(p) for p in prods) if p is not None]
            cleaned[vid] = list(dict.fromkeys(kept))
    reachable, todo = {root}, [root]
    while todo:
        for prod in cleaned[todo.pop()]:
            for ref in _refs(prod):
                if ref not in reachable:
                    reachable.add(ref)
                    todo.append(ref)
    return {vid: prods for vid, prods in cleaned.items() if vid in reachable}


def _label(vid: tuple) -> str:
    """The lark rule a copy belongs to (``rest`` rules: the rule they continue)."""
    if vid == ("root",):
        return "root"
    if vid[0] == "rest":
        return vid[1][0] + "_rest"
    return vid[0][0]


def _merge_equal(rules: dict, root: tuple) -> tuple[dict, tuple]:
    """Merge copies of one rule that have the same productions (partition refinement)."""
    block = {vid: _label(vid) for vid in rules}
    count = len(set(block.values()))
    while True:
        def sig(prod: Production) -> Production:
            return _map(prod, lambda v: ("nt", block[v]))

        signature = {vid: (block[vid], tuple(sorted({repr(sig(p)) for p in prods}))) for vid, prods in rules.items()}
        ids: dict = {}
        block = {vid: ids.setdefault(s, len(ids)) for vid, s in signature.items()}
        if len(ids) == count:
            break
        count = len(ids)
    representative: dict = {}
    for vid in rules:
        representative.setdefault(block[vid], vid)

    def rename(prod: Production) -> Production:
        return _map(prod, lambda v: ("nt", representative[block[v]]))

    merged = {vid: list(dict.fromkeys(map(rename, prods))) for vid, prods in rules.items() if representative[block[vid]] == vid}
    return merged, representative[block[root]]


def _unite_twins(rules: dict, root: tuple) -> Optional[dict]:
    """Unite two copies of a rule that are only ever used side by side (one rewrite, or ``None``).

    Copies differ in the situation *after* them; where the rule using them does not care
    (``x ::= a-1 y | a-2 y``, or ``root ::= start-1 | start-2``), ``a-1`` and ``a-2`` can be
    one rule with both productions: the language stays the same when every production that
    holds one of them has a twin holding the other in the same place.
    """
    groups: list[list[Production]] = list(rules.values())
    by_label: dict[str, list] = defaultdict(list)
    for vid in rules:
        if vid != root:
            by_label[_label(vid)].append(vid)
    for vids in by_label.values():
        for i, a in enumerate(vids):
            for b in vids[i + 1 :]:
                if _twins(groups, a, b):
                    return _replace(rules, a, b)
    return None


def _twins(groups: list[list[Production]], a: tuple, b: tuple) -> bool:
    pair = {("nt", a), ("nt", b)}
    used = False
    for prods in groups:
        present = set(prods)
        for p in prods:
            places = [k for k, item in enumerate(p) if item in pair]
            if not places:
                continue
            used = True
            if len(places) > 3:
                return False
            for choice in range(2 ** len(places)):
                twin = list(p)
                for bit, k in enumerate(places):
                    twin[k] = ("nt", a if choice >> bit & 1 else b)
                if tuple(twin) not in present:
                    return False
    return used


def _replace(rules: dict, a: tuple, b: tuple) -> dict:
    """``a`` takes ``b``'s productions too, and every use of ``b`` becomes one of ``a``."""
    def swap(prod: Production) -> Production:
        return _map(prod, lambda v: ("nt", a if v == b else v))

    out = {vid: list(dict.fromkeys(map(swap, prods))) for vid, prods in rules.items() if vid != b}
    out[a] = list(dict.fromkeys(out[a] + [swap(p) for p in rules[b]]))
    return out


def _inline_aliases(rules: dict, root: tuple) -> dict:
    """Drop rules that only stand for another rule (``start ::= query``)."""
    alias = {vid: prods[0][0][1] for vid, prods in rules.items() if vid != root and len(prods) == 1 and len(prods[0]) == 1 and prods[0][0][0] == "nt"}

    def target(v: tuple) -> tuple:
        seen = set()
        while v in alias and v not in seen:
            seen.add(v)
            v = alias[v]
        return v

    return {vid: [_map(p, lambda v: ("nt", target(v))) for p in prods] for vid, prods in rules.items() if vid not in alias or target(vid) == vid}


def _simplify(rules: dict, root: tuple) -> tuple[dict, tuple]:
    """Merge equal copies and unite twins until nothing changes."""
    while True:
        rules = _inline_aliases(rules, root)
        rules, root = _merge_equal(rules, root)
        united = _unite_twins(rules, root)
        if united is None:
            return rules, root
        rules = united


# --------------------------------------------------------------------------- text
class _Writer:
    def __init__(self, lex: LexerModel, rules: dict, root: tuple):
        self.lex, self.rules, self.root = lex, rules, root
        self.names = self._names()
        self.expressions = _Expressions()
        blank = self._blank_tree()
        self.sep = {
            OPTIONAL: self.expressions.expr(Repeat(blank, 0, None)) if blank is not None else "",
            REQUIRED: self.expressions.expr(Repeat(blank, 1, None)) if blank is not None else "",
        }

    def _blank_tree(self) -> Optional[Node]:
        trees = [self.lex.trees[name] for name in self.lex.ignore]
        if not trees:
            return None
        if len(trees) == 1 and isinstance(trees[0], Repeat) and trees[0].min == 1 and trees[0].max is None:
            return trees[0].item  # BLANK+ repeated is BLANK's own character repeated
        return trees[0] if len(trees) == 1 else Alt(tuple(trees))

    def _order(self) -> list:
        order, seen = [self.root], {self.root}
        k = 0
        while k < len(order):
            for prod in self.rules[order[k]]:
                for ref in _refs(prod):
                    if ref not in seen:
                        seen.add(ref)
                        order.append(ref)
            k += 1
        return order

    def _names(self) -> dict:
        order = self._order()
        by_label: dict[str, list] = defaultdict(list)
        for vid in order:
            by_label[_gbnf_name(_label(vid))].append(vid)
        taken = {_gbnf_name(t) for t in self.lex.trees}
        names = {}
        for label, vids in by_label.items():
            base = label if label not in taken or label == "root" else f"{label}-rule"
            for i, vid in enumerate(vids, 1):
                names[vid] = base if len(vids) == 1 else f"{base}-{i}"
        return names

    def _terminal(self, name: str) -> str:
        if name in self.lex.literals:
            return _string(self.lex.literals[name])
        return _gbnf_name(name)

    def _production(self, prod: Production) -> str:
        parts = []
        for item in prod:
            if item[0] == "sep":
                if self.sep[item[1]]:
                    parts.append(self.sep[item[1]])
            elif item[0] == "t":
                parts.append(self._terminal(item[1]))
            else:
                parts.append(self.names[item[1]])
        return " ".join(parts) if parts else '""'

    def text(self) -> str:
        lines = [
            "# The Boolean block query grammar as GBNF, generated by blockgen.export from",
            "# grammar/boolean_block.lark: do not edit. For llama.cpp's grammar sampler (without",
            "# llguidance) and xgrammar. Numbered rules (query-1, query-2) are copies of one Lark rule",
            "# for different neighbouring tokens: where a blank must separate two tokens, it is required.",
        ]
        for vid in self._order():
            prods = [p for p in self.rules[vid] if p != ()]
            optional = len(prods) < len(self.rules[vid])
            alts = [self._production(p) for p in prods]
            body = " | ".join(alts)
            if optional:
                body = f"({body})?"
            elif len(alts) > 1 and len(body) > 90:
                body = "(\n    " + "\n  | ".join(alts) + "\n)"
            lines.append(f"{self.names[vid]} ::= {body}")
        for name in sorted(self.lex.trees):
            if name not in self.lex.literals and name not in self.lex.ignore and self._used(name):
                lines.append(f"{_gbnf_name(name)} ::= {self.expressions.expr(self.lex.trees[name], top=True)}")
        return "\n".join(lines) + "\n"

    def _used(self, name: str) -> bool:
        def uses(prod: Production) -> bool:
            return any(i[0] == "t" and i[1] == name for i in prod)

        return any(uses(p) for prods in self.rules.values() for p in prods)


def _gbnf_name(name: str) -> str:
    """A GBNF rule name (letters, digits and dashes: llama.cpp allows no underscore)."""
    cleaned = "-".join(part for part in name.replace("$", "").split("_") if part)
    return cleaned or "rule"


# --------------------------------------------------------------------------- regex trees as GBNF
def _char(cp: int, in_class: bool) -> str:
    c = chr(cp)
    named = {9: "\\t", 10: "\\n", 13: "\\r"}
    if cp in named:
        return named[cp]
    if 0x20 <= cp < 0x7F:
        special = '\\]-[^"' if in_class else '\\"'
        if c not in special:
            return c
        return f"\\x{cp:02X}" if in_class else "\\" + c
    if cp < 0x80:
        return f"\\x{cp:02X}"
    # Raw UTF-8, not \\uXXXX: llguidance's GBNF reader (vLLM's guidance backend and SGLang
    # read GBNF with it) turns \\u00C0 into the invalid regex escape \\uC0.
    return c


def _string(text: str) -> str:
    return '"' + "".join(_char(ord(c), False) for c in text) + '"'


def _class(ranges: Ranges) -> str:
    negated = charset.complement(ranges)
    use, prefix = (negated, "^") if len(negated) < len(ranges) else (ranges, "")
    parts = []
    for lo, hi in use:
        if lo == hi:
            parts.append(_char(lo, True))
        elif hi == lo + 1:
            parts.append(_char(lo, True) + _char(hi, True))
        else:
            parts.append(f"{_char(lo, True)}-{_char(hi, True)}")
    return f"[{prefix}{''.join(parts)}]"


def _single(node: Node) -> Optional[int]:
    if isinstance(node, Chars) and len(node.ranges) == 1 and node.ranges[0][0] == node.ranges[0][1]:
        return node.ranges[0][0]
    return None


class _Expressions:
    """Regex trees as GBNF expressions.

    Character classes are written inline even when large (``\\p{L}`` has hundreds of
    ranges): in a one-off development measurement (5 Sim4IA queries, Llama 3 vocabulary)
    xgrammar 0.2.9 computed masks at ~600 ms p50 when a Unicode WORD's classes were rules
    referenced from inside its repetitions, and ~4 ms with the classes inline.
    """

    def expr(self, node: Node, top: bool = False) -> str:
        """``node`` as a GBNF expression (parenthesised unless ``top`` or atomic)."""
        if isinstance(node, Chars):
            cp = _single(node)
            return _string(chr(cp)) if cp is not None else _class(node.ranges)
        if isinstance(node, Seq):
            parts, run = [], ""
            for item in node.items:
                cp = _single(item)
                if cp is not None:
                    run += chr(cp)
                    continue
                if run:
                    parts.append(_string(run))
                    run = ""
                parts.append(self.expr(item))
            if run:
                parts.append(_string(run))
            if not parts:
                return '""'
            return parts[0] if len(parts) == 1 else (" ".join(parts) if top else "(" + " ".join(parts) + ")")
        if isinstance(node, Alt):
            body = " | ".join(self.expr(option, top=True) for option in node.options)
            return body if top else f"({body})"
        if isinstance(node, Repeat):
            inner = self.expr(node.item)
            if isinstance(node.item, Repeat):
                inner = f"({inner})"
            lo, hi = node.min, node.max
            suffix = {(0, None): "*", (1, None): "+", (0, 1): "?"}.get((lo, hi))
            if suffix is None:
                suffix = f"{{{lo}}}" if lo == hi else f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
            return inner + suffix
        raise TypeError(f"not a regex tree node: {node!r}")
