"""The `state` of an admin-consent link: the only thing the anonymous callback trusts.

A state is `payload.signature`: the payload (base64url JSON) names the connect request that made
it (its nonce) and when it expires; the signature is HMAC-SHA256 over the payload with a key the
app keeps in storage. Signing proves the app made the state; the nonce row (one per request, see
app/onboarding.py) makes it single use and binds it to that request. Pure: no clock, no storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

STATE_LIFETIME = timedelta(minutes=15)
MAX_STATE_CHARS = 512  # a state is ~120 characters; anything far longer is not ours


class StateError(Exception):
    """Why a state is refused; `reason` is one of forged, expired, replayed, unbound."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# A request goes through two Microsoft steps, each with a state of its own: the admin signs in
# (OpenID Connect), then consents. The phase is signed, so one step's state never passes for the
# other's.
SIGN_IN_PHASE, CONSENT_PHASE = "s", "c"


@dataclass(frozen=True)
class ConsentState:
    nonce: str
    expires_at: datetime
    phase: str = SIGN_IN_PHASE


def sign_state(key: bytes, nonce: str, expires_at: datetime, phase: str = SIGN_IN_PHASE) -> str:
    payload = json.dumps(
        {"n": nonce, "e": int(expires_at.timestamp()), "p": phase}, separators=(",", ":")
    ).encode()
    body = _b64(payload)
    return f"{body}.{_b64(_mac(key, body))}"


def verify_state(key: bytes, state: str, now: datetime) -> ConsentState:
    """The state's request, if the app signed it and it has not expired; else StateError."""
    body, dot, signature = state.partition(".")
    if not dot or len(state) > MAX_STATE_CHARS:
        raise StateError("forged", "The link's state is not one this app issued.")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise StateError("forged", "The link's state is not one this app issued.") from None
    if not hmac.compare_digest(given, _mac(key, body)):
        raise StateError("forged", "The link's state is not one this app issued.")
    fields = json.loads(_unb64(body))  # signed by us: well formed
    expires_at = datetime.fromtimestamp(int(fields["e"]), UTC)
    if now >= expires_at:
        raise StateError(
            "expired", "The link expired (a link is valid for 15 minutes); start again."
        )
    return ConsentState(str(fields["n"]), expires_at, str(fields.get("p") or SIGN_IN_PHASE))


def state_digest(state: str) -> str:
    """What the request's row keeps of its state: a digest, so a stored row cannot be replayed."""
    return hashlib.sha256(state.encode()).hexdigest()


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _has_dot_segment(path: str) -> bool:
    """Whether a browser would resolve `.`/`..` in the path (percent-encoded too, `\\` read as
    `/`: WHATWG URL standard, "single-dot/double-dot URL path segment"), so the URL it follows
    is not the one that was compared."""
    segments = path.replace("\\", "/").lower().replace("%2e", ".").split("/")
    return any(segment in (".", "..") for segment in segments)


def consent_url(
    authority_host: str,
    client_id: str,
    graph_base_url: str,
    redirect_uri: str,
    state: str,
    tenant: str = "organizations",
) -> str:
    """Microsoft's v2 admin-consent URL ("Admin consent on the Microsoft identity platform"):
    `tenant` is the signed-in admin's tenant (known from the ID token: the consent is asked of
    that tenant only); `/.default` asks for the application permissions of the registration."""
    query = urlencode(
        {
            "client_id": client_id,
            # `/.default` cannot be combined with named scopes: GroupMember.Read.All (scope by
            # group) is consented by being on the registration (docs/deploy.md step 3).
            "scope": f"{graph_base_url}/.default",
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{authority_host}/{tenant}/v2.0/adminconsent?{query}"


def return_url_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether the browser may be sent to `url`: same scheme, host and port as an allowed URL
    and under its path. Compared parsed, never as text prefixes (https://a.example.evil)."""
    try:
        given = urlsplit(url)
        given_port = given.port
    except ValueError:
        return False
    if not all(0x21 <= ord(c) <= 0x7E for c in url):
        # NUL, CR, LF, ESC...: a browser strips some, a header splits on others. Beyond ASCII
        # (C1 controls such as NEL, bidi overrides, line separators) nothing can go into the
        # Location header unencoded (RFC 9110 5.5); a URL is ASCII (RFC 3986 2): percent-encode.
        return False
    if given.scheme not in ("https", "http") or not given.hostname or "@" in given.netloc:
        return False
    if _has_dot_segment(given.path):
        return False
    for entry in allowed:
        base = urlsplit(entry)
        if (base.scheme, base.hostname, base.port) != (given.scheme, given.hostname, given_port):
            continue
        prefix = base.path.rstrip("/")
        if given.path == prefix or given.path.startswith(prefix + "/") or not prefix:
            return True
    return False
