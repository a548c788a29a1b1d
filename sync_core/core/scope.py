"""Which users are employees: presets and the admin's include/exclude rule groups.

Rules are evaluated here rather than pushed to Graph, so that every user read is accounted for
with the reason it was left out; `filter.odata` is the admin's way to narrow what Graph returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sync_core.core.config import ScopeFilter, ScopeRule, compile_regex
from sync_core.core.groups import group_exclusion
from sync_core.core.paths import AttributePath, parse_path

REASON_DISABLED = "disabled"
REASON_GUEST = "guest"
REASON_UNLICENSED = "unlicensed"
REASON_NOT_INCLUDED = "notIncluded"

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class CompiledRule:
    path: AttributePath
    holds_for_value: Predicate
    negated: bool
    whole_value: bool = False  # isNull/isNotNull judge the attribute, not its elements

    def holds(self, user: Mapping[str, Any]) -> bool:
        value = self.path.read(user)
        if self.whole_value:
            matched = self.holds_for_value(value)
        else:
            # Multi-valued attributes: a positive rule holds when any element matches; a negated
            # one (notEquals, notIn, notRegexMatch) holds when no element matches the positive.
            values = value if isinstance(value, list) else [value]
            matched = any(self.holds_for_value(v) for v in values)
        return not matched if self.negated else matched


@dataclass(frozen=True)
class Scope:
    exclude_disabled: bool
    exclude_guests: bool
    exclude_unlicensed: bool
    include: tuple[tuple[CompiledRule, ...], ...]
    exclude: tuple[tuple[CompiledRule, ...], ...]
    graph_properties: frozenset[str]
    # Scope by group (core/groups.py): the user's memberships travel with the user dict.
    include_groups: frozenset[str] = frozenset()
    exclude_groups: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: ScopeFilter) -> Scope:
        include = tuple(tuple(map(compile_rule, group)) for group in config.include)
        exclude = tuple(tuple(map(compile_rule, group)) for group in config.exclude)
        properties = {rule.path.graph_property for group in include + exclude for rule in group}
        if config.exclude_disabled:
            properties.add("accountEnabled")
        if config.exclude_guests:
            properties |= {"userType", "userPrincipalName"}
        if config.exclude_unlicensed:
            properties.add("assignedLicenses")
        return cls(
            exclude_disabled=config.exclude_disabled,
            exclude_guests=config.exclude_guests,
            exclude_unlicensed=config.exclude_unlicensed,
            include=include,
            exclude=exclude,
            graph_properties=frozenset(properties),
            include_groups=frozenset(g.lower() for g in config.groups.include),
            exclude_groups=tuple(g.lower() for g in config.groups.exclude),
        )

    def exclusion_reason(self, user: Mapping[str, Any]) -> str | None:
        """None when the user is in scope, else the first reason that leaves it out."""
        if self.exclude_disabled and user.get("accountEnabled") is False:
            return REASON_DISABLED
        if self.exclude_guests and is_guest(user):
            return REASON_GUEST
        if self.exclude_unlicensed and not user.get("assignedLicenses"):
            return REASON_UNLICENSED
        if self.include_groups or self.exclude_groups:
            reason = group_exclusion(user, self.include_groups, self.exclude_groups)
            if reason is not None:
                return reason
        if self.include and not any(all(r.holds(user) for r in g) for g in self.include):
            return REASON_NOT_INCLUDED
        for index, group in enumerate(self.exclude):
            if all(rule.holds(user) for rule in group):
                return f"exclude[{index}]"
        return None


def is_guest(user: Mapping[str, Any]) -> bool:
    if (user.get("userType") or "").lower() == "guest":
        return True
    # userType can be missing on old B2B accounts; the #EXT# UPN is the other sure sign.
    return "#ext#" in (user.get("userPrincipalName") or "").lower()


def compile_rule(rule: ScopeRule) -> CompiledRule:
    path = parse_path(rule.attribute)
    operator = rule.operator
    negated = operator in {"notEquals", "notIn", "notRegexMatch", "isNotNull"}
    positive = {
        "notEquals": "equals", "notIn": "in", "notRegexMatch": "regexMatch", "isNotNull": "isNull",
    }.get(operator, operator)  # fmt: skip
    return CompiledRule(path, _predicate(positive, rule.value), negated, positive == "isNull")


def _predicate(operator: str, expected: Any) -> Predicate:
    if operator == "isNull":
        return lambda v: v is None or (isinstance(v, str | list | dict) and not v)
    if operator == "isTrue":
        return lambda v: v is True
    if operator == "isFalse":
        return lambda v: v is False
    if operator == "regexMatch":
        pattern = compile_regex(expected)  # RE2: linear time, whatever the pattern
        return lambda v: v is not None and pattern.search(_text(v)) is not None
    if operator == "in":
        options = {_text(item) for item in expected}
        return lambda v: v is not None and _text(v) in options
    wanted = _text(expected)
    tests: dict[str, Callable[[str], bool]] = {
        "equals": lambda t: t == wanted,
        "startsWith": lambda t: t.startswith(wanted),
        "endsWith": lambda t: t.endswith(wanted),
        "contains": lambda t: wanted in t,
    }
    test = tests[operator]
    return lambda v: v is not None and test(_text(v))


def _text(value: Any) -> str:
    """Comparable text: strings ignore case; booleans read as true/false like in JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()
