"""What blockgen's lexer does between two tokens, worked out from a lark grammar.

blockgen's lark parser (:mod:`blockgen.grammar`) lexes *contextually* and *greedily*, as
llguidance does: in each LALR state it looks only for the terminals the parser can take
there (plus the ``%ignore``d ones), and a token goes on as long as the text read is still
the start of one of them. A scannerless grammar (GBNF) has no lexer, so it must say where a
blank is needed: between two tokens exactly when, without it, the lexer would read on from
the first token into the second. :class:`LexerModel` answers that from the terminals'
regexes (as automata, :mod:`blockgen.automaton`) and the parse table's lexing contexts.

Nothing here names a terminal of the Boolean block grammar: the same questions are asked of
every pair of neighbouring tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from blockgen import charset
from blockgen.automaton import DFA, Extension, extensions
from blockgen.charset import Ranges
from blockgen.export import ExportError
from blockgen.regex_tree import Node, RegexNotSupported, literal, parse

END = "$END"
REQUIRED, OPTIONAL = "required", "optional"


Needs = tuple  # (terminals that need a blank before them, terminals for which that depends on the token)


@dataclass(frozen=True)
class Boundary:
    """The lexer's situation after a token, reduced to what the following tokens depend on.

    ``needs``: which next terminals need a blank after the last token (and for which that
    depends on the exact token, an export error if one follows); ``ahead``: for each
    terminal the lexer looks for next whose own needs depend on the lexing context, its
    needs in this context (for the other terminals they are the same everywhere).
    """

    needs: Needs
    ahead: frozenset


class LexerModel:
    """The terminals of a lark grammar as automata, and its LALR states' lexing contexts."""

    def __init__(self, parser: Any):
        from lark.common import ParserConf
        from lark.parsers.lalr_analysis import LALR_Analyzer

        options = parser.options
        if options.parser != "lalr":
            raise ExportError(f"the export needs a LALR lark parser, not {options.parser!r}")
        if len(options.start) != 1:
            raise ExportError("the export needs a grammar with one start rule")
        engine = "regex" if options.regex else "re"
        self.ignore = tuple(parser.ignore_tokens)
        self.trees: dict[str, Node] = {}
        self.dfas: dict[str, DFA] = {}
        self.literals: dict[str, str] = {}
        for term in parser.terminals:
            pattern = term.pattern
            if pattern.type == "str" and not pattern.flags:
                self.literals[term.name] = pattern.value
                tree = literal(pattern.value)
            else:
                try:
                    tree = parse(pattern.to_regexp(), engine, options.g_regex_flags)
                except RegexNotSupported as err:
                    raise ExportError(f"terminal {term.name}: {err}") from None
            self.trees[term.name] = tree
            self.dfas[term.name] = DFA.from_tree(tree)
            if self.dfas[term.name].empty():
                raise ExportError(f"terminal {term.name} matches nothing")
            if self.dfas[term.name].matches(""):
                raise ExportError(f"terminal {term.name} matches the empty string, which no lexer can use")

        analyzer = LALR_Analyzer(ParserConf(list(parser.rules), {}, list(options.start)))
        analyzer.compute_lalr()
        self.start_state = analyzer.lr0_start_states[options.start[0]]
        self.rules_by_origin: dict[str, list] = {}
        for rule in parser.rules:
            self.rules_by_origin.setdefault(rule.origin.name, []).append(rule)
        self.start = options.start[0]
        self.lexed = tuple(name for name in self.trees if name not in self.ignore)
        self._contexts(analyzer.lr0_itemsets)

    def _contexts(self, states) -> None:
        """Which terminals' needs depend on the context they are read in (``variable``), and the others'."""
        seen: dict[str, set] = {}
        for state in states:
            context = self.accepts(state)
            for name in context - {END} - set(self.ignore):
                seen.setdefault(name, set()).add(self.needs(name, context))
        self.variable = frozenset(name for name, values in seen.items() if len(values) > 1)
        self.fixed = {name: next(iter(values)) for name, values in seen.items() if len(values) == 1}

    # ------------------------------------------------------------------ parser states
    @staticmethod
    def accepts(state: Any) -> frozenset[str]:
        """The terminals the contextual lexer looks for in ``state`` (shifts and reduce lookaheads)."""
        shifts = {sym.name for sym in state.transitions if sym.is_term}
        return frozenset(shifts | {sym.name for sym in state.lookaheads})

    def start_boundary(self) -> Boundary:
        """The situation before the first token: nothing to continue, the start state's context."""
        return Boundary((frozenset(), frozenset()), self.ahead(self.accepts(self.start_state)))

    # ------------------------------------------------------------------ tokens
    def first(self, name: str) -> Ranges:
        return self.dfas[name].first()

    @lru_cache(maxsize=None)
    def extension(self, name: str, context: frozenset[str]) -> Extension:
        """What continues a token of ``name`` read where the lexer looks for ``context`` (and the ignored)."""
        names = sorted((set(context) | set(self.ignore) | {name}) - {END})
        ext = extensions(self.dfas[name], [self.dfas[n] for n in names], names.index(name))
        if ext.overlaps:
            others = ", ".join(names[i] for i in sorted(ext.overlaps))
            raise ExportError(
                f"terminal {name} shares tokens with {others} where both are expected: which one the "
                "lexer takes depends on terminal order, which a grammar of characters cannot say"
            )
        for blank in self.ignore if name not in self.ignore else ():
            if charset.intersect(ext.some, self.first(blank)):
                raise ExportError(
                    f"a token of {name} can go on with a character that starts the ignored {blank}: "
                    "a blank after it would not end it"
                )
        return ext

    @lru_cache(maxsize=None)
    def needs(self, name: str, context: frozenset[str]) -> Needs:
        """After a token of ``name`` read in ``context``: the next terminals that need a blank before them."""
        ext = self.extension(name, context)
        required, unclear = set(), set()
        for other in self.lexed:
            first = self.first(other)
            if charset.is_subset(first, ext.every):
                required.add(other)
            elif charset.intersect(first, ext.some):
                unclear.add(other)
        return frozenset(required), frozenset(unclear)

    @lru_cache(maxsize=None)
    def ahead(self, context: frozenset[str]) -> frozenset:
        """The needs of the terminals read in ``context`` that are not the same in every context."""
        for name in context - {END} - set(self.ignore):
            for blank in self.ignore:
                if charset.intersect(self.extension(blank, context).some, self.first(name)):
                    raise ExportError(f"a blank ({blank}) would swallow the start of a {name} after it")
        return frozenset((name, self.needs(name, context)) for name in context - {END} if name in self.variable)

    def separator(self, before: Boundary, name: str) -> Optional[str]:
        """Whether a blank must come between the last token and a token of ``name``.

        Returns :data:`REQUIRED` or :data:`OPTIONAL`, or ``None`` if a blank is needed and the
        grammar ignores none (the two tokens can then never follow each other).
        """
        required, unclear = before.needs
        if name in unclear:
            raise ExportError(
                f"whether a blank is needed before {name} depends on the exact token before it "
                "(some of its first characters continue the previous token, others do not)"
            )
        if name not in required:
            return OPTIONAL
        return REQUIRED if self.ignore else None

    def after(self, before: Boundary, name: str, state: Any) -> Boundary:
        """The situation after a token of ``name`` read at ``before``, the parser now in ``state``."""
        needs = dict(before.ahead).get(name, self.fixed.get(name))
        if needs is None:
            raise ExportError(f"internal: {name} is shifted where the lexer does not look for it")
        return Boundary(needs, self.ahead(self.accepts(state)))
