"""Billing runs and invoices through the REST API: the whole flow from build to credit note and
rebilling, dry runs, every refusal with its code (400/404/409, never 500), filters, downloads
(PDF, CSV, JSON, run zip) and constant query counts of the lists."""

import io
import json
import zipfile
from datetime import date

import pytest

from billing import invoicing
from billing.choices import ItemStatus, SourceType
from billing.filtersets import INVALID_PERIOD_MESSAGE
from billing.guards import LOCKED_BY_DRAFT_MESSAGE, LOCKED_BY_INVOICE_MESSAGE
from billing.models import BillingItem, BillingLog, BillingRun, Invoice
from tests.billing.conftest import reconcile
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, TicketFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db

BASE = "/api/billing/"
RUNS, INVOICES = f"{BASE}runs/", f"{BASE}invoices/"
OCTOBER = date(2026, 10, 1)


@pytest.fixture
def api(client_for, clerk):
    return client_for(clerk)


def line_of(entry) -> BillingItem:
    return BillingItem.objects.get(source_type=SourceType.TICKET_TIME, source_id=entry.pk,
                                   status__in=[ItemStatus.PENDING, ItemStatus.RESERVED, ItemStatus.INVOICED])


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if status != 204 else {}


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field:
        assert field in body["errors"], body
    return body


def build(api, **payload) -> dict:
    return ok(api.post(RUNS, {"period": "2026-10", **payload}), 201)


def posted_invoice(api) -> dict:
    draft = build(api)["drafts"][0]
    return ok(api.post(f"{INVOICES}{draft['id']}/post/"))


# --- The whole flow -------------------------------------------------------------------------------

def test_build_lock_remove_edit_refresh_post_credit_recalculate_and_rebill(client_for, api, owner, customer, entries,
                                                                          django_capture_on_commit_callbacks):
    member = client_for(owner)
    built = build(api)
    run = built["run"]
    assert built["dry_run"] is False and built["skipped"] == []
    assert (run["period"], run["status"], run["include_prior_periods"], run["client_ids"]) == (
        "2026-10", "open", True, None)
    assert (run["created_by"], run["invoice_count"], run["draft_count"], run["item_count"], run["net"]) == (
        "bella", 1, 1, 5, {"NOK": "15000.00"})
    [draft] = built["drafts"]
    assert built["plan"] == [{"client": customer.pk, "currency": "NOK", "items": 5, "net": "15000.00",
                              "invoice": draft["id"]}]
    assert (draft["status"], draft["kind"], draft["number"], draft["client_name"], draft["line_count"]) == (
        "draft", "invoice", "", "Fjord AS", 5)
    assert (draft["net"], draft["vat"], draft["gross"], draft["period"]) == ("15000.00", "3750.00", "18750.00",
                                                                              "2026-10")
    label = Invoice.objects.get(pk=draft["id"]).label

    # A reserved entry is locked, and the refusal names the draft.
    first = entries[0]
    body = refused(member.patch(f"/api/time-entries/{first.pk}/", {"minutes": 30}), 409, "locked_by_draft")
    assert body["detail"] == LOCKED_BY_DRAFT_MESSAGE.format(draft=label)

    removed = ok(api.post(f"{INVOICES}{draft['id']}/lines/{line_of(first).pk}/remove/"))
    assert (removed["status"], removed["invoice"], removed["run"]) == ("pending", None, None)
    with django_capture_on_commit_callbacks(execute=True):  # reconciliation right after the save
        ok(member.patch(f"/api/time-entries/{first.pk}/", {"minutes": 30}))

    detail = ok(api.get(f"{INVOICES}{draft['id']}/"))
    assert detail["stale"] is True and detail["stale_reasons"] == ["1 new pending item(s) since the draft was built"]
    assert len(detail["lines"]) == 4 and detail["net"] == "14000.00"
    refreshed = ok(api.post(f"{INVOICES}{draft['id']}/refresh/"))
    assert refreshed["stale"] is False and refreshed["stale_reasons"] == [] and len(refreshed["lines"]) == 5
    assert refreshed["net"] == "14500.00" and {line["status"] for line in refreshed["lines"]} == {"reserved"}

    posted = ok(api.post(f"{INVOICES}{draft['id']}/post/"))
    assert (posted["status"], posted["number"], posted["net"], posted["vat"], posted["gross"]) == (
        "posted", "2026-0001", "14500.00", "3625.00", "18125.00")
    assert posted["posted_by"] == "bella" and posted["posted_at"] and posted["stale"] is False
    assert ok(api.get(f"{RUNS}{run['id']}/"))["status"] == "posted"
    body = refused(member.patch(f"/api/time-entries/{first.pk}/", {"minutes": 45}), 409, "locked_by_invoice")
    assert body["detail"] == LOCKED_BY_INVOICE_MESSAGE.format(invoice="2026-0001")

    credited = [entries[1], entries[3]]
    note = ok(api.post(f"{INVOICES}{draft['id']}/credit/", {"items": [line_of(e).pk for e in credited]}), 201)
    assert (note["kind"], note["number"], note["status"], note["credited_invoice"]) == (
        "credit_note", "CN-2026-0001", "posted", draft["id"])
    assert note["net"] == "-6000.00" and note["gross"] == "-7500.00" and len(note["lines"]) == 2
    assert ok(api.get(f"{INVOICES}{draft['id']}/"))["credit_notes"] == [note["id"]]

    # Exactly the two credited entries are editable again.
    for entry in entries:
        response = member.patch(f"/api/time-entries/{entry.pk}/", {"minutes": 15})
        assert response.status_code == (200 if entry in credited else 409), (entry, response.content)

    queued = ok(api.post(f"{BASE}recalculate/", {"period": "2026-10"}), 202)
    assert ok(api.get(queued["status_url"]))["counts"]["created"] == 2
    again = build(api)
    [rebill] = again["drafts"]
    lines = ok(api.get(f"{INVOICES}{rebill['id']}/"))["lines"]
    assert sorted(line["source_id"] for line in lines) == sorted(e.pk for e in credited)
    assert rebill["net"] == "500.00"  # two quarter hours
    assert set(BillingLog.objects.values_list("action", flat=True)) >= {
        "build", "remove", "refresh", "post", "credit", "reconcile"}


