"""Local stand-ins for Entra ID, Microsoft Graph, Key Vault and the managed-identity endpoint.

``Simulator`` is imported lazily: it pulls in aiohttp, and aiohttp builds its default TLS context
when it is first imported. A test must be able to ``from simulator.testing import prepare_trust``
(or create a ``CertificateAuthority``) and set SSL_CERT_FILE before that happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .certs import CertificateAuthority
from .world import World, WorldError

if TYPE_CHECKING:
    from .harness import Simulator
    from .log import RequestRecord

__all__ = ["CertificateAuthority", "RequestRecord", "Simulator", "World", "WorldError"]


def __getattr__(name: str) -> Any:
    if name == "Simulator":
        from .harness import Simulator

        return Simulator
    if name == "RequestRecord":
        from .log import RequestRecord

        return RequestRecord
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
