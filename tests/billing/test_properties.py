"""Property-based tests (hypothesis): money stays exact, and reconciling after every edit of a
random sequence ends in exactly the items a from-scratch calculation of the final state gives."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.choices import LIVE_STATUSES
from billing.models import BillingItem, Client
from billing.money import line_total, line_vat
from billing.reconciliation import Scope, reconcile_now
from billing.selectors import totals_by_currency
from billing.sources import COMPARED_FIELDS, ClientScope
from tests.factories import ContractFactory, TimeEntryFactory
from tickets.choices import Activity
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db

HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ACTIVITIES = [Activity.DEVELOPMENT, Activity.SUPPORT, Activity.DESIGN]
money_values = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2)
quantities = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("999.9999"), places=4)
vat_rates = st.sampled_from([Decimal("0"), Decimal("0.12"), Decimal("0.15"), Decimal("0.25")])
currencies = st.sampled_from(["NOK", "EUR", "SEK"])


@HYPOTHESIS
@given(st.lists(st.tuples(quantities, money_values, vat_rates, currencies), min_size=1, max_size=40))
def test_totals_are_sums_of_rounded_lines(lines):
    rows = [(currency, line_total(qty, price), vat) for qty, price, vat, currency in lines]
    totals = totals_by_currency(rows)
    for currency in {row[0] for row in rows}:
        mine = [row for row in rows if row[0] == currency]
        assert totals[currency].net == sum(total for _, total, _ in mine)
        assert totals[currency].vat == sum(line_vat(total, vat) for _, total, vat in mine)
        assert totals[currency].gross == totals[currency].net + totals[currency].vat
        # every part is a whole number of cents
        assert totals[currency].net.as_tuple().exponent >= -2 and totals[currency].vat.as_tuple().exponent >= -2


def _live_state() -> dict[str, tuple]:
    return {item.source_key: tuple(getattr(item, name) for name in COMPARED_FIELDS)
            for item in BillingItem.objects.filter(status__in=LIVE_STATUSES)}


def _from_scratch() -> dict[str, tuple]:
    from billing.reconciliation import _compute_specs

    state = {}
    for client in Client.objects.all():
        for key, spec in _compute_specs(ClientScope.load(client)).items():
            values = spec.item_values()
            state[key] = tuple(values[name] for name in COMPARED_FIELDS)
    return state


edits = st.lists(st.one_of(
    st.tuples(st.just("create"), st.integers(1, 600), st.integers(0, 60), st.sampled_from(ACTIVITIES)),
    st.tuples(st.just("minutes"), st.integers(0, 30), st.integers(1, 600)),
    st.tuples(st.just("date"), st.integers(0, 30), st.integers(0, 60)),
    st.tuples(st.just("activity"), st.integers(0, 30), st.sampled_from(ACTIVITIES)),
    st.tuples(st.just("billable"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 30)),
    st.tuples(st.just("contract"), st.sampled_from([None, Decimal("1"), Decimal("3.5")]),
              st.sampled_from([None, 15, 30]), st.sampled_from(["900.00", "1000.00"])),
), min_size=1, max_size=25)


EDITED_FIELDS = {"minutes": "minutes", "activity": "activity", "billable": "billable", "date": "work_date"}


def _apply_edit(edit, ticket, user, contract) -> Scope:
    kind, *args = edit
    entries = list(TimeEntry.objects.order_by("pk"))
    if kind == "create":
        minutes, day, activity = args
        entry = TimeEntryFactory(ticket=ticket, user=user, minutes=minutes, activity=activity,
                                 work_date=date(2026, 9, 15) + timedelta(days=day))
        return Scope(record_kind="time_entry", record_id=entry.pk)
    if kind == "contract":
        timebank, rounding, rate = args
        type(contract).objects.filter(pk=contract.pk).update(timebank_hours=timebank, rounding_minutes=rounding,
                                                             hourly_rate=Decimal(rate))
        return Scope(contract_id=contract.pk)
    if not entries:
        return Scope()
    entry = entries[args[0] % len(entries)]
    scope = Scope(record_kind="time_entry", record_id=entry.pk)
    if kind == "delete":
        entry.delete()
    else:
        value = date(2026, 9, 15) + timedelta(days=args[1]) if kind == "date" else args[1]
        TimeEntry.objects.filter(pk=entry.pk).update(**{EDITED_FIELDS[kind]: value})
    return scope


@HYPOTHESIS
@given(edits)
def test_reconciling_after_each_edit_equals_reconciling_the_final_state_from_scratch(owner, ticket, mnx, customer,
                                                                                     sequence):
    with transaction.atomic():
        contract = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 9, 1),
                                   overage_rate="1500.00", rates={Activity.SUPPORT: "700.00"})
        for edit in sequence:
            reconcile_now(_apply_edit(edit, ticket, owner, contract), trigger="on_save")
        assert _live_state() == _from_scratch()
        # ... and a full rerun changes nothing.
        rerun = reconcile_now(Scope(), trigger="manual")
        assert (rerun.created, rerun.superseded) == (0, 0)
        transaction.set_rollback(True)
