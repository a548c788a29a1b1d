"""The reference model of the convergence test: final directory + configuration -> the Employees
rows the product promises.

Pure and independent on purpose: it is written from the documented rules (README "Configuration
of a tenant", docs/configuration.md "Stored values", issue 7's rules 4, 8 and 9), not by calling
`sync_core`'s `Scope` or `Mapper`, so that a bug there cannot hide in the reference too. It covers
the subset of the configuration the test generates: plain property and `prop[index]` field
sources, `manager.<prop>` and `manager.email` sources (the user's `manager` names another user
of the directory; absent or gone: the fields are empty), the presets, and string rules (`equals`, `notEquals`, `startsWith`, `contains`,
`isNull`) on single-valued properties.

Where the rules leave the exact stored text open (a value too long for Table Storage is cut, a
value with NUL or a lone surrogate is cleaned), the expected value is a matcher that accepts any
faithful result, so the reference stays right whichever way the product cuts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Table Storage: a string property holds 64 KiB of UTF-16, i.e. 32,767 code units (PLATFORM-NOTES).
MAX_UTF16_UNITS = 32_767
# A cut value keeps most of the text: the product cuts at the limit, not somewhere short of it.
MIN_KEPT_UTF16_UNITS = 30_000


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True)
class CutFrom:
    """A value longer than Table Storage holds: stored as a prefix of the trimmed source that fits
    and keeps most of it (the exact cut point is the product's choice)."""

    source: str

    def accepts(self, stored: Any) -> bool:
        return (
            isinstance(stored, str)
            and self.source.startswith(stored)
            and MIN_KEPT_UTF16_UNITS <= utf16_units(stored) <= MAX_UTF16_UNITS
        )


@dataclass(frozen=True)
class CleanedFrom:
    """A value holding characters Table Storage or JSON cannot carry (NUL, lone surrogates):
    stored without them (dropped or replaced by U+FFFD), or left out."""

    source: str

    def accepts(self, stored: Any) -> bool:
        if stored is None:
            return True
        if not isinstance(stored, str):
            return False
        kept = "".join(c for c in self.source if not _unstorable(c)).strip()
        return stored.replace("\ufffd", "").strip() == kept or stored.strip() == kept


@dataclass(frozen=True)
class JsonList:
    """A group-membership field (docs/configuration.md "Scope by group and the group-membership
    field"): a JSON list of display names, in the order the field lists the groups."""

    items: tuple[str, ...]

    def accepts(self, stored: Any) -> bool:
        return isinstance(stored, str) and json.loads(stored) == list(self.items)


Expected = str | CutFrom | CleanedFrom | JsonList


def matches(expected: Expected | None, stored: Any) -> bool:
    if isinstance(expected, CutFrom | CleanedFrom | JsonList):
        return expected.accepts(stored)
    return stored == expected


@dataclass(frozen=True)
class ExpectedRow:
    email: str | None  # None: an employee kept without an address, marked EmailMissingSince
    aliases: tuple[str, ...]
    user_principal_name: str
    fields: tuple[tuple[str, Expected | None], ...]  # every configured field; None = absent


@dataclass(frozen=True)
class Expectation:
    rows: Mapping[str, ExpectedRow]  # in scope with an address: exactly this row
    # In scope without an address (docs/configuration.md "Employees whose address disappears"):
    # kept if it was stored before, never created; its presence depends on history, not on this
    # state. A kept row is this one: no Email, marked, everything else current.
    marked: Mapping[str, ExpectedRow]

    @property
    def addressless(self) -> frozenset[str]:
        return frozenset(self.marked)

    @property
    def in_scope(self) -> frozenset[str]:
        return frozenset(self.rows) | self.addressless


def expected_employees(
    users: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]] | None = None,
) -> Expectation:
    """What the Employees partition must hold after a clean run over `users` with `config`;
    `groups`: group id -> {"name", "members": ids of users and groups} (direct members)."""
    rows: dict[str, ExpectedRow] = {}
    marked: dict[str, ExpectedRow] = {}
    scope = config.get("filter", {})
    groups = groups or {}
    users = list(users)
    directory = {user["id"]: user for user in users}
    for user in users:
        if not in_scope(user, scope) or not in_group_scope(user["id"], scope, groups):
            continue
        email, aliases = addresses(user, config.get("email", {}))
        row = ExpectedRow(
            email=email,
            aliases=aliases,
            user_principal_name=user.get("userPrincipalName") or "",
            fields=tuple(
                (field["name"], field_expected(user, field, groups, directory, config))
                for field in config.get("fields", DEFAULT_FIELDS)
            ),
        )
        (marked if email is None else rows)[user["id"]] = row
    return Expectation(rows, marked)


# --- which users (README "Which users") -------------------------------------------------------


