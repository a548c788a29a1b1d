"""Property test of convergence (issue 7): whatever the directory holds and whatever goes wrong on
the way, the Employees table ends up equal to what the documented rules say, and a run that
reports `succeeded` never leaves an employee in scope out of the table.

Each example is a fresh tenant (its own GUID) in the session's simulator and Azurite: a random
directory (odd Unicode, long and huge values, users repeated across small pages, users moving in
and out of scope), a configuration, then a random sequence of directory changes, configuration
changes and runs, each run under random faults (429/503 storms, dropped connections, a body cut
half-way, a gateway error, a run killed between batches, a lease lost mid-run). Finally a clean
run: the table must equal `expected_employees(final directory, final configuration)`
(tests/integration/convergence_reference.py, the one place that says what is right), and a
second clean run must write nothing.

What the strategies generate is switched by the named sets just below. `PENDING_*` holds what the
code of this branch is known to get wrong before issue 7's other rules are merged; it is turned on
by moving the name into `ENABLED_*` (or, to look, `CONVERGENCE_ENABLE=name,name` in the
environment). Examples per run come from the Hypothesis profile (tests/conftest.py): `ci` in CI,
`long` for a long local search (tests/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableClient
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from simulator import Simulator
from simulator.faults import MALFORMED_FORMS
from sync_core.adapters.storage_names import CONFIGS_TABLE, EMPLOYEES_TABLE
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.config_parse import parse_config
from sync_core.core.engine import RunRequest
from sync_core.core.report import FINAL_STATUSES, RunReport, RunStatus, utc_now
from sync_core.settings import load_settings
from tests.conftest import hypothesis_profile
from tests.integration.convergence_directory import ASCII_WORDS, SMALL_FIELDS, plain_member
from tests.integration.convergence_reference import (
    DEFAULT_FIELDS,
    MAX_UTF16_UNITS,
    Expectation,
    ExpectedRow,
    expected_employees,
    matches,
    utf16_units,
)

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.convergence")  # --log-cli-level=INFO shows each example's runs

# --- What is generated: named kinds, switched on and off here ----------------------------------

DATA_KINDS = {
    "odd_unicode": "CJK, emoji and other non-BMP text, combining marks, RTL, format characters",
    "long_values": "values up to 32,000 UTF-16 units, which every version stores whole",
    "huge_values": "BMP text over 32,767 UTF-16 units: must be cut to fit, the same way each run",
    "duplicates_across_pages": "pages smaller than $top that repeat users of the page before",
    "scope_moves": "users disabled, turned guest, unlicensed, moved between departments",
    "addresses_disappear": "an employee in scope loses every address (issue 7 rule 9)",
    "values_near_limit": "32,001..32,767 UTF-16 units: fit Table Storage, must be stored whole",
    "huge_non_bmp": "emoji text over the limit in UTF-16 units but not in Python characters",
    "unstorable_characters": "NUL and lone surrogates in a value (issue 7 rule 4)",
    "ext_addresses": "a guest in scope whose mail and SMTP: entry are the #EXT# form (rule 8)",
    "huge_batch": "every user with a 32,000-character CJK value: 4 MiB batch on the wire",
    "managers": "users with managers (in or out of scope, removed), changed and taken away, "
    "read by manager fields (issue 16)",
}
FAULT_KINDS = {
    "throttle": "a storm of 429 with Retry-After",
    "unavailable": "a storm of 503 with Retry-After",
    "drop_connection": "connections closed without an answer",
    "cut_body": "a page's body cut half-way",
    "bad_gateway": "a 502 from a gateway: the run fails",
    "kill_between_batches": "the run's task cancelled after some pages (Ctrl-C, host shutdown)",
    "lease_lost": "another worker takes the tenant's lease over mid-read",
    "lease_lost_at_finish": "the lease is taken over as the run finishes (rules 5 and 6)",
    "malformed_page": "a 2xx listing page that is not a users collection (issue 7 rule 1)",
    "expired_page_token": "a nextLink answered 400 Directory_ExpiredPageToken (issue 7 rule 3)",
}
CHECKS = {
    "converges": "after a final clean run the table equals the reference",
    "none_missing_after_success": "no employee in scope missing after a succeeded run",
    "in_scope_counted_once": "a succeeded run's inScope count is the reference's, repeats once",
    "second_run_writes_nothing": "a clean run after the final one writes nothing",
    "fenced_after_lease_lost": "a run that lost its lease writes no row after that (rule 5)",
    "dead_runs_closed": "no run stays running once a later run has finished (rule 6)",
    "summary_agrees": "after the final runs the tenant's summary says what the table holds",
}

# Kinds known to fail on the code of the branch; a name moves to ENABLED (out of here) once its
# rule is in. Issue 7's rules are all in: nothing is pending.
PENDING_DATA_KINDS: frozenset[str] = frozenset()
PENDING_FAULTS: frozenset[str] = frozenset()
PENDING_CHECKS: frozenset[str] = frozenset()


def _enabled(kinds: Iterable[str], pending: frozenset[str]) -> frozenset[str]:
    extra = {n.strip() for n in os.environ.get("CONVERGENCE_ENABLE", "").split(",") if n.strip()}
    unknown = extra - set(DATA_KINDS) - set(FAULT_KINDS) - set(CHECKS)
    if unknown:
        raise ValueError(f"CONVERGENCE_ENABLE names unknown kinds: {sorted(unknown)}")
    return frozenset(k for k in kinds if k not in pending or k in extra)


ENABLED_DATA_KINDS = _enabled(DATA_KINDS, PENDING_DATA_KINDS)
ENABLED_FAULTS = _enabled(FAULT_KINDS, PENDING_FAULTS)
ENABLED_CHECKS = _enabled(CHECKS, PENDING_CHECKS)

# Examples per profile: each is a few real syncs, so far fewer than a unit property test.
EXAMPLES = {"ci": 15, "dev": 8, "long": 300}


def examples_per_run(environ: Mapping[str, str]) -> int:
    """By profile, unless CONVERGENCE_EXAMPLES says how many."""
    return int(environ.get("CONVERGENCE_EXAMPLES") or EXAMPLES[hypothesis_profile(environ)])


USERS_PATH = "/v1.0/users"
DOMAINS = ("contoso.com", "Contoso.COM", "fabrikam.co.uk", "sales.contoso.com")
DEPARTMENTS = ("Sales", "sales", "R&D", "研究開発", "Ventes", "مبيعات", "Zoë's team")
PHANTOM_HOLDER = "phantom-worker"

# --- Strategies --------------------------------------------------------------------------------

ODD_SAMPLES = (
    "李伟", "Zoë", "Łukasz Ńowak", "e\u0301cole", "עברית", "العربية", "👩\u200d💻 dev",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u3000全角\u3000", "  padded  ", "RTL\u200fmark", "O'Brien", "",
)  # fmt: skip


def _has(kind: str) -> bool:
    return kind in ENABLED_DATA_KINDS


@st.composite
def profile_text(draw: st.DrawFn) -> str:
    """A profile value: plain words, or one of the enabled awkward kinds."""
    choices: list[st.SearchStrategy[str]] = [st.sampled_from(ASCII_WORDS)]
    if _has("odd_unicode"):
        choices += [
            st.sampled_from(ODD_SAMPLES),
            # Any printable character, non-BMP included; no controls (NUL is its own kind).
            st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
        ]
    long_units = [
        (kind, units)
        for kind, units in (
            ("long_values", (30_000, 32_000)),
            ("huge_values", (MAX_UTF16_UNITS + 1, 40_000)),
            ("values_near_limit", (32_001, MAX_UTF16_UNITS)),
        )
        if _has(kind)
    ]
    if long_units:
        choices.append(st.sampled_from(long_units).flatmap(_long_text))
    if _has("huge_non_bmp"):
        choices.append(st.integers(16_384, 20_000).map(lambda n: "😀" * n))
    if _has("unstorable_characters"):
        choices.append(st.sampled_from(("nul\x00inside", "lone\ud800surrogate", "\udfffend")))
    return draw(st.one_of(choices))


def _long_text(kind_and_units: tuple[str, tuple[int, int]]) -> st.SearchStrategy[str]:
    kind, (low, high) = kind_and_units
    # Built, not drawn character by character: Hypothesis caps the size of what it generates.
    # An emoji is two UTF-16 units; over the limit it is its own kind (huge_non_bmp).
    fillers = ("x", "研", "é", "😀") if kind == "long_values" else ("x", "研", "é")
    return st.tuples(st.integers(low, high), st.sampled_from(fillers)).map(
        lambda p: p[1] * (p[0] // utf16_units(p[1]))
    )


local_parts = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.-_'ëøł"), min_size=1, max_size=10
).map(lambda s: s.strip(".") or "a")


@st.composite
def address(draw: st.DrawFn) -> str:
    return f"{draw(local_parts)}@{draw(st.sampled_from(DOMAINS))}"


@st.composite
def directory_user(draw: st.DrawFn, user_id: str, tenant_domain: str) -> dict[str, Any]:
    kinds = ["member", "member", "member", "other_mail_only", "no_address", "bad_addresses"]
    if _has("scope_moves"):
        kinds += ["guest", "disabled", "unlicensed"]
    if _has("ext_addresses"):
        kinds.append("ext_guest")
    kind = draw(st.sampled_from(kinds))
    name = draw(local_parts)
    upn = f"{name}.{user_id[:4]}@{tenant_domain}"
    user: dict[str, Any] = {
        "id": user_id,
        "userPrincipalName": upn,
        "accountEnabled": kind != "disabled",
        "userType": "Member",
        "assignedLicenses": (
            [] if kind == "unlicensed" else [{"skuId": str(uuid.UUID(int=7)), "disabledPlans": []}]
        ),
        "department": draw(st.one_of(st.sampled_from(DEPARTMENTS), profile_text())),
    }
    for name_ in ("givenName", "surname", "displayName", "jobTitle", "city", "officeLocation"):
        if draw(st.booleans()):
            user[name_] = draw(profile_text())
    if draw(st.booleans()):
        user["businessPhones"] = draw(st.lists(profile_text(), max_size=3))
    if kind in ("member", "disabled", "unlicensed"):
        primary = draw(address())
        entries = [f"SMTP:{primary}"]
        for alias in draw(st.lists(address(), max_size=3)):
            entries.append(draw(st.sampled_from(("smtp:", "smtp: ", "SIP:"))) + alias)
        if draw(st.booleans()):
            entries.append("smtp:" + primary.upper())  # a case-only duplicate of the primary
        entries.append("X500:/o=ExchangeLabs/ou=Exchange/cn=Recipients/cn=" + user_id[:8])
        user["proxyAddresses"] = draw(st.permutations(entries))
        user["mail"] = draw(st.sampled_from((primary, primary.upper(), None)))
        if draw(st.booleans()):
            user["otherMails"] = draw(st.lists(address(), max_size=2))
    elif kind == "guest":
        external = draw(address())
        local, _, domain = external.partition("@")
        user |= {
            "userType": "Guest",
            "userPrincipalName": f"{local}_{domain}#EXT#@{tenant_domain}",
            "mail": external,
        }
    elif kind == "ext_guest":
        external = draw(address())
        local, _, domain = external.partition("@")
        ext = f"{local}_{domain}#EXT#@{tenant_domain}"
        user |= {
            "userType": "Guest",
            "userPrincipalName": ext,
            "mail": ext,
            "proxyAddresses": [f"SMTP:{ext}"],
            "otherMails": draw(st.lists(address(), max_size=1)),
        }
    elif kind == "other_mail_only":
        user["otherMails"] = ["not an address", draw(address())]
    elif kind == "bad_addresses":
        user |= {"mail": "n/a", "proxyAddresses": ["smtp:garbage", "SIP:x@y.z"]}
    return user


RULE_ATTRIBUTES = ("department", "jobTitle", "city")


@st.composite
def scope_rule(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(("equals", "notEquals", "startsWith", "contains", "isNull")))
    rule: dict[str, Any] = {
        "attribute": draw(st.sampled_from(RULE_ATTRIBUTES)),
        "operator": operator,
    }
    if operator != "isNull":
        value = draw(st.one_of(st.sampled_from(DEPARTMENTS), st.sampled_from(ASCII_WORDS)))
        rule["value"] = value[:3] if operator in ("startsWith", "contains") else value
    return rule


MANAGER_FIELDS = (
    *SMALL_FIELDS[:2],
    {"name": "Boss", "source": "manager.jobTitle"},
    {"name": "BossEmail", "source": "manager.email"},
    {"name": "BossPhone", "source": "manager.businessPhones[0]"},
)
FIELD_SETS = (DEFAULT_FIELDS, SMALL_FIELDS, SMALL_FIELDS[:2]) + (
    (MANAGER_FIELDS,) if "managers" in ENABLED_DATA_KINDS else ()
)


@st.composite
def tenant_config(draw: st.DrawFn) -> dict[str, Any]:
    moves = _has("scope_moves")
    groups = st.lists(st.lists(scope_rule(), min_size=1, max_size=2), max_size=1 if moves else 0)
    return {
        "fields": list(draw(st.sampled_from(FIELD_SETS))),
        "email": {
            "proxyAddresses": draw(st.booleans()),
            "otherMails": draw(st.booleans()),
            "userPrincipalName": draw(st.booleans()),
        },
        "filter": {
            "excludeDisabled": draw(st.booleans()) if moves else True,
            "excludeGuests": draw(st.booleans()) if moves else True,
            "excludeUnlicensed": draw(st.booleans()) if moves else False,
            "include": draw(groups),
            "exclude": draw(groups),
        },
        "cleanUp": {
            "enabled": draw(st.booleans()),
            # The defaults hold mass deletions (status held); 100 % lets them through.
            "maxDeletes": draw(st.sampled_from((500, 100_000))),
            "maxDeletePercent": draw(st.sampled_from((20, 100))),
        },
    }


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    count: int
    after: int  # listing requests let through first
    form: str | None = None  # malformed_page: one of simulator.faults.MALFORMED_FORMS


@dataclass(frozen=True)
class RunStep:
    faults: tuple[FaultSpec, ...]
    interruption: str | None  # one of INTERRUPTIONS
    after_pages: int  # pages served before the interruption


@dataclass(frozen=True)
class ChangeStep:
    kind: str  # "upsert" | "patch" | "remove" | "config"
    user_id: str | None = None
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Scenario:
    tenant_domain: str
    users: tuple[dict[str, Any], ...]
    config: dict[str, Any]
    steps: tuple[RunStep | ChangeStep, ...]
    max_page_size: int
    repeat_previous: int

    def __repr__(self) -> str:
        # A failing example is printed: huge values shortened keep it readable.
        fields = ", ".join(f"{k}={_abbreviated(v)!r}" for k, v in vars(self).items())
        return f"Scenario({fields})"


def _abbreviated(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:20]}...[{len(value)} chars]"
    if isinstance(value, Mapping):
        return {k: _abbreviated(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_abbreviated(v) for v in value)
    if isinstance(value, RunStep | ChangeStep):
        return type(value)(**{k: _abbreviated(v) for k, v in vars(value).items()})
    return value


FAULT_COUNTS = {
    # Each 429/503 costs its Retry-After (1 s): short storms keep an example in seconds.
    "throttle": (1, 2),
    "unavailable": (1, 2),
    "drop_connection": (1, 2),
    "cut_body": (1, 1),
    "bad_gateway": (1, 1),
    "malformed_page": (1, 1),
    # One or two expiries restart the listing; the third in a run fails it (rule 3).
    "expired_page_token": (1, 3),
}
INTERRUPTIONS = ("kill_between_batches", "lease_lost", "lease_lost_at_finish")


@st.composite
def run_step(draw: st.DrawFn) -> RunStep:
    simulated = sorted(ENABLED_FAULTS & set(FAULT_COUNTS))
    faults = []
    for kind in draw(st.lists(st.sampled_from(simulated), max_size=2)) if simulated else []:
        low, high = FAULT_COUNTS[kind]
        form = draw(st.sampled_from(MALFORMED_FORMS)) if kind == "malformed_page" else None
        count, after = draw(st.integers(low, high)), draw(st.integers(0, 3))
        faults.append(FaultSpec(kind, count, after, form))
    interruptions = [k for k in INTERRUPTIONS if k in ENABLED_FAULTS]
    interruption = draw(st.none() | st.sampled_from(interruptions)) if interruptions else None
    return RunStep(tuple(faults), interruption, draw(st.integers(1, 3)))


@st.composite
def user_patch(draw: st.DrawFn, known: tuple[str, ...] = ()) -> dict[str, Any]:
    options: list[st.SearchStrategy[dict[str, Any]]] = [
        st.builds(lambda t: {"jobTitle": t}, profile_text()),
        st.builds(lambda d: {"department": d}, st.sampled_from(DEPARTMENTS)),
        st.builds(lambda a: {"mail": a, "proxyAddresses": [f"SMTP:{a}"]}, address()),
    ]
    if _has("scope_moves"):
        options += [
            st.builds(lambda b: {"accountEnabled": b}, st.booleans()),
            st.sampled_from(({"userType": "Guest"}, {"userType": "Member"})),
            st.just({"assignedLicenses": []}),
        ]
    if _has("addresses_disappear"):
        options.append(st.just({"mail": None, "proxyAddresses": None, "otherMails": None}))
    if _has("managers") and known:
        # A new manager, or none; a manager's own changes come from the options above.
        options.append(st.builds(lambda m: {"manager": m}, st.none() | st.sampled_from(known)))
    return draw(st.one_of(options))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    tenant_domain = "contoso.onmicrosoft.com"
    # One example in four: each costs seconds, and the CI profile's 15 must stay well under a
    # minute together.
    huge_batch = _has("huge_batch") and draw(st.integers(0, 3)) == 0
    # 30 users of 32,000 CJK characters: 5.8 MB as the SDK sends them (6 bytes each, escaped).
    size = 30 if huge_batch else draw(st.integers(2, 25))
    ids = draw(st.lists(st.uuids(), min_size=size, max_size=size, unique=True))
    users = [draw(directory_user(str(i), tenant_domain)) for i in ids]
    if _has("managers"):
        for user in users:
            if draw(st.booleans()):
                user["manager"] = str(draw(st.sampled_from(ids)))
    if huge_batch:
        for index, user in enumerate(users):
            user |= {"accountEnabled": True, "userType": "Member", "department": "研" * 32_000}
            user["mail"] = user.get("mail") or f"wide{index}@contoso.com"
            user["userPrincipalName"] = user["userPrincipalName"].replace("#EXT#", "")
    known = [u["id"] for u in users]
    steps: list[RunStep | ChangeStep] = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            steps.append(draw(run_step()))
            continue
        kind = draw(
            st.sampled_from(("upsert", "patch", "remove", "config") if known else ("upsert",))
        )
        if kind == "upsert":
            new_id = str(draw(st.uuids().filter(lambda u: str(u) not in known)))
            known.append(new_id)
            steps.append(ChangeStep("upsert", new_id, draw(directory_user(new_id, tenant_domain))))
        elif kind == "config":
            steps.append(ChangeStep("config", payload=draw(tenant_config())))
        else:
            user_id = draw(st.sampled_from(known))
            if kind == "remove":
                known.remove(user_id)
                steps.append(ChangeStep("remove", user_id))
            else:
                steps.append(ChangeStep("patch", user_id, draw(user_patch(tuple(known)))))
    repeats = _has("duplicates_across_pages")
    return Scenario(
        tenant_domain=tenant_domain,
        users=tuple(users),
        config=draw(tenant_config()),
        steps=tuple(steps),
        max_page_size=draw(st.integers(2, 7)) if repeats else 999,
        repeat_previous=draw(st.integers(0, 2)) if repeats else 0,
    )


# --- Faults: one injector per named kind -------------------------------------------------------

FaultInjector = Callable[[Simulator, FaultSpec], None]
FAULT_INJECTORS: dict[str, FaultInjector] = {
    "throttle": lambda sim, f: sim.faults.throttle(f.count, 1, USERS_PATH, f.after),
    "unavailable": lambda sim, f: sim.faults.unavailable(f.count, 1, USERS_PATH, f.after),
    "drop_connection": lambda sim, f: sim.faults.drop_connection(f.count, USERS_PATH, f.after),
    "cut_body": lambda sim, f: sim.faults.cut_body(f.count, USERS_PATH, f.after),
    "bad_gateway": lambda sim, f: sim.faults.bad_gateway(f.count, USERS_PATH, f.after),
    # A listing page altered into one of the simulator's forms: the run fails (rule 1).
    "malformed_page": lambda sim, f: sim.faults.malformed_page(
        f.form or MALFORMED_FORMS[0], f.count, USERS_PATH, f.after
    ),
    # Only requests that follow a nextLink carry a page token: `after` counts those.
    "expired_page_token": lambda sim, f: sim.faults.expire_page_tokens(
        f.count, USERS_PATH, f.after
    ),
}


_WITHOUT_INJECTOR = (ENABLED_FAULTS & set(FAULT_COUNTS)) - set(FAULT_INJECTORS)
if _WITHOUT_INJECTOR:
    raise ValueError(f"enabled faults without an injector: {sorted(_WITHOUT_INJECTOR)}")


# --- Examples every profile runs: issue 7's faults and rules, whatever the random draws reach ----


_PLAIN_CONFIG = {
    "fields": list(SMALL_FIELDS),
    "email": {"proxyAddresses": True, "otherMails": True, "userPrincipalName": False},
    "filter": {"excludeDisabled": True, "excludeGuests": True, "excludeUnlicensed": False,
               "include": [], "exclude": []},
    "cleanUp": {"enabled": True, "maxDeletes": 100_000, "maxDeletePercent": 100},
}  # fmt: skip


def _example(*steps: RunStep | ChangeStep) -> Scenario:
    return Scenario(
        tenant_domain="contoso.onmicrosoft.com",
        users=tuple(plain_member(n) for n in range(6)),
        config=_PLAIN_CONFIG,
        steps=steps,
        max_page_size=2,
        repeat_previous=0,
    )


def _faulted(kind: str, count: int, after: int = 0, form: str | None = None) -> RunStep:
    return RunStep((FaultSpec(kind, count, after, form),), None, 1)


GONE = {"mail": None, "proxyAddresses": None, "otherMails": None}
EXAMPLES_OF_ISSUE_7 = (
    # A malformed page fails the run; one expiry restarts the listing; three fail it; an
    # employee whose address disappears is kept, marked, without Email.
    _example(
        _faulted("malformed_page", 1, 1, "no_value"),
        _faulted("expired_page_token", 1, 1),
        ChangeStep("patch", plain_member(0)["id"], GONE),
        _faulted("expired_page_token", 3),
        RunStep((), None, 1),
    ),
    # The lease taken over as the last page is served.
    _example(RunStep((), None, 1), RunStep((), "lease_lost_at_finish", 1)),
)


def _managed(*steps: RunStep | ChangeStep) -> Scenario:
    """Members 1 and 2 report to member 0, member 4 to member 5 (disabled: out of scope)."""
    plain = _example(*steps)
    users = [dict(u) for u in plain.users]
    for report, manager in ((1, 0), (2, 0), (4, 5)):
        users[report]["manager"] = users[manager]["id"]
    users[5]["accountEnabled"] = False
    config = {**_PLAIN_CONFIG, "fields": list(MANAGER_FIELDS)}
    return Scenario(plain.tenant_domain, tuple(users), config, steps, 2, 0)


# A manager renamed (its title), a manager out of scope changed, a new manager, a manager
# removed from the directory: each reaches every report's row (issue 16).
EXAMPLE_OF_ISSUE_16 = _managed(
    RunStep((), None, 1),
    ChangeStep("patch", plain_member(0)["id"], {"jobTitle": "Chief"}),
    ChangeStep("patch", plain_member(5)["id"], {"jobTitle": "Hidden", "mail": "x5@contoso.com",
                                            "proxyAddresses": ["SMTP:x5@contoso.com"]}),
    RunStep((), None, 1),
    ChangeStep("patch", plain_member(1)["id"], {"manager": plain_member(3)["id"]}),
    ChangeStep("remove", plain_member(0)["id"]),
    RunStep((), None, 1),
)  # fmt: skip


# --- The property ------------------------------------------------------------------------------


# Passing takes well under a minute; a failure is then shrunk to its smallest example, which
# Hypothesis bounds at 5 minutes: the test's timeout leaves room for that report.
@pytest.mark.timeout(900)
@settings(max_examples=examples_per_run(os.environ))
@given(scenario=scenarios())
@example(scenario=EXAMPLES_OF_ISSUE_7[0])
@example(scenario=EXAMPLES_OF_ISSUE_7[1])
@example(scenario=EXAMPLE_OF_ISSUE_16)
def test_the_table_converges_to_the_reference(simulator, azurite, scenario: Scenario) -> None:
    Play(simulator, azurite.connection_string, scenario).run()


@dataclass
class Play:
    """One example against the real simulator and Azurite: a tenant of its own, the steps, the
    final clean runs and every check."""

    simulator: Simulator
    connection_string: str
    scenario: Scenario
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    directory: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    field_names_ever: set[str] = field(default_factory=set)
    # Users that were in scope with a usable address when some run started: the only ones that
    # may ever have a row.
    ever_addressed: set[str] = field(default_factory=set)
    # False: every run is full (what this property was written for); True: runs are delta when
    # they can be (the delta part at the end of this file).
    delta: bool = False

    def run(self) -> None:
        sim = self.simulator
        log.info(
            "%s: %d users, pages of %d repeating %d, %d steps",
            self.tenant_id,
            len(self.scenario.users),
            self.scenario.max_page_size,
            self.scenario.repeat_previous,
            len(self.scenario.steps),
        )
        sim.add_tenant(
            {
                "id": self.tenant_id,
                "displayName": "Convergence",
                "verifiedDomains": [{"name": self.scenario.tenant_domain, "isDefault": True}],
                "consents": {sim.world.apps[0].client_id: ["User.Read.All"]},
                "users": [],
            }
        )
        sim.set_paging(
            self.tenant_id,
            max_page_size=self.scenario.max_page_size,
            repeat_previous=self.scenario.repeat_previous,
        )
        try:
            asyncio.run(self._play())
        finally:
            sim.faults.clear()

    async def _play(self) -> None:
        env = {
            **self.simulator.environment(self.tenant_id),
            # The secret straight from the settings: Key Vault has its own tests, and this keeps
            # os.environ untouched between examples.
            "ENTRA_CLIENT_SECRET": self.simulator.world.apps[0].secrets[0],
            "TABLES_CONNECTION_STRING": self.connection_string,
        }
        async with SyncService(load_settings(env)) as service:
            for user in self.scenario.users:
                self._upsert(user)
            await self._set_config(service, self.scenario.config)
            for step in self.scenario.steps:
                if isinstance(step, ChangeStep):
                    await self._change(service, step)
                else:
                    await self._run(service, step)
            self.simulator.faults.clear()
            before = await self._rows()
            final = await self._sync(service, allow_deletes=True)
            assert final.status == RunStatus.SUCCEEDED, f"final clean run {_outcome(final)}"
            await self._check_after_success(final, before)
            if "converges" in ENABLED_CHECKS:
                self._assert_converged(await self._rows(), final)
            if "second_run_writes_nothing" in ENABLED_CHECKS:
                again = await self._sync(service, allow_deletes=True)
                counts = again.counts
                assert again.status == RunStatus.SUCCEEDED, f"second clean run {_outcome(again)}"
                assert (counts.created, counts.updated, counts.deleted) == (0, 0, 0), counts
            if "summary_agrees" in ENABLED_CHECKS:
                await self._assert_summary_agrees()
            if "dead_runs_closed" in ENABLED_CHECKS:
                stuck = [r.run_id for r in await service.runs.latest(self.tenant_id, 50)
                         if r.status not in FINAL_STATUSES]  # fmt: skip
                assert not stuck, f"runs left running: {stuck}"

    # ---- directory and configuration changes

    def _upsert(self, user: Mapping[str, Any]) -> None:
        self.directory[user["id"]] = dict(user)
        self.simulator.upsert_user(self.tenant_id, user)

    async def _change(self, service: SyncService, step: ChangeStep) -> None:
        if step.kind == "upsert":
            assert step.payload is not None
            self._upsert(step.payload)
        elif step.kind == "remove":
            assert step.user_id is not None
            del self.directory[step.user_id]
            self.simulator.remove_user(self.tenant_id, step.user_id)
        elif step.kind == "patch":
            assert step.user_id is not None and step.payload is not None
            merged = {**self.directory[step.user_id], **step.payload}
            self.directory[step.user_id] = {k: v for k, v in merged.items() if v is not None}
            self.simulator.patch_user(self.tenant_id, step.user_id, step.payload)
        else:
            assert step.payload is not None
            await self._set_config(service, step.payload)

    async def _set_config(self, service: SyncService, document: dict[str, Any]) -> None:
        self.config = document
        self.field_names_ever |= {f["name"] for f in document["fields"]}
        await service.configs.put(self.tenant_id, parse_config(document))

    # ---- runs

    async def _sync(self, service: SyncService, **options: Any) -> RunReport:
        self.ever_addressed |= set(self._expected().rows)
        request = RunRequest(self.tenant_id, trigger="cli", full=not self.delta, **options)
        report = await sync_exclusively(service, request)
        self._noted(report, "clean" if not options else f"clean {options}")
        return report

    def _noted(self, report: RunReport | None, how: str) -> None:
        if report is None:
            line = f"run ({how}): killed, no report"
        else:
            errors = [error.code for error in report.errors]
            line = (
                f"run ({how}): {report.status} {report.mode} {report.to_json()['counts']} {errors}"
            )
        note(line)
        log.info("%s: %s", self.tenant_id, line)

    async def _run(self, service: SyncService, step: RunStep) -> None:
        sim = self.simulator
        sim.faults.clear()
        for fault in step.faults:
            FAULT_INJECTORS[fault.kind](sim, fault)
        before = await self._rows()
        note(f"faults: {step.faults}")
        if step.interruption is None:
            report = await self._sync(service)
        else:
            report = await self._interrupted(service, step)
        sim.faults.clear()
        if report is not None and report.status == RunStatus.SUCCEEDED:
            await self._check_after_success(report, before)

    async def _interrupted(self, service: SyncService, step: RunStep) -> RunReport | None:
        """A run stopped from outside after `after_pages` listing pages were served."""
        sim = self.simulator
        sim.clear_requests()
        # Slow pages, so that the run is still reading when the interruption comes.
        sim.faults.latency(40, USERS_PATH)
        ttl = timedelta(seconds=30)
        self.ever_addressed |= set(self._expected().rows)
        request = RunRequest(self.tenant_id, trigger="cli", full=not self.delta)
        run = asyncio.create_task(
            sync_exclusively(service, request, ttl=ttl, renew_every=timedelta(seconds=0.2))
        )
        pages = self._pages_expected()
        wanted = {
            "kill_between_batches": step.after_pages,
            # Taken over while pages remain: the run must learn of it at a renewal mid-read.
            "lease_lost": min(step.after_pages, pages - 1),
            # Taken over as the last page is served: the run learns of it while it finishes.
            "lease_lost_at_finish": pages,
        }[step.interruption]
        served = wanted >= 1 and await _until(lambda: self._pages_served() >= wanted, run)
        report: RunReport | None = None
        if step.interruption == "kill_between_batches":
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                report = await run
        else:
            phantom = None
            if served:
                if step.interruption == "lease_lost":
                    # Each page left now outlasts a renewal period.
                    sim.faults.latency(600, USERS_PATH)
                # Another worker whose clock says the lease has expired takes it over.
                phantom = await service.leases.acquire(
                    self.tenant_id, PHANTOM_HOLDER, utc_now() + ttl + timedelta(seconds=1), ttl
                )
                if phantom is not None:
                    # ...and raises the write fence, as a real new holder does before it reads
                    # a table the stale run marked as being written (core/delta_reads.py), or
                    # before its first write. Rule 5 is about what the stale run writes from
                    # then on: until then its transactions in flight may land, and do under
                    # load (the snapshot below would see them as written "after").
                    await service.employees.writer(self.tenant_id, phantom)
            taken_over = await self._rows() if phantom is not None else None
            report = await run
            if phantom is not None:
                await service.leases.release(phantom)
            if taken_over is not None and "fenced_after_lease_lost" in ENABLED_CHECKS:
                rewritten = {
                    key
                    for key, row in (await self._rows()).items()
                    if row.get("RunId") == report.run_id
                    and taken_over.get(key, {}).get("_etag") != row["_etag"]
                }
                assert not rewritten, f"a run that lost its lease wrote {sorted(rewritten)}"
        await self._free_lease(service)
        self._noted(report, f"{step.interruption} after {step.after_pages} page(s), {served=}")
        return report

    def _pages_expected(self) -> int:
        """Listing pages of a full read: the first holds `max_page_size` users, each next one
        repeats `repeat_previous` of them and moves on by the rest (simulator/directory.py)."""
        users, size = len(self.directory), self.scenario.max_page_size
        if users <= size:
            return 1
        step = max(1, size - self.scenario.repeat_previous)
        return 1 + -(-(users - size) // step)

    def _pages_served(self) -> int:
        return sum(
            1
            for r in self.simulator.requests
            if r.tenant == self.tenant_id and r.path == USERS_PATH and r.status == 200
        )

    async def _free_lease(self, service: SyncService) -> None:
        """A killed worker's lease expires by itself after its TTL; here it is let go at once,
        the way the next worker would take it over."""
        held = await service.leases.get(self.tenant_id)
        if held is not None:
            taken = await service.leases.take_over(
                held, PHANTOM_HOLDER, utc_now(), timedelta(seconds=30)
            )
            if taken is not None:
                await service.leases.release(taken)

    # ---- checks

    def _expected(self) -> Expectation:
        return expected_employees(self.directory.values(), self.config)

    async def _check_after_success(
        self, report: RunReport, before: dict[str, dict[str, Any]]
    ) -> None:
        expected = self._expected()
        rows = await self._rows()
        if "none_missing_after_success" in ENABLED_CHECKS:
            # Kept from before: an employee in scope whose address is gone (rule 9) stays.
            kept = expected.addressless & set(before)
            # A row Table Storage cannot hold is skipped, but one stored before is never deleted.
            unstorable = self._unstorable(report)
            missing = (set(expected.rows) - (unstorable - set(before)) | kept) - set(rows)
            assert not missing, f"run {report.run_id} succeeded without {sorted(missing)}"
        # A delta run counts the users that changed, not the directory.
        if "in_scope_counted_once" in ENABLED_CHECKS and report.mode == "full":
            assert report.counts.inScope == len(expected.in_scope), report.to_json()["counts"]

    def _assert_converged(self, rows: dict[str, dict[str, Any]], final: RunReport) -> None:
        expected = self._expected()
        problems: list[str] = []
        unstorable = self._unstorable(final)
        for user_id, want in expected.rows.items():
            row = rows.get(user_id)
            if row is None:
                if user_id not in unstorable:  # a row Table Storage cannot hold is skipped
                    problems.append(f"{user_id}: no row")
                continue
            problems += self._row_problems(user_id, row, want)
        for user_id, want in expected.marked.items():
            if user_id in rows:  # kept from before, marked (issue 7 rule 9)
                problems += self._row_problems(user_id, rows[user_id], want)
        stray = set(rows) - self.ever_addressed
        if stray:
            problems.append(f"rows of users never in scope with an address: {sorted(stray)}")
        extra = set(rows) - set(expected.rows) - expected.addressless
        if extra and self.config["cleanUp"]["enabled"]:
            problems.append(f"rows out of scope kept under Clean Up: {sorted(extra)}")
        assert not problems, "\n".join(problems[:20])

    def _row_problems(self, user_id: str, row: Mapping[str, Any], want: ExpectedRow) -> list[str]:
        """How a stored row differs from the reference's (docs/configuration.md "Stored values"
        and "Employees whose address disappears": a marked row has no Email, the rest current)."""
        problems: list[str] = []
        got = {
            "Email": row.get("Email"),
            "Aliases": json.loads(row.get("Aliases") or "[]"),
            "UserPrincipalName": row.get("UserPrincipalName"),
            "marked": "EmailMissingSince" in row,
        }
        wanted = {
            "Email": want.email,
            "Aliases": list(want.aliases),
            "UserPrincipalName": want.user_principal_name,
            "marked": want.email is None,
        }
        if got != wanted:
            problems.append(f"{user_id}: {got} != {wanted}")
        configured = {name for name, _ in want.fields}
        for name, value in want.fields:
            if not matches(value, row.get(name)):
                problems.append(f"{user_id}.{name}: {_short(row.get(name))} != {_short(value)}")
        for name in sorted(self.field_names_ever - configured):
            if name in row:
                problems.append(f"{user_id}.{name}: left over from an earlier configuration")
        return problems

    def _unstorable(self, report: RunReport) -> set[str]:
        """Users the run skipped because Table Storage cannot hold their row ("upn: reason")."""
        upns = {entry.partition(": ")[0] for entry in report.skipped_unstorable}
        return {i for i, user in self.directory.items() if user.get("userPrincipalName") in upns}

    async def _assert_summary_agrees(self) -> None:
        """The summary row (issue 19: what delta runs know of the table without reading it)
        holds the table's count and EmailMissingSince marks, trusted (no run left it marked)."""
        async with TableClient.from_connection_string(
            self.connection_string, CONFIGS_TABLE
        ) as table:
            summary = await table.get_entity(self.tenant_id, "summary")
        assert not summary["Writing"], f"summary left marked by {summary['Writing']}"
        text = "".join(summary[f"Marks{i}"] for i in range(summary["MarkChunks"]))
        marks = {i: datetime.fromisoformat(s) for i, s in json.loads(text).items()}
        rows = await self._rows()
        stored = {i: r["EmailMissingSince"] for i, r in rows.items() if "EmailMissingSince" in r}
        assert (summary["Employees"], marks) == (len(rows), stored)

    async def _rows(self) -> dict[str, dict[str, Any]]:
        """The tenant's Employees rows, read straight from Azurite (not through our store).
        The write fence's rows (`~fence-N`, after every object id) are not employees."""
        async with TableClient.from_connection_string(
            self.connection_string, EMPLOYEES_TABLE
        ) as table:
            return {
                row["RowKey"]: {**row, "_etag": row.metadata["etag"]}
                async for row in table.query_entities(
                    "PartitionKey eq @t and RowKey lt '~'", parameters={"t": self.tenant_id}
                )
            }


