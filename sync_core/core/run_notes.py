"""What a run's report says about how it went: the warnings and the problems the engine
records, in the words an admin reads."""

from __future__ import annotations

from collections import Counter

from sync_core.core.ports import EmployeeWriter, GraphStats
from sync_core.core.report import Counts, RunProblem
from sync_core.errors import ErrorCode

ODATA_FULL_WARNING = (
    "This tenant's scope uses filter.odata, which only Graph evaluates and delta queries cannot "
    "carry: every run of it is a full run."
)
DELTA_UNAVAILABLE_WARNING = (
    "Graph does not offer user delta queries for this tenant (400/501 on /users/delta, as in "
    "some national clouds): it is synced with full runs."
)


def lease_lost_problem(counts: Counts, writer: EmployeeWriter | None) -> RunProblem:
    """The run's lease passed to another run and the fence refused this run's writes: the
    counts become what Table Storage accepted, and the error says so."""
    committed = writer.committed if writer is not None else Counter()
    planned = counts.created + counts.updated + counts.deleted
    counts.created = committed["created"]
    counts.updated = committed["updated"]
    counts.deleted = committed["deleted"]
    refused = planned - (counts.created + counts.updated + counts.deleted)
    return RunProblem(
        ErrorCode.LEASE_LOST,
        "The run lost the tenant's lease to a newer run, and Table Storage refused its writes "
        f"from then on (the fence). Written before that: {counts.created} added, "
        f"{counts.updated} updated, {counts.deleted} removed; {refused} planned write(s) were "
        "not made. The newer run's rows stand; nothing of this run overwrote them.",
        "Nothing to repair. If it happens often, a run stalls for longer than the lease "
        "(5 minutes): look for a paused host or a storage outage in the logs.",
    )


# Reading /organization may need Organization.Read.All; the sync itself does not. One wording for
# the run report and Check Connectivity.
TENANT_NAME_UNREADABLE = (
    "The tenant name could not be read (Graph refused /organization); grant "
    "Organization.Read.All to show it. The sync is not affected."
)


def reading_warnings(stats: GraphStats) -> list[str]:
    """What the admin should know about how the listing went, even when it went well."""
    warnings: list[str] = list(stats.credential_warnings)
    if stats.listing_restarts:
        warnings.append(
            f"Graph's page token expired during the listing, which restarted from the first "
            f"page {stats.listing_restarts} time(s); users read twice were counted once."
        )
    if stats.advanced_query_refused:
        warnings.append(
            "This tenant refused Graph's advanced queries (as Azure AD B2C tenants do): "
            "filter.odata was sent without ConsistencyLevel and $count."
        )
    return warnings