def in_scope(user: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
    if scope.get("excludeDisabled", True) and user.get("accountEnabled") is False:
        return False
    if scope.get("excludeGuests", True) and is_guest(user):
        return False
    if scope.get("excludeUnlicensed", False) and not user.get("assignedLicenses"):
        return False
    include = scope.get("include", [])
    if include and not any(all(rule_holds(user, r) for r in group) for group in include):
        return False
    return not any(all(rule_holds(user, r) for r in group) for group in scope.get("exclude", []))


# --- groups (docs/configuration.md "Scope by group and the group-membership field") ----------


def member_of(user_id: str, group_id: str, groups: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the user is in the group or in a group nested in it, at any depth; a group met
    twice (a cycle) is not walked again."""

    def walk(group: str, seen: frozenset[str]) -> bool:
        members = groups.get(group, {}).get("members", ())
        if user_id in members:
            return True
        return any(walk(m, seen | {m}) for m in members if m in groups and m not in seen)

    return walk(group_id, frozenset({group_id}))


def in_group_scope(
    user_id: str, scope: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]]
) -> bool:
    chosen = scope.get("groups", {})
    include = chosen.get("include", [])
    if include and not any(member_of(user_id, g, groups) for g in include):
        return False
    return not any(member_of(user_id, g, groups) for g in chosen.get("exclude", []))


def field_expected(
    user: Mapping[str, Any],
    field: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    directory: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
) -> Expected | None:
    if field["source"] != "memberOf":
        return stored_value(source_value(user, field["source"], directory, config))
    names = tuple(groups[g]["name"] for g in field["groups"] if member_of(user["id"], g, groups))
    return JsonList(names) if names else None


def is_guest(user: Mapping[str, Any]) -> bool:
    return (
        str(user.get("userType") or "").lower() == "guest"
        or "#ext#" in str(user.get("userPrincipalName") or "").lower()
    )


def rule_holds(user: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    value = read(user, rule["attribute"])
    operator = rule["operator"]
    if operator == "isNull":
        return value is None or value in ("", [])
    if value is None:
        # "never for an absent attribute"; notEquals holds when nothing equals.
        return operator == "notEquals"
    text, wanted = str(value).casefold(), str(rule["value"]).casefold()
    return {
        "equals": text == wanted,
        "notEquals": text != wanted,
        "startsWith": text.startswith(wanted),
        "contains": wanted in text,
    }[operator]


# --- email address (README "Email address"; issue 7 rule 8) -----------------------------------


def addresses(
    user: Mapping[str, Any], rules: Mapping[str, Any]
) -> tuple[str | None, tuple[str, ...]]:
    primary: str | None = None
    secondaries: list[str] = []
    for entry in user.get("proxyAddresses") or []:
        prefix, colon, rest = entry.partition(":")
        address = usable_address(rest)
        if not colon or address is None or prefix.strip().lower() != "smtp":
            continue
        if prefix.strip() == "SMTP" and primary is None:
            primary = address
        else:
            secondaries.append(address)
    candidates: list[str | None] = []
    if rules.get("proxyAddresses", True):
        candidates.append(primary)
    candidates.append(usable_address(user.get("mail")))
    if rules.get("otherMails", True):
        candidates.append(
            next(filter(None, map(usable_address, user.get("otherMails") or [])), None)
        )
    if rules.get("userPrincipalName", False):
        candidates.append(usable_address(user.get("userPrincipalName")))
    email = next((c for c in candidates if c is not None), None)
    aliases: list[str] = []
    for alias in secondaries:
        if alias not in (email, primary) and alias not in aliases:
            aliases.append(alias)
    return email, tuple(aliases)


def usable_address(value: Any) -> str | None:
    """An address as stored: trimmed, lower case, one @, a dotted domain, no spaces; never a
    guest's `#EXT#` form (it reaches no mailbox, whichever property it came from)."""
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    local, at, domain = address.partition("@")
    if not at or not local or "@" in domain or "." not in domain.strip("."):
        return None
    if any(c.isspace() for c in address) or "#ext#" in address:
        return None
    return address


# --- stored values (docs/configuration.md "Stored values"; issue 7 rule 4) --------------------


def source_value(
    user: Mapping[str, Any],
    source: str,
    directory: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
) -> Any:
    """A field's value: the user's own property, or its manager's (whether or not the manager
    is in scope); `manager.email` is the manager's address by the employees' email rules."""
    if not source.startswith("manager."):
        return read(user, source)
    manager = directory.get(user.get("manager") or "")
    if manager is None:
        return None
    rest = source[len("manager.") :]
    if rest == "email":
        return addresses(manager, config.get("email", {}))[0]
    return read(manager, rest)


def read(user: Mapping[str, Any], source: str) -> Any:
    name, bracket, index = source.partition("[")
    value = user.get(name)
    if bracket:
        position = int(index.rstrip("]"))
        return value[position] if isinstance(value, list) and position < len(value) else None
    return value


def stored_value(value: Any) -> Expected | None:
    if value is None:
        return None
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    text = str(value).strip()
    if not text:
        return None
    if any(_unstorable(c) for c in text):
        return CleanedFrom(text)
    if utf16_units(text) > MAX_UTF16_UNITS:
        return CutFrom(text)
    return text


def _unstorable(char: str) -> bool:
    return char == "\x00" or "\ud800" <= char <= "\udfff"


DEFAULT_FIELDS: tuple[Mapping[str, str], ...] = tuple(
    {"name": name, "source": source}
    for name, source in (
        ("FirstName", "givenName"), ("LastName", "surname"), ("DisplayName", "displayName"),
        ("Title", "jobTitle"), ("Department", "department"), ("Company", "companyName"),
        ("Phone", "businessPhones[0]"), ("Mobile", "mobilePhone"), ("Fax", "faxNumber"),
        ("Street", "streetAddress"), ("City", "city"), ("State", "state"),
        ("PostalCode", "postalCode"), ("Country", "country"), ("Office", "officeLocation"),
    )
)  # fmt: skip
