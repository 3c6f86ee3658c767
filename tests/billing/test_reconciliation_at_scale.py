"""What makes reconciliation, building and posting cheap at scale (issue 8), checked for what it
must keep true: items diffed by fingerprint (and field by field for items written before
fingerprints), bursts of saves worked off in a few runs, units in several processes giving the
same items as one, and builds and posts whose number of queries does not grow with the clients."""

import os
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import invoicing, triggers
from billing.choices import ItemStatus
from billing.models import BillingItem, ReconciliationRequest, ReconciliationRun
from billing.reconciliation import Scope, reconcile_now
from tests.billing.conftest import grant_billing, live_items, reconcile
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)
from tickets.models import TimeEntry

D = Decimal


def item_rows() -> set[tuple]:
    return set(BillingItem.objects.filter(status=ItemStatus.PENDING).values_list(
        "source_key", "client_id", "contract_id", "description", "qty", "unit_price", "total", "period_month",
        "fingerprint"))


def clients_with_entries(count: int, entries_each: int = 3) -> list:
    user = UserFactory()
    made = []
    for index in range(count):
        client = ClientFactory(name=f"Client {index}")
        project = ProjectFactory(key=f"P{chr(65 + index // 26)}{chr(65 + index % 26)}")
        ContractFactory(client=client, projects=[project], hourly_rate="1000.00", rounding_minutes=15)
        ticket = TicketFactory(project=project)
        for day in range(entries_each):
            TimeEntryFactory(ticket=ticket, user=user, minutes=40 + day, work_date=date(2026, 10, 1 + day))
        made.append(client)
    return made


@pytest.mark.django_db
def test_items_get_a_fingerprint_and_a_rerun_compares_only_fingerprints():
    clients_with_entries(2)
    reconcile()
    assert not BillingItem.objects.filter(fingerprint__isnull=True).exists()
    run = reconcile()
    assert (run.created, run.superseded, run.unchanged) == (0, 0, 6)


@pytest.mark.django_db
def test_items_written_before_fingerprints_are_compared_field_by_field():
    clients_with_entries(1)
    reconcile()
    BillingItem.objects.update(fingerprint=None)  # as items of an older version
    run = reconcile()
    assert (run.created, run.superseded, run.unchanged) == (0, 0, 3)
    entry = TimeEntry.objects.order_by("pk").first()
    TimeEntry.objects.filter(pk=entry.pk).update(minutes=200)
    run = reconcile()
    assert (run.created, run.superseded, run.unchanged) == (1, 1, 2)
    assert live_items()[f"ticket_time:{entry.pk}"].qty == D("3.5000")  # 200 minutes, up to 210


@pytest.mark.django_db
def test_a_changed_source_changes_the_fingerprint_of_its_new_item():
    clients_with_entries(1, entries_each=1)
    reconcile()
    before = BillingItem.objects.get()
    TimeEntry.objects.update(description="Now with a description")
    reconcile()
    after = live_items()[before.source_key]
    assert after.fingerprint != before.fingerprint and after.supersedes_id == before.pk


@pytest.mark.django_db
def test_a_burst_of_saves_is_worked_off_in_one_run_per_kind():
    clients_with_entries(3)
    reconcile()
    entries = list(TimeEntry.objects.order_by("pk"))
    TimeEntry.objects.update(minutes=100)
    ReconciliationRequest.objects.bulk_create(
        [ReconciliationRequest(scope=Scope(record_kind="time_entry", record_id=e.pk).as_dict()) for e in entries])
    runs_before = ReconciliationRun.objects.count()
    assert triggers.drain(older_than=timedelta(0)) == len(entries)
    runs = ReconciliationRun.objects.order_by("-pk")[:ReconciliationRun.objects.count() - runs_before]
    assert [run.scope for run in runs] == [{"record_kind": "time_entry", "record_ids": [e.pk for e in entries]}]
    assert runs[0].superseded == len(entries)
    assert {item.qty for item in live_items().values()} == {D("1.7500")}
    assert not ReconciliationRequest.objects.exists()


@pytest.mark.django_db
def test_a_batch_that_fails_is_retried_request_by_request(monkeypatch):
    clients_with_entries(2, entries_each=1)
    broken, fine = list(TimeEntry.objects.order_by("pk"))
    for entry in (broken, fine):
        ReconciliationRequest.objects.create(scope=Scope(record_kind="time_entry", record_id=entry.pk).as_dict())
    calls = []
    real = triggers.reconcile_now

    def fails_for_the_broken_entry(scope, **kwargs):
        calls.append(scope)
        if broken.pk in scope.records:
            raise RuntimeError("broken source")
        return real(scope, **kwargs)

    monkeypatch.setattr(triggers, "reconcile_now", fails_for_the_broken_entry)
    assert triggers.drain(older_than=timedelta(0)) == 1
    assert [scope.record_ids is not None for scope in calls] == [True, False, False]
    assert list(live_items()) == [f"ticket_time:{fine.pk}"]
    # Only the request that failed on its own counts an attempt; the batch's failure does not.
    left = ReconciliationRequest.objects.get()
    assert (left.scope["record_id"], left.attempts, left.last_error) == (broken.pk, 1, "RuntimeError: broken source")