def test_dry_run_says_what_a_build_would_do_and_writes_nothing(api, customer, entries):
    logs = BillingLog.objects.count()
    body = ok(api.post(RUNS, {"period": "2026-10", "dry_run": True}), 200)
    assert body == {"dry_run": True, "run": None, "drafts": [], "skipped": [],
                    "plan": [{"client": customer.pk, "currency": "NOK", "items": 5, "net": "15000.00",
                              "invoice": None}]}
    assert not BillingRun.objects.exists() and not Invoice.objects.exists()
    assert set(BillingItem.objects.values_list("status", flat=True)) == {"pending"}
    assert BillingLog.objects.count() == logs


def test_build_for_chosen_clients_month_only_and_skipped_clients(api, owner, ticket, customer, entries):
    other = ClientFactory(name="Havn AS")
    hvn = ProjectFactory(key="HVN")
    ContractFactory(client=other, projects=[hvn])
    TimeEntryFactory(ticket=TicketFactory(project=hvn), work_date=date(2026, 10, 1))
    september = TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 9, 30))
    reconcile()

    month_only = build(api, clients=[customer.pk], include_prior_periods=False)
    assert month_only["run"]["client_ids"] == [customer.pk] and month_only["run"]["include_prior_periods"] is False
    assert [d["client"] for d in month_only["drafts"]] == [customer.pk]
    assert line_of(september).status == "pending"

    # Everyone: the held client is skipped and named, the other one is built.
    both = build(api)
    assert [d["client"] for d in both["drafts"]] == [other.pk]
    [skipped] = both["skipped"]
    assert (skipped["client"], skipped["run"], skipped["invoice"]) == (
        customer.pk, month_only["run"]["id"], month_only["drafts"][0]["id"])
    assert f"open run {month_only['run']['id']}" in skipped["detail"]


