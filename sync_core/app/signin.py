"""Signing the admin in before consent: who consented is proven by an ID token, not a URL.

The OpenID Connect authorization-code flow with PKCE goes through msal's
ConfidentialClientApplication (initiate_auth_code_flow / acquire_token_by_auth_code_flow: state,
PKCE and nonce), against `{ENTRA_AUTHORITY_HOST}/organizations` so an admin of any work tenant
can sign in. msal reads the ID token's claims without checking its signature (OIDC Core 3.1.3.7
lets a client rely on TLS to the token endpoint instead); this module validates it anyway, as a
service that links many customers' tenants should: signature against the keys at the `jwks_uri`
of the tenant's discovery document, `iss` = that tenant's issuer, `aud` = our client id, the
nonce, and the lifetime ("Microsoft identity platform ID tokens", "OpenID Connect on the
Microsoft identity platform"). msal is synchronous: it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from sync_core.errors import ErrorCode, LinkRefusal, RetriableError
from sync_core.settings import Settings, is_tenant_id

if TYPE_CHECKING:
    from sync_core.adapters.credentials import AppCredential

# msal, requests and azure-identity load on the first sign-in, not with function_app: a cold
# start of the timer or of most routes needs none of them (tests/unit/test_layers.py).

# msal always asks for `openid profile offline_access` itself (its reserved scopes); nothing more is
# needed: the ID token is the point. The refresh token it brings is dropped with the cache.
SIGN_IN_SCOPES: list[str] = []
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
_GRANTING_ROLES = frozenset({GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR})
_CLOCK_SKEW_SECONDS = 300
_HTTP_TIMEOUT = 20


class SignInRefused(Exception):
    """The sign-in did not prove who the admin is; `code` is stable, the message plain words."""

    def __init__(self, code: LinkRefusal, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SignedIn:
    tenant_id: str
    object_id: str
    username: str | None
    roles: tuple[str, ...] | None  # `wids`; None when the token does not carry the claim

    @property
    def may_grant(self) -> bool | None:
        """Whether the person may grant Graph application permissions; None: unknown."""
        if self.roles is None:
            return None
        return bool(_GRANTING_ROLES.intersection(self.roles))


def _application(settings: Settings, credential: Any) -> Any:
    import msal  # type: ignore[import-untyped]

    return msal.ConfidentialClientApplication(
        settings.client_id,
        client_credential=credential,
        authority=f"{settings.authority_host}/organizations",
        # A sovereign or local authority is not in Microsoft's instance-discovery list.
        instance_discovery=settings.authority_is_microsoft,
        token_cache=msal.TokenCache(),  # nothing kept between requests
    )


async def begin_sign_in(
    settings: Settings, credential: Any, redirect_uri: str, state: str
) -> dict[str, Any]:
    """The flow to keep with the connect request; its `auth_uri` is where the admin goes."""

    def begin() -> dict[str, Any]:
        import requests

        try:
            application = _application(settings, credential)  # reads the discovery document
        except requests.RequestException:
            raise RetriableError(
                ErrorCode.AUTHORITY_UNREACHABLE,
                f"The authority {settings.authority_host} could not be reached to begin the "
                "sign-in.",
                "Check ENTRA_AUTHORITY_HOST and outbound network; try again.",
            ) from None
        flow: dict[str, Any] = application.initiate_auth_code_flow(
            SIGN_IN_SCOPES,
            redirect_uri=redirect_uri,
            state=state,
            prompt="select_account",
            # The code comes back in a POST body, not in a URL that browser history, logs and
            # Referer headers keep (RFC 9700 4.3.1; Entra supports form_post).
            response_mode="form_post",
        )
        return flow

    return await asyncio.to_thread(begin)


async def finish_sign_in(
    settings: Settings, credential: Any, flow: dict[str, Any], answer: dict[str, str]
) -> SignedIn:
    """Redeem the code (msal checks state, PKCE and the nonce), then validate the ID token."""

    def finish() -> dict[str, Any]:
        import requests

        try:
            result: dict[str, Any] = _application(
                settings, credential
            ).acquire_token_by_auth_code_flow(flow, answer, scopes=SIGN_IN_SCOPES)
        except (ValueError, RuntimeError):  # msal: state or nonce mismatch (its text quotes them)
            refused = "The sign-in answer does not belong to this sign-in (state or nonce)."
            raise SignInRefused(LinkRefusal.SIGN_IN_INVALID, refused) from None
        except requests.RequestException:
            unreachable = "Microsoft's token endpoint could not be reached; start again."
            raise SignInRefused(LinkRefusal.AUTHORITY_UNREACHABLE, unreachable) from None
        return result

    result = await asyncio.to_thread(finish)
    if "id_token" not in result:
        code = str(result.get("error") or "no_id_token")
        raise SignInRefused(
            LinkRefusal.SIGN_IN_FAILED, f"Microsoft did not sign the admin in ({code})."
        )
    nonce = hashlib.sha256(str(flow["nonce"]).encode("ascii")).hexdigest()  # msal sends its hash
    claims = await asyncio.to_thread(validate_id_token, settings, result["id_token"], nonce)
    wids = claims.get("wids")
    return SignedIn(
        claims["tid"],
        str(claims.get("oid") or claims["sub"]),
        claims.get("preferred_username"),
        tuple(str(w) for w in wids) if isinstance(wids, list) else None,
    )


def validate_id_token(settings: Settings, token: str, nonce: str) -> dict[str, Any]:
    """The claims of an ID token that the tenant named in it signed for us; else SignInRefused."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SignInRefused(LinkRefusal.ID_TOKEN_INVALID, "The ID token is not a JWT.") from None
    tenant = str(unverified.get("tid") or "").lower()
    if not is_tenant_id(tenant):
        raise SignInRefused(LinkRefusal.ID_TOKEN_INVALID, "The ID token names no tenant (tid).")
    discovery = _get_json(
        f"{settings.authority_host}/{tenant}/v2.0/.well-known/openid-configuration"
    )
    key = _signing_key(_get_json(str(discovery["jwks_uri"])), header.get("kid"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=settings.client_id,
            issuer=str(discovery["issuer"]),
            leeway=_CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "aud", "iss", "tid", "nonce"]},
        )
    except jwt.InvalidAudienceError:
        raise SignInRefused(
            LinkRefusal.ID_TOKEN_INVALID, "The ID token is not for this app."
        ) from None
    except jwt.InvalidIssuerError:
        raise SignInRefused(
            LinkRefusal.ID_TOKEN_INVALID, "The ID token's issuer is not its tenant."
        ) from None
    except jwt.ExpiredSignatureError:
        raise SignInRefused(LinkRefusal.ID_TOKEN_INVALID, "The ID token has expired.") from None
    except jwt.PyJWTError as error:
        raise SignInRefused(
            LinkRefusal.ID_TOKEN_INVALID, f"The ID token is not valid: {error}."
        ) from None
    if claims["nonce"] != nonce:
        raise SignInRefused(
            LinkRefusal.ID_TOKEN_INVALID, "The ID token answers another sign-in (nonce)."
        )
    claims["tid"] = tenant
    return claims


