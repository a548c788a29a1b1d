"""The consent state's signature and expiry, the return-URL allow-list and the consent URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from sync_core.core.consent_state import (
    CONSENT_PHASE,
    SIGN_IN_PHASE,
    StateError,
    consent_url,
    return_url_allowed,
    sign_state,
    state_digest,
    verify_state,
)

KEY = b"k" * 32
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_signed_state_verifies_until_it_expires():
    state = sign_state(KEY, "nonce-1", NOW + timedelta(minutes=15))
    assert verify_state(KEY, state, NOW + timedelta(minutes=14)).nonce == "nonce-1"
    with pytest.raises(StateError) as late:
        verify_state(KEY, state, NOW + timedelta(minutes=15))
    assert late.value.reason == "expired"


@pytest.mark.parametrize("tamper", ["other key", "payload", "signature", "no dot", "huge"])
def test_a_state_not_signed_by_the_key_is_forged(tamper):
    state = sign_state(KEY, "nonce-1", NOW + timedelta(minutes=15))
    body, _, signature = state.partition(".")
    forged = {
        "other key": sign_state(b"x" * 32, "nonce-1", NOW + timedelta(minutes=15)),
        "payload": sign_state(KEY, "nonce-2", NOW).partition(".")[0] + "." + signature,
        "signature": body + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"),
        "no dot": body + signature,
        "huge": body + "." + signature + "A" * 600,
    }[tamper]
    with pytest.raises(StateError) as refused:
        verify_state(KEY, forged, NOW)
    assert refused.value.reason == "forged"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://app.example.com/tenants", True),
        ("https://app.example.com/tenants/linked?x=1", True),
        ("https://app.example.com/tenantsX", False),
        ("https://app.example.com.evil.net/tenants", False),
        ("http://app.example.com/tenants", False),
        ("https://app.example.com:8443/tenants", False),
        ("https://user@app.example.com/tenants", False),
        ("javascript:alert(1)", False),
        ("https://other.example.com/", True),
        ("https://[::1/x", False),
        # A browser resolves dot segments (also percent-encoded, and `\` as `/`) before it
        # follows the redirect: each of these lands outside /tenants.
        ("https://app.example.com/tenants/../admin", False),
        ("https://app.example.com/tenants/%2E%2E/admin", False),
        ("https://app.example.com/tenants/.%2e/admin", False),
        ("https://app.example.com/tenants\\..\\admin", False),
        # A password with an empty user name is still credentials in the URL.
        ("https://:secret@app.example.com/tenants", False),
    ],
)
def test_return_urls_are_compared_parsed(url, allowed):
    allow = ("https://app.example.com/tenants/", "https://other.example.com")
    assert return_url_allowed(url, allow) is allowed


def test_nothing_is_allowed_without_an_allow_list():
    assert not return_url_allowed("https://app.example.com/", ())


def test_consent_url_names_the_app_graph_default_scope_and_callback():
    url = consent_url(
        "https://login.microsoftonline.us", "cid", "https://graph.microsoft.us", "https://f/cb", "s"
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == (
        "login.microsoftonline.us",
        "/organizations/v2.0/adminconsent",
    )
    assert parse_qs(parts.query) == {
        "client_id": ["cid"],
        "scope": ["https://graph.microsoft.us/.default"],
        "redirect_uri": ["https://f/cb"],
        "state": ["s"],
    }


def test_the_phase_is_signed_so_one_steps_state_never_passes_for_the_others():
    key = b"k" * 32
    expires = datetime(2026, 1, 1, 12, tzinfo=UTC)
    now = expires - timedelta(minutes=1)
    sign_in = sign_state(key, "n1", expires)
    consent = sign_state(key, "n1", expires, CONSENT_PHASE)
    assert verify_state(key, sign_in, now).phase == SIGN_IN_PHASE
    assert verify_state(key, consent, now).phase == CONSENT_PHASE
    assert sign_in != consent and state_digest(sign_in) != state_digest(consent)


def test_the_consent_url_names_the_signed_in_tenant():
    url = consent_url(
        "https://login.example", "app", "https://graph.example", "https://cb", "s", "t1"
    )
    assert url.startswith("https://login.example/t1/v2.0/adminconsent?")


@pytest.mark.parametrize(
    "char", ["\x00", "\r", "\n", "\x1b", "\x7f", "\t", "\x85", "\x9b", "\u202e", "\u2028", " "]
)
def test_a_return_url_with_a_control_character_is_refused(char):
    allowed = ("https://dash.example/tenants",)
    assert return_url_allowed("https://dash.example/tenants/ok", allowed)
    assert not return_url_allowed(f"https://dash.example/tenants/o{char}k", allowed)
