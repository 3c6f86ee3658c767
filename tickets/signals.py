"""Signals about changed billable ticket data; billing listens to them.

`ticket_record_changed` is sent inside the transaction of the change, right after the write, so a
receiver can record what it must do (billing writes a durable outbox row) atomically with the
change itself; receivers defer every side effect (tasks, e-mail) to `transaction.on_commit`."""

from django.dispatch import Signal

# Sent with: kind ("time_entry" | "expense"), record_id, project_id, ticket_id, deleted (bool).
ticket_record_changed = Signal()


def announce_record_change(*, kind: str, record_id: int, project_id: int, ticket_id: int, deleted: bool) -> None:
    ticket_record_changed.send(sender=kind, kind=kind, record_id=record_id, project_id=project_id,
                               ticket_id=ticket_id, deleted=deleted)
