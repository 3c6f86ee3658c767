"""Billing runs, drafts, posting with gapless numbers, credit notes and debits (SPEC §4), end to
end through the services and the REST lock messages; the immutability trigger (races of builds and
posts: tests/reliability/test_races.py)."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from billing import invoicing
from billing.choices import ItemStatus
from billing.guards import LOCKED_BY_DRAFT_MESSAGE
from billing.models import BillingItem, BillingLog, BillingRun, Invoice
from core.errors import Conflict
from tests.billing.conftest import live_items, reconcile
from tests.factories import TimeEntryFactory

D = Decimal
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)


def _line(entry) -> BillingItem:
    return live_items()[f"ticket_time:{entry.pk}"]


def _saved(django_capture_on_commit_callbacks, function, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return function(**kwargs)


@pytest.mark.django_db
def test_build_lock_remove_edit_refresh_post_credit_and_rebill(client_for, owner, clerk, customer, entries,
                                                               django_capture_on_commit_callbacks):
    api = client_for(owner)
    built = invoicing.run_build(actor=clerk, period=OCTOBER)
    draft = Invoice.objects.get(run=built.run)
    assert draft.items.count() == 5 and set(draft.items.values_list("status", flat=True)) == {"reserved"}

    first = entries[0]
    refused = api.patch(f"/api/time-entries/{first.pk}/", {"minutes": 30}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "locked_by_draft"
    assert refused.json()["detail"] == LOCKED_BY_DRAFT_MESSAGE.format(draft=draft.label)

    invoicing.invoice_remove_line(actor=clerk, invoice=draft, item=_line(first))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(f"/api/time-entries/{first.pk}/", {"minutes": 30}, format="json").status_code == 200
    assert invoicing.stale_reasons(draft) == ["1 new pending item(s) since the draft was built"]
    draft = invoicing.invoice_refresh(actor=clerk, invoice=draft)
    assert draft.items.count() == 5 and _line(first).total == D("500.00") and invoicing.stale_reasons(draft) == []

    posted = invoicing.invoice_post(actor=clerk, invoice=draft)
    assert posted.number == "2026-0001" and posted.net == D("14500.00") and posted.gross == D("18125.00")
    assert BillingRun.objects.get().status == "posted"
    refused = api.patch(f"/api/time-entries/{first.pk}/", {"minutes": 45}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "locked_by_invoice"
    assert "2026-0001" in refused.json()["detail"]

    credited = [entries[1], entries[3]]
    note = _saved(django_capture_on_commit_callbacks, invoicing.invoice_credit, actor=clerk, invoice=posted,
                  item_ids=[_line(e).pk for e in credited])
    assert note.number == "CN-2026-0001" and note.kind == "credit_note" and note.net == D("-6000.00")
    # Exactly the two credited sources are editable again; the three others stay locked.
    for entry in entries:
        response = api.patch(f"/api/time-entries/{entry.pk}/", {"description": "fixed"}, format="json")
        assert response.status_code == (200 if entry in credited else 409), entry
    run = reconcile()
    assert run.created == 2
    pending = BillingItem.objects.filter(status=ItemStatus.PENDING)
    assert sorted(pending.values_list("source_id", flat=True)) == sorted(e.pk for e in credited)
    again = invoicing.run_build(actor=clerk, period=OCTOBER)
    assert sorted(Invoice.objects.get(run=again.run).items.values_list("source_id", flat=True)) == sorted(
        e.pk for e in credited)
    assert set(BillingLog.objects.values_list("action", flat=True)) >= {"build", "remove", "refresh", "post",
                                                                        "credit", "reconcile"}


@pytest.mark.django_db
def test_a_second_build_for_a_held_client_is_refused_clearly(clerk, entries, customer):
    first = invoicing.run_build(actor=clerk, period=OCTOBER)
    with pytest.raises(Conflict) as refused:
        invoicing.run_build(actor=clerk, period=OCTOBER)
    assert refused.value.code == "already_in_open_run" and f"open run {first.run.pk}" in refused.value.message


@pytest.mark.django_db
def test_dry_run_writes_nothing_and_says_what_a_build_would_do(clerk, entries, customer):
    result = invoicing.run_build(actor=clerk, period=OCTOBER, dry_run=True)
    assert result.run is None and result.invoices == [{"client": customer.pk, "currency": "NOK",
                                                       "net": D("15000.00"), "items": 5}]
    assert not BillingRun.objects.exists() and not BillingItem.objects.filter(status="reserved").exists()


@pytest.mark.django_db
def test_include_prior_periods_and_month_only(clerk, owner, ticket, contract, customer):
    september = TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 9, 30))
    october = TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 1))
    reconcile()
    month_only = invoicing.run_build(actor=clerk, period=OCTOBER, include_prior_periods=False)
    assert list(Invoice.objects.get(run=month_only.run).items.values_list("source_id", flat=True)) == [october.pk]
    invoicing.run_delete(actor=clerk, run=month_only.run)
    prior = invoicing.run_build(actor=clerk, period=OCTOBER)
    assert sorted(Invoice.objects.get(run=prior.run).items.values_list("source_id", flat=True)) == sorted(
        [september.pk, october.pk])


@pytest.mark.django_db
def test_deleting_an_open_run_releases_everything_and_a_posted_run_cannot_be_deleted(clerk, entries):
    built = invoicing.run_build(actor=clerk, period=OCTOBER)
    assert invoicing.run_delete(actor=clerk, run=built.run) == 5
    assert not Invoice.objects.exists() and set(BillingItem.objects.values_list("status", flat=True)) == {"pending"}
    built = invoicing.run_build(actor=clerk, period=OCTOBER)
    invoicing.run_post(actor=clerk, run=built.run)
    with pytest.raises(Conflict) as refused:
        invoicing.run_delete(actor=clerk, run=built.run)
    assert refused.value.code == "run_not_open"


@pytest.mark.django_db
def test_remove_with_void_and_debit_adjustment(clerk, entries):
    built = invoicing.run_build(actor=clerk, period=OCTOBER)
    draft = Invoice.objects.get(run=built.run)
    voided = invoicing.invoice_remove_line(actor=clerk, invoice=draft, item=_line(entries[0]), void_reason="Goodwill")
    assert (voided.status, voided.void_reason, voided.invoice_id) == ("void", "Goodwill", None)
    posted = invoicing.invoice_post(actor=clerk, invoice=draft)
    debit = invoicing.invoice_debit(actor=clerk, invoice=posted, item=posted.items.first(), qty=D("0.5"),
                                    unit_price=D("1000"), description="Extra review")
    assert (debit.status, debit.total, debit.original_item_id) == ("pending", D("500.00"), posted.items.first().pk)
    following = invoicing.run_build(actor=clerk, period=NOVEMBER)
    assert list(Invoice.objects.get(run=following.run).items.values_list("pk", flat=True)) == [debit.pk]


@pytest.mark.django_db
def test_the_database_refuses_changes_to_a_posted_invoice_and_its_lines(clerk, entries):
    built = invoicing.run_build(actor=clerk, period=OCTOBER)
    posted = invoicing.invoice_post(actor=clerk, invoice=Invoice.objects.get(run=built.run))
    for change in (lambda: Invoice.objects.filter(pk=posted.pk).update(number="2026-9999"),
                   lambda: Invoice.objects.filter(pk=posted.pk).delete(),
                   lambda: posted.items.update(total=D("1.00")),
                   lambda: posted.items.update(status="pending"),
                   lambda: BillingItem.objects.filter(pk=posted.items.first().pk).delete()):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    posted.refresh_from_db()
    assert posted.number == "2026-0001" and posted.items.filter(status="invoiced").count() == 5
