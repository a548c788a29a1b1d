"""`explain` and a real run judge the same user alike: attacks on the verdict through the CLI
(sync_core.surfaces.cli.main) against the simulator and Azurite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import explain, stored_rows, stored_rows_of, write_config

pytestmark = pytest.mark.integration


def test_a_user_outside_filter_odata_is_out_of_scope_as_a_run_never_reads_it(
    cli, tenant, simulator, tmp_path, app_env
):
    """filter.odata narrows what Graph returns: a run never reads a user outside it, so that
    user is no employee (and a stored row of it is stale); explain must not say "in scope", and
    --apply must not write a row the next run leaves out."""
    config: dict[str, Any] = {"filter": {"odata": "department eq 'Explained'"}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    inside, outside = tenant.of_kind("member")[:2]
    simulator.patch_user(tenant.id, inside["id"], {"department": "Explained"})
    simulator.patch_user(tenant.id, outside["id"], {"department": "Elsewhere"})

    code, document = explain(cli, "--user", outside["id"])
    assert code == 0, document
    assert document["scope"]["inScope"] is False
    decided = [s for s in document["scope"]["steps"] if s["decided"]]
    assert [s["step"] for s in decided] == ["odata"]
    assert document["outcome"] == "excluded" and document["row"]["new"] is None
    text = cli("explain", "--user", outside["id"]).stdout
    assert "filter.odata" in text

    code, document = explain(cli, "--user", inside["id"])
    assert document["scope"]["inScope"] is True
    assert {s["step"]: s["outcome"] for s in document["scope"]["steps"]}["odata"] == "passed"

    code, applied = explain(cli, "--user", outside["id"], "--apply")
    assert code == 0 and applied["applied"]["outcome"] == "excluded"
    assert outside["id"] not in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    # A run agrees: it stores the one inside and not the one outside.
    assert cli("sync").exit_code == 0
    rows = stored_rows_of(cli, tenant)
    assert inside["id"] in rows and outside["id"] not in rows


def test_the_text_shows_no_terminal_control_characters_from_graph_values(cli, tenant, simulator):
    """A directory value may hold ESC sequences or other controls (a hostile or broken profile):
    printed raw they would clear the admin's screen or retitle the window; shown escaped instead."""
    user = tenant.of_kind("member")[0]
    hostile = "Eve\x1b[2J\x1b]0;pwned\x07\r\x9b31m\u202e"
    simulator.patch_user(
        tenant.id,
        user["id"],
        {
            "displayName": hostile,
            "jobTitle": hostile,
            "proxyAddresses": ["SMTP:e\x1bx@contoso.com"],
        },
    )
    result = cli("explain", "--user", user["id"])
    assert result.exit_code == 0, result.stderr
    shown = result.stdout
    for control in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert control not in shown, repr(control)
    assert "Eve\\x1b[2J" in shown
    # JSON keeps the values exactly, as escapes a terminal shows and does not act on.
    answer = cli("explain", "--user", user["id"], "--json")
    assert answer.json["user"]["displayName"] == hostile
    for control in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert control not in answer.stdout, repr(control)


@pytest.mark.parametrize("key", ["x" * 5000 + "@contoso.com", "ann\x1b[2J@contoso.com"])
def test_a_user_key_no_user_can_have_is_refused_naming_the_option(cli, tenant, key):
    """Bad input gets an error naming the field, as the HTTP route answers it (invalid_user),
    not Graph's refusal of a 20 kB URL blamed on filter.odata."""
    result = cli("explain", "--user", key, "--json")
    assert result.exit_code == 1
    error = result.json["error"]
    assert error["code"] == "invalid_user", error
    assert "--user" in error["message"] and "256" in error["message"]
    assert "\x1b" not in result.stderr


