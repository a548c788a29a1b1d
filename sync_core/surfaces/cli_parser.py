"""The command line's grammar: every command, its options and how a malformed one is refused
(exit 2 with argparse's usage line); what the commands do is in cli_commands.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from sync_core.surfaces.cli_output import EXIT_USAGE

AddCommand = Callable[[str, str], argparse.ArgumentParser]


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

    # The order of `--help`'s list.
    _add_config(command)
    _add_tenant_command(command, "check", "Check Connectivity")
    _add_sync(command)
    _add_tenant_command(command, "employees", "list the stored employees")
    _add_connect(command)
    _add_explain(command)
    _add_runs(command)
    return parser


def _add_config(command: AddCommand) -> None:
    config = command("config", "validate, store or show a tenant configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="check a configuration file")
    validate.add_argument("--file", required=True, type=Path)
    store = config_commands.add_parser("set", help="validate, then store (next run uses it)")
    store.add_argument("--file", required=True, type=Path)
    _tenant(store)
    show = config_commands.add_parser("show", help="the effective configuration as JSON")
    _tenant(show)


def _add_tenant_command(command: AddCommand, name: str, help: str) -> None:
    """A command that takes only the tenant and --json."""
    parser = command(name, help)
    _tenant(parser)
    _json(parser)


def _add_sync(command: AddCommand) -> None:
    sync = command("sync", "sync the tenant's users into the Employees table")
    _tenant(sync)
    sync.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    sync.add_argument(
        "--allow-deletes", action="store_true", help="let this run pass the deletion guard"
    )
    sync.add_argument("--full", action="store_true", help="a full run even if delta could do")
    _json(sync)


def _add_connect(command: AddCommand) -> None:
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
    connect.add_argument(
        "--tenant",
        help="the tenant id the link is for: whoever signs in from another organization links "
        "nothing (default: any organization)",
    )
    _json(connect)


def _add_explain(command: AddCommand) -> None:
    explain = command("explain", "why one user is or is not an employee (--apply: sync it now)")
    explain.add_argument("--user", required=True, help="object id, UPN or email address")
    explain.add_argument("--apply", action="store_true", help="write (or remove) its row now")
    _tenant(explain)
    _json(explain)


def _add_runs(command: AddCommand) -> None:
    runs = command("runs", "recent run reports, newest first")
    _tenant(runs)
    runs.add_argument("--top", type=int, default=20, help="how many runs (default 20)")
    runs.add_argument("--idle", action="store_true", help="also delta runs that changed nothing")
    _json(runs)


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
