"""Why one user gets the address it gets, what its row would become, and whether Clean Up
removes it: the rest of `explain`, in plain words.

The chosen address is `mapping.resolve_addresses`'s answer; each source it passed over is
judged with mapping.py's own reading of a value (`_address`, `_smtp_addresses`), so the
explanation states the rules a run applies, never a second version of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sync_core.core.config import CleanUp, EmailRules
from sync_core.core.limits import clean_text
from sync_core.core.mapping import _GUEST_MARK, _address, _smtp_addresses, resolve_addresses
from sync_core.core.plan import DeletionDecision

# Columns a diff leaves out: keys, and what changes on every write whatever the source says.
EMAIL_MISSING = "EmailMissingSince"  # the adapter's column (employee_rows.EMAIL_MISSING_SINCE)
UNCOMPARED = frozenset({"PartitionKey", "RowKey", "Timestamp", "etag", "SyncedAt", "RunId"})


@dataclass(frozen=True)
class SourceVerdict:
    source: str  # proxyAddresses, mail, otherMails, userPrincipalName
    outcome: str  # chosen, unusable, off, notNeeded
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "outcome": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class AddressVerdict:
    email: str | None
    source: str | None
    aliases: tuple[str, ...]
    sources: tuple[SourceVerdict, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "source": self.source,
            "aliases": list(self.aliases),
            "sources": [s.to_json() for s in self.sources],
        }


def explain_addresses(user: Mapping[str, Any], rules: EmailRules) -> AddressVerdict:
    """Each address source in the order of precedence: chosen, passed over and why, or off."""
    chosen = resolve_addresses(user, rules)
    options = (
        ("proxyAddresses", rules.proxy_addresses, "email.proxyAddresses is false"),
        ("mail", True, ""),
        ("otherMails", rules.other_mails, "email.otherMails is false"),
        ("userPrincipalName", rules.user_principal_name,
         "email.userPrincipalName is false (the default: a sign-in name is often no mailbox)"),
    )  # fmt: skip
    verdicts = []
    for source, on, off in options:
        if not on:
            verdicts.append(SourceVerdict(source, "off", f"not used: {off}"))
        elif source == chosen.source:
            verdicts.append(SourceVerdict(source, "chosen", f"chosen: {chosen.email}"))
        elif chosen.source is not None and _found_before(source, chosen.source):
            verdicts.append(
                SourceVerdict(source, "notNeeded", f"not needed: {chosen.source} comes first")
            )
        else:
            verdicts.append(SourceVerdict(source, "unusable", _why_unusable(source, user)))
    return AddressVerdict(chosen.email, chosen.source, chosen.aliases, tuple(verdicts))


_ORDER = ("proxyAddresses", "mail", "otherMails", "userPrincipalName")


def _found_before(source: str, chosen: str) -> bool:
    return _ORDER.index(chosen) < _ORDER.index(source)


def _why_unusable(source: str, user: Mapping[str, Any]) -> str:
    value = user.get(source)
    if source == "proxyAddresses":
        return _why_no_primary(value)
    if source == "otherMails":
        values = [v for v in value or [] if v]
        if not values:
            return "no usable address: otherMails is empty"
        return "no usable address: " + "; ".join(_why_not_address(v) for v in values[:5])
    return f"no usable address: {source} " + _why_not_address(value).removeprefix("the value ")


def _why_no_primary(entries: Any) -> str:
    if not entries:
        return "no usable address: proxyAddresses is empty"
    _, secondaries = _smtp_addresses(entries)
    uppercase = [e for e in entries if isinstance(e, str) and e.partition(":")[0].strip() == "SMTP"]
    if uppercase:
        return "no usable address: the SMTP: entry " + "; ".join(
            _why_not_address(e.partition(":")[2]) for e in uppercase[:3]
        )
    if secondaries:
        return (
            "no usable address: no SMTP: entry (the primary address is the one written in "
            f"upper case); the lower-case smtp: entries {', '.join(secondaries[:3])} are kept "
            "as aliases"
        )
    lowered = [e for e in entries if isinstance(e, str) and e.lower().startswith("smtp:")]
    if lowered:
        return "no usable address: " + "; ".join(
            _why_not_address(e.partition(":")[2]) for e in lowered[:3]
        )
    kinds = sorted({str(e).partition(":")[0] for e in entries})
    return f"no usable address: no SMTP: entry (only {', '.join(kinds)} entries)"


def _why_not_address(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        return "is empty"
    shown = clean_text(value.strip())[:120]
    if _GUEST_MARK in value.lower():
        return f"{shown!r} is a guest's #EXT# form, which reaches no mailbox"
    if _address(value) is not None:
        return f"{shown!r} is an address, but a source before it decided"
    return f"{shown!r} is not an email address"


# --- the row -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnChange:
    column: str
    stored: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "stored": self.stored, "new": self.new}


def row_difference(
    new: Mapping[str, Any] | None, stored: Mapping[str, Any] | None
) -> tuple[ColumnChange, ...]:
    """Column by column, what a write would change (a missing column reads as None), in the
    row's order: the address columns first, the configured fields, the source hash last."""
    seen = [*(new or {}), *(c for c in (stored or {}) if c not in (new or {}))]
    first = ("Email", "UserPrincipalName", "Aliases", EMAIL_MISSING)
    columns = [c for c in first if c in seen] + [c for c in seen if c not in first]
    columns.sort(key=lambda column: column == "SourceHash")  # stable: only moves it last
    changes = []
    for column in columns:
        if column in UNCOMPARED:
            continue
        before = jsonable((stored or {}).get(column))
        after = jsonable((new or {}).get(column))
        if before != after:
            changes.append(ColumnChange(column, before, after))
    return tuple(changes)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(json.dumps(value, default=str))


