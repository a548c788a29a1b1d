"""``Simulator``: the server in a background thread with its own event loop, plus the API tests
use to change the world and inspect what the app sent."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .certs import DEFAULT_SERVER_NAMES, CertificateAuthority
from .consent import ConsentPlan
from .context import Context, Endpoints
from .delta_plan import DeltaPlan
from .directory import Directory, Paging
from .faults import FaultPlan
from .group_store import GroupStore
from .log import RequestLog, RequestRecord
from .photos import PhotoBook
from .server import build_application
from .signin import SignInPlan
from .tokens import TokenIssuer
from .world import Tenant, World

_WILDCARDS = ("", "0.0.0.0", "::")


class Simulator:
    def __init__(
        self,
        world: World,
        *,
        ca: CertificateAuthority,
        host: str = "localhost",
        port: int = 0,
        token_lifetime: int = 3599,
    ):
        self.world = world
        self.ca = ca
        self.host = host
        self._requested_port = port
        self._token_lifetime = token_lifetime
        self.faults = FaultPlan()
        self.delta = DeltaPlan()  # /users/delta knobs and its simulated clock
        # What the admin-consent page does next (simulator/consent.py).
        self.consent = ConsentPlan()
        # Who signs in at the authorize endpoint, and their admin roles (simulator/signin.py).
        self.signin = SignInPlan()
        # Groups and their (nested) members: sim.groups.put_group / add_member / remove_member /
        # rename / delete_group (simulator/group_store.py).
        self.groups = GroupStore()
        # Users' photos (simulator/photos.py): set_photo, remove_photo, set_mailbox, fail_batched.
        self.photos = PhotoBook()
        self._log = RequestLog()
        self._directory = Directory(world)
        self._identity_header = secrets.token_urlsafe(24)
        self._context: Context | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    # ------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind, then serve in a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._started.clear()
        self._startup_error = None
        sockets = _bind(self.host, self._requested_port)
        port = sockets[0].getsockname()[1]
        endpoints = _endpoints(self.host, port)
        names = DEFAULT_SERVER_NAMES + tuple(
            n
            for n in (_public_host(self.host), _vault_host(self.host))
            if n not in DEFAULT_SERVER_NAMES
        )
        ssl_context = self.ca.server_ssl_context(names)
        self._context = Context(
            world=self.world,
            directory=self._directory,
            issuer=TokenIssuer(endpoints.base_url, self._token_lifetime),
            faults=self.faults,
            log=self._log,
            endpoints=endpoints,
            identity_header=self._identity_header,
            page_key=secrets.token_bytes(32),
            delta=self.delta,
            consent=self.consent,
            signin=self.signin,
            groups=self.groups,
            photos=self.photos,
        )
        app = build_application(self._context)
        self._thread = threading.Thread(
            target=self._serve, args=(app, sockets, ssl_context), name="simulator", daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the simulator failed to start") from self._startup_error

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _serve(self, app: web.Application, sockets: list[socket.socket], ssl_context: Any) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        # A short shutdown timeout: a test should not wait on clients' idle keep-alive sockets.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            for sock in sockets:
                loop.run_until_complete(web.SockSite(runner, sock, ssl_context=ssl_context).start())
        except BaseException as error:  # noqa: BLE001 - start() re-raises it in the caller
            self._startup_error = error
            self._started.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # ------------------------------------------------------------------------- addresses

    @property
    def endpoints(self) -> Endpoints:
        if self._context is None:
            raise RuntimeError("start() the simulator first: its port is chosen when it binds")
        return self._context.endpoints

    @property
    def base_url(self) -> str:
        return self.endpoints.base_url

    @property
    def vault_url(self) -> str:
        return self.endpoints.vault_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def identity_header(self) -> str:
        return self._identity_header

    def environment(self, tenant_id: str | None = None) -> dict[str, str]:
        """App settings that point the app at this simulator. No client secret: the app reads
        it from the simulated vault with the managed identity, as it does in Azure."""
        ca = str(self.ca.ca_path)
        env = {
            "SSL_CERT_FILE": ca,
            "REQUESTS_CA_BUNDLE": ca,
            "ENTRA_AUTHORITY_HOST": self.base_url,
            "GRAPH_BASE_URL": self.base_url,
            "KEY_VAULT_URL": self.vault_url,
        }
        tenant = tenant_id or (self.world.tenants[0].id if self.world.tenants else None)
        if tenant:
            env["ENTRA_TENANT_ID"] = tenant
        if self.world.apps:
            app = self.world.apps[0]
            env["ENTRA_CLIENT_ID"] = app.client_id
            name = next(
                (n for n, v in self.world.key_vault.secrets.items() if v in app.secrets), None
            )
            if name:
                env["ENTRA_CLIENT_SECRET_NAME"] = name
        if self.world.managed_identity:
            env["IDENTITY_ENDPOINT"] = f"{self.base_url}/msi/token"
            env["IDENTITY_HEADER"] = self._identity_header
            env["AZURE_CLIENT_ID"] = self.world.managed_identity.client_id
        return env

    # --------------------------------------------------------------------- observations

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    # -------------------------------------------------------------------- world changes

    def upsert_user(self, tenant_id: str, user: Mapping[str, Any]) -> None:
        self._directory.upsert_user(tenant_id, user)

    def patch_user(self, tenant_id: str, user_id: str, changes: Mapping[str, Any]) -> None:
        self._directory.patch_user(tenant_id, user_id, changes)

    def remove_user(self, tenant_id: str, user_id: str, *, permanent: bool = False) -> None:
        """Soft delete (restorable, delta reports reason "changed"); ``permanent``: hard delete
        (reason "deleted"), also of a user already soft-deleted."""
        self._directory.remove_user(tenant_id, user_id, permanent=permanent)

    def restore_user(self, tenant_id: str, user_id: str) -> None:
        self._directory.restore_user(tenant_id, user_id)

    def set_paging(
        self, tenant_id: str, *, max_page_size: int | None = None, repeat_previous: int = 0
    ) -> None:
        """Cut the tenant's listing pages as Graph may: at most ``max_page_size`` users per page
        whatever ``$top`` asks, and each next page first repeating ``repeat_previous`` users of
        the page before (Graph repeats users when the directory changes under a paged read).
        The defaults restore plain paging."""
        self._directory.set_paging(tenant_id, Paging(max_page_size, repeat_previous))

    def add_tenant(self, tenant: Mapping[str, Any]) -> None:
        self._directory.add_tenant(Tenant.from_dict(tenant))

    def set_consent(self, tenant_id: str, client_id: str, roles: Iterable[str] | None) -> None:
        """Grant exactly ``roles`` (empty: consented, no permissions); None: never consented."""
        self._directory.set_consent(tenant_id, client_id, roles)

    def admin_consent_url(
        self,
        client_id: str,
        redirect_uri: str,
        state: str | None = None,
        tenant: str = "organizations",
        scope: str | None = None,
    ) -> str:
        """The v2 admin-consent URL, as the product builds it (for tests of the simulator)."""
        params = {
            "client_id": client_id,
            "scope": scope or f"{self.base_url}/.default",
            "redirect_uri": redirect_uri,
        }
        if state is not None:
            params["state"] = state
        return f"{self.base_url}/{tenant}/v2.0/adminconsent?{urlencode(params)}"

    def add_redirect_uri(self, client_id: str, uri: str) -> None:
        """Register a redirect URI on an app while running (a dev server's port is known late)."""
        if self.world.app(client_id) is None:
            raise KeyError(f"no app {client_id!r} in the world")
        self.consent.add_redirect_uri(client_id, uri)

    def token_exchange_issuer(self) -> str:
        """The issuer of the managed identity's tokens: what a federated identity credential
        trusting it names (with ``world.managed_identity.subject`` and api://AzureADTokenExchange).
        """
        identity = self.world.managed_identity
        if identity is None:
            raise RuntimeError("the world has no managed identity")
        return f"{self.base_url}/{identity.tenant_id}/v2.0"

    def expire_tokens(self) -> None:
        """Make every token issued so far count as expired (the clients still cache them)."""
        if self._context is not None:
            self._context.issuer.expire_all()


def _bind(host: str, port: int) -> list[socket.socket]:
    if host != "localhost":
        return [socket.create_server((host, port), reuse_port=False)]
    # "localhost" may resolve to either family; listen on both with the same port.
    first = socket.create_server(("127.0.0.1", port))
    chosen = first.getsockname()[1]
    sockets = [first]
    if socket.has_ipv6:
        try:
            sockets.append(socket.create_server(("::1", chosen), family=socket.AF_INET6))
        except OSError:
            pass  # no IPv6 loopback here: clients fall back to 127.0.0.1
    return sockets


def _public_host(host: str) -> str:
    return "localhost" if host in _WILDCARDS else host


def _vault_host(host: str) -> str:
    public = _public_host(host)
    return "127.0.0.1" if public == "localhost" else public


def _endpoints(host: str, port: int) -> Endpoints:
    public = _public_host(host)
    vault_host = _vault_host(host)
    try:
        if ipaddress.ip_address(vault_host).version == 6:
            vault_host = "127.0.0.1"
    except ValueError:
        pass
    if "." not in vault_host:
        raise ValueError(f"host {host!r}: Key Vault needs a dotted host name or an IPv4 address")
    base_host = f"[{public}]" if ":" in public else public
    return Endpoints(
        base_url=f"https://{base_host}:{port}",
        vault_url=f"https://{vault_host}:{port}",
        vault_resource=f"https://{vault_host.split('.', 1)[1]}:{port}",
    )
