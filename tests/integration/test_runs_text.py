"""`runs` as text (issue 17): a header, a legend for `+0 ~1 -0`, and how many deletions a held
run held; through the real CLI against the simulator and Azurite."""

from __future__ import annotations

import pytest

from tests.integration.full_runs import full_runs
from tests.integration.helpers import write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(cli):
    return full_runs(cli)


def test_runs_has_a_header_a_legend_and_the_held_count(cli, tenant, simulator, tmp_path):
    assert cli("runs").stdout.strip() == "no runs yet"
    assert cli("sync").exit_code == 0
    members = tenant.of_kind("member")[:2]
    for user in members:
        simulator.patch_user(tenant.id, user["id"], {"accountEnabled": False})
    config = {"cleanUp": {"enabled": True, "maxDeletes": 1}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    held = cli("sync", "--json")
    assert held.exit_code == 3, held.stdout
    run_id = held.json["runId"]

    lines = cli("runs").stdout.splitlines()
    header = next(line for line in lines if line.startswith("run id"))
    assert header.split() == ["run", "id", "status", "mode", "trigger", "users", "read", "changes"]
    assert lines.index(header) < min(i for i, line in enumerate(lines) if line[:8].isdigit())
    row = next(line for line in lines if line.startswith(run_id))
    assert "held" in row and row.endswith("-0  (2 deletions held)")
    assert lines[-1].startswith("changes: +added ~updated -removed employees")
    assert "--allow-deletes" in lines[-1]
