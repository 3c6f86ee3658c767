"""MCP tools for tickets: search, read, update (a frozen ticket takes only a status change) and
log time. The payloads are the REST API's, extensions included: the settlements section appears
only for users with settlements:read in the ticket's project."""

from datetime import date
from typing import Annotated

from django.utils import timezone
from pydantic import Field

from core.errors import NotFound
from core.mcp import (
    DEFAULT_PAGE_SIZE,
    Page,
    PageSize,
    ProjectKeys,
    TicketRef,
    ToolResult,
    choice_of,
    filtered,
    given,
    mcp_tool,
    paginated,
    serialize,
    validated,
)
from rbac.choices import ProjectPermission as P
from rbac.querysets import require_project_permission

from . import services
from .api.serializers import TicketSerializer, TimeEntrySerializer
from .choices import MAX_ENTRY_MINUTES, MIN_ENTRY_MINUTES, Activity, TicketPriority, TicketStatus
from .extensions import annotate_tickets
from .filtersets import TicketFilter
from .models import Ticket

Status = choice_of(TicketStatus)
Priority = choice_of(TicketPriority)
ActivityName = choice_of(Activity)
NOT_FOUND_MESSAGE = "Not found."


def _tickets(actor):
    """Readable tickets with everything their payload shows, in one query per page."""
    queryset = Ticket.objects.visible_to(actor, "read").with_list_columns().order_by("project__key", "number")
    return annotate_tickets(queryset, actor)


def _readable(actor, reference) -> Ticket:
    ticket = _tickets(actor).by_reference(reference).first()
    if ticket is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return ticket


def _described(data: dict) -> str:
    return f"{data['key']} “{data['title']}” ({data['status']}, {data['priority']})"


@mcp_tool(read_only=True)
def search_tickets(
    *, actor,
    query: Annotated[str | None, Field(description="Key (MNX-12), number (12), or text in title or "
                                                   "description.")] = None,
    project: ProjectKeys = None,
    status: Annotated[list[Status] | None, Field(description="Only these statuses.")] = None,
    priority: Annotated[list[Priority] | None, Field(description="Only these priorities.")] = None,
    assignee: Annotated[str | None, Field(description="Username, 'me' or 'none'.")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> ToolResult:
    """Find tickets you can read, ordered by project and number, with logged minutes (and, where you
    may read settlements, whether each is frozen and in which settlements)."""
    queryset = filtered(TicketFilter, _tickets(actor), actor=actor, q=query,
                        project=",".join(project) if project else None, status=status, priority=priority,
                        assignee=assignee)
    rows, meta = paginated(queryset, page=page, page_size=page_size)
    results = serialize(TicketSerializer, rows, actor=actor, many=True)
    listed = "; ".join(_described(row) for row in results) or "none"
    return ToolResult({**meta, "results": results},
                      f"{meta['count']} ticket(s), page {page} of {meta['pages']}: {listed}.")


@mcp_tool(read_only=True)
def get_ticket(*, actor, ticket: TicketRef) -> ToolResult:
    """One ticket: title, description, status, priority, assignee, due date, logged minutes; with
    settlements:read also `is_frozen` and the settlements it is linked to."""
    data = serialize(TicketSerializer, _readable(actor, ticket), actor=actor)
    return ToolResult(data, f"{_described(data)}, {data['logged_minutes']} minute(s) logged.")


@mcp_tool()
def update_ticket(
    *, actor, ticket: TicketRef,
    title: Annotated[str | None, Field(description="New title.")] = None,
    description: Annotated[str | None, Field(description="New description (Markdown).")] = None,
    priority: Annotated[Priority | None, Field(description="New priority.")] = None,
    status: Annotated[Status | None, Field(description="New status.")] = None,
    assignee: Annotated[str | None, Field(description="Username of the new assignee.")] = None,
    due_date: Annotated[date | None, Field(description="New due date.")] = None,
    unassign: Annotated[bool, Field(description="Remove the assignee.")] = False,
    clear_due_date: Annotated[bool, Field(description="Remove the due date.")] = False,
) -> ToolResult:
    """Change a ticket; only the fields given change. A ticket frozen by a sent or paid settlement
    accepts only a status change (anything else is refused with `ticket_frozen`)."""
    found = _readable(actor, ticket)
    # Rights before the arguments, as in the REST API: a reader learns nothing (e.g. which
    # usernames exist) from validation messages.
    require_project_permission(actor, found.project, P.TICKETS_WRITE, visible_with=P.TICKETS_READ)
    data = given(title=title, description=description, priority=priority, status=status, assignee=assignee,
                 due_date=due_date)
    if unassign:
        data["assignee"] = None
    if clear_due_date:
        data["due_date"] = None
    changes = validated(TicketSerializer, data, actor=actor, instance=found, partial=True)
    if set(changes) == {"status"}:
        services.ticket_change_status(actor=actor, ticket=found, status=changes["status"])
    else:
        services.ticket_update(actor=actor, ticket=found, changes=changes)
    payload = serialize(TicketSerializer, _readable(actor, found.pk), actor=actor)
    return ToolResult(payload, f"Updated {_described(payload)}.")


@mcp_tool()
def log_time(
    *, actor, ticket: TicketRef,
    minutes: Annotated[int, Field(ge=MIN_ENTRY_MINUTES, le=MAX_ENTRY_MINUTES, description="Minutes worked.")],
    work_date: Annotated[date | None, Field(description="The day of the work; today if left out.")] = None,
    activity: Annotated[ActivityName | None, Field(description="What the time was spent on; priced by the "
                                                               "contract's rate card.")] = None,
    description: Annotated[str, Field(description="What was done.")] = "",
    billable: Annotated[bool, Field(description="Whether the client is billed for it.")] = True,
    user: Annotated[str | None, Field(description="Username of who did the work (project admins only); "
                                                  "you if left out.")] = None,
) -> ToolResult:
    """Log time on a ticket (tickets:write in its project). Refused on a ticket frozen by a sent
    settlement and in a period that is already invoiced."""
    data = validated(TimeEntrySerializer, given(
        ticket=ticket, minutes=minutes, work_date=work_date or timezone.localdate(), activity=activity,
        description=description, billable=billable, user=user), actor=actor)
    entry = services.time_entry_create(actor=actor, **data)
    payload = serialize(TimeEntrySerializer, entry, actor=actor)
    return ToolResult(payload, f"Logged {entry.minutes} minute(s) on {entry.ticket.key} for {entry.work_date} "
                               f"({entry.activity}, {'billable' if entry.billable else 'not billable'}).")
