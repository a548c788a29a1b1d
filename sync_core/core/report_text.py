"""A run report as an admin reads it at a terminal (`sync` in the CLI). The JSON form
(RunReport.to_json) is what the HTTP routes answer and the run records keep; this text is for
people only, so it shows the first entries of each list and says where the rest are."""

from __future__ import annotations

from sync_core.core.report import Counts, RunReport, RunStatus

_REASONS = {
    "disabled": "disabled accounts",
    "guest": "guests",
    "unlicensed": "unlicensed",
    "notIncluded": "not matched by include",
    "notInGroups": "not in the scope groups",
}


def render_text(report: RunReport) -> str:
    """The report as an admin reads it at a terminal."""
    lines = [*_heading(report), "", *_user_counts(report), *_other_counts(report.counts)]
    lines += _listed(
        "Skipped for lack of an email address (fix in Entra ID or allow more sources):",
        report.skipped_no_email,
    )
    lines += _listed(
        "Kept without a current address (row marked EmailMissingSince; Clean Up removes it "
        "after the grace period):",
        report.no_address,
    )
    lines += _listed(
        "Skipped because Table Storage cannot hold them (retried every run):",
        report.skipped_unstorable,
    )
    return "\n".join(lines + _closing(report))


def _heading(report: RunReport) -> list[str]:
    name = f"{report.tenant_name} ({report.tenant_id})" if report.tenant_name else report.tenant_id
    verdict = {
        RunStatus.SUCCEEDED: "succeeded",
        RunStatus.HELD: "finished, but deletions were HELD by the guard",
        RunStatus.FAILED: "FAILED",
    }.get(report.status, report.status)
    why = f" ({report.full_reason})" if report.full_reason else ""
    return [
        f"Sync of {name}{' (dry run: nothing written)' if report.dry_run else ''}: {verdict}",
        f"  run {report.run_id}, {report.mode}{why}, "
        f"{report.duration_seconds or 0:.1f} s, "
        f"{report.graph_requests} Graph requests ({report.graph_throttled} throttled)",
    ]


def _user_counts(report: RunReport) -> list[str]:
    """Where the users read went: left out (by reason), or in scope and what became of them."""
    c = report.counts
    lines = [
        f"  Users read from Entra ID   {c.read:>7}",
        f"    left out by filters      {c.excluded:>7}",
    ]
    names = {g["id"]: g.get("displayName") or g["id"] for g in report.groups}
    for reason, count in sorted(report.excluded_by.items(), key=lambda item: -item[1]):
        lines.append(f"      {_reason_text(reason, names):<22} {count:>7}")
    lines += [
        f"    in scope                 {c.inScope:>7}",
        f"      skipped, no email      {c.skippedNoEmail:>7}",
        f"      kept, address gone     {c.noAddress:>7}",
        f"      skipped, cannot store  {c.skippedUnstorable:>7}",
        f"      added                  {c.created:>7}",
        f"      updated                {c.updated:>7}",
        f"      unchanged              {c.unchanged:>7}",
    ]
    return lines


def _other_counts(c: Counts) -> list[str]:
    """Removals, and the counts shown only when there is something to count."""
    lines = [f"  Employees removed          {c.deleted:>7}"]
    if c.deletesHeld:
        lines.append(f"  Removals held by the guard {c.deletesHeld:>7}")
    if c.staleKept:
        lines.append(f"  No longer in scope, kept   {c.staleKept:>7}  (clean-up is off)")
    if c.photosChecked or c.photosRemoved:
        lines.append(
            f"  Photos checked             {c.photosChecked:>7}  (downloaded {c.photosDownloaded}, "
            f"missing {c.photosMissing}, failed {c.photosFailed}, removed {c.photosRemoved})"
        )
    return lines


def _closing(report: RunReport) -> list[str]:
    """The groups the configuration names, then the warnings and errors with what to do."""
    lines: list[str] = []
    if report.groups:
        lines += ["", "  Groups (transitive members):"]
        lines += [
            f"    - {g.get('displayName') or g['id']} ({g['id']}): {g.get('members', 0)}"
            for g in report.groups
        ]
    for warning in report.warnings:
        lines += ["", f"  Warning: {warning}"]
    for error in report.errors:
        lines += ["", f"  Error [{error.code}]: {error.message}"]
        if error.fix:
            lines.append(f"    What to do: {error.fix}")
    return lines


def _reason_text(reason: str, group_names: dict[str, str]) -> str:
    if reason.startswith("excludeGroup[") and reason.endswith("]"):
        group = reason[len("excludeGroup[") : -1]
        return f"in group {group_names.get(group, group)}"
    return _REASONS.get(reason, reason)


def _listed(title: str, entries: tuple[str, ...]) -> list[str]:
    """A titled list of the first ten entries; the JSON report has the rest."""
    if not entries:
        return []
    lines = ["", f"  {title}", *(f"    - {entry}" for entry in entries[:10])]
    if len(entries) > 10:
        lines.append(f"    ... and {len(entries) - 10} more (see the JSON report)")
    return lines
