"""`runs` in the CLI after idle delta runs: one line for the run they followed, saying how many
came after it (they leave no record of their own)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_the_runs_listing_says_how_many_idle_checks_followed_a_run(cli, tenant):
    first = cli("sync", "--json").json
    for _ in range(2):
        assert cli("sync", "--json").json["changesRead"] == 0  # idle delta runs
    listed = cli("runs")
    lines = [line for line in listed.stdout.splitlines() if line.startswith("2")]
    assert len(lines) == 1 and lines[0].startswith(first["runId"])
    assert "then 2 idle check(s), the last at" in lines[0]
    document = cli("runs", "--json").json["runs"]
    assert [r["runId"] for r in document] == [first["runId"]]
    assert document[0]["idleChecks"]["count"] == 2
