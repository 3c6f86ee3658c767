"""The billing REST API through APIClient: CRUD of clients, contracts and sales lines with their
error codes, items and their filters, void/restore, recalculation on demand (eager Celery), runs
with unmatched sources, the log, settings, and constant query counts of every list."""

from datetime import date
from decimal import Decimal

import pytest

from billing import services
from billing.choices import ItemStatus, LogAction, RunStatus, RunTrigger, SourceType
from billing.filtersets import INVALID_PERIOD_MESSAGE
from billing.models import BillingItem, BillingLog, BillingRun, BillingSettings, Client, Contract, Invoice, SalesLine
from billing.reconciliation import Scope
from tests.billing.conftest import grant_billing, reconcile
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db

BASE = "/api/billing/"


@pytest.fixture
def manager():
    return grant_billing(UserFactory(username="bella"), "billing.manage")


@pytest.fixture
def api(client_for, manager):
    return client_for(manager)


@pytest.fixture
def contract(customer, mnx):
    return ContractFactory(client=customer, name="Support 2026", projects=[mnx], hourly_rate=Decimal("1000.00"),
                           rates={"design": "1200.00"})


@pytest.fixture
def priced(contract, ticket):
    """Two time entries on MNX-1 (October and November 2026), reconciled into pending items."""
    october = TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 15), minutes=90)
    november = TimeEntryFactory(ticket=ticket, work_date=date(2026, 11, 3), minutes=60, activity="design")
    reconcile()
    return october, november


def item_of(entry: TimeEntry) -> BillingItem:
    return BillingItem.objects.get(source_type=SourceType.TICKET_TIME, source_id=entry.pk,
                                   status__in=[ItemStatus.PENDING, ItemStatus.VOID])


def lock(item: BillingItem, status: str) -> None:
    """Put an item into a draft (reserved) or posted (invoiced) invoice, as the run services will."""
    run = BillingRun.objects.create(period_month=item.period_month)
    invoice = Invoice.objects.create(client=item.client, run=run, currency=item.currency,
                                     number="2026-0001" if status == ItemStatus.INVOICED else "")
    BillingItem.objects.filter(pk=item.pk).update(status=status, run=run, invoice=invoice)


