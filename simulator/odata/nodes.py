"""The parsed form of a ``$filter``: literals, property paths, comparisons, calls, lambdas
and the logical operators, plus the error every stage raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ..schema import (
    Kind,
)


class FilterError(ValueError):
    """A filter Graph would answer with 400; the message is Graph-styled and names the problem."""


@dataclass(frozen=True)
class Literal:
    value: object
    kind: str  # "string" | "boolean" | "null" | "number" | "guid" | "datetime"


@dataclass(frozen=True)
class Property:
    """A path from the user (``variable`` None) or from a lambda variable."""

    path: tuple[str, ...]
    kind: Kind
    variable: str | None = None

    @property
    def text(self) -> str:
        return "/".join(((self.variable,) if self.variable else ()) + self.path)


@dataclass(frozen=True)
class Count:
    collection: Property


@dataclass(frozen=True)
class Lambda:
    collection: Property
    quantifier: str  # "any" | "all"
    variable: str | None
    body: Node | None


@dataclass(frozen=True)
class Compare:
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    operand: Node
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Call:
    function: str  # "startswith" | "endswith"
    subject: Node
    prefix: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node: TypeAlias = Literal | Property | Count | Lambda | Compare | In | Call | And | Or | Not


COMPARISONS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
BOOLEAN_NODES = (Compare, In, Call, And, Or, Not, Lambda)
