"""The next moment an NCRONTAB expression names, for the development server's timer.

The six fields of the Functions timer trigger, `{second} {minute} {hour} {day} {month}
{day-of-week}` (learn.microsoft.com/azure/azure-functions/functions-bindings-timer, "NCRONTAB
expressions"): each `*`, a number, a range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`; days
of the week 0-6 from Sunday. Names of months and days are not supported here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _values(field: str, low: int, high: int) -> frozenset[int]:
    found: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (int(x) for x in span.split("-", 1))
        else:
            start = end = int(span)
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return frozenset(found)


def next_after(expression: str, moment: datetime) -> datetime:
    """The first second after `moment` (to the second) that `expression` names."""
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError("an NCRONTAB expression has 6 fields")
    second, minute, hour, day, month, weekday = (
        _values(f, low, high) for f, (low, high) in zip(fields, _BOUNDS, strict=True)
    )
    at = moment.replace(microsecond=0) + timedelta(seconds=1)
    limit = at + timedelta(days=366 * 5)
    while at < limit:
        if at.month not in month or at.day not in day or (at.isoweekday() % 7) not in weekday:
            at = (at + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        elif at.hour not in hour:
            at = (at + timedelta(hours=1)).replace(minute=0, second=0)
        elif at.minute not in minute:
            at = (at + timedelta(minutes=1)).replace(second=0)
        elif at.second not in second:
            at += timedelta(seconds=1)
        else:
            return at
    raise ValueError(f"{expression!r} names no moment in five years")
