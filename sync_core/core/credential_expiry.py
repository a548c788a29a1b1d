"""When a Key Vault secret or certificate is about to expire, say so in time (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

EXPIRY_WARNING = timedelta(days=30)


def expiry_warning(what: str, expires_on: datetime | None, now: datetime) -> str | None:
    """A warning from 30 days before `expires_on` (Key Vault's `exp` attribute); None before
    that or without one. `what` names the credential ("the client secret 'x' in Key Vault")."""
    if expires_on is None or expires_on - now > EXPIRY_WARNING:
        return None
    day = expires_on.date().isoformat()
    if expires_on <= now:
        return f"{what} expired on {day}: syncs fail until it is renewed."
    days = max(1, (expires_on - now).days)
    return (
        f"{what} expires on {day} (in {days} day(s)): renew it and update the app "
        "registration before then, or syncs will stop."
    )


# What expiry_warning writes: "... expires on 2027-01-31 (in 12 day(s)) ..." or "... expired on
# 2027-01-31: ...". Read back by core/health.py from a run report's warnings.
_WARNING_DATE = re.compile(r" expire[sd] on (\d{4}-\d{2}-\d{2})\b")


def expiry_in_warnings(warnings: Iterable[str]) -> date | None:
    """The expiry date of the first credential warning expiry_warning wrote, if any."""
    for warning in warnings:
        found = _WARNING_DATE.search(warning)
        if found:
            return date.fromisoformat(found.group(1))
    return None
