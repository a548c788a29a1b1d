"""What every request handler shares: the world, the live directory, tokens, faults and the log."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from .consent import ConsentPlan
from .delta_plan import DeltaPlan
from .directory import Directory
from .faults import FaultPlan
from .group_store import GroupStore
from .log import RequestLog
from .photos import PhotoBook
from .signin import SignInPlan
from .tokens import TokenIssuer
from .world import World

# The public Graph audience is accepted too, so an app that keeps the default scope still works.
PUBLIC_GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
PUBLIC_VAULT_AUDIENCE = "https://vault.azure.net"


@dataclass(frozen=True)
class Endpoints:
    """Where the surfaces are reached. One server, but Key Vault is addressed by a dotted host:
    SecretClient only accepts a challenge whose resource is a parent domain of the vault's host
    (``myvault.vault.azure.net`` / ``vault.azure.net``), and ``localhost`` has no parent domain.
    So the vault is ``https://127.0.0.1:PORT`` and announces ``https://0.0.1:PORT``."""

    base_url: str
    vault_url: str
    vault_resource: str

    @property
    def graph_audiences(self) -> frozenset[str]:
        return frozenset((self.base_url, *PUBLIC_GRAPH_AUDIENCES))

    @property
    def vault_audiences(self) -> frozenset[str]:
        return frozenset((self.vault_resource, PUBLIC_VAULT_AUDIENCE))


@dataclass(frozen=True)
class Context:
    world: World
    directory: Directory
    issuer: TokenIssuer
    faults: FaultPlan
    log: RequestLog
    endpoints: Endpoints
    identity_header: str = field(repr=False)
    page_key: bytes = field(repr=False)
    delta: DeltaPlan = field(default_factory=DeltaPlan)
    # What the admin-consent page does (simulator/consent.py); tests set it through the harness.
    consent: ConsentPlan = field(default_factory=lambda: ConsentPlan())
    # Who signs in at the authorize endpoint (simulator/signin.py).
    signin: SignInPlan = field(default_factory=lambda: SignInPlan())
    groups: GroupStore = field(default_factory=GroupStore)  # simulator/group_store.py
    # Users' photos and the faults of batched photo requests (simulator/photos.py).
    photos: PhotoBook = field(default_factory=PhotoBook)


CONTEXT = web.AppKey("context", Context)
_REQUEST_ID = web.RequestKey("request_id", str)


def context_of(request: web.Request) -> Context:
    return request.app[CONTEXT]


def request_id(request: web.Request) -> str:
    """One id per request, echoed in headers and error bodies like Microsoft's services do."""
    if _REQUEST_ID not in request:
        request[_REQUEST_ID] = str(uuid.uuid4())
    return request[_REQUEST_ID]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
