"""Full or delta: which kind of run a tenant gets, and how a delta round is folded. Pure.

- A *full* run lists /users and reconciles everything; a *delta* run follows the tenant's stored
  delta link and applies only what changed. The delta link is stored with a digest of the part of
  the configuration that decides what is read and kept, and when it was taken.
- Full when: asked for; the tenant has no usable link (first run, or delta unavailable in its
  cloud); the configuration digest changed; the link is older than LINK_MAX_AGE (Graph keeps
  directory delta state about 7 days); the tenant's daily reconciliation is due; its scope uses
  `filter.odata`, which only Graph evaluates and delta queries cannot carry.
- Reconciliation: every `reconcile_every`, at a stable per-tenant offset inside that period, so
  tenants do not all run full in the same tick.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sync_core.core.config import TenantConfig

# Graph keeps delta state for directory objects about 7 days; a day of margin covers a tick
# that runs late and a link taken at the start of a long full run.
LINK_MAX_AGE = timedelta(days=6)
DEFAULT_RECONCILE_EVERY = timedelta(hours=24)
# An idle delta run (its round named no one) keeps the stored link rather than writing the new
# one: replaying the old link reads the same nothing plus whatever changes later. It is replaced
# once this old, so it never reaches LINK_MAX_AGE (which would make the next run full), however
# rarely full runs come.
LINK_REFRESH_AGE = LINK_MAX_AGE / 2


class RunMode(StrEnum):
    FULL = "full"
    DELTA = "delta"


class FullReason(StrEnum):
    """Why a run is full, as the report says it."""

    REQUESTED = "requested"
    FIRST_RUN = "firstRun"
    CONFIG_CHANGED = "configChanged"
    LINK_TOO_OLD = "linkTooOld"
    RECONCILIATION = "reconciliation"
    ODATA_FILTER = "odataFilter"
    DELTA_UNAVAILABLE = "deltaUnavailable"
    SYNC_STATE_LOST = "syncStateLost"  # Graph forgot the link during this run (410)
    DRY_RUN = "dryRun"


@dataclass(frozen=True)
class SyncState:
    """What a tenant's last successful run left for the next: the delta link (None when delta
    is unavailable), the digest of the configuration it was read with, when the link was taken
    and when the last full run finished."""

    delta_link: str | None
    config_hash: str
    taken_at: datetime
    last_full_at: datetime
    # Scope by group (core/group_sync.py): the group delta links, and the generation of the
    # stored membership graph they follow; committed with the user link, last.
    group_links: tuple[str, ...] = ()
    groups_generation: str | None = None


@dataclass(frozen=True)
class ModeDecision:
    mode: RunMode
    reason: FullReason | None  # None for a delta run


def config_hash(config: TenantConfig) -> str:
    """A digest of what decides what is read and kept: fields, email sources, scope and whether
    Clean Up removes. Guard thresholds, the grace period and `enabled` are left out: changing
    them changes no row."""
    document = config.to_json()
    kept = {
        "fields": document.get("fields"),
        "email": document.get("email"),
        "filter": document.get("filter"),
        "cleanUp": bool(config.clean_up.enabled),
    }
    if config.photos.enabled:
        # Turning photos on (or changing the size) makes the next run full, so every employee's
        # photo is read at once; left out while off, so existing tenants keep their links.
        kept["photos"] = document.get("photos")
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def choose_mode(
    state: SyncState | None,
    config: TenantConfig,
    now: datetime,
    *,
    tenant_id: str,
    force_full: bool = False,
    reconcile_every: timedelta = DEFAULT_RECONCILE_EVERY,
) -> ModeDecision:
    def full(reason: FullReason) -> ModeDecision:
        return ModeDecision(RunMode.FULL, reason)

    if force_full:
        return full(FullReason.REQUESTED)
    if config.filter.odata is not None:
        return full(FullReason.ODATA_FILTER)
    if state is None:
        return full(FullReason.FIRST_RUN)
    if state.delta_link is None:
        return full(FullReason.DELTA_UNAVAILABLE)
    if state.config_hash != config_hash(config):
        return full(FullReason.CONFIG_CHANGED)
    if now - state.taken_at > LINK_MAX_AGE:
        return full(FullReason.LINK_TOO_OLD)
    if reconciliation_due(tenant_id, state.last_full_at, now, reconcile_every):
        return full(FullReason.RECONCILIATION)
    return ModeDecision(RunMode.DELTA, None)


def reconciliation_due(
    tenant_id: str, last_full_at: datetime, now: datetime, every: timedelta
) -> bool:
    """True once a reconciliation moment of the tenant (its offset plus a whole number of
    periods) has passed since its last full run; at most one period after it in any case."""
    period = every.total_seconds()
    if period <= 0:
        return True
    digest = hashlib.sha256(f"reconcile:{tenant_id.strip().lower()}".encode()).digest()
    offset = int.from_bytes(digest[:8], "big") / 2**64 * period
    epoch = datetime(2000, 1, 1, tzinfo=UTC)

    def slot(moment: datetime) -> int:
        return int(((moment - epoch).total_seconds() - offset) // period)

    return slot(now) > slot(last_full_at) or now - last_full_at >= every


def keeps_stored_link(state: SyncState, changes: DeltaChanges, now: datetime) -> bool:
    """Whether a delta run that wrote nothing may leave the stored link as it is (no write)."""
    idle = not changes.users and not changes.removed
    return idle and now - state.taken_at < LINK_REFRESH_AGE


@dataclass(frozen=True)
class DeltaChanges:
    """One delta round folded: the last state of each changed user (a user can come more than
    once in a round: the last one wins), and the ids Graph reported removed (`@removed`, soft or
    hard delete), in the order first met."""

    users: dict[str, dict[str, Any]]
    removed: tuple[str, ...]


def fold_round(items: Iterable[dict[str, Any]]) -> DeltaChanges:
    latest: dict[str, dict[str, Any] | None] = {}
    for item in items:
        user_id = item["id"]
        # Re-inserted, so the order is that of each user's last appearance.
        earlier = latest.pop(user_id, None)
        if earlier is not None and "@removed" not in item:
            # A relationship's change (`manager@delta`) comes only with that change: a later
            # item of the same user for another change keeps it (core/manager.py).
            kept = {k: v for k, v in earlier.items() if k.endswith("@delta") and k not in item}
            item = {**item, **kept} if kept else item
        latest[user_id] = None if "@removed" in item else item
    users = {i: u for i, u in latest.items() if u is not None}
    removed = tuple(i for i, u in latest.items() if u is None)
    return DeltaChanges(users, removed)