def assert_error(response, status: int, code: str, field: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field:
        assert field in body["errors"], body
    return body


# --- Clients ----------------------------------------------------------------------------------

def test_client_crud(api):
    response = api.post(f"{BASE}clients/", {"name": "Nordlys AS", "org_number": "999 888 777", "currency": "EUR",
                                            "vat_rate": "0.15", "time_zone": "Europe/Berlin"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["vat_rate"] == "0.1500" and body["time_zone"] == "Europe/Berlin" and body["is_active"] is True
    url = f"{BASE}clients/{body['id']}/"

    response = api.patch(url, {"is_active": False, "vat_rate": "0.25"})
    assert response.status_code == 200 and response.json()["vat_rate"] == "0.2500"
    assert api.get(f"{BASE}clients/", {"is_active": "false"}).json()["count"] == 1
    assert api.get(f"{BASE}clients/", {"q": "nordlys"}).json()["results"][0]["id"] == body["id"]

    assert api.delete(url).status_code == 204
    assert not Client.objects.filter(pk=body["id"]).exists()


@pytest.mark.parametrize(("payload", "field", "code"), [
    ({"name": "X", "currency": "NOK", "time_zone": "Mars/Olympus"}, "time_zone", "invalid_time_zone"),
    ({"name": "X", "currency": "NOK", "vat_rate": "1.5"}, "vat_rate", "max_value"),
    ({"name": "X", "currency": "NOK", "vat_rate": "abc"}, "vat_rate", "invalid"),
    ({"name": "X", "currency": "XXY"}, "currency", "invalid_choice"),
    ({"name": "Fjord AS", "currency": "NOK"}, "name", "unique"),
    ({"currency": "NOK"}, "name", "required"),
])
def test_client_validation(api, customer, payload, field, code):
    assert_error(api.post(f"{BASE}clients/", payload), 400, code, field)
    assert Client.objects.count() == 1


def test_client_in_use_cannot_be_deleted(api, contract):
    body = assert_error(api.delete(f"{BASE}clients/{contract.client_id}/"), 409, "client_in_use")
    assert contract.client.name in body["detail"]


# --- Contracts --------------------------------------------------------------------------------

def test_contract_create_with_projects_and_rate_card(api, customer, mnx):
    ProjectFactory(key="ACME")
    payload = {"client": customer.pk, "name": "Frame", "projects": ["mnx", "ACME"], "valid_from": "2026-01-01",
               "valid_to": "2026-12-31", "hourly_rate": "1000", "monthly_fee": "5000.00", "timebank_hours": "10",
               "overage_rate": "1500", "rounding_minutes": 15, "rates": {"design": "1200.00", "support": "800"}}
    response = api.post(f"{BASE}contracts/", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["projects"] == ["ACME", "MNX"]
    assert body["rates"] == {"design": "1200.00", "support": "800.00"}
    assert (body["hourly_rate"], body["monthly_fee"], body["timebank_hours"]) == ("1000.00", "5000.00", "10.00")
    contract = Contract.objects.get(pk=body["id"])
    assert {p.key for p in contract.projects.all()} == {"ACME", "MNX"}
    assert contract.rates.get(activity="support").hourly_rate == Decimal("800.00")


def test_contract_update_keeps_or_replaces_projects_and_rates(api, contract):
    url = f"{BASE}contracts/{contract.pk}/"
    response = api.patch(url, {"name": "Renamed"})
    assert response.status_code == 200
    assert response.json()["projects"] == ["MNX"] and response.json()["rates"] == {"design": "1200.00"}

    response = api.patch(url, {"rates": {"testing": "900"}, "projects": []})
    assert response.status_code == 200
    assert response.json()["rates"] == {"testing": "900.00"} and response.json()["projects"] == []


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"projects": ["NOPE"]}, "projects", "does_not_exist"),
    ({"projects": "MNX"}, "projects", "not_a_list"),
    ({"rates": {"juggling": "100"}}, "rates", "invalid_activity"),
    ({"rates": {"design": "a lot"}}, "rates", "invalid"),
    ({"rates": {"design": "-1"}}, "rates", "min_value"),
    ({"rates": ["design"]}, "rates", "not_a_dict"),
    ({"hourly_rate": "12,5"}, "hourly_rate", "invalid"),
    ({"client": "abc"}, "client", "incorrect_type"),
    ({"client": 999999}, "client", "does_not_exist"),
    ({"client": 10**30}, "client", "does_not_exist"),
    ({"valid_from": "2026-05-01", "valid_to": "2026-04-30"}, "valid_to", "invalid_period"),
    ({"rounding_minutes": 0}, "rounding_minutes", "min_value"),
])
def test_contract_validation(api, contract, change, field, code):
    before = api.get(f"{BASE}contracts/{contract.pk}/").json()
    assert_error(api.patch(f"{BASE}contracts/{contract.pk}/", change), 400, code, field)
    assert api.get(f"{BASE}contracts/{contract.pk}/").json() == before


def test_overlapping_contract_is_a_conflict(api, contract, customer):
    payload = {"client": customer.pk, "name": "Second", "projects": ["MNX"], "valid_from": "2026-06-01",
               "hourly_rate": "900"}
    body = assert_error(api.post(f"{BASE}contracts/", payload), 409, "contract_overlap")
    assert body["contract"] == contract.pk and body["project"] == "MNX"
    assert Contract.objects.count() == 1
    # Ending the first contract before the second begins resolves it.
    assert api.patch(f"{BASE}contracts/{contract.pk}/", {"valid_to": "2026-05-31"}).status_code == 200
    assert api.post(f"{BASE}contracts/", payload).status_code == 201


def test_contract_filters(api, contract, customer):
    other_client = ClientFactory(name="Other")
    ContractFactory(client=other_client, projects=[ProjectFactory(key="ACME")], valid_from=date(2027, 1, 1))
    url = f"{BASE}contracts/"
    assert [row["id"] for row in api.get(url, {"client": customer.pk}).json()["results"]] == [contract.pk]
    assert [row["id"] for row in api.get(url, {"project": "mnx"}).json()["results"]] == [contract.pk]
    assert api.get(url, {"project": "MNX,ACME"}).json()["count"] == 2
    assert [row["id"] for row in api.get(url, {"active_on": "2026-03-01"}).json()["results"]] == [contract.pk]
    assert api.get(url, {"active_on": "2027-03-01"}).json()["count"] == 2
    assert_error(api.get(url, {"active_on": "March"}), 400, "invalid", "active_on")
    assert_error(api.get(url, {"client": "abc"}), 400, "invalid", "client")
    assert_error(api.get(url, {"client": "1.5"}), 400, "invalid", "client")
    assert_error(api.get(url, {"client": str(10**30)}), 400, "max_value", "client")


