"""What the simulated Graph knows about ``microsoft.graph.user``: names, kinds, and read rules.

One catalogue serves ``$select`` (unknown names are a 400, collection-unsafe names a 501) and
``$filter`` (paths into complex types, lambdas over collections), so both reject the same typos.
"""

from __future__ import annotations

import re
from enum import Enum


class Kind(Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    GUID = "guid"
    COMPLEX = "complex"
    STRING_COLLECTION = "string collection"
    COMPLEX_COLLECTION = "complex collection"

    @property
    def is_collection(self) -> bool:
        return self in (Kind.STRING_COLLECTION, Kind.COMPLEX_COLLECTION)


_S, _B, _D, _C = Kind.STRING, Kind.BOOLEAN, Kind.DATETIME, Kind.COMPLEX
_SC, _CC = Kind.STRING_COLLECTION, Kind.COMPLEX_COLLECTION

USER_PROPERTIES: dict[str, Kind] = {
    "aboutMe": _S,
    "accountEnabled": _B,
    "ageGroup": _S,
    "assignedLicenses": _CC,
    "assignedPlans": _CC,
    "authorizationInfo": _C,
    "birthday": _D,
    "businessPhones": _SC,
    "city": _S,
    "companyName": _S,
    "consentProvidedForMinor": _S,
    "country": _S,
    "createdDateTime": _D,
    "creationType": _S,
    "customSecurityAttributes": _C,
    "deletedDateTime": _D,
    "department": _S,
    "displayName": _S,
    "employeeHireDate": _D,
    "employeeId": _S,
    "employeeLeaveDateTime": _D,
    "employeeOrgData": _C,
    "employeeType": _S,
    "externalUserState": _S,
    "externalUserStateChangeDateTime": _D,
    "faxNumber": _S,
    "givenName": _S,
    "hireDate": _D,
    "id": _S,
    "identities": _CC,
    "imAddresses": _SC,
    "interests": _SC,
    "isResourceAccount": _B,
    "jobTitle": _S,
    "lastPasswordChangeDateTime": _D,
    "legalAgeGroupClassification": _S,
    "licenseAssignmentStates": _CC,
    "mail": _S,
    "mailboxSettings": _C,
    "mailNickname": _S,
    "mobilePhone": _S,
    "mySite": _S,
    "officeLocation": _S,
    "onPremisesDistinguishedName": _S,
    "onPremisesDomainName": _S,
    "onPremisesExtensionAttributes": _C,
    "onPremisesImmutableId": _S,
    "onPremisesLastSyncDateTime": _D,
    "onPremisesProvisioningErrors": _CC,
    "onPremisesSamAccountName": _S,
    "onPremisesSecurityIdentifier": _S,
    "onPremisesSyncEnabled": _B,
    "onPremisesUserPrincipalName": _S,
    "otherMails": _SC,
    "passwordPolicies": _S,
    "passwordProfile": _C,
    "pastProjects": _SC,
    "postalCode": _S,
    "preferredDataLocation": _S,
    "preferredLanguage": _S,
    "preferredName": _S,
    "provisionedPlans": _CC,
    "proxyAddresses": _SC,
    "responsibilities": _SC,
    "schools": _SC,
    "securityIdentifier": _S,
    "showInAddressList": _B,
    "signInActivity": _C,
    "signInSessionsValidFromDateTime": _D,
    "skills": _SC,
    "state": _S,
    "streetAddress": _S,
    "surname": _S,
    "usageLocation": _S,
    "userPrincipalName": _S,
    "userType": _S,
}

# Members of the complex types a filter may reach into (``x/skuId``, ``.../extensionAttribute3``).
COMPLEX_MEMBERS: dict[str, dict[str, Kind]] = {
    "assignedLicenses": {"skuId": Kind.GUID, "disabledPlans": _SC},
    "assignedPlans": {
        "assignedDateTime": _D,
        "capabilityStatus": _S,
        "service": _S,
        "servicePlanId": Kind.GUID,
    },
    "identities": {"signInType": _S, "issuer": _S, "issuerAssignedId": _S},
    "onPremisesExtensionAttributes": {f"extensionAttribute{i}": _S for i in range(1, 16)},
    "employeeOrgData": {"division": _S, "costCenter": _S},
}

# OData type names of those complex types, for error messages.
COMPLEX_TYPE_NAMES: dict[str, str] = {
    "assignedLicenses": "assignedLicense",
    "assignedPlans": "assignedPlan",
    "identities": "objectIdentity",
}

# Returned when the client sends no $select (Graph's documented default set).
DEFAULT_SELECT: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)

# Graph answers 501 when these are selected on a collection: they live in other stores
# (Exchange, SharePoint) and are only served for a single user.
NOT_IN_COLLECTION: frozenset[str] = frozenset(
    {
        "mailboxSettings",
        "aboutMe",
        "birthday",
        "hireDate",
        "interests",
        "mySite",
        "pastProjects",
        "preferredName",
        "responsibilities",
        "schools",
        "skills",
    }
)

# Properties Graph filters only in advanced-query mode (ConsistencyLevel: eventual + $count=true),
# whatever the operator, eq and startsWith included. Source: the user rows of Graph's filter
# table (microsoft-graph-docs includes/filter-directory-objects.md, shown in
# concepts/aad-advanced-queries.md), where these are marked "Advanced" in the eq column; faxNumber,
# employeeOrgData and createdDateTime as the current table has them (see PLATFORM-NOTES).
ADVANCED_ONLY: frozenset[str] = frozenset(
    {
        "companyName",
        "createdDateTime",
        "employeeHireDate",
        "employeeOrgData",
        "employeeType",
        "faxNumber",
        "mobilePhone",
        "officeLocation",
        "onPremisesExtensionAttributes",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "onPremisesSamAccountName",
        "passwordPolicies",
        "postalCode",
        "preferredLanguage",
        "showInAddressList",
        "streetAddress",
    }
)

_DIRECTORY_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
_BY_LOWER = {name.lower(): name for name in USER_PROPERTIES}


def canonical_property(name: str) -> str | None:
    """Graph matches property names case-insensitively and answers with the canonical spelling."""
    if _DIRECTORY_EXTENSION.match(name):
        return name
    return _BY_LOWER.get(name.lower())


def property_kind(name: str) -> Kind:
    """Kind of a canonical property; directory extensions are treated as strings."""
    return USER_PROPERTIES.get(name, Kind.STRING)


def member_kind(parent: str, member: str) -> tuple[str, Kind] | None:
    members = COMPLEX_MEMBERS.get(parent)
    if members is None:
        return None
    for name, kind in members.items():
        if name.lower() == member.lower():
            return name, kind
    return None


def empty_value(name: str) -> list[object] | None:
    """What Graph sends for a selected property the user has no value for."""
    return [] if property_kind(name).is_collection else None