def _signing_key(jwks: dict[str, Any], kid: object) -> Any:
    for entry in jwks.get("keys") or []:
        if entry.get("kid") == kid:
            return jwt.PyJWK(entry).key
    raise SignInRefused(
        LinkRefusal.ID_TOKEN_INVALID, "The ID token is signed with an unpublished key."
    )


def _get_json(url: str) -> dict[str, Any]:
    # requests trusts REQUESTS_CA_BUNDLE, like msal's own HTTP client.
    import requests

    try:
        answer = requests.get(url, timeout=_HTTP_TIMEOUT)
        answer.raise_for_status()
        document: dict[str, Any] = json.loads(answer.text)
    except (requests.RequestException, ValueError) as error:
        raise SignInRefused(
            LinkRefusal.AUTHORITY_UNREACHABLE,
            f"The authority's keys could not be read ({type(error)}).",
        ) from None
    return document


def msal_credential(settings: Settings, app: AppCredential) -> Any:
    """The app registration's credential in the form msal takes: a secret, a certificate's key
    and thumbprint, or a client-assertion callable (the federated credential)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    from sync_core.adapters.credentials import token_exchange

    if app.kind == "federated":
        return {"client_assertion": token_exchange(settings)}
    if app.kind == "certificate":
        pem = app.material
        certificate = x509.load_pem_x509_certificate(pem)
        key = serialization.load_pem_private_key(pem, password=None)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {
            "private_key": key_pem.decode(),
            "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),
        }
    return app.material.decode()
