"""Signals sent after commit when billable ticket data changed; billing listens to them."""

from django.db import transaction
from django.dispatch import Signal

# Sent with: kind ("time_entry" | "expense"), record_id, project_id, ticket_id, deleted (bool).
ticket_record_changed = Signal()


def send_record_changed_on_commit(*, kind: str, record_id: int, project_id: int, ticket_id: int,
                                  deleted: bool) -> None:
    transaction.on_commit(lambda: ticket_record_changed.send(
        sender=kind, kind=kind, record_id=record_id, project_id=project_id, ticket_id=ticket_id, deleted=deleted,
    ))
