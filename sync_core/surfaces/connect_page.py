"""The small self-contained HTML page the consent callback answers (no script, no external
resource). Every value is escaped: the tenant name and Microsoft's error text come from outside."""

from __future__ import annotations

from html import escape

from sync_core.app.onboarding import ConnectOutcome

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
    ".ok{color:#0a6b0a}.fail{color:#a4262c}li{margin:.4em 0}"
)


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def refused_page(reason: str) -> str:
    return page("Tenant not linked", f'<p id="reason" class="fail">{escape(reason)}</p>')


def outcome_page(outcome: ConnectOutcome) -> str:
    if not outcome.linked:
        return refused_page(outcome.reason or "Nothing was linked.")
    check = outcome.check
    name = outcome.tenant_name or "(name not readable)"
    again = " It was linked before; it stays linked." if outcome.already_linked else ""
    parts = [
        # <bdi>: a bidi override in the organization's name cannot reorder the rest of the page.
        f'<p>Linked <strong id="tenant-name"><bdi>{escape(name)}</bdi></strong> '
        f'(<code id="tenant-id">{escape(outcome.tenant_id or "")}</code>).{escape(again)}</p>'
    ]
    if check is not None:
        verdict = "Connectivity: OK" if check.ok else "Connectivity: problems found"
        parts.append(
            f'<p id="connectivity" class="{"ok" if check.ok else "fail"}">{escape(verdict)}</p>'
        )
        scope = "unknown" if check.users_in_scope is None else str(check.users_in_scope)
        parts.append(f'<p>Users in scope: <span id="users-in-scope">{escape(scope)}</span></p>')
        items = "".join(
            f"<li><strong>{escape(p.message)}</strong> {escape(p.fix or '')}</li>"
            for p in check.problems
        )
        items += "".join(f"<li>{escape(warning)}</li>" for warning in check.warnings)
        if items:
            parts.append(f'<ul id="problems">{items}</ul>')
    return page("Tenant linked", "".join(parts))
