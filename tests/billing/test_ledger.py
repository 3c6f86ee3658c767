"""The tamper-proof ledger (issue 9): billing logs and settlement events refuse changes in the
database itself, and `manage.py verify_ledger` finds any inconsistency in posted billing data."""

from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from billing import invoicing
from billing.models import BillingLog, InvoiceCounter
from settlements import services as settlement_services
from settlements.models import SettlementEvent
from tests.billing.conftest import grant_billing, reconcile
from tests.billing.test_reconciliation_at_scale import clients_with_entries
from tests.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def posted():
    """Three clients billed for October 2026; one line of the first invoice credited."""
    staff = grant_billing(UserFactory(username="bella"), "billing.manage", "billing.admin")
    clients_with_entries(3)
    reconcile()
    run = invoicing.run_build(actor=staff, period=date(2026, 10, 1), include_prior_periods=False).run
    invoices = invoicing.run_post(actor=staff, run=run)
    invoicing.invoice_credit(actor=staff, invoice=invoices[0], item_ids=[invoices[0].items.first().pk])
    return invoices


def verify_ledger() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_ledger", stdout=out)
    return out.getvalue()


def refused(statement: str) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError:
        return True
    return False


def test_a_consistent_ledger_passes(posted):
    assert "Ledger OK: 4 posted invoice(s)" in verify_ledger()


def test_a_counter_moved_past_the_last_number_is_reported(posted):
    InvoiceCounter.objects.filter(series="").update(next_number=99)
    with pytest.raises(CommandError, match="1 problem"):
        verify_ledger()


@pytest.mark.postgres
def test_totals_numbers_and_states_changed_behind_the_triggers_are_reported(posted):
    first, second = posted[0], posted[1]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # bypass the triggers, as a superuser could
        cursor.execute("UPDATE billing_invoice SET net = net + 1 WHERE id = %s", [first.pk])
        cursor.execute("UPDATE billing_invoice SET sequence = 7, number = '2026-0007' WHERE id = %s", [second.pk])
        cursor.execute("UPDATE billing_billingitem SET status = 'pending' WHERE invoice_id = %s", [posted[2].pk])
        cursor.execute("UPDATE billing_billingitem SET invoice_id = NULL WHERE id = (SELECT min(id) FROM "
                       "billing_billingitem WHERE invoice_id = %s)", [second.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    from billing.ledger import verify

    codes = sorted({problem.code for problem in verify()})
    assert codes == ["counter", "item_state", "line_state", "number_gap", "totals_differ"]


def test_billing_log_rows_cannot_be_changed():
    log = BillingLog.objects.create(action="build", summary="Run 1")
    assert refused(f"UPDATE billing_billinglog SET summary = 'rewritten' WHERE id = {log.pk}")
    assert BillingLog.objects.get(pk=log.pk).summary == "Run 1"


@pytest.mark.postgres
def test_billing_log_and_settlement_events_cannot_be_deleted():
    log = BillingLog.objects.create(action="build", summary="Run 1")
    assert refused(f"DELETE FROM billing_billinglog WHERE id = {log.pk}")
    owner = UserFactory()
    project = ProjectFactory(key="LEDG")
    grant(owner, project, "owner")
    settlement = settlement_services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                                       period_end=date(2026, 10, 31), projects=[project])
    event = SettlementEvent.objects.filter(settlement=settlement).first()
    assert refused(f"DELETE FROM settlements_settlementevent WHERE id = {event.pk}")
    assert refused(f"UPDATE settlements_settlementevent SET kind = 'paid' WHERE id = {event.pk}")


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["billing_invoice", "billing_billingitem", "billing_billinglog",
                                   "settlements_settlementevent"])
def test_ledger_tables_cannot_be_truncated(posted, table):
    """TRUNCATE skips row triggers; a statement trigger refuses it unless the session allows it,
    which only the test settings' connections do (for the flush between tests)."""
    rows = f"SELECT count(*) FROM {table}"
    with connection.cursor() as cursor:
        cursor.execute(rows)
        before = cursor.fetchone()[0]
    assert refused(f"SET LOCAL ledger.allow_truncate = off; TRUNCATE {table} CASCADE")
    with connection.cursor() as cursor:
        cursor.execute(rows)
        assert cursor.fetchone()[0] == before


def test_deleting_a_user_keeps_their_log_rows_with_no_actor():
    actor = UserFactory()
    log = BillingLog.objects.create(action="build", summary="Run 1", actor=actor)
    actor.delete()
    log.refresh_from_db()
    assert (log.actor_id, log.summary) == (None, "Run 1")
