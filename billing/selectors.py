"""Reads of billing data that other apps use. `settlement_totals` is the single place that
computes what a settlement is worth: billable minutes from the time entries, money from the
billing items of the linked tickets (pending, reserved or invoiced; void, superseded and credited
items are not billed), both dated inside the settlement's period."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Subquery, Sum
from django.db.models.functions import Coalesce

from tickets.models import Ticket, TimeEntry

from .choices import ItemStatus, SourceType
from .models import BillingItem, Invoice
from .money import line_vat, money

# How billing items are listed everywhere (API, MCP): their related rows joined, in this order.
ITEM_RELATED = ("project", "ticket__project", "superseded_by")
ITEM_ORDERING = ("client_id", "period_month", "source_type", "source_date", "id")

BILLED_STATUSES = (ItemStatus.PENDING, ItemStatus.RESERVED, ItemStatus.INVOICED)
TICKET_SOURCES = (SourceType.TICKET_TIME, SourceType.TIMEBANK, SourceType.EXPENSE)


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


def settlement_totals(settlement_ids, *, readable_by=None) -> dict[int, SettlementTotals]:
    """Per settlement and per linked ticket: billable minutes and billed money dated inside the
    settlement's period. Two queries, whatever the number of settlements.

    With `readable_by` (a user) only the tickets that user may read count, in the lines and in the
    grand total: someone who reads one project of a cross-project settlement learns nothing of the
    other projects' tickets, their money included (SPEC §3 lists only readable tickets). Without
    it, everything counts (the customer page behind a share link shows the whole settlement)."""
    from settlements.models import SettlementTicket

    ids = list(settlement_ids)
    result: dict[int, SettlementTotals] = {pk: SettlementTotals() for pk in ids}
    minutes_in_period = (
        TimeEntry.objects.filter(ticket_id=OuterRef("ticket_id"), billable=True,
                                 work_date__gte=OuterRef("settlement__period_start"),
                                 work_date__lte=OuterRef("settlement__period_end"))
        .order_by().values("ticket_id").annotate(total=Sum("minutes")).values("total")
    )
    readable = None if readable_by is None else Ticket.objects.visible_to(readable_by, "read").values("pk")
    links = SettlementTicket.objects.filter(settlement_id__in=ids)
    if readable is not None:
        links = links.filter(ticket_id__in=readable)
    links = (links
             .annotate(minutes=Coalesce(Subquery(minutes_in_period, output_field=IntegerField()), 0))
             .values_list("settlement_id", "ticket_id", "minutes"))
    for settlement_id, ticket_id, minutes in links:
        result[settlement_id].tickets[ticket_id].minutes += minutes
    amounts = BillingItem.objects.filter(
        status__in=BILLED_STATUSES, source_type__in=TICKET_SOURCES,
        ticket__settlement_links__settlement_id__in=ids,
        source_date__gte=F("ticket__settlement_links__settlement__period_start"),
        source_date__lte=F("ticket__settlement_links__settlement__period_end"),
    )
    if readable is not None:
        amounts = amounts.filter(ticket_id__in=readable)
    amounts = (amounts.values_list("ticket__settlement_links__settlement_id", "ticket_id", "currency")
               .annotate(total=Sum("total")).order_by())
    for settlement_id, ticket_id, currency, amount in amounts:
        result[settlement_id].tickets[ticket_id].amounts[currency] += amount
    for totals in result.values():
        for line in totals.tickets.values():
            totals.total.add(line)
    return result


@dataclass
class MoneyTotals:
    net: Decimal = Decimal("0.00")
    vat: Decimal = Decimal("0.00")

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


def totals_by_currency(items) -> dict[str, MoneyTotals]:
    """Net, VAT and gross per currency of billing items (a queryset or rows), summed from the
    rounded line values: VAT is rounded per line, never on the sum (SPEC §4 rule 7)."""
    rows = items.values_list("currency", "total", "vat_rate") if hasattr(items, "values_list") else items
    totals: dict[str, MoneyTotals] = defaultdict(MoneyTotals)
    for currency, total, vat_rate in rows:
        totals[currency].net += total
        totals[currency].vat += line_vat(total, vat_rate)
    return dict(totals)


def items_for_list(queryset):
    return queryset.select_related(*ITEM_RELATED).order_by(*ITEM_ORDERING)


def invoices_for_list(queryset):
    """Invoices as lists show them: client, poster and line count in the same query."""
    return queryset.select_related("client", "posted_by").annotate(line_count=Count("items"))


def invoices_with_lines(queryset):
    """Invoices as their detail shows them: also their run, lines and credit notes."""
    lines = items_for_list(BillingItem.objects.all())
    notes = Invoice.objects.only("pk", "credited_invoice")
    return invoices_for_list(queryset).select_related("run").prefetch_related(
        Prefetch("items", queryset=lines), Prefetch("credit_notes", queryset=notes))
