"""Type checks of a parsed ``$filter``: unknown properties, non-conditions where a condition is
needed, and operands Graph would call incompatible (worded with the EDM type names)."""

from __future__ import annotations

from ..schema import (
    COMPLEX_TYPE_NAMES,
    Kind,
)
from .nodes import BOOLEAN_NODES, COMPARISONS, Count, FilterError, Literal, Node, Property


def unknown_property(name: str, owner: str) -> str:
    type_name = COMPLEX_TYPE_NAMES.get(owner, owner)
    return f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."


def require_condition(node: Node, text: str, where: str) -> None:
    if isinstance(node, BOOLEAN_NODES):
        return
    if isinstance(node, Literal) and node.kind == "boolean":
        return
    if isinstance(node, Property) and node.kind is Kind.BOOLEAN:
        return
    raise FilterError(
        f"Invalid filter clause: {where} must be a condition, found {_describe(node)} in '{text}'."
    )


def _describe(node: Node) -> str:
    if isinstance(node, Property):
        return f"property '{node.text}'" if node.path else f"variable '{node.variable}'"
    if isinstance(node, Literal):
        return f"literal {node.value!r}"
    if isinstance(node, Count):
        return f"'{node.collection.text}/$count'"
    return "an expression"


# The EDM names OData uses in its type errors, so our messages read like Graph's.
_EDM = {
    "string": "Edm.String",
    "boolean": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "guid": "Edm.Guid",
    "number": "Edm.Int32",
    "null": None,
}
KIND_EDM = {
    Kind.STRING: "Edm.String",
    Kind.BOOLEAN: "Edm.Boolean",
    Kind.DATETIME: "Edm.DateTimeOffset",
    Kind.GUID: "Edm.Guid",
}


def _edm_type(node: Node) -> str | None:
    if isinstance(node, Literal):
        return _EDM[node.kind]
    if isinstance(node, Count):
        return "Edm.Int32"
    if isinstance(node, Property):
        return KIND_EDM.get(node.kind, "collection" if node.kind.is_collection else "complex")
    return "Edm.Boolean"  # comparisons, calls, lambdas and logical operators


def check_operands(operator: str, left: Node, right: Node, text: str, position: int) -> None:
    for side in (left, right):
        if isinstance(side, Property) and side.kind.is_collection:
            raise FilterError(
                f"Invalid filter clause: '{side.text}' is a collection and cannot be compared "
                f"directly; use {side.text}/any(x:x {operator} ...) or {side.text}/$count "
                f"(at position {position} in '{text}')."
            )
        if isinstance(side, Property) and side.kind is Kind.COMPLEX and side.path:
            raise FilterError(
                f"Invalid filter clause: '{side.text}' is a complex property; "
                f"compare one of its members (at position {position} in '{text}')."
            )
    left_type, right_type = _edm_type(left), _edm_type(right)
    if left_type is None or right_type is None or left_type == right_type:
        return
    raise FilterError(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left_type}' and '{right_type}' for operator kind '{COMPARISONS[operator]}'."
    )


def is_string_valued(node: Node) -> bool:
    return isinstance(node, Property) and node.kind in (Kind.STRING, Kind.GUID)
