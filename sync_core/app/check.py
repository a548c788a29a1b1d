"""Check Connectivity: proves every link a sync needs and explains each failure in plain words.

Each link is tried even when an earlier one failed, so an admin sees every problem at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync_core.app.check_photos import check_photos
from sync_core.app.service import SyncService, open_directory
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError
from sync_core.core.groups import Memberships
from sync_core.core.mapping import Mapper
from sync_core.core.pages import RunTotals, scope_and_map
from sync_core.core.ports import StoredIndex, UserDirectory
from sync_core.core.run_notes import TENANT_NAME_UNREADABLE
from sync_core.core.scope import Scope
from sync_core.errors import ErrorCode, SyncError
from sync_core.settings import Settings

if TYPE_CHECKING:
    from sync_core.adapters.credentials import AppCredential
    from sync_core.adapters.graph import GraphDirectory


@dataclass(frozen=True)
class Problem:
    code: ErrorCode
    message: str
    fix: str | None


@dataclass(frozen=True)
class CheckResult:
    tenant_id: str
    tenant_name: str | None
    users_in_scope: int | None
    users_read: int | None
    users_importable: int | None
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...] = ()
    passed: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tenantId": self.tenant_id,
            "tenantName": self.tenant_name,
            "usersInScope": self.users_in_scope,
            "usersRead": self.users_read,
            "usersImportable": self.users_importable,
            "problems": [
                {"code": p.code, "message": p.message, "fix": p.fix} for p in self.problems
            ],
            "warnings": list(self.warnings),
            "passed": list(self.passed),
        }


async def check_connectivity(
    settings: Settings, tenant_id: str, *, count_budget_seconds: float | None = None
) -> CheckResult:
    """Every link, then a read of the whole directory to count who would be imported; with a
    budget (the HTTP route has one), counting stops when it runs out and the counts are null."""
    found = _Findings()
    config = await _check_storage(settings, tenant_id, found)
    app = await _check_credential(settings, found)
    if app is None:
        return found.result(tenant_id, None, None)
    directory = open_directory(settings, tenant_id, app)
    found.warnings += directory.stats.credential_warnings  # 30 days before Key Vault's `exp`
    tenant_name: str | None = None
    counts: _Counts | None = None
    try:
        tenant_name = await _check_organization(directory, found)
        await directory.count_probe()  # one small listing: the permission, proven fast
        found.passed.append("the app may list users (User.Read.All)")
        from sync_core.app.check_groups import check_groups

        memberships, group_problems, group_passed = await check_groups(directory, config)
        for failure in group_problems:
            found.failed(failure)
        found.passed += group_passed
        await check_photos(settings, directory, config, found)
        try:
            # Without its groups the scope cannot be decided: no counts then.
            if not group_problems:
                counts = await asyncio.wait_for(
                    _count_in_scope(directory, config, memberships), count_budget_seconds
                )
        except TimeoutError:
            found.warnings.append(
                f"Counting the users in scope took longer than {count_budget_seconds:g} s and "
                "was stopped; run `python -m sync_core check` for the counts."
            )
    except SyncError as failure:  # the directory raises its failures classified
        found.failed(failure)
    finally:
        await directory.close()
    return found.result(tenant_id, tenant_name, counts)


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def failed(self, failure: SyncError) -> None:
        self.problems.append(Problem(failure.code, failure.message, failure.fix))

    def result(
        self, tenant_id: str, tenant_name: str | None, counts: _Counts | None
    ) -> CheckResult:
        return CheckResult(
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            users_in_scope=counts.in_scope if counts else None,
            users_read=counts.read if counts else None,
            users_importable=counts.importable if counts else None,
            problems=tuple(self.problems),
            warnings=tuple(self.warnings),
            passed=tuple(self.passed),
        )


async def _check_storage(settings: Settings, tenant_id: str, found: _Findings) -> TenantConfig:
    try:
        async with SyncService(settings) as service:
            found.passed.append("Table Storage is reachable")
            config = await service.effective_config(tenant_id)
            found.passed.append("the tenant configuration is valid")
            return config
    except SyncError as failure:
        found.failed(failure)
    except ConfigError as error:
        found.problems.append(
            Problem(
                ErrorCode.INVALID_CONFIG,
                f"The stored configuration is invalid: {error}",
                "Fix it and store it again with `config set`; the check used the defaults.",
            )
        )
    return TenantConfig()


async def _check_credential(settings: Settings, found: _Findings) -> AppCredential | None:
    from sync_core.adapters.credentials import load_app_credential  # azure-identity: lazily

    try:
        app = await load_app_credential(settings)
    except SyncError as failure:
        found.failed(failure)
        return None
    if app.kind != "federated":
        found.passed.append(f"{app.described} is readable")
    return app


async def _check_organization(directory: GraphDirectory, found: _Findings) -> str | None:
    organization = await directory.organization()
    if organization is None:
        found.warnings.append(TENANT_NAME_UNREADABLE)
        return None
    found.passed.append("Entra ID issued a token and Graph answered")
    return organization.display_name


@dataclass(frozen=True)
class _Counts:
    read: int
    in_scope: int
    importable: int


async def _count_in_scope(
    directory: UserDirectory, config: TenantConfig, memberships: Memberships | None = None
) -> _Counts:
    """Read the directory exactly as a sync would (the engine's own scope-and-map step, so a
    user repeated across pages counts once; nothing is written) and count who is in scope and
    who has an address to import."""
    scope = Scope.from_config(config.filter)
    mapper = Mapper.from_config(config)
    tally = RunTotals()
    nothing_stored = StoredIndex({}, {})  # every in-scope user without an address is skipped
    async for page in directory.users(
        scope.graph_properties | mapper.graph_properties, config.filter.odata
    ):
        if memberships is not None:  # scope by group: the memberships travel with each user
            page = [memberships.annotate(user) for user in page]
        await scope_and_map(page, scope, mapper, nothing_stored, tally)
    counts = tally.counts
    return _Counts(counts.read, counts.inScope, counts.inScope - counts.skippedNoEmail)


def render_check(result: CheckResult) -> str:
    name = f"{result.tenant_name} ({result.tenant_id})" if result.tenant_name else result.tenant_id
    lines = [f"Check Connectivity for {name}: {'OK' if result.ok else 'PROBLEMS FOUND'}"]
    lines += [f"  ok   {step}" for step in result.passed]
    if result.users_in_scope is not None:
        lines.append(
            f"  ok   {result.users_read} users read, {result.users_in_scope} in scope, "
            f"{result.users_importable} with an email address (would be imported)"
        )
    for problem in result.problems:
        lines.append(f"  FAIL [{problem.code}] {problem.message}")
        if problem.fix:
            lines.append(f"       What to do: {problem.fix}")
    lines += [f"  note {warning}" for warning in result.warnings]
    return "\n".join(lines)
