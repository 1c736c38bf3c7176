"""blockgen: make a language model write valid Boolean block search queries, every time."""

from blockgen.formatter import STYLES, format_query
from blockgen.parser import QuerySyntaxError, is_valid, parse, validate
from blockgen.query import And, Block, Comparison, Field, Node, Not, Or, Phrase, Query, Term, blocks, terms
from blockgen.ovid import OvidConversion, OvidError, convert_ovid, from_ovid
from blockgen.repair import Edit, RepairError, RepairResult, repair, try_repair

#: ``blockgen.format(query, style=...)``: same as :func:`format_query`.
format = format_query

__all__ = [
    "And", "Block", "Comparison", "Field", "Node", "Not", "Or", "Phrase", "Query", "Term",
    "QuerySyntaxError", "STYLES", "blocks", "format", "format_query", "is_valid", "parse",
    "terms", "validate", "Edit", "RepairError", "RepairResult", "repair", "try_repair",
    "OvidConversion", "OvidError", "convert_ovid", "from_ovid",
]
__version__ = "0.1.0"
