"""Full or delta (core/delta.py): the rules that pick a run's kind, the reconciliation spread and
how a delta round is folded; and the delta page rules of adapters/graph_pages.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sync_core.adapters.graph_pages import parse_delta_page
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import parse_config
from sync_core.core.delta import (
    LINK_MAX_AGE,
    FullReason,
    RunMode,
    SyncState,
    choose_mode,
    config_hash,
    fold_round,
    reconciliation_due,
)
from sync_core.errors import SyncError

TENANT = "11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
DEFAULTS = TenantConfig()


def state(config: TenantConfig = DEFAULTS, *, age: timedelta = timedelta(minutes=15),
          link: str | None = "https://graph/v1.0/users/delta?$deltatoken=x") -> SyncState:  # fmt: skip
    # The last full run a minute before NOW: no reconciliation moment of TENANT lies between.
    return SyncState(link, config_hash(config), NOW - age, NOW - timedelta(minutes=1))


@pytest.mark.parametrize(
    ("case", "stored", "config", "force", "reason"),
    [
        ("first run", None, TenantConfig(), False, FullReason.FIRST_RUN),
        ("asked for", state(), TenantConfig(), True, FullReason.REQUESTED),
        ("no link: delta unavailable", state(link=None), TenantConfig(), False,
         FullReason.DELTA_UNAVAILABLE),
        ("fields changed", state(), parse_config({"fields": [{"name": "T", "source": "jobTitle"}]}),
         False, FullReason.CONFIG_CHANGED),
        ("scope changed", state(), parse_config({"filter": {"excludeUnlicensed": True}}), False,
         FullReason.CONFIG_CHANGED),
        ("clean-up switched on", state(), parse_config({"cleanUp": {"enabled": True}}), False,
         FullReason.CONFIG_CHANGED),
        ("link too old", state(age=LINK_MAX_AGE + timedelta(minutes=1)), TenantConfig(), False,
         FullReason.LINK_TOO_OLD),
        ("odata filter", state(), parse_config({"filter": {"odata": "userType eq 'Member'"}}),
         False, FullReason.ODATA_FILTER),
    ],
)  # fmt: skip
def test_full_runs_and_why(case, stored, config, force, reason):
    decision = choose_mode(stored, config, NOW, tenant_id=TENANT, force_full=force)
    assert (decision.mode, decision.reason) == (RunMode.FULL, reason), case


def test_delta_when_nothing_calls_for_a_full_run():
    decision = choose_mode(state(), TenantConfig(), NOW, tenant_id=TENANT)
    assert (decision.mode, decision.reason) == (RunMode.DELTA, None)


def test_guard_thresholds_do_not_change_the_hash():
    loose = parse_config({"cleanUp": {"maxDeletes": 5, "maxDeletePercent": 1}})
    assert config_hash(loose) == config_hash(TenantConfig())


def test_reconciliation_once_per_period_at_a_stable_per_tenant_moment():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for tenant in (TENANT, "22222222-2222-4222-8222-222222222222"):
        last_full, fulls = start, []
        moment = start
        while moment < start + 5 * DAY:
            moment += timedelta(minutes=15)
            if reconciliation_due(tenant, last_full, moment, DAY):
                fulls.append(moment)
                last_full = moment
        assert len(fulls) == 5  # one a day
        # the same time of day each day: the tenant's offset
        assert len({(f - start) % DAY for f in fulls}) == 1
    first = [reconciliation_due(t, start, start + timedelta(hours=12), DAY)
             for t in (f"{i:08d}-1111-4111-8111-111111111111" for i in range(40))]  # fmt: skip
    assert 0 < sum(first) < 40  # spread over the day, not all at one moment


def test_a_fold_keeps_each_users_last_state_and_the_removals():
    changes = fold_round([
        {"id": "a", "jobTitle": "first"},
        {"id": "b", "@removed": {"reason": "changed"}},
        {"id": "c", "@removed": {"reason": "deleted"}},
        {"id": "a", "jobTitle": "last"},
        {"id": "b", "jobTitle": "restored"},
        {"id": "d", "jobTitle": "x"},
        {"id": "d", "@removed": {"reason": "deleted"}},
    ])  # fmt: skip
    assert changes.users == {"a": {"id": "a", "jobTitle": "last"},
                             "b": {"id": "b", "jobTitle": "restored"}}  # fmt: skip
    assert changes.removed == ("c", "d")


def page(body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("neither link", {"value": []}),
        ("both links", {"value": [], "@odata.nextLink": "https://g/a", "@odata.deltaLink": "https://g/b"}),
        ("removed item without id", {"value": [{"@removed": {"reason": "deleted"}}],
                                     "@odata.deltaLink": "https://g/b"}),
        ("value not a list", {"value": {}, "@odata.deltaLink": "https://g/b"}),
        ("delta link not a string", {"value": [], "@odata.deltaLink": 5}),
    ],
)  # fmt: skip
def test_delta_pages_that_break_the_rules_fail(case, body):
    with pytest.raises(SyncError):
        parse_delta_page(page(body), 1)


def test_a_well_formed_delta_page():
    parsed = parse_delta_page(
        page({"value": [{"id": "a", "@removed": {"reason": "changed"}}],
              "@odata.deltaLink": "https://g/v1.0/users/delta?$deltatoken=t"}), 2)  # fmt: skip
    assert parsed.items[0]["id"] == "a" and parsed.next_link is None
    assert parsed.delta_link is not None
