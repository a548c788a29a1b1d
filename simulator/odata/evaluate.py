"""Evaluates a parsed ``$filter`` against a user's Graph JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from .nodes import And, Call, Compare, Count, In, Lambda, Literal, Node, Not, Or, Property


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