def test_a_removal_explain_allows_alone_says_the_runs_guard_counts_every_removal(
    cli, tenant, simulator, tmp_path
):
    """Explain judges one row; a run's guard counts all its removals together. With two users
    disabled and maxDeletes 1, the run holds both: explain must not promise "removes the row in
    the next run" for either, but say the run's limits decide."""
    assert cli("sync").exit_code == 0
    first, second = tenant.of_kind("member")[:2]
    for user in (first, second):
        simulator.patch_user(tenant.id, user["id"], {"accountEnabled": False})
    config = {"cleanUp": {"enabled": True, "maxDeletes": 1, "maxDeletePercent": 100}}
    cli("config", "set", "--file", write_config(tmp_path, config))
    code, document = explain(cli, "--user", first["id"])
    assert code == 0 and document["cleanUp"]["removes"] is True
    detail = document["cleanUp"]["detail"]
    assert "in the next run" not in detail or "unless" in detail, detail
    assert "maxDeletes (1)" in detail and "maxDeletePercent (100%)" in detail, detail
    run = cli("sync", "--json")
    assert run.exit_code == 3 and run.json["counts"]["deletesHeld"] == 2


def test_the_employees_listing_shows_no_terminal_control_characters(cli, tenant, simulator):
    """The same for the stored rows `employees` prints: Graph's values, stored as they came."""
    user = tenant.of_kind("member")[0]
    simulator.patch_user(
        tenant.id, user["id"], {"givenName": "Eve\x1b]0;pwned\x07", "surname": "X\x9b2J\u202e"}
    )
    assert cli("sync").exit_code == 0
    shown = cli("employees").stdout
    assert "Eve\\x1b]0;pwned" in shown
    for control in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert control not in shown, repr(control)


def test_a_user_gone_from_entra_whose_row_is_stored_says_so(cli, tenant, simulator, tmp_path):
    """ "Why is this leaver still in the table?": none found is an answer, but the row stored for
    that object id is the admin's question; say it is there and what Clean Up does with it."""
    assert cli("sync").exit_code == 0
    leaver = tenant.of_kind("member")[0]
    simulator.remove_user(tenant.id, leaver["id"])
    result = cli("explain", "--user", leaver["id"], "--json")
    assert result.exit_code == 1
    error = result.json["error"]
    assert error["code"] == "user_not_found"
    assert "A row is stored for this object id" in error["message"], error
    assert "clean-up is off" in error["message"]
    cli("config", "set", "--file", write_config(tmp_path, {"cleanUp": {"enabled": True}}))
    error = cli("explain", "--user", leaver["id"], "--json").json["error"]
    assert "the next full run removes it" in error["message"], error
    report = cli("sync", "--full", "--json").json
    assert report["counts"]["deleted"] == 1


def test_a_row_edited_outside_the_app_is_not_called_current(cli, tenant, app_env):
    """A row changed in the table (Storage Explorer) keeps its SourceHash, so a run never
    rewrites it: explain lists the differing column and must not also say "the stored row is
    current", but why a run leaves it as it is."""
    from azure.data.tables import TableServiceClient, UpdateMode

    from sync_core.adapters.storage_names import EMPLOYEES_TABLE

    assert cli("sync").exit_code == 0
    user = tenant.of_kind("member")[0]
    table = TableServiceClient.from_connection_string(
        app_env["TABLES_CONNECTION_STRING"]
    ).get_table_client(EMPLOYEES_TABLE)
    edited = {"PartitionKey": tenant.id, "RowKey": user["id"], "Title": "Edited by hand"}
    table.update_entity(edited, mode=UpdateMode.MERGE)
    code, document = explain(cli, "--user", user["id"])
    assert code == 0 and document["outcome"] == "unchanged"
    assert [c["column"] for c in document["changes"]] == ["Title"]
    text = cli("explain", "--user", user["id"]).stdout
    assert "Title: Edited by hand ->" in text
    assert "the stored row is current" not in text
    assert "SourceHash" in text and "edited outside the app" in text
    # A run agrees: it writes nothing, the edit stays.
    assert cli("sync", "--json").json["counts"]["updated"] == 0
