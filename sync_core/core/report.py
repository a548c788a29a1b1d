"""The run report: what a run read, wrote, skipped and why, and its stored JSON form (the
report as an admin reads it at a terminal: core/report_text.py)."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard


class RunStatus(StrEnum):
    """A run's status as stored and shown (the JSON value is the string)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HELD = "held"


FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.HELD})


class Trigger(StrEnum):
    """Who asked for a run."""

    SCHEDULE = "schedule"
    API = "api"
    CLI = "cli"
    EXPLAIN = "explain"  # `explain --apply`: one user written now (app/explain.py)


# A report lists skipped users by UPN so an admin can fix them; past this many the list is cut
# (the count stays exact) to keep the stored run record within Table Storage's entity size.
MAX_LISTED_SKIPS = 1000


@dataclass
class Counts:
    read: int = 0
    inScope: int = 0
    excluded: int = 0
    skippedNoEmail: int = 0
    # Stored employees still in scope whose address disappeared: kept, updated and marked
    # (EmailMissingSince); counted in updated/unchanged too.
    noAddress: int = 0
    skippedUnstorable: int = 0  # in scope, but Table Storage cannot hold the row (retried)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    deletesHeld: int = 0
    staleKept: int = 0  # out of scope but kept because clean-up is off
    employees: int = 0  # stored employees of the tenant after the run
    # Profile photos (core/photo_run.py), zero while `photos` is off. Missing: no photo or no
    # mailbox; failed: the read or download failed, or the photo is over the size cap. Neither
    # fails the run nor removes the employee.
    photosChecked: int = 0
    photosDownloaded: int = 0
    photosMissing: int = 0
    photosFailed: int = 0
    photosRemoved: int = 0

    def problems(self) -> list[str]:
        """The ways these counts fail to add up (none for a run that was not cut short)."""
        found = []
        if self.read != self.inScope + self.excluded:
            found.append("read != inScope + excluded")
        placed = (
            self.created
            + self.updated
            + self.unchanged
            + self.skippedNoEmail
            + self.skippedUnstorable
        )
        if self.inScope != placed:
            found.append(
                "inScope != created + updated + unchanged + skippedNoEmail + skippedUnstorable"
            )
        return found


