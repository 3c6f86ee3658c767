"""Reads of settlements that are more than one filter: ticket search for linking, list rows."""

from django.db.models import Count, Q

from tickets.models import Ticket
from tickets.querysets import TICKET_KEY_RE

from .models import Settlement, SettlementTicket

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


def settlements_for_list(user):
    """Readable settlements with the counts a list shows, in one query."""
    return (Settlement.objects.visible_to(user, "read")
            .annotate(ticket_count=Count("settlement_tickets", distinct=True),
                      attachment_count=Count("attachments", distinct=True))
            .select_related("created_by").prefetch_related("projects"))


def readable_linked_tickets(*, settlement: Settlement, user):
    """Linked tickets the reader may see (tickets of projects they cannot read are left out)."""
    return (Ticket.objects.visible_to(user, "read").filter(settlement_links__settlement=settlement)
            .select_related("project", "assignee").order_by("project__key", "number"))

