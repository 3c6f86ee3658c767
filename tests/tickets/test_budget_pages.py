"""Project budgets on the dashboard: hours and money consumed against budget, the 80 % warning and
100 % states (in words, not only colour), the money meter billing registers (billing items that
stand for billed work; void, credited, superseded and credit-note lines left out), "not tracked"
without a meter, and the server-rendered burn-up chart with its table fallback."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from billing import services as billing_services
from billing.choices import ItemStatus, SourceType
from billing.models import BillingItem
from billing.reconciliation import Scope, reconcile_now
from tests.billing.conftest import grant_billing
from tests.factories import ContractFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tickets.extensions import budget_meter, register_budget_meter, unregister_budget_meter
from tickets.selectors import BudgetState, BurnupChart, Meter, burnup_series

pytestmark = pytest.mark.django_db


@pytest.fixture
def mnx():
    return ProjectFactory(key="MNX", budget_hours=Decimal("10"), budget_amount=Decimal("10000"),
                          budget_currency="NOK")


@pytest.fixture
def member(mnx):
    user = UserFactory(username="member")
    grant(user, mnx, "member")
    return user


@pytest.fixture
def ticket(mnx):
    return TicketFactory(project=mnx)


@pytest.fixture
def client(member):
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def no_meter():
    """As if billing were not installed: no budget meter registered."""
    meter = unregister_budget_meter()
    yield
    register_budget_meter(meter)


def log_hours(ticket, user, *hours, start=date(2026, 10, 5)):
    for n, amount in enumerate(hours):
        TimeEntryFactory(ticket=ticket, user=user, minutes=int(amount * 60), work_date=start + timedelta(days=n))


def reconcile():
    reconcile_now(Scope(), trigger="manual")


def budget_row(client, key="MNX"):
    return next(row for row in client.get("/dashboard/projects/").context["rows"] if row.project.key == key)


# --- Hours ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("hours", "state", "text"), [
    ((3, 4), "ok", None),
    ((4, 4), "warn", "Warning: 80 % of the hours budget used"),
    ((6, 4), "over", "Hours budget used up (100 %)"),
    ((6, 6), "over", "Hours budget used up (120 %)"),
])
def test_hours_budget_states(client, member, ticket, hours, state, text):
    log_hours(ticket, member, *hours)
    row = budget_row(client)
    assert row.hours.consumed == Decimal(sum(hours)) and row.hours.state == state
    listing = client.get("/dashboard/projects/").content.decode()
    detail = client.get("/dashboard/projects/MNX/").content.decode()
    home = client.get("/dashboard/").content.decode()
    assert f'data-budget="hours" data-state="{state}"' in listing and f'data-budget-state="{state}"' in detail
    if text is None:
        assert "data-budget-alert" not in detail and 'data-project="MNX"' not in home
    else:
        assert text in listing and text in detail
        assert f'data-budget-alert="{state}"' in detail
        assert 'data-project="MNX"' in home and text in home


def test_hours_count_every_entry_of_the_project(client, member, ticket, mnx):
    other = UserFactory(username="other")
    grant(other, mnx, "member")
    TimeEntryFactory(ticket=ticket, user=other, minutes=30, billable=False)
    log_hours(ticket, member, 1)
    assert budget_row(client).hours.consumed == Decimal("1.50")
    assert "1.50 of 10.00 h" in client.get("/dashboard/projects/MNX/").content.decode()


def test_project_without_budget_shows_consumption_only(client, member):
    plain = ProjectFactory(key="PLAIN")
    grant(member, plain, "member")
    log_hours(TicketFactory(project=plain), member, 2)
    row = budget_row(client, "PLAIN")
    assert row.state == BudgetState.NONE and not row.hours.has_budget
    assert "2.00 h, no budget" in client.get("/dashboard/projects/PLAIN/").content.decode()


# --- Money ------------------------------------------------------------------------------------

@pytest.fixture
def billed(mnx, member, ticket):
    """8 h at 1000 NOK, reconciled into billing items: 8000 of the 10000 NOK budget."""
    ContractFactory(projects=[mnx], hourly_rate="1000.00")
    log_hours(ticket, member, 5, 3)
    reconcile()
    return BillingItem.objects.filter(project=mnx).order_by("source_date")


def test_money_meter_from_billing_items(client, billed):
    row = budget_row(client)
    assert row.money_tracked and row.money.consumed == Decimal("8000.00") and row.money.state == "warn"
    html = client.get("/dashboard/projects/MNX/").content.decode()
    assert "8,000.00 NOK of 10,000.00 NOK" in html
    assert "Warning: 80 % of the money budget used" in html and 'data-chart="money"' in html


def test_void_credited_superseded_and_credit_lines_do_not_count(client, billed, mnx):
    clerk = grant_billing(UserFactory(username="clerk"), "billing.manage")
    first, second = billed
    billing_services.item_void(actor=clerk, item=first, reason="Goodwill")
    assert budget_row(client).money.consumed == Decimal("3000.00")
    # A credited line and the credit note's negative line: the original is reversed, the
    # source is billed again by a new item, so neither of the two counts.
    BillingItem.objects.filter(pk=second.pk).update(status=ItemStatus.CREDITED)
    credit = BillingItem.objects.get(pk=second.pk)
    credit.pk, credit.source_key, credit.source_type, credit.status = None, "credit:x", SourceType.CREDIT, "invoiced"
    credit.total, credit.original_item_id = -second.total, second.pk
    credit.save()
    superseded = BillingItem.objects.get(pk=second.pk)
    superseded.pk, superseded.source_key, superseded.status = None, "superseded:x", ItemStatus.SUPERSEDED
    superseded.save()
    assert budget_row(client).money.consumed == Decimal("0.00")
    assert budget_row(client).money.state == "ok"


def test_money_in_other_currencies_is_shown_apart(client, billed):
    extra = billed.first()
    extra.pk, extra.source_key, extra.currency, extra.total = None, "sales_order:eur", "EUR", Decimal("99.50")
    extra.save()
    row = budget_row(client)
    assert row.money.consumed == Decimal("8000.00") and row.other_currencies == {"EUR": Decimal("99.50")}
    assert "99.50 EUR" in client.get("/dashboard/projects/MNX/").content.decode()


def test_money_budget_used_up(client, billed, member, ticket):
    log_hours(ticket, member, 2, start=date(2026, 10, 20))
    reconcile()
    assert budget_row(client).money.state == "over"
    assert "Money budget used up (100 %)" in client.get("/dashboard/projects/").content.decode()


def test_without_a_meter_money_is_not_tracked(client, billed, no_meter):
    assert budget_meter() is None
    row = budget_row(client)
    assert not row.money_tracked and row.money.state == BudgetState.NONE
    for url in ("/dashboard/projects/", "/dashboard/projects/MNX/"):
        assert 'data-money="not-tracked"' in client.get(url).content.decode()
    assert 'data-chart="money"' not in client.get("/dashboard/projects/MNX/").content.decode()


def test_billing_registers_its_meter():
    from billing.budgets import BillingBudgetMeter

    assert isinstance(budget_meter(), BillingBudgetMeter)


# --- Burn-up chart ----------------------------------------------------------------------------

COORDINATE = r"-?\d+(\.\d+)?"


def test_project_page_draws_an_accessible_burnup_chart(client, billed):
    html = client.get("/dashboard/projects/MNX/").content.decode()
    assert html.count('<svg class="chart"') == 2
    assert 'role="img" aria-labelledby="chart-hours-title chart-hours-desc"' in html
    assert '<title id="chart-hours-title">Hours consumed over time</title>' in html
    assert 'data-line="budget"' in html and 'data-line="warn"' in html and 'data-line="actual"' in html
    assert "Show the data as a table" in html and "<th scope=\"col\">Date</th>" in html
    assert "8.00" in html  # the cumulative hours at the end, in the table


def test_chart_coordinates_are_not_localized(client, billed):
    client.cookies["django_language"] = "pl"
    html = client.get("/dashboard/projects/MNX/").content.decode()
    assert 'lang="pl"' in html
    points = re.search(r'data-line="actual" points="([^"]+)"', html).group(1)
    assert re.fullmatch(rf"{COORDINATE},{COORDINATE}( {COORDINATE},{COORDINATE})*", points)
    for value in re.findall(r' y1="([^"]+)"', html):
        assert re.fullmatch(COORDINATE, value)
    assert "8 000,00 NOK" in html or "8\xa0000,00 NOK" in html


def test_burnup_is_cumulative_per_day_for_short_spans():
    series = burnup_series([(date(2026, 10, 2), Decimal("2")), (date(2026, 10, 4), Decimal("3"))], Decimal("10"),
                           start=date(2026, 10, 1), end=date(2026, 10, 5))
    assert series.bucket == "day"
    assert [value for _, value in series.points] == [0, 2, 2, 5, 5]
    assert series.warn_level == Decimal("8.0")


def test_burnup_is_weekly_for_long_spans():
    series = burnup_series([(date(2026, 1, 7), Decimal("1")), (date(2026, 6, 30), Decimal("4"))], None,
                           start=date(2026, 1, 7), end=date(2026, 7, 1))
    assert series.bucket == "week"
    assert series.points[0] == (date(2026, 1, 5), Decimal("1"))  # weeks start on Monday
    assert series.points[-1] == (date(2026, 6, 29), Decimal("5"))
    assert len(series.points) == 26


def test_chart_geometry_puts_the_budget_above_the_warning_line():
    series = burnup_series([(date(2026, 10, 1), Decimal("4"))], Decimal("10"),
                           start=date(2026, 10, 1), end=date(2026, 10, 3))
    chart = BurnupChart.of(series)
    assert chart.top < chart.budget_y < chart.warn_y < chart.bottom
    assert chart.line.count(" ") == 2 and chart.end[0] == chart.right
    assert [tick.label for tick in chart.x_ticks] == [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)]


@pytest.mark.parametrize(("consumed", "budget", "state", "percent"), [
    ("0", "0", "ok", None), ("1", "0", "over", None), ("7.99", "10", "ok", 79), ("8", "10", "warn", 80),
    ("9.999", "10", "warn", 99), ("10", "10", "over", 100), ("15", "10", "over", 150),
    ("5", None, "none", None), (None, "10", "none", None),
])
def test_meter_states(consumed, budget, state, percent):
    meter = Meter(None if consumed is None else Decimal(consumed), None if budget is None else Decimal(budget))
    assert meter.state == state and meter.percent == percent
    assert 0 <= meter.bar_percent <= 100


def test_burnup_of_any_span_stays_within_the_point_limit():
    from tickets.selectors import MAX_CHART_POINTS

    dated = [(date(1, 1, 1), Decimal("2")), (date(2026, 10, 1), Decimal("3")), (date(9999, 12, 31), Decimal("5"))]
    series = burnup_series(dated, Decimal("100"), start=date(1, 1, 1), end=date(9999, 12, 31))
    assert series.bucket == "year" and len(series.points) == MAX_CHART_POINTS
    # Amounts before the first point open the curve; nothing is lost.
    assert series.points[0][1] == Decimal("5") and series.points[-1][1] == Decimal("10")


def test_burnup_is_monthly_for_spans_of_years():
    series = burnup_series([(date(2022, 3, 15), Decimal("1")), (date(2026, 6, 30), Decimal("4"))], None,
                           start=date(2022, 3, 15), end=date(2026, 6, 30))
    assert series.bucket == "month"
    assert series.points[0] == (date(2022, 3, 1), Decimal("1"))
    assert series.points[-1] == (date(2026, 6, 1), Decimal("5"))
