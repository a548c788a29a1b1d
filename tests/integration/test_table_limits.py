"""One user never blocks a tenant: values at and past Table Storage's limits, through the real
CLI, msgraph-sdk and azure-data-tables into Azurite (which enforces the same limits: 64 KiB of
UTF-16 per string, 1 MiB per entity, 4 MiB per transaction body)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.app.service import SyncService
from sync_core.core.report import Counts
from sync_core.settings import load_settings
from tests.integration.full_runs import full_runs
from tests.integration.helpers import stored_rows, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(cli):
    """Full runs only: see tests/integration/full_runs.py."""
    return full_runs(cli)


CJK = "李"  # 2 bytes stored, 6 on the wire (\\u674e)
EMOJI = "😀"  # two UTF-16 units, 12 bytes on the wire


def newcomer(template: dict[str, Any], number: int, **values: Any) -> dict[str, Any]:
    """A member like `template` with its own id and addresses, and these profile values."""
    name = f"limits.{number}"
    return {
        **template,
        "id": f"0e9a4f4b-5d1e-4b7a-9d0c-{number:012d}",
        "userPrincipalName": f"{name}@contoso.com",
        "mail": f"{name}@contoso.com",
        "proxyAddresses": [f"SMTP:{name}@contoso.com"],
        **values,
    }


def assert_counts_add_up(report: dict[str, Any]) -> None:
    counts = report["counts"]
    assert counts["read"] == counts["inScope"] + counts["excluded"]
    assert counts["inScope"] == (
        counts["created"]
        + counts["updated"]
        + counts["unchanged"]
        + counts["skippedNoEmail"]
        + counts["skippedUnstorable"]
    )
    assert Counts(**counts).problems() == []


def test_values_past_the_limits_are_cleaned_and_cut_the_same_way_every_run(
    cli, tenant, simulator, app_env
):
    member = tenant.of_kind("member")[0]
    users = {
        "long": newcomer(member, 1, jobTitle="T" * 40_000),
        # 32,768 units: one emoji too many; the city exactly at the limit is kept whole.
        "emoji": newcomer(member, 2, jobTitle=EMOJI * 16_384, city=EMOJI * 16_383 + "x"),
        "surrogate": newcomer(
            member,
            3,
            givenName="Zo\ud800e",
            surname="\udfffO'Brien",
            userPrincipalName="zo\ud800e@contoso.com",
        ),
        "no address": newcomer(
            member,
            6,
            userPrincipalName="x\udc00@contoso.com",
            mail=None,
            proxyAddresses=[],
            otherMails=[],
        ),
        "nul": newcomer(member, 4, city="Lon\x00don", department="\x00"),
        "phones": newcomer(member, 5, businessPhones=[EMOJI * 20_000, "+1 555 0100"]),
    }
    # Rows of 4 x 30,000 CJK characters: ~720 KB each on the wire, so a transaction sized by
    # characters (or by UTF-16 bytes) would pass 4 MiB and be refused whole.
    heavy = [
        newcomer(member, 100 + i, **{p: CJK * 30_000 for p in
                                    ("jobTitle", "department", "streetAddress", "officeLocation")})
        for i in range(14)
    ]  # fmt: skip
    for user in [*users.values(), *heavy]:
        simulator.upsert_user(tenant.id, user)

    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json
    assert report["status"] == "succeeded" and report["errors"] == []
    assert report["counts"]["skippedUnstorable"] == 0
    assert_counts_add_up(report)

    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert len(rows) == report["counts"]["created"]
    assert rows[users["long"]["id"]]["Title"] == "T" * 32_767
    assert rows[users["emoji"]["id"]]["Title"] == EMOJI * 16_383  # never half an emoji
    assert rows[users["emoji"]["id"]]["City"] == EMOJI * 16_383 + "x"
    assert rows[users["surrogate"]["id"]]["FirstName"] == "Zo\ufffde"
    assert rows[users["surrogate"]["id"]]["LastName"] == "\ufffdO'Brien"
    assert rows[users["surrogate"]["id"]]["UserPrincipalName"] == "zo\ufffde@contoso.com"
    assert "x\ufffd@contoso.com" in report["skippedNoEmail"]  # the report stays printable
    assert rows[users["nul"]["id"]]["City"] == "London"
    assert "Department" not in rows[users["nul"]["id"]]  # nothing left: empty means absent
    for user in heavy:
        assert rows[user["id"]]["Title"] == CJK * 30_000

    # Nothing changed in Entra ID: the same cuts give the same hashes, nothing is rewritten.
    again = cli("sync", "--json").json
    assert again["counts"]["created"] == again["counts"]["updated"] == 0
    assert again["counts"]["unchanged"] == len(rows)
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert {k: v["_etag"] for k, v in after.items()} == {k: v["_etag"] for k, v in rows.items()}


def test_a_user_that_cannot_be_stored_is_skipped_kept_and_retried(
    cli, tenant, simulator, app_env, tmp_path
):
    # Twenty fields from the job title: a title of 32,767 CJK characters makes a row of
    # ~1.3 MB, past the 1 MiB an entity may hold whatever is cut.
    fields = [{"name": f"Title{i}", "source": "jobTitle"} for i in range(20)]
    config = {"fields": fields, "cleanUp": {"enabled": True}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    members = tenant.of_kind("member")
    victim, leaver = members[0], members[1]
    huge = CJK * 32_767
    simulator.patch_user(tenant.id, victim["id"], {"jobTitle": huge})
    simulator.remove_user(tenant.id, leaver["id"])
    joiner = newcomer(victim, 7, jobTitle=huge)
    simulator.upsert_user(tenant.id, joiner)
    before = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    planned = cli("sync", "--dry-run", "--json").json  # a dry run reports the same skips
    assert planned["counts"]["skippedUnstorable"] == 2 and len(planned["skippedUnstorable"]) == 2

    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json
    # The others are synced and the run completes, deletions included.
    assert report["status"] == "succeeded" and report["errors"] == []
    assert report["counts"]["skippedUnstorable"] == 2 and report["counts"]["deleted"] == 1
    assert_counts_add_up(report)
    listed = report["skippedUnstorable"]
    assert {entry.split(":")[0] for entry in listed} == {
        victim["userPrincipalName"],
        joiner["userPrincipalName"],
    }
    assert all("1 MiB" in entry for entry in listed)
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert leaver["id"] not in rows
    # Kept: in scope, so Clean Up does not remove it; its row is the last one that fit.
    assert rows[victim["id"]]["_etag"] == before[victim["id"]]["_etag"]
    assert joiner["id"] not in rows
    text = cli("sync").stdout
    assert "skipped, cannot store        2" in text and victim["userPrincipalName"] in text

    # Retried every run: once the data fits again, the joiner is a create and the victim an
    # update.
    simulator.patch_user(tenant.id, victim["id"], {"jobTitle": "Engineer"})
    simulator.patch_user(tenant.id, joiner["id"], {"jobTitle": "Engineer"})
    report = cli("sync", "--json").json
    assert (report["counts"]["created"], report["counts"]["updated"]) == (1, 1)
    assert report["counts"]["skippedUnstorable"] == 0
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[victim["id"]]["Title19"] == rows[joiner["id"]]["Title0"] == "Engineer"


def test_fence_rows_are_never_listed_indexed_or_cleaned_up(
    cli, tenant, simulator, app_env, tmp_path
):
    config = {"cleanUp": {"enabled": True}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    table = TableServiceClient.from_connection_string(
        app_env["TABLES_CONNECTION_STRING"]
    ).get_table_client(EMPLOYEES_TABLE)
    everything = list(table.query_entities("PartitionKey eq @t", parameters={"t": tenant.id}))
    fences = sorted(r["RowKey"] for r in everything if r["RowKey"].startswith("~fence-"))
    assert fences == [f"~fence-{slot}" for slot in range(4)]
    employees = [r for r in everything if not r["RowKey"].startswith("~")]

    listing = cli("employees", "--json").json["employees"]
    assert len(listing) == len(employees) and not any(e["id"].startswith("~") for e in listing)

    async def api_page() -> list[dict[str, Any]]:  # what GET /api/employees pages through
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            entities, continuation = await service.employees.page(tenant.id, 1000, None)
            assert continuation is None
            return entities

    assert sorted(e["RowKey"] for e in asyncio.run(api_page())) == sorted(
        r["RowKey"] for r in employees
    )
    simulator.remove_user(tenant.id, tenant.of_kind("member")[0]["id"])
    report = cli("sync", "--json").json
    # The index left them out: they count neither as unchanged nor as stale.
    assert report["counts"]["deleted"] == 1
    assert report["counts"]["unchanged"] == len(employees) - 1
    assert report["counts"]["employees"] == len(employees) - 1
    left = {
        r["RowKey"] for r in table.query_entities("PartitionKey eq @t", parameters={"t": tenant.id})
    }
    assert set(fences) <= left
    json.dumps(listing)  # the listing stays plain JSON
