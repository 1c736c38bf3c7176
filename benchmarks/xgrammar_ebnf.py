"""The Boolean block grammar in xgrammar's EBNF, for the reference measurement of xgrammar.

blockgen's grammar (``grammar/boolean_block.lark``) is read by lexer-based engines (lark,
llguidance): the text is first cut into tokens, each the *longest* match, and ``%ignore``
drops whitespace between tokens. xgrammar is scannerless: ``xgrammar.Grammar.from_lark``
converts the Lark file rule by rule and turns ``%ignore`` into optional whitespace between
symbols. That changes the language: without a lexer ``AND`` can be read as the two words
``A`` ``ND`` (so ``x AND`` is accepted), ``aAND(b)`` as ``a AND (b)``, and leading
whitespace is refused.

So the reference grammar here is written by hand. It spells out what the lexer does
implicitly: after a word, an operator needs whitespace on both sides, since the lexer would
otherwise merge it into one longer WORD; after ``)``, a phrase or a field tag only an
operator can follow, so blockgen's contextual lexer reads ``(a)ANDb`` as ``(a) AND b``;
everywhere else whitespace is optional. Because OR-blocks joined by AND/NOT
accept the same strings as units joined by any of the three operators, the EBNF tracks only
whether the text so far ends with a word character. :func:`agreement` measures how often
xgrammar with this EBNF and blockgen's parser agree on a corpus of strings.
"""

from __future__ import annotations

from typing import Callable, Iterable

_LETTER = "0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё"
_WS = r"[ \t\r\n]"
# The characters of \s (Unicode White_Space) from U+0020 up: a phrase needs one that is
# none of them (the Lark file says [^"\s...]; xgrammar's classes have no \s).
_BLANKS = r" \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _not(letter: str) -> str:
    """The letter class without ``letter`` (``A-Z`` split around it)."""
    i = ord(letter) - ord("A")
    before = "A" if i == 1 else f"A-{chr(ord(letter) - 1)}" if i > 1 else ""
    after = "Z" if letter == "Y" else f"{chr(ord(letter) + 1)}-Z" if letter != "Z" else ""
    return _LETTER.replace("A-Z", before + after)


def _next(letters: str = _LETTER) -> str:
    """One more character of a word: a letter, a wildcard, or inner punctuation plus a letter."""
    return rf"([{letters}*?] | [\-'./&] [{_LETTER}])"


_N = _next()
# WORD is written out in one rule with inline character classes: xgrammar 0.2.8 computes
# masks about 100x slower when a repeated element refers to another rule (measured here:
# ~35 ms vs ~0.4 ms per mask for the same words-only language).
_FIRST = "0-9B-MP-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё"
_WORD = (
    f"[{_FIRST}] {_N}*"
    f' | "A" ({_next(_not("N"))} {_N}* | "N" ({_next(_not("D"))} {_N}* | "D" {_N}+)?)?'
    f' | "O" ({_next(_not("R"))} {_N}* | "R" {_N}+)?'
    f' | "N" ({_next(_not("O"))} {_N}* | "O" ({_next(_not("T"))} {_N}* | "T" {_N}+)?)?'
)


def _grammar(ws_plus: str, ws_star: str) -> str:
    """The EBNF text with ``ws_plus`` where whitespace is required and ``ws_star`` where optional."""
    return rf"""
root ::= {ws_star} query {ws_star}

# A query: units joined by AND / OR / NOT. after_w / after_c continue a text that ends
# with a word character (needs whitespace before an operator) or with ) " ] (does not).
query ::= unit_ww after_w | unit_wx after_x | unit_wc after_c | unit_cc after_c
# After a word, an operator needs whitespace on both sides (else the lexer reads one longer
# word: `a ANDb` is the two words `a` `ANDb`). After ) " ] only an operator can follow, so
# the lexer takes it as one even with no whitespace around it: `(a)ANDb` is `(a) AND b`.
# A field or comparison value that is a word (unit_wx) needs whitespace before the operator,
# but as only an operator can follow it, none after: `a:b ORc` is `a:b OR c`.
after_w ::= "" | {ws_plus} op next_w
after_x ::= "" | {ws_plus} op next_c
after_c ::= "" | {ws_star} op next_c
next_w ::= {ws_plus} unit_ww after_w | {ws_plus} unit_wx after_x | {ws_plus} unit_wc after_c | {ws_star} unit_cc after_c
next_c ::= {ws_star} unit_ww after_w | {ws_star} unit_wx after_x | {ws_star} unit_wc after_c | {ws_star} unit_cc after_c
op ::= "AND" | "OR" | "NOT"

# Units by their first/last character: w = word character, c = ( " ) ] and the like.
unit_ww ::= words
unit_wx ::= WORD {ws_star} ":" {ws_star} WORD | WORD {ws_star} CMP {ws_star} WORD
unit_wc ::= words {ws_star} TAG | WORD {ws_star} ":" {ws_star} PHRASE | WORD {ws_star} CMP {ws_star} PHRASE
unit_cc ::= "(" {ws_star} query {ws_star} ")" | PHRASE | PHRASE {ws_star} TAG
words ::= WORD ({ws_plus} WORD)*

CMP ::= ">=" | "<=" | ">" | "<" | "="
PHRASE ::= "\"" [^"\x00-\x1f\x7f]* [^"{_BLANKS}\x00-\x1f\x7f] [^"\x00-\x1f\x7f]* "\""
TAG ::= "[" [A-Za-z] [A-Za-z /:~0-9\-]* "]"

# A word, never exactly AND, OR or NOT (spelled out letter by letter, as in the Lark file).
WORD ::= {_WORD}
"""


#: The grammar in xgrammar's EBNF dialect (root rule ``root``): the same language as the Lark file.
EBNF = _grammar(f"{_WS}+", f"{_WS}*")

#: A narrower variant: whitespace is one space (required) or at most one space (optional).
#: Not the same language (no tabs, newlines or runs of spaces); measured because xgrammar
#: 0.2.8 computes a mask after a word ~100x faster with it (a repeated whitespace class
#: before a word makes the ~60k tokens that start with a space context-dependent for it).
EBNF_SINGLE_SPACE = _grammar('" "', '" "?')

GRAMMARS = {"ebnf": EBNF, "ebnf_single_space": EBNF_SINGLE_SPACE}


def single_spaced(text: str) -> bool:
    """True if ``text`` has no whitespace but single spaces (the language of EBNF_SINGLE_SPACE)."""
    return "  " not in text and not any(c in text for c in "\t\r\n")


def xgrammar_accepts(compiled_grammar) -> Callable[[str], bool]:
    """A function telling whether a compiled xgrammar grammar accepts a whole string."""
    import xgrammar as xgr

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled_grammar, terminate_without_stop_token=True)
        return bool(matcher.accept_string(text)) and bool(matcher.is_terminated() or _can_end(matcher))

    def _can_end(matcher) -> bool:
        # is_terminated() is true only after the stop token; ask whether the stop token is allowed.
        stop = matcher.stop_token_ids
        return bool(stop) and bool(matcher.accept_token(stop[0]))

    return accepts


def agreement(texts: Iterable[str], accepts: Callable[[str], bool], reference: Callable[[str], bool]) -> tuple[int, list[str]]:
    """How many of ``texts`` two acceptors agree on, and the texts they disagree on."""
    agree, differ = 0, []
    for text in texts:
        if accepts(text) == reference(text):
            agree += 1
        else:
            differ.append(text)
    return agree, differ
