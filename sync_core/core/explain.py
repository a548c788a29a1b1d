"""Why one user is (or is not) an employee, step by step: the scope, in plain words.

Every verdict here comes from the rules a run applies (core/scope.py): a preset or a rule group
is judged by `Scope.exclusion_reason` on a scope that holds only that preset or group, and the
deciding reason is `exclusion_reason` on the whole scope. So the explanation can never disagree
with what a run does; it only says which part of the rules decided.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sync_core.core.config import ScopeFilter, ScopeRule
from sync_core.core.limits import clean_text
from sync_core.core.scope import (
    REASON_DISABLED,
    REASON_GUEST,
    REASON_NOT_INCLUDED,
    REASON_UNLICENSED,
    CompiledRule,
    Scope,
    is_guest,
)

# A user Graph does not return for filter.odata: a run never reads it, so it is counted nowhere
# (no excludedBy key) and a stored row of it is stale. Explain names it all the same.
REASON_ODATA = "odata"

# Outcomes of a step, as JSON carries them.
PASSED, EXCLUDED, OFF, MATCHED, NOT_MATCHED = "passed", "excluded", "off", "matched", "notMatched"


@dataclass(frozen=True)
class Step:
    """One preset or rule group as it judged the user."""

    name: str  # excludeDisabled, excludeGuests, excludeUnlicensed, include[0], exclude[1], ...
    outcome: str
    detail: str  # in plain words, with the user's values the rules read
    decided: bool = False  # this step is the one that left the user out

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "outcome": self.outcome,
            "detail": self.detail,
            "decided": self.decided,
        }


@dataclass(frozen=True)
class ScopeVerdict:
    in_scope: bool
    reason: str | None  # the report's excludedBy key when left out (scope.exclusion_reason)
    steps: tuple[Step, ...]
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "inScope": self.in_scope,
            "reason": self.reason,
            "summary": self.summary,
            "steps": [step.to_json() for step in self.steps],
        }


def explain_scope(
    config: ScopeFilter, user: Mapping[str, Any], *, listed: bool = True
) -> ScopeVerdict:
    """Each preset and rule group in the order a run applies them, and which one decided;
    `listed` is whether Graph returns the user for filter.odata (a run reads no other)."""
    scope = Scope.from_config(config)
    reason = scope.exclusion_reason(user) if listed else REASON_ODATA
    steps = _odata_steps(config, listed)
    steps += [*_preset_steps(scope, user), *_include_steps(scope, config, user)]
    steps += _exclude_steps(scope, config, user)
    # Extension point: group scope (filter.groups, issue 15) adds its steps here, judged the
    # same way (a scope holding only that part), with its own exclusion reason below.
    decided = _deciding_step(reason)
    marked = [replace(s, decided=s.name == decided) for s in steps]
    if reason is not None and not any(s.decided for s in marked):
        # A reason no step here itemises (a part of the scope added after this module): still
        # named, so the explanation never hides why a run leaves the user out.
        marked.append(Step(reason, EXCLUDED, "this part of the scope leaves the user out", True))
    return ScopeVerdict(reason is None, reason, tuple(marked), _summary(reason, decided))


def _odata_steps(config: ScopeFilter, listed: bool) -> list[Step]:
    if config.odata is None:
        return []
    if listed:
        return [Step("odata", PASSED, f"Graph returns the user for filter.odata {config.odata!r}")]
    return [
        Step(
            "odata",
            EXCLUDED,
            f"Graph does not return the user for filter.odata {config.odata!r}: a run never "
            "reads this user",
        )
    ]


def _only(scope: Scope, **part: Any) -> Scope:
    """The scope with nothing but `part`: what that part alone says about a user. Built from a
    filter with every preset off and every other key at its default, so a part of the scope
    added later (groups) leaves nobody out here unless it is the part asked for."""
    nothing = ScopeFilter(exclude_disabled=False, exclude_guests=False, exclude_unlicensed=False)
    return replace(Scope.from_config(nothing), **part)


def _preset_steps(scope: Scope, user: Mapping[str, Any]) -> list[Step]:
    enabled = user.get("accountEnabled")
    upn = _shown(user.get("userPrincipalName"))
    licenses = user.get("assignedLicenses") or []
    guest_sign = (
        f"userType is {_shown(user.get('userType'))}"
        if (user.get("userType") or "").lower() == "guest"
        else f"the userPrincipalName {upn} has the #EXT# form of an invited guest"
    )
    presets = (
        ("excludeDisabled", scope.exclude_disabled, REASON_DISABLED, "exclude_disabled",
         f"the account is disabled (accountEnabled is {_shown(enabled)})",
         f"the account is enabled (accountEnabled is {_shown(enabled)})",
         "disabled accounts are not left out"),
        ("excludeGuests", scope.exclude_guests, REASON_GUEST, "exclude_guests",
         f"the user is a guest: {guest_sign}",
         f"not a guest (userType is {_shown(user.get('userType'))}, no #EXT# in the UPN)",
         "guests are not left out" + (f" (this user is one: {guest_sign})"
                                      if is_guest(user) else "")),
        ("excludeUnlicensed", scope.exclude_unlicensed, REASON_UNLICENSED, "exclude_unlicensed",
         "the user has no license (assignedLicenses is empty)",
         f"the user has {len(licenses)} license(s)",
         "unlicensed users are not left out"),
    )  # fmt: skip
    steps = []
    for name, on, reason, flag, excluded, passed, off in presets:
        if not on:
            steps.append(Step(name, OFF, off))
            continue
        left_out = _only(scope, **{flag: True}).exclusion_reason(user) == reason
        steps.append(Step(name, EXCLUDED if left_out else PASSED, excluded if left_out else passed))
    return steps


def _include_steps(scope: Scope, config: ScopeFilter, user: Mapping[str, Any]) -> list[Step]:
    steps = []
    for index, (group, rules) in enumerate(zip(scope.include, config.include, strict=True)):
        matched = _only(scope, include=(group,)).exclusion_reason(user) is None
        verdict = "matches: the user is included" if matched else "does not match"
        steps.append(
            Step(
                f"include[{index}]",
                MATCHED if matched else NOT_MATCHED,
                f"{verdict} (all of: {_rules_text(group, rules, user)})",
            )
        )
    if not scope.include:
        steps.append(Step("include", OFF, "no include groups: every user is a candidate"))
    elif any(step.outcome == MATCHED for step in steps):
        steps.append(Step("include", PASSED, "an include group matches the user"))
    else:
        count = len(scope.include)
        steps.append(Step("include", EXCLUDED, f"none of the {count} include group(s) matches"))
    return steps


def _exclude_steps(scope: Scope, config: ScopeFilter, user: Mapping[str, Any]) -> list[Step]:
    steps = []
    for index, (group, rules) in enumerate(zip(scope.exclude, config.exclude, strict=True)):
        matched = _only(scope, exclude=(group,)).exclusion_reason(user) is not None
        verdict = "matches: the user is left out" if matched else "does not match"
        steps.append(
            Step(
                f"exclude[{index}]",
                MATCHED if matched else NOT_MATCHED,
                f"{verdict} (all of: {_rules_text(group, rules, user)})",
            )
        )
    return steps


def _rules_text(
    group: tuple[CompiledRule, ...], rules: tuple[ScopeRule, ...], user: Mapping[str, Any]
) -> str:
    parts = []
    for compiled, rule in zip(group, rules, strict=True):
        wanted = "" if rule.value is None else f" {_shown(rule.value)}"
        holds = "holds" if compiled.holds(user) else "does not hold"
        value = _shown(compiled.path.read(user))
        parts.append(f"{rule.attribute} {rule.operator}{wanted}: {holds}, the user has {value}")
    return "; ".join(parts)


def _deciding_step(reason: str | None) -> str | None:
    names = {
        REASON_DISABLED: "excludeDisabled",
        REASON_GUEST: "excludeGuests",
        REASON_UNLICENSED: "excludeUnlicensed",
        REASON_NOT_INCLUDED: "include",
        REASON_ODATA: "odata",
    }
    if reason is None:
        return None
    return names.get(reason, reason)  # exclude[N] is its own step's name


def _summary(reason: str | None, decided: str | None) -> str:
    if reason is None:
        return "In scope: no preset or rule group leaves this user out."
    if reason == REASON_ODATA:
        return (
            "Left out (odata): Graph does not return this user for filter.odata, so a run never "
            "reads it (it is counted under no excludedBy key; a stored row of it is stale)."
        )
    words = {
        REASON_DISABLED: "the account is disabled and filter.excludeDisabled is on",
        REASON_GUEST: "the user is a guest and filter.excludeGuests is on",
        REASON_UNLICENSED: "the user has no license and filter.excludeUnlicensed is on",
        REASON_NOT_INCLUDED: "no include group matches the user",
    }
    fallback = f"rule group {decided} matches the user" if reason.startswith("exclude[") else ""
    because = words.get(reason, fallback or f"the scope's {reason} rule leaves the user out")
    return f"Left out ({reason}): {because}. Runs count it under excludedBy.{reason}."


def _shown(value: Any) -> str:
    """A user's value as the explanation quotes it (JSON-like, cut when long)."""
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = clean_text(value if isinstance(value, str) else json.dumps(value, default=str))
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"'{text}'" if isinstance(value, str) else text
