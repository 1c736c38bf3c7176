"""The functions the fuzz harness (:mod:`benchmarks.fuzz`) calls, and the invariants it checks.

A check takes one input text and calls one public function on it. Outcomes:

* it returns: the function held (or did not apply, e.g. ``format`` of text that does not parse);
* :class:`Broken`: an **invariant failure** (a wrong answer), with what was wrong;
* any other exception (``RecursionError``, ``ValueError`` where ``OvidError`` is promised,
  ``UnicodeEncodeError`` ...): a **crash**. Each function's documented errors (the
  ``allowed`` tuple) are answers, not crashes.

=====================  ================================================================
check                  invariants
=====================  ================================================================
parse                  raises only QuerySyntaxError; ``is_valid`` agrees; a valid query's
                       text round-trips (``parse(str(q)) == q``) and encodes as UTF-8
format                 (valid input) ``parse(blockgen.format(q, style)) == q`` for every style,
                       the same text as ``format_query``
write:pubmed/ovid/...  (valid input) ``blockgen.format(q, dialect=d)`` raises only
                       DialectError (nothing expressible left), writes a non-empty str, and
                       ``blockgen.parse(text, dialect=d)`` reads it back
repair                 raises only RepairError; the output parses to ``result.query``; the
                       identity on valid queries; idempotent; ``cut_off=True`` too
shortest_completion    ``None`` or a str ``c`` with ``is_valid(text + c)``; ``""`` on a valid query
convert_ovid           raises only OvidError; the query it returns is valid
read:pubmed/ovid/...   ``blockgen.parse(text, dialect=d)`` raises only QuerySyntaxError /
                       DialectError and returns a tree; Ovid's trees are valid in blockgen's
                       syntax (documented in :mod:`blockgen.dialects.ovid`)
extract_query          raises only AnswerError; returns an Extraction holding a str
=====================  ================================================================
"""

from __future__ import annotations

import warnings
from typing import Callable

import blockgen
from blockgen import STYLES, format_query, is_valid, shortest_completion
from blockgen.answers import AnswerError, Extraction, extract_query
from blockgen.dialects import DialectError
from blockgen.ovid import OvidError, convert_ovid
from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node
from blockgen.repair import RepairError, repair

__all__ = ["Broken", "CHECKS", "DIALECT_NAMES"]

#: The dialects other than blockgen's own.
DIALECT_NAMES = tuple(d for d in blockgen.DIALECTS if d != "blockgen")


class Broken(AssertionError):
    """An invariant failure: the function answered, but wrongly."""


def _must(condition: bool, message: str) -> None:
    if not condition:
        raise Broken(message)


def _valid_tree(query, what: str) -> None:
    text = str(query)
    try:
        again = parse(text)
    except QuerySyntaxError as err:
        raise Broken(f"{what} gave a tree whose text does not parse: {text[:80]!r} ({str(err).splitlines()[0]})") from None
    _must(again == query, f"{what} gave a tree that does not round-trip: {text[:80]!r}")


def check_parse(text: str) -> None:
    valid = is_valid(text)
    try:
        query = parse(text)
    except QuerySyntaxError:
        _must(not valid, "is_valid is True but parse raises QuerySyntaxError")
        return
    _must(valid, "parse succeeds but is_valid is False")
    canonical = str(query)
    try:
        canonical.encode("utf-8")
    except UnicodeEncodeError as err:
        raise Broken(f"a valid query cannot be encoded as UTF-8 ({err.reason} at {err.start})") from None
    _valid_tree(query, "parse")


def check_format(text: str) -> None:
    try:
        query = parse(text)
    except Exception:  # not a query (or a parse crash, which the parse check counts)
        return
    for style in STYLES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = blockgen.format(query, style=style)
        try:
            again = parse(out)
        except QuerySyntaxError:
            raise Broken(f"format(style={style!r}) wrote text that does not parse: {out[:80]!r}") from None
        _must(again == query, f"parse(format(q, style={style!r})) != q")
        _must(out == format_query(query, style), f"format(style={style!r}) and format_query differ")


