"""Every write of projects, tickets, time entries and expenses.

Each function is atomic, checks the actor's project rights, locks the rows it changes, asks the
edit guards (freeze, billing lock) inside the transaction, and saves only what changed. REST,
admin, dashboard and MCP all call these functions; none of them writes models directly.
"""

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from core.errors import Conflict, InvalidInput, PermissionDenied, validate_model
from rbac.choices import OWNER_ROLE
from rbac.choices import ProjectPermission as P
from rbac.querysets import has_project_permission, require_project_permission
from rbac.services import membership_set

from .guards import EditAction, EditAttempt, check_edit
from .models import Expense, Project, Ticket, TimeEntry
from .signals import announce_record_change

PROJECT_CREATE_DENIED_MESSAGE = "Creating projects needs the 'tickets.add_project' permission."
DUPLICATE_PROJECT_KEY_MESSAGE = "A project with the key {key} already exists."
PROJECT_KEY_IMMUTABLE_MESSAGE = "A project's key cannot change: ticket keys and links depend on it."
PROJECT_NOT_EMPTY_MESSAGE = "Project {key} still has {count} ticket(s); archive it (is_active=false) instead."
PROJECT_ARCHIVED_MESSAGE = "Project {key} is archived; reactivate it to add tickets."
ASSIGNEE_NOT_MEMBER_MESSAGE = "{user} cannot read tickets of project {project}, so cannot be assigned."
UNKNOWN_FIELD_MESSAGE = "These fields cannot be changed here: {fields}."
OTHER_USERS_RECORD_MESSAGE = "Only a project admin may log or change {kind} of other users."
RECORD_USER_NOT_MEMBER_MESSAGE = "{user} may not log work in project {project}."

CHANGED_CONCURRENTLY_MESSAGE = "This entry was moved to another ticket meanwhile; reload and try again."
PROJECT_FIELDS = ("name", "description", "is_active", "budget_hours", "budget_amount", "budget_currency")
TICKET_FIELDS = ("title", "description", "priority", "status", "assignee", "due_date")


def _changed(instance, changes: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise InvalidInput(UNKNOWN_FIELD_MESSAGE.format(fields=", ".join(unknown)), code="read_only",
                           errors={name: [{"message": "This field cannot be changed.", "code": "read_only"}]
                                   for name in unknown})
    return {name: value for name, value in changes.items() if getattr(instance, name) != value}


def _save_changes(instance, changed: dict[str, Any], *, exclude: list[str] | None = None) -> None:
    for name, value in changed.items():
        setattr(instance, name, value)
    validate_model(instance, exclude=exclude)
    instance.save(update_fields=[*changed, "updated_at"])


# --- Projects -----------------------------------------------------------------------------

def can_create_projects(user) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm("tickets.add_project"))


@transaction.atomic
def project_create(*, actor, key: str, name: str, description: str = "", is_active: bool = True,
                   budget_hours=None, budget_amount=None, budget_currency: str = "") -> Project:
    """Create a project; its creator becomes its Owner."""
    if not can_create_projects(actor):
        raise PermissionDenied(PROJECT_CREATE_DENIED_MESSAGE)
    project = Project(key=key, name=name, description=description, is_active=is_active,
                      budget_hours=budget_hours, budget_amount=budget_amount, budget_currency=budget_currency)
    validate_model(project)
    _require_budget_currency(project)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        raise InvalidInput.for_field("key", DUPLICATE_PROJECT_KEY_MESSAGE.format(key=key), code="unique") from None
    membership_set(actor=actor, project=project, user=actor, role_slug=OWNER_ROLE, check_permission=False)
    return project


def _require_budget_currency(project: Project) -> None:
    if project.budget_amount is not None and not project.budget_currency:
        raise InvalidInput.for_field("budget_currency", "A money budget needs its currency.", code="required")


@transaction.atomic
def project_update(*, actor, project: Project, changes: dict[str, Any]) -> Project:
    require_project_permission(actor, project, P.PROJECT_ADMIN)
    if "key" in changes and changes["key"] != project.key:
        raise InvalidInput.for_field("key", PROJECT_KEY_IMMUTABLE_MESSAGE, code="immutable")
    changes = {name: value for name, value in changes.items() if name != "key"}
    project = Project.objects.select_for_update().get(pk=project.pk)
    changed = _changed(project, changes, PROJECT_FIELDS)
    if changed:
        for name, value in changed.items():
            setattr(project, name, value)
        _require_budget_currency(project)
        _save_changes(project, changed)
    return project


@transaction.atomic
def project_delete(*, actor, project: Project) -> None:
    """Delete an empty project; one with tickets is archived instead (is_active=false)."""
    require_project_permission(actor, project, P.PROJECT_ADMIN)
    project = Project.objects.select_for_update().get(pk=project.pk)
    count = project.tickets.count()
    if count:
        raise Conflict(PROJECT_NOT_EMPTY_MESSAGE.format(key=project.key, count=count), code="project_not_empty")
    # Memberships first: one in a custom role of this project would block the cascade
    # (Membership.role is PROTECT) and the delete would fail with a ProtectedError.
    project.memberships.all().delete()
    project.delete()


