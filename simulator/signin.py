"""Signing an admin in: the OpenID Connect authorization-code flow with PKCE.

Modelled on "Microsoft identity platform and OAuth 2.0 authorization code flow" (learn.microsoft.
com/entra/identity-platform/v2-oauth2-auth-code-flow) and "OpenID Connect on the Microsoft
identity platform" (v2-protocols-oidc): ``GET {authority}/{tenant}/oauth2/v2.0/authorize?
client_id=&response_type=code&redirect_uri=&scope=openid profile&state=&nonce=&code_challenge=&
code_challenge_method=S256`` signs the user in and redirects to ``redirect_uri`` with ``code`` and
``state``; the code is redeemed once, within 10 minutes, at the token endpoint
(``grant_type=authorization_code`` with ``code_verifier``) for an ID token signed with the keys at
the ``jwks_uri`` of the discovery document. Its claims follow "ID token claims reference"
(id-token-claims-reference): ``iss`` = ``{authority}/{tid}/v2.0``, ``aud`` = client id, ``nonce``
as sent, ``tid``, ``oid``, ``preferred_username``, and ``wids`` (the directory role template ids
of the user; emitted when the app registration asks for them with ``groupMembershipClaims``).

A ``SignInPlan`` decides what tests need: who signs in (``auto``: no page), each user's admin
roles per tenant (an admin of tenant A is nobody in tenant B), and a defect to put in the next ID
tokens (wrong audience, nonce, issuer or signature, or expired) so the app's checks can be tried.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

# Directory role template ids ("Microsoft Entra built-in roles").
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
ID_TOKEN_DEFECTS = ("audience", "nonce", "issuer", "signature", "expired")
# Forgeries that a careless validator accepts (signin_token.py): the `organizations` discovery
# document's issuer placeholder as `iss`, no signature (alg none), HS256 keyed with the published
# RSA key, a key id nobody published.
ID_TOKEN_FORGERIES = ("template_issuer", "alg_none", "hs256", "unknown_kid")
CODE_LIFETIME = 600.0  # "authorization codes are short lived, typically they expire after 10 min"


@dataclass(frozen=True)
class SignInSettings:
    tenant_id: str | None = None  # whose users the page offers (and auto signs in)
    user_id: str | None = None  # who signs in; None: the first user of the tenant
    auto: bool = False  # answer the GET with the redirect straight away (no page)
    id_token_defect: str | None = None
    # `wids` is emitted only when the app registration asks for directory roles
    # (groupMembershipClaims: "DirectoryRole" or "All"; learn.microsoft.com/entra/identity-
    # platform/optional-claims-reference, "Configure groups optional claims"): False models
    # a registration without it.
    wids: bool = True


@dataclass(frozen=True)
class IssuedCode:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    scope: str
    tenant_id: str
    user_id: str
    expires_at: float


class SignInPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = SignInSettings()
        self._roles: dict[tuple[str, str], tuple[str, ...]] = {}
        self._codes: dict[str, IssuedCode] = {}
        self._sessions: dict[str, tuple[str, str]] = {}

    def plan(
        self,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        auto: bool = False,
        id_token_defect: str | None = None,
        wids: bool = True,
    ) -> None:
        known = ID_TOKEN_DEFECTS + ID_TOKEN_FORGERIES
        if id_token_defect is not None and id_token_defect not in known:
            raise ValueError(f"unknown ID token defect {id_token_defect!r}: {known}")
        with self._lock:
            self._settings = SignInSettings(
                tenant_id.lower() if tenant_id else None,
                user_id.lower() if user_id else None,
                auto,
                id_token_defect,
                wids,
            )

    def set_roles(self, tenant_id: str, user_id: str, roles: tuple[str, ...]) -> None:
        """The directory roles (template ids) ``user_id`` holds in ``tenant_id``."""
        with self._lock:
            self._roles[(tenant_id.lower(), user_id.lower())] = tuple(roles)

    def roles_of(self, tenant_id: str, user_id: str) -> tuple[str, ...]:
        with self._lock:
            return self._roles.get((tenant_id.lower(), user_id.lower()), ())

    def is_admin(self, tenant_id: str, user_id: str) -> bool:
        """Whether the user may grant Graph application permissions (PLATFORM-NOTES)."""
        held = self.roles_of(tenant_id, user_id)
        return GLOBAL_ADMINISTRATOR in held or PRIVILEGED_ROLE_ADMINISTRATOR in held

    @property
    def settings(self) -> SignInSettings:
        with self._lock:
            return self._settings

    def clear(self) -> None:
        with self._lock:
            self._settings = SignInSettings()
            self._codes.clear()

    def new_code(self, issued: IssuedCode) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = issued
        return code

    def take_code(self, code: str) -> IssuedCode | None:
        """A code is redeemed once (AADSTS54005 the second time)."""
        with self._lock:
            return self._codes.pop(code, None)

    def new_session(self, tenant_id: str, user_id: str) -> str:
        """The sign-in cookie: the admin-consent page knows who is signed in from it."""
        session = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[session] = (tenant_id, user_id)
        return session

    def session(self, cookie: str | None) -> tuple[str, str] | None:
        with self._lock:
            return self._sessions.get(cookie or "")


def code_expired(issued: IssuedCode) -> bool:
    return time.time() >= issued.expires_at
