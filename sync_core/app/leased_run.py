"""What a run writes beside its lease, so an idle delta run costs two writes in all: taking the
lease marks the run `running` in the tenant's run index (same row, same request), giving it back
records the idle ending there (RunStore.leased keeps the engine's own saves of both back).

Both are computed from the row as it was read and written on its ETag: if anyone else wrote the
row in between, the lease store reads it again and these are computed afresh.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sync_core.adapters.tables.run_index_rows import index_of, index_properties
from sync_core.core.report import FINAL_STATUSES, RunReport, RunStatus
from sync_core.core.run_index import RunIndex, finished, with_run


class RunningMark:
    """`beside` for LeaseStore.acquire: the run's queued entry turned `running`. What the row
    said is kept (`index`): under the lease it tells whether the run already ended and which
    runs of the tenant are left unfinished, without reading again."""

    def __init__(self, run_id: str, now: datetime):
        self.run_id, self.now = run_id, now
        self.index = RunIndex()
        self.marked = False
        self.read = False  # the row was read (or found absent) when the lease was taken

    def __call__(self, entity: Any) -> dict[str, Any]:
        self.read = True
        self.index = index_of(entity) if entity is not None else RunIndex()
        queued = self.index.find(self.run_id)
        # Only a run the index knows as unfinished: one it does not know (the CLI's, or one
        # that ended) is saved by the engine as usual.
        self.marked = queued is not None and queued.status not in FINAL_STATUSES
        if not self.marked or queued is None:
            return {}
        running = replace(queued, status=RunStatus.RUNNING, started_at=self.now)
        self.index = with_run(self.index, running)
        return index_properties(self.index)

    def ended(self) -> bool | None:
        """Whether the run had ended as the lease was taken; None: the row cannot say."""
        if self.marked:
            return False
        idle = self.index.idle
        return True if idle is not None and idle.report.run_id == self.run_id else None


class IdleEnding:
    """`beside` for LeaseStore.release: the idle report folded into the run index."""

    def __init__(self, known: RunIndex, report: RunReport):
        self.known, self.report = known, report

    def __call__(self, entity: Any) -> dict[str, Any]:
        index = self.known if entity is None else index_of(entity)
        updated, _ = finished(index, self.report)  # idle: no streak to hand back
        return index_properties(updated)
