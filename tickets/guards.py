"""The edit-guard registry. Other apps (settlements' freeze, billing's lock) register guards here
in their AppConfig.ready(); every ticket-data service calls `check_edit` after locking the rows,
inside its transaction. `tickets` itself never imports those apps."""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EditAction(StrEnum):
    TICKET_UPDATE = "ticket.update"
    # A change of status alone (Kanban drag-drop); guards may allow it where they refuse updates.
    TICKET_STATUS = "ticket.status"
    TICKET_DELETE = "ticket.delete"
    TIME_ENTRY_CREATE = "time_entry.create"
    TIME_ENTRY_UPDATE = "time_entry.update"
    TIME_ENTRY_DELETE = "time_entry.delete"
    EXPENSE_CREATE = "expense.create"
    EXPENSE_UPDATE = "expense.update"
    EXPENSE_DELETE = "expense.delete"


@dataclass(frozen=True)
class EditAttempt:
    """What a service is about to do. `record` is the time entry or expense (None on create;
    on a move to another ticket, the new ticket gets a *create* attempt carrying the record).
    Deleting a ticket asks TICKET_DELETE, then the delete action of each of its records."""

    action: EditAction
    ticket: Any
    actor: Any = None
    record: Any = None
    changed_fields: frozenset[str] = field(default_factory=frozenset)


# A guard raises core.errors.EditBlocked (or another ServiceError) to refuse; returns None to allow.
EditGuard = Callable[[EditAttempt], None]

_guards: dict[str, EditGuard] = {}


def register_edit_guard(name: str, guard: EditGuard) -> None:
    """Register (or replace) a guard under a stable name, so repeated ready() calls stay idempotent."""
    _guards[name] = guard


def unregister_edit_guard(name: str) -> None:
    _guards.pop(name, None)


def registered_edit_guards() -> dict[str, EditGuard]:
    return dict(_guards)


def check_edit(attempt: EditAttempt) -> None:
    for guard in list(_guards.values()):
        guard(attempt)
