"""`verify_ledger`: recompute what posted billing data must say and report every inconsistency
(issue 9). Read-only; a handful of queries however many invoices there are.

Checked: each posted invoice's net, VAT and gross against its lines (VAT rounded per line);
numbers gapless and unique per series and year, spelled as their sequence, and the counter past
the last one; every line of a posted invoice invoiced or credited, every invoiced line on a posted
invoice, every reserved line on a draft; every credited line reversed by exactly one line of a
posted credit note."""

from collections import defaultdict
from dataclasses import dataclass

from .choices import ItemStatus, SourceType
from .invoicing import format_number
from .models import BillingItem, Invoice, InvoiceCounter
from .selectors import MoneyTotals, totals_by_currency

POSTED_LINE_STATUSES = {ItemStatus.INVOICED, ItemStatus.CREDITED}


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def _lines_by_invoice() -> dict[int, list[tuple]]:
    lines = defaultdict(list)
    rows = BillingItem.objects.filter(invoice__isnull=False).values_list(
        "invoice_id", "pk", "status", "currency", "total", "vat_rate").order_by("invoice_id", "pk")
    for invoice_id, *line in rows:
        lines[invoice_id].append(tuple(line))
    return lines


def _check_totals(invoice: dict, lines: list[tuple]) -> list[Problem]:
    totals = totals_by_currency([(currency, total, vat) for _, _, currency, total, vat in lines]).get(
        invoice["currency"], MoneyTotals())
    expected = (totals.net, totals.vat, totals.gross)
    stored = (invoice["net"], invoice["vat"], invoice["gross"])
    if stored != expected:
        return [Problem("totals_differ", f"{invoice['number']}: stored net/VAT/gross {stored}, lines give {expected}")]
    return []


def _check_lines(invoice: dict, lines: list[tuple]) -> list[Problem]:
    wrong = [pk for pk, status, *_ in lines if status not in POSTED_LINE_STATUSES]
    if invoice["kind"] == Invoice.Kind.CREDIT_NOTE:
        wrong = [pk for pk, status, *_ in lines if status != ItemStatus.INVOICED]
    return [Problem("line_state", f"{invoice['number']}: line {pk} is not invoiced or credited") for pk in wrong]


def _check_numbers(posted: list[dict]) -> list[Problem]:
    problems = []
    by_series = defaultdict(list)
    for invoice in posted:
        by_series[(invoice["series"], invoice["year"])].append(invoice)
        if invoice["number"] != format_number(invoice["series"], invoice["year"], invoice["sequence"]):
            problems.append(Problem("number_spelling", f"invoice {invoice['pk']} is numbered {invoice['number']}"))
    counters = {(c.series, c.year): c.next_number for c in InvoiceCounter.objects.all()}
    for (series, year), invoices in sorted(by_series.items()):
        sequences = sorted(invoice["sequence"] for invoice in invoices)
        label = f"{series or 'invoices'} {year}"
        if sequences != list(range(1, len(sequences) + 1)):
            missing = sorted(set(range(1, sequences[-1] + 1)) - set(sequences))
            problems.append(Problem("number_gap", f"{label}: numbers missing {missing[:10]} or repeated"))
        if counters.get((series, year), 0) != sequences[-1] + 1:
            problems.append(Problem("counter", f"{label}: counter at {counters.get((series, year))}, "
                                               f"last number {sequences[-1]}"))
    return problems


def _check_item_states(drafts: set[int], posted: set[int]) -> list[Problem]:
    problems = []
    for pk, status, invoice_id in BillingItem.objects.filter(
            status__in=(ItemStatus.RESERVED, ItemStatus.INVOICED)).values_list("pk", "status", "invoice_id"):
        home = drafts if status == ItemStatus.RESERVED else posted
        if invoice_id not in home:
            problems.append(Problem("item_state", f"item {pk} is {status} but invoice {invoice_id} is not "
                                                  f"{'a draft' if status == ItemStatus.RESERVED else 'posted'}"))
    return problems


def _check_credits(posted: set[int]) -> list[Problem]:
    reversals = defaultdict(list)
    for original, invoice_id in BillingItem.objects.filter(source_type=SourceType.CREDIT).values_list(
            "original_item_id", "invoice_id"):
        reversals[original].append(invoice_id)
    problems = []
    for pk in BillingItem.objects.filter(status=ItemStatus.CREDITED).values_list("pk", flat=True):
        notes = reversals.get(pk, [])
        if len(notes) != 1 or notes[0] not in posted:
            problems.append(Problem("credit", f"credited item {pk} has {len(notes)} reversal(s) on posted notes"))
    return problems


def verify() -> list[Problem]:
    invoices = list(Invoice.objects.values("pk", "kind", "status", "series", "year", "sequence", "number", "net",
                                           "vat", "gross", "currency").order_by("pk"))
    posted = [invoice for invoice in invoices if invoice["status"] == Invoice.Status.POSTED]
    lines = _lines_by_invoice()
    problems = []
    for invoice in posted:
        problems += _check_totals(invoice, lines.get(invoice["pk"], []))
        problems += _check_lines(invoice, lines.get(invoice["pk"], []))
    problems += _check_numbers(posted)
    posted_ids = {invoice["pk"] for invoice in posted}
    drafts = {invoice["pk"] for invoice in invoices if invoice["status"] == Invoice.Status.DRAFT}
    problems += _check_item_states(drafts, posted_ids)
    problems += _check_credits(posted_ids)
    return problems
