"""Billing runs, draft invoices, posting and corrections (SPEC §4).

- **Build**: a run for a month and a set of clients reserves each client's pending items (up to
  the period's end with *include prior periods*, else that month only) into one draft invoice per
  currency, in the same transaction, under the client's row lock — the lock reconciliation also
  takes, and edits of billed sources too (billing.guards) — so an item is never reserved twice and
  never changes while it is being reserved. Sources saved just before whose reconciliation is still
  waiting are reconciled first under that lock, so a draft never locks in the values from before
  an edit. A client already held by an open run for that month is skipped and reported
  (idempotent).
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
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound

from . import periods
from .choices import ItemStatus, LogAction, SourceType
from .models import BillingItem, BillingLog, BillingRun, Client, Invoice, InvoiceCounter
from .money import line_total
from .reconciliation import Scope, reconcile_requested
from .selectors import MoneyTotals, totals_by_currency
from .services import require_billing, require_line_fits
from .sources import ClientScope, matches, registered_sources
from .triggers import request_reconciliation

INVOICE_SERIES = ""
# Drafts per UPDATE when a run is posted (each UPDATE carries a CASE per column over its rows).
POST_BATCH_SIZE = 200
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
RUN_HAS_POSTED_MESSAGE = ("Run {run} cannot be deleted: invoices {invoices} of it are already posted. Post its "
                          "remaining drafts, or remove their lines from the run.")


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


def _runs_holding(client_ids: list[int], period: date) -> dict[int, Invoice]:
    """Per client, the newest draft of an open run for `period` that already holds it."""
    drafts = (Invoice.objects.filter(client_id__in=client_ids, status=Invoice.Status.DRAFT,
                                     run__status=BillingRun.Status.OPEN, run__period_month=period)
              .select_related("run").order_by("-pk"))
    held: dict[int, Invoice] = {}
    for draft in drafts:
        held.setdefault(draft.client_id, draft)
    return held


def _pending_groups(client_ids: list[int], period: date, include_prior: bool) -> list[dict]:
    """Per client and currency: how many pending items and their net, in one query."""
    items = BillingItem.objects.filter(client_id__in=client_ids, status=ItemStatus.PENDING)
    items = items.filter(period_month__lte=period) if include_prior else items.filter(period_month=period)
    return list(items.values("client_id", "currency").annotate(items=Count("pk"), net=Sum("total"))
                .order_by("client_id", "currency"))


# Every pending item of a built client goes to the new draft of its currency: one statement
# for the whole run, joined on (run, client, currency).
RESERVE_SQL = """
UPDATE {items} SET status = %s, invoice_id = draft.id, run_id = draft.run_id, updated_at = %s
FROM {invoices} AS draft
WHERE draft.run_id = %s AND draft.client_id = {items}.client_id AND draft.currency = {items}.currency
  AND {items}.status = %s AND {items}.period_month {period_test} %s
