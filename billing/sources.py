"""Billable sources behind one small interface. Each registered source turns the source records
of one client (optionally limited to some months) into item specs; reconciliation compares those
specs with the stored items. Register a new source type with `register_source`.

A client scope loads the client's contracts once and answers "which contract is in force for
this project on this day" for every source (SPEC §4 rule 1)."""

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property

from django.db.models import Q

from tickets.choices import Activity
from tickets.models import Expense, TimeEntry

from . import periods
from .choices import SourceType, UnmatchedReason
from .models import Client, Contract, SalesLine
from .money import hours, line_total, rounded_minutes

DESCRIPTION_MAX = 500
FOUR_PLACES = Decimal("0.0001")  # the scale of an item's qty, unit_price and vat_rate columns
# Item descriptions must not depend on the language of whoever triggered the run.
ACTIVITY_LABELS = {activity.value: activity.name.replace("_", " ").capitalize() for activity in Activity}


# Everything an item carries about its source: any difference means the source changed.
COMPARED_FIELDS = (
    "source_type", "source_id", "source_date", "client_id", "contract_id", "project_id", "ticket_id",
    "description", "qty", "unit_price", "total", "currency", "vat_rate", "period_month", "period_start",
    "period_end",
)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(frozen=True)
class ItemSpec:
    """What one billing item should look like, computed from its source."""

    key: str
    source_type: str
    source_id: int
    source_date: date
    client_id: int
    contract_id: int | None
    project_id: int | None
    ticket_id: int | None
    description: str
    qty: Decimal
    unit_price: Decimal
    currency: str
    vat_rate: Decimal
    period: periods.Period

    @cached_property
    def total(self) -> Decimal:
        return line_total(self.qty, self.unit_price)

    @cached_property
    def fingerprint(self) -> int:
        """A stable 64-bit digest of the compared fields: reconciliation compares fingerprints
        instead of loading and comparing whole items, so equal fingerprints must mean an unchanged
        source in whichever process they were computed. Specs read amounts straight from their
        source columns or quantize them, and the amounts are hashed at the scale of the item's
        columns (4 places; totals are already rounded to 2), so equal fingerprints mean equal
        stored values: a timebank share of 10.00 hours and the 10.0000 read back once it is
        locked are the same quantity. One f-string: this runs once per item of every run."""
        return _digest(f"{self.source_type}\x1f{self.source_id}\x1f{self.source_date}\x1f{self.client_id}\x1f"
                       f"{self.contract_id}\x1f{self.project_id}\x1f{self.ticket_id}\x1f{self.description}\x1f"
                       f"{self.qty.quantize(FOUR_PLACES)}\x1f{self.unit_price.quantize(FOUR_PLACES)}\x1f"
                       f"{self.total}\x1f{self.currency}\x1f{self.vat_rate.quantize(FOUR_PLACES)}\x1f"
                       f"{self.period.text}")

    def copy_values(self) -> tuple:
        """The item's column values in billing.bulk.VALUE_COLUMNS order."""
        period = self.period
        return (self.key, self.source_type, self.source_id, self.source_date, self.client_id, self.contract_id,
                self.project_id, self.ticket_id, self.description, self.qty, self.unit_price, self.total,
                self.currency, self.vat_rate, period.month, period.start, period.end, self.fingerprint)

    def item_values(self) -> dict:
        return {"source_key": self.key, "source_type": self.source_type, "source_id": self.source_id,
                "source_date": self.source_date, "client_id": self.client_id, "contract_id": self.contract_id,
                "project_id": self.project_id, "ticket_id": self.ticket_id, "description": self.description,
                "qty": self.qty, "unit_price": self.unit_price, "total": self.total, "currency": self.currency,
                "vat_rate": self.vat_rate, "period_month": self.period.month, "period_start": self.period.start,
                "period_end": self.period.end, "fingerprint": self.fingerprint}


def matches(item, spec_values: dict) -> bool:
    return all(getattr(item, name) == spec_values[name] for name in COMPARED_FIELDS)


@dataclass(frozen=True)
class Unmatched:
    source_type: str
    source_id: int
    reason: str
    project_id: int | None = None
    client_id: int | None = None
    source_date: date | None = None
    detail: str = ""


