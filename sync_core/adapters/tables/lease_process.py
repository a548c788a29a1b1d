"""Which process holds a lease, so that a later run can tell a holder that is gone.

A CLI that storage dropped mid-run, or that was killed, cannot release its lease: without this,
every run of the tenant answered `tenant_busy` until the lease lapsed (5 minutes). The lease row
names the process that wrote it ("host:pid"); a run on the same host that finds no such process
knows the holder can no longer write, so it may take the lease over at once (the write fence
refuses whatever a stale holder might still send anyway: tables/employees.py).
"""

from __future__ import annotations

import os
import socket


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(process: str | None) -> bool:
    """True only when `process` names this host and no process has that id: another host, a
    row without the name, or a live (or unknowable) process is never reported gone."""
    if not process:
        return False
    host, _, pid = process.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or the platform cannot tell
    return False