"""


def _reserve(run: BillingRun, groups: list[dict], now) -> dict[int, tuple[int, int]]:
    """One draft per client and currency, then their items reserved; (client, currency) of each
    draft id."""
    drafts = Invoice.objects.bulk_create([
        Invoice(client_id=group["client_id"], run=run, currency=group["currency"], period_month=run.period_month,
                built_at=now) for group in groups])
    if not all(draft.pk for draft in drafts):  # a database that cannot return ids from a bulk insert
        drafts = list(Invoice.objects.filter(run=run).order_by("pk"))
    statement = RESERVE_SQL.format(items=BillingItem._meta.db_table, invoices=Invoice._meta.db_table,
                                   period_test="<=" if run.include_prior_periods else "=")
    # Raw SQL: the values go through the backend's adapters as the ORM's would (SQLite stores
    # naive UTC text). UPDATE … FROM needs SQLite 3.33+ (Python's own builds have had it since 2020).
    values = [ItemStatus.RESERVED.value, connection.ops.adapt_datetimefield_value(now), run.pk,
              ItemStatus.PENDING.value, connection.ops.adapt_datefield_value(run.period_month)]
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
    return {draft.pk: (draft.client_id, draft.currency) for draft in drafts}


def _reserved_counts(run: BillingRun) -> dict[tuple[int, str], dict]:
    rows = (BillingItem.objects.filter(run=run, status=ItemStatus.RESERVED)
            .values("invoice_id", "client_id", "currency").annotate(items=Count("pk"), net=Sum("total")).order_by())
    return {(row["client_id"], row["currency"]): row for row in rows}


def _client_ids(client_ids) -> list[int]:
    clients = Client.objects.filter(is_active=True)
    if client_ids:
        clients = Client.objects.filter(pk__in=client_ids)
        missing = set(client_ids) - set(clients.values_list("pk", flat=True))
        if missing:
            raise NotFound(f"No client with id {min(missing)}.")
    return sorted(clients.values_list("pk", flat=True))


def _skipped(held: dict[int, Invoice], clients: dict[int, Client], period: date) -> list[dict]:
    return [{"client": client_id, "run": draft.run_id, "invoice": draft.pk,
             "detail": ALREADY_HELD_MESSAGE.format(client=clients[client_id], run=draft.run_id,
                                                   period=f"{period:%Y-%m}")}
            for client_id, draft in sorted(held.items())]


@transaction.atomic
def run_build(*, actor, period: date, client_ids=None, include_prior_periods: bool = True,
              dry_run: bool = False) -> BuildResult:
    """Build one draft invoice per client and currency for `period` (a month); see the module.
    Set-based: the same few statements for one client or a thousand."""
    require_billing(actor, "manage")
    started, now = time.monotonic(), timezone.now()
    clients = {client.pk: client for client in
               Client.objects.select_for_update().filter(pk__in=_client_ids(client_ids)).order_by("pk")}
    held = _runs_holding(list(clients), period)
    if not dry_run:  # saves just before this build are billed with their new values
        reconcile_requested([pk for pk in clients if pk not in held], actor=actor)
    result = BuildResult(run=None, dry_run=dry_run, skipped=_skipped(held, clients, period))
    groups = _pending_groups([pk for pk in clients if pk not in held], period, include_prior_periods)
    result.invoices = [{"client": g["client_id"], "currency": g["currency"], "net": g["net"], "items": g["items"]}
                       for g in groups]
    if dry_run:
        return result
    if not groups:
        if result.skipped:
            first = result.skipped[0]
            raise Conflict(first["detail"], code="already_in_open_run", extra={"skipped": result.skipped})
        raise Conflict(NOTHING_TO_BUILD_MESSAGE.format(clients="the chosen clients", period=f"{period:%Y-%m}"),
                       code="nothing_to_build")
    run = BillingRun.objects.create(period_month=period, include_prior_periods=include_prior_periods,
                                    client_ids=list(client_ids) if client_ids else None, created_by=actor)
    _reserve(run, groups, now)
    reserved = _reserved_counts(run)
    result.run = run
    result.invoices = [{"client": client_id, "currency": currency, "net": row["net"], "items": row["items"],
                        "invoice": row["invoice_id"]} for (client_id, currency), row in sorted(reserved.items())]
    Invoice.objects.filter(run=run, items__isnull=True).delete()  # a currency whose items left meanwhile
    count = sum(entry["items"] for entry in result.invoices)
    _log(LogAction.BUILD, actor=actor, started=started, item_count=count,
         scope={"run": run.pk, "period": f"{period:%Y-%m}", "clients": client_ids or "all"},
         summary=f"Run {run.pk}: {len(result.invoices)} draft invoice(s), {count} item(s) reserved"
                 + (f", {len(result.skipped)} client(s) held by another open run" if result.skipped else ""))
    return result


# --- Draft lines, run deletion, refresh ----------------------------------------------------------

GONE_MESSAGE = "{what} {pk} no longer exists (deleted while this request waited for it)."


def _lock_run(run: BillingRun, what: str) -> BillingRun:
    pk = run.pk
    run = BillingRun.objects.select_for_update().filter(pk=pk).first()
    if run is None:
        raise NotFound(GONE_MESSAGE.format(what="Run", pk=pk))
    if run.status != BillingRun.Status.OPEN:
        raise Conflict(RUN_NOT_OPEN_MESSAGE.format(run=run.pk, status=run.status, what=what), code="run_not_open")
    return run


def _lock_draft(invoice: Invoice, what: str) -> Invoice:
    """Lock a draft for a change, its run first: run, then invoice, the order of run_post and
    run_delete. (Refresh re-points items at the run, whose foreign-key check takes a share lock
    on the run row at commit; a post holding the run and waiting for this invoice deadlocked.)"""
    pk = invoice.pk
    if invoice.run_id:
        list(BillingRun.objects.select_for_update().filter(pk=invoice.run_id).values_list("pk", flat=True))
    invoice = Invoice.objects.select_for_update().filter(pk=pk).first()
    if invoice is None:
        raise NotFound(GONE_MESSAGE.format(what="Invoice", pk=pk))
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
    # A draft of an open run may have been posted on its own; posted invoices are never deleted.
    # The invoices are locked before they are looked at (run, then invoices, as invoice_post and
    # run_post lock them), so a post cannot slip in between this check and the delete.
    statuses = list(Invoice.objects.select_for_update().filter(run=run).order_by("pk").values_list("status", "number"))
    posted = sorted(number for status, number in statuses if status != Invoice.Status.DRAFT)
    if posted:
        raise Conflict(RUN_HAS_POSTED_MESSAGE.format(run=run.pk, invoices=", ".join(posted)),
                       code="run_has_posted_invoices", extra={"invoices": posted})
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
    reconcile_requested([client.pk], actor=actor)
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

def _take_numbers(series: str, year: int, count: int) -> int:
    """The first of `count` consecutive numbers of a series, from its counter row locked until
    the transaction ends (a rollback gives them all back: no gaps)."""
    counter, _ = InvoiceCounter.objects.get_or_create(series=series, year=year)
    counter = InvoiceCounter.objects.select_for_update().get(pk=counter.pk)
    first = counter.next_number
    InvoiceCounter.objects.filter(pk=counter.pk).update(next_number=first + count)
    return first


def format_number(series: str, year: int, sequence: int) -> str:
    return f"{series + '-' if series else ''}{year}-{sequence:04d}"


def _totals_by_invoice(invoices: list[Invoice]) -> dict[int, MoneyTotals]:
    """Net and VAT of each invoice from its lines, in one query (VAT rounded per line)."""
    currency = {invoice.pk: invoice.currency for invoice in invoices}
    rows = (BillingItem.objects.filter(invoice_id__in=list(currency))
            .values_list("invoice_id", "currency", "total", "vat_rate").order_by())
    by_invoice: dict[int, list] = {pk: [] for pk in currency}
    for invoice_id, item_currency, total, vat_rate in rows:
        by_invoice[invoice_id].append((item_currency, total, vat_rate))
    return {pk: totals_by_currency(lines).get(currency[pk], MoneyTotals()) for pk, lines in by_invoice.items()}


def _finalise_all(invoices: list[Invoice], *, actor, series: str, item_status: str) -> list[Invoice]:
    """Number, total and post `invoices` (already locked, in numbering order) and give their
    items `item_status`: a few statements however many invoices there are."""
    now = timezone.now()
    years = [periods.month_of_instant(now, invoice.client.time_zone).year for invoice in invoices]
    firsts = {year: _take_numbers(series, year, years.count(year)) for year in sorted(set(years))}
    totals = _totals_by_invoice(invoices)
    BillingItem.objects.filter(invoice__in=invoices, status__in=(ItemStatus.RESERVED, ItemStatus.INVOICED)).update(
        status=item_status, updated_at=now)
    for invoice, year in zip(invoices, years, strict=True):
        sequence, firsts[year] = firsts[year], firsts[year] + 1
        money_totals = totals[invoice.pk]
        invoice.status, invoice.series, invoice.year, invoice.sequence = Invoice.Status.POSTED, series, year, sequence
        invoice.number = format_number(series, year, sequence)
        invoice.net, invoice.vat, invoice.gross = money_totals.net, money_totals.vat, money_totals.gross
        invoice.posted_at, invoice.posted_by = now, actor
    Invoice.objects.bulk_update(invoices, ["status", "series", "year", "sequence", "number", "net", "vat", "gross",
                                           "posted_at", "posted_by"], batch_size=POST_BATCH_SIZE)
    return invoices


def _finalise(invoice: Invoice, *, actor, series: str, item_status: str) -> Invoice:
    return _finalise_all([invoice], actor=actor, series=series, item_status=item_status)[0]


def _close_run_if_done(run_id: int | None) -> None:
    if run_id and not Invoice.objects.filter(run_id=run_id, status=Invoice.Status.DRAFT).exists():
        BillingRun.objects.filter(pk=run_id, status=BillingRun.Status.OPEN).update(
            status=BillingRun.Status.POSTED, posted_at=timezone.now())


def _log_posted(invoices: list[Invoice], *, actor, started: float) -> None:
    counts = dict(BillingItem.objects.filter(invoice__in=invoices).values_list("invoice_id").annotate(Count("pk"))
                  .order_by())
    duration = int((time.monotonic() - started) * 1000)
    BillingLog.objects.bulk_create([BillingLog(
        action=LogAction.POST, actor=actor, item_count=counts.get(posted.pk, 0), duration_ms=duration,
        scope={"invoice": posted.pk, "run": posted.run_id, "client": posted.client_id},
        summary=(f"Posted {posted.number}: net {posted.net}, VAT {posted.vat}, gross {posted.gross} "
                 f"{posted.currency}")[:500]) for posted in invoices])


@transaction.atomic
def invoice_post(*, actor, invoice: Invoice) -> Invoice:
    require_billing(actor, "admin")
    started = time.monotonic()
    invoice = _lock_draft(invoice, "posted")
    posted = _finalise(invoice, actor=actor, series=INVOICE_SERIES, item_status=ItemStatus.INVOICED)
    _close_run_if_done(posted.run_id)
    _log_posted([posted], actor=actor, started=started)
    return posted


@transaction.atomic
def run_post(*, actor, run: BillingRun) -> list[Invoice]:
    """Post every draft of an open run, all or nothing, numbered in the order of client names."""
    require_billing(actor, "admin")
    started = time.monotonic()
    run = _lock_run(run, "posted")
    drafts = list(Invoice.objects.select_for_update(of=("self",)).filter(run=run, status=Invoice.Status.DRAFT)
                  .select_related("client").order_by("client__name", "pk"))
    if not drafts:
        raise Conflict(NOTHING_TO_POST_MESSAGE.format(run=run.pk), code="nothing_to_post")
    posted = _finalise_all(drafts, actor=actor, series=INVOICE_SERIES, item_status=ItemStatus.INVOICED)
    _close_run_if_done(run.pk)
    _log_posted(posted, actor=actor, started=started)
    return posted


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

