"""Access tokens: signed JWTs shaped like Entra's app-only tokens.

Signed rather than opaque so the resource surfaces need no shared token table, and so the app
(or a test) can read ``roles``/``tid``/``aud`` the way it would from a real token. The signing
key is published at ``/{tenant}/discovery/v2.0/keys``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class Grant:
    """What a verified token says about its caller."""

    tenant_id: str
    client_id: str
    audience: str
    roles: tuple[str, ...]
    expires_on: int
    kind: str  # "app" (client credentials) | "managed_identity"


class TokenError(Exception):
    """A token a resource must reject; ``reason`` is worded like Graph's 401 messages."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class TokenIssuer:
    def __init__(self, issuer_base: str, lifetime: int = 3599):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._issuer_base = issuer_base
        self.lifetime = lifetime
        # Tokens issued before this instant count as expired (see Simulator.expire_tokens).
        self._not_before = 0.0

    def issue(
        self,
        grant_tenant: str,
        client_id: str,
        audience: str,
        roles: tuple[str, ...],
        kind: str,
        subject: str | None = None,
    ) -> tuple[str, int]:
        """``subject`` is the caller's object id (``oid`` = ``sub`` in app-only tokens); a
        managed identity's is what a federated identity credential must name."""
        now = int(time.time())
        object_id = subject or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{grant_tenant}/{client_id}"))
        expires_on = now + self.lifetime
        claims = {
            "aud": audience,
            "iss": self.issuer_of(grant_tenant),
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "appid": client_id,
            "azp": client_id,
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "roles": list(roles),
            "tid": grant_tenant,
            "ver": "2.0",
            "xms_mi": kind == "managed_identity",
            "uti": secrets.token_urlsafe(16),
            "iat_precise": time.time(),
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": self._kid}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}", expires_on

    def sign(self, claims: dict[str, Any], *, forged: bool = False) -> str:
        """Any token with this issuer's key id; ``forged`` signs with a key nobody published
        (an ID token whose signature the app must refuse)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if forged else None
        header = {"alg": "RS256", "typ": "JWT", "kid": self._kid}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        signature = (key or self._key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str) -> Grant:
        claims = self.signed_claims(token)
        # Only this issuer's signature got us here, so the claims are our own and complete.
        if claims["exp"] <= time.time() or claims.get("iat_precise", 0) < self._not_before:
            raise TokenError("Lifetime validation failed, the token is expired.")
        kind = "managed_identity" if claims.get("xms_mi") else "app"
        return Grant(
            claims["tid"],
            claims["appid"],
            claims["aud"],
            tuple(claims["roles"]),
            claims["exp"],
            kind,
        )

    def signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed, lifetime not checked (the caller decides:
        a resource answers 401, the token endpoint AADSTS700024 for an expired assertion)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("IDX14100: JWT is not well formed, there are no dots (.).")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except ValueError as error:
            raise TokenError("IDX14102: Unable to decode the token.") from error
        if header.get("kid") != self._kid:
            raise TokenError("Access token validation failure: unknown signing key.")
        try:
            self._key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as error:
            raise TokenError("Access token validation failure: invalid signature.") from error
        if not isinstance(claims, dict):
            raise TokenError("IDX14102: Unable to decode the token.")
        return claims

    def revoked(self, claims: dict[str, Any]) -> bool:
        """Issued before expire_all(): counts as expired."""
        return claims.get("iat_precise", 0) < self._not_before

    def issuer_of(self, tenant_id: str) -> str:
        """The ``iss`` of this issuer's tokens for a tenant: what a federated identity credential
        trusting the managed identity names as its issuer."""
        return f"{self._issuer_base}/{tenant_id}/v2.0"

    def expire_all(self) -> None:
        self._not_before = time.time()

    def jwks(self) -> dict[str, object]:
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self._kid,
                    "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": _b64(numbers.e.to_bytes(3, "big")),
                }
            ]
        }


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