# --- Clean Up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanUpVerdict:
    removes: bool  # the next run (or --apply) deletes the stored row
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"removes": self.removes, "detail": self.detail}


def explain_clean_up(
    *,
    stored: bool,
    in_scope: bool,
    has_address: bool,
    missing_since: datetime | None,
    clean_up: CleanUp,
    guard: DeletionDecision | None,
    now: datetime,
) -> CleanUpVerdict:
    """Whether Clean Up removes this user's row, as `passes.finish` decides for a run;
    `guard` is plan.guard_deletions' decision for this one row when it is a candidate."""
    if not stored:
        return CleanUpVerdict(
            False, "Nothing is stored for this user, so there is nothing to remove."
        )
    if in_scope and has_address:
        return CleanUpVerdict(False, "In scope with an address: Clean Up keeps the row.")
    if in_scope:
        grace = timedelta(hours=clean_up.email_missing_grace_hours)
        since = missing_since or now
        due = since + grace
        if now < due:
            return CleanUpVerdict(
                False,
                f"In scope without an address since {jsonable(since)}: the row is kept (marked "
                f"EmailMissingSince) until {jsonable(due)}, the end of the "
                f"{clean_up.email_missing_grace_hours:g} h grace period"
                + ("." if clean_up.enabled else "; clean-up is off, so kept after that too."),
            )
        why = f"In scope without an address for more than {clean_up.email_missing_grace_hours:g} h"
    else:
        why = "No longer in scope"
    if not clean_up.enabled:
        return CleanUpVerdict(
            False, f"{why}, but clean-up is off (cleanUp.enabled): the row is kept."
        )
    if guard is not None and guard.held:
        return CleanUpVerdict(False, f"{why}: Clean Up would remove the row, but {guard.reason}.")
    # Judged alone; a run's guard counts all of that run's removals together (plan.py).
    return CleanUpVerdict(
        True,
        f"{why}: Clean Up removes the row in the next run, unless that run's removals together "
        f"pass maxDeletes ({clean_up.max_deletes}) or maxDeletePercent "
        f"({clean_up.max_delete_percent:g}%) of the stored employees: then the guard holds them "
        "all. --apply removes this one row now (the guard judging it alone).",
    )
