"""Client assertions at the token endpoint: a JWT signed with the app's certificate, or a token
from a trusted issuer exchanged through a federated identity credential.

Modelled on Microsoft's pages "Microsoft identity platform application authentication certificate
credentials" (the assertion: header ``alg`` RS256/PS256 and ``x5t`` or ``x5t#S256``, the
certificate's base64url SHA-1/SHA-256 thumbprint; claims ``aud`` = the token endpoint,
``iss`` = ``sub`` = the client id, ``exp``, ``nbf``, ``jti``), "Workload identity federation" and
"Configure an application to trust a managed identity" (the managed identity's token for
``api://AzureADTokenExchange`` presented as ``client_assertion``; the app's federated identity
credential must match its issuer, subject and audience exactly). AADSTS codes and texts follow
the "Microsoft Entra authentication and authorization error codes" reference and the texts Entra
sends (AADSTS700211/700212/700213 for the federated record's issuer/audience/subject, 70021 for no
record at all, 700027 for the signature or key, 700024 for the time range, 700023 for the
audience, 700021 for iss/sub vs client_id).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .tokens import TokenError, TokenIssuer
from .world import App, KeyCredential

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Entra tolerates a few minutes of clock skew on assertion lifetimes.
CLOCK_SKEW = 300


@dataclass(frozen=True)
class AssertionRefused(Exception):
    """What the token endpoint answers: HTTP status, OAuth ``error``, AADSTS code, text."""

    status: int
    error: str
    code: int
    description: str


def check_assertion(
    assertion: str,
    app: App,
    token_endpoints: Iterable[str],
    issuer: TokenIssuer,
    authority: str,
    now: dt.datetime | None = None,
) -> str:
    """Accept ``assertion`` for ``app`` or raise AssertionRefused; answers which credential
    kind authenticated the client: ``"certificate"`` or ``"federated"``."""
    header, claims, signing_input, signature = _parts(assertion)
    moment = now or dt.datetime.now(dt.UTC)
    # Entra tells the two apart by the issuer: an app's own assertion is issued by itself.
    if app.client_id in (claims.get("iss"), claims.get("sub")):
        _check_certificate(header, claims, signing_input, signature, app, token_endpoints, moment)
        return "certificate"
    _check_federated(assertion, claims, app, issuer, moment, authority)
    return "federated"


def _parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    pieces = assertion.split(".")
    if len(pieces) != 3:
        raise _malformed()
    try:
        header = json.loads(_unb64(pieces[0]))
        claims = json.loads(_unb64(pieces[1]))
        signature = _unb64(pieces[2])
    except ValueError:
        raise _malformed() from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _malformed()
    return header, claims, f"{pieces[0]}.{pieces[1]}".encode(), signature


def _malformed() -> AssertionRefused:
    return AssertionRefused(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


def _check_certificate(
    header: dict[str, Any],
    claims: dict[str, Any],
    signing_input: bytes,
    signature: bytes,
    app: App,
    token_endpoints: Iterable[str],
    now: dt.datetime,
) -> None:
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise AssertionRefused(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. "
            "Review the documentation at https://learn.microsoft.com/entra/identity-platform/"
            "certificate-credentials .",
        )
    audiences = {e.lower() for e in token_endpoints}
    aud = claims.get("aud")
    if not isinstance(aud, str) or aud.lower().rstrip("/") not in audiences:
        raise AssertionRefused(
            401,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the "
            "documentation at https://learn.microsoft.com/entra/identity-platform/"
            "certificate-credentials .",
        )
    _check_lifetime(claims, now)
    presented = header.get("x5t#S256") or header.get("x5t")
    key = _registered_key(header, app)
    if key is None:
        raise _signature_problem(
            f"The key was not found., Thumbprint of key used by client: "
            f"'{_hex_thumbprint(presented)}'"
        )
    if key.end <= now:
        raise _signature_problem(
            f"The key used is expired., Thumbprint of key used by client: "
            f"'{key.thumbprint_hex}', Found key 'Start={key.start:%m/%d/%Y %H:%M:%S}, "
            f"End={key.end:%m/%d/%Y %H:%M:%S}'"
        )
    public_key = key.certificate.public_key()
    alg = header.get("alg")
    if not isinstance(public_key, rsa.RSAPublicKey) or alg not in ("RS256", "PS256"):
        raise _signature_problem(f"The signing algorithm '{alg}' is not supported.")
    pad = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    )
    try:
        public_key.verify(signature, signing_input, pad, hashes.SHA256())
    except InvalidSignature:
        if alg == "PS256":
            # PSS signers may pick another salt length; the verifier accepts any.
            try:
                public_key.verify(
                    signature,
                    signing_input,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                    hashes.SHA256(),
                )
                return
            except InvalidSignature:
                pass
        raise _signature_problem(
            "The provided signature value did not match the expected signature value."
        ) from None


def _registered_key(header: dict[str, Any], app: App) -> KeyCredential | None:
    # base64url with or without "=" padding: azure-identity keeps it, MSAL strips it.
    s256 = str(header.get("x5t#S256") or "").rstrip("=")
    sha1 = str(header.get("x5t") or "").rstrip("=")
    for key in app.key_credentials:
        if (s256 and s256 == key.x5t_s256) or (sha1 and sha1 == key.x5t):
            return key
    return None


def _signature_problem(reason: str) -> AssertionRefused:
    return AssertionRefused(
        401,
        "invalid_client",
        700027,
        f"Client assertion failed signature validation. [Reason - {reason}]",
    )


def _check_lifetime(claims: dict[str, Any], now: dt.datetime) -> None:
    stamp = now.timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if (
        not isinstance(exp, int | float)
        or exp + CLOCK_SKEW <= stamp
        or (isinstance(nbf, int | float) and nbf - CLOCK_SKEW > stamp)
    ):
        current = dt.datetime.fromtimestamp(stamp, dt.UTC)
        raise AssertionRefused(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: "
            f"{current:%Y-%m-%dT%H:%M:%S}Z, assertion valid from "
            f"{_when(nbf)}, expiry time of assertion {_when(exp)}. Review the documentation at "
            "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        )


def _check_federated(
    assertion: str,
    claims: dict[str, Any],
    app: App,
    issuer: TokenIssuer,
    now: dt.datetime,
    authority: str,
) -> None:
    iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
    records = app.federated_credentials
    if not records:
        raise AssertionRefused(
            400,
            "invalid_request",
            70021,
            f"No matching federated identity record found for presented assertion. Assertion "
            f"Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.",
        )
    # Entra validates the external token against its issuer's published keys; the only issuer
    # the simulator can vouch for is itself (its managed-identity tokens).
    try:
        issuer.signed_claims(assertion)
    except TokenError:
        raise _signature_problem("The key was not found in the issuer's published keys.") from None
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    # "{authority}" in a world file's issuer stands for the simulator's own base URL, which is
    # only known once it has bound its port.
    with_issuer = [r for r in records if r.issuer.replace("{authority}", authority) == iss]
    if not with_issuer:
        raise AssertionRefused(
            400,
            "invalid_client",
            700211,
            f"No matching federated identity record found for presented assertion issuer "
            f"'{iss}'. Please check your federated identity credential Subject, Audience and "
            "Issuer against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        )
    with_audience = [r for r in with_issuer if any(a in r.audiences for a in audiences)]
    if not with_audience:
        raise AssertionRefused(
            400,
            "invalid_client",
            700212,
            f"No matching federated identity record found for presented assertion audience "
            f"'{aud}'. Please check your federated identity credential Subject, Audience and "
            "Issuer against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        )
    if not any(r.subject == sub for r in with_audience):
        raise AssertionRefused(
            400,
            "invalid_client",
            700213,
            f"No matching federated identity record found for presented assertion subject "
            f"'{sub}'. Please check your federated identity credential Subject, Audience and "
            "Issuer against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        )
    if issuer.revoked(claims):
        claims = {**claims, "exp": 0}
    _check_lifetime(claims, now)


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "(none)"
    return f"{dt.datetime.fromtimestamp(value, dt.UTC):%Y-%m-%dT%H:%M:%S}Z"


def _hex_thumbprint(value: Any) -> str:
    if not isinstance(value, str):
        return "(none)"
    try:
        return _unb64(value).hex().upper()
    except ValueError:
        return value


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