def test_contract_with_items_cannot_be_deleted(api, priced, contract):
    assert_error(api.delete(f"{BASE}contracts/{contract.pk}/"), 409, "contract_in_use")
    empty = ContractFactory(client=contract.client, valid_from=date(2030, 1, 1))
    assert api.delete(f"{BASE}contracts/{empty.pk}/").status_code == 204


# --- Sales lines ------------------------------------------------------------------------------

def test_sales_line_crud_and_recalculation(api, contract, manager):
    payload = {"client": contract.client_id, "contract": contract.pk, "project": "mnx", "date": "2026-10-20",
               "description": "Onboarding workshop", "qty": "2", "unit_price": "4500.50"}
    response = api.post(f"{BASE}sales-lines/", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["project"] == "MNX" and body["created_by"] == "bella" and body["qty"] == "2.0000"
    url = f"{BASE}sales-lines/{body['id']}/"

    assert api.post(f"{BASE}recalculate/", {"client": contract.client_id}).status_code == 202
    item = BillingItem.objects.get(source_type=SourceType.SALES_ORDER, source_id=body["id"])
    assert item.total == Decimal("9001.00") and item.status == ItemStatus.PENDING

    assert api.patch(url, {"qty": "3"}).json()["qty"] == "3.0000"
    assert api.get(f"{BASE}sales-lines/", {"client": contract.client_id, "project": "MNX"}).json()["count"] == 1
    assert api.get(f"{BASE}sales-lines/", {"date_from": "2026-11-01"}).json()["count"] == 0
    assert api.delete(url).status_code == 204
    assert not SalesLine.objects.exists()


def test_sales_line_contract_of_another_client(api, contract):
    other = ClientFactory(name="Other")
    payload = {"client": other.pk, "contract": contract.pk, "date": "2026-10-20", "description": "X", "qty": "1",
               "unit_price": "10"}
    assert_error(api.post(f"{BASE}sales-lines/", payload), 400, "contract_of_other_client", "contract")
    payload.update(contract=None, qty="0")
    assert_error(api.post(f"{BASE}sales-lines/", payload), 400, "min_value", "qty")
    assert not SalesLine.objects.exists()


@pytest.mark.parametrize(("status", "code"), [(ItemStatus.RESERVED, "locked_by_draft"),
                                              (ItemStatus.INVOICED, "locked_by_invoice")])
def test_locked_sales_line_cannot_change(api, manager, contract, status, code):
    line = services.sales_line_create(actor=manager, client=contract.client, date=date(2026, 10, 20),
                                      description="Workshop", qty=Decimal("1"), unit_price=Decimal("100"))
    reconcile(Scope(client_id=contract.client_id))
    lock(BillingItem.objects.get(source_type=SourceType.SALES_ORDER, source_id=line.pk), status)
    url = f"{BASE}sales-lines/{line.pk}/"
    assert_error(api.patch(url, {"description": "Changed"}), 409, code)
    assert_error(api.delete(url), 409, code)
    line.refresh_from_db()
    assert line.description == "Workshop"


# --- Items --------------------------------------------------------------------------------------

def test_item_payload(api, priced):
    october, _ = priced
    item = item_of(october)
    row = api.get(f"{BASE}items/{item.pk}/").json()
    assert row["source_type"] == "ticket_time" and row["source_id"] == october.pk
    assert row["project"] == "MNX" and row["ticket"] == "MNX-1" and row["period"] == "2026-10"
    assert (row["qty"], row["unit_price"], row["total"]) == ("1.5000", "1000.0000", "1500.00")
    assert row["period_start"].startswith("2026-10-01T00:00:00") and row["source_date"] == "2026-10-15"
    assert row["reconciliation_run"] == item.reconciliation_run_id
    assert row["supersedes"] is None and row["superseded_by"] is None and row["original_item"] is None
    assert row["invoice"] is None and row["run"] is None and row["void_reason"] == ""


def test_changed_source_shows_the_lineage(api, priced):
    october, _ = priced
    old = item_of(october)
    TimeEntry.objects.filter(pk=october.pk).update(minutes=120)
    reconcile()
    new = item_of(october)
    assert api.get(f"{BASE}items/{old.pk}/").json()["superseded_by"] == new.pk
    row = api.get(f"{BASE}items/{new.pk}/").json()
    assert row["supersedes"] == old.pk and row["total"] == "2000.00"
    assert api.get(f"{BASE}items/", {"status": "superseded"}).json()["results"][0]["id"] == old.pk


def test_item_filters(api, priced, contract, mnx):
    october, november = priced
    other_ticket = TicketFactory(project=mnx)
    ExpenseFactory(ticket=other_ticket, date=date(2026, 10, 2), amount=Decimal("250.00"))
    reconcile()
    url = f"{BASE}items/"

    def ids(**params):
        return {row["id"] for row in api.get(url, params).json()["results"]}

    oct_item, nov_item = item_of(october), item_of(november)
    everything = ids()
    assert len(everything) == 3
    assert ids(period="2026-10") == everything - {nov_item.pk}
    assert ids(period="2026-11") == {nov_item.pk}
    assert ids(ticket="MNX-1") == {oct_item.pk, nov_item.pk}
    assert ids(ticket="mnx-1") == {oct_item.pk, nov_item.pk}
    assert ids(ticket=str(other_ticket.pk)) == everything - {oct_item.pk, nov_item.pk}
    assert ids(ticket="nonsense") == set() and ids(ticket=str(10**30)) == set()
    assert ids(project="mnx") == everything and ids(project="ACME") == set()
    assert ids(source_type="expense") == everything - {oct_item.pk, nov_item.pk}
    assert ids(client=contract.client_id, contract=contract.pk) == everything
    assert ids(client=contract.client_id + 1) == set()

    services.item_void(actor=UserFactory(username="root", is_superuser=True), item=oct_item, reason="Goodwill")
    assert ids(status="void") == {oct_item.pk}
    response = api.get(url + "?status=void&status=pending")
    assert {row["id"] for row in response.json()["results"]} == everything


@pytest.mark.parametrize(("params", "field", "code"), [
    ({"period": "2026-13"}, "period", "invalid_period"),
    ({"period": "October"}, "period", "invalid_period"),
    ({"period": "2026-1"}, "period", "invalid_period"),
    ({"client": "abc"}, "client", "invalid"),
    ({"contract": "-1"}, "contract", "min_value"),
    ({"status": "lost"}, "status", "invalid_choice"),
    ({"source_type": "gift"}, "source_type", "invalid_choice"),
])
def test_item_filter_errors(api, params, field, code):
    body = assert_error(api.get(f"{BASE}items/", params), 400, code, field)
    if code == "invalid_period":
        assert body["detail"] == INVALID_PERIOD_MESSAGE


def test_items_are_read_only(api, priced):
    item = item_of(priced[0])
    assert api.post(f"{BASE}items/", {}).status_code == 405
    assert api.patch(f"{BASE}items/{item.pk}/", {"total": "1"}).status_code == 405
    assert api.delete(f"{BASE}items/{item.pk}/").status_code == 405


def test_void_and_restore_round_trip(api, priced):
    item = item_of(priced[0])
    url = f"{BASE}items/{item.pk}/"
    assert_error(api.post(url + "void/", {}), 400, "required", "reason")
    assert_error(api.post(url + "void/", {"reason": "   "}), 400, "required", "reason")
    assert_error(api.post(url + "restore/"), 409, "item_not_void")

    response = api.post(url + "void/", {"reason": "Warranty work"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "void" and response.json()["void_reason"] == "Warranty work"
    assert_error(api.post(url + "void/", {"reason": "again"}), 409, "item_not_pending")

    response = api.post(url + "restore/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending" and response.json()["void_reason"] == ""

    actions = [row["action"] for row in api.get(f"{BASE}logs/", {"action": ["void", "restore"]}).json()["results"]]
    assert actions == [LogAction.RESTORE, LogAction.VOID]
    log = BillingLog.objects.filter(action=LogAction.VOID).get()
    assert log.actor.username == "bella" and log.item_count == 1


def test_locked_item_cannot_be_voided(api, priced):
    item = item_of(priced[0])
    lock(item, ItemStatus.RESERVED)
    assert_error(api.post(f"{BASE}items/{item.pk}/void/", {"reason": "No"}), 409, "item_not_pending")
    assert_error(api.post(f"{BASE}items/{item.pk}/void/", {"reason": "x" * 501}), 400, "max_length", "reason")


def test_unknown_item_is_a_404(api):
    for ident in ("999", "abc", str(10**30)):
        assert_error(api.get(f"{BASE}items/{ident}/"), 404, "not_found")
        assert_error(api.post(f"{BASE}items/{ident}/void/", {"reason": "x"}), 404, "not_found")


# --- Recalculation ------------------------------------------------------------------------------

def test_recalculate_everything_returns_202_and_a_status_url(api, contract, ticket):
    TimeEntryFactory(ticket=ticket, minutes=45)
    response = api.post(f"{BASE}recalculate/", {})
    assert response.status_code == 202, response.content
    body = response.json()
    run = body["run"]
    assert body["task_id"] and body["status_url"].endswith(f"{BASE}recalculate/{body['task_id']}/")
    assert body["status"] == RunStatus.SUCCEEDED  # Celery runs eagerly in tests

    status = api.get(body["status_url"]).json()
    assert status["id"] == run and status["task_id"] == body["task_id"]
    assert status["status"] == "succeeded" and status["trigger"] == "manual" and status["actor"] == "bella"
    assert status["counts"] == {"created": 1, "superseded": 0, "unchanged": 0, "unmatched": 0, "skipped_locked": 0}
    assert status["progress"] == {"processed": 1, "total": 1, "items_processed": 1, "percent": 100}
    assert status["duration_ms"] is not None and status["finished_at"] and status["error"] == ""

    # Again: nothing changed, so nothing is created.
    again = api.get(api.post(f"{BASE}recalculate/", {}).json()["status_url"]).json()
    assert again["counts"]["created"] == 0 and again["counts"]["unchanged"] == 1


def test_recalculate_a_scope(api, contract, ticket):
    TimeEntryFactory(ticket=ticket, work_date=date(2026, 9, 30))
    TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 1))
    body = api.post(f"{BASE}recalculate/", {"client": contract.client_id, "contract": contract.pk,
                                            "period": "2026-10"}).json()
    status = api.get(body["status_url"]).json()
    assert status["scope"] == {"client_id": contract.client_id, "contract_id": contract.pk, "period": "2026-10"}
    assert status["counts"]["created"] == 1
    assert list(BillingItem.objects.values_list("period_month", flat=True)) == [date(2026, 10, 1)]


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"client": 999}, 404, "not_found"),
    ({"contract": 999}, 404, "not_found"),
    ({"client": "abc"}, 400, "invalid"),
    ({"client": 10**30}, 400, "max_value"),
    ({"period": "2026-13"}, 400, "invalid_period"),
    ({"period": ["2026-10"]}, 400, "invalid"),
])
def test_recalculate_refusals(api, contract, payload, status, code):
    assert_error(api.post(f"{BASE}recalculate/", payload), status, code)
    assert not BillingLog.objects.exists()