def _check_write(dialect: str) -> Callable[[str], None]:
    def check(text: str) -> None:
        try:
            query = parse(text)
        except Exception:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                written = blockgen.format(query, dialect=dialect)
            except DialectError:  # nothing the dialect can express is left
                return
            _must(isinstance(written, str) and written.strip() != "", f"format(dialect={dialect!r}) wrote no text")
            try:
                blockgen.parse(written, dialect=dialect)
            except (QuerySyntaxError, DialectError) as err:
                raise Broken(f"{dialect} cannot read back what format(dialect={dialect!r}) wrote: "
                             f"{written[:80]!r} ({str(err).splitlines()[0][:100]})") from None

    check.__name__ = f"check_write_{dialect}"
    return check


def check_repair(text: str) -> None:
    # cut_off=True only changes anything when the text ends in a (possibly half-written) word
    ends_in_word = text[-1:].isalnum() or text[-1:] in ("*", "?")
    for cut_off in (False, True) if ends_in_word else (False,):
        try:
            result = repair(text, cut_off=cut_off)
        except RepairError:
            continue
        try:
            again = parse(result.text)
        except QuerySyntaxError as err:
            raise Broken(f"repair(cut_off={cut_off}) output does not parse: {result.text[:80]!r} ({str(err).splitlines()[0]})") from None
        _must(again == result.query, f"repair(cut_off={cut_off}) output text and tree differ")
        try:
            second = repair(result.text)
        except RepairError as err:
            raise Broken(f"repair(cut_off={cut_off}) is not idempotent: repair of its output {result.text[:60]!r} "
                         f"raises RepairError ({err})") from None
        _must(second.text == result.text and not second.edits, f"repair(cut_off={cut_off}) is not idempotent: {result.text[:60]!r} -> {second.text[:60]!r}")
        if not cut_off and is_valid(text):
            _must(result.query == parse(text) and not result.edits, "repair changed a valid query")


def check_shortest_completion(text: str) -> None:
    completion = shortest_completion(text)
    valid = is_valid(text)
    if completion is None:
        _must(not valid, "shortest_completion is None for a valid query")
        return
    _must(isinstance(completion, str), f"shortest_completion returned {type(completion).__name__}")
    _must(not valid or completion == "", f"shortest_completion of a valid query is {completion!r}, not ''")
    _must(is_valid(text + completion), f"text + shortest_completion {completion!r} does not parse")


def check_convert_ovid(text: str) -> None:
    try:
        conv = convert_ovid(text)
    except OvidError:
        return
    _valid_tree(conv.query, "convert_ovid")


def _check_read(dialect: str) -> Callable[[str], None]:
    def check(text: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                query = blockgen.parse(text, dialect=dialect)
            except (QuerySyntaxError, DialectError):
                return
        _must(isinstance(query, Node), f"parse(dialect={dialect!r}) returned a {type(query).__name__}")
        if dialect == "ovid":  # documented: every tree the Ovid reader makes is written in blockgen's syntax
            _valid_tree(query, f"parse(dialect={dialect!r})")

    check.__name__ = f"check_read_{dialect}"
    return check


def check_extract_query(text: str) -> None:
    try:
        found = extract_query(text)
    except AnswerError:
        return
    _must(isinstance(found, Extraction) and isinstance(found.text, str), "extract_query did not return an Extraction with text")


#: Check name -> the check. Allowed exceptions are caught inside each check.
CHECKS: dict[str, Callable[[str], None]] = {
    "parse": check_parse,
    "format": check_format,
    "repair": check_repair,
    "shortest_completion": check_shortest_completion,
    "convert_ovid": check_convert_ovid,
    **{f"write:{d}": _check_write(d) for d in DIALECT_NAMES},
    **{f"read:{d}": _check_read(d) for d in DIALECT_NAMES},
    "extract_query": check_extract_query,
}