def test_refusals_of_a_build(api, customer, entries):
    first = build(api)
    body = refused(api.post(RUNS, {"period": "2026-10"}), 409, "already_in_open_run")
    assert body["skipped"][0]["run"] == first["run"]["id"] and f"open run {first['run']['id']}" in body["detail"]
    refused(api.post(RUNS, {"period": "2026-09"}), 409, "nothing_to_build")
    for period in ("2026-13", "2026-1", "October", "", 202610):
        body = refused(api.post(RUNS, {"period": period}), 400, "invalid_period" if period else "blank", "period")
        assert period == "" or body["detail"] == INVALID_PERIOD_MESSAGE
    refused(api.post(RUNS, {}), 400, "required", "period")
    refused(api.post(RUNS, {"period": "2026-10", "clients": [999]}), 400, "does_not_exist", "clients")
    refused(api.post(RUNS, {"period": "2026-10", "clients": ["x"]}), 400, "invalid", "clients")
    refused(api.post(RUNS, {"period": "2026-10", "clients": [2**63]}), 400, "max_value", "clients")
    refused(api.post(RUNS, {"period": "2026-10", "clients": 5}), 400, "not_a_list", "clients")
    refused(api.post(RUNS, {"period": "2026-10", "dry_run": "maybe"}), 400, "invalid", "dry_run")
    refused(api.post(RUNS, "[1, 2]", content_type="application/json"), 400, "invalid")
    assert BillingRun.objects.count() == 1


def test_a_form_post_keeps_the_defaults(api, entries):
    response = api.post(RUNS, {"period": "2026-10"}, format="multipart")
    assert ok(response, 201)["run"]["include_prior_periods"] is True


def test_delete_an_open_run_releases_its_lines_and_a_posted_run_stays(api, entries):
    run = build(api)["run"]
    assert api.delete(f"{RUNS}{run['id']}/").status_code == 204
    assert not Invoice.objects.exists() and set(BillingItem.objects.values_list("status", flat=True)) == {"pending"}
    refused(api.get(f"{RUNS}{run['id']}/"), 404, "not_found")

    run = build(api)["run"]
    posted = ok(api.post(f"{RUNS}{run['id']}/post/"))
    assert posted["run"]["status"] == "posted" and posted["run"]["draft_count"] == 0
    assert [invoice["number"] for invoice in posted["invoices"]] == ["2026-0001"]
    refused(api.delete(f"{RUNS}{run['id']}/"), 409, "run_not_open")
    refused(api.post(f"{RUNS}{run['id']}/post/"), 409, "run_not_open")
    refused(api.put(f"{RUNS}{run['id']}/", {}), 405, "method_not_allowed")


def test_a_run_with_a_draft_posted_on_its_own_cannot_be_deleted(api, clerk, entries):
    """Found by fuzzing (tests/reliability/test_fuzz_api.py): deleting such a run was a 500."""
    from billing import services as billing_services

    billing_services.sales_line_create(actor=clerk, client=ClientFactory(name="Another AS"), date=date(2026, 10, 3),
                                       description="Setup", qty="1", unit_price="500.00")
    reconcile()
    result = build(api)
    assert len(result["drafts"]) == 2
    first, second = result["drafts"]
    number = ok(api.post(f"{INVOICES}{first['id']}/post/"))["number"]
    body = refused(api.delete(f"{RUNS}{result['run']['id']}/"), 409, "run_has_posted_invoices")
    assert body["invoices"] == [number] and number in body["detail"]
    assert Invoice.objects.get(pk=first["id"]).status == "posted"
    assert Invoice.objects.get(pk=second["id"]).status == "draft"
    assert ok(api.post(f"{RUNS}{result['run']['id']}/post/"))["run"]["status"] == "posted"


def test_posting_a_run_posts_every_draft_with_gapless_numbers(api, entries):
    other = ClientFactory(name="Annen AS")
    project = ProjectFactory(key="ANN")
    ContractFactory(client=other, projects=[project])
    TimeEntryFactory(ticket=TicketFactory(project=project), work_date=date(2026, 10, 2))
    reconcile()
    run = build(api)["run"]
    assert (run["invoice_count"], run["draft_count"], run["item_count"]) == (2, 2, 6)
    posted = ok(api.post(f"{RUNS}{run['id']}/post/"))
    assert sorted(invoice["number"] for invoice in posted["invoices"]) == ["2026-0001", "2026-0002"]
    assert all(invoice["status"] == "posted" for invoice in posted["invoices"])


