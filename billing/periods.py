"""Billing periods: calendar months in the client's time zone. A month runs from 00:00:00 local
on its first day to 23:59:59 local on its last; instants are stored in UTC. Everything is
computed from local dates with zoneinfo, so a DST change never moves anything across months."""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

from django.utils import timezone

PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
END_OF_DAY = time(23, 59, 59)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_of_instant(instant: datetime, time_zone: str) -> date:
    """The month an aware instant belongs to, seen from the client's zone."""
    return month_of(instant.astimezone(zone(time_zone)).date())


def last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from first's month to last's month, both included."""
    months, current, end = [], month_of(first), month_of(last)
    while current <= end:
        months.append(current)
        current = next_month(current)
    return months


@dataclass(frozen=True)
class Period:
    month: date
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @cached_property
    def text(self) -> str:
        """Month, start and end as one string (item fingerprints; Periods are cached and reused)."""
        return f"{self.month}\x1f{self.start}\x1f{self.end}"


@lru_cache(maxsize=4096)
def period_of(month: date, time_zone: str) -> Period:
    tz = zone(time_zone)
    start = datetime.combine(month, time.min, tzinfo=tz)
    end = datetime.combine(last_day(month), END_OF_DAY, tzinfo=tz)
    return Period(month, start.astimezone(UTC), end.astimezone(UTC))


def current_month(time_zone: str) -> date:
    return month_of_instant(timezone.now(), time_zone)


def parse_period(value: str) -> date:
    """'2026-10' -> date(2026, 10, 1); ValueError otherwise."""
    match = PERIOD_PATTERN.match(value or "")
    if not match:
        raise ValueError(f"{value!r} is not a period; use YYYY-MM, e.g. 2026-10.")
    return date(int(match.group(1)), int(match.group(2)), 1)
