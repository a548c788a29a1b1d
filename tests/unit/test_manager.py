"""Manager fields, the pure parts: sources, values, `manager@delta`, what a run changes in the
manager index, and the delta round's planning against list-backed fakes of its two ports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sync_core.core.config import EmailRules, TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.delta import DeltaChanges
from sync_core.core.manager import (
    UNCHANGED,
    IndexChanges,
    ManagerMapping,
    StoredIndexRows,
    delta_manager_id,
    full_run_changes,
    values_hash,
    with_values,
)
from sync_core.core.manager_pass import ManagerSync
from sync_core.core.mapping import MANAGER_VALUES, Mapper
from tests.unit.engine_fakes import IN_MEMORY

FIELDS = [
    {"name": "DisplayName", "source": "displayName"},
    {"name": "ManagerName", "source": "Manager.DisplayName"},
    {"name": "ManagerEmail", "source": "manager.EMAIL"},
    {"name": "ManagerPhone", "source": "manager.businessPhones[0]"},
]
BOSS = {
    "id": "m1",
    "displayName": "Bea Boss",
    "businessPhones": ["+1 555 0100", "+1 555 0101"],
    "mail": "other@contoso.com",
    "proxyAddresses": ["SMTP:Bea.Boss@Contoso.com"],
    "userPrincipalName": "bea@contoso.com",
}


def config(fields: list[dict[str, str]] = FIELDS) -> TenantConfig:
    return parse_config({"fields": fields})


def test_manager_sources_are_canonicalised():
    sources = [f.source for f in config().fields]
    assert sources[1:] == ["manager.displayName", "manager.email", "manager.businessPhones[0]"]


@pytest.mark.parametrize("source", ["manager.nope", "manager.", "manager.email.x"])
def test_a_bad_manager_source_names_the_field_and_the_problem(source):
    with pytest.raises(ConfigError) as raised:
        parse_config({"fields": [{"name": "ManagerX", "source": source}]})
    text = str(raised.value)
    assert "$.fields[0].source" in text and "manager." in text


def test_the_manager_values_follow_the_employee_rules():
    mapping = ManagerMapping.from_config(config())
    assert mapping.values(BOSS) == {
        "ManagerName": "Bea Boss",
        "ManagerEmail": "bea.boss@contoso.com",  # proxyAddresses first, lower-cased, as employees
        "ManagerPhone": "+1 555 0100",
    }
    assert mapping.values(None) == {} and mapping.values({"id": "m2"}) == {}
    no_proxy = ManagerMapping(mapping.fields, EmailRules(proxy_addresses=False))
    assert no_proxy.values(BOSS)["ManagerEmail"] == "other@contoso.com"


def test_what_is_read_of_a_manager():
    mapping = ManagerMapping.from_config(config())
    assert mapping.graph_properties == {
        "id", "displayName", "businessPhones", "mail", "proxyAddresses", "userPrincipalName",
        "otherMails",
    }  # fmt: skip
    assert not ManagerMapping.from_config(TenantConfig()).enabled
    assert ManagerMapping.from_config(TenantConfig()).graph_properties == frozenset()


def test_the_mapper_reads_manager_fields_from_the_values_and_hashes_them():
    mapper = Mapper.from_config(config())
    assert "manager" not in mapper.graph_properties
    user = {"id": "u1", "userPrincipalName": "u1@contoso.com", "mail": "u1@contoso.com",
            "displayName": "Una"}  # fmt: skip
    values = ManagerMapping.from_config(config()).values(BOSS)
    employee = mapper.employee(with_values(user, values))
    assert dict(employee.fields) == {"DisplayName": "Una", **values}
    assert [n for n, _ in employee.fields] == ["DisplayName", "ManagerName", "ManagerEmail",
                                              "ManagerPhone"]  # fmt: skip
    same = mapper.employee(with_values(user, dict(values)))
    renamed = mapper.employee(with_values(user, {**values, "ManagerName": "New"}))
    without = mapper.employee(user)
    assert same.source_hash == employee.source_hash
    assert len({employee.source_hash, renamed.source_hash, without.source_hash}) == 3
    assert MANAGER_VALUES not in employee.fields


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": "u1", "displayName": "x"}, UNCHANGED),
        ({"id": "u1", "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}]},
         "m1"),
        ({"id": "u1", "manager@delta": [{"id": "m1", "@removed": {"reason": "deleted"}}]}, None),
        ({"id": "u1", "manager@delta": [{"id": "m1", "@removed": {"reason": "deleted"}},
                                        {"id": "m2"}]}, "m2"),
        ({"id": "u1", "manager@delta": []}, None),
        ({"id": "u1", "manager@delta": None}, None),
    ],
)  # fmt: skip
def test_who_a_delta_item_names_as_manager(item, expected):
    assert delta_manager_id(item) == expected


def test_a_full_run_writes_only_what_differs_and_drops_what_it_did_not_see():
    values = {"ManagerName": "Bea"}
    stored = StoredIndexRows(
        reports={"u1": "m1", "u2": "m1", "u3": "m9"},
        manager_hashes={"m1": values_hash(values), "m9": values_hash({})},
    )
    changes = full_run_changes(stored, {"u1": "m1", "u2": "m2"}, {"m1": values, "m2": {}})
    assert changes.reports == {"u2": "m2", "u3": None}
    assert changes.edges_added == {("m2", "u2")}
    assert changes.edges_dropped == {("m1", "u2"), ("m9", "u3")}
    assert changes.managers == {"m2": {}, "m9": None}
    unchanged = full_run_changes(
        StoredIndexRows({"u1": "m1"}, {"m1": values_hash(values)}), {"u1": "m1"}, {"m1": values}
    )
    assert unchanged.empty


def test_a_full_run_puts_right_the_edges_that_differ_from_the_reports():
    values = {"ManagerName": "Bea"}
    stored = StoredIndexRows(
        reports={"u1": "m1", "u2": "m1"},
        manager_hashes={"m1": values_hash(values)},
        edges=frozenset({("m1", "u2"), ("m7", "u2")}),  # u1's lost, a stray one of u2 left
    )
    changes = full_run_changes(stored, {"u1": "m1", "u2": "m1"}, {"m1": values})
    assert (changes.reports, changes.managers) == ({}, {})
    assert changes.edges_added == {("m1", "u1")}
    assert changes.edges_dropped == {("m7", "u2")}


# --- the delta round's planning, against list-backed fakes ----------------------------------


@dataclass
class Index:
    reports: dict[str, str] = field(default_factory=dict)
    managers_: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[IndexChanges] = field(default_factory=list)
    point_reads: int = 0

    async def reports_of(self, tenant_id: str, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        self.point_reads += len(ids)
        return {i: self.reports[i] for i in ids if i in self.reports}

    async def managers(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Any]:
        ids = list(ids)
        self.point_reads += len(ids)
        return {i: (v, values_hash(v)) for i, v in self.managers_.items() if i in ids}

    async def report_ids(self, tenant_id: str, manager_id: str) -> list[str]:
        return [r for r, m in self.reports.items() if m == manager_id]

    async def load(self, tenant_id: str) -> StoredIndexRows:
        return StoredIndexRows(dict(self.reports), {m: values_hash(v) for m, v in
                                                    self.managers_.items()})  # fmt: skip

    async def apply(self, tenant_id: str, changes: IndexChanges) -> None:
        self.applied.append(changes)


@dataclass
class Reader:
    users: dict[str, dict[str, Any]]
    asked_ids: list[list[str]] = field(default_factory=list)
    asked_users: list[str] = field(default_factory=list)

    def users_with_manager(self, select, manager_select, odata_filter):  # pragma: no cover
        raise AssertionError("not in a delta run")

    async def users_by_id(self, ids: list[str], select: Iterable[str]) -> list[dict[str, Any]]:
        assert "manager" in select
        self.asked_ids.append(ids)
        return [self.users[i] for i in ids if i in self.users]

    async def user(self, user_id: str, select: Iterable[str]) -> dict[str, Any] | None:
        self.asked_users.append(user_id)
        return self.users.get(user_id)


def person(user_id: str, name: str, manager: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": user_id, "displayName": name}
    if manager is not None:
        item["manager@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": manager}]
    return item


def prepare(index: Index, reader: Reader, changes: DeltaChanges) -> DeltaChanges:
    sync = ManagerSync("t", config([{"name": "Boss", "source": "manager.displayName"}]), index,
                       IN_MEMORY)  # fmt: skip
    result = asyncio.run(sync.prepare_round(changes, reader, frozenset({"id", "displayName"})))
    asyncio.run(sync.commit())
    return result


def boss_of(changes: DeltaChanges, user_id: str) -> Any:
    return changes.users[user_id][MANAGER_VALUES].get("Boss")


def test_a_renamed_manager_brings_its_reports_into_the_round():
    index = Index({"u1": "m1", "u2": "m1", "u3": "m2"}, {"m1": {"Boss": "Bea"}, "m2": {}})
    reader = Reader({"u1": person("u1", "Una", "m1"), "u2": person("u2", "Ugo", "m1")})
    result = prepare(index, reader, DeltaChanges({"m1": person("m1", "Bea Renamed")}, ()))
    assert set(result.users) == {"m1", "u1", "u2"}
    assert boss_of(result, "u1") == boss_of(result, "u2") == "Bea Renamed"
    assert reader.asked_ids == [["u1", "u2"]]
    assert index.applied[0].managers == {"m1": {"Boss": "Bea Renamed"}}
    assert not index.applied[0].reports  # nobody changed manager


def test_an_unchanged_manager_reads_no_report_and_writes_nothing():
    index = Index({"u1": "m1"}, {"m1": {"Boss": "Bea"}})
    reader = Reader({})
    result = prepare(index, reader, DeltaChanges({"m1": {**person("m1", "Bea"), "x": 1}}, ()))
    assert set(result.users) == {"m1"} and reader.asked_ids == []
    assert index.applied == []


def test_a_user_keeps_its_stored_manager_when_the_item_does_not_name_one():
    index = Index({"u1": "m1"}, {"m1": {"Boss": "Bea"}})
    result = prepare(index, Reader({}), DeltaChanges({"u1": person("u1", "Una")}, ()))
    assert boss_of(result, "u1") == "Bea" and index.applied == []


def test_a_new_manager_out_of_the_round_is_read_once_and_indexed():
    index = Index({"u1": "m1"}, {"m1": {"Boss": "Bea"}})
    reader = Reader({"m7": {"id": "m7", "displayName": "Max"}})
    changes = DeltaChanges({"u1": person("u1", "Una", "m7"), "u2": person("u2", "Ugo", "m7")}, ())
    result = prepare(index, reader, changes)
    assert boss_of(result, "u1") == boss_of(result, "u2") == "Max"
    assert reader.asked_users == ["m7"]
    applied = index.applied[0]
    assert applied.reports == {"u1": "m7", "u2": "m7"}
    assert applied.edges_added == {("m7", "u1"), ("m7", "u2")}
    assert applied.edges_dropped == {("m1", "u1")}
    assert applied.managers == {"m7": {"Boss": "Max"}}


def test_a_deleted_manager_empties_its_reports_and_a_deleted_report_leaves_the_index():
    index = Index({"u1": "m1", "u2": "m1"}, {"m1": {"Boss": "Bea"}})
    reader = Reader({"u1": person("u1", "Una", None)})  # Graph no longer names the manager
    result = prepare(index, reader, DeltaChanges({}, ("m1", "u2")))
    assert set(result.users) == {"u1"} and boss_of(result, "u1") is None
    applied = index.applied[0]
    assert applied.managers == {"m1": {}}  # kept, so a restore reaches the reports again
    assert applied.reports == {"u1": None, "u2": None}
    assert applied.edges_dropped == {("m1", "u1"), ("m1", "u2")}


def test_without_manager_fields_the_round_is_untouched_and_nothing_is_read():
    index = Index()
    sync = ManagerSync("t", TenantConfig(), index, IN_MEMORY)
    changes = DeltaChanges({"u1": person("u1", "Una")}, ())
    assert asyncio.run(sync.prepare_round(changes, Reader({}), frozenset())) is changes
    asyncio.run(sync.commit())
    assert index.point_reads == 0 and index.applied == []


# --- the engine: the index is written after the employees, never by a failed run -------------


def engine_run(fail_on_flush: int | None) -> tuple[Any, Index]:
    from sync_core.core.delta import SyncState, config_hash
    from sync_core.core.engine import RunRequest, run_sync
    from sync_core.core.ports import Ports, StoredIndex
    from tests.unit.engine_fakes import (
        NOW,
        OLD_LINK,
        TENANT,
        Configs,
        DeltaDirectory,
        Holders,
        Runs,
        States,
        Store,
        Writer,
        user,
    )

    @dataclass
    class ManagerDirectory(DeltaDirectory):
        async def users_by_id(self, ids, select):
            return []

        async def user(self, user_id, select):
            return {"id": user_id, "displayName": "Max"}

    tenant_config = config([{"name": "Boss", "source": "manager.displayName"}])
    directory = ManagerDirectory(pages=[], rounds=[[{**user(1), **person("u1", "Una", "m7")}]])
    index = Index()
    store = Store(StoredIndex({}, {}), Writer(set(), fail_on_flush=fail_on_flush))

    async def open_directory(tenant_id: str) -> ManagerDirectory:
        return directory

    states = States(SyncState(OLD_LINK, config_hash(tenant_config), NOW, NOW))
    ports = Ports(open_directory, store, Runs(), Configs(tenant_config), sync_state=states,
                  addresses=Holders(), managers=index, lease=IN_MEMORY)  # fmt: skip
    report = asyncio.run(run_sync(RunRequest(TENANT), ports, now=lambda: NOW))
    return report, index


def test_the_index_is_written_after_the_employees_and_not_by_a_failed_run():
    report, index = engine_run(fail_on_flush=None)
    assert (report.mode, report.counts.created) == ("delta", 1)
    assert index.applied and index.applied[0].reports == {"u1": "m7"}
    failed, untouched = engine_run(fail_on_flush=1)
    assert failed.status == "failed" and untouched.applied == []


def test_a_user_twice_in_a_round_keeps_the_manager_change_its_first_item_carried():
    from sync_core.core.delta import fold_round

    # PLATFORM-NOTES: the same user can come twice in a round. Properties: the last item wins
    # (it carries every selected property); `manager@delta` comes only with the relationship's
    # change, so a later item for another change must not drop it.
    moved = {**person("u1", "Una", "m7"), "jobTitle": "Old"}
    later = {"id": "u1", "displayName": "Una", "jobTitle": "New"}
    folded = fold_round([moved, later])
    assert folded.users["u1"]["jobTitle"] == "New"
    index = Index({"u1": "m1"}, {"m1": {"Boss": "Bea"}})
    reader = Reader({"m7": {"id": "m7", "displayName": "Max"}})
    assert boss_of(prepare(index, reader, folded), "u1") == "Max"
    assert index.applied[0].reports == {"u1": "m7"}
    # A user removed and back in the same round starts afresh.
    back = fold_round([moved, {"id": "u1", "@removed": {"reason": "changed"}}, later])
    assert "manager@delta" not in back.users["u1"]
