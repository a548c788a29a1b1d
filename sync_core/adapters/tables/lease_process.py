"""Which process holds a lease, so that a later run can tell a holder that is gone.

A CLI that storage dropped mid-run, or that was killed, cannot release its lease: without this,
every run of the tenant answered `tenant_busy` until the lease lapsed (5 minutes). The lease row
names the process that wrote it ("host|boot|pid namespace:pid"); a run in the same place that
finds no such process knows the holder can no longer write, so it may take the lease over at
once (the write fence refuses whatever a stale holder might still send anyway:
tables/employees.py).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def this_process() -> str:
    return f"{_place()}:{os.getpid()}"


@functools.cache
def _place() -> str:
    """Where a process id means this process: the host name alone is not enough. A container on
    host networking has the host's name but its own process ids (a pid namespace), and two
    machines may share a name; a pid from there, absent here, is no dead process. So the place
    is the name, the boot (Linux's boot_id: one per machine and boot, shared by its containers)
    and the pid namespace. Where these cannot be read, only the name (and a process there is
    gone only if a process here, with the same unreadable place, finds so)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        parts.append("-")
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append("-")
    return "|".join(parts)


def process_gone(process: str | None) -> bool:
    """True only when `process` names this place (host, boot, pid namespace) and no process
    has that id: another place, a row without the name, or a live (or unknowable) process is
    never reported gone."""
    if not process:
        return False
    place, _, pid = process.rpartition(":")
    if place != _place() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or the platform cannot tell
    return False
