"""Billing runs, draft invoices, posting and corrections (SPEC §4).

- **Build**: a run for a month and a set of clients reserves each client's pending items (up to
  the period's end with *include prior periods*, else that month only) into one draft invoice per
  currency, in the same transaction, under the client's row lock — the lock reconciliation also
  takes — so an item is never reserved twice and never changes while it is being reserved. A
  client already held by an open run for that month is skipped and reported (idempotent).
- **Remove from run** puts a draft line back to `pending`; **delete run** (open runs only) puts all
  of them back and removes the drafts; **refresh** rebuilds one draft.
- **Post** numbers a draft gaplessly per series and year from a counter row locked in the same
  transaction, marks its items `invoiced` and records totals; after that the database refuses any
  change (migration 0005).
- **Credit note** reverses chosen lines of a posted invoice with negative items (originals
  `credited`), numbered in its own series; the sources unlock and are reconciled again.
  **Debit** adds a positive pending item linked to an original.

Every action writes a BillingLog entry with actor, scope, item count, duration and summary."""

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound

from . import periods
from .choices import ItemStatus, LogAction, SourceType
from .models import BillingItem, BillingLog, BillingRun, Client, Invoice, InvoiceCounter
from .money import line_total
from .reconciliation import Scope
from .selectors import totals_by_currency
from .services import require_billing, require_line_fits
from .sources import ClientScope, matches, registered_sources
from .triggers import request_reconciliation

INVOICE_SERIES = ""
CREDIT_NOTE_SERIES = "CN"
RUN_NOT_OPEN_MESSAGE = "Run {run} is {status}; only an open run can be {what}."
NOT_DRAFT_MESSAGE = "Invoice {invoice} is {status}; only a draft can be {what}."
NOT_POSTED_MESSAGE = "Invoice {invoice} is a draft; only a posted invoice can be credited or debited."
CREDIT_NOTE_MESSAGE = "{invoice} is a credit note; only an invoice can be credited or debited."
NOT_ON_INVOICE_MESSAGE = "Item {item} is not a line of invoice {invoice}."
NOT_CREDITABLE_MESSAGE = "Item {item} is {status}; only invoiced lines can be credited."
NOTHING_TO_BUILD_MESSAGE = "No pending items to bill for {clients} up to {period}."
ALREADY_HELD_MESSAGE = "{client} is already in open run {run} for {period}; post or delete that run first."
NOTHING_TO_POST_MESSAGE = "Run {run} has no draft invoices left to post."


def _log(action: str, *, actor, started: float, summary: str, scope: dict, item_count: int) -> None:
    BillingLog.objects.create(action=action, actor=actor, scope=scope, item_count=item_count,
                              duration_ms=int((time.monotonic() - started) * 1000), summary=summary[:500])


def _pending_for(client: Client, period: date, include_prior: bool):
    items = BillingItem.objects.filter(client=client, status=ItemStatus.PENDING)
    return items.filter(period_month__lte=period) if include_prior else items.filter(period_month=period)


# --- Build ---------------------------------------------------------------------------------------

@dataclass
class BuildResult:
    run: BillingRun | None
    invoices: list[dict] = field(default_factory=list)   # client, currency, items, net (dry runs too)
    skipped: list[dict] = field(default_factory=list)    # clients held by another open run
    dry_run: bool = False


def _open_run_holding(client: Client, period: date) -> Invoice | None:
    return (Invoice.objects.filter(client=client, status=Invoice.Status.DRAFT, run__status=BillingRun.Status.OPEN,
                                   run__period_month=period).select_related("run").first())


def _reserve(run: BillingRun, client: Client, items: list[BillingItem], now) -> list[Invoice]:
    by_currency: dict[str, list[int]] = defaultdict(list)
    for item in items:
        by_currency[item.currency].append(item.pk)
    drafts = []
    for currency, item_ids in sorted(by_currency.items()):
        draft = Invoice.objects.create(client=client, run=run, currency=currency, period_month=run.period_month,
                                       built_at=now)
        BillingItem.objects.filter(pk__in=item_ids, status=ItemStatus.PENDING).update(
            status=ItemStatus.RESERVED, invoice=draft, run=run, updated_at=now)
        drafts.append(draft)
    return drafts


