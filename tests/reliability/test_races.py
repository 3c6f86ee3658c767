"""The concurrency suite (issue 9): each race runs the product's real service or REST entry point
in threads released at once, each on its own PostgreSQL connection (tests.helpers.race), and
asserts an invariant over every outcome — numbers unique and gapless, each billing item reserved
once, one winner of the last attachment slot with no orphan object, one winner of conflicting
transitions and links, and no billing lock around an edited source with stale amounts."""

import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import invoicing
from billing.choices import LIVE_STATUSES, ItemStatus, LogAction
from billing.models import BillingItem, BillingLog, BillingRun, Invoice, InvoiceCounter
from billing.reconciliation import Scope, reconcile_now
from core.errors import Conflict
from settlements import services as settlement_services
from settlements.models import Settlement, SettlementAttachment, SettlementEvent, SettlementTicket
from tests.billing.conftest import grant_billing
from tests.factories import ContractFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tests.helpers import race
from tests.settlements.test_attachments import stored_names
from tests.tally import tally

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("isolated_storage")]

OCTOBER = date(2026, 10, 1)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def clerk(db):
    return grant_billing(UserFactory(username="bella"), "billing.admin")


def _settlement(owner, project, name="race", start=date(2026, 10, 1), end=date(2026, 10, 31)) -> Settlement:
    return settlement_services.settlement_create(actor=owner, name=name, period_start=start, period_end=end,
                                                 projects=[project])


def _code(outcome) -> str:
    return getattr(outcome, "code", "ok")


def _priced_entry(owner, *, key: str, minutes: int = 60):
    """A project `key` under its own client's contract at 1000/h, with one of the owner's
    October time entries, reconciled into a pending item."""
    project = ProjectFactory(key=key)
    grant(owner, project, "owner")
    contract = ContractFactory(projects=[project], hourly_rate="1000.00")
    entry = TimeEntryFactory(ticket=TicketFactory(project=project), user=owner, minutes=minutes,
                             work_date=date(2026, 10, 5))
    reconcile_now(Scope(record_kind="time_entry", record_id=entry.pk), trigger="manual")
    return contract.client, entry


# --- 1. Settlement numbers -------------------------------------------------------------------

def test_sixteen_settlement_creations_get_unique_gapless_numbers(owner, mnx):
    outcomes = race(lambda n: _settlement(owner, mnx, name=f"S{n}"), 16)
    tally("race")
    assert all(isinstance(outcome, Settlement) for outcome in outcomes), outcomes
    numbers = sorted(Settlement.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 17))
    assert sorted(outcome.number for outcome in outcomes) == numbers
    assert SettlementEvent.objects.filter(kind="created").count() == 16


# --- 2. Invoice numbers, one posting failing --------------------------------------------------

def test_sixteen_invoice_posts_with_one_failure_are_gapless_and_the_failed_one_is_untouched(owner, clerk,
                                                                                           monkeypatch):
    for n in range(16):
        _priced_entry(owner, key=f"P{chr(65 + n)}")
    drafts = list(Invoice.objects.filter(run=invoicing.run_build(actor=clerk, period=OCTOBER).run).order_by("pk"))
    assert len(drafts) == 16
    failing = drafts[7]
    items_before = list(BillingItem.objects.filter(invoice=failing).values_list("pk", "status", "total"))
    original = invoicing._log_posted

    def fail_one(invoices, **kwargs):
        # The last step of a posting: its number is taken and its lines are invoiced by now.
        if failing.pk in {invoice.pk for invoice in invoices}:
            raise RuntimeError("ledger unreachable")
        return original(invoices, **kwargs)

    monkeypatch.setattr(invoicing, "_log_posted", fail_one)
    outcomes = race(lambda n: invoicing.invoice_post(actor=clerk, invoice=drafts[n]), 16)
    tally("race")
    assert isinstance(outcomes[7], RuntimeError)
    assert all(isinstance(o, Invoice) for n, o in enumerate(outcomes) if n != 7), outcomes
    posted = Invoice.objects.filter(status=Invoice.Status.POSTED)
    assert sorted(posted.values_list("sequence", flat=True)) == list(range(1, 16))
    assert len(set(posted.values_list("number", flat=True))) == 15
    failing.refresh_from_db()
    assert (failing.status, failing.number, failing.sequence, failing.posted_at) == (Invoice.Status.DRAFT, "",
                                                                                    None, None)
    assert list(BillingItem.objects.filter(invoice=failing).values_list("pk", "status", "total")) == items_before
    assert all(status == ItemStatus.RESERVED for _, status, _ in items_before)
    assert not BillingLog.objects.filter(action=LogAction.POST, scope__invoice=failing.pk).exists()
    assert BillingRun.objects.get(pk=failing.run_id).status == BillingRun.Status.OPEN
    # The number the failure gave back is the next one: still no gap.
    monkeypatch.setattr(invoicing, "_log_posted", original)
    assert invoicing.invoice_post(actor=clerk, invoice=failing).sequence == 16
    assert InvoiceCounter.objects.get(series=invoicing.INVOICE_SERIES).next_number == 17


