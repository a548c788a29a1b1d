"""Which OData filters Graph serves only as advanced queries (ConsistencyLevel + $count)."""

from __future__ import annotations

import pytest

from sync_core.graph import needs_advanced_query


@pytest.mark.parametrize(
    ("odata", "advanced"),
    [
        ("accountEnabled eq true", False),
        ("startswith(displayName,'A')", False),
        ("userType eq 'Member' and accountEnabled eq true", False),
        ("userType ne 'Guest'", True),
        ("not(startswith(displayName,'Room'))", True),
        ("NOT startswith(displayName,'Room')", True),
        ("endswith(mail,'@contoso.com')", True),
        ("endsWith (mail, '@contoso.com')", True),
        ("assignedLicenses/$count ne 0", True),
        ("startswith(displayName,'not ne endswith(')", False),  # words inside a literal
        ("department eq 'O''Neill ne'", False),  # escaped quote stays inside the literal
    ],
)
def test_advanced_query_detection(odata, advanced):
    assert needs_advanced_query(odata) is advanced
