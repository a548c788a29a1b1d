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
from dataclasses import dataclass

from ..schema import (
    Kind,
    canonical_property,
    member_kind,
    property_kind,
)
from .checks import KIND_EDM, check_operands, is_string_valued, require_condition, unknown_property
from .lexer import Token, syntax_error, tokenize
from .nodes import (
    COMPARISONS,
    And,
    Call,
    Compare,
    Count,
    FilterError,
    In,
    Lambda,
    Literal,
    Node,
    Not,
    Or,
    Property,
)

_FUNCTIONS = ("startswith", "endswith")


def parse_filter(text: str) -> Node:
    """Parse and type-check a ``$filter`` value against the user schema."""
    if not text.strip():
        raise FilterError("Invalid filter clause: the filter is empty.")
    parser = _Parser(text, tokenize(text))
    node = parser.or_expr(scope=None)
    parser.expect("end", "end of filter")
    require_condition(node, text, "the filter")
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
            raise syntax_error(self.text, token.position, f"expected {description}, found {found}")
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
            require_condition(operand, self.text, "the operand of 'not'")
            return Not(operand)
        return self.comparison(scope)

    def comparison(self, scope: _Scope | None) -> Node:
        left = self.operand(scope)
        position = self.current.position
        operator = self.keyword(*COMPARISONS)
        if operator:
            right = self.operand(scope)
            check_operands(operator, left, right, self.text, position)
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
                raise syntax_error(
                    self.text, self.current.position, "'in' takes a list of literals"
                )
            check_operands("eq", operand, value, self.text, position)
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
            raise syntax_error(self.text, token.position, f"expected an operand, found {found}")
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
            raise syntax_error(
                self.text, start, f"the second argument of {function} must be a string"
            )
        if not is_string_valued(subject):
            raise syntax_error(
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
                raise FilterError(unknown_property(token.text, "user"))
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
                raise syntax_error(
                    self.text,
                    segment.position,
                    f"'{node.text}' is a collection: use any(), all() or $count",
                )
            if node.kind is not Kind.COMPLEX:
                edm = KIND_EDM.get(node.kind, "Edm.String")
                raise FilterError(
                    f"Could not find a property named '{segment.text}' on type '{edm}'."
                )
            parent = node.path[-1] if node.path else scope.parent if scope else ""
            resolved = member_kind(parent, segment.text)
            if resolved is None:
                raise FilterError(unknown_property(segment.text, parent))
            node = Property((*node.path, resolved[0]), resolved[1], node.variable)
        return node

    def lambda_(self, collection: Property, quantifier: str) -> Lambda:
        self.expect("(", f"'(' after {quantifier}")
        if self.current.kind == ")":
            if quantifier == "all":
                raise syntax_error(self.text, self.current.position, "all() needs a condition")
            self.index += 1
            return Lambda(collection, quantifier, None, None)
        variable = self.expect("name", "a lambda variable").text
        self.expect(":", "':' after the lambda variable")
        element = Kind.STRING if collection.kind is Kind.STRING_COLLECTION else Kind.COMPLEX
        body = self.or_expr(_Scope(variable, element, collection.path[-1]))
        require_condition(body, self.text, f"the body of {quantifier}()")
        self.expect(")", f"')' closing {quantifier}()")
        return Lambda(collection, quantifier, variable, body)

    def _conditions(self, left: Node, right: Node, operator: str) -> None:
        require_condition(left, self.text, f"the left side of '{operator}'")
        require_condition(right, self.text, f"the right side of '{operator}'")


def _literal(token: Token) -> Literal:
    if token.kind == "string":
        return Literal(token.value, "string")
    if token.kind == "guid":
        return Literal(token.text.lower(), "guid")
    if token.kind == "datetime":
        return Literal(dt.datetime.fromisoformat(token.text.replace("Z", "+00:00")), "datetime")
    number = float(token.text) if "." in token.text else int(token.text)
    return Literal(number, "number")
