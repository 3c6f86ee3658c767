"""The freeze rule: a ticket linked to an active settlement in `sent` or `paid` cannot be edited
or deleted, nor can its time entries and expenses; its status may still change. Registered with
the tickets guard registry, together with the ticket payload extension that shows settlement
data to users who may read it."""

from django.db.models import Exists, OuterRef, Prefetch

from core.errors import Conflict, EditBlocked
from rbac.choices import ProjectPermission as P
from rbac.querysets import has_project_permission, project_permission_expression
from tickets.extensions import TicketExtension, register_ticket_extension
from tickets.guards import EditAction, EditAttempt, register_edit_guard

from .choices import FREEZING_STATUSES
from .models import Settlement, SettlementTicket

TICKET_FROZEN_MESSAGE = (
    "Ticket {ticket} is frozen: it belongs to settlement {settlement} ({status}). Only its status can "
    "change; return the settlement to draft to edit it."
)
TICKET_FROZEN_HIDDEN_MESSAGE = "Ticket {ticket} is frozen by a sent settlement. Only its status can change."
TICKET_IN_DRAFT_MESSAGE = "Ticket {ticket} is linked to draft settlement {settlement}; unlink it before deleting."


def freezing_links():
    return SettlementTicket.objects.filter(settlement__status__in=FREEZING_STATUSES, settlement__is_active=True)


def freezing_settlement(ticket) -> Settlement | None:
    """The (first) sent or paid settlement that freezes `ticket`, or None."""
    link = freezing_links().filter(ticket_id=ticket.pk).select_related("settlement").order_by(
        "settlement__number").first()
    return link.settlement if link else None


def is_ticket_frozen(ticket) -> bool:
    return freezing_links().filter(ticket_id=ticket.pk).exists()


def frozen_expression():
    """`is_frozen` for a Ticket queryset: `.annotate(is_frozen=frozen_expression())`."""
    return Exists(freezing_links().filter(ticket_id=OuterRef("pk")))


def freeze_guard(attempt: EditAttempt) -> None:
    if attempt.action == EditAction.TICKET_STATUS:
        return
    settlement = freezing_settlement(attempt.ticket)
    if settlement is None:
        if attempt.action == EditAction.TICKET_DELETE:
            _refuse_deleting_a_linked_ticket(attempt)
        return
    ticket = attempt.ticket
    if attempt.actor is not None and has_project_permission(attempt.actor, ticket.project_id, P.SETTLEMENTS_READ):
        message = TICKET_FROZEN_MESSAGE.format(ticket=ticket.key, settlement=settlement.display_number,
                                               status=settlement.status)
        extra = {"settlement": settlement.display_number}
    else:
        # Users without settlements:read learn that the ticket is frozen, not by what.
        message, extra = TICKET_FROZEN_HIDDEN_MESSAGE.format(ticket=ticket.key), {}
    raise EditBlocked(message, code="ticket_frozen", status_code=403, extra=extra)


def _refuse_deleting_a_linked_ticket(attempt: EditAttempt) -> None:
    link = (SettlementTicket.objects.filter(ticket_id=attempt.ticket.pk, settlement__is_active=True)
            .select_related("settlement").order_by("settlement__number").first())
    if link is None:
        return
    named = attempt.actor is not None and has_project_permission(attempt.actor, attempt.ticket.project_id,
                                                                 P.SETTLEMENTS_READ)
    settlement = link.settlement.display_number if named else "(a settlement you cannot see)"
    raise Conflict(TICKET_IN_DRAFT_MESSAGE.format(ticket=attempt.ticket.key, settlement=settlement),
                   code="ticket_in_settlement")


def _annotate(queryset, user):
    links = SettlementTicket.objects.filter(settlement__is_active=True).select_related("settlement").order_by(
        "settlement__number")
    return queryset.annotate(
        settlements_readable=project_permission_expression(user, P.SETTLEMENTS_READ),
        is_frozen=frozen_expression(),
    ).prefetch_related(Prefetch("settlement_links", queryset=links, to_attr="active_settlement_links"))


def _represent(ticket, user) -> dict:
    if not getattr(ticket, "settlements_readable", False):
        return {}
    return {
        "is_frozen": ticket.is_frozen,
        "settlements": [
            {"id": link.settlement_id, "number": link.settlement.display_number, "name": link.settlement.name,
             "status": link.settlement.status}
            for link in ticket.active_settlement_links
        ],
    }


def register() -> None:
    register_edit_guard("settlements.freeze", freeze_guard)
    register_ticket_extension("settlements", TicketExtension(annotate=_annotate, represent=_represent))
