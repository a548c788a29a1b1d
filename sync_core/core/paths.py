"""Attribute paths into a Graph user's JSON: `jobTitle`, `businessPhones[1]`,
`onPremisesExtensionAttributes.extensionAttribute3`, `extension_<appId>_costCenter`.

Users travel as Graph's own JSON, so a path reads the data directly; no typed model sits between.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Properties of microsoft.graph.user (v1.0) that can be read from the /users collection with
# $select. Properties Graph refuses in a collection (mailboxSettings, aboutMe, birthday, hireDate,
# skills, ...) are left out on purpose: selecting one fails the whole listing with a 501.
USER_PROPERTIES: tuple[str, ...] = (
    "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "businessPhones", "city",
    "companyName", "consentProvidedForMinor", "country", "createdDateTime", "creationType",
    "deletedDateTime", "department", "displayName", "employeeHireDate", "employeeId",
    "employeeLeaveDateTime", "employeeOrgData", "employeeType", "externalUserState",
    "externalUserStateChangeDateTime", "faxNumber", "givenName", "id", "identities", "imAddresses",
    "isResourceAccount", "jobTitle", "lastPasswordChangeDateTime", "legalAgeGroupClassification",
    "licenseAssignmentStates", "mail", "mailNickname", "mobilePhone", "officeLocation",
    "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes",
    "onPremisesImmutableId", "onPremisesLastSyncDateTime", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName",
    "otherMails", "passwordPolicies", "postalCode", "preferredDataLocation", "preferredLanguage",
    "provisionedPlans", "proxyAddresses", "securityIdentifier", "showInAddressList",
    "signInSessionsValidFromDateTime", "state", "streetAddress", "surname", "usageLocation",
    "userPrincipalName", "userType",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in USER_PROPERTIES}
_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


class PathError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    name: str
    index: int | None = None


@dataclass(frozen=True)
class AttributePath:
    """A parsed path; `text` is its canonical spelling (Graph's casing of the top property)."""

    steps: tuple[Step, ...]

    @property
    def graph_property(self) -> str:
        """The top-level Graph property, which is what $select must name."""
        return self.steps[0].name

    @property
    def text(self) -> str:
        return ".".join(
            step.name if step.index is None else f"{step.name}[{step.index}]" for step in self.steps
        )

    def read(self, user: Mapping[str, Any]) -> Any:
        """The value at this path, or None when any step is missing."""
        value: Any = user
        for step in self.steps:
            if not isinstance(value, Mapping):
                return None
            value = _get(value, step.name)
            if step.index is not None:
                if not isinstance(value, list) or step.index >= len(value):
                    return None
                value = value[step.index]
        return value


def parse_path(text: str) -> AttributePath:
    """Parse and canonicalise a path; raise PathError saying what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("must be a non-empty attribute path")
    parts = text.strip().split(".")
    steps: list[Step] = []
    for part in parts:
        match = _SEGMENT.match(part)
        if not match:
            raise PathError(
                f"segment {part!r} is not a property name with an optional [index] "
                "(letters, digits, underscore)"
            )
        steps.append(Step(match.group(1), int(match.group(2)) if match.group(2) else None))
    top = steps[0].name
    if _EXTENSION.match(top):
        canonical = top
    elif top.lower() in _CANONICAL:
        canonical = _CANONICAL[top.lower()]
    else:
        raise PathError(
            f"{top!r} is not a Microsoft Graph user property that can be listed "
            "(nor a directory extension extension_<appId>_<name>)"
        )
    steps[0] = Step(canonical, steps[0].index)
    return AttributePath(tuple(steps))


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    if name in mapping:
        return mapping[name]
    # Graph property names are case-insensitive in queries; nested keys (extensionAttributeN)
    # are written by admins by hand, so forgive a casing slip there too.
    lowered = name.lower()
    for key, value in mapping.items():
        if key.lower() == lowered:
            return value
    return None
