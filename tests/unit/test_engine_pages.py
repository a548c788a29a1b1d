"""Scoping and mapping a page hands the event loop back, so the lease keeper (a task on the same
loop) renews on time however large the page and however heavy the rules."""

from __future__ import annotations

import asyncio

from sync_core.core.config_parse import parse_config
from sync_core.core.mapping import Mapper
from sync_core.core.pages import USERS_BETWEEN_YIELDS, RunTotals, scope_and_map
from sync_core.core.ports import StoredIndex
from sync_core.core.scope import Scope

HEAVY = {
    "filter": {
        "exclude": [
            [{"attribute": "jobTitle", "operator": "regexMatch", "value": "(a+)+$"}],
            [{"attribute": "department", "operator": "notRegexMatch", "value": "(x|y|z)*q"}],
        ]
    }
}


def test_a_large_page_lets_other_tasks_run_while_it_is_scoped_and_mapped():
    config = parse_config(HEAVY)
    users = [
        {
            "id": f"u{i}",
            "userPrincipalName": f"u{i}@contoso.com",
            "mail": f"u{i}@contoso.com",
            "jobTitle": "a" * 2000 + "!",
            "department": "q",
        }
        for i in range(999)
    ]

    async def scenario() -> tuple[int, int]:
        turns = 0

        async def lease_keeper_stand_in() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(lease_keeper_stand_in())
        await asyncio.sleep(0)
        before = turns
        employees = await scope_and_map(
            users, Scope.from_config(config.filter), Mapper.from_config(config), StoredIndex({}, {}),
            RunTotals(),
        )  # fmt: skip
        during = turns - before
        other.cancel()
        return len(employees), during

    mapped, turns_during = asyncio.run(scenario())
    assert mapped == 999
    # Without the yields the other task would not run at all until the page was done.
    assert turns_during >= 999 // USERS_BETWEEN_YIELDS - 1