@dataclass
class ClientScope:
    """One client's contracts and the months to reconcile (None: every month)."""

    client: Client
    months: frozenset[date] | None
    contracts: list[Contract]
    unmatched: list[Unmatched] = field(default_factory=list)
    shared: dict = field(default_factory=dict)

    @classmethod
    def load(cls, client: Client, months=None) -> "ClientScope":
        contracts = list(Contract.objects.filter(client=client).prefetch_related("rates", "project_links"))
        return cls(client, frozenset(months) if months is not None else None, contracts)

    @cached_property
    def contracts_by_project(self) -> dict[int, list[Contract]]:
        by_project = defaultdict(list)
        for contract in self.contracts:
            contract.rate_card = {rate.activity: rate.hourly_rate for rate in contract.rates.all()}
            for link in contract.project_links.all():
                by_project[link.project_id].append(contract)
        return by_project

    @property
    def project_ids(self) -> list[int]:
        return list(self.contracts_by_project)

    def contract_for(self, project_id: int, day: date) -> Contract | None:
        # Contracts of one project never overlap (refused on save), so the first hit is the one.
        return next((c for c in self.contracts_by_project.get(project_id, ()) if c.covers(day)), None)

    def includes(self, month: date) -> bool:
        return self.months is None or month in self.months

    def date_filter(self, field_name: str) -> Q:
        if self.months is None:
            return Q()
        query = Q(pk__in=[])
        for month in self.months:
            query |= Q(**{f"{field_name}__gte": month, f"{field_name}__lte": periods.last_day(month)})
        return query

    def period(self, month: date) -> periods.Period:
        return periods.period_of(month, self.client.time_zone)

    def spec(self, *, key: str, source_type: str, source_id: int, source_date: date, contract: Contract | None,
             description: str, qty: Decimal, unit_price: Decimal, project_id=None, ticket_id=None) -> ItemSpec:
        return ItemSpec(key=key, source_type=source_type, source_id=source_id, source_date=source_date,
                        client_id=self.client.pk, contract_id=contract.pk if contract else None,
                        project_id=project_id, ticket_id=ticket_id, description=description[:DESCRIPTION_MAX],
                        qty=qty, unit_price=unit_price, currency=self.client.currency,
                        vat_rate=self.client.vat_rate, period=self.period(periods.month_of(source_date)))


class BillingSource:
    """A source type. `record_kind` names the source record whose saves it follows
    ("time_entry", "expense", "sales_line"), None for derived sources such as contract fees."""

    source_type: str
    record_kind: str | None = None

    def specs(self, scope: ClientScope) -> Iterable[ItemSpec]:
        raise NotImplementedError


_sources: dict[str, BillingSource] = {}


def register_source(source: BillingSource) -> BillingSource:
    _sources[source.source_type] = source
    return source


def registered_sources() -> dict[str, BillingSource]:
    return dict(_sources)


def source_types_of_record(record_kind: str) -> list[str]:
    return [s.source_type for s in _sources.values() if s.record_kind == record_kind]


# --- Time: ticket_time and timebank share one allocation per client scope ----------------------

@dataclass(frozen=True)
class TimePart:
    source_type: str
    entry: dict
    contract: Contract
    qty: Decimal
    unit_price: Decimal


TIME_FIELDS = ("id", "ticket_id", "ticket__project_id", "ticket__project__key", "ticket__number", "ticket__title",
               "work_date", "minutes", "activity", "description")


def _normal_rate(contract: Contract, activity: str) -> Decimal:
    return contract.rate_card.get(activity, contract.hourly_rate)


