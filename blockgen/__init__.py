"""blockgen: make a language model write valid Boolean block search queries, every time."""

from blockgen.formatter import STYLES, format_query
from blockgen.parser import QuerySyntaxError, is_valid, parse, validate
from blockgen.query import And, Block, Comparison, Field, Node, Not, Or, Phrase, Query, Term, blocks, terms
from blockgen.ovid import OvidConversion, OvidError, convert_ovid, from_ovid
from blockgen.repair import Edit, RepairError, RepairResult, repair, shortest_completion, try_repair

__version__ = "0.1.0"

#: ``blockgen.format(query, style=...)``: same as :func:`format_query`.
format = format_query

__all__ = [
    "And", "Block", "Comparison", "Field", "Node", "Not", "Or", "Phrase", "Query", "Term",
    "QuerySyntaxError", "STYLES", "blocks", "format", "format_query", "is_valid", "parse",
    "terms", "validate", "Edit", "RepairError", "RepairResult", "repair", "shortest_completion", "try_repair",
    "OvidConversion", "OvidError", "convert_ovid", "from_ovid",
    "QueryGenerator", "GeneratedQuery", "GenerationError", "ModelLoadError", "AdapterMismatchError",
    "Reranker", "generate_reranked",
]

# The generation API needs torch and transformers; it is imported on first use, so that
# parsing, formatting and repair stay light (``import blockgen`` does not load torch).
_GENERATION = {"QueryGenerator", "GeneratedQuery", "GenerationError", "ModelLoadError", "AdapterMismatchError"}


_RERANK = {"Reranker", "generate_reranked"}


def __getattr__(name: str):
    if name in _GENERATION:
        from blockgen import generate

        return getattr(generate, name)
    if name in _RERANK:
        from blockgen import rerank

        return getattr(rerank, name)
    raise AttributeError(f"module 'blockgen' has no attribute {name!r}")
