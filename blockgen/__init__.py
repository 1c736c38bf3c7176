"""blockgen: make a language model write valid Boolean block search queries, every time."""

from __future__ import annotations

from typing import Union

from blockgen.answers import Extraction, extract_query
from blockgen.dialects import (
    DIALECTS, Dialect, DialectError, DialectSyntaxError, DialectWarning, Note, Reading, Translation, Writing,
    get_dialect, read, translate, warn, write,
)
from blockgen.evaluate import Document, evaluate, select
from blockgen.formatter import STYLES, format_query
from blockgen.parser import QuerySyntaxError, is_valid, validate
from blockgen.parser import parse as _parse_blockgen
from blockgen.query import And, Block, Comparison, Field, Node, Not, Or, Phrase, Query, Term, blocks, terms
from blockgen.ovid import OvidConversion, OvidError, convert_ovid, from_ovid
from blockgen.repair import Edit, RepairError, RepairResult, repair, shortest_completion, try_repair
from blockgen import export
from blockgen.export import ExportError
from blockgen.repeats import drop_repeated_terms, repeated_terms, term_key

__version__ = "0.1.0"


def parse(text: str, dialect: Union[str, Dialect] = "blockgen") -> Node:
    """Parse ``text`` into a query tree, reading it as ``dialect`` reads it.

    ``"blockgen"`` (default) is the grammar: :func:`blockgen.parser.parse`, unchanged.
    ``"pubmed"``, ``"ovid"`` and ``"lucene"`` read by those engines' rules
    (:mod:`blockgen.dialects`); what the reader decided or dropped is issued as a
    :class:`DialectWarning` each (use :func:`read` to get the notes instead). Unreadable text
    raises :class:`QuerySyntaxError` (:class:`DialectSyntaxError` for the other dialects;
    :class:`OvidError` for an Ovid strategy without a usable query).
    """
    if dialect == "blockgen":
        return _parse_blockgen(text)
    reading = read(text, dialect)
    warn(dialect, reading.notes)
    return reading.query


def format(query: Node, style: str = "canonical", dialect: Union[str, Dialect] = "blockgen") -> str:  # noqa: A001
    """Write ``query`` as text: in blockgen's syntax in ``style`` (``canonical``, ``compact``,
    ``pretty``; same as :func:`format_query`), or in ``dialect`` (``"pubmed"``, ``"ovid"``,
    ``"lucene"``) so that the engine executes what the tree means; what the dialect cannot
    express is issued as a :class:`DialectWarning` each (use :func:`write` to get the notes)."""
    if dialect == "blockgen":
        writing = get_dialect("blockgen").write(query) if style == "canonical" else _styled(query, style)
    else:
        if style != "canonical":
            raise ValueError(f"style={style!r} is for the blockgen dialect; {dialect!r} has one way to write")
        writing = write(query, dialect)
    warn(dialect, writing.notes)
    return writing.text


def _styled(query: Node, style: str) -> Writing:
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

# The generation API needs torch and transformers; it is imported on first use, so that
# parsing, formatting and repair stay light (``import blockgen`` does not load torch).
_GENERATION = {"QueryGenerator", "GeneratedQuery", "GenerationError", "ModelLoadError", "AdapterMismatchError", "Sampling"}


_RERANK = {"Reranker", "generate_reranked"}
_LEXICON = {"Lexicon", "english_lexicon"}


def __getattr__(name: str):
    if name in _GENERATION:
        from blockgen import generate

        return getattr(generate, name)
    if name == "generate_on_ray":  # Ray batch generation (needs torch; Ray only when called)
        from blockgen.distributed import generate_on_ray

        return generate_on_ray
    if name in _RERANK:
        from blockgen import rerank

        return getattr(rerank, name)
    if name in _LEXICON:
        from blockgen import lexicon

        return getattr(lexicon, name)
    raise AttributeError(f"module 'blockgen' has no attribute {name!r}")