# --- Tickets ------------------------------------------------------------------------------

def _lock_ticket(ticket_id: int) -> Ticket:
    return Ticket.objects.select_for_update(of=("self",)).select_related("project").get(pk=ticket_id)


def _require_ticket_permission(actor, project: Project, permission: str) -> None:
    require_project_permission(actor, project, permission, visible_with=P.TICKETS_READ)


def _check_assignee(project: Project, assignee) -> None:
    if assignee is not None and not has_project_permission(assignee, project.pk, P.TICKETS_READ):
        raise InvalidInput.for_field(
            "assignee", ASSIGNEE_NOT_MEMBER_MESSAGE.format(user=assignee.get_username(), project=project.key),
            code="not_a_member",
        )


@transaction.atomic
def ticket_create(*, actor, project: Project, title: str, description: str = "", priority: str | None = None,
                  status: str | None = None, assignee=None, due_date=None) -> Ticket:
    # The project itself is visible to any member, so lacking tickets:write there is a 403.
    require_project_permission(actor, project, P.TICKETS_WRITE)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if not project.is_active:
        raise Conflict(PROJECT_ARCHIVED_MESSAGE.format(key=project.key), code="project_archived")
    _check_assignee(project, assignee)
    ticket = Ticket(project=project, number=project.next_ticket_number, title=title, description=description,
                    assignee=assignee, due_date=due_date, created_by=actor)
    if priority:
        ticket.priority = priority
    if status:
        ticket.status = status
    validate_model(ticket)
    project.next_ticket_number += 1
    project.save(update_fields=["next_ticket_number"])
    ticket.save()
    return ticket


@transaction.atomic
def ticket_update(*, actor, ticket: Ticket, changes: dict[str, Any]) -> Ticket:
    """Change ticket fields. A change of status alone takes the status path, which guards may allow
    where they refuse other edits (a frozen ticket still moves on the Kanban board)."""
    _require_ticket_permission(actor, ticket.project, P.TICKETS_WRITE)
    ticket = _lock_ticket(ticket.pk)
    changed = _changed(ticket, changes, TICKET_FIELDS)
    if not changed:
        return ticket
    if set(changed) == {"status"}:
        return _apply_status(actor=actor, ticket=ticket, status=changed["status"])
    check_edit(EditAttempt(EditAction.TICKET_UPDATE, ticket, actor, changed_fields=frozenset(changed)))
    if "assignee" in changed:
        _check_assignee(ticket.project, changed["assignee"])
    _save_changes(ticket, changed)
    return ticket


@transaction.atomic
def ticket_change_status(*, actor, ticket: Ticket, status: str) -> Ticket:
    _require_ticket_permission(actor, ticket.project, P.TICKETS_WRITE)
    ticket = _lock_ticket(ticket.pk)
    if ticket.status == status:
        return ticket
    return _apply_status(actor=actor, ticket=ticket, status=status)


def _apply_status(*, actor, ticket: Ticket, status: str) -> Ticket:
    check_edit(EditAttempt(EditAction.TICKET_STATUS, ticket, actor, changed_fields=frozenset({"status"})))
    _save_changes(ticket, {"status": status})
    return ticket


@transaction.atomic
def ticket_delete(*, actor, ticket: Ticket) -> None:
    _require_ticket_permission(actor, ticket.project, P.TICKETS_DELETE)
    ticket = _lock_ticket(ticket.pk)
    # Deleting the ticket deletes its time entries and expenses: each must be deletable too
    # (a billing lock on one entry keeps the whole ticket). Locks go ticket, records, then
    # whatever the guards take (the billing guard takes all the clients of these records at
    # once on TICKET_DELETE), the order every edit of a record follows.
    records = [(kind, record) for kind in RECORD_KINDS.values()
               for record in kind.model.objects.select_for_update().filter(ticket=ticket).order_by("pk")]
    check_edit(EditAttempt(EditAction.TICKET_DELETE, ticket, actor))
    removed = []
    for kind, record in records:
        check_edit(EditAttempt(kind.delete, ticket, actor, record=record))
        removed.append((kind, record.pk))
    project_id, ticket_id = ticket.project_id, ticket.pk
    ticket.delete()
    for kind, pk in removed:
        announce_record_change(kind=kind.name, record_id=pk, project_id=project_id,
                                      ticket_id=ticket_id, deleted=True)


# --- Time entries and expenses ------------------------------------------------------------

@dataclass(frozen=True)
class RecordKind:
    """What differs between time entries and expenses; the services below serve both."""

    name: str
    label: str
    model: type
    fields: tuple[str, ...]
    create: EditAction
    update: EditAction
    delete: EditAction


RECORD_KINDS = {
    "time_entry": RecordKind("time_entry", "time entries", TimeEntry,
                             ("ticket", "user", "work_date", "minutes", "activity", "description", "billable"),
                             EditAction.TIME_ENTRY_CREATE, EditAction.TIME_ENTRY_UPDATE, EditAction.TIME_ENTRY_DELETE),
    "expense": RecordKind("expense", "expenses", Expense,
                          ("ticket", "user", "date", "description", "amount", "currency", "billable"),
                          EditAction.EXPENSE_CREATE, EditAction.EXPENSE_UPDATE, EditAction.EXPENSE_DELETE),
}