def test_recalculate_switched_off(api, contract):
    BillingSettings.objects.update_or_create(pk=1, defaults={"manual_recalculation": False})
    assert_error(api.post(f"{BASE}recalculate/", {}), 409, "manual_recalculation_disabled")


def test_recalculation_status_of_unknown_task_is_a_404(api):
    assert_error(api.get(f"{BASE}recalculate/no-such-task/"), 404, "not_found")
    assert api.get(f"{BASE}recalculate/").status_code == 405


# --- Runs and logs --------------------------------------------------------------------------------

def test_runs_and_their_unmatched_sources(api, contract, ticket):
    orphan_project = ProjectFactory(key="ORPH")
    orphan = TimeEntryFactory(ticket=TicketFactory(project=orphan_project), work_date=date(2026, 10, 5))
    TimeEntryFactory(ticket=ticket)
    run = reconcile()
    reconcile(Scope(client_id=contract.client_id))

    rows = api.get(f"{BASE}reconciliation-runs/").json()["results"]
    assert [row["id"] for row in rows][-1] == run.pk
    row = api.get(f"{BASE}reconciliation-runs/{run.pk}/").json()
    assert row["counts"]["unmatched"] == 1 and row["actor"] is None and row["trigger"] == "manual"

    unmatched = api.get(f"{BASE}reconciliation-runs/{run.pk}/unmatched/").json()
    assert unmatched["count"] == 1
    assert unmatched["results"][0] == {
        "id": unmatched["results"][0]["id"], "source_type": "ticket_time", "source_id": orphan.pk,
        "reason": "no_contract", "project": "ORPH", "client": None, "source_date": "2026-10-05", "detail": ""}
    assert api.get(f"{BASE}reconciliation-runs/{run.pk}/unmatched/", {"status": "failed"}).json()["count"] == 1

    assert api.get(f"{BASE}reconciliation-runs/", {"trigger": "manual", "status": "succeeded"}).json()["count"] == 2
    assert api.get(f"{BASE}reconciliation-runs/", {"trigger": RunTrigger.ON_SAVE}).json()["count"] == 0
    assert_error(api.get(f"{BASE}reconciliation-runs/", {"status": "done"}), 400, "invalid_choice", "status")
    assert_error(api.get(f"{BASE}reconciliation-runs/999/unmatched/"), 404, "not_found")


