"""devtools/ncrontab.next_after: the dev server's timer fires when the Functions timer would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.ncrontab import next_after

AT = datetime(2026, 12, 2, 13, 7, 30, 500000, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */15 * * * *", datetime(2026, 12, 2, 13, 15, 0, tzinfo=UTC)),  # the app's default
        ("*/2 * * * * *", datetime(2026, 12, 2, 13, 7, 32, tzinfo=UTC)),
        ("30 7 13 * * *", datetime(2026, 12, 3, 13, 7, 30, tzinfo=UTC)),  # this second is past
        ("0 0 9 * * 1-5", datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)),  # weekdays at 9
        ("0 0 9 * * 0", datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)),  # Sunday is 0
        ("0 0 0 1 1 *", datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC)),
        ("0 5,50 * * * *", datetime(2026, 12, 2, 13, 50, 0, tzinfo=UTC)),
    ],
)
def test_the_next_moment(expression, expected):
    assert next_after(expression, AT) == expected


@pytest.mark.parametrize(
    "expression", ["* * * * *", "61 * * * * *", "0 0 0 31 2 *", "*/0 * * * * *"]
)
def test_what_names_no_moment_is_refused(expression):
    with pytest.raises(ValueError):
        next_after(expression, AT)