@dataclass
class LockedTime:
    """Time entries whose items sit in a draft or posted invoice: their timebank hours are spent
    for good, so the bank that is left is shared among the other entries of the month."""

    entry_ids: set[int] = field(default_factory=set)
    covered: dict[int, Decimal] = field(default_factory=dict)
    spent: dict[tuple[int, date], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @classmethod
    def load(cls, scope: ClientScope) -> "LockedTime":
        from .choices import LOCKED_STATUSES
        from .models import BillingItem

        locked = cls()
        items = BillingItem.objects.filter(client=scope.client, status__in=LOCKED_STATUSES,
                                           source_type__in=(SourceType.TICKET_TIME, SourceType.TIMEBANK))
        if scope.months is not None:
            items = items.filter(period_month__in=scope.months)
        for source_type, entry_id, qty, contract_id, month in items.values_list(
                "source_type", "source_id", "qty", "contract_id", "period_month"):
            locked.entry_ids.add(entry_id)
            if source_type == SourceType.TIMEBANK:
                locked.covered[entry_id] = qty
                locked.spent[(contract_id, month)] += qty
        return locked


def time_parts(scope: ClientScope) -> list[TimePart]:
    """SPEC §4 rules 2-4: round, price, and draw each contract's monthly timebank in order of
    (work_date, id). Cached on the scope: both time sources read the same allocation."""
    if "time_parts" in scope.shared:
        return scope.shared["time_parts"]
    entries = (TimeEntry.objects.filter(billable=True, ticket__project_id__in=scope.project_ids)
               .filter(scope.date_filter("work_date")).order_by("work_date", "id").values(*TIME_FIELDS))
    locked = LockedTime.load(scope)
    bank_left: dict[tuple[int, date], Decimal] = {}
    parts = []
    for entry in entries:
        contract = scope.contract_for(entry["ticket__project_id"], entry["work_date"])
        if contract is None:
            continue
        qty = hours(rounded_minutes(entry["minutes"], contract.rounding_minutes))
        rate = _normal_rate(contract, entry["activity"])
        if contract.timebank_hours:
            slot = (contract.pk, periods.month_of(entry["work_date"]))
            left = bank_left.setdefault(slot, max(contract.timebank_hours - locked.spent[slot], Decimal("0")))
            if entry["id"] in locked.entry_ids:
                covered = min(locked.covered.get(entry["id"], Decimal("0")), qty)  # as invoiced
            else:
                covered = min(left, qty)
                bank_left[slot] = left - covered
            if covered:
                parts.append(TimePart(SourceType.TIMEBANK, entry, contract, covered, Decimal("0")))
            qty -= covered
            rate = contract.overage_rate if contract.overage_rate is not None else rate
        if qty:
            parts.append(TimePart(SourceType.TICKET_TIME, entry, contract, qty, rate))
    scope.shared["time_parts"] = parts
    return parts


def _ticket_label(entry: dict) -> str:
    return f"{entry['ticket__project__key']}-{entry['ticket__number']} {entry['ticket__title']}"


class TimeSource(BillingSource):
    record_kind = "time_entry"
    suffix = ""

    def specs(self, scope: ClientScope) -> Iterable[ItemSpec]:
        for part in time_parts(scope):
            if part.source_type != self.source_type:
                continue
            entry = part.entry
            description = f"{_ticket_label(entry)} — {ACTIVITY_LABELS.get(entry['activity'], entry['activity'])}"
            description += self.suffix + (f": {entry['description']}" if entry["description"] else "")
            yield scope.spec(key=f"{self.source_type}:{entry['id']}", source_type=self.source_type,
                             source_id=entry["id"], source_date=entry["work_date"], contract=part.contract,
                             description=description, qty=part.qty, unit_price=part.unit_price,
                             project_id=entry["ticket__project_id"], ticket_id=entry["ticket_id"])


class TicketTimeSource(TimeSource):
    source_type = SourceType.TICKET_TIME


class TimebankSource(TimeSource):
    source_type = SourceType.TIMEBANK
    suffix = " (timebank)"


class ExpenseSource(BillingSource):
    source_type = SourceType.EXPENSE
    record_kind = "expense"

    def specs(self, scope: ClientScope) -> Iterable[ItemSpec]:
        expenses = (Expense.objects.filter(billable=True, ticket__project_id__in=scope.project_ids)
                    .filter(scope.date_filter("date")).order_by("date", "id")
                    .values("id", "ticket_id", "ticket__project_id", "ticket__project__key", "ticket__number",
                            "ticket__title", "date", "description", "amount", "currency"))
        for expense in expenses:
            contract = scope.contract_for(expense["ticket__project_id"], expense["date"])
            if contract is None:
                continue
            if expense["currency"] != scope.client.currency:
                scope.unmatched.append(Unmatched(
                    self.source_type, expense["id"], UnmatchedReason.CURRENCY_MISMATCH,
                    project_id=expense["ticket__project_id"], client_id=scope.client.pk, source_date=expense["date"],
                    detail=f"{expense['currency']} expense, client bills in {scope.client.currency}"))
                continue
            yield scope.spec(key=f"expense:{expense['id']}", source_type=self.source_type, source_id=expense["id"],
                             source_date=expense["date"], contract=contract,
                             description=f"{_ticket_label(expense)} — {expense['description']}",
                             qty=Decimal("1"), unit_price=expense["amount"],
                             project_id=expense["ticket__project_id"], ticket_id=expense["ticket_id"])


class ContractPeriodSource(BillingSource):
    """SPEC §4 rule 5: the monthly fee, once for every month overlapping the contract's validity,
    up to and including the client's current month."""

    source_type = SourceType.CONTRACT_PERIOD

    def specs(self, scope: ClientScope) -> Iterable[ItemSpec]:
        this_month = periods.current_month(scope.client.time_zone)
        for contract in scope.contracts:
            if not contract.monthly_fee:
                continue
            last = min(contract.valid_to or this_month, this_month)
            first = periods.month_of(contract.valid_from)
            for month in periods.months_between(first, last) if first <= last else ():
                if scope.includes(month):
                    yield scope.spec(key=f"contract_period:{contract.pk}:{month:%Y-%m}", source_type=self.source_type,
                                     source_id=contract.pk, source_date=month, contract=contract,
                                     description=f"{contract.name} — monthly fee {month:%Y-%m}",
                                     qty=Decimal("1"), unit_price=contract.monthly_fee)


class SalesOrderSource(BillingSource):
    source_type = SourceType.SALES_ORDER
    record_kind = "sales_line"

    def specs(self, scope: ClientScope) -> Iterable[ItemSpec]:
        lines = SalesLine.objects.filter(client=scope.client).filter(scope.date_filter("date")).order_by("date", "id")
        contracts = {contract.pk: contract for contract in scope.contracts}
        for line in lines:
            yield scope.spec(key=f"sales_order:{line.pk}", source_type=self.source_type, source_id=line.pk,
                             source_date=line.date, contract=contracts.get(line.contract_id),
                             description=line.description, qty=line.qty, unit_price=line.unit_price,
                             project_id=line.project_id)


for _source in (TicketTimeSource(), TimebankSource(), ExpenseSource(), ContractPeriodSource(), SalesOrderSource()):
    register_source(_source)
