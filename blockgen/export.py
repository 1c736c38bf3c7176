"""The Boolean block grammar for other inference engines, generated from ``grammar/boolean_block.lark``.

>>> from blockgen import export
>>> text = export.grammar("vllm")        # vLLM (guidance backend) and SGLang (llguidance backend)
>>> text = export.grammar("llama.cpp")   # llama.cpp built with LLAMA_LLGUIDANCE=ON
>>> text = export.grammar("gbnf")        # llama.cpp's own grammar engine, xgrammar (vLLM's default)

Every export is computed from the grammar file when asked for: there is no second copy to
drift. The Lark exports are the file itself (comment lines dropped) behind llguidance's
``%llguidance {}`` header. The GBNF export is derived by walking lark's own reading of the
file (its rules, its LALR states, its terminals' regexes) and spelling out what blockgen's
contextual longest-match lexer does implicitly (see :mod:`blockgen.gbnf`).

Targets:

``"vllm"`` (alias ``"sglang"``)
    Lark text for ``StructuredOutputsParams(grammar=...)``. vLLM hands grammars to llguidance
    with ``grammar_from("grammar", text)``, which reads a text with a line starting
    ``%llguidance`` or ``start:`` as Lark. The header matters with vLLM's default ``auto``
    backend: xgrammar is tried first, and xgrammar would convert the Lark rules without a
    lexer (a different language); it refuses the ``%llguidance`` directive, so vLLM falls
    back to its guidance backend. SGLang's ``--grammar-backend llguidance`` reads the same text.
``"llama.cpp"``
    The same Lark text: llama.cpp hands a grammar that *starts* with ``%llguidance`` to
    llguidance (builds with ``-DLLAMA_LLGUIDANCE=ON``) and reads anything else as GBNF.
``"gbnf"``
    GBNF (root rule ``root``) for llama.cpp without llguidance, llama-cpp-python's
    ``LlamaGrammar.from_string`` and xgrammar's ``Grammar.from_ebnf`` (vLLM's ``xgrammar``
    backend compiles a grammar containing ``::=`` as EBNF).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

#: Export targets accepted by :func:`grammar` (``"sglang"`` is an alias of ``"vllm"``).
TARGETS = ("vllm", "sglang", "llama.cpp", "gbnf")

LLGUIDANCE_HEADER = "%llguidance {}"


class ExportError(ValueError):
    """The grammar cannot be exported to the target (an unknown target, or a construct it cannot express)."""


def grammar(target: str, parser: Optional[Any] = None) -> str:
    """The Boolean block grammar as text for ``target`` (one of :data:`TARGETS`).

    ``parser``: the ``lark.Lark`` LALR parser to export (default: blockgen's own,
    :func:`blockgen.grammar.lark_parser`); the Lark exports use its source text.
    Raises :class:`ExportError` for an unknown target or a grammar the target cannot express.
    """
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if parser is None:
        return _own(target)
    return _export(target, parser)


@lru_cache(maxsize=None)
def _own(target: str) -> str:
    """The export of blockgen's own grammar (computed once per process: the GBNF takes ~1 s)."""
    from blockgen.grammar import lark_parser

    return _export(target, lark_parser())


def _export(target: str, parser: Any) -> str:
    if target == "gbnf":
        from blockgen.gbnf import to_gbnf

        return to_gbnf(parser)
    return llguidance_lark(_source(parser))


def llguidance_lark(source: str) -> str:
    """Lark text for llguidance: the ``%llguidance {}`` header, then ``source`` without comment lines."""
    lines = [line.rstrip() for line in source.splitlines() if not line.lstrip().startswith("//")]
    body = "\n".join(lines).strip("\n")
    while "\n\n\n" in body:
        body = body.replace("\n\n\n", "\n\n")
    return f"{LLGUIDANCE_HEADER}\n{body}\n"


def _source(parser: Any) -> str:
    source = getattr(parser, "source_grammar", None)
    if not isinstance(source, str):
        raise ExportError("the lark parser has no grammar text to export (build it from a grammar string)")
    return source
