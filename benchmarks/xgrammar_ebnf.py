"""The Boolean block grammar for xgrammar, for the reference measurement of xgrammar.

blockgen's grammar (``grammar/boolean_block.lark``) is read by lexer-based engines (lark,
llguidance): the text is first cut into tokens, each the *longest* match, and ``%ignore``
drops whitespace between tokens. xgrammar is scannerless: ``xgrammar.Grammar.from_lark``
converts the Lark file rule by rule and turns ``%ignore`` into optional whitespace between
symbols. That changes the language: without a lexer ``AND`` can be read as the two words
``A`` ``ND`` (so ``x AND`` is accepted), ``aAND(b)`` as ``a AND (b)``, and leading
whitespace is refused.

So the reference grammar is blockgen's GBNF export (:func:`blockgen.export.grammar`
``("gbnf")``), generated from the Lark file with the lexer's behaviour spelled out: where
a blank must separate two tokens, and where it may be left out. :func:`agreement` measures
how often xgrammar with it and blockgen's parser agree on a corpus of strings.
"""

from __future__ import annotations

from typing import Callable, Iterable


def ebnf() -> str:
    """The grammar in xgrammar's EBNF (GBNF) dialect, root rule ``root``: the export, same language as the Lark file."""
    from blockgen.export import grammar

    return grammar("gbnf")


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