def test_refusals_on_invoices(api, entries):
    draft = build(api)["drafts"][0]
    url = f"{INVOICES}{draft['id']}/"
    line = line_of(entries[0])
    refused(api.post(f"{url}credit/"), 409, "invoice_not_posted")
    refused(api.post(f"{url}debit/", {"item": line.pk, "qty": "1", "unit_price": "1", "description": "x"}), 409,
            "invoice_not_posted")
    refused(api.get(f"{url}pdf/"), 409, "invoice_not_posted")
    refused(api.get(f"{url}export/", {"format": "json"}), 409, "invoice_not_posted")
    refused(api.post(f"{url}lines/999999/remove/"), 404, "not_found")
    refused(api.post(f"{url}lines/99999999999999999999999/remove/"), 404, "not_found")
    refused(api.post(f"{url}lines/{line.pk}/remove/", {"void_reason": "x" * 501}), 400, "max_length", "void_reason")

    ok(api.post(f"{url}post/"))
    for action in ("post", "refresh", f"lines/{line.pk}/remove"):
        refused(api.post(f"{url}{action}/"), 409, "invoice_not_draft")
    refused(api.post(f"{url}credit/", {"items": [999999]}), 400, "not_on_invoice", "items")
    refused(api.post(f"{url}credit/", {"items": "all"}), 400, "not_a_list", "items")
    debit = {"item": line.pk, "qty": "1", "unit_price": "100", "description": "Extra"}
    refused(api.post(f"{url}debit/", {**debit, "item": 999999}), 400, "not_on_invoice", "item")
    refused(api.post(f"{url}debit/", {**debit, "qty": "0"}), 400, "min_value", "qty")
    refused(api.post(f"{url}debit/", {**debit, "unit_price": "-1"}), 400, "min_value", "unit_price")
    refused(api.post(f"{url}debit/", {**debit, "qty": "abc"}), 400, "invalid", "qty")
    huge = {**debit, "qty": "9999999999.9999", "unit_price": "9999999999.9999"}  # fits each column, not the total
    refused(api.post(f"{url}debit/", huge), 400, "total_too_large", "unit_price")
    refused(api.post(f"{url}debit/", {key: value for key, value in debit.items() if key != "description"}), 400,
            "required", "description")
    refused(api.get(f"{url}export/", {"format": "xml"}), 400, "invalid_choice", "format")

    note = ok(api.post(f"{url}credit/", {"items": [line.pk]}), 201)
    refused(api.post(f"{url}credit/", {"items": [line.pk]}), 409, "not_creditable")
    refused(api.post(f"{INVOICES}{note['id']}/credit/"), 409, "not_an_invoice")
    for missing in ("999999", "99999999999999999999999", "abc"):
        refused(api.get(f"{INVOICES}{missing}/"), 404, "not_found")
        refused(api.post(f"{INVOICES}{missing}/post/"), 404, "not_found")
    refused(api.post(f"{RUNS}999999/post/"), 404, "not_found")


def test_remove_with_a_void_reason_and_the_last_line_removes_the_draft(api, owner, ticket, contract):
    single = TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 3))
    reconcile()
    draft = build(api)["drafts"][0]
    item = ok(api.post(f"{INVOICES}{draft['id']}/lines/{line_of(single).pk}/remove/", {"void_reason": "Goodwill"}))
    assert (item["status"], item["void_reason"], item["invoice"]) == ("void", "Goodwill", None)
    refused(api.get(f"{INVOICES}{draft['id']}/"), 404, "not_found")


def test_a_refresh_with_nothing_left_removes_the_draft(api, entries):
    draft = build(api)["drafts"][0]
    invoice = Invoice.objects.get(pk=draft["id"])
    BillingItem.objects.filter(invoice=invoice).update(status=ItemStatus.VOID, invoice=None, run=None)
    assert api.post(f"{INVOICES}{draft['id']}/refresh/").status_code == 204
    assert not Invoice.objects.filter(pk=draft["id"]).exists()


