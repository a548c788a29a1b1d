"""Trust setup for tests: the one step that must happen before any HTTP client library loads.

aiohttp builds its default verifying TLS context when ``aiohttp.connector`` is first imported
(reading SSL_CERT_FILE at that moment), and azure-core's async transport uses that context. So the
simulator's CA must exist and SSL_CERT_FILE / REQUESTS_CA_BUNDLE must point at it before anything
imports aiohttp: azure.*.aio clients, msgraph's dependencies, or ``simulator.Simulator`` itself.
httpx (msgraph) reads SSL_CERT_FILE when a client is created and requests (MSAL) on each request,
so setting the variables early covers them too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .certs import CertificateAuthority

TRUST_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")

_prepared: CertificateAuthority | None = None


class TrustTooLateError(RuntimeError):
    pass


def prepare_trust(directory: str | os.PathLike[str] | None = None) -> CertificateAuthority:
    """Create the CA in ``directory`` and point SSL_CERT_FILE and REQUESTS_CA_BUNDLE at it.

    Without a directory the CA goes to a temporary one, removed when the process exits.

    Idempotent per process: a second call returns the first CA (a conftest and a test module may
    both call it). Raises TrustTooLateError if aiohttp was imported before the first call,
    because aiohttp's default context would then never trust the simulator.
    """
    global _prepared
    if _prepared is not None:
        return _prepared
    if "aiohttp.connector" in sys.modules:
        raise TrustTooLateError(
            "aiohttp was imported before the simulator's CA was trusted; call prepare_trust() "
            "before importing aiohttp, azure.*.aio, msgraph or simulator.Simulator"
        )
    if directory is None:
        directory = tempfile.mkdtemp(prefix="simulator-trust-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    ca = CertificateAuthority.create(Path(directory))
    for name in TRUST_VARIABLES:
        os.environ[name] = str(ca.ca_path)
    _prepared = ca
    return ca
