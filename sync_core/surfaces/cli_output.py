"""The command line's output and its read-only commands (employees, runs, connect); the
parser and the commands that change things are in cli.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC
from typing import Any

from sync_core.adapters.tables.employee_rows import employee_view
from sync_core.app.closing import close_failed
from sync_core.app.onboarding import start_connect
from sync_core.app.service import SyncService
from sync_core.core.report import FINAL_STATUSES, RunProblem, RunReport, utc_now
from sync_core.errors import ErrorCode, SyncError
from sync_core.settings import Settings
from sync_core.surfaces.terminal import json_safe, terminal_safe

RUNS_HEADER = f"{'run id':<28}{'status':<10}{'mode':<6}{'trigger':<10}{'users read':>11}  changes"
RUNS_LEGEND = (
    "changes: +added ~updated -removed employees; a held run's removals wait for a run with "
    "--allow-deletes (`sync --allow-deletes`)"
)


def write_stdout(text: str) -> None:
    """One line (or block) on stdout. A reader that stops early (`employees | head`) is not a
    failure of the command: what is left goes to devnull and the command ends with its own
    outcome (Python's signal docs, "Note on SIGPIPE")."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush goes there too
        os.close(devnull)


async def show_employees(args: argparse.Namespace, service: SyncService, tenant_id: str) -> int:
    config = await service.effective_config(tenant_id)
    names = [field.name for field in config.fields]
    employees = [employee_view(entity, names) async for entity in service.employees.all(tenant_id)]
    employees.sort(key=lambda e: (e.get("Email") or "", e["id"]))
    document = {
        "tenantId": tenant_id,
        "fields": ["Email", *names, "Aliases"],
        "employees": employees,
    }
    emit(args, document, _render_employees(employees, names))
    return 0


async def show_runs(args: argparse.Namespace, service: SyncService, tenant_id: str) -> int:
    name = await service.registry.name(tenant_id)  # stored when the tenant was linked
    top = max(1, min(args.top, 500))
    reports, _ = await service.runs.page(tenant_id, top, None, idle=args.idle)
    lines = [
        f"{r.run_id}  {r.status:<9} {r.mode:<5} {r.trigger:<9} read {r.counts.read:>6}  "
        f"+{r.counts.created} ~{r.counts.updated} -{r.counts.deleted}"
        f"{f'  ({r.counts.deletesHeld} deletions held)' if r.counts.deletesHeld else ''}"
        f"{'  (dry run)' if r.dry_run else ''}{_idle_after(r)}"
        for r in reports
    ]
    lines = [RUNS_HEADER, *lines, RUNS_LEGEND] if lines else ["no runs yet"]
    if name:
        lines.insert(0, f"Runs of {name} ({tenant_id})")
    document = {"tenantId": tenant_id, "tenantName": name}
    emit(args, {**document, "runs": [r.to_json() for r in reports]}, "\n".join(lines))
    return 0


def _idle_after(report: RunReport) -> str:
    """The idle delta runs that followed a run: they leave no record of their own."""
    checks = report.idle_checks
    if checks is None:
        return ""
    last = checks.last.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"  then {checks.count} idle check(s), the last at {last} UTC"


async def connect_command(args: argparse.Namespace, settings: Settings) -> int:
    """The consent URL for an operator who links a tenant by hand (valid 15 minutes, once)."""
    async with SyncService(settings) as service:
        link = await start_connect(
            service,
            callback_url=args.callback,
            return_url=None,
            config=None,
            now=utc_now(),
            account=args.account,
            replace=args.replace_config,
        )
    document = {
        "requestId": link.request_id,
        "consentUrl": link.consent_url,
        "expiresAt": link.expires_at.isoformat().replace("+00:00", "Z"),
    }
    text = (
        "Open this link and sign in as a Global Administrator or Privileged Role "
        "Administrator of the tenant to link (valid until "
        f"{document['expiresAt']}, once):\n{link.consent_url}"
    )
    emit(args, document, text)
    return 0


async def close_interrupted(service: SyncService, tenant_id: str, run_id: str) -> bool:
    try:
        record = await service.runs.get(tenant_id, run_id)
        if record is None or record.status in FINAL_STATUSES:
            return record is not None
        problem = RunProblem(
            ErrorCode.CANCELLED,
            "The run was interrupted (Ctrl-C) before it finished. Rows written so far are "
            "correct; nothing was deleted unless the run had reached its clean-up.",
            "Sync again; the next run completes the work.",
        )
        return (await close_failed(service.runs, record, problem, utc_now())).was_open
    except SyncError:  # the record stays `running` until the timer or the next run closes it
        return False


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    if getattr(args, "json", False):
        write_stdout(json_safe(json.dumps(document, ensure_ascii=False)))
    else:
        # Graph's values (names, titles) are printed: a control in one must not act on the
        # terminal (surfaces/terminal.py).
        write_stdout(terminal_safe(text))


def _render_employees(employees: list[dict[str, Any]], names: list[str]) -> str:
    shown = ["Email", *names[:4]]
    widths = {
        n: min(36, max([len(n)] + [len(str(e.get(n) or "")) for e in employees])) for n in shown
    }
    lines = ["  ".join(n.ljust(widths[n]) for n in shown).rstrip()]
    for employee in employees:
        cells = (str(employee.get(n) or "")[: widths[n]].ljust(widths[n]) for n in shown)
        lines.append("  ".join(cells).rstrip())
    lines.append(f"{len(employees)} employees ({len(names)} fields each; --json shows them all)")
    return "\n".join(lines)
