"""surfaces/cli_unrecorded: the storage-outage output of `sync --json` is as inert on a terminal
as every other JSON the CLI writes (Graph's values in the report are not trusted)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime

from sync_core.core.report import RunReport, RunStatus, Trigger
from sync_core.core.unrecorded import with_report
from sync_core.errors import RetriableError
from sync_core.surfaces.cli_unrecorded import run_not_recorded


def test_the_report_of_an_unrecorded_run_has_its_controls_escaped(capsys):
    upn = "evil\u202e\x9bgpj.exe@contoso.example"  # a bidi override and a C1 CSI from Graph
    report = RunReport.begun(
        "r1", "t", RunStatus.FAILED, dry_run=False, trigger=Trigger.CLI, at=datetime.now(UTC)
    )
    report = replace(report, skipped_no_email=(upn,))
    failure = with_report(
        RetriableError("storage_unreachable", "Storage is gone.", "Start it."), report
    )
    assert run_not_recorded(argparse.Namespace(json=True), "r1", failure) == 1
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\x9b" not in out
    assert json.loads(out)["report"]["skippedNoEmail"] == [upn]