def _client_ids(client_ids) -> list[int]:
    clients = Client.objects.filter(is_active=True)
    if client_ids:
        clients = Client.objects.filter(pk__in=client_ids)
        missing = set(client_ids) - set(clients.values_list("pk", flat=True))
        if missing:
            raise NotFound(f"No client with id {min(missing)}.")
    return sorted(clients.values_list("pk", flat=True))


@transaction.atomic
def run_build(*, actor, period: date, client_ids=None, include_prior_periods: bool = True,
              dry_run: bool = False) -> BuildResult:
    """Build one draft invoice per client and currency for `period` (a month); see the module."""
    require_billing(actor, "manage")
    started, now = time.monotonic(), timezone.now()
    ids = _client_ids(client_ids)
    result = BuildResult(run=None, dry_run=dry_run)
    run = None
    for client in Client.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
        held = _open_run_holding(client, period)
        if held:
            result.skipped.append({"client": client.pk, "run": held.run_id, "invoice": held.pk,
                                   "detail": ALREADY_HELD_MESSAGE.format(client=client, run=held.run_id,
                                                                         period=f"{period:%Y-%m}")})
            continue
        items = list(_pending_for(client, period, include_prior_periods).select_for_update().order_by("pk"))
        if not items:
            continue
        for currency, totals in sorted(totals_by_currency([(i.currency, i.total, i.vat_rate) for i in items]).items()):
            result.invoices.append({"client": client.pk, "currency": currency, "net": totals.net,
                                    "items": sum(1 for i in items if i.currency == currency)})
        if dry_run:
            continue
        if run is None:
            run = BillingRun.objects.create(period_month=period, include_prior_periods=include_prior_periods,
                                            client_ids=list(client_ids) if client_ids else None, created_by=actor)
        for draft in _reserve(run, client, items, now):
            next(entry for entry in result.invoices
                 if entry["client"] == client.pk and entry["currency"] == draft.currency)["invoice"] = draft.pk
    if dry_run:
        return result
    if run is None:
        if result.skipped:
            first = result.skipped[0]
            raise Conflict(first["detail"], code="already_in_open_run", extra={"skipped": result.skipped})
        raise Conflict(NOTHING_TO_BUILD_MESSAGE.format(clients="the chosen clients", period=f"{period:%Y-%m}"),
                       code="nothing_to_build")
    result.run = run
    count = sum(entry["items"] for entry in result.invoices)
    _log(LogAction.BUILD, actor=actor, started=started, item_count=count,
         scope={"run": run.pk, "period": f"{period:%Y-%m}", "clients": client_ids or "all"},
         summary=f"Run {run.pk}: {len(result.invoices)} draft invoice(s), {count} item(s) reserved"
                 + (f", {len(result.skipped)} client(s) held by another open run" if result.skipped else ""))
    return result


# --- Draft lines, run deletion, refresh ----------------------------------------------------------

def _lock_run(run: BillingRun, what: str) -> BillingRun:
    run = BillingRun.objects.select_for_update().get(pk=run.pk)
    if run.status != BillingRun.Status.OPEN:
        raise Conflict(RUN_NOT_OPEN_MESSAGE.format(run=run.pk, status=run.status, what=what), code="run_not_open")
    return run


def _lock_draft(invoice: Invoice, what: str) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.DRAFT:
        raise Conflict(NOT_DRAFT_MESSAGE.format(invoice=invoice.label, status=invoice.status, what=what),
                       code="invoice_not_draft")
    return invoice


def _release(items) -> int:
    return items.filter(status=ItemStatus.RESERVED).update(status=ItemStatus.PENDING, invoice=None, run=None,
                                                           updated_at=timezone.now())


