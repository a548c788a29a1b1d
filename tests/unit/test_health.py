"""core/health.tenant_health and the credential warning it reads back (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sync_core.core.credential_expiry import expiry_in_warnings, expiry_warning
from sync_core.core.health import tenant_health
from sync_core.core.report import Counts, RunProblem, RunReport, RunStatus, Trigger

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _run(status: RunStatus, at: datetime = NOW, **more) -> RunReport:
    begun = RunReport.begun(
        "20261202T120000000Z-abcdef", "t", RunStatus.RUNNING, dry_run=False,
        trigger=Trigger.SCHEDULE, at=at,
    )  # fmt: skip
    return replace(begun, status=status, finished_at=at + timedelta(seconds=5), **more)


def test_no_run_yet_is_ok():
    assert tenant_health(None, None, 0) == {"state": "ok", "credentialExpiresOn": None}


def test_a_succeeded_run_is_ok():
    run = _run(RunStatus.SUCCEEDED)
    assert tenant_health(run, run, 0)["state"] == "ok"


def test_failing_says_since_the_last_success_and_the_newest_code():
    success = _run(RunStatus.SUCCEEDED, NOW - timedelta(hours=3))
    failed = _run(RunStatus.FAILED, errors=(RunProblem("a", "m"), RunProblem("graph_failed", "m")))
    health = tenant_health(failed, success, 4)
    assert health == {
        "state": "failing",
        "credentialExpiresOn": None,
        "since": "2026-12-02T09:00:05.000Z",
        "consecutiveFailures": 4,
        "lastErrorCode": "graph_failed",
    }


def test_failing_without_any_success_has_no_since():
    failed = _run(RunStatus.FAILED, errors=(RunProblem("wrong_secret", "m"),))
    assert tenant_health(failed, None, 1)["since"] is None


def test_held_counts_the_held_deletions():
    held = _run(RunStatus.HELD, counts=Counts(deletesHeld=700))
    assert tenant_health(held, held, 0) == {
        "state": "held",
        "credentialExpiresOn": None,
        "deletesHeld": 700,
    }


def test_a_credential_warning_is_read_back_from_the_words_expiry_warning_writes():
    for expires in (NOW + timedelta(days=12), NOW - timedelta(days=1)):
        warning = expiry_warning("The client secret 'x' in Key Vault", expires, NOW)
        assert warning is not None
        assert expiry_in_warnings(["another warning", warning]) == expires.date()
    run = _run(RunStatus.SUCCEEDED, warnings=(expiry_warning("s", NOW + timedelta(days=3), NOW),))
    assert tenant_health(run, run, 0) == {
        "state": "credentialExpiring",
        "credentialExpiresOn": date(2026, 12, 5).isoformat(),
    }
    assert expiry_in_warnings(["Addresses shared by several employees: 2"]) is None
