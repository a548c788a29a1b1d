"""Issue 8 through the command line as an admin runs it: `python -m sync_core` in a subprocess
against the simulator and Azurite. Every bad input ends with our message on stderr, the right
exit code, nothing stored and never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync_core.adapters.errors import classify_token_error

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LARGE_IN_LIST = [f"Department {i:05d} of Contoso" for i in range(3000)]  # about 90 KB


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, stdout: Any = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync_core", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=180,
        check=False,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr and "internal_error" not in result.stderr
    return result.stderr


# --- configuration -------------------------------------------------------------------------------

CONFIG_FILES: dict[str, tuple[bytes, str]] = {
    "NaN": (b'{"cleanUp": {"enabled": true, "maxDeletePercent": NaN}}', "NaN is not a JSON number"),
    "Infinity": (b'{"cleanUp": {"maxDeletes": Infinity}}', "Infinity is not a JSON number"),
    "a number beyond a float": (b'{"cleanUp": {"maxDeletePercent": 1e999}}', "out of range"),
    "duplicate keys": (b'{"enabled": false, "enabled": true}', 'duplicate key "enabled"'),
    "invalid UTF-8": (b'{"fields": [{"name": "Caf\xe9", "source": "city"}]}', "not UTF-8"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 20 levels"),
    "a lone surrogate": (b'{"filter": {"odata": "city eq \'\\udc00\'"}}', "lone surrogate"),
    "clean_up alias": (b'{"clean_up": {"enabled": true}}', "did you mean 'cleanUp'?"),
    "unknown nested key": (b'{"email": {"otherMail": false}}', "did you mean 'otherMails'?"),
    "field named id": (b'{"fields": [{"name": "id", "source": "employeeId"}]}', "is reserved"),
    "field named Email": (b'{"fields": [{"name": "email", "source": "mail"}]}', "is reserved"),
    "field named Timestamp": (
        b'{"fields": [{"name": "Timestamp", "source": "createdDateTime"}]}', "is reserved"
    ),
    "too large to store": (
        json.dumps({"filter": {"include": [[{"attribute": "department", "operator": "in",
                                             "value": LARGE_IN_LIST * 3}]]}}).encode(),
        "at most 262144 (256 KiB) can be stored",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("content", "words"), CONFIG_FILES.values(), ids=CONFIG_FILES.keys())
def test_config_validate_and_set_refuse_bad_documents_and_store_nothing(
    app_env, tmp_path, content: bytes, words: str
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    validated = run_cli("config", "validate", "--file", str(path))
    assert words in assert_clean_failure(validated, 2)
    stored = run_cli("config", "set", "--file", str(path))
    assert words in assert_clean_failure(stored, 2)
    shown = run_cli("config", "show")
    assert shown.returncode == 0 and json.loads(shown.stdout)["cleanUp"]["enabled"] is False


def test_every_error_of_a_file_comes_in_one_pass(app_env, tmp_path) -> None:
    path = tmp_path / "config.json"
    document = {
        "fields": [{"name": "Dept", "source": "department"}, {"name": "DEPT", "source": "nope"}],
        "cleanUp": {"maxDeletes": -1},
        "clean_up": {},
    }
    path.write_text(json.dumps(document))
    stderr = assert_clean_failure(run_cli("config", "validate", "--file", str(path)), 2)
    for expected in (
        "$.fields[1].source:",
        "$.fields[1].name: is used twice",
        "$.cleanUp.maxDeletes:",
        "$.clean_up: unknown key; did you mean 'cleanUp'?",
    ):
        assert expected in stderr


def test_a_large_configuration_that_validates_is_stored_and_shown_unchanged(
    app_env, tmp_path
) -> None:
    """An `in` list of 3000 names (about 90 KB) used to validate, then fail at storage with
    "64KB"; it is split over properties now."""
    document = {
        "filter": {
            "include": [[{"attribute": "department", "operator": "in", "value": LARGE_IN_LIST}]]
        }
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    stored = run_cli("config", "set", "--file", str(path))
    assert stored.returncode == 0, stored.stderr
    shown = run_cli("config", "show")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["filter"]["include"][0][0]["value"] == LARGE_IN_LIST


def test_a_file_that_cannot_be_read_is_a_config_error(app_env, tmp_path) -> None:
    stderr = assert_clean_failure(run_cli("config", "validate", "--file", str(tmp_path)), 2)
    assert f"cannot read {tmp_path}" in stderr


# --- settings ------------------------------------------------------------------------------------

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SETTINGS_CASES: dict[str, tuple[dict[str, str], str]] = {
    "connection string without key=value": (
        {"TABLES_CONNECTION_STRING": "s3cr3tValue~pasted.here"},
        "TABLES_CONNECTION_STRING is not a connection string",
    ),
    "account key not base64": (
        {"TABLES_CONNECTION_STRING": "AccountName=devstoreaccount1;AccountKey=s3cr3t!value;"
                                     "TableEndpoint=http://127.0.0.1:1/devstoreaccount1"},
        "AccountKey is not base64",
    ),
    "connection string endpoint not a URL": (
        {"TABLES_CONNECTION_STRING": f"AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
                                     "TableEndpoint=127.0.0.1:10002"},
        "tableendpoint is not an http(s) URL",
    ),
    "malformed Key Vault URL": ({"KEY_VAULT_URL": "https://[kv-sync"}, "KEY_VAULT_URL is not"),
    "malformed Graph URL": ({"GRAPH_BASE_URL": "https://graph:port"}, "GRAPH_BASE_URL is not"),
    "secret pasted as tenant": (
        {"ENTRA_TENANT_ID": "s3cr3tValue~pasted.here"}, "ENTRA_TENANT_ID is not a tenant GUID"
    ),
}  # fmt: skip


@pytest.mark.parametrize(("change", "words"), SETTINGS_CASES.values(), ids=SETTINGS_CASES.keys())
def test_malformed_settings_exit_2_with_the_problem_and_without_the_value(
    app_env, change: dict[str, str], words: str
) -> None:
    for command in (["runs"], ["check", "--json"]):
        result = run_cli(*command, env=change)
        stderr = assert_clean_failure(result, 2)
        assert words in stderr and "invalid settings" in stderr
        for value in change.values():
            assert value not in stderr + result.stdout
        assert "s3cr3t" not in stderr + result.stdout and AZURITE_KEY not in stderr


# --- the command line ----------------------------------------------------------------------------


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m sync_core ... | head -c0`, made deterministic: the reader is gone before the
    command writes a byte."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return run_cli(*args, stdout=write_end)
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "command",
    [["employees"], ["employees", "--json"], ["runs", "--json"], ["config", "show"]],
    ids=" ".join,
)
def test_a_closed_pipe_ends_the_command_quietly_with_its_own_outcome(app_env, command) -> None:
    result = run_into_closed_pipe(*command)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_sync_into_a_closed_pipe_keeps_the_run_and_its_exit_code(app_env, tenant) -> None:
    result = run_into_closed_pipe("sync", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    runs = run_cli("runs", "--json")
    assert json.loads(runs.stdout)["runs"][0]["status"] == "succeeded"


HOSTILE = "Dept\u202e\x9b[2J\x7f"  # a right-to-left override, C1 CSI (clear screen), DEL


def test_an_error_document_quoting_a_hostile_value_is_inert_on_a_terminal(
    app_env, tmp_path
) -> None:
    # A configuration stored by hand (or by an older version) whose field name does not
    # validate: the error quotes the value back, as --json must, exactly once parsed.
    from azure.data.tables import TableServiceClient, UpdateMode

    valid = tmp_path / "config.json"
    valid.write_text("{}")
    assert run_cli("config", "set", "--file", str(valid)).returncode == 0
    tenant = app_env["ENTRA_TENANT_ID"].lower()
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    service.get_table_client("TenantConfigs").upsert_entity(
        {
            "PartitionKey": tenant,
            "RowKey": "config",
            "Config": json.dumps({"fields": [{"name": HOSTILE, "source": "city"}]}),
        },
        mode=UpdateMode.REPLACE,
    )
    result = run_cli("employees", "--json")
    stderr = assert_clean_failure(result, 2)
    for raw in ("\u202e", "\x9b", "\x7f"):
        assert raw not in result.stdout and raw not in stderr
    problems = json.loads(result.stdout)["error"]["problems"]
    assert HOSTILE in [problem["value"] for problem in problems]


def test_a_secret_from_entra_client_secret_is_blamed_there_and_sdk_logs_need_v(app_env) -> None:
    env = {"ENTRA_CLIENT_SECRET": "not-the-secret"}
    result = run_cli("check", "--json", env=env)
    assert result.returncode == 1 and result.stderr == ""
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["code"] == "wrong_secret"
    assert "ENTRA_CLIENT_SECRET" in problem["message"] and "ENTRA_CLIENT_SECRET" in problem["fix"]
    assert "Key Vault under" not in problem["fix"]
    verbose = run_cli("check", "-v", env=env)
    assert "azure.identity" in verbose.stderr  # the SDK's own words stay available with -v
    assert "not-the-secret" not in verbose.stderr + verbose.stdout


def test_a_secret_from_key_vault_is_blamed_on_the_vault() -> None:
    failure = classify_token_error(Exception("AADSTS7000215: Invalid client secret provided."))
    assert "Key Vault" in (failure.fix or "") and "ENTRA_CLIENT_SECRET" not in failure.message


def test_a_wrong_account_key_is_not_blamed_on_the_identity_role(app_env) -> None:
    wrong_key = "A" * 86 + "=="
    connection = app_env["TABLES_CONNECTION_STRING"].replace(AZURITE_KEY, wrong_key)
    assert wrong_key in connection
    result = run_cli("runs", env={"TABLES_CONNECTION_STRING": connection})
    stderr = assert_clean_failure(result, 1)
    assert "storage_key_rejected" in stderr and "account key" in stderr
    assert "role" not in stderr and wrong_key not in stderr
    assert stderr.count("\n") == 2  # our error and what to do: no SDK warning block


def test_storage_that_does_not_resolve_is_unreachable(app_env) -> None:
    connection = app_env["TABLES_CONNECTION_STRING"].replace("127.0.0.1", "azurite.invalid")
    result = run_cli("runs", env={"TABLES_CONNECTION_STRING": connection})
    stderr = assert_clean_failure(result, 1)
    assert "storage_unreachable" in stderr and stderr.count("\n") == 2


def test_bin_sync_core_runs_from_any_directory(app_env, tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"cleanUp": {"enabled": true}}')
    result = subprocess.run(
        [str(ROOT / "bin" / "sync-core"), "config", "validate", "--file", "config.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "config.json: valid\n", "")


@pytest.mark.parametrize("version", ["3.10", "3.13"])
def test_bootstrap_refuses_a_wrong_python_up_front(tmp_path, version: str) -> None:
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")],
        env={**os.environ, "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"is Python {version}" in result.stderr and "install python3.11" in result.stderr


def test_a_graph_host_that_does_not_resolve_is_unreachable_not_dropped(caplog) -> None:
    """The transport's retry notice and the classification agree: a name that does not resolve
    never reached Graph ("could not be reached"), it is not a dropped connection."""
    import asyncio

    import httpx

    from sync_core.adapters.errors import classify_graph_error
    from sync_core.adapters.graph_transport import GuardedTransport
    from sync_core.core.ports import GraphStats

    async def get() -> BaseException:
        transport = GuardedTransport(httpx.AsyncHTTPTransport(), GraphStats())
        try:
            request = httpx.Request("GET", "https://graph.nonexistent.invalid/v1.0/users")
            await transport.handle_async_request(request)
        except Exception as error:  # noqa: BLE001 - the error is the subject of the test
            return error
        finally:
            await transport.aclose()
        raise AssertionError("an unresolvable host answered")

    caplog.set_level("WARNING", logger="sync_core.adapters.graph")
    error = asyncio.run(get())
    notices = [record.getMessage() for record in caplog.records]
    assert notices and all("could not be reached" in notice for notice in notices)
    assert not any("dropped" in notice for notice in notices)
    assert classify_graph_error(error).code == "graph_unreachable"


def test_the_transports_retry_notice_keeps_the_graph_adapters_logger(caplog) -> None:
    """The notice of a dropped connection is logged as `sync_core.adapters.graph`, where it was
    before the transport had its own module: log queries and filters name that category."""
    import asyncio

    import httpx

    from sync_core.adapters.graph_transport import GuardedTransport
    from sync_core.core.ports import GraphStats

    attempts: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ReadError("dropped", request=request)
        return httpx.Response(200, json={"value": []})

    async def get() -> int:
        transport = GuardedTransport(httpx.MockTransport(answer), GraphStats())
        try:
            request = httpx.Request("GET", "https://graph.microsoft.com/v1.0/users")
            return (await transport.handle_async_request(request)).status_code
        finally:
            await transport.aclose()

    caplog.set_level("WARNING", logger="sync_core.adapters.graph")
    assert asyncio.run(get()) == 200
    notices = [record for record in caplog.records if "retrying" in record.getMessage()]
    assert [record.name for record in notices] == ["sync_core.adapters.graph"]
