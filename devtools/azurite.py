"""Azurite, Microsoft's storage emulator, started on free ports for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Azurite's documented development account: a public, well-known emulator key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    log_path: Path
    table_port: int
    queue_port: int
    blob_port: int
    location: Path | None = None  # where its data is kept; None: in memory

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError(
        "Azurite is not installed: run `npm ci` in the repository root (scripts/bootstrap.sh does)"
    )


def start_azurite(
    startup_timeout: float = 30.0,
    *,
    location: Path | None = None,
    ports: tuple[int, int, int] | None = None,
) -> Azurite:
    """In memory by default; with `location`, its data is kept on disk there, so an instance
    stopped and started again on the same `ports` (table, queue, blob) still has it (the
    chaos tests stop storage mid-run and bring it back)."""
    table_port, queue_port, blob_port = ports or _free_ports(3)
    # A file, not a pipe: a pipe nobody reads would block Azurite once it filled up.
    log_path = Path(tempfile.mkstemp(prefix="azurite-", suffix=".log")[1])
    storage = ["--location", str(location)] if location else ["--inMemoryPersistence"]
    process = subprocess.Popen(
        [
            azurite_binary(),
            *storage,
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob_port),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue_port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table_port),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    azurite = Azurite(process, log_path, table_port, queue_port, blob_port, location)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text(errors="replace").strip()
            raise RuntimeError(f"Azurite exited at start: {output[-2000:]}")
        if all(_listening(port) for port in (table_port, queue_port, blob_port)):
            return azurite
        time.sleep(0.1)
    azurite.stop()
    raise RuntimeError(f"Azurite did not listen within {startup_timeout:.0f} s")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
