"""Reads of settlements that are more than one filter: ticket search for linking, list rows, the
rights a user holds on one settlement, and the rows the dashboard pages show."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from billing.selectors import Totals, settlement_totals
from rbac.choices import ProjectPermission as P
from rbac.querysets import project_permission_expression
from tickets.models import Project, Ticket
from tickets.querysets import TICKET_KEY_RE

from .choices import ALLOWED_SETTLEMENT_TRANSITIONS, REVERSE_TRANSITIONS
from .models import Settlement, SettlementAttachment, SettlementEvent, SettlementProject, SettlementTicket

SEARCH_LIMIT = 20


def search_linkable_tickets(*, settlement: Settlement, user, query: str, limit: int = SEARCH_LIMIT):
    """Tickets of the settlement's projects that `user` can read and that are not linked yet,
    matching a key (`MNX-12`), a bare number (`12`) or a title fragment (`%`/`_` literal)."""
    text = (query or "").strip()
    tickets = (Ticket.objects.visible_to(user, "read")
               .filter(project__settlement_links__settlement=settlement)
               .exclude(pk__in=SettlementTicket.objects.filter(settlement=settlement).values("ticket_id"))
               .select_related("project"))
    if text:
        # icontains escapes % and _ itself, so they match literally.
        condition = Q(title__icontains=text)
        match = TICKET_KEY_RE.match(text)
        if match:
            condition |= Q(project__key=match["project"].upper(), number=int(match["number"]))
        elif text.isascii() and text.isdigit():
            condition |= Q(number=int(text))
        tickets = tickets.filter(condition)
    return list(tickets.order_by("project__key", "number")[:limit])


def _count_per_settlement(model, **filters) -> Coalesce:
    rows = model.objects.filter(settlement=OuterRef("pk"), **filters).order_by().values("settlement")
    return Coalesce(Subquery(rows.annotate(count=Count("pk")).values("count")), 0)


def settlements_for_list(user):
    """Readable settlements with the counts a list shows, in one query. The counts are correlated
    sub-selects rather than joins with GROUP BY: PostgreSQL works them out for the page's rows
    only, after sorting and limiting, and the paginator's COUNT(*) leaves them out altogether."""
    # Tickets of projects the user cannot read are neither listed nor counted.
    readable = Ticket.objects.visible_to(user, "read").values("pk")
    return (Settlement.objects.visible_to(user, "read")
            .annotate(ticket_count=_count_per_settlement(SettlementTicket, ticket__in=readable),
                      attachment_count=_count_per_settlement(SettlementAttachment))
            .select_related("created_by").prefetch_related("projects"))


def readable_linked_tickets(*, settlement: Settlement, user):
    """Linked tickets the reader may see (tickets of projects they cannot read are left out)."""
    return (Ticket.objects.visible_to(user, "read").filter(settlement_links__settlement=settlement)
            .select_related("project", "assignee").order_by("project__key", "number"))


# --- Projects offered in forms ------------------------------------------------------------

def projects_with_settlement_read(user):
    """Projects whose settlements `user` may see: the choices of the list's project filter."""
    return Project.objects.visible_to(user, P.SETTLEMENTS_READ).order_by("key")


def projects_with_settlement_write(user):
    """Projects a settlement of `user` may span: the choices of the create and edit forms."""
    return Project.objects.visible_to(user, P.SETTLEMENTS_WRITE).order_by("key")


# --- One settlement: rights, tickets with totals, events ------------------------------------

@dataclass(frozen=True)
class SettlementRights:
    """What a user may do to one settlement. Each right needs its permission in *every* project
    of the settlement (SPEC §3); the services check the same again under the row lock."""

    write: bool = False
    delete: bool = False
    admin: bool = False


def settlement_projects_and_rights(user, settlement: Settlement) -> tuple[list[Project], SettlementRights]:
    """The settlement's projects and the user's rights on it, in one query."""
    rows = list(SettlementProject.objects.filter(settlement=settlement).select_related("project")
                .annotate(can_read=project_permission_expression(user, P.SETTLEMENTS_READ),
                          can_read_tickets=project_permission_expression(user, P.TICKETS_READ),
                          can_write=project_permission_expression(user, P.SETTLEMENTS_WRITE),
                          can_delete=project_permission_expression(user, P.SETTLEMENTS_DELETE),
                          can_admin=project_permission_expression(user, P.PROJECT_ADMIN))
                .order_by("project__key"))
    if not rows:
        return [], SettlementRights()
    rights = SettlementRights(write=all(row.can_write for row in rows), delete=all(row.can_delete for row in rows),
                              admin=all(row.can_admin for row in rows))
    for row in rows:
        # Pages name and link only the projects the reader may open; the others show their key.
        row.project.readable = row.can_read
        row.project.tickets_readable = row.can_read_tickets
    return [row.project for row in rows], rights


def transitions_for(settlement: Settlement, rights: SettlementRights) -> list[str]:
    """Target statuses the user may move the settlement to now (the buttons a page offers)."""
    if not rights.write:
        return []
    current = settlement.status
    return [target for target in sorted(ALLOWED_SETTLEMENT_TRANSITIONS[current])
            if (current, target) not in REVERSE_TRANSITIONS or rights.admin]


def sorted_amounts(totals: Totals) -> list[tuple[str, Decimal]]:
    """Currency and amount pairs in currency order. Templates get a plain list: looking up
    `.items` on the selector's defaultdict would insert a key instead of calling the method."""
    return sorted(totals.amounts.items())


@dataclass
class TicketRow:
    ticket: Ticket
    minutes: int
    amounts: list[tuple[str, Decimal]]


@dataclass
class LinkedTickets:
    rows: list[TicketRow]
    total_minutes: int = 0
    total_amounts: list[tuple[str, Decimal]] = field(default_factory=list)
    # Linked tickets of projects the reader cannot read: neither listed nor in the totals.
    hidden_count: int = 0


def linked_tickets_with_totals(*, settlement: Settlement, user) -> LinkedTickets:
    """Readable linked tickets with their hours and amounts in the settlement's period, and the
    total of those only (what the API and MCP show the same reader). Three queries, whatever the
    number of tickets."""
    # Unfiltered, so that the links loop gives every linked ticket an entry and the unreadable
    # ones can be counted without another query; the total then adds up the readable ones.
    totals = settlement_totals([settlement.pk])[settlement.pk]
    readable_total = Totals()
    rows = []
    for ticket in readable_linked_tickets(settlement=settlement, user=user):
        line = totals.tickets[ticket.pk]
        readable_total.add(line)
        rows.append(TicketRow(ticket=ticket, minutes=line.minutes, amounts=sorted_amounts(line)))
    return LinkedTickets(rows=rows, total_minutes=readable_total.minutes, total_amounts=sorted_amounts(readable_total),
                         hidden_count=len(totals.tickets) - len(rows))


def settlement_attachments(settlement: Settlement):
    return SettlementAttachment.objects.filter(settlement=settlement).select_related("uploaded_by")


def settlement_events(settlement: Settlement):
    """The audit trail, newest first (a timeline reads from the latest change)."""
    return SettlementEvent.objects.filter(settlement=settlement).select_related("actor").order_by("-created_at", "-id")