def test_log_rows(api, priced):
    rows = api.get(f"{BASE}logs/", {"action": "reconcile"}).json()["results"]
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == "reconcile" and row["item_count"] == 2 and row["reconciliation_run"]
    assert row["summary"].startswith("Succeeded") and row["actor"] is None
    assert api.get(f"{BASE}logs/{row['id']}/").json() == row
    assert_error(api.get(f"{BASE}logs/", {"action": "erase"}), 400, "invalid_choice", "action")


# --- Settings -------------------------------------------------------------------------------------

def test_settings_read_and_change(client_for):
    admin = grant_billing(UserFactory(username="ada"), "billing.admin")
    api = client_for(admin)
    body = api.get(f"{BASE}settings/").json()
    assert body["manual_recalculation"] is True and body["default_currency"] == "NOK"

    response = api.patch(f"{BASE}settings/", {"manual_recalculation": False, "default_vat_rate": "0.15"})
    assert response.status_code == 200, response.content
    assert response.json()["manual_recalculation"] is False and response.json()["default_vat_rate"] == "0.1500"
    assert BillingLog.objects.get(action=LogAction.SETTINGS).actor == admin

    assert_error(api.patch(f"{BASE}settings/", {"default_time_zone": "Nowhere/City"}), 400, "invalid_time_zone",
                 "default_time_zone")
    assert_error(api.patch(f"{BASE}settings/", {"default_currency": "ZZZ"}), 400, "invalid_choice",
                 "default_currency")
    assert api.put(f"{BASE}settings/", body).status_code == 405
    assert BillingSettings.load().default_vat_rate == Decimal("0.15")


