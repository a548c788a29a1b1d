"""Admin consent: Entra's v2 ``adminconsent`` endpoint and the page an admin accepts.

Modelled on "Admin consent on the Microsoft identity platform" (learn.microsoft.com/entra/
identity-platform/v2-admin-consent): ``GET {authority}/{tenant}/v2.0/adminconsent?client_id=&
scope=&redirect_uri=&state=`` where ``{tenant}`` is ``organizations`` (any work account) or one
tenant. On success the browser is redirected to ``redirect_uri`` with ``tenant``,
``admin_consent=True``, ``scope`` and ``state``; on failure with ``error``, ``error_subcode``
(``cancel`` when the admin declined), ``error_description`` and ``state``. The redirect URI must be
one registered on the app; otherwise Entra shows its own error page (AADSTS50011) and does not
redirect anywhere. Consent then takes seconds to replicate (PLATFORM-NOTES).

The page stands for Microsoft's sign-in and consent screens: the admin picks the tenant (the
account they sign in with) and whether that account is an administrator, then Accept or Cancel.
A ``ConsentPlan`` decides outcomes for tests: which tenant is preselected, a forced failure,
a replication delay, and ``auto`` (redirect at once, no page: for tests without a browser).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# What the admin (or the plan) chose.
OUTCOMES = ("accept", "cancel", "not_admin", "app_blocked")
# How a consent still replicating shows: "token" = AADSTS700016 at the token endpoint; "graph" =
# tokens are issued without roles, so Graph answers 403 Authorization_RequestDenied.
REPLICATION_EFFECTS = ("token", "graph")


@dataclass(frozen=True)
class ConsentSettings:
    tenant_id: str | None = None  # preselected tenant; None: the authority's, else the first
    outcome: str = "accept"  # forced on accept: "not_admin" / "app_blocked" fail it
    replication_delay: float = 0.0  # seconds during which the new consent is not yet visible
    replication_effect: str = "token"
    auto: bool = False  # answer the GET with the redirect straight away (no page)


@dataclass(frozen=True)
class ConsentRecord:
    """One consent decision, for tests to inspect (``sim.consent.history``)."""

    time: float
    client_id: str
    tenant_id: str | None
    outcome: str
    redirect_uri: str


class ConsentPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = ConsentSettings()
        self._history: list[ConsentRecord] = []
        # Redirect URIs added while running (a dev server's port is known late); kept by clear().
        self._redirect_uris: set[tuple[str, str]] = set()

    def add_redirect_uri(self, client_id: str, uri: str) -> None:
        """Register ``uri`` on the app as if it were in the world file's ``redirectUris``."""
        if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            # Entra accepts http only for localhost redirect URIs.
            raise ValueError(f"redirect URI {uri!r} must be https (or http on localhost)")
        with self._lock:
            self._redirect_uris.add((client_id.lower(), uri))

    def has_redirect_uri(self, client_id: str, uri: str) -> bool:
        with self._lock:
            return (client_id.lower(), uri) in self._redirect_uris

    def plan(
        self,
        *,
        tenant_id: str | None = None,
        outcome: str = "accept",
        replication_delay: float = 0.0,
        replication_effect: str = "token",
        auto: bool = False,
    ) -> None:
        """What the next consents do, until changed or ``clear()``ed."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown consent outcome {outcome!r}: use one of {OUTCOMES}")
        if replication_effect not in REPLICATION_EFFECTS:
            raise ValueError(
                f"unknown replication effect {replication_effect!r}: use one of "
                f"{REPLICATION_EFFECTS}"
            )
        if replication_delay < 0:
            raise ValueError("replication_delay must be >= 0 seconds")
        settings = ConsentSettings(
            tenant_id.lower() if tenant_id else None,
            outcome,
            float(replication_delay),
            replication_effect,
            auto,
        )
        with self._lock:
            self._settings = settings

    def clear(self) -> None:
        with self._lock:
            self._settings = ConsentSettings()
            self._history.clear()

    @property
    def settings(self) -> ConsentSettings:
        with self._lock:
            return self._settings

    @property
    def history(self) -> list[ConsentRecord]:
        with self._lock:
            return list(self._history)

    def record(self, entry: ConsentRecord) -> None:
        with self._lock:
            self._history.append(entry)

    def describe(self) -> dict[str, object]:
        settings = self.settings
        return {
            "tenant": settings.tenant_id,
            "outcome": settings.outcome,
            "replicationDelay": settings.replication_delay,
            "replicationEffect": settings.replication_effect,
            "auto": settings.auto,
            "history": [
                {
                    "time": h.time,
                    "clientId": h.client_id,
                    "tenant": h.tenant_id,
                    "outcome": h.outcome,
                    "redirectUri": h.redirect_uri,
                }
                for h in self.history
            ],
        }
