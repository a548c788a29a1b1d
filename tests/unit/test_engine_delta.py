"""The engine's delta rules against list-backed fakes of its ports (the fakes of
engine_fakes.py, with a delta source and a sync-state store): commit last, Graph forgetting
the link, delta unavailable, the guard against the stored count."""

from __future__ import annotations

from datetime import timedelta

from sync_core.core.config import CleanUp
from sync_core.core.ports import (
    DeltaStateLost,
    DeltaUnavailable,
)
from sync_core.core.report import RunStatus
from tests.unit.engine_fakes import (
    LATEST,
    NEW_LINK,
    NOW,
    OLD_LINK,
    DeltaDirectory,
    sync,
    user,
)


def test_a_delta_run_commits_the_new_link_after_its_writes():
    changed = {**user(1), "jobTitle": "new"}
    directory = DeltaDirectory(pages=[], rounds=[[changed], [user(5)]])
    report, states, writer = sync(directory, stored=(1, 2))
    assert (report.mode, report.status) == ("delta", RunStatus.SUCCEEDED)
    assert (report.counts.created, report.counts.updated) == (1, 1)
    assert [s.delta_link for s in states.puts] == [NEW_LINK]
    assert writer.log[-1] == ("flush", "")


def test_a_run_whose_writes_fail_keeps_the_old_link():
    directory = DeltaDirectory(pages=[], rounds=[[{**user(1), "jobTitle": "new"}]])
    report, states, _ = sync(directory, stored=(1,), fail_on_flush=1)
    assert report.status == RunStatus.FAILED and states.puts == []


def test_graph_forgetting_the_link_makes_the_same_run_full_with_a_new_link():
    directory = DeltaDirectory(pages=[[user(1), user(2)]], delta_error=DeltaStateLost("410"))
    report, states, _ = sync(directory, stored=(1,))
    assert (report.mode, report.full_reason, report.status) == (
        "full",
        "syncStateLost",
        RunStatus.SUCCEEDED,
    )
    assert directory.asked == [OLD_LINK, "latest"]
    assert [s.delta_link for s in states.puts] == [LATEST]


def test_delta_unavailable_falls_back_to_full_runs_with_a_warning_and_no_failure():
    directory = DeltaDirectory(pages=[[user(1)]], latest_error=DeltaUnavailable("501"))
    report, states, _ = sync(directory, stored=(), link=None)
    assert (report.mode, report.status) == ("full", RunStatus.SUCCEEDED)
    assert any("delta" in w for w in report.warnings)
    assert [s.delta_link for s in states.puts] == [None]  # the next run is full again


def test_removed_users_and_users_out_of_scope_are_removed_under_clean_up_only():
    disabled = {**user(2), "accountEnabled": False}
    removed = {"id": "u3", "@removed": {"reason": "deleted"}}
    on = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)
    report, _, writer = sync(DeltaDirectory(pages=[], rounds=[[disabled, removed]]),
                             stored=(1, 2, 3), clean_up=on)  # fmt: skip
    assert sorted(op[1] for op in writer.log if op[0] == "deleted") == ["u2", "u3"]
    assert report.counts.employees == 1
    kept, _, writer = sync(DeltaDirectory(pages=[], rounds=[[disabled, removed]]), stored=(1, 2, 3))
    assert kept.counts.staleKept == 2 and not [op for op in writer.log if op[0] == "deleted"]


def test_the_guard_holds_a_mass_disable_against_the_stored_count_and_keeps_the_link():
    guarded = CleanUp(enabled=True, max_deletes=500, max_delete_percent=20)
    disabled = [{**user(n), "accountEnabled": False} for n in range(1, 5)]
    report, states, writer = sync(DeltaDirectory(pages=[], rounds=[disabled]),
                                  stored=tuple(range(1, 11)), clean_up=guarded)  # fmt: skip
    assert report.status == RunStatus.HELD and report.counts.deletesHeld == 4
    assert not [op for op in writer.log if op[0] == "deleted"] and states.puts == []


def test_a_tenant_without_delta_asks_again_at_each_full_run_and_uses_it_once_offered():
    directory = DeltaDirectory(pages=[[user(1)]])
    report, states, _ = sync(directory, stored=(1,), link=None, state_without_link=True)
    assert (report.mode, report.full_reason) == ("full", "deltaUnavailable")
    assert directory.asked == ["latest"] and [s.delta_link for s in states.puts] == [LATEST]


def test_the_no_address_grace_holds_in_delta_runs():
    """A stored employee whose address disappears is kept (marked); one marked before the grace
    period and not in the round (so still without an address) is removed under Clean Up."""
    on = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)
    lost_address = user(1, mail=False)
    report, _, writer = sync(DeltaDirectory(pages=[], rounds=[[lost_address]]), stored=(1, 2, 3),
                             clean_up=on, missing_since={"u2": NOW - timedelta(hours=48)})  # fmt: skip
    assert report.counts.noAddress == 1 and ("updated", "u1") in writer.log
    assert [op[1] for op in writer.log if op[0] == "deleted"] == ["u2"]
