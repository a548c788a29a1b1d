"""A run's mode, full or delta, as it is settled: chosen from the stored state before anything
is read (core/delta.choose_mode), then turned full while reading if Graph forgot the stored link
or serves no delta here. With it the delta link the run stores if it succeeds: the one after
the round it read, or one taken before a full listing, whose replay covers whatever changed
while the listing ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sync_core.core.config import TenantConfig
from sync_core.core.delta import (
    DeltaChanges,
    FullReason,
    ModeDecision,
    RunMode,
    SyncState,
    choose_mode,
    fold_round,
)
from sync_core.core.pages import RunTotals
from sync_core.core.ports import DeltaSource, DeltaStateLost, DeltaUnavailable
from sync_core.core.run_notes import DELTA_UNAVAILABLE_WARNING, ODATA_FULL_WARNING

log = logging.getLogger("sync_core.run")  # the engine's logger: these are steps of its run

# The full runs that keep no delta link (a dry run) or could not follow one (filter.odata).
_NO_LINK = (FullReason.DRY_RUN, FullReason.ODATA_FILTER)


class RunModeStep:
    """One run's mode and its delta link; a run that fails before choosing is reported full."""

    def __init__(self, now: Callable[[], datetime], tally: RunTotals):
        self._now, self._tally = now, tally
        self.decision = ModeDecision(RunMode.FULL, None)
        self.link: str | None = None
        self.link_taken_at = now()
        self.changes_read: int | None = None  # users and removals in the round; 0: idle
        self._delta_refused = False  # Graph served no delta: not asked again in this run

    def choose(
        self,
        state: SyncState | None,
        config: TenantConfig,
        *,
        tenant_id: str,
        dry_run: bool,
        force_full: bool,
        reconcile_every: timedelta,
    ) -> None:
        if dry_run:
            # A dry run shows what a full run would do, and keeps no delta link.
            self.decision = ModeDecision(RunMode.FULL, FullReason.DRY_RUN)
        else:
            self.decision = choose_mode(
                state,
                config,
                self._now(),
                tenant_id=tenant_id,
                force_full=force_full,
                reconcile_every=reconcile_every,
            )
        if self.decision.reason is FullReason.ODATA_FILTER:
            self._tally.warnings.append(ODATA_FULL_WARNING)

    def run_full(self, reason: FullReason) -> None:
        """Nothing was written yet: the run goes on as a full run."""
        self.decision = ModeDecision(RunMode.FULL, reason)

    async def read_round(
        self, directory: DeltaSource, state: SyncState | None
    ) -> DeltaChanges | None:
        """The changes since the stored link (the link after them kept); None when the run is
        full, or becomes full because Graph no longer holds the link."""
        if self.decision.mode is not RunMode.DELTA or state is None or state.delta_link is None:
            return None
        self.link_taken_at = self._now()
        items: list[dict[str, Any]] = []
        link: str | None = None
        try:
            async for page in directory.delta_pages(state.delta_link):
                items.extend(page.items)
                link = page.delta_link or link
        except DeltaStateLost as lost:
            # Nothing was written yet: the run goes on as a full run, as Graph asks.
            log.warning("Graph no longer holds the delta link (%s): running full", lost)
            self.run_full(FullReason.SYNC_STATE_LOST)
            return None
        except DeltaUnavailable:
            self._delta_refused = True
            self.run_full(FullReason.DELTA_UNAVAILABLE)
            self._tally.warnings.append(DELTA_UNAVAILABLE_WARNING)
            return None
        changes = fold_round(items)
        self.changes_read = len(changes.users) + len(changes.removed)
        self.link = link
        return changes

    async def take_link(self, directory: DeltaSource, select: frozenset[str]) -> None:
        """Before a full listing: the link whose replay covers whatever changes while it runs."""
        self.link = None
        if self.decision.reason in _NO_LINK or self._delta_refused:
            return
        self.link_taken_at = self._now()
        try:
            self.link = await directory.latest_delta_link(select)
        except DeltaUnavailable:
            self._tally.warnings.append(DELTA_UNAVAILABLE_WARNING)

    def report(self) -> dict[str, Any]:
        """The report's fields of the mode."""
        delta = self.decision.mode is RunMode.DELTA
        return {
            "mode": str(self.decision.mode),
            "full_reason": str(self.decision.reason) if self.decision.reason else None,
            "changes_read": self.changes_read if delta else None,
        }
