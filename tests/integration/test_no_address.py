"""Employees whose address disappears, and guests whose only addresses are their #EXT# form:
the real CLI against the simulator and Azurite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from tests.integration.full_runs import full_runs
from tests.integration.helpers import stored_rows, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(cli):
    """Full runs only: see tests/integration/full_runs.py."""
    return full_runs(cli)


NO_MAILBOX = {"mail": None, "proxyAddresses": [], "otherMails": []}


def _age_marker(connection_string: str, tenant_id: str, employee_id: str, hours: float) -> None:
    """Move a row's EmailMissingSince into the past, as if it had been marked `hours` ago."""
    table = TableServiceClient.from_connection_string(connection_string).get_table_client(
        EMPLOYEES_TABLE
    )
    since = datetime.now(UTC) - timedelta(hours=hours)
    table.update_entity(
        {"PartitionKey": tenant_id, "RowKey": employee_id, "EmailMissingSince": since},
        mode=UpdateMode.MERGE,
    )


def test_an_employee_whose_address_disappears_is_kept_marked_and_current(
    cli, tenant, simulator, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    assert cli("sync").exit_code == 0
    member = tenant.of_kind("member")[0]
    simulator.patch_user(tenant.id, member["id"], {**NO_MAILBOX, "jobTitle": "Archivist"})

    report = cli("sync", "--json").json
    assert report["status"] == "succeeded"
    assert report["counts"]["noAddress"] == 1 and report["counts"]["updated"] == 1
    assert report["noAddress"] == [member["userPrincipalName"]]
    assert member["userPrincipalName"] not in report["skippedNoEmail"]
    row = stored_rows(connection, tenant.id)[member["id"]]
    assert "Email" not in row and isinstance(row["EmailMissingSince"], datetime)
    assert row["Title"] == "Archivist"  # the other fields stay current
    marked = row["EmailMissingSince"]

    # Still without an address: nothing to write, the marker keeps its first time.
    again = cli("sync", "--json").json
    assert again["counts"]["unchanged"] == again["counts"]["inScope"] - len(again["skippedNoEmail"])
    simulator.patch_user(tenant.id, member["id"], {"jobTitle": "Head Archivist"})
    assert cli("sync", "--json").json["counts"]["updated"] == 1
    row = stored_rows(connection, tenant.id)[member["id"]]
    assert row["Title"] == "Head Archivist" and row["EmailMissingSince"] == marked

    # The address comes back: the marker is cleared.
    simulator.patch_user(tenant.id, member["id"], {"proxyAddresses": ["SMTP:Back@contoso.com"]})
    report = cli("sync", "--json").json
    assert report["counts"]["noAddress"] == 0 and report["noAddress"] == []
    row = stored_rows(connection, tenant.id)[member["id"]]
    assert row["Email"] == "back@contoso.com" and "EmailMissingSince" not in row


def test_turning_the_upn_option_off_marks_the_employees_it_gave_an_address(
    cli, tenant, app_env, tmp_path
):
    config = write_config(tmp_path, {"email": {"userPrincipalName": True}})
    assert cli("config", "set", "--file", config).exit_code == 0
    assert cli("sync").exit_code == 0
    service = tenant.of_kind("service")[0]  # no mailbox: only its UPN gave it an address
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[service["id"]]["Email"] == service["userPrincipalName"].lower()

    config = write_config(tmp_path, {"email": {"userPrincipalName": False}})
    assert cli("config", "set", "--file", config).exit_code == 0
    report = cli("sync", "--json").json
    assert service["userPrincipalName"] in report["noAddress"]
    row = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[service["id"]]
    assert "Email" not in row and "EmailMissingSince" in row


def test_clean_up_removes_an_employee_only_after_the_grace_period(
    cli, tenant, simulator, app_env, tmp_path
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    config = write_config(tmp_path, {"cleanUp": {"enabled": True, "emailMissingGraceHours": 24}})
    assert cli("config", "set", "--file", config).exit_code == 0
    assert cli("sync").exit_code == 0
    member = tenant.of_kind("member")[0]
    simulator.patch_user(tenant.id, member["id"], NO_MAILBOX)

    # One read without the address deletes nobody, Clean Up or not.
    report = cli("sync", "--json").json
    assert report["counts"]["deleted"] == 0 and report["counts"]["noAddress"] == 1
    assert member["id"] in stored_rows(connection, tenant.id)

    _age_marker(connection, tenant.id, member["id"], hours=23)
    assert cli("sync", "--json").json["counts"]["deleted"] == 0
    assert member["id"] in stored_rows(connection, tenant.id)

    _age_marker(connection, tenant.id, member["id"], hours=25)
    report = cli("sync", "--json").json
    assert report["status"] == "succeeded" and report["counts"]["deleted"] == 1
    assert any("no email address for more than 24 h" in w for w in report["warnings"])
    assert member["id"] not in stored_rows(connection, tenant.id)

    # Gone for good while it has no address: never stored again without one.
    report = cli("sync", "--json").json
    assert member["userPrincipalName"] in report["skippedNoEmail"]
    assert member["id"] not in stored_rows(connection, tenant.id)


def test_without_clean_up_an_employee_without_address_is_never_deleted(
    cli, tenant, simulator, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    assert cli("sync").exit_code == 0
    member = tenant.of_kind("member")[0]
    simulator.patch_user(tenant.id, member["id"], NO_MAILBOX)
    assert cli("sync").exit_code == 0
    _age_marker(connection, tenant.id, member["id"], hours=24 * 365)
    report = cli("sync", "--json").json
    assert report["counts"]["deleted"] == 0 and report["noAddress"] == [member["userPrincipalName"]]
    assert "EmailMissingSince" in stored_rows(connection, tenant.id)[member["id"]]


def test_guests_never_get_their_ext_form_as_address(cli, tenant, simulator, app_env, tmp_path):
    config = write_config(tmp_path, {"filter": {"excludeGuests": False}})
    assert cli("config", "set", "--file", config).exit_code == 0
    first, second = tenant.of_kind("guest")[:2]
    # As real tenants show them: the #EXT# form as the primary SMTP address, the external
    # address in `mail`; and a guest whose every address is its #EXT# form.
    simulator.patch_user(
        tenant.id,
        first["id"],
        {"proxyAddresses": [f"SMTP:{first['userPrincipalName']}", f"smtp:{first['mail']}"]},
    )
    simulator.patch_user(
        tenant.id,
        second["id"],
        {
            "proxyAddresses": [f"SMTP:{second['userPrincipalName']}"],
            "mail": second["userPrincipalName"],
            "otherMails": [],
        },
    )
    report = cli("sync", "--json").json
    assert report["status"] == "succeeded"
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[first["id"]]["Email"] == first["mail"].lower()
    assert second["id"] not in rows and second["userPrincipalName"] in report["skippedNoEmail"]
    for row in rows.values():
        assert "#ext#" not in (row.get("Email") or "").lower()
        assert not any("#ext#" in alias for alias in json.loads(row["Aliases"]))
