"""Exports of posted invoices and credit notes (SPEC §4 "Exports"): a PDF for the client, CSV and
JSON for accounting (one row per line), and a zip of a whole billing run.

Every format reads the same rows (`_Document`), so PDF, CSV and JSON agree to the cent: line VAT
is `money.line_vat` per line and the totals are `selectors.totals_by_currency` of those lines
(SPEC §4 rule 7). Money, quantities and rates are written as Decimal strings, never floats; dates
are the client's (its time zone decides the invoice date, as it decided the number's year).
A draft is refused: its lines may still change, so an export would be a document nobody issued.

The PDF is rendered from `templates/billing/invoice_pdf.html` by xhtml2pdf (pure Python)."""

import csv
import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from xhtml2pdf import pisa

from core.errors import Conflict

from . import periods
from .models import BillingItem, BillingRun, Invoice
from .money import line_vat
from .selectors import MoneyTotals, totals_by_currency

EXPORT_CONTENT_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
}
NOT_POSTED_EXPORT_MESSAGE = "Invoice {invoice} is a draft; only posted invoices and credit notes can be exported."
NOTHING_POSTED_MESSAGE = "Run {run} has no posted invoices to export yet."
PDF_FAILED_MESSAGE = "Could not render the PDF of {invoice}."
PDF_TEMPLATE = "billing/invoice_pdf.html"
# The invoice a line belongs to, repeated on every line so that each row stands on its own in an
# accounting import; then the line itself.
DOCUMENT_COLUMNS = ("invoice_number", "kind", "invoice_date", "posted_at", "credited_invoice", "client_id",
                    "client_name", "client_org_number", "currency")
LINE_COLUMNS = (*DOCUMENT_COLUMNS, "line_id", "source_type", "source_key", "period", "description", "qty",
                "unit_price", "vat_rate", "line_net", "line_vat", "line_gross", "original_item")
SUMMARY_COLUMNS = (*DOCUMENT_COLUMNS, "lines", "net", "vat", "gross")
# Reading order of the lines: month, then kind of source, then date.
LINE_ORDER = ("period_month", "source_type", "source_date", "pk")
# Who issues the invoices (settings.BILLING_COMPANY overrides any key); shown only when named.
COMPANY_DEFAULTS = {"name": "", "org_number": "", "address": "", "email": ""}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# What makes a spreadsheet read a CSV cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    def __init__(self, item: BillingItem):
        self.item = item
        self.vat = line_vat(item.total, item.vat_rate)
        self.gross = item.total + self.vat


class _Document:
    """A posted invoice or credit note with its lines, read once for every format."""

    def __init__(self, invoice: Invoice):
        if invoice.status != Invoice.Status.POSTED:
            raise Conflict(NOT_POSTED_EXPORT_MESSAGE.format(invoice=invoice.label), code="invoice_not_posted")
        self.invoice = invoice
        self.client = invoice.client
        self.lines = [_Line(item) for item in invoice.items.order_by(*LINE_ORDER)]
        self.posted_local: datetime = invoice.posted_at.astimezone(periods.zone(self.client.time_zone))
        self.totals = totals_by_currency([(line.item.currency, line.item.total, line.item.vat_rate)
                                          for line in self.lines]).get(invoice.currency, MoneyTotals())

    @property
    def is_credit_note(self) -> bool:
        return self.invoice.kind == Invoice.Kind.CREDIT_NOTE

    @property
    def credited(self) -> Invoice | None:
        return self.invoice.credited_invoice if self.invoice.credited_invoice_id else None

    @property
    def months(self) -> list[date]:
        found = sorted({line.item.period_month for line in self.lines})
        return found or ([self.invoice.period_month] if self.invoice.period_month else [])

    @property
    def period_label(self) -> str:
        months = self.months
        if not months:
            return ""
        first, last = f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}"
        return first if first == last else f"{first} – {last}"

    def fields(self) -> dict:
        invoice, client = self.invoice, self.client
        return {
            "invoice_number": invoice.number, "kind": invoice.kind,
            "invoice_date": self.posted_local.date().isoformat(),
            "posted_at": self.posted_local.isoformat(timespec="seconds"),
            "credited_invoice": self.credited.number if self.credited else None,
            "client_id": client.pk, "client_name": client.name, "client_org_number": client.org_number,
            "currency": invoice.currency,
        }

    def rows(self) -> list[dict]:
        document = self.fields()
        return [{**document,
                 "line_id": line.item.pk, "source_type": line.item.source_type, "source_key": line.item.source_key,
                 "period": f"{line.item.period_month:%Y-%m}", "description": line.item.description,
                 "qty": str(line.item.qty), "unit_price": str(line.item.unit_price),
                 "vat_rate": str(line.item.vat_rate), "line_net": str(line.item.total), "line_vat": str(line.vat),
                 "line_gross": str(line.gross), "original_item": line.item.original_item_id}
                for line in self.lines]

    def summary(self) -> dict:
        return {**self.fields(), "lines": len(self.lines), "net": str(self.totals.net), "vat": str(self.totals.vat),
                "gross": str(self.totals.gross)}


# --- Formats -------------------------------------------------------------------------------------

def invoice_pdf(invoice: Invoice) -> bytes:
    """The PDF of a posted invoice or credit note. Conflict `invoice_not_posted` for a draft."""
    return _pdf(_Document(invoice))


def invoice_csv(invoice: Invoice) -> str:
    """One row per line for accounting (columns: LINE_COLUMNS), with a header row."""
    return _csv(LINE_COLUMNS, _Document(invoice).rows())