def test_deleting_a_run_while_its_last_draft_is_posted_one_wins_cleanly(owner, clerk):
    """Both lock the run, then its invoice: either the post lands (the delete gets 409, the run is
    closed) or the delete does (the post gets 404, the items are pending again); never a 500 from
    the ledger refusing to delete a posted invoice, nor a deadlock."""
    for round_number in range(6):
        client, _ = _priced_entry(owner, key=f"RD{round_number}")
        run = invoicing.run_build(actor=clerk, period=OCTOBER, client_ids=[client.pk]).run
        draft = Invoice.objects.get(run=run)
        outcomes = race(lambda n, run=run, draft=draft: (invoicing.run_delete(actor=clerk, run=run) if n == 0
                                                         else invoicing.invoice_post(actor=clerk, invoice=draft)), 2)
        tally("race")
        deleted, posted = outcomes
        if isinstance(posted, Invoice):
            assert _code(deleted) in {"run_has_posted_invoices", "run_not_open"}, outcomes
            assert Invoice.objects.get(pk=draft.pk).status == Invoice.Status.POSTED
        else:
            assert deleted == 1 and _code(posted) == "not_found", outcomes
            assert not Invoice.objects.filter(pk=draft.pk).exists()
            assert not BillingItem.objects.filter(invoice=draft.pk).exists()


def test_refreshing_a_draft_while_it_is_posted_one_after_the_other(owner, clerk):
    """A refresh re-points lines at the draft's run (a foreign-key check locks the run row at
    commit); a post holding that run while waiting for the draft deadlocked with it. Both lock
    the run first now: the post lands after the refresh, or the refresh finds a posted invoice."""
    for round_number in range(6):
        client, _ = _priced_entry(owner, key=f"RF{round_number}")
        draft = Invoice.objects.get(run=invoicing.run_build(actor=clerk, period=OCTOBER, client_ids=[client.pk]).run)
        outcomes = race(lambda n, draft=draft: (invoicing.invoice_refresh(actor=clerk, invoice=draft) if n == 0
                                                else invoicing.invoice_post(actor=clerk, invoice=draft)), 2)
        tally("race")
        refreshed, posted = outcomes
        assert isinstance(posted, Invoice), outcomes
        assert isinstance(refreshed, Invoice) or _code(refreshed) == "invoice_not_draft", outcomes
        assert Invoice.objects.get(pk=draft.pk).status == Invoice.Status.POSTED


# --- 3. Draft builds of one scope -------------------------------------------------------------

def test_eight_builds_of_one_scope_reserve_each_item_exactly_once(owner, clerk):
    clients = []
    for n in range(3):
        client, entry = _priced_entry(owner, key=f"B{chr(65 + n)}")
        earlier = TimeEntryFactory(ticket=entry.ticket, user=owner, minutes=30, work_date=date(2026, 9, 30))
        reconcile_now(Scope(record_kind="time_entry", record_id=earlier.pk), trigger="manual")
        clients.append(client)
    items = set(BillingItem.objects.filter(status=ItemStatus.PENDING).values_list("pk", flat=True))
    assert len(items) == 6
    scope = sorted(client.pk for client in clients)
    outcomes = race(lambda n: invoicing.run_build(actor=clerk, period=OCTOBER, client_ids=scope), 8)
    tally("race")
    built = [o for o in outcomes if isinstance(o, invoicing.BuildResult)]
    assert len(built) == 1, outcomes
    assert all(isinstance(o, Conflict) and o.code == "already_in_open_run" for o in outcomes if o not in built)
    run = built[0].run
    reserved = BillingItem.objects.filter(status=ItemStatus.RESERVED)
    assert set(reserved.values_list("pk", flat=True)) == items
    assert set(reserved.values_list("run", flat=True)) == {run.pk}
    assert BillingRun.objects.count() == 1 and Invoice.objects.filter(run=run).count() == 3
    assert sorted(Invoice.objects.values_list("client", flat=True)) == scope
    assert list(BillingLog.objects.filter(action=LogAction.BUILD).values_list("item_count", flat=True)) == [6]


# --- 4. The last attachment slot --------------------------------------------------------------

def test_twelve_uploads_racing_for_the_last_slot_one_wins_and_no_object_is_orphaned(client_for, owner, mnx,
                                                                                     settings):
    settlement = _settlement(owner, mnx)
    limit = settings.SETTLEMENT_ATTACHMENT_MAX_FILES
    for n in range(limit - 1):
        settlement_services.attachment_upload(actor=owner, settlement=settlement,
                                              uploaded=SimpleUploadedFile(f"{n}.pdf", PDF))
    url = f"/api/settlements/{settlement.pk}/attachments/"
    clients = [client_for(owner) for _ in range(12)]
    outcomes = race(lambda n: clients[n].post(url, {"file": SimpleUploadedFile(f"race-{n}.pdf", PDF)},
                                              format="multipart"), 12)
    tally("race")
    statuses = sorted((response.status_code, response.json().get("code")) for response in outcomes)
    assert statuses == [(201, None)] + [(409, "too_many_attachments")] * 11
    rows = SettlementAttachment.objects.filter(settlement=settlement)
    assert rows.count() == limit
    assert stored_names(settlement.pk) == sorted(rows.values_list("file", flat=True))


