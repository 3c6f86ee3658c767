"""The billing lock (SPEC §1, guard 2): a time entry, expense or sales line whose billing item is
`reserved` (in a draft invoice) or `invoiced` cannot be edited or deleted. Registered with the
tickets guard registry for time entries and expenses; the sales-line services call
`require_unlocked` themselves."""

from core.errors import EditBlocked
from tickets.guards import EditAction, EditAttempt, register_edit_guard
from tickets.models import Expense, TimeEntry

from .choices import LOCKED_STATUSES, ItemStatus
from .models import BillingItem, Client
from .reconciliation import client_ids_of_records
from .sources import source_types_of_record

LOCKED_BY_DRAFT_MESSAGE = ("This entry is locked by draft invoice {draft}. Remove it from the draft or delete the run "
                           "to edit.")
LOCKED_BY_INVOICE_MESSAGE = ("This entry is locked by posted invoice {invoice}. Correct it with a credit note, which "
                             "unlocks it.")

GUARDED_ACTIONS = {
    EditAction.TIME_ENTRY_UPDATE: "time_entry",
    EditAction.TIME_ENTRY_DELETE: "time_entry",
    EditAction.EXPENSE_UPDATE: "expense",
    EditAction.EXPENSE_DELETE: "expense",
}


def locking_item(record_kind: str, record_id: int) -> BillingItem | None:
    # Locked rows: a draft build cannot reserve them while this edit is deciding.
    return (BillingItem.objects.select_for_update(of=("self",))
            .filter(source_type__in=source_types_of_record(record_kind), source_id=record_id,
                    status__in=LOCKED_STATUSES)
            .select_related("invoice").order_by("-status").first())


def _label(item: BillingItem) -> str:
    if item.invoice_id:
        return item.invoice.label
    return f"(run {item.run_id})" if item.run_id else f"(item {item.pk})"


def _lock_clients(record_kind: str, record_id: int) -> None:
    """Take the row locks of the clients the record bills to, which draft builds hold while they
    bring those clients up to date and reserve their items: a build that started first finishes
    before this edit decides (and the edit sees the lock), one that starts later waits for the
    edit and reconciles it before reserving. Without this, a build could reserve the item
    computed from the values this edit is replacing, and its lock would then keep them."""
    _lock_client_rows(client_ids_of_records(record_kind, [record_id]))


def _lock_clients_of_ticket(ticket_id: int) -> None:
    """Deleting a ticket checks each of its records in turn; locking their clients one record at
    a time could deadlock with a build that locks them all at once in id order. So all of them
    first, in one statement, in the same order."""
    client_ids = set()
    for record_kind, model in (("time_entry", TimeEntry), ("expense", Expense)):
        record_ids = list(model.objects.filter(ticket_id=ticket_id).values_list("pk", flat=True))
        if record_ids:
            client_ids.update(client_ids_of_records(record_kind, record_ids))
    _lock_client_rows(client_ids)


def _lock_client_rows(client_ids) -> None:
    if client_ids:
        list(Client.objects.select_for_update().filter(pk__in=client_ids).order_by("pk").values_list("pk", flat=True))


def require_unlocked(record_kind: str, record_id: int) -> None:
    _lock_clients(record_kind, record_id)
    item = locking_item(record_kind, record_id)
    if item is None:
        return
    label = _label(item)
    extra = {"invoice": item.invoice_id, "run": item.run_id, "item": item.pk}
    if item.status == ItemStatus.INVOICED:
        raise EditBlocked(LOCKED_BY_INVOICE_MESSAGE.format(invoice=label), code="locked_by_invoice", status_code=409,
                          extra=extra)
    raise EditBlocked(LOCKED_BY_DRAFT_MESSAGE.format(draft=label), code="locked_by_draft", status_code=409,
                      extra=extra)


def billing_lock_guard(attempt: EditAttempt) -> None:
    if attempt.action == EditAction.TICKET_DELETE:
        _lock_clients_of_ticket(attempt.ticket.pk)
        return
    record_kind = GUARDED_ACTIONS.get(attempt.action)
    if record_kind and attempt.record is not None:
        require_unlocked(record_kind, attempt.record.pk)


def register() -> None:
    register_edit_guard("billing.lock", billing_lock_guard)
