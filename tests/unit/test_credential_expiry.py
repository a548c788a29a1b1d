"""The 30-day warning before a Key Vault secret or certificate expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync_core.core.credential_expiry import expiry_warning

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_no_warning_without_an_expiry_or_more_than_30_days_ahead():
    assert expiry_warning("The secret 'x'", None, NOW) is None
    assert expiry_warning("The secret 'x'", NOW + timedelta(days=30, seconds=1), NOW) is None


def test_a_warning_from_30_days_ahead_names_the_credential_and_the_day():
    warning = expiry_warning("The secret 'x' in Key Vault", NOW + timedelta(days=30), NOW)
    assert warning == (
        "The secret 'x' in Key Vault expires on 2026-12-30 (in 30 day(s)): renew it and update "
        "the app registration before then, or syncs will stop."
    )
    assert "in 1 day(s)" in (expiry_warning("c", NOW + timedelta(hours=2), NOW) or "")


def test_an_expired_credential_says_so():
    assert expiry_warning("c", NOW - timedelta(days=1), NOW) == (
        "c expired on 2026-11-29: syncs fail until it is renewed."
    )