@pytest.mark.django_db
def test_a_timebank_share_is_unchanged_once_locked():
    """The share of a bank is computed as 10.00 hours while nothing is locked and read back as
    10.0000 once its item is in a draft: the same quantity, so the same fingerprint."""
    staff = grant_billing(UserFactory(), "billing.manage")
    client = ClientFactory(name="Banked")
    project = ProjectFactory(key="BANK")
    ContractFactory(client=client, projects=[project], hourly_rate="1000.00", timebank_hours="10.00")
    TimeEntryFactory(ticket=TicketFactory(project=project), minutes=600, work_date=date(2026, 10, 1))
    reconcile()
    invoicing.run_build(actor=staff, period=date(2026, 10, 1), include_prior_periods=False)
    run = reconcile()
    assert (run.unchanged, run.skipped_locked, run.created) == (1, 0, 0)


@pytest.mark.django_db
def test_a_record_scope_plans_many_records_in_a_few_queries():
    clients_with_entries(8)
    ids = tuple(TimeEntry.objects.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as few:
        reconcile(Scope(record_kind="time_entry", record_ids=ids[:3]))
    BillingItem.objects.all().delete()
    with CaptureQueriesContext(connection) as many:
        reconcile(Scope(record_kind="time_entry", record_ids=ids))
    planning = [q for q in many.captured_queries if '"tickets_timeentry"."id" IN (' in q["sql"]]
    assert len(planning) == 1
    assert len(live_items()) == len(ids)
    assert len(few.captured_queries) < len(many.captured_queries)  # more clients, more units: but per unit


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_units_in_several_processes_write_the_same_items_as_one(monkeypatch, tmp_path):
    from billing import reconciliation

    # Forked workers inherit this wrapper: each unit records the process that did it.
    real_unit, pids = reconciliation._reconcile_unit, tmp_path / "pids"

    def recording_unit(*args):
        with pids.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return real_unit(*args)

    # Pickled by name for the pool, it resolves to this wrapper in the forked workers too.
    recording_unit.__module__, recording_unit.__qualname__ = reconciliation.__name__, "_reconcile_unit"
    monkeypatch.setattr(reconciliation, "_reconcile_unit", recording_unit)
    clients_with_entries(6)
    uncovered = TicketFactory(project=ProjectFactory(key="NOPE"))
    TimeEntryFactory(ticket=uncovered, minutes=30, work_date=date(2026, 10, 2))
    first = reconcile_now(Scope(), trigger="manual")
    in_one = item_rows()
    BillingItem.objects.all().delete()
    run = reconcile_now(Scope(), trigger="manual", workers=3)
    assert run.status == "succeeded" and (run.processed, run.total, run.created) == (6, 6, 18)
    assert item_rows() == in_one
    # The parent looked for the sources no contract covers while the workers reconciled.
    assert first.unmatched == run.unmatched == run.unmatched_sources.count() == 1
    workers = set(pids.read_text().split()[6:])  # the first six units ran here, in one process
    assert workers and str(os.getpid()) not in workers  # done by forked workers, none here


def build_and_post_queries(staff, clients: list) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as built:
        result = invoicing.run_build(actor=staff, period=date(2026, 10, 1), client_ids=[c.pk for c in clients],
                                     include_prior_periods=False)
    with CaptureQueriesContext(connection) as posted:
        invoices = invoicing.run_post(actor=staff, run=result.run)
    assert len(invoices) == len(clients) and all(invoice.status == "posted" for invoice in invoices)
    first = invoices[0].sequence
    assert [invoice.sequence for invoice in invoices] == list(range(first, first + len(clients)))
    return len(built.captured_queries), len(posted.captured_queries)


@pytest.mark.django_db
def test_building_and_posting_take_as_many_queries_for_two_clients_as_for_twelve():
    staff = grant_billing(UserFactory(), "billing.manage", "billing.admin")
    clients = clients_with_entries(15)
    reconcile()
    build_and_post_queries(staff, clients[:1])  # the first post creates the year's counter
    assert build_and_post_queries(staff, clients[1:3]) == build_and_post_queries(staff, clients[3:])
    assert BillingItem.objects.filter(status=ItemStatus.INVOICED).count() == 15 * 3


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_run_that_fills_the_item_table_refreshes_its_statistics_as_it_grows(monkeypatch):
    from billing import bulk

    monkeypatch.setattr(bulk.StatisticsKeeper, "MIN_GROWTH", 4)
    clients_with_entries(4)
    with CaptureQueriesContext(connection) as queries:
        reconcile()
    analyzes = [q for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]
    # 3 items per client; the table is analyzed each time it grew by half (at least 4 rows).
    assert len(analyzes) == 2
    with CaptureQueriesContext(connection) as queries:
        reconcile()
    assert not [q for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]  # nothing grew
