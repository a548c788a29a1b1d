"""The command line: `python -m sync_core <command>`.

Exit codes: 0 success; 1 the run failed; 2 bad usage, settings or configuration; 3 the run
finished but deletions were held by the guard; 130 interrupted (Ctrl-C): a sync closes its own
run record as failed with code `cancelled` first. With --json, stdout carries exactly one JSON
document and everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from sync_core.app.check import check_connectivity, render_check
from sync_core.app.exclusive import TenantBusy, sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config_bytes
from sync_core.core.engine import RunRequest
from sync_core.core.json_document import MAX_DOCUMENT_BYTES
from sync_core.core.report import (
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.report_text import render_text
from sync_core.errors import ErrorCode, SyncError, internal_error
from sync_core.settings import TENANT_ID_RULE, Settings, SettingsError, is_tenant_id, load_settings
from sync_core.surfaces.cli_output import (
    close_interrupted,
    connect_command,
    emit,
    show_employees,
    show_runs,
    write_stdout,
)
from sync_core.surfaces.cli_unrecorded import busy_error, run_not_recorded
from sync_core.surfaces.explain_output import explain_command
from sync_core.surfaces.terminal import terminal_safe

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


class Interrupted(Exception):
    """Ctrl-C stopped a sync; its run record has been closed (when storage allowed)."""

    def __init__(self, run_id: str, closed: bool):
        super().__init__(run_id)
        self.run_id = run_id
        self.closed = closed


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    # -v works before or after the command (`sync -v` is what an admin types); SUPPRESS keeps a
    # subcommand from resetting a -v given before it.
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress"
    )
    parser = _Parser(prog="python -m sync_core", description="Entra ID -> Employees table sync.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, help=help, parents=[common])

    config = command("config", "validate, store or show a tenant configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="check a configuration file")
    validate.add_argument("--file", required=True, type=Path)
    store = config_commands.add_parser("set", help="validate, then store (next run uses it)")
    store.add_argument("--file", required=True, type=Path)
    _tenant(store)
    show = config_commands.add_parser("show", help="the effective configuration as JSON")
    _tenant(show)

    check = command("check", "Check Connectivity")
    _tenant(check)
    _json(check)

    sync = command("sync", "sync the tenant's users into the Employees table")
    _tenant(sync)
    sync.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    sync.add_argument(
        "--allow-deletes", action="store_true", help="let this run pass the deletion guard"
    )
    sync.add_argument("--full", action="store_true", help="a full run even if delta could do")
    _json(sync)

    employees = command("employees", "list the stored employees")
    _tenant(employees)
    _json(employees)

    connect = command("connect", "print the admin-consent URL that links a tenant")
    connect.add_argument(
        "--callback",
        required=True,
        type=_callback_url,
        help="the app's callback, https://<function app>.azurewebsites.net/api/connect/callback",
    )
    connect.add_argument(
        "--account",
        required=True,
        type=_account,
        help="the account (customer id) the tenant is linked to; another cannot take it",
    )
    connect.add_argument(
        "--replace-config",
        action="store_true",
        help="linked before: reset its configuration and enabled flag to the defaults",
    )
    _tenant(connect)  # unused: the admin picks the tenant; accepted so every command takes it
    _json(connect)

    explain = command("explain", "why one user is or is not an employee (--apply: sync it now)")
    explain.add_argument("--user", required=True, help="object id, UPN or email address")
    explain.add_argument("--apply", action="store_true", help="write (or remove) its row now")
    _tenant(explain)
    _json(explain)

    runs = command("runs", "recent run reports, newest first")
    _tenant(runs)
    runs.add_argument("--top", type=int, default=20, help="how many runs (default 20)")
    runs.add_argument("--idle", action="store_true", help="also delta runs that changed nothing")
    _json(runs)
    return parser


def _callback_url(value: str) -> str:
    # Entra registers only absolute https redirect URIs, http just for localhost ("Redirect URI
    # (reply URL) restrictions"): anything else would fail on Microsoft's page, after sign-in.
    parts = urlsplit(value)
    local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")
    if not parts.hostname or (parts.scheme != "https" and not local):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an absolute https URL (http only for localhost)"
        )
    return value


def _account(value: str) -> str:
    if not value.strip() or len(value) > 128 or not value.isprintable():
        raise argparse.ArgumentTypeError("must be 1 to 128 printable characters")
    return value


def _tenant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", help="tenant id (default: ENTRA_TENANT_ID)")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    env = dict(os.environ if environ is None else environ)
    try:
        if args.command == "config" and args.config_command == "validate":
            return _validate(args.file)
        needs_graph = args.command in ("check", "sync", "connect", "explain")
        settings = load_settings(env, needs_graph=needs_graph)
        tenant_id = _tenant_id(args, settings)
        return asyncio.run(_dispatch(args, settings, tenant_id))
    except Interrupted as stopped:
        message = f"Interrupted: run {stopped.run_id} stopped before it finished" + (
            " and was recorded as failed (cancelled)."
            if stopped.closed
            else "; the timer or the next run closes its record."
        )
        return _fail(
            args,
            EXIT_INTERRUPTED,
            ErrorCode.CANCELLED,
            message,
            "Rows written so far are correct; sync again.",
        )
    except KeyboardInterrupt:  # before a run began, or a second Ctrl-C while closing one
        return _fail(args, EXIT_INTERRUPTED, ErrorCode.CANCELLED, "Interrupted.")
    except SettingsError as error:
        return _fail(
            args, EXIT_USAGE, ErrorCode.INVALID_SETTINGS, str(error), problems=error.problems
        )
    except ConfigError as error:
        return _fail(
            args, EXIT_USAGE, ErrorCode.INVALID_CONFIG, str(error), problems=error.to_json()
        )
    except SyncError as failure:  # classified by the adapter that met it
        return _fail(args, EXIT_FAILED, failure.code, failure.message, failure.fix)
    except Exception as error:  # a bug: say so plainly; the trace with -v, for a report
        logging.getLogger(__name__).info("unexpected error", exc_info=True)
        return _fail(
            args,
            EXIT_FAILED,
            ErrorCode.INTERNAL_ERROR,
            internal_error(error).message,
            "This is a bug: run the command again with -v and report the trace it prints.",
        )


# Loggers of the SDKs under us. Without -v they are silent: their warnings (MSAL's and
# azure-identity's blocks with trace ids and correlation ids, retry notices) repeat what our own
# message says, in words an admin cannot act on. With -v they show at INFO, as ours do.
_SDK_LOGGERS = ("azure", "msal", "httpx", "httpcore", "urllib3", "kiota_http", "msgraph")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for name in _SDK_LOGGERS:
        # The SDKs log every HTTP request at INFO: noise even with -v; their warnings stay at -v.
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.CRITICAL + 1)
    # The run's own log lines (a JSON summary for the Functions host, a failure's trace) repeat
    # the report the CLI prints on stdout; with -v they show.
    logging.getLogger("sync_core.run").setLevel(logging.INFO if verbose else logging.ERROR)


def _fail(
    args: argparse.Namespace,
    exit_code: int,
    code: ErrorCode,
    message: str,
    fix: str | None = None,
    problems: Any = None,
) -> int:
    """Errors in words on stderr; with --json also one document on stdout, as promised."""
    # Settings and configuration errors are already a list of problems in words.
    listed = code in (ErrorCode.INVALID_SETTINGS, ErrorCode.INVALID_CONFIG)
    # Messages may quote Graph's or Microsoft's texts: escaped on the terminal, exact in JSON.
    shown = terminal_safe(message)
    print(shown if listed else f"error [{code}]: {shown}", file=sys.stderr)
    if fix:
        print(f"what to do: {terminal_safe(fix)}", file=sys.stderr)
    if getattr(args, "json", False):
        error: dict[str, Any] = {"code": code, "message": message, "fix": fix}
        if problems is not None:
            error["problems"] = problems
        write_stdout(json.dumps({"error": error}, ensure_ascii=False))
    return exit_code


def _tenant_id(args: argparse.Namespace, settings: Settings) -> str:
    tenant = args.tenant or settings.tenant_id
    if not is_tenant_id(tenant):
        raise SettingsError([f"--tenant {tenant!r} {TENANT_ID_RULE}"])
    return tenant.lower()


def _validate(path: Path) -> int:
    _read_config_file(path)
    write_stdout(f"{path}: valid")
    return EXIT_OK


def _read_config_file(path: Path) -> TenantConfig:
    """The file read as HTTP reads a body: the same bytes limit and the same JSON reader."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError([("$", f"cannot read {path}: {reason}", str(path))]) from None
    return parse_config_bytes(raw)


