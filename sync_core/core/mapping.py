"""Graph user JSON -> employee record: configured fields, email address, aliases, source hash."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_core.core.config import MEMBER_OF_SOURCE, EmailRules, FieldMapping, TenantConfig
from sync_core.core.groups import field_value
from sync_core.core.limits import MAX_STRING_UNITS, clean_text, fitted_json, fitted_text
from sync_core.core.manager_source import is_manager_source
from sync_core.core.paths import AttributePath, parse_path

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GUEST_MARK = "#ext#"

FieldValue = str | bool | int | float
# Where a user carries the values of its manager's fields (name -> table value), put there by
# core/manager.py before the user is mapped; Graph never sends a key starting with "@sync.".
MANAGER_VALUES = "@sync.managerValues"


@dataclass(frozen=True)
class Employee:
    id: str
    user_principal_name: str
    email: str | None  # None: in scope but without a usable address (the row is marked)
    aliases: tuple[str, ...]
    fields: tuple[tuple[str, FieldValue], ...]  # configured order; empty sources are left out
    source_hash: str


@dataclass(frozen=True)
class EmailAddresses:
    email: str | None
    source: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Mapper:
    """A configuration compiled once per run, applied to every user."""

    # None: a manager field (manager.py); GroupField: a membership field (groups.py).
    fields: tuple[tuple[str, AttributePath | GroupField | None], ...]
    email_rules: EmailRules

    @classmethod
    def from_config(cls, config: TenantConfig) -> Mapper:
        return cls(
            fields=tuple((field.name, _source(field)) for field in config.fields),
            email_rules=config.email,
        )

    @property
    def graph_properties(self) -> frozenset[str]:
        """What the mapping reads, for $select."""
        return frozenset(
            {"id", "userPrincipalName", "mail", "proxyAddresses"}
            | ({"otherMails"} if self.email_rules.other_mails else set())
            | {path.graph_property for _, path in self.fields if path and path.graph_property}
        )

    def map(self, user: Mapping[str, Any]) -> Employee | None:
        """The employee for a user, or None when the user has no usable email address."""
        employee = self.employee(user)
        return employee if employee.email is not None else None

    def employee(self, user: Mapping[str, Any]) -> Employee:
        """The employee for a user, with `email` None when it has no usable address: a stored
        employee whose address disappeared is kept current and marked (see pages.py)."""
        addresses = resolve_addresses(user, self.email_rules)
        values: list[tuple[str, FieldValue]] = []
        manager_values = user.get(MANAGER_VALUES) or {}
        for name, path in self.fields:
            # A manager field's value is in the source hash like any other: a manager's change
            # rewrites the row, an unchanged manager costs no write.
            value = manager_values.get(name) if path is None else to_table_value(path.read(user))
            if value is not None:
                values.append((name, value))
        upn = user.get("userPrincipalName") or ""
        fields = tuple(values)
        return Employee(
            id=user["id"],
            user_principal_name=upn,
            email=addresses.email,
            aliases=addresses.aliases,
            fields=fields,
            source_hash=source_hash(upn, addresses.email, addresses.aliases, fields),
        )


@dataclass(frozen=True)
class GroupField:
    """A membership field's source: no Graph property; the groups' names (core/groups.py)."""

    groups: tuple[str, ...]
    graph_property: str = ""  # nothing to $select

    def read(self, user: Mapping[str, Any]) -> Any:
        return field_value(user, self.groups)


def _source(field: FieldMapping) -> AttributePath | GroupField | None:
    if is_manager_source(field.source):
        return None  # the manager's values come with the user (MANAGER_VALUES)
    if field.source == MEMBER_OF_SOURCE:
        return GroupField(tuple(g.lower() for g in field.groups))
    return parse_path(field.source)


def resolve_addresses(user: Mapping[str, Any], rules: EmailRules) -> EmailAddresses:
    """The employee's address by the configured precedence, and the other smtp aliases."""
    primary, secondaries = _smtp_addresses(user.get("proxyAddresses"))
    candidates: list[tuple[str, str | None]] = []
    if rules.proxy_addresses:
        candidates.append(("proxyAddresses", primary))
    candidates.append(("mail", _address(user.get("mail"))))
    if rules.other_mails:
        other = next(
            (a for a in map(_address, user.get("otherMails") or []) if a is not None), None
        )
        candidates.append(("otherMails", other))
    if rules.user_principal_name:
        candidates.append(("userPrincipalName", _address(user.get("userPrincipalName"))))
    source, email = next(((s, a) for s, a in candidates if a is not None), (None, None))
    excluded = {email, primary}
    aliases: list[str] = []
    for alias in secondaries:
        if alias not in excluded:
            excluded.add(alias)
            aliases.append(alias)
    return EmailAddresses(email=email, source=source, aliases=tuple(aliases))


def _smtp_addresses(proxy_addresses: Any) -> tuple[str | None, list[str]]:
    primary: str | None = None
    others: list[str] = []
    for entry in proxy_addresses or []:
        if not isinstance(entry, str) or ":" not in entry:
            continue
        prefix, _, rest = entry.partition(":")
        address = _address(rest)
        if address is None or prefix.strip().lower() != "smtp":
            continue
        # Upper-case SMTP: marks the primary; a second one (a data error) counts as an alias.
        if prefix.strip() == "SMTP" and primary is None:
            primary = address
        else:
            others.append(address)
    return primary, others


def _address(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    # A guest's internal form (alice_fabrikam.com#EXT#@contoso.onmicrosoft.com) reaches no
    # mailbox, whichever property carries it: the UPN, `mail` or an smtp proxy address.
    if _GUEST_MARK in address:
        return None
    return address if _ADDRESS.match(address) else None


def to_table_value(value: Any) -> FieldValue | None:
    """A Graph value as a Table Storage property; None for empty, so absent means empty."""
    if value is None:
        return None
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        # The table SDK writes a Python int as Int32; a larger one (a LargeInteger extension
        # attribute) would fail the whole batch, so it is kept as text.
        return value if _INT32_MIN <= value <= _INT32_MAX else str(value)
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value and len(value) <= MAX_STRING_UNITS:
            # The common case, already clean and within the limit: what the lines below give,
            # without their passes over the text (issue 19: the full run's CPU per user).
            return value.strip() or None
        # A profile value past Table Storage's limits is a data error upstream: cleaned and cut
        # the same way every run (limits.py), it keeps the rest of the employee flowing.
        value = clean_text(value).strip()
        return fitted_text(value) if value else None
    if isinstance(value, list | dict):
        if not value:
            return None
        # Table Storage has no list or object type; JSON keeps the structure readable, and a
        # cut drops whole trailing elements so it stays JSON.
        return fitted_json(value)
    return fitted_text(str(value))


def source_hash(
    upn: str,
    email: str | None,
    aliases: tuple[str, ...],
    fields: tuple[tuple[str, FieldValue], ...],
) -> str:
    """A digest of everything stored from the source: equal digests mean no write is needed.

    Field names are part of it, so renaming or reordering fields in the configuration rewrites
    the rows once, as it should.
    """
    canonical = json.dumps(
        [upn, email, list(aliases), [[name, value] for name, value in fields]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    # surrogatepass: a lone surrogate in a UPN or alias must not crash the run (the stored
    # values are cleaned; the digest only needs to be stable).
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]
