"""The alert rules (infra/modules/alerts.bicep, queries in infra/modules/alerts/*.kql) read only
what the app really logs. Each query names a line by its message (`startswith "sync finished "`)
and its event (`tostring(run.event) == "sync_finished"`), and reads fields of the JSON in that
message (`run.status`, `run.counts.deletesHeld`). The fields are in the message because the
Functions Python worker forwards a record's formatted text to the host, not its `extra`
attributes (Azure/azure-functions-python-worker, azure_functions_worker/dispatcher.py,
Dispatcher.on_logging: RpcLog(level, message=formatted_msg, category, log_category,
invocation_id)); sync_core/core/run_log.log_event writes them there. What the code emits is read
from the code itself (every log_event call), never from a list kept here.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest
from pycep import BicepParser

from sync_core.core.report import Counts
from sync_core.core.run_log import log_event

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "infra" / "modules" / "alerts.bicep"
QUERIES = sorted((ROOT / "infra" / "modules" / "alerts").glob("*.kql"))
RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"


@dataclass
class Event:
    message: str
    fields: set[str] = field(default_factory=set)


def emitted_events() -> dict[str, Event]:
    """event name -> its message and fields, from every log_event(...) call in sync_core, plus
    the keywords callers pass to log_run_finished (its **more)."""
    events: dict[str, Event] = {}
    more: set[str] = set()
    for path in sorted((ROOT / "sync_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if name == "log_run_finished":
                more |= set(keywords)
            if name != "log_event" or "event" not in keywords:
                continue
            event = keywords["event"]
            assert isinstance(event, ast.Constant) and isinstance(node.args[0], ast.Constant)
            found = events.setdefault(event.value, Event(node.args[0].value))
            found.fields |= set(keywords) - {"level"}
    events["sync_finished"].fields |= more
    return events


_MESSAGE = re.compile(r'message startswith "([^"]+) "')
_PARSED = re.compile(
    r"extend (\w+) = parse_json\(substring\(message, indexof\(message, \"\{\"\)\)\)"
)


def problems_of(query: str, events: dict[str, Event]) -> list[str]:
    """What `query` names that the code does not emit (empty when it reads only real fields)."""
    messages, parsed = _MESSAGE.findall(query), _PARSED.findall(query)
    if len(messages) != 1 or len(parsed) != 1:
        return ["a query reads one kind of line: one `message startswith`, one parse_json"]
    line = parsed[0]
    named = re.findall(rf'tostring\({line}\.event\) == "(\w+)"', query)
    if len(named) != 1 or named[0] not in events:
        return [f"event {named} is not one the code logs ({sorted(events)})"]
    event = events[named[0]]
    problems = []
    if event.message != messages[0]:
        problems.append(f"{named[0]} lines start {event.message!r}, not {messages[0]!r}")
    counts = {f.name for f in fields(Counts)}
    for name, sub in re.findall(rf"\b{line}\.(\w+)(?:\.(\w+))?", query):
        if name not in event.fields:
            problems.append(f"{named[0]} has no field {name!r} ({sorted(event.fields)})")
        elif sub and (name != "counts" or sub not in counts):
            problems.append(f"{named[0]}.{name} has no field {sub!r}")
    return problems


@pytest.mark.parametrize("query", QUERIES, ids=[q.stem for q in QUERIES])
def test_each_query_names_only_events_and_fields_the_code_logs(query: Path):
    assert problems_of(query.read_text(), emitted_events()) == []


def test_the_check_catches_a_field_or_event_the_code_does_not_log():
    events = emitted_events()
    good = (ROOT / "infra" / "modules" / "alerts" / "held.kql").read_text()
    assert problems_of(good, events) == []
    assert problems_of(good.replace("run.counts.deletesHeld", "run.counts.held"), events)
    assert problems_of(good.replace("run.runId", "run.runID"), events)
    assert problems_of(good.replace('"sync_finished"', '"sync_ended"'), events)
    assert problems_of(good.replace('"sync finished "', '"sync done "'), events)


def test_every_query_is_a_rule_and_every_rule_reads_a_query():
    text = ALERTS.read_text()
    loaded = set(re.findall(r"loadTextContent\('alerts/(\w+\.kql)'\)", text))
    assert loaded == {q.name for q in QUERIES}
    parsed = BicepParser().parse(text=text)
    types = {r["type"] for r in parsed["resources"].values()}
    assert RULE_TYPE in types and "Microsoft.Insights/actionGroups" in types


def test_the_alert_email_is_an_azd_parameter():
    parameters = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert parameters["alertEmail"]["value"] == "${ALERT_EMAIL}"
    main = (ROOT / "infra" / "main.bicep").read_text()
    assert "param alertEmail string = ''" in main and "alertEmail: alertEmail" in main
    assert "param alertFailuresInARow int = 3" in main


def test_a_logged_line_carries_its_fields_as_the_queries_read_them(caplog):
    """What the host receives is the formatted message; the queries cut it at the first `{`."""
    with caplog.at_level(logging.INFO, logger="sync_core.run"):
        log_event("sync finished", event="sync_finished", tenantId="t", counts={"deletesHeld": 2})
    (message,) = [r.getMessage() for r in caplog.records if r.name == "sync_core.run"]
    assert message.startswith("sync finished ")
    assert json.loads(message[message.index("{") :]) == {
        "event": "sync_finished",
        "tenantId": "t",
        "counts": {"deletesHeld": 2},
    }


@pytest.mark.parametrize("name", ["failing", "no_success", "held"])
def test_the_run_queries_leave_out_the_runs_the_schedule_does_not_count(name: str, caplog):
    """An `explain --apply` (one user, trigger explain) and a dry run end with a sync finished
    line too; the schedule does not count them (core/schedule.py plan_tenant), so a rule must
    not either: a succeeded explain between failures hid "failed N times in a row", and it
    counted as the tenant's success for "no success for 24 hours"; a dry run over the guard
    (an admin previewing Clean Up) mailed "deletions held" though nothing was ever to be deleted."""
    from datetime import UTC, datetime

    from sync_core.core.report import RunReport, RunStatus, Trigger
    from sync_core.core.run_log import log_run_finished

    at = datetime.now(UTC)
    report = RunReport.begun(
        "r", "t", RunStatus.SUCCEEDED, dry_run=False, trigger=Trigger.EXPLAIN, at=at
    )
    with caplog.at_level(logging.INFO, logger="sync_core.run"):
        log_run_finished(report)
    (message,) = [r.getMessage() for r in caplog.records if r.name == "sync_core.run"]
    line = json.loads(message[message.index("{") :])
    query = (ROOT / "infra" / "modules" / "alerts" / f"{name}.kql").read_text()
    assert f'tostring(run.trigger) != "{line["trigger"]}"' in query
    assert "tobool(run.dryRun) == false" in query
