"""Which parts of a ``$filter`` need Graph's advanced query mode (``ConsistencyLevel: eventual``
and ``$count=true``)."""

from __future__ import annotations

from ..schema import (
    ADVANCED_ONLY,
)
from .nodes import And, Call, Compare, Count, In, Lambda, Literal, Node, Not, Or, Property

ADVANCED_QUERY_HINT = (
    "is not supported because the required parameters might be missing. Try adding $count=true "
    "query parameter and ConsistencyLevel:eventual header. Refer to "
    "https://aka.ms/graph-docs/advanced-queries for more information"
)


def advanced_operators(node: Node) -> list[str]:
    """Operators in the filter that Graph only accepts in advanced-query mode
    (``ConsistencyLevel: eventual`` plus ``$count=true``), in order of appearance."""
    found: list[str] = []

    def visit(item: Node | None) -> None:
        if item is None:
            return
        name = None
        if isinstance(item, Compare) and item.operator == "ne":
            name = "ne"
        elif isinstance(item, Not):
            name = "not"
        elif isinstance(item, Call) and item.function == "endswith":
            name = "endsWith"
        elif isinstance(item, Count):
            name = "$count"
        if name and name not in found:
            found.append(name)
        for child in _children(item):
            visit(child)

    visit(node)
    return found


def advanced_properties(node: Node) -> list[str]:
    """Properties the filter compares in a way Graph serves only in advanced-query mode, in
    order of appearance: any comparison, ``in`` or ``startsWith`` on a property of
    ``schema.ADVANCED_ONLY``, and a comparison with ``null`` (the "null values" column of
    Graph's filter table marks it Advanced for every user property that accepts it)."""
    found: list[str] = []

    def note(operand: Node) -> None:
        if isinstance(operand, Property) and operand.variable is None and operand.path:
            name = operand.text
            if name not in found:
                found.append(name)

    def advanced_only(operand: Node) -> bool:
        return (
            isinstance(operand, Property)
            and bool(operand.path)
            and (operand.variable is None and operand.path[0] in ADVANCED_ONLY)
        )

    def visit(item: Node | None) -> None:
        if item is None:
            return
        if isinstance(item, Compare):
            for side, other in ((item.left, item.right), (item.right, item.left)):
                null = isinstance(other, Literal) and other.kind == "null"
                if advanced_only(side) or null:
                    note(side)
        elif isinstance(item, In | Call):
            subject = item.operand if isinstance(item, In) else item.subject
            if advanced_only(subject):
                note(subject)
        for child in _children(item):
            visit(child)

    visit(node)
    return found


def _children(node: Node) -> tuple[Node | None, ...]:
    if isinstance(node, (And, Or)):
        return (node.left, node.right)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, In):
        return (node.operand,)
    if isinstance(node, Call):
        return (node.subject, node.prefix)
    if isinstance(node, Lambda):
        return (node.body,)
    return ()