@transaction.atomic
def invoice_remove_line(*, actor, invoice: Invoice, item: BillingItem, void_reason: str = "") -> BillingItem:
    """Remove from run: the line goes back to `pending` (or `void` with a reason) and its source
    unlocks. A draft left without lines is removed."""
    require_billing(actor, "manage")
    started = time.monotonic()
    invoice = _lock_draft(invoice, "changed")
    line = BillingItem.objects.select_for_update().filter(pk=item.pk, invoice=invoice).first()
    if line is None:
        raise NotFound(NOT_ON_INVOICE_MESSAGE.format(item=item.pk, invoice=invoice.label))
    item = line
    _release(BillingItem.objects.filter(pk=item.pk))
    if void_reason.strip():
        BillingItem.objects.filter(pk=item.pk).update(status=ItemStatus.VOID, void_reason=void_reason.strip()[:500])
    if not invoice.items.exists():
        invoice.delete()
    _log(LogAction.REMOVE, actor=actor, started=started, item_count=1,
         scope={"invoice": invoice.pk, "run": invoice.run_id, "item": item.pk},
         summary=f"Removed {item.source_key} from {invoice.label}" + (" and voided it" if void_reason else ""))
    item.refresh_from_db()
    return item


@transaction.atomic
def run_delete(*, actor, run: BillingRun) -> int:
    """Delete an open run: every item back to `pending`, its drafts removed. Returns the count."""
    require_billing(actor, "manage")
    started = time.monotonic()
    run = _lock_run(run, "deleted")
    released = _release(BillingItem.objects.filter(run=run))
    run_id = run.pk
    Invoice.objects.filter(run=run).delete()
    run.delete()
    _log(LogAction.DELETE_RUN, actor=actor, started=started, item_count=released, scope={"run": run_id},
         summary=f"Deleted run {run_id}; {released} item(s) back to pending")
    return released


def stale_reasons(invoice: Invoice) -> list[str]:
    """Why a draft no longer matches its sources: new pending items for its client and period, or
    reserved lines that differ from a fresh calculation. Empty: not stale."""
    if invoice.status != Invoice.Status.DRAFT or invoice.run is None:
        return []
    reasons = []
    newer = _pending_for(invoice.client, invoice.run.period_month, invoice.run.include_prior_periods).filter(
        currency=invoice.currency, created_at__gt=invoice.built_at).count()
    if newer:
        reasons.append(f"{newer} new pending item(s) since the draft was built")
    lines = list(invoice.items.all())
    months = frozenset(line.period_month for line in lines)
    specs = {}
    scope = ClientScope.load(invoice.client, months)
    for source in registered_sources().values():
        specs.update({spec.key: spec for spec in source.specs(scope)})
    differing = sum(1 for line in lines if line.source_type in registered_sources()
                    and (line.source_key not in specs or not matches(line, specs[line.source_key].item_values())))
    if differing:
        reasons.append(f"{differing} line(s) differ from a fresh calculation")
    return reasons


@transaction.atomic
def invoice_refresh(*, actor, invoice: Invoice) -> Invoice | None:
    """Rebuild a draft from its client's current pending items (after a reconciliation)."""
    require_billing(actor, "manage")
    started = time.monotonic()
    invoice = _lock_draft(invoice, "refreshed")
    client = Client.objects.select_for_update().get(pk=invoice.client_id)
    run = invoice.run
    released = _release(invoice.items.all())
    items = list(_pending_for(client, run.period_month, run.include_prior_periods)
                 .filter(currency=invoice.currency).select_for_update().order_by("pk"))
    now = timezone.now()
    BillingItem.objects.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.RESERVED, invoice=invoice,
                                                                    run=run, updated_at=now)
    Invoice.objects.filter(pk=invoice.pk).update(built_at=now)
    _log(LogAction.REFRESH, actor=actor, started=started, item_count=len(items),
         scope={"invoice": invoice.pk, "run": run.pk},
         summary=f"Refreshed {invoice.label}: released {released}, reserved {len(items)} item(s)")
    if not items:
        invoice.delete()
        return None
    invoice.refresh_from_db()
    return invoice


# --- Posting -------------------------------------------------------------------------------------

def _take_number(series: str, year: int) -> int:
    counter, _ = InvoiceCounter.objects.get_or_create(series=series, year=year)
    counter = InvoiceCounter.objects.select_for_update().get(pk=counter.pk)
    number = counter.next_number
    InvoiceCounter.objects.filter(pk=counter.pk).update(next_number=number + 1)
    return number