def test_debit_adds_a_pending_item_linked_to_the_line(api, entries):
    posted = posted_invoice(api)
    line = posted["lines"][0]
    debit = ok(api.post(f"{INVOICES}{posted['id']}/debit/", {"item": line["id"], "qty": "0.5", "unit_price": "1000",
                                                              "description": "Extra review"}), 201)
    assert (debit["status"], debit["source_type"], debit["total"], debit["original_item"], debit["invoice"]) == (
        "pending", "debit", "500.00", line["id"], None)
    assert debit["description"] == "Extra review" and debit["ticket"] == line["ticket"]


def test_crediting_everything_without_a_body(api, entries):
    posted = posted_invoice(api)
    note = ok(api.post(f"{INVOICES}{posted['id']}/credit/"), 201)
    assert note["net"] == "-15000.00" and note["line_count"] == 5
    assert {line["status"] for line in ok(api.get(f"{INVOICES}{posted['id']}/"))["lines"]} == {"credited"}


# --- Downloads ------------------------------------------------------------------------------------

def test_pdf_csv_and_json_of_a_posted_invoice(api, entries):
    posted = posted_invoice(api)
    url = f"{INVOICES}{posted['id']}/"
    pdf = api.get(f"{url}pdf/", HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="2026-0001.pdf"'
    assert pdf.content.startswith(b"%PDF")

    csv = api.get(f"{url}export/", {"format": "csv"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert csv["Content-Disposition"] == 'attachment; filename="2026-0001.csv"'
    rows = csv.content.decode().strip().splitlines()
    assert len(rows) == 6 and "2026-0001" in rows[1]
    assert api.get(f"{url}export/").content == csv.content  # CSV unless asked otherwise

    exported = api.get(f"{url}export/", {"format": "json"})
    assert exported["Content-Type"] == "application/json"
    assert exported["Content-Disposition"] == 'attachment; filename="2026-0001.json"'
    document = json.loads(exported.content)
    assert len(document["lines"]) == 5 and "2026-0001" in json.dumps(document)


def test_a_refused_download_answers_json_whatever_the_client_accepts(client_for, api, entries):
    draft = build(api)["drafts"][0]
    response = api.get(f"{INVOICES}{draft['id']}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response["Content-Type"] == "application/json"
    refused(response, 409, "invoice_not_posted")
    response = client_for(None).get(f"{INVOICES}{draft['id']}/pdf/", HTTP_ACCEPT="application/pdf")
    refused(response, 401, "not_authenticated")


def test_zip_of_a_run(api, entries):
    run = build(api)["run"]
    refused(api.get(f"{RUNS}{run['id']}/export/"), 409, "nothing_posted")
    posted = ok(api.post(f"{RUNS}{run['id']}/post/"))["invoices"][0]
    ok(api.post(f"{INVOICES}{posted['id']}/credit/", {"items": [posted_line["id"] for posted_line in
                                                                 ok(api.get(f"{INVOICES}{posted['id']}/"))["lines"][:1]]}),
       201)
    response = api.get(f"{RUNS}{run['id']}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run["id"]}-2026-10.zip"'
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert {"2026-0001.pdf", "2026-0001.csv", "2026-0001.json", "CN-2026-0001.pdf", f"run-{run['id']}.csv"} <= names


# --- Filters --------------------------------------------------------------------------------------

def test_invoice_and_run_filters(api, customer, entries):
    posted = posted_invoice(api)
    note = ok(api.post(f"{INVOICES}{posted['id']}/credit/"), 201)
    other = ClientFactory(name="Havn AS")
    project = ProjectFactory(key="HVN")
    ContractFactory(client=other, projects=[project])
    TimeEntryFactory(ticket=TicketFactory(project=project), work_date=date(2026, 11, 2))
    reconcile()
    november = ok(api.post(RUNS, {"period": "2026-11", "clients": [other.pk]}), 201)
    draft = november["drafts"][0]

    def ids(query, url=INVOICES):
        return sorted(row["id"] for row in ok(api.get(url, query))["results"])

    assert ids({}) == sorted([posted["id"], note["id"], draft["id"]])
    assert ids({"client": customer.pk}) == sorted([posted["id"], note["id"]])
    assert ids({"status": "draft"}) == [draft["id"]]
    assert ids({"kind": "credit_note"}) == [note["id"]]
    assert ids({"period": "2026-11"}) == [draft["id"]]
    assert ids({"number": "cn-2026-0001"}) == [note["id"]]
    assert ids({"run": november["run"]["id"]}) == [draft["id"]]
    assert ids({"credited_invoice": posted["id"]}) == [note["id"]]
    assert ids({"client": 999999}) == []
    first_run = posted["run"]
    assert ids({"status": "open"}, RUNS) == [november["run"]["id"]]
    assert ids({"period": "2026-10"}, RUNS) == [first_run]
    assert ids({"client": other.pk}, RUNS) == [november["run"]["id"]]
    assert ids({"created_by": "bella"}, RUNS) == sorted([first_run, november["run"]["id"]])
    assert ids({"created_by": "nobody"}, RUNS) == []

    listed = ok(api.get(INVOICES, {"status": "draft"}))["results"][0]
    assert "lines" not in listed and "stale" not in listed and listed["net"] == "1000.00"
    run = ok(api.get(f"{RUNS}{first_run}/"))
    # The credit note is not one of the run's invoices: the run shows what it billed.
    assert (run["invoice_count"], run["item_count"], run["net"]) == (1, 5, {"NOK": "15000.00"})

    for url, query, code in [(INVOICES, {"period": "2026-13"}, "invalid_period"),
                             (INVOICES, {"status": "void"}, "invalid_choice"),
                             (INVOICES, {"kind": "bill"}, "invalid_choice"),
                             (INVOICES, {"client": "abc"}, "invalid"),
                             (INVOICES, {"run": 2**63}, "max_value"),
                             (RUNS, {"period": "10-2026"}, "invalid_period"),
                             (RUNS, {"status": "closed"}, "invalid_choice"),
                             (RUNS, {"client": "1.5"}, "invalid")]:
        refused(api.get(url, query), 400, code)


# --- Query counts ---------------------------------------------------------------------------------

# Billing permission (user and group permissions), count, the page, one query for the page's totals.
MAX_LIST_QUERIES = 5


@pytest.fixture
def busy(clerk):
    """25 clients, each with a run: drafts, posted invoices and credit notes, two currencies."""
    clients = [ClientFactory(currency="EUR" if n % 2 else "NOK") for n in range(25)]
    for client in clients:
        project = ProjectFactory()
        ContractFactory(client=client, projects=[project])
        for day in (1, 2):
            TimeEntryFactory(ticket=TicketFactory(project=project), work_date=date(2026, 10, day))
    reconcile()
    for n, client in enumerate(clients):
        run = invoicing.run_build(actor=clerk, period=OCTOBER, client_ids=[client.pk]).run
        if n % 3:
            [invoice] = invoicing.run_post(actor=clerk, run=run)
            if n % 3 == 2:
                invoicing.invoice_credit(actor=clerk, invoice=invoice)


@pytest.mark.parametrize("path", ["runs/", "invoices/"])
def test_list_query_count_is_constant(client_for, clerk, busy, django_assert_max_num_queries, path):
    counts = []
    for page_size in (1, 20):
        api = client_for(type(clerk).objects.get(pk=clerk.pk))  # permissions not cached yet, as in production
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as captured:
            response = api.get(BASE + path, {"page_size": page_size})
        body = ok(response)
        assert len(body["results"]) == page_size and body["count"] > 20
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_invoice_detail_queries_do_not_grow_with_its_lines(client_for, clerk, entries, django_assert_max_num_queries):
    api = client_for(clerk)
    posted = posted_invoice(api)
    ok(api.post(f"{INVOICES}{posted['id']}/credit/", {"items": [posted["lines"][0]["id"]]}), 201)
    ok(api.post(f"{INVOICES}{posted['id']}/credit/", {"items": [posted["lines"][1]["id"]]}), 201)
    fresh = client_for(type(clerk).objects.get(pk=clerk.pk))
    # Permissions (user, group), the invoice, its lines, its credit notes; no stale check once posted.
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        body = ok(fresh.get(f"{INVOICES}{posted['id']}/"))
    assert len(body["lines"]) == 5 and len(body["credit_notes"]) == 2
