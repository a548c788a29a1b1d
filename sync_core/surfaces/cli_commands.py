"""What each command of the command line does, but `sync` (cli_sync.py) and `explain`
(explain_output.py): configuration files and the stored configuration, Check Connectivity,
the stored employees and runs, and the consent link."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from pathlib import Path
from typing import Any

from sync_core.adapters.tables.employee_rows import employee_view
from sync_core.app.check import check_connectivity, render_check
from sync_core.app.onboarding import start_connect
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config_bytes
from sync_core.core.json_document import MAX_DOCUMENT_BYTES
from sync_core.core.report import RunReport, utc_now
from sync_core.settings import Settings
from sync_core.surfaces.cli_output import EXIT_FAILED, EXIT_OK, emit, write_stdout
from sync_core.surfaces.cli_sync import sync_command
from sync_core.surfaces.explain_output import explain_command

RUNS_HEADER = f"{'run id':<28}{'status':<10}{'mode':<6}{'trigger':<10}{'users read':>11}  changes"
RUNS_LEGEND = (
    "changes: +added ~updated -removed employees; a held run's removals wait for a run with "
    "--allow-deletes (`sync --allow-deletes`)"
)


async def run_command(args: argparse.Namespace, settings: Settings, tenant_id: str) -> int:
    """The command's exit code. connect and check open what they need themselves (check reads
    Graph, not the tables); the others share one service."""
    if args.command == "connect":
        return await connect_command(args, settings, tenant_id if args.tenant is not None else None)
    if args.command == "check":
        result = await check_connectivity(settings, tenant_id)
        emit(args, result.to_json(), render_check(result))
        return EXIT_OK if result.ok else EXIT_FAILED
    async with SyncService(settings) as service:
        if args.command == "config":
            return await config_command(args, service, tenant_id)
        if args.command == "sync":
            return await sync_command(args, service, tenant_id)
        if args.command == "explain":
            return await explain_command(args, service, tenant_id)
        if args.command == "employees":
            return await show_employees(args, service, tenant_id)
        return await show_runs(args, service, tenant_id)


def validate_file(path: Path) -> int:
    """`config validate`: needs no settings, so it runs before they are read."""
    read_config_file(path)
    write_stdout(f"{path}: valid")
    return EXIT_OK


def read_config_file(path: Path) -> TenantConfig:
    """The file read as HTTP reads a body: the same bytes limit and the same JSON reader."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError([("$", f"cannot read {path}: {reason}", str(path))]) from None
    return parse_config_bytes(raw)


async def config_command(args: argparse.Namespace, service: SyncService, tenant_id: str) -> int:
    if args.config_command == "set":
        config = read_config_file(args.file)
        await service.configs.put(tenant_id, config)
        write_stdout(f"stored the configuration of {tenant_id}; it applies from the next run")
        return EXIT_OK
    config = await service.effective_config(tenant_id)
    write_stdout(json.dumps(config.to_json(), indent=2, ensure_ascii=False))
    return EXIT_OK


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
    return EXIT_OK


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
    return EXIT_OK


def _idle_after(report: RunReport) -> str:
    """The idle delta runs that followed a run: they leave no record of their own."""
    checks = report.idle_checks
    if checks is None:
        return ""
    last = checks.last.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"  then {checks.count} idle check(s), the last at {last} UTC"


async def connect_command(
    args: argparse.Namespace, settings: Settings, expected_tenant: str | None
) -> int:
    """The consent URL for an operator who links a tenant by hand (valid 15 minutes, once),
    for the organization `--tenant` names, when given."""
    async with SyncService(settings) as service:
        link = await start_connect(
            service,
            callback_url=args.callback,
            return_url=None,
            config=None,
            now=utc_now(),
            account=args.account,
            replace=args.replace_config,
            expected_tenant=expected_tenant,
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
    return EXIT_OK


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