async def _dispatch(args: argparse.Namespace, settings: Settings, tenant_id: str) -> int:
    if args.command == "connect":
        return await connect_command(args, settings)
    if args.command == "check":
        result = await check_connectivity(settings, tenant_id)
        emit(args, result.to_json(), render_check(result))
        return EXIT_OK if result.ok else EXIT_FAILED

    async with SyncService(settings) as service:
        if args.command == "config":
            if args.config_command == "set":
                config = _read_config_file(args.file)
                await service.configs.put(tenant_id, config)
                write_stdout(
                    f"stored the configuration of {tenant_id}; it applies from the next run"
                )
                return EXIT_OK
            config = await service.effective_config(tenant_id)
            write_stdout(json.dumps(config.to_json(), indent=2, ensure_ascii=False))
            return EXIT_OK

        if args.command == "sync":
            request = RunRequest(
                tenant_id,
                dry_run=args.dry_run,
                allow_deletes=args.allow_deletes,
                full=args.full,
                trigger=Trigger.CLI,
                run_id=new_run_id(utc_now()),  # known here, to close the run on Ctrl-C
            )
            try:
                # The same lease as the queue worker: never two runs of one tenant at once.
                report = await sync_exclusively(service, request)
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.run cancels this task; the run has stopped writing and released
                # its lease on the way out. Close its record rather than leave it `running`.
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                assert request.run_id is not None
                closed = await close_interrupted(service, tenant_id, request.run_id)
                raise Interrupted(request.run_id, closed) from None
            except TenantBusy as busy:
                raise busy_error(busy, utc_now()) from None
            except SyncError as failure:  # storage failed under the run: name it, show it
                return run_not_recorded(args, request.run_id or "", failure)
            emit(args, report.to_json(), render_text(report))
            if (
                report.status == RunStatus.FAILED
                and report.errors[0].code == ErrorCode.INVALID_CONFIG
            ):
                return EXIT_USAGE  # a configuration problem, like `config set` rejecting one
            return {RunStatus.FAILED: EXIT_FAILED, RunStatus.HELD: EXIT_HELD}.get(
                report.status, EXIT_OK
            )

        if args.command == "explain":
            return await explain_command(args, service, tenant_id)
        if args.command == "employees":
            return await show_employees(args, service, tenant_id)
        return await show_runs(args, service, tenant_id)
