"""The per-tenant summary: what a delta run needs of the whole Employees partition without
reading it. Pure.

The summary says what the table holds: how many employee rows (the deletion guard compares with
it, the report shows it) and which rows are marked `EmailMissingSince`, since when (Clean Up
removes those whose grace period passed, mentioned in the round or not). Every run that writes
keeps it current:

- before its first write a run marks the stored summary as being written (`writing`), so a run
  that fails between a batch and its summary leaves a summary no one trusts;
- a run that finished its writes stores the summary it computed (`after_run`): a full run from
  the whole stored index it read, a delta run from the stored summary and what it changed;
- a run that finds no summary, or one still marked as being written, reads the whole index once
  (as every run did before) and stores a fresh one: the table heals the summary, never the
  other way round.

A trusted summary also says that no earlier holder of the lease can still be writing (it would
have marked the summary before its first write and not stored one since): a run may then read
the stored rows before its own fence goes up (core/delta_reads.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ports.py imports this module
    from sync_core.core.ports import StoredIndex

# How many marks a summary row holds: an entity holds 1 MiB, and a mark (an object id and a
# moment, as JSON) takes about 65 UTF-16 units. A tenant with more employees without an address
# than this keeps no summary: its delta runs read the whole index, as before (rare: a mark is
# a stored employee whose address disappeared, kept for the grace period).
MAX_MARKS = 5000


@dataclass(frozen=True)
class TenantSummary:
    employees: int
    email_missing_since: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredSummary:
    """The summary as read: None when there is none to trust (never written, marked as being
    written by a run that did not finish, or too large to keep); `etag` of its row, for a
    conditional write (None: no row)."""

    summary: TenantSummary | None
    etag: str | None = None


def summary_of(index: StoredIndex) -> TenantSummary:
    return TenantSummary(len(index.hashes), dict(index.email_missing_since))


def after_run(
    before: TenantSummary,
    marks: Mapping[str, datetime | None],
    created: int,
    deleted: Iterable[str],
) -> TenantSummary | None:
    """The summary once a run's writes landed: `marks` holds, for each row the run wrote, its
    mark (None: it has an address); `deleted` the rows it removed. None when too many marks to
    keep (the next delta run reads the index)."""
    removed = set(deleted)
    kept = {i: s for i, s in before.email_missing_since.items() if i not in removed}
    for employee_id, since in marks.items():
        if since is None or employee_id in removed:
            kept.pop(employee_id, None)
        else:
            kept[employee_id] = since
    if len(kept) > MAX_MARKS:
        return None
    return TenantSummary(before.employees + created - len(removed), kept)
