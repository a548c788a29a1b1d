"""What a delta run reads and writes (issue 19): the rows its round names and the tenant's
summary, never the whole index; the writer (fence, summary mark) opened only before a write;
the summary kept current by every run that writes. Against the list-backed fakes of
engine_fakes.py, whose Store logs every read in order."""

from __future__ import annotations

from datetime import timedelta

from sync_core.core.config import CleanUp
from sync_core.core.delta import LINK_REFRESH_AGE
from sync_core.core.report import RunStatus
from sync_core.core.summary import TenantSummary
from tests.unit.engine_fakes import NEW_LINK, NOW, OLD_LINK, DeltaDirectory, sync, user

ON = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)


def test_an_idle_delta_run_reads_no_row_and_writes_nothing():
    report, states, writer = sync(DeltaDirectory(pages=[], rounds=[[]]), stored=(1, 2, 3))
    assert (report.mode, report.status) == ("delta", RunStatus.SUCCEEDED)
    assert sync.store.reads == []  # no index, no row, no fence
    assert states.writes == 0 and writer.log == []
    assert report.counts.employees == 3  # from the summary


def test_an_idle_run_replaces_the_link_once_it_is_old_enough_never_letting_it_expire():
    old = NOW - LINK_REFRESH_AGE - timedelta(minutes=1)
    _, states, _ = sync(DeltaDirectory(pages=[], rounds=[[]]), stored=(1,), taken_at=old)
    assert [s.delta_link for s in states.puts] == [NEW_LINK]
    assert states.summaries == [] and states.marked == [] and sync.store.reads == []


def test_a_delta_run_reads_the_named_rows_and_raises_the_fence_before_its_first_write():
    changed = {**user(2), "jobTitle": "new"}
    report, states, writer = sync(DeltaDirectory(pages=[], rounds=[[changed, user(7)]]),
                                  stored=(1, 2, 3))  # fmt: skip
    assert sync.store.reads == [("rows", ("u2", "u7")), ("opened", None)]
    assert states.marked and writer.log[0][0] in ("created", "updated")
    assert (report.counts.created, report.counts.updated) == (1, 1)
    assert states.marked and states.summaries == [TenantSummary(4, {})]
    assert report.counts.employees == 4
    assert [s.delta_link for s in states.puts] == [NEW_LINK]


def test_a_round_that_changes_no_stored_row_opens_no_writer_but_moves_the_link_on():
    guest = {**user(9), "userType": "Guest"}  # out of scope, never stored
    unchanged = user(1)
    report, states, writer = sync(DeltaDirectory(pages=[], rounds=[[guest, unchanged]]),
                                  stored=(1, 2))  # fmt: skip
    assert sync.store.reads == [("rows", ("u1", "u9"))]
    assert states.marked == [] and states.summaries == [] and writer.log == []
    assert [s.delta_link for s in states.puts] == [NEW_LINK]  # not read again next time
    assert report.counts.unchanged == 1


def test_without_a_summary_to_trust_the_run_reads_the_index_after_the_fence_and_stores_one():
    since = NOW - timedelta(hours=1)
    _, states, _ = sync(DeltaDirectory(pages=[], rounds=[[]]), stored=(1, 2, 3), summary=False,
                        missing_since={"u3": since})  # fmt: skip
    assert sync.store.reads == [("opened", None), ("index", None)]
    assert states.summaries == [TenantSummary(3, {"u3": since})]


def test_a_full_run_recomputes_the_summary_from_the_index_and_fences_only_to_write():
    report, states, _ = sync(DeltaDirectory(pages=[[user(1), user(4)]]), stored=(1, 2), link=None)
    assert report.mode == "full"
    assert sync.store.reads == [("index", None), ("opened", None)]
    assert states.summaries == [TenantSummary(3, {})]  # u2 kept (Clean Up off), u4 added
    _, states, writer = sync(DeltaDirectory(pages=[[user(1), user(2)]]), stored=(1, 2),
                                link=None)  # fmt: skip
    assert sync.store.reads == [("index", None)] and writer.log == []  # never opened
    assert states.summaries == [] and states.marked == []  # as stored, nothing to write


def test_a_full_run_without_a_trusted_summary_raises_the_fence_before_it_reads_the_index():
    """No trusted summary: a run that wrote may never have finished (it may still be writing),
    so the fence goes up first and the index read after it is complete."""
    sync(DeltaDirectory(pages=[[user(1)]]), stored=(1,), link=None, summary=False)
    assert sync.store.reads == [("opened", None), ("index", None)]


def test_the_summary_follows_marks_made_cleared_and_removed():
    long_ago, lately = NOW - timedelta(hours=48), NOW - timedelta(hours=1)
    marks = {"u2": long_ago, "u3": lately, "u4": lately}
    round_ = [user(1, mail=False), {**user(3), "jobTitle": "x"}]  # u1 loses its address, u3 has one
    _report, states, writer = sync(DeltaDirectory(pages=[], rounds=[round_]), stored=(1, 2, 3, 4),
                                  clean_up=ON, missing_since=marks)  # fmt: skip
    assert [op[1] for op in writer.log if op[0] == "deleted"] == ["u2"]  # past its grace
    assert states.summaries == [TenantSummary(3, {"u1": NOW, "u4": lately})]


def test_the_guard_compares_with_the_stored_count_from_the_summary():
    """Four disabled of 10 stored rows (as the summary says) is 40%, over 20%: held, although
    the run read only the four rows it was told about."""
    guarded = CleanUp(enabled=True, max_deletes=500, max_delete_percent=20)
    disabled = [{**user(n), "accountEnabled": False} for n in range(1, 5)]
    report, states, _writer = sync(DeltaDirectory(pages=[], rounds=[disabled]),
                                  stored=tuple(range(1, 11)), clean_up=guarded)  # fmt: skip
    assert report.status == RunStatus.HELD and report.counts.deletesHeld == 4
    assert sync.store.reads[0] == ("rows", ("u1", "u2", "u3", "u4"))
    assert ("index", None) not in sync.store.reads
    assert OLD_LINK not in [s.delta_link for s in states.puts]


def test_a_summary_with_more_marks_than_a_row_holds_is_not_kept():
    from sync_core.core.summary import MAX_MARKS, after_run

    marks = {f"u{n}": NOW for n in range(MAX_MARKS + 1)}
    assert after_run(TenantSummary(MAX_MARKS + 1, {}), marks, 0, ()) is None
    assert after_run(TenantSummary(3, {"u1": NOW}), {"u1": None}, 1, ["u2"]) == TenantSummary(3)