# --- 5. Conflicting transitions ---------------------------------------------------------------

def test_sent_to_paid_and_sent_to_draft_at_once_one_wins_the_other_gets_409(client_for, owner, mnx):
    for _ in range(4):
        settlement = _settlement(owner, mnx)
        settlement_services.settlement_transition(actor=owner, settlement=settlement, status="sent")
        url = f"/api/settlements/{settlement.pk}/transition/"
        targets, clients = ["paid", "draft"], [client_for(owner), client_for(owner)]
        outcomes = race(lambda n: clients[n].post(url, {"status": targets[n]}, format="json"), 2)  # noqa: B023
        tally("race")
        codes = [(response.status_code, response.json().get("code")) for response in outcomes]
        assert sorted(codes, key=str) == sorted([(200, None), (409, "invalid_transition")], key=str), codes
        won = targets[[status for status, _ in codes].index(200)]
        settlement.refresh_from_db()
        assert settlement.status == won
        assert (settlement.paid_at is not None) == (won == "paid")
        assert (settlement.sent_at is not None) == (won == "paid")
        assert SettlementEvent.objects.filter(settlement=settlement, kind="transitioned").count() == 2


# --- 6. One ticket, two overlapping settlements -----------------------------------------------

def test_one_ticket_linked_to_two_overlapping_settlements_at_once_only_one_link_is_made(client_for, owner, mnx):
    for round_ in range(4):
        ticket = TicketFactory(project=mnx)
        first = _settlement(owner, mnx, name=f"A{round_}", start=date(2026, 10, 1), end=date(2026, 10, 31))
        second = _settlement(owner, mnx, name=f"B{round_}", start=date(2026, 10, 15), end=date(2026, 11, 15))
        urls = [f"/api/settlements/{first.pk}/tickets/", f"/api/settlements/{second.pk}/tickets/"]
        clients = [client_for(owner), client_for(owner)]
        outcomes = race(lambda n: clients[n].post(urls[n], {"ticket": ticket.key}, format="json"), 2)  # noqa: B023
        tally("race")
        codes = sorted(((response.status_code, response.json().get("code")) for response in outcomes), key=str)
        assert codes == sorted([(201, None), (409, "overlapping_settlement")], key=str), codes
        assert SettlementTicket.objects.filter(ticket=ticket).count() == 1


# --- 7. A time-entry edit racing a draft build ------------------------------------------------

# The build's head start, in seconds, per round: the edit's request needs some 30 ms to reach its lock.
STAGGER = tuple(0.005 * n for n in range(10))


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / Decimal(60)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_a_time_entry_edit_racing_a_draft_build_never_leaves_stale_amounts_under_the_lock(client_for, owner, clerk):
    for round_ in range(10):
        client, entry = _priced_entry(owner, key=f"E{chr(65 + round_)}", minutes=60)
        editor = client_for(owner)

        def edit_or_build(n, entry=entry, client=client, editor=editor, round_=round_):
            # Sweep the start of the build across the edit's request, so that both orders occur.
            if n == 0:
                return editor.patch(f"/api/time-entries/{entry.pk}/", {"minutes": 90}, format="json")
            time.sleep(STAGGER[round_])
            return invoicing.run_build(actor=clerk, period=OCTOBER, client_ids=[client.pk])

        edit, build = race(edit_or_build, 2)
        tally("race")
        assert isinstance(build, invoicing.BuildResult), build
        assert edit.status_code in (200, 409), (edit.status_code, edit.content)
        entry.refresh_from_db()
        if edit.status_code == 409:
            assert edit.json()["code"] == "locked_by_draft"
            assert entry.minutes == 60
        else:
            assert entry.minutes == 90
        # Whatever the order, the entry's one live item is in the draft, with the entry's amounts
        # as they are now: an edit that got in first was reconciled before the reservation.
        live = list(BillingItem.objects.filter(source_key=f"ticket_time:{entry.pk}", status__in=LIVE_STATUSES))
        assert len(live) == 1
        assert (live[0].status, live[0].run_id) == (ItemStatus.RESERVED, build.run.pk)
        assert (live[0].qty, live[0].total) == (_hours(entry.minutes), _hours(entry.minutes) * 1000), (
            f"round {round_}: edit answered {edit.status_code}, yet the draft bills {live[0].qty} h for "
            f"{entry.minutes} min")
