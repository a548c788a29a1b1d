"""`explain` one user through the real CLI (sync_core.surfaces.cli.main) against the simulator
and Azurite: every exclusion reason, every address source, a guest, a user not found, several
matches, what would be written next to what is stored, Clean Up, and `--apply` under the lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sync_core.app.service import SyncService
from sync_core.core.report import utc_now
from sync_core.settings import load_settings
from sync_core.surfaces.cli import main
from tests.integration.helpers import explain, stored_rows, stored_rows_of, write_config

pytestmark = pytest.mark.integration

NO_MAILBOX = {"mail": None, "proxyAddresses": [], "otherMails": []}


def member(tenant) -> dict[str, Any]:
    return tenant.of_kind("member")[0]


def test_text_answers_the_three_questions_and_writes_nothing(cli, tenant, app_env):
    user = member(tenant)
    result = cli("explain", "--user", user["userPrincipalName"])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for question in ("No users imported?", "Missing email addresses?", "Sync not updating?"):
        assert question in text
    assert "In scope: no preset or rule group leaves this user out." in text
    assert "nothing is stored yet; a run would store:" in text
    assert "Nothing was written (add --apply" in text
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    assert cli("runs", "--json").json["runs"] == []


def test_by_object_id_mail_and_proxy_address_the_same_user(cli, tenant, simulator):
    user = member(tenant)
    simulator.patch_user(
        tenant.id, user["id"], {"proxyAddresses": ["SMTP:main@contoso.com", "smtp:alt@contoso.com"]}
    )
    for key in (user["id"], user["id"].upper(), "ALT@contoso.com", user["userPrincipalName"]):
        code, document = explain(cli, "--user", key)
        assert code == 0, document
        assert document["user"]["id"] == user["id"]
        assert document["address"]["email"] == "main@contoso.com"
        assert document["address"]["aliases"] == ["alt@contoso.com"]


def test_a_user_not_found_by_id_or_by_name(cli, tenant):
    for key in ("00000000-0000-4000-8000-000000000000", "nobody@contoso.com", "o'brien@x.com"):
        result = cli("explain", "--user", key, "--json")
        assert result.exit_code == 1
        assert result.json["error"]["code"] == "user_not_found"
        assert key in result.json["error"]["message"]
        assert "Traceback" not in result.stderr


def test_several_matches_are_listed_and_none_is_chosen(cli, tenant, simulator):
    first, second = tenant.of_kind("member")[:2]
    for user in (first, second):
        simulator.patch_user(tenant.id, user["id"], {"mail": "shared@contoso.com"})
    result = cli("explain", "--user", "shared@contoso.com", "--json")
    assert result.exit_code == 1
    error = result.json["error"]
    assert error["code"] == "user_ambiguous"
    for user in (first, second):
        assert user["userPrincipalName"] in error["message"] and user["id"] in error["message"]
    assert {m["id"] for m in error["matches"]} == {first["id"], second["id"]}
    assert "Explain one of them by its object id" in result.stderr


# --- scope: each exclusion reason, and the step that decided -------------------------------------

EXCLUSIONS: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    "disabled": ({}, {"accountEnabled": False}, "disabled", "excludeDisabled"),
    "unlicensed": (
        {"filter": {"excludeUnlicensed": True}}, {"assignedLicenses": []},
        "unlicensed", "excludeUnlicensed",
    ),
    "not included": (
        {"filter": {"include": [[{"attribute": "department", "operator": "equals",
                                  "value": "Nowhere"}]]}},
        {}, "notIncluded", "include",
    ),
    "an exclude group": (
        {"filter": {"exclude": [
            [{"attribute": "city", "operator": "equals", "value": "Elsewhere"}],
            [{"attribute": "jobTitle", "operator": "startsWith", "value": "Temp"}],
        ]}},
        {"jobTitle": "Temporary help"}, "exclude[1]", "exclude[1]",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "patch", "reason", "step"), EXCLUSIONS.values(), ids=EXCLUSIONS.keys()
)
def test_each_exclusion_reason_names_the_step_that_decided(
    cli, tenant, simulator, tmp_path, config, patch, reason, step
):
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], patch)
    code, document = explain(cli, "--user", user["id"])
    assert code == 0
    scope = document["scope"]
    assert scope["inScope"] is False and scope["reason"] == reason
    decided = [s["step"] for s in scope["steps"] if s["decided"]]
    assert decided == [step]
    assert document["outcome"] == "excluded" and document["row"]["new"] is None
    # A run agrees: the same user is counted under the same reason.
    report = cli("sync", "--json").json
    assert report["excludedBy"].get(reason, 0) >= 1
    assert user["id"] not in stored_rows_of(cli, tenant)


def test_the_include_group_that_matches_is_shown_with_the_users_values(
    cli, tenant, simulator, tmp_path
):
    rules = {"filter": {"include": [
        [{"attribute": "department", "operator": "equals", "value": "Nowhere"}],
        [{"attribute": "city", "operator": "equals", "value": "Springfield"}],
    ]}}  # fmt: skip
    cli("config", "set", "--file", write_config(tmp_path, rules))
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], {"city": "Springfield", "department": "Sales"})
    code, document = explain(cli, "--user", user["id"])
    assert code == 0, document
    steps = {s["step"]: s for s in document["scope"]["steps"]}
    assert document["scope"]["inScope"] is True
    assert steps["include[0]"]["outcome"] == "notMatched"
    assert "the user has 'Sales'" in steps["include[0]"]["detail"]
    assert steps["include[1]"]["outcome"] == "matched"
    assert steps["include"]["outcome"] == "passed"


def test_a_guest_is_left_out_and_its_ext_form_is_no_address(cli, tenant, simulator, tmp_path):
    guest = tenant.of_kind("guest")[0]
    code, document = explain(cli, "--user", guest["id"])
    assert document["scope"]["reason"] == "guest"
    # Found by its #EXT# UPN too ($filter with the `#` percent-encoded).
    code, by_upn = explain(cli, "--user", guest["userPrincipalName"])
    assert code == 0 and by_upn["user"]["id"] == guest["id"]
    assert [s["step"] for s in document["scope"]["steps"] if s["decided"]] == ["excludeGuests"]
    # Let guests in: the #EXT# form is refused as an address wherever it is.
    cli("config", "set", "--file", write_config(tmp_path, {"filter": {"excludeGuests": False}}))
    ext = guest["userPrincipalName"]
    assert "#EXT#" in ext
    simulator.patch_user(
        tenant.id, guest["id"], {"mail": ext, "proxyAddresses": [f"SMTP:{ext}"], "otherMails": []}
    )
    code, document = explain(cli, "--user", guest["id"])
    assert code == 0, document
    sources = {s["source"]: s for s in document["address"]["sources"]}
    assert document["address"]["email"] is None
    assert "#EXT# form" in sources["proxyAddresses"]["detail"]
    assert "#EXT# form" in sources["mail"]["detail"]
    assert sources["userPrincipalName"]["outcome"] == "off"
    assert document["outcome"] == "skippedNoEmail"


# --- addresses: every source ---------------------------------------------------------------------

ADDRESSES: dict[str, tuple[dict[str, Any], dict[str, Any], str | None, str, dict[str, str]]] = {
    "primary proxy address": (
        {}, {"proxyAddresses": ["SMTP:p@contoso.com"], "mail": "m@contoso.com"},
        "p@contoso.com", "proxyAddresses", {"mail": "notNeeded"},
    ),
    "mail, no SMTP: entry": (
        {}, {"proxyAddresses": ["smtp:alias@contoso.com"], "mail": "m@contoso.com"},
        "m@contoso.com", "mail", {"proxyAddresses": "no SMTP: entry"},
    ),
    "mail, proxy addresses off": (
        {"email": {"proxyAddresses": False}},
        {"proxyAddresses": ["SMTP:p@contoso.com"], "mail": "m@contoso.com"},
        "m@contoso.com", "mail", {"proxyAddresses": "email.proxyAddresses is false"},
    ),
    "otherMails": (
        {}, {**NO_MAILBOX, "otherMails": ["", "o@fabrikam.com"]},
        "o@fabrikam.com", "otherMails", {"mail": "mail is empty"},
    ),
    "userPrincipalName, when allowed": (
        {"email": {"userPrincipalName": True}}, NO_MAILBOX,
        "UPN", "userPrincipalName", {"otherMails": "otherMails is empty"},
    ),
    "none, UPN option off": (
        {}, NO_MAILBOX, None, "", {"userPrincipalName": "email.userPrincipalName is false"},
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "patch", "email", "source", "why"), ADDRESSES.values(), ids=ADDRESSES.keys()
)
def test_every_address_source_and_why_the_others_were_not_chosen(
    cli, tenant, simulator, tmp_path, config, patch, email, source, why
):
    if config:
        cli("config", "set", "--file", write_config(tmp_path, config))
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], patch)
    code, document = explain(cli, "--user", user["id"])
    assert code == 0, document
    address = document["address"]
    expected = user["userPrincipalName"].lower() if email == "UPN" else email
    assert address["email"] == expected
    assert address["source"] == (source or None)
    sources = {s["source"]: s for s in address["sources"]}
    if source:
        assert sources[source]["outcome"] == "chosen"
    for name, words in why.items():
        assert words in sources[name]["detail"] or words == sources[name]["outcome"], sources[name]
    # A run picks the same address (or skips the user for lack of one).
    cli("sync")
    rows = stored_rows_of_full(cli)
    assert rows.get(user["id"], {}).get("Email") == expected


def stored_rows_of_full(cli) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in cli("employees", "--json").json["employees"]}


# --- the row: stored next to new, and --apply --------------------------------------------------


def test_a_changed_user_shows_the_difference_and_apply_writes_it_as_a_run(
    cli, tenant, simulator, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    assert cli("sync").exit_code == 0
    user = member(tenant)
    code, document = explain(cli, "--user", user["id"])
    assert document["outcome"] == "unchanged" and document["changes"] == []

    simulator.patch_user(tenant.id, user["id"], {"jobTitle": "Chief Explainer"})
    before = stored_rows(connection, tenant.id)[user["id"]]
    code, document = explain(cli, "--user", user["id"])
    assert document["outcome"] == "updated"
    assert {"column": "Title", "stored": before.get("Title"), "new": "Chief Explainer"} in document[
        "changes"
    ]
    assert [c["column"] for c in document["changes"]] == ["Title", "SourceHash"]
    assert stored_rows(connection, tenant.id)[user["id"]]["_etag"] == before["_etag"]
    text = cli("explain", "--user", user["id"]).stdout
    assert f"Title: {before.get('Title')} -> Chief Explainer" in text

    code, applied = explain(cli, "--user", user["id"], "--apply")
    assert code == 0, applied
    run = applied["applied"]
    assert run["status"] == "succeeded" and run["outcome"] == "updated"
    row = stored_rows(connection, tenant.id)[user["id"]]
    assert row["Title"] == "Chief Explainer" and row["RunId"] == run["runId"]
    assert applied["row"]["stored"]["Title"] == "Chief Explainer"
    report = cli("runs", "--json").json["runs"][0]
    assert report["runId"] == run["runId"] and report["trigger"] == "explain"
    assert report["mode"] == "user"
    assert report["counts"]["read"] == 1 and report["counts"]["updated"] == 1
    # The lease was released: a sync runs at once, and finds the row current.
    after = cli("sync", "--json").json
    assert after["status"] == "succeeded" and after["counts"]["updated"] == 0


def test_apply_creates_a_new_employee(cli, tenant, app_env):
    user = member(tenant)
    code, document = explain(cli, "--user", user["userPrincipalName"], "--apply")
    assert code == 0 and document["applied"]["outcome"] == "created"
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert list(rows) == [user["id"]]


def test_apply_while_a_run_holds_the_lease_writes_nothing(cli, tenant, simulator, app_env):
    """The lease decides: a sync holding the tenant's lease refuses the explain, nothing is
    written and no explain run is recorded; once it is released, --apply goes through."""
    user = member(tenant)

    async def hold(release: bool) -> None:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            if release:
                held = await service.leases.get(tenant.id)
                await service.leases.release(held)
                return
            lease = await service.leases.acquire(
                tenant.id, "20260101T000000000Z-abcdef", utc_now(), timedelta(minutes=5)
            )
            assert lease is not None

    asyncio.run(hold(False))
    result = cli("explain", "--user", user["id"], "--apply", "--json")
    assert result.exit_code == 1
    assert result.json["error"]["code"] == "tenant_busy"
    assert "20260101T000000000Z-abcdef" in result.json["error"]["message"]
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    assert cli("runs", "--json").json["runs"] == []
    # Without --apply the explanation needs no lease.
    assert cli("explain", "--user", user["id"]).exit_code == 0

    asyncio.run(hold(True))
    code, document = explain(cli, "--user", user["id"], "--apply")
    assert code == 0 and document["applied"]["outcome"] == "created"


def test_a_sync_during_an_applied_explain_is_refused_by_its_lease(cli, tenant, app_env):
    """The other way round: while an explain holds the lease, a sync is told the tenant is busy."""
    from sync_core.app.exclusive import TenantBusy, sync_exclusively
    from sync_core.app.explain import explain_user
    from sync_core.core.engine import RunRequest

    user = member(tenant)

    async def race() -> tuple[Any, Any]:
        settings = load_settings(app_env, needs_graph=True)
        async with SyncService(settings) as service:
            original = service.employees.writer

            async def writer_then_sync(tenant_id, lease):
                sink = await original(tenant_id, lease)
                try:
                    await sync_exclusively(service, RunRequest(tenant_id))
                except TenantBusy as busy:
                    outcome.append(busy.holder)
                return sink

            outcome: list[str] = []
            service.employees.writer = writer_then_sync  # type: ignore[method-assign]
            explanation = await explain_user(service, tenant.id, user["id"], apply=True)
            return explanation, outcome

    explanation, refused = asyncio.run(race())
    assert explanation.applied is not None and refused == [explanation.applied.run_id]
    assert list(stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)) == [user["id"]]


# --- Clean Up ------------------------------------------------------------------------------------


def test_clean_up_would_remove_a_disabled_employee_and_apply_removes_it(
    cli, tenant, simulator, tmp_path, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    assert cli("sync").exit_code == 0
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], {"accountEnabled": False})

    code, document = explain(cli, "--user", user["id"])
    assert document["cleanUp"]["removes"] is False
    assert "clean-up is off" in document["cleanUp"]["detail"]

    cli("config", "set", "--file", write_config(tmp_path, {"cleanUp": {"enabled": True}}))
    code, document = explain(cli, "--user", user["id"])
    assert document["cleanUp"]["removes"] is True and document["outcome"] == "deleted"
    assert user["id"] in stored_rows(connection, tenant.id)

    code, document = explain(cli, "--user", user["id"], "--apply")
    assert code == 0 and document["applied"]["outcome"] == "deleted"
    assert user["id"] not in stored_rows(connection, tenant.id)
    assert document["row"]["stored"] is None
    assert cli("runs", "--json").json["runs"][0]["counts"]["deleted"] == 1


def test_the_guard_holds_an_applied_removal(cli, tenant, simulator, tmp_path, app_env):
    connection = app_env["TABLES_CONNECTION_STRING"]
    assert cli("sync").exit_code == 0
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], {"accountEnabled": False})
    config = {"cleanUp": {"enabled": True, "maxDeletes": 0}}
    cli("config", "set", "--file", write_config(tmp_path, config))
    result = cli("explain", "--user", user["id"], "--apply", "--json")
    assert result.exit_code == 3
    assert result.json["applied"]["outcome"] == "held"
    assert "maxDeletes (0)" in result.json["cleanUp"]["detail"]
    assert user["id"] in stored_rows(connection, tenant.id)
    report = cli("runs", "--json").json["runs"][0]
    assert report["status"] == "held" and report["counts"]["deletesHeld"] == 1


def test_an_employee_without_an_address_is_kept_until_the_grace_period_ends(
    cli, tenant, simulator, app_env
):
    assert cli("sync").exit_code == 0
    user = member(tenant)
    simulator.patch_user(tenant.id, user["id"], NO_MAILBOX)
    code, document = explain(cli, "--user", user["id"])
    assert code == 0, document
    assert document["outcome"] == "updated"
    assert "kept (marked EmailMissingSince) until" in document["cleanUp"]["detail"]
    changed = {c["column"] for c in document["changes"]}
    assert {"Email", "EmailMissingSince"} <= changed


def test_a_disabled_tenant_is_explained_but_not_applied(cli, tenant, tmp_path, app_env):
    cli("config", "set", "--file", write_config(tmp_path, {"enabled": False}))
    user = member(tenant)
    assert cli("explain", "--user", user["id"]).exit_code == 0
    result = cli("explain", "--user", user["id"], "--apply", "--json")
    assert result.exit_code == 1 and result.json["error"]["code"] == "tenant_disabled"
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    assert cli("runs", "--json").json["runs"] == []


def test_explain_needs_a_user(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["explain"])
    assert stopped.value.code == 2 and "--user" in capsys.readouterr().err


def test_an_apply_whose_lease_is_taken_over_writes_nothing(cli, tenant, app_env):
    """Fenced as a run: once a newer run takes the lease over (the explain's renewals failed for
    a whole TTL), Table Storage refuses the explain's write and its run is closed failed."""
    from sync_core.app.explain import explain_user

    user = member(tenant)
    newer = "20260101T000000000Z-fedcba"

    async def apply_with_a_takeover() -> Any:
        async with SyncService(load_settings(app_env, needs_graph=True)) as service:
            original = service.employees.writer

            async def writer_then_taken_over(tenant_id, lease):
                sink = await original(tenant_id, lease)
                later = utc_now() + timedelta(minutes=10)  # the explain's lease has expired
                taken = await service.leases.acquire(tenant_id, newer, later, timedelta(minutes=5))
                assert taken is not None and taken.holder == newer
                await original(tenant_id, taken)  # the newer run raises its fence
                return sink

            service.employees.writer = writer_then_taken_over  # type: ignore[method-assign]
            return await explain_user(service, tenant.id, user["id"], apply=True)

    explanation = asyncio.run(apply_with_a_takeover())
    assert explanation.applied is not None
    assert explanation.applied.status == "failed" and explanation.applied.outcome == "failed"
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    run = cli("runs", "--json").json["runs"][0]
    assert run["trigger"] == "explain" and run["errors"][0]["code"] == "lease_lost"
