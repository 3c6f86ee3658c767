"""Named querysets of the tickets app; each starts from the rbac visibility chokepoint."""

import re

from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from rbac.choices import ProjectPermission as P
from rbac.querysets import ProjectScopedQuerySet

TICKET_KEY_RE = re.compile(r"^(?P<project>[A-Za-z]{2,10})-(?P<number>\d{1,9})$")

TICKET_ACTIONS = {"read": P.TICKETS_READ, "write": P.TICKETS_WRITE, "delete": P.TICKETS_DELETE}


class ProjectQuerySet(ProjectScopedQuerySet):
    project_field = "pk"
    # Any membership lets a user see the project itself; what is inside needs module rights.
    action_permissions = {"read": None, "write": P.PROJECT_ADMIN, "admin": P.PROJECT_ADMIN,
                          "delete": P.PROJECT_ADMIN, **{p: p for p in P.values}}


class TicketQuerySet(ProjectScopedQuerySet):
    project_field = "project"
    action_permissions = TICKET_ACTIONS

    def by_key(self, key: str) -> "TicketQuerySet":
        """Filter by a ticket key such as `MNX-12` (case-insensitive project part); nothing if malformed."""
        match = TICKET_KEY_RE.match(key.strip())
        if not match:
            return self.none()
        return self.filter(project__key=match["project"].upper(), number=int(match["number"]))

    def by_reference(self, reference) -> "TicketQuerySet":
        """A key (`MNX-12`) or a numeric id."""
        text = str(reference).strip()
        return self.filter(pk=int(text)) if (text.isascii() and text.isdigit()) else self.by_key(text)

    def with_list_columns(self) -> "TicketQuerySet":
        """Everything a ticket list shows, in one query: related rows and logged minutes."""
        from .models import TimeEntry

        minutes = (TimeEntry.objects.filter(ticket=OuterRef("pk")).order_by()
                   .values("ticket").annotate(total=Sum("minutes")).values("total"))
        return self.select_related("project", "assignee", "created_by").annotate(
            logged_minutes=Coalesce(Subquery(minutes), 0)
        )


class TicketRecordQuerySet(ProjectScopedQuerySet):
    """Time entries and expenses: visible with the ticket's project rights."""

    project_field = "ticket__project"
    action_permissions = TICKET_ACTIONS