# --- Query counts -------------------------------------------------------------------------------

# Billing permission (user and group permissions), count, page rows, at most two prefetches.
MAX_LIST_QUERIES = 6


@pytest.fixture
def busy(contract, manager, mnx):
    """Enough rows that every list has more than 20: entries on many tickets, sales lines, runs."""
    orphans = TicketFactory(project=ProjectFactory(key="ORPH"))
    for day in range(1, 26):
        ticket = TicketFactory(project=mnx)
        TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, day))
        TimeEntryFactory(ticket=orphans, work_date=date(2026, 10, day))
        SalesLine.objects.create(client=contract.client, project=mnx, date=date(2026, 10, day), description="Line",
                                 qty=Decimal("1"), unit_price=Decimal("10"), created_by=manager)
        client = ClientFactory()
        ContractFactory(client=client, projects=[ProjectFactory()], rates={"design": "1"})
    run = reconcile()
    for item in BillingItem.objects.all()[:10]:
        services.item_void(actor=manager, item=item, reason="Test")
    TimeEntry.objects.update(minutes=30)
    reconcile()  # supersedes: items now point at older ones
    for _ in range(20):
        reconcile(Scope(client_id=contract.client_id))
    return run


@pytest.mark.parametrize("path", ["clients/", "contracts/", "sales-lines/", "items/", "reconciliation-runs/",
                                  "logs/", "unmatched"])
def test_list_query_count_is_constant(client_for, manager, busy, django_assert_max_num_queries, path):
    url = f"{BASE}reconciliation-runs/{busy.pk}/unmatched/" if path == "unmatched" else BASE + path
    counts = []
    for page_size in (1, 20):
        # A fresh user object per request, as in production: its permissions are not cached yet.
        api = client_for(type(manager).objects.get(pk=manager.pk))
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as captured:
            response = api.get(url, {"page_size": page_size})
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) == page_size and body["count"] > 20
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
