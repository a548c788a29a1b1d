"""When a Key Vault secret or certificate is about to expire, say so in time (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

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
