"""The pure parts of `explain` (core/explain.py, core/explain_row.py): whatever the user and the
rules, the explanation agrees with what a run decides (scope.exclusion_reason,
mapping.resolve_addresses), and names exactly the step or source that decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sync_core.core.config import CleanUp, EmailRules
from sync_core.core.config_parse import parse_config
from sync_core.core.explain import explain_scope
from sync_core.core.explain_row import explain_addresses, explain_clean_up, row_difference
from sync_core.core.mapping import resolve_addresses
from sync_core.core.plan import guard_deletions
from sync_core.core.scope import Scope

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

PROXY_ADDRESSES = [
    [], ["SMTP:p@contoso.com"], ["smtp:s@contoso.com"], ["X500:/o=x", "SIP:a@b.c"],
    ["SMTP:g#EXT#@contoso.com", "smtp:s@contoso.com"],
]  # fmt: skip
departments = st.sampled_from([None, "Sales", "sales", "R&D", ""])
users = st.fixed_dictionaries(
    {"id": st.just("u1")},
    optional={
        "accountEnabled": st.sampled_from([True, False, None]),
        "userType": st.sampled_from(["Member", "Guest", "guest", None]),
        "userPrincipalName": st.sampled_from(
            ["a@contoso.com", "a_fabrikam.com#EXT#@contoso.onmicrosoft.com", "", "not-an-address"]
        ),
        "assignedLicenses": st.sampled_from([[], [{"skuId": "x"}], None]),
        "department": departments,
        "city": st.sampled_from(["Berlin", "Paris", None]),
        "mail": st.sampled_from([None, "m@contoso.com", "x#EXT#@contoso.com", "broken"]),
        "proxyAddresses": st.sampled_from(PROXY_ADDRESSES),
        "otherMails": st.sampled_from([[], ["o@fabrikam.com"], ["", "bad"]]),
    },
)
rule = st.fixed_dictionaries(
    {
        "attribute": st.sampled_from(["department", "city"]),
        "operator": st.sampled_from(["equals", "notEquals", "startsWith", "isNull"]),
    }
).map(lambda r: r if r["operator"] == "isNull" else {**r, "value": "Sales"})
groups = st.lists(st.lists(rule, min_size=1, max_size=2), max_size=2)
filters = st.fixed_dictionaries(
    {
        "excludeDisabled": st.booleans(),
        "excludeGuests": st.booleans(),
        "excludeUnlicensed": st.booleans(),
        "include": groups,
        "exclude": groups,
    }
)


@given(users, filters)
def test_the_scope_explanation_agrees_with_the_run_and_names_one_deciding_step(user, document):
    config = parse_config({"filter": document}).filter
    verdict = explain_scope(config, user)
    reason = Scope.from_config(config).exclusion_reason(user)
    assert verdict.reason == reason and verdict.in_scope == (reason is None)
    decided = [step for step in verdict.steps if step.decided]
    if reason is None:
        assert decided == []
    else:
        assert len(decided) == 1
        assert decided[0].outcome in ("excluded", "matched")
        assert reason in verdict.summary


@given(users, st.booleans(), st.booleans(), st.booleans())
def test_the_address_explanation_agrees_with_the_run(user, proxy, other, upn):
    rules = EmailRules(proxy_addresses=proxy, other_mails=other, user_principal_name=upn)
    verdict = explain_addresses(user, rules)
    chosen = resolve_addresses(user, rules)
    assert (verdict.email, verdict.source, verdict.aliases) == (
        chosen.email,
        chosen.source,
        chosen.aliases,
    )
    outcomes = [s.outcome for s in verdict.sources]
    assert outcomes.count("chosen") == (0 if chosen.source is None else 1)
    seen_chosen = False
    for source in verdict.sources:
        if source.outcome == "chosen":
            seen_chosen = True
        elif source.outcome != "off":
            # Before the chosen one each source was unusable (and says why); after it, not needed.
            assert source.outcome == ("notNeeded" if seen_chosen else "unusable")
            assert source.detail.startswith("not needed" if seen_chosen else "no usable address")


def test_each_reason_an_address_source_is_passed_over():
    rules = EmailRules(user_principal_name=False)
    user = {
        "id": "u1",
        "userPrincipalName": "a_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "mail": "a_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "proxyAddresses": ["smtp:alias@contoso.com"],
        "otherMails": ["broken"],
    }
    sources = {s.source: s.detail for s in explain_addresses(user, rules).sources}
    assert "no SMTP: entry" in sources["proxyAddresses"]
    assert "alias@contoso.com are kept as aliases" in sources["proxyAddresses"]
    assert "a guest's #EXT# form" in sources["mail"]
    assert "'broken' is not an email address" in sources["otherMails"]
    assert "email.userPrincipalName is false" in sources["userPrincipalName"]
    only_x500 = explain_addresses({"id": "u", "proxyAddresses": ["X500:/o=x"]}, rules)
    assert "only X500 entries" in only_x500.sources[0].detail


def test_an_include_group_shows_each_rule_and_the_value_it_read():
    rules = {"include": [[{"attribute": "department", "operator": "equals", "value": "Sales"}]]}
    config = parse_config({"filter": rules}).filter
    verdict = explain_scope(config, {"id": "u", "department": "R&D", "accountEnabled": True})
    step = next(s for s in verdict.steps if s.name == "include[0]")
    assert step.outcome == "notMatched"
    assert "department equals 'Sales': does not hold, the user has 'R&D'" in step.detail
    assert [s.name for s in verdict.steps if s.decided] == ["include"]


def test_the_row_difference_leaves_out_what_every_write_changes():
    stored = {"RowKey": "u", "Email": "a@x.com", "Title": "CFO", "SourceHash": "1",
              "SyncedAt": NOW, "RunId": "r1", "EmailMissingSince": NOW}  # fmt: skip
    new = {"RowKey": "u", "Email": "a@x.com", "Title": "CEO", "SourceHash": "2",
           "SyncedAt": NOW + timedelta(hours=1), "RunId": "r2", "City": "Berlin"}  # fmt: skip
    changes = [(c.column, c.stored, c.new) for c in row_difference(new, stored)]
    assert changes == [
        ("EmailMissingSince", "2026-12-02T12:00:00Z", None),
        ("Title", "CFO", "CEO"),
        ("City", None, "Berlin"),
        ("SourceHash", "1", "2"),
    ]
    assert row_difference(stored, stored) == ()


def test_clean_up_verdicts():
    on = CleanUp(enabled=True)

    def verdict(**kw):
        base = dict(stored=True, in_scope=False, has_address=True, missing_since=None,
                    clean_up=on, guard=None, now=NOW)  # fmt: skip
        return explain_clean_up(**{**base, **kw})

    assert verdict(stored=False).removes is False
    assert verdict(in_scope=True).removes is False
    assert verdict().removes is True
    assert "clean-up is off" in verdict(clean_up=CleanUp()).detail
    held = guard_deletions(("u",), 1, CleanUp(enabled=True, max_deletes=0), allow_deletes=False)
    assert verdict(guard=held).removes is False and "maxDeletes (0)" in verdict(guard=held).detail
    recent = verdict(in_scope=True, has_address=False, missing_since=NOW - timedelta(hours=1))
    assert recent.removes is False and "until 2026-12-03T11:00:00Z" in recent.detail
    old = verdict(in_scope=True, has_address=False, missing_since=NOW - timedelta(hours=25))
    assert old.removes is True
