"""Redeeming an authorization code at the token endpoint (``grant_type=authorization_code``):
PKCE, single use, then the ID token (simulator/signin.py has the model and its sources)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .context import context_of
from .signin import ID_TOKEN_FORGERIES, IssuedCode, code_expired


async def redeem_code(request: web.Request, name: str, form: Mapping[str, object]) -> web.Response:
    from .identity import authenticate_client  # identity routes here

    ctx = context_of(request)
    issued = ctx.signin.take_code(str(form.get("code", "")))
    refused = _code_refused(request, issued, form)
    if refused is not None:
        return refused
    assert issued is not None  # _code_refused answered for a missing code
    app = ctx.world.app(issued.client_id)
    tenant = ctx.directory.find_tenant(issued.tenant_id)
    assert app is not None and tenant is not None  # both were there when the code was issued
    refused = authenticate_client(request, ctx, app, tenant, name, form)
    if refused is not None:
        return refused
    access_token, _ = ctx.issuer.issue(
        issued.tenant_id, issued.client_id, ctx.endpoints.base_url, (), kind="app"
    )
    client_info = {"uid": issued.user_id, "utid": issued.tenant_id}
    return web.json_response(
        {
            "token_type": "Bearer",
            "scope": issued.scope,
            "expires_in": ctx.issuer.lifetime,
            "access_token": access_token,
            "id_token": _id_token(request, issued),
            "client_info": _b64(json.dumps(client_info).encode()),
        }
    )


def _code_refused(
    request: web.Request, issued: IssuedCode | None, form: Mapping[str, object]
) -> web.Response | None:
    """The code's own checks: once, in time, same client and redirect URI, the PKCE verifier."""
    from .identity import entra_error

    if issued is None or code_expired(issued):
        return entra_error(
            request,
            400,
            "invalid_grant",
            54005 if issued is None else 70008,
            "The provided authorization code or refresh token has expired or was already "
            "redeemed. Send a new interactive authorization request for this user.",
        )
    client_id = str(form.get("client_id", "")).strip().lower()
    if client_id != issued.client_id or str(form.get("redirect_uri", "")) != issued.redirect_uri:
        return entra_error(
            request,
            400,
            "invalid_grant",
            50148 if client_id == issued.client_id else 70000,
            "The redirect_uri or client_id does not match the authorization request.",
        )
    if not _verifier_matches(issued, str(form.get("code_verifier", ""))):
        return entra_error(
            request,
            400,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization "
            "request.",
        )
    return None


def _verifier_matches(issued: IssuedCode, verifier: str) -> bool:
    """RFC 7636 4.6: S256 compares BASE64URL(SHA256(verifier)) with the challenge."""
    if issued.code_challenge is None:
        return True  # PKCE not used by this request
    if issued.code_challenge_method == "S256":
        digest = _b64(hashlib.sha256(verifier.encode()).digest())
        return secrets.compare_digest(digest, issued.code_challenge)
    return secrets.compare_digest(verifier, issued.code_challenge)


def _id_token(request: web.Request, issued: IssuedCode) -> str:
    ctx = context_of(request)
    defect = ctx.signin.settings.id_token_defect
    user = ctx.directory.user(issued.tenant_id, issued.user_id) or {}
    now = int(time.time())
    tenant = issued.tenant_id
    claims: dict[str, object] = {
        "aud": issued.client_id,
        "iss": ctx.issuer.issuer_of(tenant),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": user.get("displayName"),
        "oid": issued.user_id,
        "preferred_username": user.get("userPrincipalName"),
        "sub": _b64(hashlib.sha256(f"{issued.user_id}/{issued.client_id}".encode()).digest()),
        "tid": tenant,
        "uti": secrets.token_urlsafe(16),
        "ver": "2.0",
    }
    if ctx.signin.settings.wids:  # the app registration asks for directory roles
        claims["wids"] = list(ctx.signin.roles_of(tenant, issued.user_id))
    if issued.nonce is not None:
        claims["nonce"] = issued.nonce
    if defect == "audience":
        claims["aud"] = str(uuid.uuid4())
    elif defect == "nonce":
        claims["nonce"] = secrets.token_urlsafe(16)
    elif defect == "issuer":
        claims["iss"] = ctx.issuer.issuer_of(str(uuid.uuid4()))
    elif defect == "expired":
        claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    elif defect == "template_issuer":
        # The issuer of the `organizations` discovery document (identity.py: discovery), with
        # its `{tenantid}` placeholder left in: what a validator comparing with that would take.
        claims["iss"] = f"{ctx.endpoints.base_url}/{{tenantid}}/v2.0"
    if defect in ID_TOKEN_FORGERIES[1:]:
        return _forged(ctx.issuer.jwks()["keys"][0], claims, defect)
    return ctx.issuer.sign(claims, forged=defect == "signature")


def _forged(published: dict[str, str], claims: dict[str, object], defect: str) -> str:
    """What an attacker without the signing key can make: no signature, an HMAC keyed with the
    published public key (RFC 8725 2.1, 3.1: algorithm confusion), or another key and kid."""
    kid = secrets.token_hex(8) if defect == "unknown_kid" else published["kid"]
    alg = {"alg_none": "none", "hs256": "HS256"}.get(defect, "RS256")
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if defect == "alg_none":
        return f"{signing_input}."
    if defect == "hs256":
        numbers = rsa.RSAPublicNumbers(_int(published["e"]), _int(published["n"]))
        pem = numbers.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
