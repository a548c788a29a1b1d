"""The command line: `python -m sync_core <command>`.

Exit codes: 0 success; 1 the run failed; 2 bad usage, settings or configuration; 3 the run
finished but deletions were held by the guard; 130 interrupted (Ctrl-C): a sync closes its own
run record as failed with code `cancelled` first. With --json, stdout carries exactly one JSON
document and everything else goes to stderr.

This module reads the settings and turns every failure into its exit code and error output;
the grammar is cli_parser.py, the commands cli_commands.py, what they write cli_output.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from sync_core.core.config_parse import ConfigError
from sync_core.errors import ErrorCode, SyncError, internal_error
from sync_core.settings import TENANT_ID_RULE, Settings, SettingsError, is_tenant_id, load_settings
from sync_core.surfaces.cli_commands import run_command, validate_file
from sync_core.surfaces.cli_output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    write_error,
)
from sync_core.surfaces.cli_parser import build_parser
from sync_core.surfaces.cli_sync import Interrupted

_NEEDS_GRAPH = ("check", "sync", "connect", "explain")


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    env = dict(os.environ if environ is None else environ)
    try:
        if args.command == "config" and args.config_command == "validate":
            return validate_file(args.file)
        settings = load_settings(env, needs_graph=args.command in _NEEDS_GRAPH)
        tenant_id = _tenant_id(args, settings)
        return asyncio.run(run_command(args, settings, tenant_id))
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
    # Settings and configuration errors are already a list of problems in words; their values
    # (a stored configuration's) are quoted back, escaped like every other output.
    listed = code in (ErrorCode.INVALID_SETTINGS, ErrorCode.INVALID_CONFIG)
    details = {"problems": problems} if problems is not None else None
    write_error(args, code, message, fix, listed=listed, details=details)
    return exit_code


def _tenant_id(args: argparse.Namespace, settings: Settings) -> str:
    # Only an absent --tenant means the default: an empty one (an unset shell variable) is
    # refused, or `connect --tenant "$T"` would print a link for any organization.
    tenant = settings.tenant_id if args.tenant is None else args.tenant
    if not is_tenant_id(tenant):
        raise SettingsError([f"--tenant {tenant!r} {TENANT_ID_RULE}"])
    return tenant.lower()