async def _until(condition: Callable[[], bool], run: Awaitable[Any]) -> bool:
    """Wait until `condition` holds (True) or the run ends first (False)."""
    while not condition():
        if run.done():  # type: ignore[attr-defined]
            return False
        await asyncio.sleep(0.01)
    return True


def _outcome(report: RunReport) -> str:
    errors = "; ".join(f"{e.code}: {e.message}" for e in report.errors)
    return f"{report.status} ({errors or 'no error'})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} chars)"


# --- Delta runs --------------------------------------------------------------------------------
# The same scenarios, played with delta runs wherever the engine can use them (issue 10): the
# first run and configuration changes are full, the rest follow the stored delta link, and the
# faults on /v1.0/users reach /users/delta too (same prefix). The table must converge all the
# same, and the final clean runs (delta) must leave it converged with nothing more to write.
DELTA_EXAMPLES = {"ci": 8, "dev": 4, "long": 150}


@pytest.mark.timeout(900)
@settings(
    max_examples=int(
        os.environ.get("CONVERGENCE_EXAMPLES") or DELTA_EXAMPLES[hypothesis_profile(os.environ)]
    )
)
@given(scenario=scenarios())
@example(scenario=EXAMPLE_OF_ISSUE_16)
def test_the_table_converges_with_delta_runs(simulator, azurite, scenario: Scenario) -> None:
    Play(simulator, azurite.connection_string, scenario, delta=True).run()
