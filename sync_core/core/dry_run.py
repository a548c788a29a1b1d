"""A dry run: the writer port stood in for, so the engine runs unchanged and writes nothing."""

from __future__ import annotations

from collections import Counter

from sync_core.core.mapping import Employee
from sync_core.core.ports import Change, EmployeeStore, RowStamp


class DryRunWriter:
    """Stands in for the writer in a dry run: the plan is computed and counted, nothing written
    (a row the store could not hold is reported as the real run would)."""

    def __init__(self, store: EmployeeStore, tenant_id: str) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self.committed: Counter[str] = Counter()

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        self._store.check_storable(self._tenant_id, employee, stamp)

    async def delete(self, employee_id: str) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def abort(self) -> None:
        pass
