"""The run's writer, opened only when the run is about to write.

Opening it is what a write costs before the first row: the write fence raised and the lease
checked (EmployeeStore.writer, in that order, so a run that lost its lease never writes), and
the tenant's summary marked as being written (a run that fails between a batch and its summary
leaves a summary no one trusts; core/summary.py). A run that writes nothing (an idle delta run)
never opens it: no fence row moves, no summary is touched.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from sync_core.core.mapping import Employee
from sync_core.core.ports import Change, EmployeeWriter, RowStamp


class LazyWriter:
    def __init__(
        self,
        open_writer: Callable[[], Awaitable[EmployeeWriter]],
        before_first_write: Callable[[], Awaitable[object]],
    ):
        self._open_writer, self._before = open_writer, before_first_write
        self._inner: EmployeeWriter | None = None
        self._opening: asyncio.Lock = asyncio.Lock()
        self.committed: Counter[str] = Counter()  # the opened writer's, once opened

    @property
    def opened(self) -> bool:
        return self._inner is not None

    async def open(self) -> EmployeeWriter:
        """Raise the fence and mark the summary (both at once), once."""
        if self._inner is not None:  # every row after the first: no lock to take
            return self._inner
        async with self._opening:
            if self._inner is None:
                writer, _ = await asyncio.gather(self._open_writer(), self._before())
                self._inner, self.committed = writer, writer.committed
            return self._inner

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        await (await self.open()).upsert(employee, change, stamp)

    async def delete(self, employee_id: str) -> None:
        await (await self.open()).delete(employee_id)

    async def flush(self) -> None:
        if self._inner is not None:
            await self._inner.flush()

    async def abort(self) -> None:
        if self._inner is not None:
            await self._inner.abort()
