"""SPEC §4 calculation rules, checked to the cent: contract in force, rounding, rate card,
timebank, monthly fee, expenses, sales lines, VAT and totals, and the unmatched report."""

from datetime import date
from decimal import Decimal

import pytest

from billing import periods
from billing.choices import SourceType, UnmatchedReason
from billing.models import BillingLog, SalesLine, UnmatchedSource
from billing.money import hours, line_total, line_vat, rounded_minutes
from tests.billing.conftest import live_items, reconcile
from tests.factories import ContractFactory, ExpenseFactory, TimeEntryFactory
from tickets.choices import Activity

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.mark.parametrize(("minutes", "increment", "expected"), [
    (7, 15, 15), (15, 15, 15), (16, 15, 30), (1, 60, 60), (61, 30, 90), (7, None, 7),
])
def test_minutes_round_up_to_the_increment(minutes, increment, expected):
    assert rounded_minutes(minutes, increment) == expected


def test_hours_are_minutes_over_sixty_half_up_to_four_places():
    assert hours(7) == D("0.1167") and hours(20) == D("0.3333") and hours(50) == D("0.8333")
    assert line_total(D("0.1167"), D("1000")) == D("116.70")
    assert line_total(D("0.0001"), D("50")) == D("0.01")  # 0.005 rounds half-up
    assert line_vat(D("116.70"), D("0.25")) == D("29.18")  # 29.175 -> 29.18


def test_seven_minutes_with_a_fifteen_minute_increment_bill_a_quarter_hour(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx], rounding_minutes=15, hourly_rate="1200.00")
    entry = TimeEntryFactory(ticket=ticket, minutes=7, work_date=date(2026, 10, 5))
    reconcile()
    item = live_items()[f"ticket_time:{entry.pk}"]
    assert (item.qty, item.unit_price, item.total) == (D("0.25"), D("1200"), D("300.00"))
    assert (item.currency, item.vat_rate, item.client_id) == ("NOK", D("0.25"), customer.pk)
    assert item.description.startswith("MNX-1 Login fails — Development")


def test_rate_card_entry_wins_over_the_default_rate(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00", rates={Activity.SUPPORT: "800.00"})
    support = TimeEntryFactory(ticket=ticket, minutes=90, activity=Activity.SUPPORT)
    development = TimeEntryFactory(ticket=ticket, minutes=90, activity=Activity.DEVELOPMENT)
    reconcile()
    items = live_items()
    assert items[f"ticket_time:{support.pk}"].total == D("1200.00")
    assert items[f"ticket_time:{development.pk}"].total == D("1500.00")


def test_the_contract_in_force_on_the_entrys_date_prices_it(mnx, ticket, customer):
    old = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 1, 1), valid_to=date(2026, 9, 30),
                          hourly_rate="900.00")
    new = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 10, 1), hourly_rate="1100.00")
    september = TimeEntryFactory(ticket=ticket, minutes=60, work_date=date(2026, 9, 30))
    october = TimeEntryFactory(ticket=ticket, minutes=60, work_date=date(2026, 10, 1))
    reconcile()
    items = live_items()
    assert (items[f"ticket_time:{september.pk}"].contract_id, items[f"ticket_time:{september.pk}"].total) == (
        old.pk, D("900.00"))
    assert (items[f"ticket_time:{october.pk}"].contract_id, items[f"ticket_time:{october.pk}"].total) == (
        new.pk, D("1100.00"))


def test_timebank_covers_hours_in_date_order_and_splits_the_entry_on_the_boundary(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00", timebank_hours=D("2"),
                    overage_rate="1500.00")
    # Created out of order: the bank is drawn by (work_date, id), not by creation.
    third = TimeEntryFactory(ticket=ticket, minutes=60, work_date=date(2026, 10, 20))
    first = TimeEntryFactory(ticket=ticket, minutes=30, work_date=date(2026, 10, 2))
    second = TimeEntryFactory(ticket=ticket, minutes=120, work_date=date(2026, 10, 9))
    november = TimeEntryFactory(ticket=ticket, minutes=60, work_date=date(2026, 11, 2))
    reconcile()
    items = live_items()
    assert items[f"timebank:{first.pk}"].qty == D("0.5") and items[f"timebank:{first.pk}"].total == 0
    assert f"ticket_time:{first.pk}" not in items
    # 1.5 h left in the bank: the 2 h entry is split into 1.5 covered and 0.5 at the overage rate.
    assert items[f"timebank:{second.pk}"].qty == D("1.5")
    assert (items[f"ticket_time:{second.pk}"].qty, items[f"ticket_time:{second.pk}"].total) == (D("0.5"), D("750.00"))
    assert f"timebank:{third.pk}" not in items and items[f"ticket_time:{third.pk}"].total == D("1500.00")
    # A new month, a full bank again (unused hours do not roll over).
    assert items[f"timebank:{november.pk}"].qty == D("1") and f"ticket_time:{november.pk}" not in items
    assert items[f"timebank:{second.pk}"].source_type == SourceType.TIMEBANK