@dataclass(frozen=True)
class RunProblem:
    """Why a run failed or what went wrong on the way, as the report records it (a record, not
    an exception: a SyncError becomes one when a run ends)."""

    code: str
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class IdleChecks:
    """Consecutive idle delta runs after a recorded run (they leave no record of their own)."""

    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class RunReport:
    run_id: str
    tenant_id: str
    tenant_name: str | None
    mode: str
    dry_run: bool
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    counts: Counts = field(default_factory=Counts)
    excluded_by: dict[str, int] = field(default_factory=dict)
    skipped_no_email: tuple[str, ...] = ()
    no_address: tuple[str, ...] = ()  # UPNs of the marked employees (see Counts.noAddress)
    skipped_unstorable: tuple[str, ...] = ()  # "upn: reason"
    graph_requests: int = 0
    graph_throttled: int = 0
    errors: tuple[RunProblem, ...] = ()
    warnings: tuple[str, ...] = ()
    trigger: Trigger = Trigger.CLI
    full_reason: str | None = None  # why a full run was full (core/delta.FullReason)
    # Users the delta round named (changed or removed); None for a full run.
    changes_read: int | None = None
    idle_checks: IdleChecks | None = None  # the idle delta runs that followed this one
    # The groups the configuration names (scope and membership fields): id, displayName and
    # members (transitive users); empty for a tenant that uses no group.
    groups: tuple[dict[str, Any], ...] = ()

    @classmethod
    def begun(
        cls,
        run_id: str,
        tenant_id: str,
        status: RunStatus,
        *,
        dry_run: bool,
        trigger: Trigger,
        at: datetime,
    ) -> RunReport:
        """The record of a run that is queued or has just started: nothing counted yet."""
        return cls(
            run_id=run_id,
            tenant_id=tenant_id,
            tenant_name=None,
            mode="full",
            dry_run=dry_run,
            status=status,
            started_at=at,
            finished_at=None,
            trigger=trigger,
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def idle(self) -> bool:
        """A delta run that found nothing to do: kept out of the default run listing, so a tenant
        checked 96 times a day still shows its runs that did something."""
        return (
            self.mode == "delta"
            and not self.changes_read  # no change read (None: recorded before it was counted)
            and self.status == RunStatus.SUCCEEDED
            and not self.dry_run
            and self.counts.read == 0
            and self.writes == 0
            and not self.errors
            and not self.warnings
        )

    @property
    def writes(self) -> int:
        return self.counts.created + self.counts.updated + self.counts.deleted

    def closed_with(self, error: RunProblem, now: datetime) -> RunReport:
        """This run, ended as failed for a reason found outside the engine."""
        return replace(self, status=RunStatus.FAILED, finished_at=now, errors=(*self.errors, error))

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "tenantId": self.tenant_id,
            "tenantName": self.tenant_name,
            "mode": self.mode,
            "fullReason": self.full_reason,
            "dryRun": self.dry_run,
            "status": self.status,
            "trigger": self.trigger,
            "startedAt": _iso(self.started_at),
            "finishedAt": _iso(self.finished_at) if self.finished_at else None,
            "durationSeconds": self.duration_seconds,
            "counts": asdict(self.counts),
            "excludedBy": dict(sorted(self.excluded_by.items())),
            "skippedNoEmail": list(self.skipped_no_email[:MAX_LISTED_SKIPS]),
            "skippedNoEmailListed": min(len(self.skipped_no_email), MAX_LISTED_SKIPS),
            "noAddress": list(self.no_address[:MAX_LISTED_SKIPS]),
            "skippedUnstorable": list(self.skipped_unstorable[:MAX_LISTED_SKIPS]),
            "graph": {"requests": self.graph_requests, "throttled": self.graph_throttled},
            "errors": [asdict(error) for error in self.errors],
            "warnings": list(self.warnings),
            **({} if self.changes_read is None else {"changesRead": self.changes_read}),
            **({} if self.idle_checks is None else {"idleChecks": _idle_json(self.idle_checks)}),
            **({"groups": [dict(g) for g in self.groups]} if self.groups else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        known = {f.name for f in fields(Counts)}
        return cls(
            run_id=data["runId"],
            tenant_id=data["tenantId"],
            tenant_name=data.get("tenantName"),
            mode=data.get("mode", "full"),
            full_reason=data.get("fullReason"),
            dry_run=bool(data.get("dryRun")),
            status=RunStatus(data["status"]),
            trigger=Trigger(data.get("trigger", Trigger.CLI)),
            started_at=datetime.fromisoformat(data["startedAt"]),
            finished_at=datetime.fromisoformat(data["finishedAt"])
            if data.get("finishedAt")
            else None,
            counts=Counts(**{k: v for k, v in data.get("counts", {}).items() if k in known}),
            excluded_by=dict(data.get("excludedBy", {})),
            skipped_no_email=tuple(data.get("skippedNoEmail", ())),
            no_address=tuple(data.get("noAddress", ())),
            skipped_unstorable=tuple(data.get("skippedUnstorable", ())),
            graph_requests=data.get("graph", {}).get("requests", 0),
            graph_throttled=data.get("graph", {}).get("throttled", 0),
            errors=tuple(RunProblem(**e) for e in data.get("errors", ())),
            warnings=tuple(data.get("warnings", ())),
            changes_read=data.get("changesRead"),
            idle_checks=_idle_of(data.get("idleChecks")),
            groups=tuple(data.get("groups", ())),
        )


def _idle_json(checks: IdleChecks) -> dict[str, Any]:
    return {"count": checks.count, "first": _iso(checks.first), "last": _iso(checks.last)}


def _idle_of(data: Any) -> IdleChecks | None:
    if not isinstance(data, dict):
        return None
    first, last = datetime.fromisoformat(data["first"]), datetime.fromisoformat(data["last"])
    return IdleChecks(int(data["count"]), first, last)


def new_run_id(now: datetime) -> str:
    """Sortable by start time and unique: 20261126T132301123Z-3f9a1c."""
    return f"{now.strftime('%Y%m%dT%H%M%S')}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


_RUN_ID = re.compile(r"\d{8}T\d{9}Z-[0-9a-f]{6}")


def is_run_id(value: object) -> TypeGuard[str]:
    """A run id this app issued: the shape, and a start time that exists on the calendar (it
    becomes the run's row key)."""
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        return False
    try:
        datetime.strptime(value[:18], "%Y%m%dT%H%M%S%f")
    except ValueError:
        return False
    return True


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
