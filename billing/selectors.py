"""Reads of billing data that other apps use. `settlement_totals` is the single place that
computes what a settlement is worth; for now it prices billable time at the default hourly rate
(BILLING_DEFAULT_HOURLY_RATE, in DEFAULT_CURRENCY) and adds billable expenses at their amount.
The billing items of the reconciliation issue will replace the pricing here, and only here."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import F, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from tickets.models import Expense, TimeEntry

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Totals:
    minutes: int = 0
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @property
    def hours(self) -> Decimal:
        return money(Decimal(self.minutes) / 60)

    def add(self, other: "Totals") -> None:
        self.minutes += other.minutes
        for currency, amount in other.amounts.items():
            self.amounts[currency] += amount

    def as_dict(self) -> dict:
        return {"minutes": self.minutes, "hours": str(self.hours),
                "amounts": {currency: str(money(amount)) for currency, amount in sorted(self.amounts.items())}}


@dataclass
class SettlementTotals:
    total: Totals = field(default_factory=Totals)
    tickets: dict[int, Totals] = field(default_factory=lambda: defaultdict(Totals))


def _time_price(minutes: int) -> Decimal:
    return money(Decimal(minutes) / 60 * Decimal(settings.BILLING_DEFAULT_HOURLY_RATE))


def settlement_totals(settlement_ids) -> dict[int, SettlementTotals]:
    """Per settlement and per linked ticket: billable minutes and money dated inside the
    settlement's period. Two queries, whatever the number of settlements."""
    from settlements.models import SettlementTicket

    ids = list(settlement_ids)
    result: dict[int, SettlementTotals] = {pk: SettlementTotals() for pk in ids}
    minutes_in_period = (
        TimeEntry.objects.filter(ticket_id=OuterRef("ticket_id"), billable=True,
                                 work_date__gte=OuterRef("settlement__period_start"),
                                 work_date__lte=OuterRef("settlement__period_end"))
        .order_by().values("ticket_id").annotate(total=Sum("minutes")).values("total")
    )
    links = (SettlementTicket.objects.filter(settlement_id__in=ids)
             .annotate(minutes=Coalesce(Subquery(minutes_in_period, output_field=IntegerField()), 0))
             .values_list("settlement_id", "ticket_id", "minutes"))
    currency = settings.DEFAULT_CURRENCY
    for settlement_id, ticket_id, minutes in links:
        line = result[settlement_id].tickets[ticket_id]
        line.minutes += minutes
        if minutes:
            line.amounts[currency] += _time_price(minutes)
    expenses = (Expense.objects.filter(
        billable=True, ticket__settlement_links__settlement_id__in=ids,
        date__gte=F("ticket__settlement_links__settlement__period_start"),
        date__lte=F("ticket__settlement_links__settlement__period_end"),
    ).values_list("ticket__settlement_links__settlement_id", "ticket_id", "currency").annotate(total=Sum("amount")))
    for settlement_id, ticket_id, expense_currency, amount in expenses:
        result[settlement_id].tickets[ticket_id].amounts[expense_currency] += amount
    for totals in result.values():
        for line in totals.tickets.values():
            totals.total.add(line)
    return result