def invoice_json(invoice: Invoice) -> dict:
    """The invoice's fields and totals, and under "lines" one object per line with the same keys
    as the CSV columns. JSON-ready: Decimals are strings, ids integers, empty links null."""
    return _json(_Document(invoice))


def _csv(columns, rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({key: _csv_cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def _csv_cell(value):
    """A cell a spreadsheet shows as text: text starting like a formula (a description such as
    `=HYPERLINK(...)`) gets a leading apostrophe (CSV injection). Numbers, negative ones
    included, stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _json(document: _Document) -> dict:
    return {**document.summary(), "period": document.period_label, "lines": document.rows()}


def _pdf(document: _Document) -> bytes:
    html = render_to_string(PDF_TEMPLATE, _pdf_context(document))
    output = io.BytesIO()
    # No link_callback resolves anything: the template needs no files and nothing may be fetched.
    status = pisa.CreatePDF(html, dest=output, encoding="utf-8", link_callback=lambda uri, rel: "")
    if status.err:
        raise RuntimeError(PDF_FAILED_MESSAGE.format(invoice=document.invoice.label))
    return output.getvalue()


def _pdf_context(document: _Document) -> dict:
    # Dates are formatted here, not with the template's |date, which would show them in the
    # server's time zone instead of the client's.
    invoice, credited, zone = document.invoice, document.credited, document.posted_local.tzinfo
    position = _positions(credited) if credited else {}
    return {
        "company": {**COMPANY_DEFAULTS, **getattr(settings, "BILLING_COMPANY", {})},
        "client": document.client,
        "title": invoice.get_kind_display(),
        "number": invoice.number,
        "is_credit_note": document.is_credit_note,
        "credited_number": credited.number if credited else "",
        "credited_date": f"{credited.posted_at.astimezone(zone):%Y-%m-%d}" if credited and credited.posted_at else "",
        "invoice_date": f"{document.posted_local:%Y-%m-%d}",
        "posted_at": f"{document.posted_local:%Y-%m-%d %H:%M}",
        "time_zone": document.client.time_zone,
        "period": document.period_label,
        "currency": invoice.currency,
        "lines": [{"description": line.item.description, "qty": _plain(line.item.qty),
                   "unit_price": _plain(line.item.unit_price), "vat_rate": _percent(line.item.vat_rate),
                   "total": _plain(line.item.total), "credits_line": position.get(line.item.original_item_id)}
                  for line in document.lines],
        "net": _plain(document.totals.net),
        "vat": _plain(document.totals.vat),
        "gross": _plain(document.totals.gross),
    }


def _positions(invoice: Invoice) -> dict[int, int]:
    """Line id -> its position (from 1) on the invoice as printed: how the client finds it."""
    ids = invoice.items.order_by(*LINE_ORDER).values_list("pk", flat=True)
    return {pk: position for position, pk in enumerate(ids, start=1)}


def _plain(value: Decimal, min_places: int = 2) -> str:
    """For reading, not for accounting: '1,234.50' from 1234.5000, '0.3333' kept exact."""
    whole, _, fraction = f"{value:,f}".partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def _percent(rate: Decimal) -> str:
    return f"{_plain(rate * 100, 0)} %"


# --- Run archive ---------------------------------------------------------------------------------

def run_archive(run: BillingRun) -> bytes:
    """A zip of every posted invoice of `run` and the posted credit notes of those invoices:
    `<number>.pdf`, `<number>.csv`, `<number>.json` each, and a `run-<id>.csv` summary."""
    buffer = io.BytesIO()
    write_run_archive(run, buffer)
    return buffer.getvalue()


def write_run_archive(run: BillingRun, stream) -> None:
    """Write the archive of `run_archive` to a writable binary stream, entry by entry: only one
    document is in memory at a time, and the stream need not be seekable (a response, a pipe).
    Entries are dated by posting time, so the same run always gives the same entries."""
    documents = run_documents(run)
    if not documents:
        raise Conflict(NOTHING_POSTED_MESSAGE.format(run=run.pk), code="nothing_posted")
    summary, stamp = [], ZIP_EPOCH
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for invoice in documents:
            document = _Document(invoice)
            posted = document.posted_local.timetuple()[:6]
            stamp = max(stamp, posted)
            _add(archive, f"{invoice.number}.pdf", _pdf(document), posted)
            _add(archive, f"{invoice.number}.csv", _csv(LINE_COLUMNS, document.rows()).encode(), posted)
            _add(archive, f"{invoice.number}.json", json.dumps(_json(document), ensure_ascii=False, indent=2).encode(),
                 posted)
            summary.append(document.summary())
        _add(archive, f"run-{run.pk}.csv", _csv(SUMMARY_COLUMNS, summary).encode(), stamp)


def run_documents(run: BillingRun) -> list[Invoice]:
    """What a run's archive holds: its posted invoices, then their posted credit notes, in number order."""
    return list(Invoice.objects.filter(Q(run=run, kind=Invoice.Kind.INVOICE)
                                       | Q(credited_invoice__run=run, kind=Invoice.Kind.CREDIT_NOTE),
                                       status=Invoice.Status.POSTED)
                .select_related("client", "credited_invoice").order_by("series", "year", "sequence"))


def _add(archive: zipfile.ZipFile, name: str, data: bytes, stamp: tuple) -> None:
    entry = zipfile.ZipInfo(name, date_time=stamp)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    archive.writestr(entry, data)
