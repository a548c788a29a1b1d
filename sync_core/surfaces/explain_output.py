"""`explain` for people: the answers to the seed's three troubleshooting questions for one
user ("No users imported?", "Missing email addresses?", "Sync not updating?"), step by step.
The CLI prints this; --json and the HTTP API answer Explanation.to_json()."""

from __future__ import annotations

import argparse
from typing import Any

from sync_core.app.exclusive import TenantBusy
from sync_core.app.explain import explain_user
from sync_core.app.explain_judge import Explanation
from sync_core.app.service import SyncService
from sync_core.app.user_lookup import AmbiguousUser
from sync_core.core.report import RunStatus
from sync_core.errors import ErrorCode, FatalError
from sync_core.surfaces.cli_output import emit, write_error
from sync_core.surfaces.terminal import terminal_safe

_OUTCOMES = {
    "created": "a run adds the row",
    "updated": "a run rewrites the row",
    "unchanged": (
        "the stored row is current: a run writes nothing (a property that is no configured "
        "field changes nothing; `config show` lists the fields and their sources)"
    ),
    "skippedNoEmail": "a run skips the user: no usable email address and no row stored",
    "skippedUnstorable": "a run skips the user: Table Storage cannot hold the row",
    "excluded": "a run leaves the user out (see above)",
    "deleted": "a run removes the stored row (Clean Up)",
    "held": "a run would remove the stored row, but the deletion guard holds it",
}

_APPLIED = {
    "created": "the row was added",
    "updated": "the row was rewritten",
    "unchanged": "nothing needed writing",
    "deleted": "the row was removed",
    "held": "the removal was held by the deletion guard; nothing was removed",
    "skippedNoEmail": "nothing was written (no usable address)",
    "skippedUnstorable": "nothing was written (Table Storage cannot hold the row)",
    "excluded": "nothing was written (out of scope)",
    "failed": "the run failed; nothing more was written",
}


def render_explanation(explanation: Explanation) -> str:
    user = explanation.user
    name = user.get("displayName") or user.get("userPrincipalName")
    lines = [
        f"Explain {name} <{user.get('userPrincipalName')}> (object id {user['id']}) "
        f"in tenant {explanation.tenant_id}",
        "",
        "1. No users imported? Is this user in scope?",
    ]
    for step in explanation.scope.steps:
        mark = " <- decided" if step.decided else ""
        lines.append(f"   - {step.name}: {step.outcome}: {step.detail}{mark}")
    lines += [f"   => {explanation.scope.summary}", "", "2. Missing email addresses?"]
    for source in explanation.addresses.sources:
        lines.append(f"   - {source.source}: {source.detail}")
    lines.append(f"   => {_address_answer(explanation)}")
    lines += ["", "3. Sync not updating? The row a run stores next to the row stored now:"]
    lines += _row_lines(explanation)
    lines += [f"   => {_outcome_text(explanation)}."]
    lines += ["", f"Clean Up: {explanation.clean_up.detail}"]
    applied = explanation.applied
    if applied is None:
        lines += ["", "Nothing was written (add --apply to write this one row now)."]
    else:
        what = _APPLIED.get(applied.outcome, applied.outcome)
        lines += ["", f"Applied as run {applied.run_id} ({applied.status}): {what}."]
    return "\n".join(terminal_safe(line) for line in lines)


def _outcome_text(explanation: Explanation) -> str:
    if explanation.outcome == "unchanged" and explanation.changes:
        # Equal hashes, different columns: the row was changed in the table itself.
        return (
            "a run writes nothing, yet the stored row differs: its SourceHash matches what Entra "
            "ID holds, and a run rewrites a row only when that changes (was the table edited "
            "outside the app?); delete the row and the next run stores it afresh"
        )
    return _OUTCOMES.get(explanation.outcome, explanation.outcome)


def _address_answer(explanation: Explanation) -> str:
    addresses = explanation.addresses
    if addresses.email is None:
        return (
            "No usable address: a run skips this user (or, if a row is stored, keeps it marked "
            "EmailMissingSince). Give the user a mailbox, or allow more sources under `email`."
        )
    aliases = f"; aliases {', '.join(addresses.aliases)}" if addresses.aliases else ""
    return f"Email {addresses.email} (from {addresses.source}){aliases}."


def _row_lines(explanation: Explanation) -> list[str]:
    new, stored = explanation.new_row, explanation.stored_row
    if new is None and stored is None:
        return ["   nothing is stored and nothing would be"]
    if stored is None:
        head = ["   nothing is stored yet; a run would store:"]
        return head + [f"     {k}: {_value(v)}" for k, v in (new or {}).items() if k != "RowKey"]
    if explanation.applied is not None:
        if not explanation.changes:
            return ["   no column needed changing"]
        lines = ["   column by column (before -> after this apply):"]
    else:
        synced = f" (written {stored.get('SyncedAt')} by run {stored.get('RunId')})"
        if not explanation.changes:
            return [f"   stored{synced}: no column differs"]
        lines = [f"   stored{synced}; column by column (stored -> new):"]
    for change in explanation.changes:
        lines.append(f"     {change.column}: {_value(change.stored)} -> {_value(change.new)}")
    return lines


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def busy_error(busy: TenantBusy) -> FatalError:
    return FatalError(
        ErrorCode.TENANT_BUSY,
        f"Another run of this tenant ({busy.holder}) is in progress; nothing was written.",
        "Wait for it to finish (`runs` shows it), then explain with --apply again.",
    )


async def explain_command(args: argparse.Namespace, service: SyncService, tenant_id: str) -> int:
    """`explain --user ...`: 0 explained (and applied), 1 failed, 3 a removal held."""
    try:
        explanation = await explain_user(service, tenant_id, args.user, apply=args.apply)
    except TenantBusy as busy:
        raise busy_error(busy) from None
    except AmbiguousUser as several:
        # As any error, with the matches listed for a script to choose from.
        details = {"matches": several.matches}
        write_error(args, several.code, several.message, several.fix, details=details)
        return 1
    emit(args, explanation.to_json(), render_explanation(explanation))
    applied = explanation.applied
    if applied is None or applied.status == RunStatus.SUCCEEDED:
        return 0
    return 3 if applied.status == RunStatus.HELD else 1
