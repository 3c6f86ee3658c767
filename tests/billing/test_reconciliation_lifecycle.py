"""What reconciliation does to items over time: on-save reconciliation, supersede with lineage,
idempotent reruns (no item writes), moves and deletes, void/restore, locked items left alone,
the billing lock guard, and the switches in the billing settings."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import periods
from billing import services as billing_services
from billing.choices import ItemStatus
from billing.guards import LOCKED_BY_DRAFT_MESSAGE
from billing.models import BillingItem, BillingRun, BillingSettings, Invoice, ReconciliationRequest, ReconciliationRun
from core.errors import Conflict, EditBlocked
from tests.billing.conftest import grant_billing, live_items, reconcile
from tests.factories import ContractFactory, ProjectFactory, TimeEntryFactory, UserFactory
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def contract(mnx, customer):
    return ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00", rounding_minutes=15)


@pytest.fixture
def billing_staff(db):
    return grant_billing(UserFactory(username="bella"), "billing.view", "billing.manage")


@pytest.fixture
def saved(django_capture_on_commit_callbacks):
    """saved(fn, ...) calls a service and runs what it deferred to after commit, as a request would."""

    def call(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return call


def item_writes(queries) -> list[str]:
    return [q["sql"] for q in queries if "billing_billingitem" in q["sql"]
            and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COPY"))]


def test_saving_a_time_entry_reconciles_it_right_after_commit(saved, owner, ticket, contract):
    entry = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 5),
                  minutes=50)
    item = live_items()[f"ticket_time:{entry.pk}"]
    assert (item.status, item.qty, item.total) == ("pending", D("1"), D("1000.00"))
    run = ReconciliationRun.objects.get(items=item)
    assert (run.trigger, run.scope) == ("on_save", {"record_kind": "time_entry", "record_id": entry.pk})
    assert not ReconciliationRequest.objects.exists()  # the outbox row is gone once done


def test_a_changed_source_supersedes_its_item_and_the_new_item_links_the_old(saved, owner, ticket, contract):
    entry = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 5),
                  minutes=60)
    first = live_items()[f"ticket_time:{entry.pk}"]
    saved(ticket_services.time_entry_update, actor=owner, entry=entry, changes={"minutes": 120})
    second = live_items()[f"ticket_time:{entry.pk}"]
    first.refresh_from_db()
    assert first.status == ItemStatus.SUPERSEDED and second.status == ItemStatus.PENDING
    assert second.supersedes_id == first.pk and first.superseded_by == second
    assert second.total == D("2000.00")


def test_rerun_on_unchanged_sources_writes_no_item(owner, ticket, contract, customer, monkeypatch):
    monkeypatch.setattr(periods, "current_month", lambda time_zone: date(2026, 10, 1))
    for minutes in (10, 20, 30):
        TimeEntryFactory(ticket=ticket, minutes=minutes)
    ContractFactory(client=customer, projects=[ProjectFactory()], monthly_fee="10.00", valid_from=date(2026, 10, 1))
    first = reconcile()
    assert first.created == 4
    with CaptureQueriesContext(connection) as queries:
        again = reconcile()
    assert item_writes(queries.captured_queries) == []
    assert (again.created, again.superseded, again.unchanged) == (0, 0, 4)


def test_moving_an_entry_to_another_month_keeps_its_lineage(saved, owner, ticket, contract):
    entry = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 31),
                  minutes=60)
    october = live_items()[f"ticket_time:{entry.pk}"]
    saved(ticket_services.time_entry_update, actor=owner, entry=entry, changes={"work_date": date(2026, 11, 1)})
    november = live_items()[f"ticket_time:{entry.pk}"]
    assert november.period_month == date(2026, 11, 1) and november.supersedes_id == october.pk


def test_deleting_or_unbilling_a_source_supersedes_its_item(saved, owner, ticket, contract):
    kept = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 5),
                 minutes=60)
    gone = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 6),
                 minutes=60)
    saved(ticket_services.time_entry_update, actor=owner, entry=kept, changes={"billable": False})
    saved(ticket_services.time_entry_delete, actor=owner, entry=gone)
    assert live_items() == {}
    assert BillingItem.objects.filter(status=ItemStatus.SUPERSEDED).count() == 2


def test_a_contract_change_reconciles_its_scope(saved, owner, ticket, contract, billing_staff):
    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    reconcile()
    saved(billing_services.contract_update, actor=billing_staff, contract=contract,
          changes={"hourly_rate": D("1250.00")})
    assert live_items()[f"ticket_time:{entry.pk}"].total == D("1250.00")
    saved(billing_services.contract_update, actor=billing_staff, contract=contract, changes={}, projects=[])
    assert live_items() == {}


def test_void_and_restore(owner, ticket, contract, billing_staff):
    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    reconcile()
    item = live_items()[f"ticket_time:{entry.pk}"]
    with pytest.raises(Exception) as missing_reason:
        billing_services.item_void(actor=billing_staff, item=item, reason=" ")
    assert missing_reason.value.code == "required"
    voided = billing_services.item_void(actor=billing_staff, item=item, reason="Goodwill")
    assert (voided.status, voided.void_reason) == ("void", "Goodwill")
    assert reconcile().unchanged == 1 and live_items()[f"ticket_time:{entry.pk}"].status == "void"  # stays void
    with pytest.raises(Conflict) as twice:
        billing_services.item_void(actor=billing_staff, item=item, reason="again")
    assert twice.value.code == "item_not_pending"
    restored = billing_services.item_restore(actor=billing_staff, item=item)
    assert restored.status == "pending" and restored.void_reason == ""


def test_a_void_item_whose_source_changed_is_superseded_by_a_pending_one(owner, ticket, contract, billing_staff):
    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    reconcile()
    item = billing_services.item_void(actor=billing_staff, item=live_items()[f"ticket_time:{entry.pk}"], reason="x")
    TimeEntry = type(entry)
    TimeEntry.objects.filter(pk=entry.pk).update(minutes=90)
    run = reconcile()
    assert run.superseded == 1
    fresh = live_items()[f"ticket_time:{entry.pk}"]
    assert fresh.status == "pending" and fresh.supersedes_id == item.pk


def _reserve(item: BillingItem) -> Invoice:
    run = BillingRun.objects.create(period_month=item.period_month)
    invoice = Invoice.objects.create(client_id=item.client_id, run=run, currency=item.currency)
    BillingItem.objects.filter(pk=item.pk).update(status=ItemStatus.RESERVED, invoice=invoice, run=run)
    return invoice


def test_reserved_and_invoiced_items_are_left_alone(owner, ticket, contract):
    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    reconcile()
    item = live_items()[f"ticket_time:{entry.pk}"]
    _reserve(item)
    type(contract).objects.filter(pk=contract.pk).update(hourly_rate=D("2000"))
    with CaptureQueriesContext(connection) as queries:
        run = reconcile()
    assert item_writes(queries.captured_queries) == []
    assert (run.skipped_locked, run.created, run.superseded) == (1, 0, 0)
    item.refresh_from_db()
    assert (item.status, item.total) == ("reserved", D("1000.00"))


def test_the_lock_guard_refuses_edits_and_deletes_of_a_reserved_entry_with_409(client_for, owner, ticket, contract):
    entry = TimeEntryFactory(ticket=ticket, user=owner, minutes=60)
    reconcile()
    invoice = _reserve(live_items()[f"ticket_time:{entry.pk}"])
    client = client_for(owner)
    response = client.patch(f"/api/time-entries/{entry.pk}/", {"minutes": 30}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "locked_by_draft"
    assert body["detail"] == LOCKED_BY_DRAFT_MESSAGE.format(draft=f"draft #{invoice.pk} (run {invoice.run_id})")
    assert client.delete(f"/api/time-entries/{entry.pk}/").status_code == 409
    assert client.delete(f"/api/tickets/{ticket.key}/").status_code == 409
    entry.refresh_from_db()
    assert entry.minutes == 60
    # Other fields of the ticket stay editable: the lock is on the entry.
    assert client.patch(f"/api/tickets/{ticket.key}/", {"title": "Renamed"}, format="json").status_code == 200


def test_the_lock_guard_names_a_posted_invoice(owner, ticket, contract):
    entry = TimeEntryFactory(ticket=ticket, user=owner, minutes=60)
    reconcile()
    invoice = _reserve(live_items()[f"ticket_time:{entry.pk}"])
    BillingItem.objects.filter(invoice=invoice).update(status=ItemStatus.INVOICED)
    Invoice.objects.filter(pk=invoice.pk).update(number="2026-0007", year=2026, sequence=7, status="posted")
    with pytest.raises(EditBlocked) as blocked:
        ticket_services.time_entry_update(actor=owner, entry=entry, changes={"minutes": 30})
    assert blocked.value.code == "locked_by_invoice" and blocked.value.status_code == 409
    assert "2026-0007" in blocked.value.message


def test_the_lock_guard_covers_sales_lines(customer, billing_staff):
    line = billing_services.sales_line_create(actor=billing_staff, client=customer, date=date(2026, 10, 1),
                                              description="Setup", qty=D("1"), unit_price=D("500"))
    reconcile()
    _reserve(live_items()[f"sales_order:{line.pk}"])
    with pytest.raises(EditBlocked) as blocked:
        billing_services.sales_line_update(actor=billing_staff, line=line, changes={"qty": D("2")})
    assert blocked.value.code == "locked_by_draft"
    with pytest.raises(EditBlocked):
        billing_services.sales_line_delete(actor=billing_staff, line=line)


def test_on_save_switched_off_leaves_reconciliation_to_manual_runs(saved, owner, ticket, contract):
    BillingSettings.objects.update_or_create(pk=1, defaults={"reconcile_on_save": False})
    entry = saved(ticket_services.time_entry_create, actor=owner, ticket=ticket, work_date=date(2026, 10, 5),
                  minutes=60)
    assert live_items() == {} and not ReconciliationRequest.objects.exists()
    reconcile()
    assert f"ticket_time:{entry.pk}" in live_items()


def test_manual_recalculation_switched_off_is_refused(billing_staff):
    BillingSettings.objects.update_or_create(pk=1, defaults={"manual_recalculation": False})
    with pytest.raises(Conflict) as refused:
        billing_services.recalculation_request(actor=billing_staff, scope=billing_services.resolve_scope())
    assert refused.value.code == "manual_recalculation_disabled"


def test_overlapping_contracts_of_a_project_are_refused(mnx, customer, contract, billing_staff):
    with pytest.raises(Conflict) as overlap:
        billing_services.contract_create(actor=billing_staff, client=customer, name="Second", projects=[mnx],
                                         valid_from=date(2026, 6, 1), hourly_rate=D("1"))
    assert overlap.value.code == "contract_overlap"
    type(contract).objects.filter(pk=contract.pk).update(valid_to=date(2026, 5, 31))
    later = billing_services.contract_create(actor=billing_staff, client=customer, name="Second", projects=[mnx],
                                             valid_from=date(2026, 6, 1), hourly_rate=D("1"))
    assert later.pk


def test_a_source_whose_project_moves_to_another_clients_contract_moves_with_lineage(mnx, ticket, contract,
                                                                                     billing_staff):
    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    reconcile()
    old = live_items()[f"ticket_time:{entry.pk}"]
    billing_services.contract_update(actor=billing_staff, contract=contract, changes={}, projects=[])
    other_client = type(contract.client).objects.create(name="Other AS", currency="NOK")
    ContractFactory(client=other_client, projects=[mnx])
    reconcile()
    new = live_items()[f"ticket_time:{entry.pk}"]
    assert new.client_id == other_client.pk
    old.refresh_from_db()
    assert old.status == "superseded"


def test_ticket_and_record_rows_made_without_services_are_caught_by_the_drain(owner, ticket, contract):
    from billing import triggers
    from billing.reconciliation import Scope

    entry = TimeEntryFactory(ticket=ticket, minutes=60)
    ReconciliationRequest.objects.create(scope=Scope(record_kind="time_entry", record_id=entry.pk).as_dict())
    assert triggers.drain(older_than=timedelta(0)) == 1
    assert f"ticket_time:{entry.pk}" in live_items() and not ReconciliationRequest.objects.exists()


def test_new_clients_take_the_defaults_of_the_billing_settings(client_for, billing_staff):
    BillingSettings.objects.update_or_create(pk=1, defaults={"default_currency": "SEK", "default_vat_rate": D("0.12"),
                                                             "default_time_zone": "Europe/Stockholm"})
    response = client_for(billing_staff).post("/api/billing/clients/", {"name": "Svea AB"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["currency"], body["vat_rate"], body["time_zone"]) == ("SEK", "0.1200", "Europe/Stockholm")


def test_time_logged_after_the_bank_was_invoiced_does_not_redraw_it(owner, ticket, mnx, customer):
    ContractFactory(client=customer, projects=[mnx], timebank_hours=D("10"), overage_rate="1200.00")
    a = TimeEntryFactory(ticket=ticket, minutes=8 * 60, work_date=date(2026, 3, 5))
    b = TimeEntryFactory(ticket=ticket, minutes=4 * 60, work_date=date(2026, 3, 10))
    reconcile()
    for item in live_items().values():
        _reserve(item)
    late = TimeEntryFactory(ticket=ticket, minutes=5 * 60, work_date=date(2026, 3, 3))  # earlier date, logged later
    run = reconcile()
    items = live_items()
    # The bank was spent on A and B (10 h); the late entry is all overage, and A and B are untouched.
    assert (items[f"ticket_time:{late.pk}"].qty, items[f"ticket_time:{late.pk}"].total) == (D("5"), D("6000.00"))
    assert f"timebank:{late.pk}" not in items
    assert {key: item.status for key, item in items.items() if key != f"ticket_time:{late.pk}"} == {
        f"timebank:{a.pk}": "reserved", f"timebank:{b.pk}": "reserved", f"ticket_time:{b.pk}": "reserved"}
    assert (run.created, run.superseded, run.skipped_locked) == (1, 0, 0)


def test_a_contract_starting_mid_month_bills_the_fee_for_that_month(mnx, customer, monkeypatch):
    monkeypatch.setattr(periods, "current_month", lambda time_zone: date(2026, 3, 1))
    contract = ContractFactory(client=customer, projects=[mnx], valid_from=date(2026, 3, 20), monthly_fee="100.00")
    reconcile()
    assert list(live_items()) == [f"contract_period:{contract.pk}:2026-03"]


def test_a_failing_client_fails_the_run_but_not_the_other_clients(mnx, ticket, customer, monkeypatch):
    from billing import reconciliation
    from billing.reconciliation import ReconciliationFailed

    ContractFactory(client=customer, projects=[mnx])
    broken = type(customer).objects.create(name="Broken AS", currency="NOK")
    entry = TimeEntryFactory(ticket=ticket)
    original = reconciliation.reconcile_client

    def fail_for_broken(run, client_id, months):
        if client_id == broken.pk:
            raise RuntimeError("boom")
        return original(run, client_id, months)

    monkeypatch.setattr(reconciliation, "reconcile_client", fail_for_broken)
    with pytest.raises(ReconciliationFailed, match=f"client {broken.pk}: RuntimeError: boom"):
        reconcile()
    run = ReconciliationRun.objects.get()
    assert (run.status, run.created) == ("failed", 1) and "boom" in run.error
    assert f"ticket_time:{entry.pk}" in live_items()


def test_a_redelivered_unit_is_not_counted_twice(mnx, ticket, customer):
    from billing.reconciliation import Scope, reconcile_client, run_create, run_finish_if_done, run_start

    ContractFactory(client=customer, projects=[mnx])
    other = type(customer).objects.create(name="Other AS", currency="NOK")
    TimeEntryFactory(ticket=ticket)
    run = run_create(scope=Scope(), trigger="manual")
    plan = run_start(run)
    assert run_start(run) is None  # a second delivery of the planning task does nothing
    reconcile_client(run, customer.pk, plan[customer.pk])
    reconcile_client(run, customer.pk, plan[customer.pk])  # redelivered
    assert not run_finish_if_done(run.pk)  # the other client has not run yet
    reconcile_client(run, other.pk, plan[other.pk])
    assert run_finish_if_done(run.pk)
    run.refresh_from_db()
    assert (run.processed, run.total, run.created, run.unchanged) == (2, 2, 1, 0)


def test_the_outbox_row_is_written_with_the_save_itself(owner, ticket, contract, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ticket_services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 5), minutes=60)
        # Inside the transaction already: a crash right after the commit cannot lose it.
        assert ReconciliationRequest.objects.count() == 1
    assert len(callbacks) == 1 and not ReconciliationRun.objects.exists()


def test_a_sales_line_too_large_to_bill_is_refused(customer, billing_staff):
    with pytest.raises(Exception) as refused:
        billing_services.sales_line_create(actor=billing_staff, client=customer, date=date(2026, 10, 1),
                                           description="Huge", qty=D("100000"), unit_price=D("9999999999"))
    assert refused.value.code == "total_too_large"


def test_a_contract_scoped_run_reports_sources_that_lost_their_contract(mnx, ticket, contract, billing_staff):
    entry = TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 5))
    reconcile()
    type(contract).objects.filter(pk=contract.pk).update(valid_to=date(2026, 9, 30))
    run = reconcile(contract_id=contract.pk)
    assert run.superseded == 1 and run.unmatched == 1
    assert run.unmatched_sources.get().source_id == entry.pk


def test_a_recalculation_scope_refuses_a_contract_of_another_client(contract, billing_staff):
    other = type(contract.client).objects.create(name="Other AS", currency="NOK")
    with pytest.raises(Exception) as refused:
        billing_services.resolve_scope(client_id=other.pk, contract_id=contract.pk)
    assert refused.value.code == "contract_of_other_client" and refused.value.status_code == 400
