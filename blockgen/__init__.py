"""blockgen: make a language model write valid Boolean block search queries, every time."""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any, Union

#: Public names and the module each comes from. They are imported on first use (PEP 562), so
#: ``import blockgen`` stays light: a fresh process pays only for what it touches (the
#: decoding engine's cold start does not load the dialects, repair or evaluation code, nor
#: torch and transformers for the generation API).
_LAZY: dict[str, str] = {
    **dict.fromkeys(["Extraction", "extract_query"], "blockgen.answers"),
    **dict.fromkeys(
        ["DIALECTS", "Dialect", "DialectError", "DialectSyntaxError", "DialectWarning", "Note", "Reading", "Translation",
         "Writing", "get_dialect", "read", "translate", "warn", "write"],
        "blockgen.dialects",
    ),
    **dict.fromkeys(["Document", "evaluate", "select"], "blockgen.evaluate"),
    **dict.fromkeys(["STYLES", "format_query"], "blockgen.formatter"),
    **dict.fromkeys(["QuerySyntaxError", "is_valid", "validate"], "blockgen.parser"),
    **dict.fromkeys(["And", "Block", "Comparison", "Field", "Node", "Not", "Or", "Phrase", "Query", "Term", "blocks", "terms"], "blockgen.query"),
    **dict.fromkeys(["OvidConversion", "OvidError", "convert_ovid", "from_ovid"], "blockgen.ovid"),
    **dict.fromkeys(["Edit", "RepairError", "RepairResult", "repair", "shortest_completion", "try_repair"], "blockgen.repair"),
    "ExportError": "blockgen.export",
    **dict.fromkeys(["drop_repeated_terms", "repeated_terms", "term_key"], "blockgen.repeats"),
    # the generation API needs torch and transformers
    **dict.fromkeys(["QueryGenerator", "GeneratedQuery", "GenerationError", "ModelLoadError", "AdapterMismatchError", "Sampling"], "blockgen.generate"),
    "generate_on_ray": "blockgen.distributed",  # Ray batch generation (needs torch; Ray only when called)
    **dict.fromkeys(["Reranker", "generate_reranked"], "blockgen.rerank"),
    **dict.fromkeys(["Lexicon", "english_lexicon"], "blockgen.lexicon"),
}
#: Submodules offered as attributes (``blockgen.export.grammar(...)``).
_SUBMODULES = {"export"}

if TYPE_CHECKING:  # static analysers see the eager imports
    from blockgen import export
    from blockgen.answers import Extraction, extract_query
    from blockgen.dialects import (
        DIALECTS, Dialect, DialectError, DialectSyntaxError, DialectWarning, Note, Reading, Translation, Writing,
        get_dialect, read, translate, warn, write,
    )
    from blockgen.distributed import generate_on_ray
    from blockgen.evaluate import Document, evaluate, select
    from blockgen.export import ExportError
    from blockgen.formatter import STYLES, format_query
    from blockgen.generate import AdapterMismatchError, GeneratedQuery, GenerationError, ModelLoadError, QueryGenerator, Sampling
    from blockgen.ovid import OvidConversion, OvidError, convert_ovid, from_ovid
    from blockgen.parser import QuerySyntaxError, is_valid, validate
    from blockgen.query import And, Block, Comparison, Field, Node, Not, Or, Phrase, Query, Term, blocks, terms
    from blockgen.repair import Edit, RepairError, RepairResult, repair, shortest_completion, try_repair
    from blockgen.repeats import drop_repeated_terms, repeated_terms, term_key
    from blockgen.lexicon import Lexicon, english_lexicon
    from blockgen.rerank import Reranker, generate_reranked

__version__ = "0.1.0"


def parse(text: str, dialect: Union[str, "Dialect"] = "blockgen") -> "Node":
    """Parse ``text`` into a query tree, reading it as ``dialect`` reads it.

    ``"blockgen"`` (default) is the grammar: :func:`blockgen.parser.parse`, unchanged.
    ``"pubmed"``, ``"ovid"`` and ``"lucene"`` read by those engines' rules
    (:mod:`blockgen.dialects`); what the reader decided or dropped is issued as a
    :class:`DialectWarning` each (use :func:`read` to get the notes instead). Unreadable text
    raises :class:`QuerySyntaxError` (:class:`DialectSyntaxError` for the other dialects;
    :class:`OvidError` for an Ovid strategy without a usable query).
    """
    from blockgen.dialects import read, warn
    from blockgen.parser import parse as parse_blockgen

    if dialect == "blockgen":
        return parse_blockgen(text)
    reading = read(text, dialect)
    warn(dialect, reading.notes)
    return reading.query


def format(query: "Node", style: str = "canonical", dialect: Union[str, "Dialect"] = "blockgen") -> str:  # noqa: A001
    """Write ``query`` as text: in blockgen's syntax in ``style`` (``canonical``, ``compact``,
    ``pretty``; same as :func:`format_query`), or in ``dialect`` (``"pubmed"``, ``"ovid"``,
    ``"lucene"``) so that the engine executes what the tree means; what the dialect cannot
    express is issued as a :class:`DialectWarning` each (use :func:`write` to get the notes)."""
    from blockgen.dialects import get_dialect, warn, write

    if dialect == "blockgen":
        writing = get_dialect("blockgen").write(query) if style == "canonical" else _styled(query, style)
    else:
        if style != "canonical":
            raise ValueError(f"style={style!r} is for the blockgen dialect; {dialect!r} has one way to write")
        writing = write(query, dialect)
    warn(dialect, writing.notes)
    return writing.text


def _styled(query: "Node", style: str) -> "Writing":
    from blockgen.dialects.blockgen import Blockgen

    return Blockgen(style).write(query)


__all__ = [
    "And", "Block", "Comparison", "Field", "Node", "Not", "Or", "Phrase", "Query", "Term",
    "QuerySyntaxError", "STYLES", "blocks", "format", "format_query", "is_valid", "parse",
    "terms", "validate", "Edit", "RepairError", "RepairResult", "repair", "shortest_completion", "try_repair",
    "OvidConversion", "OvidError", "convert_ovid", "from_ovid",
    "DIALECTS", "Dialect", "DialectError", "DialectSyntaxError", "DialectWarning", "Note", "Reading", "Translation",
    "Writing", "get_dialect", "read", "translate", "write",
    "Document", "evaluate", "select", "Extraction", "extract_query",
    "QueryGenerator", "GeneratedQuery", "GenerationError", "ModelLoadError", "AdapterMismatchError", "Sampling",
    "drop_repeated_terms", "repeated_terms", "term_key",
    "export", "ExportError", "generate_on_ray",
    "Reranker", "generate_reranked",
    "Lexicon", "english_lexicon",
]

def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562) and keep it."""
    if name in _SUBMODULES:
        value = importlib.import_module(f"blockgen.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'blockgen' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


class _Package(types.ModuleType):
    """``blockgen`` itself. Importing a submodule binds its name on the package; where a public
    function has the submodule's name (``blockgen.repair``, ``blockgen.evaluate``), the
    function is bound instead, as the eager imports used to do."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
