"""The ``$filter`` language of Graph's ``/users``: tokenizer, recursive-descent parser, evaluator.

A real parser (not regexes) so that the app's generated filters fail here for the same reasons
they would fail against Graph: syntax errors, unknown properties, incompatible operand types, and
operators that need Graph's "advanced query" mode.

Grammar (keywords and function names are matched case-insensitively, as Graph does)::

    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand | "in" "(" literal, ... ")"]
    operand    := "(" or_expr ")" | ("startswith"|"endswith") "(" operand "," operand ")"
                | literal | path
    path       := NAME ("/" (NAME | "$count" | ("any"|"all") "(" [NAME ":" or_expr] ")"))*

``not`` applies to the whole comparison after it (``not a eq 'x'`` means ``not (a eq 'x')``);
strict OData would bind it to ``a`` alone and reject the filter, Graph's users write it either way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from .schema import (
    ADVANCED_ONLY,
    COMPLEX_TYPE_NAMES,
    Kind,
    canonical_property,
    member_kind,
    property_kind,
)


class FilterError(ValueError):
    """A filter Graph would answer with 400; the message is Graph-styled and names the problem."""


# ---------------------------------------------------------------------------------------- AST


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

# ---------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # "string" "guid" "datetime" "number" "name" "(" ")" "," ":" "/" "end"
    text: str
    position: int
    value: object = None


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "guid",
        re.compile(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
            r"(?![\w-])"
        ),
    ),
    (
        "datetime",
        re.compile(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:\d{2})(?![\w:])"
        ),
    ),
    ("number", re.compile(r"-?\d+(?:\.\d+)?(?![\w.])")),
    ("name", re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")),
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char in "(),:/":
            tokens.append(Token(char, char, position))
            position += 1
            continue
        if char == "'":
            tokens.append(_string_token(text, position))
            position += len(tokens[-1].text)
            continue
        for kind, pattern in _PATTERNS:
            match = pattern.match(text, position)
            if match:
                tokens.append(Token(kind, match.group(), position))
                position = match.end()
                break
        else:
            raise _syntax(text, position, f"unexpected character '{char}'")
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string_token(text: str, start: int) -> Token:
    # OData escapes a quote inside a string literal by doubling it: 'O''Brien'.
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        if text[position] == "'":
            if text.startswith("''", position):
                chars.append("'")
                position += 2
                continue
            return Token("string", text[start : position + 1], start, "".join(chars))
        chars.append(text[position])
        position += 1
    raise _syntax(text, start, "unterminated string literal")


def _syntax(text: str, position: int, problem: str) -> FilterError:
    return FilterError(f"Invalid filter clause: {problem} at position {position} in '{text}'.")


# ------------------------------------------------------------------------------------- parser

_COMPARISONS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_FUNCTIONS = ("startswith", "endswith")
_BOOLEAN_NODES = (Compare, In, Call, And, Or, Not, Lambda)


def parse_filter(text: str) -> Node:
    """Parse and type-check a ``$filter`` value against the user schema."""
    if not text.strip():
        raise FilterError("Invalid filter clause: the filter is empty.")
    parser = _Parser(text, tokenize(text))
    node = parser.or_expr(scope=None)
    parser.expect("end", "end of filter")
    _require_condition(node, text, "the filter")
    return node


@dataclass(frozen=True)
class _Scope:
    variable: str
    element: Kind
    parent: str  # the collection property, to resolve members of complex elements


class _Parser:
    def __init__(self, text: str, tokens: list[Token]):
        self.text = text
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def keyword(self, *words: str) -> str | None:
        token = self.current
        if token.kind == "name" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def expect(self, kind: str, description: str) -> Token:
        token = self.current
        if token.kind != kind:
            found = "end of filter" if token.kind == "end" else f"'{token.text}'"
            raise _syntax(self.text, token.position, f"expected {description}, found {found}")
        self.index += 1
        return token

    def or_expr(self, scope: _Scope | None) -> Node:
        node = self.and_expr(scope)
        while self.keyword("or"):
            right = self.and_expr(scope)
            self._conditions(node, right, "or")
            node = Or(node, right)
        return node

    def and_expr(self, scope: _Scope | None) -> Node:
        node = self.not_expr(scope)
        while self.keyword("and"):
            right = self.not_expr(scope)
            self._conditions(node, right, "and")
            node = And(node, right)
        return node

    def not_expr(self, scope: _Scope | None) -> Node:
        if self.keyword("not"):
            operand = self.not_expr(scope)
            _require_condition(operand, self.text, "the operand of 'not'")
            return Not(operand)
        return self.comparison(scope)

    def comparison(self, scope: _Scope | None) -> Node:
        left = self.operand(scope)
        position = self.current.position
        operator = self.keyword(*_COMPARISONS)
        if operator:
            right = self.operand(scope)
            _check_operands(operator, left, right, self.text, position)
            return Compare(operator, left, right)
        if self.keyword("in"):
            return In(left, self.literal_list(left, position))
        return left

    def literal_list(self, operand: Node, position: int) -> tuple[Literal, ...]:
        self.expect("(", "'(' after 'in'")
        values: list[Literal] = []
        while True:
            value = self.operand(scope=None)
            if not isinstance(value, Literal):
                raise _syntax(self.text, self.current.position, "'in' takes a list of literals")
            _check_operands("eq", operand, value, self.text, position)
            values.append(value)
            if self.current.kind != ",":
                break
            self.index += 1
        self.expect(")", "')' closing the 'in' list")
        return tuple(values)

    def operand(self, scope: _Scope | None) -> Node:
        token = self.current
        if token.kind == "(":
            self.index += 1
            node = self.or_expr(scope)
            self.expect(")", "')'")
            return node
        if token.kind in ("string", "guid", "datetime", "number"):
            self.index += 1
            return _literal(token)
        if token.kind != "name":
            found = "end of filter" if token.kind == "end" else f"'{token.text}'"
            raise _syntax(self.text, token.position, f"expected an operand, found {found}")
        word = token.text.lower()
        if word in ("true", "false", "null"):
            self.index += 1
            return Literal(
                {"true": True, "false": False, "null": None}[word],
                "null" if word == "null" else "boolean",
            )
        if word in _FUNCTIONS and self.tokens[self.index + 1].kind == "(":
            return self.call(word, scope)
        return self.path(scope)

    def call(self, function: str, scope: _Scope | None) -> Call:
        start = self.current.position
        self.index += 2
        subject = self.operand(scope)
        self.expect(",", f"',' between the arguments of {function}")
        prefix = self.operand(scope)
        self.expect(")", f"')' closing {function}")
        if not (isinstance(prefix, Literal) and prefix.kind == "string"):
            raise _syntax(self.text, start, f"the second argument of {function} must be a string")
        if not _is_string_valued(subject):
            raise _syntax(
                self.text, start, f"the first argument of {function} must be a string property"
            )
        return Call(function, subject, prefix)

    def path(self, scope: _Scope | None) -> Node:
        token = self.expect("name", "a property")
        node: Property
        if scope is not None and token.text == scope.variable:
            node = Property((), scope.element, variable=scope.variable)
        else:
            name = canonical_property(token.text)
            if name is None:
                raise FilterError(_unknown_property(token.text, "user"))
            node = Property((name,), property_kind(name))
        while self.current.kind == "/":
            self.index += 1
            segment = self.expect("name", "a property after '/'")
            lowered = segment.text.lower()
            if node.kind.is_collection:
                if lowered == "$count":
                    return Count(node)
                if lowered in ("any", "all"):
                    return self.lambda_(node, lowered)
                raise _syntax(
                    self.text,
                    segment.position,
                    f"'{node.text}' is a collection: use any(), all() or $count",
                )
            if node.kind is not Kind.COMPLEX:
                edm = _KIND_EDM.get(node.kind, "Edm.String")
                raise FilterError(
                    f"Could not find a property named '{segment.text}' on type '{edm}'."
                )
            parent = node.path[-1] if node.path else scope.parent if scope else ""
            resolved = member_kind(parent, segment.text)
            if resolved is None:
                raise FilterError(_unknown_property(segment.text, parent))
            node = Property((*node.path, resolved[0]), resolved[1], node.variable)
        return node

    def lambda_(self, collection: Property, quantifier: str) -> Lambda:
        self.expect("(", f"'(' after {quantifier}")
        if self.current.kind == ")":
            if quantifier == "all":
                raise _syntax(self.text, self.current.position, "all() needs a condition")
            self.index += 1
            return Lambda(collection, quantifier, None, None)
        variable = self.expect("name", "a lambda variable").text
        self.expect(":", "':' after the lambda variable")
        element = Kind.STRING if collection.kind is Kind.STRING_COLLECTION else Kind.COMPLEX
        body = self.or_expr(_Scope(variable, element, collection.path[-1]))
        _require_condition(body, self.text, f"the body of {quantifier}()")
        self.expect(")", f"')' closing {quantifier}()")
        return Lambda(collection, quantifier, variable, body)

    def _conditions(self, left: Node, right: Node, operator: str) -> None:
        _require_condition(left, self.text, f"the left side of '{operator}'")
        _require_condition(right, self.text, f"the right side of '{operator}'")


def _literal(token: Token) -> Literal:
    if token.kind == "string":
        return Literal(token.value, "string")
    if token.kind == "guid":
        return Literal(token.text.lower(), "guid")
    if token.kind == "datetime":
        return Literal(dt.datetime.fromisoformat(token.text.replace("Z", "+00:00")), "datetime")
    number = float(token.text) if "." in token.text else int(token.text)
    return Literal(number, "number")


def _unknown_property(name: str, owner: str) -> str:
    type_name = COMPLEX_TYPE_NAMES.get(owner, owner)
    return f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."


def _require_condition(node: Node, text: str, where: str) -> None:
    if isinstance(node, _BOOLEAN_NODES):
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
_KIND_EDM = {
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
        return _KIND_EDM.get(node.kind, "collection" if node.kind.is_collection else "complex")
    return "Edm.Boolean"  # comparisons, calls, lambdas and logical operators


def _check_operands(operator: str, left: Node, right: Node, text: str, position: int) -> None:
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
        f"'{left_type}' and '{right_type}' for operator kind '{_COMPARISONS[operator]}'."
    )


def _is_string_valued(node: Node) -> bool:
    return isinstance(node, Property) and node.kind in (Kind.STRING, Kind.GUID)


# ------------------------------------------------------------------------- advanced queries

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


# ---------------------------------------------------------------------------------- evaluator


def matches(node: Node, user: Mapping[str, object]) -> bool:
    """Whether ``user`` (Graph JSON) satisfies the parsed filter."""
    return bool(_evaluate(node, user, {}))


def _evaluate(node: Node, user: Mapping[str, object], variables: dict[str, object]) -> object:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Property):
        return _resolve(node, user, variables)
    if isinstance(node, Count):
        return len(_resolve(node.collection, user, variables) or [])  # type: ignore[arg-type]
    if isinstance(node, And):
        return bool(_evaluate(node.left, user, variables)) and bool(
            _evaluate(node.right, user, variables)
        )
    if isinstance(node, Or):
        return bool(_evaluate(node.left, user, variables)) or bool(
            _evaluate(node.right, user, variables)
        )
    if isinstance(node, Not):
        return not _evaluate(node.operand, user, variables)
    if isinstance(node, Compare):
        return _compare(
            node.operator,
            _evaluate(node.left, user, variables),
            _evaluate(node.right, user, variables),
        )
    if isinstance(node, In):
        value = _evaluate(node.operand, user, variables)
        return any(_compare("eq", value, literal.value) for literal in node.values)
    if isinstance(node, Call):
        subject = _evaluate(node.subject, user, variables)
        prefix = str(_evaluate(node.prefix, user, variables)).casefold()
        if not isinstance(subject, str):
            return False
        if node.function == "startswith":
            return subject.casefold().startswith(prefix)
        return subject.casefold().endswith(prefix)
    if isinstance(node, Lambda):
        items = _resolve(node.collection, user, variables) or []
        if node.body is None:
            return bool(items)
        test = any if node.quantifier == "any" else all
        return test(
            _evaluate(node.body, user, {**variables, node.variable or "": item})
            for item in items  # type: ignore[attr-defined]
        )
    raise TypeError(f"not a filter node: {node!r}")


def _resolve(node: Property, user: Mapping[str, object], variables: dict[str, object]) -> object:
    value: object = variables.get(node.variable) if node.variable else user
    for segment in node.path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def _compare(operator: str, left: object, right: object) -> bool:
    if left is None or right is None:
        if operator == "eq":
            return left is None and right is None
        if operator == "ne":
            return not (left is None and right is None)
        return False
    left, right = _comparable(left, right), _comparable(right, left)
    try:
        if operator == "eq":
            return left == right
        if operator == "ne":
            return left != right
        if operator == "gt":
            return left > right  # type: ignore[operator]
        if operator == "ge":
            return left >= right  # type: ignore[operator]
        if operator == "lt":
            return left < right  # type: ignore[operator]
        return left <= right  # type: ignore[operator]
    except TypeError:
        return False


def _comparable(value: object, other: object) -> object:
    # Graph compares strings (and GUIDs) case-insensitively; stored datetimes are ISO strings.
    if isinstance(other, dt.datetime) and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, str):
        return value.casefold()
    return value