def test_timebank_overage_without_an_overage_rate_uses_the_normal_rate(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00", timebank_hours=D("1"),
                    rates={Activity.DESIGN: "1300.00"})
    entry = TimeEntryFactory(ticket=ticket, minutes=90, activity=Activity.DESIGN)
    reconcile()
    assert live_items()[f"ticket_time:{entry.pk}"].total == D("650.00")


def test_monthly_fee_once_per_month_up_to_the_current_month(mnx, customer, monkeypatch):
    monkeypatch.setattr(periods, "current_month", lambda time_zone: date(2026, 11, 1))
    contract = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 8, 15), monthly_fee="5000.00")
    reconcile()
    reconcile()
    fees = sorted(key for key in live_items() if key.startswith("contract_period:"))
    assert fees == [f"contract_period:{contract.pk}:2026-{month:02d}" for month in (8, 9, 10, 11)]
    fee = live_items()[f"contract_period:{contract.pk}:2026-11"]
    assert (fee.qty, fee.unit_price, fee.total, fee.source_date) == (1, D("5000"), D("5000.00"), date(2026, 11, 1))


def test_monthly_fee_stops_with_the_contract_and_a_period_run_handles_only_its_month(mnx, customer):
    contract = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 2, 1),
                               valid_to=date(2026, 3, 10), monthly_fee="100.00")
    reconcile(period=date(2026, 3, 1))
    assert list(live_items()) == [f"contract_period:{contract.pk}:2026-03"]
    reconcile()
    assert sorted(live_items()) == [f"contract_period:{contract.pk}:2026-02", f"contract_period:{contract.pk}:2026-03"]


def test_expense_in_the_clients_currency_is_billed_and_another_currency_is_unmatched(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx])
    nok = ExpenseFactory(ticket=ticket, amount=D("249.90"), currency="NOK")
    eur = ExpenseFactory(ticket=ticket, amount=D("20.00"), currency="EUR")
    run = reconcile()
    item = live_items()[f"expense:{nok.pk}"]
    assert (item.qty, item.unit_price, item.total) == (1, D("249.90"), D("249.90"))
    assert f"expense:{eur.pk}" not in live_items()
    assert run.unmatched == 1
    row = UnmatchedSource.objects.get(run=run)
    assert (row.source_type, row.source_id, row.reason) == ("expense", eur.pk, UnmatchedReason.CURRENCY_MISMATCH)


def test_sources_without_a_contract_are_reported_never_dropped(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 10, 1))
    before = TimeEntryFactory(ticket=ticket, work_date=date(2026, 9, 30))
    expense = ExpenseFactory(ticket=ticket, date=date(2026, 9, 1))
    TimeEntryFactory(ticket=ticket, work_date=date(2026, 9, 29), billable=False)  # not billable: not reported
    covered = TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 1))
    run = reconcile()
    assert run.unmatched == 2
    assert set(UnmatchedSource.objects.filter(run=run).values_list("source_type", "source_id", "reason")) == {
        ("ticket_time", before.pk, "no_contract"), ("expense", expense.pk, "no_contract")}
    assert set(live_items()) == {f"ticket_time:{covered.pk}"}
    # A period-scoped run reports only its month.
    assert reconcile(period=date(2026, 9, 1)).unmatched == 2
    assert reconcile(period=date(2026, 10, 1)).unmatched == 0


def test_sales_lines_bill_their_own_qty_and_price(customer, mnx):
    line = SalesLine.objects.create(client=customer, date=date(2026, 10, 31), description="Licences",
                                    qty=D("3"), unit_price=D("333.335"))
    reconcile()
    item = live_items()[f"sales_order:{line.pk}"]
    assert (item.total, item.contract_id, item.period_month) == (D("1000.01"), None, date(2026, 10, 1))


def test_every_run_is_recorded_with_counts_and_logged(mnx, ticket, customer):
    ContractFactory(client=customer, projects=[mnx])
    TimeEntryFactory(ticket=ticket)
    run = reconcile()
    assert (run.trigger, run.status, run.created, run.unchanged, run.total, run.processed) == (
        "manual", "succeeded", 1, 0, 1, 1)
    assert run.duration_ms is not None and run.finished_at >= run.started_at
    log = BillingLog.objects.get(reconciliation_run=run)
    assert (log.action, log.item_count, log.scope) == ("reconcile", 1, {})
    assert "created 1" in log.summary and "unmatched 0" in log.summary


def test_items_carry_the_clients_period_and_zone(mnx, ticket, customer):
    customer.time_zone = "America/New_York"
    customer.save()
    ContractFactory(client=customer, projects=[mnx])
    entry = TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 31))
    reconcile()
    item = live_items()[f"ticket_time:{entry.pk}"]
    period = periods.period_of(date(2026, 10, 1), "America/New_York")
    assert (item.period_month, item.period_start, item.period_end) == (date(2026, 10, 1), period.start, period.end)