def _require_record_rights(kind: RecordKind, *, actor, ticket: Ticket, user) -> None:
    _require_ticket_permission(actor, ticket.project, P.TICKETS_WRITE)
    if user.pk != actor.pk:
        if not has_project_permission(actor, ticket.project_id, P.PROJECT_ADMIN):
            raise PermissionDenied(OTHER_USERS_RECORD_MESSAGE.format(kind=kind.label), code="not_own_record")
        if not has_project_permission(user, ticket.project_id, P.TICKETS_WRITE):
            raise InvalidInput.for_field("user", RECORD_USER_NOT_MEMBER_MESSAGE.format(
                user=user.get_username(), project=ticket.project.key), code="not_a_member")


def _lock_tickets(*ticket_ids: int) -> dict[int, Ticket]:
    # Several rows are always locked in primary-key order, so two writers cannot deadlock.
    rows = Ticket.objects.select_for_update(of=("self",)).select_related("project").filter(pk__in=ticket_ids)
    return {ticket.pk: ticket for ticket in rows.order_by("pk")}


def _notify(kind: RecordKind, record, *, deleted: bool = False) -> None:
    announce_record_change(kind=kind.name, record_id=record.pk, project_id=record.ticket.project_id,
                                  ticket_id=record.ticket_id, deleted=deleted)


@transaction.atomic
def record_create(kind: RecordKind, *, actor, ticket: Ticket, user=None, **values):
    user = user or actor
    _require_record_rights(kind, actor=actor, ticket=ticket, user=user)
    ticket = _lock_tickets(ticket.pk)[ticket.pk]
    record = kind.model(ticket=ticket, user=user, **values)
    validate_model(record)
    check_edit(EditAttempt(kind.create, ticket, actor, changed_fields=frozenset({"ticket", "user", *values})))
    record.save()
    _notify(kind, record)
    return record


@transaction.atomic
def record_update(kind: RecordKind, *, actor, record, changes: dict[str, Any]):
    _require_record_rights(kind, actor=actor, ticket=record.ticket, user=record.user)
    new_ticket = changes.get("ticket", record.ticket)
    new_user = changes.get("user", record.user)
    if new_ticket.pk != record.ticket_id or new_user.pk != record.user_id:
        _require_record_rights(kind, actor=actor, ticket=new_ticket, user=new_user)
    tickets = _lock_tickets(record.ticket_id, new_ticket.pk)
    record = kind.model.objects.select_for_update(of=("self",)).select_related("ticket__project").get(pk=record.pk)
    if record.ticket_id not in tickets:
        raise Conflict(CHANGED_CONCURRENTLY_MESSAGE, code="concurrent_change")
    changed = _changed(record, changes, kind.fields)
    if not changed:
        return record
    check_edit(EditAttempt(kind.update, tickets[record.ticket_id], actor, record=record,
                           changed_fields=frozenset(changed)))
    if new_ticket.pk != record.ticket_id:
        # Moving a record onto another ticket adds it there: that ticket's guards must agree too.
        check_edit(EditAttempt(kind.create, tickets[new_ticket.pk], actor, record=record,
                               changed_fields=frozenset(changed)))
        _notify(kind, record, deleted=True)
    _save_changes(record, changed)
    _notify(kind, record)
    return record


@transaction.atomic
def record_delete(kind: RecordKind, *, actor, record) -> None:
    _require_record_rights(kind, actor=actor, ticket=record.ticket, user=record.user)
    ticket = _lock_tickets(record.ticket_id)[record.ticket_id]
    record = kind.model.objects.select_for_update(of=("self",)).get(pk=record.pk)
    check_edit(EditAttempt(kind.delete, ticket, actor, record=record))
    record_id = record.pk
    record.delete()
    announce_record_change(kind=kind.name, record_id=record_id, project_id=ticket.project_id,
                                  ticket_id=ticket.pk, deleted=True)


def time_entry_create(*, actor, ticket: Ticket, **values) -> TimeEntry:
    return record_create(RECORD_KINDS["time_entry"], actor=actor, ticket=ticket, **values)


def time_entry_update(*, actor, entry: TimeEntry, changes: dict[str, Any]) -> TimeEntry:
    return record_update(RECORD_KINDS["time_entry"], actor=actor, record=entry, changes=changes)


def time_entry_delete(*, actor, entry: TimeEntry) -> None:
    record_delete(RECORD_KINDS["time_entry"], actor=actor, record=entry)


def expense_create(*, actor, ticket: Ticket, **values) -> Expense:
    return record_create(RECORD_KINDS["expense"], actor=actor, ticket=ticket, **values)


def expense_update(*, actor, expense: Expense, changes: dict[str, Any]) -> Expense:
    return record_update(RECORD_KINDS["expense"], actor=actor, record=expense, changes=changes)


def expense_delete(*, actor, expense: Expense) -> None:
    record_delete(RECORD_KINDS["expense"], actor=actor, record=expense)
