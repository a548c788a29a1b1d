"""The right to write one tenant's rows during a run, and its stand-in where no fence is needed.

A run holds the tenant's `Lease` and every write it makes is fenced by it (the adapters raise
fence rows with its token). Two kinds of run write under no lease and say so with `Unfenced`:
a dry run (it writes nothing) and a writer no other run can race (the benchmark's write floor,
the in-memory engine tests). The adapters recognise `Unfenced` by its type and raise no fence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Lease:
    """The right to run one tenant's sync, held by one run until `expires_at`."""

    tenant_id: str
    holder: str  # the run id
    expires_at: datetime
    etag: str
    # Drawn when the lease is acquired or taken over, kept by renewals: which holding this is,
    # even when a later attempt of the same run holds it again. The fence rows carry it.
    token: str = ""

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class Unfenced:
    """No lease, on purpose: the writes go as they are. `why` names the case, for a reader of a
    log or a debugger (e.g. "dry run")."""

    why: str
