"""Periods are calendar months in the client's zone, from 00:00:00 local on the first day to
23:59:59 local on the last. The DST weekends of 2026 (29 March, 25 October in Europe/Oslo) must
not move anything across months."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing import periods
from tests.billing.conftest import live_items, reconcile
from tests.factories import ContractFactory, TimeEntryFactory

OSLO = ZoneInfo("Europe/Oslo")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=OSLO)


@pytest.mark.parametrize(("month", "start_utc", "end_utc"), [
    # March starts in winter time (+1) and ends in summer time (+2).
    (date(2026, 3, 1), datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC)),
    # October starts in summer time (+2) and ends in winter time (+1).
    (date(2026, 10, 1), datetime(2026, 9, 30, 22, 0, tzinfo=UTC), datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC)),
    (date(2026, 11, 1), datetime(2026, 10, 31, 23, 0, tzinfo=UTC), datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC)),
])
def test_period_boundaries_are_local_midnight_and_one_second_before(month, start_utc, end_utc):
    period = periods.period_of(month, "Europe/Oslo")
    assert (period.start, period.end) == (start_utc, end_utc)
    assert period.start.astimezone(OSLO).time().isoformat() == "00:00:00"
    assert period.end.astimezone(OSLO).time().isoformat() == "23:59:59"


@pytest.mark.parametrize(("instant", "month"), [
    (local(2026, 3, 31, 23, 30), date(2026, 3, 1)),   # 21:30 UTC
    (local(2026, 4, 1, 0, 30), date(2026, 4, 1)),     # 22:30 UTC on 31 March
    (local(2026, 10, 31, 23, 30), date(2026, 10, 1)),  # 22:30 UTC
    (local(2026, 11, 1, 0, 30), date(2026, 11, 1)),   # 23:30 UTC on 31 October
    (local(2026, 3, 29, 3, 30), date(2026, 3, 1)),    # the hour after the spring-forward gap
    (local(2026, 10, 25, 2, 30, 0), date(2026, 10, 1)),  # the repeated hour (first pass)
    (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=OSLO), date(2026, 10, 1)),  # ... and the second
])
def test_instants_near_month_ends_and_dst_changes_fall_in_their_local_month(instant, month):
    assert periods.month_of_instant(instant.astimezone(UTC), "Europe/Oslo") == month


def test_a_period_never_ends_before_it_starts_and_months_tile_without_gaps():
    months = periods.months_between(date(2025, 12, 15), date(2027, 1, 2))
    assert len(months) == 14
    for month in months:
        this, following = periods.period_of(month, "Europe/Oslo"), periods.period_of(periods.next_month(month),
                                                                                     "Europe/Oslo")
        assert (following.start - this.end).total_seconds() == 1


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "", "2026-10-01", "october"])
def test_parse_period_refuses_anything_but_yyyy_mm(bad):
    with pytest.raises(ValueError):
        periods.parse_period(bad)


@pytest.mark.django_db
@pytest.mark.parametrize(("work_date", "month"), [
    (date(2026, 3, 28), date(2026, 3, 1)), (date(2026, 3, 29), date(2026, 3, 1)), (date(2026, 3, 31), date(2026, 3, 1)),
    (date(2026, 4, 1), date(2026, 4, 1)), (date(2026, 10, 25), date(2026, 10, 1)),
    (date(2026, 10, 31), date(2026, 10, 1)), (date(2026, 11, 1), date(2026, 11, 1)),
])
def test_time_entries_on_dst_weekends_and_month_ends_stay_in_their_local_month(mnx, ticket, customer, work_date,
                                                                               month):
    ContractFactory(client=customer, projects=[mnx])
    entry = TimeEntryFactory(ticket=ticket, work_date=work_date)
    reconcile(period=month)
    item = live_items()[f"ticket_time:{entry.pk}"]
    expected = periods.period_of(month, "Europe/Oslo")
    assert (item.period_month, item.period_start, item.period_end) == (month, expected.start, expected.end)
    assert item.period_start <= datetime.combine(work_date, datetime.min.time(), tzinfo=OSLO) <= item.period_end
