"""Turn a query tree back into text, in one of three styles.

* ``canonical`` (default, also ``str(query)``): one space around operators, every OR-group
  inside AND/NOT in parentheses, so the text means the same under any precedence convention:
  ``("climate change" OR "global warming") AND (social media OR Twitter) NOT "renewable energy"``
* ``compact``: the fewest parentheses this grammar needs (OR binds tighter than AND/NOT):
  ``"climate change" OR "global warming" AND social media OR Twitter NOT "renewable energy"``
* ``pretty``: one concept block a line, nested groups indented by two spaces.

For every style ``parse(format(q, style)) == q``.
"""

from __future__ import annotations

from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term

STYLES = ("canonical", "compact", "pretty")


def _leaf(node: Node) -> str:
    if isinstance(node, Term):
        return node.text + (f"[{node.tag}]" if node.tag else "")
    if isinstance(node, Phrase):
        return f'"{node.text}"' + (f"[{node.tag}]" if node.tag else "")
    if isinstance(node, Field):
        value = f'"{node.value}"' if node.quoted else node.value
        return f"{node.name}:{value}"
    if isinstance(node, Comparison):
        value = f'"{node.value}"' if node.quoted else node.value
        return f"{node.name}{node.op}{value}"
    raise TypeError(f"not a query node: {node!r}")


def _needs_parens(child: Node, parent: Node, first: bool, style: str) -> bool:
    """Whether ``child`` must be parenthesised as an operand of ``parent``."""
    if isinstance(parent, Or):
        return isinstance(child, (And, Not))
    # parent is And or Not: AND/NOT are one left-associative level below OR.
    if isinstance(child, Or):
        return style != "compact"
    if isinstance(child, And):
        return not (isinstance(parent, Not) and first)
    if isinstance(child, Not):
        return not first
    return False


def _operands(node: Node) -> list[tuple[str, Node]]:
    """``node``'s operands with the operator before each (first has ``""``)."""
    if isinstance(node, Or):
        return [("" if i == 0 else "OR", item) for i, item in enumerate(node.items)]
    if isinstance(node, And):
        return [("" if i == 0 else "AND", item) for i, item in enumerate(node.items)]
    assert isinstance(node, Not)
    return [("", node.positive), ("NOT", node.negative)]


def _inline(node: Node, style: str) -> str:
    if not isinstance(node, (And, Or, Not)):
        return _leaf(node)
    parts = []
    for i, (op, child) in enumerate(_operands(node)):
        text = _inline(child, style)
        if _needs_parens(child, node, i == 0, style):
            text = f"({text})"
        parts.append(f"{op} {text}" if op else text)
    return " ".join(parts)


def _pretty(node: Node, indent: int) -> list[str]:
    pad = "  " * indent
    if not isinstance(node, (And, Or, Not)):
        return [pad + _leaf(node)]
    lines: list[str] = []
    for i, (op, child) in enumerate(_operands(node)):
        prefix = f"{op} " if op else ""
        if _needs_parens(child, node, i == 0, "pretty"):
            inner = _pretty(child, indent + 1)
            lines.append(f"{pad}{prefix}(")
            lines.extend(inner)
            lines.append(f"{pad})")
        elif isinstance(child, (And, Or, Not)):
            inner = _pretty(child, indent)
            inner[0] = pad + prefix + inner[0][len(pad):]
            lines.extend(inner)
        else:
            lines.append(f"{pad}{prefix}{_leaf(child)}")
    return lines


def format_query(query: Node, style: str = "canonical") -> str:
    """Format ``query`` as text in ``style`` (``canonical``, ``compact`` or ``pretty``)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if not isinstance(query, Node):
        raise TypeError(f"format() needs a parsed query, not {type(query).__name__}; use parse() first")
    if style == "pretty":
        return "\n".join(_pretty(query, 0))
    return _inline(query, style)