def format_number(series: str, year: int, sequence: int) -> str:
    return f"{series + '-' if series else ''}{year}-{sequence:04d}"


def _finalise(invoice: Invoice, *, actor, series: str, item_status: str) -> Invoice:
    """Number, total and post `invoice` (already locked) and give its items `item_status`."""
    now = timezone.now()
    year = periods.month_of_instant(now, invoice.client.time_zone).year
    sequence = _take_number(series, year)
    totals = totals_by_currency(invoice.items.all()).get(invoice.currency)
    net, vat = (totals.net, totals.vat) if totals else (Decimal("0.00"), Decimal("0.00"))
    invoice.items.filter(status__in=(ItemStatus.RESERVED, ItemStatus.INVOICED)).update(
        status=item_status, updated_at=now)
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.POSTED, series=series, year=year, sequence=sequence,
        number=format_number(series, year, sequence), net=net, vat=vat, gross=net + vat, posted_at=now,
        posted_by=actor)
    invoice.refresh_from_db()
    return invoice


def _close_run_if_done(run_id: int | None) -> None:
    if run_id and not Invoice.objects.filter(run_id=run_id, status=Invoice.Status.DRAFT).exists():
        BillingRun.objects.filter(pk=run_id, status=BillingRun.Status.OPEN).update(
            status=BillingRun.Status.POSTED, posted_at=timezone.now())


@transaction.atomic
def invoice_post(*, actor, invoice: Invoice) -> Invoice:
    require_billing(actor, "admin")
    started = time.monotonic()
    invoice = _lock_draft(invoice, "posted")
    posted = _finalise(invoice, actor=actor, series=INVOICE_SERIES, item_status=ItemStatus.INVOICED)
    _close_run_if_done(posted.run_id)
    _log(LogAction.POST, actor=actor, started=started, item_count=posted.items.count(),
         scope={"invoice": posted.pk, "run": posted.run_id, "client": posted.client_id},
         summary=f"Posted {posted.number}: net {posted.net}, VAT {posted.vat}, gross {posted.gross} {posted.currency}")
    return posted


@transaction.atomic
def run_post(*, actor, run: BillingRun) -> list[Invoice]:
    """Post every draft of an open run, all or nothing."""
    require_billing(actor, "admin")
    run = _lock_run(run, "posted")
    drafts = list(Invoice.objects.filter(run=run, status=Invoice.Status.DRAFT).order_by("client__name", "pk"))
    if not drafts:
        raise Conflict(NOTHING_TO_POST_MESSAGE.format(run=run.pk), code="nothing_to_post")
    return [invoice_post(actor=actor, invoice=draft) for draft in drafts]


# --- Corrections ---------------------------------------------------------------------------------

def _lock_posted(invoice: Invoice) -> Invoice:
    invoice = Invoice.objects.select_for_update().select_related("client").get(pk=invoice.pk)
    if invoice.kind != Invoice.Kind.INVOICE:
        raise Conflict(CREDIT_NOTE_MESSAGE.format(invoice=invoice.label), code="not_an_invoice")
    if invoice.status != Invoice.Status.POSTED:
        raise Conflict(NOT_POSTED_MESSAGE.format(invoice=invoice.label), code="invoice_not_posted")
    return invoice


def _reverse(original: BillingItem, note: Invoice) -> BillingItem:
    return BillingItem(
        source_key=f"credit:{original.pk}", source_type=SourceType.CREDIT, source_id=original.pk,
        source_date=original.source_date, client_id=original.client_id, contract_id=original.contract_id,
        project_id=original.project_id, ticket_id=original.ticket_id,
        description=f"Credit: {original.description}"[:500],
        qty=-original.qty, unit_price=original.unit_price, total=line_total(-original.qty, original.unit_price),
        currency=original.currency, vat_rate=original.vat_rate, status=ItemStatus.INVOICED, invoice=note,
        period_month=original.period_month, period_start=original.period_start, period_end=original.period_end,
        original_item=original)


