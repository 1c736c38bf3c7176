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


def _inline(query: Node, style: str) -> str:
    """One line; pieces written to a list with an explicit stack (any depth, linear time)."""
    out: list[str] = []
    stack: list[object] = [query]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node = item
        if not isinstance(node, (And, Or, Not)):
            out.append(_leaf(node))
            continue
        todo: list[object] = []
        for i, (op, child) in enumerate(_operands(node)):
            if op:
                todo.append(f" {op} ")
            if _needs_parens(child, node, i == 0, style):
                todo.extend(("(", child, ")"))
            else:
                todo.append(child)
        stack.extend(reversed(todo))
    return "".join(out)


def _pretty(query: Node) -> list[str]:
    """One concept block a line, nested groups indented (explicit stack, any depth).

    An operator before an inner operand that needs no parentheses goes in front of that
    operand's first line.
    """
    lines: list[str] = []
    pending = ""  # an operator waiting for the next line
    # ("node", node, indent) or ("line", indent, text) or ("prefix", text)
    stack: list[tuple] = [("node", query, 0)]
    while stack:
        task = stack.pop()
        if task[0] == "prefix":
            pending = task[1]
            continue
        if task[0] == "line":
            _, indent, text = task
            lines.append("  " * indent + pending + text)
            pending = ""
            continue
        _, node, indent = task
        if not isinstance(node, (And, Or, Not)):
            lines.append("  " * indent + pending + _leaf(node))
            pending = ""
            continue
        todo: list[tuple] = []
        for i, (op, child) in enumerate(_operands(node)):
            prefix = f"{op} " if op else ""
            if _needs_parens(child, node, i == 0, "pretty"):
                todo.extend((("line", indent, prefix + "("), ("node", child, indent + 1), ("line", indent, ")")))
            elif isinstance(child, (And, Or, Not)):
                todo.extend((("prefix", prefix), ("node", child, indent)))
            else:
                todo.append(("line", indent, prefix + _leaf(child)))
        stack.extend(reversed(todo))
    return lines


def format_query(query: Node, style: str = "canonical") -> str:
    """Format ``query`` as text in ``style`` (``canonical``, ``compact`` or ``pretty``).

    Any depth and size: the tree is walked with an explicit stack, in linear time."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if not isinstance(query, Node):
        raise TypeError(f"format() needs a parsed query, not {type(query).__name__}; use parse() first")
    if style == "pretty":
        return "\n".join(_pretty(query))
    return _inline(query, style)