@transaction.atomic
def invoice_credit(*, actor, invoice: Invoice, item_ids=None) -> Invoice:
    """A posted credit note reversing all or the chosen lines of a posted invoice."""
    require_billing(actor, "admin")
    started = time.monotonic()
    invoice = _lock_posted(invoice)
    lines = invoice.items.select_for_update().order_by("pk")
    if item_ids:
        lines = lines.filter(pk__in=item_ids)
        found = set(lines.values_list("pk", flat=True))
        if missing := set(item_ids) - found:
            raise InvalidInput.for_field("items", NOT_ON_INVOICE_MESSAGE.format(item=min(missing),
                                                                                invoice=invoice.label),
                                         code="not_on_invoice")
    lines = list(lines)
    for line in lines:
        if line.status != ItemStatus.INVOICED:
            raise Conflict(NOT_CREDITABLE_MESSAGE.format(item=line.pk, status=line.status), code="not_creditable")
    note = Invoice.objects.create(kind=Invoice.Kind.CREDIT_NOTE, client=invoice.client, currency=invoice.currency,
                                  credited_invoice=invoice, period_month=invoice.period_month,
                                  built_at=timezone.now())
    BillingItem.objects.bulk_create([_reverse(line, note) for line in lines])
    BillingItem.objects.filter(pk__in=[line.pk for line in lines]).update(status=ItemStatus.CREDITED,
                                                                          updated_at=timezone.now())
    note = _finalise(note, actor=actor, series=CREDIT_NOTE_SERIES, item_status=ItemStatus.INVOICED)
    for kind, source_id in _credited_sources(lines):
        request_reconciliation(Scope(record_kind=kind, record_id=source_id))
    _log(LogAction.CREDIT, actor=actor, started=started, item_count=len(lines),
         scope={"invoice": invoice.pk, "credit_note": note.pk, "items": [line.pk for line in lines]},
         summary=f"Credit note {note.number} for {invoice.number}: {len(lines)} line(s), net {note.net}")
    return note


RECORD_KIND_OF = {SourceType.TICKET_TIME: "time_entry", SourceType.TIMEBANK: "time_entry",
                  SourceType.EXPENSE: "expense", SourceType.SALES_ORDER: "sales_line"}


def _credited_sources(lines) -> set[tuple[str, int]]:
    return {(RECORD_KIND_OF[line.source_type], line.source_id) for line in lines if line.source_type in RECORD_KIND_OF}


@transaction.atomic
def invoice_debit(*, actor, invoice: Invoice, item: BillingItem, qty: Decimal, unit_price: Decimal,
                  description: str) -> BillingItem:
    """A positive adjustment linked to a line of a posted invoice, pending for the next run."""
    require_billing(actor, "admin")
    started = time.monotonic()
    invoice = _lock_posted(invoice)
    original = invoice.items.filter(pk=item.pk).first()
    if original is None:
        raise NotFound(NOT_ON_INVOICE_MESSAGE.format(item=item.pk, invoice=invoice.label))
    if qty <= 0 or unit_price < 0 or not description.strip():
        raise InvalidInput("A debit needs a positive quantity, a price and a description.", code="invalid_debit")
    require_line_fits(qty, unit_price)
    count = BillingItem.objects.filter(source_type=SourceType.DEBIT, original_item=original).count()
    debit = BillingItem.objects.create(
        source_key=f"debit:{original.pk}:{count + 1}", source_type=SourceType.DEBIT, source_id=original.pk,
        source_date=timezone.localdate(), client_id=original.client_id, contract_id=original.contract_id,
        project_id=original.project_id, ticket_id=original.ticket_id, description=description.strip()[:500],
        qty=qty, unit_price=unit_price, total=line_total(qty, unit_price), currency=original.currency,
        vat_rate=original.vat_rate, period_month=original.period_month, period_start=original.period_start,
        period_end=original.period_end, original_item=original)
    _log(LogAction.DEBIT, actor=actor, started=started, item_count=1,
         scope={"invoice": invoice.pk, "item": original.pk, "debit": debit.pk},
         summary=f"Debit {debit.total} {debit.currency} on {invoice.number}, line {original.pk}")
    return debit

