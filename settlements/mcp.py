"""MCP tools for settlements: the seed's thirteen (list, get, create, update, delete, status,
link/unlink tickets, linked tickets, attachments as base64). Each validates with the REST
serializers and calls the same services, so rights, guards, limits and events are identical."""

import base64
import binascii
from datetime import date
from typing import Annotated

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from pydantic import Field

from billing.selectors import settlement_totals
from core.errors import InvalidInput, NotFound, ServiceError
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
from tickets.models import Ticket

from . import files, selectors, services
from .api.serializers import (
    AttachmentSerializer,
    LinkTicketSerializer,
    SettlementSerializer,
    SettlementTicketSerializer,
)
from .choices import AttachmentCategory, AttachmentState, SettlementStatus
from .filtersets import SettlementFilter
from .models import Settlement, SettlementAttachment

SettlementRef = Annotated[int | str, Field(description="Settlement id (12) or number (ROZ-12).")]
AttachmentId = Annotated[int, Field(ge=1, description="Attachment id, from list_settlement_attachments.")]
Status = choice_of(SettlementStatus)
Category = choice_of(AttachmentCategory)
State = choice_of(AttachmentState)

MCP_UPLOAD_TOO_LARGE_MESSAGE = (
    "Through MCP a file may be at most {limit} MB, because base64 travels inside one JSON-RPC message. "
    "Upload larger files (up to {rest_limit} MB) with the REST API: POST /api/settlements/{settlement}/attachments/ "
    "as multipart/form-data."
)
MCP_DOWNLOAD_TOO_LARGE_MESSAGE = (
    "Through MCP a file may be at most {limit} MB; this one has {size} MB. Download it with the REST API: "
    "GET /api/settlements/{settlement}/attachments/{attachment}/download/."
)
INVALID_FILENAME_MESSAGE = "Give a file name with an extension, e.g. report.pdf."
INVALID_BASE64_MESSAGE = "content_base64 is not valid base64 (standard alphabet, with padding)."
ATTACHMENT_NOT_FOUND_MESSAGE = "Settlement {number} has no attachment {attachment}."


# --- Lookups and payloads -----------------------------------------------------------------

def _readable(actor, reference, *, for_payload: bool = False) -> Settlement:
    """A settlement the actor may read; else 404. With `for_payload`, also the columns the payload
    shows (counts, projects: two more joins and a query), which a tool that only acts on the
    settlement or lists what it holds does not need."""
    queryset = (selectors.settlements_for_list(actor) if for_payload
                else Settlement.objects.visible_to(actor, "read"))
    settlement = queryset.by_reference(reference).first()
    if settlement is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return settlement


def _writable(actor, reference) -> Settlement:
    """A settlement the actor may change, checked before the arguments are, as the REST API
    does: a reader learns nothing from validation messages."""
    settlement = _readable(actor, reference)
    services.require_write_rights(settlement.pk, actor=actor)
    return settlement


def _payload(actor, settlement: Settlement, totals=None) -> dict:
    """The REST payload of the settlement as it is now (read again after a write)."""
    fresh = _readable(actor, settlement.pk, for_payload=True)
    totals = totals or settlement_totals([fresh.pk], readable_by=actor)
    return serialize(SettlementSerializer, fresh, actor=actor, totals=totals)


def _linked_tickets(actor, settlement: Settlement, totals=None) -> list[dict]:
    tickets = selectors.readable_linked_tickets(settlement=settlement, user=actor)
    by_ticket = (totals or settlement_totals([settlement.pk], readable_by=actor))[settlement.pk].tickets
    return serialize(SettlementTicketSerializer, tickets, actor=actor, many=True, ticket_totals=by_ticket)


def _attachments(actor, settlement: Settlement) -> list[dict]:
    rows = settlement.attachments.select_related("uploaded_by").order_by("created_at", "id")
    return serialize(AttachmentSerializer, rows, actor=actor, many=True)


def _attachment(settlement: Settlement, attachment_id: int) -> SettlementAttachment:
    attachment = settlement.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound(ATTACHMENT_NOT_FOUND_MESSAGE.format(number=settlement.display_number,
                                                           attachment=attachment_id))
    return attachment


def _described(data: dict) -> str:
    return f"{data['number']} “{data['name']}” ({data['status']}, {data['period_start']} – {data['period_end']})"


# --- Settlements --------------------------------------------------------------------------

@mcp_tool(read_only=True)
def list_settlements(
    *, actor,
    status: Annotated[list[Status] | None, Field(description="Only these statuses.")] = None,
    project: ProjectKeys = None,
    date_from: Annotated[date | None, Field(description="Only periods ending on or after this date.")] = None,
    date_to: Annotated[date | None, Field(description="Only periods starting on or before this date.")] = None,
    query: Annotated[str | None, Field(description="Name contains, or number (ROZ-12).")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> ToolResult:
    """List the settlements you can read (settlements:read in at least one of their projects), newest
    first, with ticket and attachment counts and totals. Filter by status, project, period and text."""
    queryset = filtered(SettlementFilter, selectors.settlements_for_list(actor).order_by("-number"), actor=actor,
                        status=status, project=",".join(project) if project else None, date_from=date_from,
                        date_to=date_to, q=query)
    rows, meta = paginated(queryset, page=page, page_size=page_size)
    results = serialize(SettlementSerializer, rows, actor=actor, many=True,
                        totals=settlement_totals((row.pk for row in rows), readable_by=actor))
    listed = "; ".join(_described(row) for row in results) or "none"
    return ToolResult({**meta, "results": results},
                      f"{meta['count']} settlement(s), page {page} of {meta['pages']}: {listed}.")


@mcp_tool(read_only=True)
def get_settlement(*, actor, settlement: SettlementRef) -> ToolResult:
    """One settlement: status and timestamps (sent_at, paid_at), period, projects, notes, the linked
    tickets you can read with their hours and amounts, totals, and attachment metadata."""
    found = _readable(actor, settlement, for_payload=True)
    # The settlement's totals and its readable tickets', computed once.
    totals = settlement_totals([found.pk], readable_by=actor)
    data = serialize(SettlementSerializer, found, actor=actor, totals=totals)
    data["tickets"] = _linked_tickets(actor, found, totals)
    data["attachments"] = _attachments(actor, found)
    return ToolResult(data, f"{_described(data)}: {len(data['tickets'])} ticket(s), "
                            f"{len(data['attachments'])} attachment(s).")


@mcp_tool()
def create_settlement(
    *, actor,
    name: Annotated[str, Field(description="1–200 characters.")],
    period_start: Annotated[date, Field(description="First day of the settled period.")],
    period_end: Annotated[date, Field(description="Last day of the settled period (not before the start).")],
    projects: Annotated[list[str], Field(description="Project keys; you need settlements:write in every one.")],
    notes: Annotated[str, Field(description="Markdown notes.")] = "",
) -> ToolResult:
    """Create a draft settlement spanning one or more projects; it gets the next number (ROZ-N).
    Needs settlements:write in every project named."""
    data = validated(SettlementSerializer, {"name": name, "period_start": period_start, "period_end": period_end,
                                            "projects": projects, "notes": notes}, actor=actor)
    created = services.settlement_create(actor=actor, **data)
    payload = _payload(actor, created)
    return ToolResult(payload, f"Created {_described(payload)}.")


@mcp_tool()
def update_settlement(
    *, actor, settlement: SettlementRef,
    name: Annotated[str | None, Field(description="New name, 1–200 characters.")] = None,
    period_start: Annotated[date | None, Field(description="New first day of the period.")] = None,
    period_end: Annotated[date | None, Field(description="New last day of the period.")] = None,
    projects: Annotated[list[str] | None, Field(description="The complete new list of project keys.")] = None,
    notes: Annotated[str | None, Field(description="New Markdown notes.")] = None,
) -> ToolResult:
    """Edit a draft settlement; only the fields given change. A project that still has linked tickets
    cannot be removed. Needs settlements:write in every project."""
    found = _writable(actor, settlement)
    changes = validated(SettlementSerializer, given(name=name, period_start=period_start, period_end=period_end,
                                                    projects=projects, notes=notes),
                        actor=actor, instance=found, partial=True)
    services.settlement_update(actor=actor, settlement=found, changes=changes)
    payload = _payload(actor, found)
    return ToolResult(payload, f"Updated {_described(payload)}.")


@mcp_tool(destructive=True)
def delete_settlement(*, actor, settlement: SettlementRef) -> ToolResult:
    """Delete a draft settlement (soft: its number and history stay). Needs settlements:delete in every
    project."""
    found = _readable(actor, settlement)
    services.settlement_delete(actor=actor, settlement=found)
    return ToolResult({"id": found.pk, "number": found.display_number, "deleted": True},
                      f"Deleted settlement {found.display_number}.")


@mcp_tool()
def change_settlement_status(*, actor, settlement: SettlementRef,
                             status: Annotated[Status, Field(description="The new status.")]) -> ToolResult:
    """Move a settlement through draft → sent → paid (sets sent_at / paid_at). Sending freezes its
    tickets. Going back (paid → sent, sent → draft) needs the project admin role in every project;
    any other move is refused with `invalid_transition` and the allowed targets."""
    found = _readable(actor, settlement)
    before = found.status
    services.settlement_transition(actor=actor, settlement=found, status=status)
    payload = _payload(actor, found)
    return ToolResult(payload, f"Settlement {payload['number']}: {before} → {payload['status']}.")


# --- Tickets ------------------------------------------------------------------------------

@mcp_tool()
def link_ticket_to_settlement(*, actor, settlement: SettlementRef, ticket: TicketRef) -> ToolResult:
    """Link a ticket of one of the settlement's projects to a draft settlement. A ticket may only be in
    settlements whose periods do not overlap."""
    found = _writable(actor, settlement)
    linked = validated(LinkTicketSerializer, {"ticket": ticket}, actor=actor)["ticket"]
    services.settlement_link_ticket(actor=actor, settlement=found, ticket=linked)
    totals = settlement_totals([found.pk], readable_by=actor)[found.pk].tickets
    row = serialize(SettlementTicketSerializer, linked, actor=actor, ticket_totals=totals)
    return ToolResult({"settlement": found.display_number, "ticket": row},
                      f"Linked {row['key']} “{row['title']}” to {found.display_number}.")


@mcp_tool()
def unlink_ticket_from_settlement(*, actor, settlement: SettlementRef, ticket: TicketRef) -> ToolResult:
    """Unlink a ticket from a draft settlement."""
    found = _readable(actor, settlement)
    unlinked = Ticket.objects.visible_to(actor, "read").by_reference(ticket).select_related("project").first()
    if unlinked is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    services.settlement_unlink_ticket(actor=actor, settlement=found, ticket=unlinked)
    return ToolResult({"settlement": found.display_number, "ticket": unlinked.key, "unlinked": True},
                      f"Unlinked {unlinked.key} from {found.display_number}.")


@mcp_tool(read_only=True)
def list_settlement_tickets(*, actor, settlement: SettlementRef) -> ToolResult:
    """The tickets linked to a settlement (those of projects you can read): key, title, status,
    priority, project and billable hours and amounts in the settlement's period."""
    found = _readable(actor, settlement)
    tickets = _linked_tickets(actor, found)
    listed = "; ".join(f"{row['key']} “{row['title']}” ({row['status']})" for row in tickets) or "none"
    return ToolResult({"settlement": found.display_number, "tickets": tickets},
                      f"{found.display_number} has {len(tickets)} linked ticket(s): {listed}.")


# --- Attachments --------------------------------------------------------------------------

def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}" if size % (1024 * 1024) == 0 else f"{size / (1024 * 1024):.1f}"


def _too_large_upload(settlement: Settlement) -> ServiceError:
    message = MCP_UPLOAD_TOO_LARGE_MESSAGE.format(limit=_megabytes(settings.MCP_ATTACHMENT_MAX_BYTES),
                                                  rest_limit=_megabytes(settings.SETTLEMENT_ATTACHMENT_MAX_BYTES),
                                                  settlement=settlement.pk)
    return ServiceError(message, code="file_too_large", status_code=413,
                        extra={"limit": settings.MCP_ATTACHMENT_MAX_BYTES})


def _decoded(settlement: Settlement, content_base64: str) -> bytes:
    """The file's bytes; the size is checked on the encoded text, before copying or decoding it."""
    encoded_limit = (settings.MCP_ATTACHMENT_MAX_BYTES + 2) // 3 * 4
    # Line breaks of wrapped base64 (MIME: every 76 characters) are allowed for; no more.
    if len(content_base64) > encoded_limit + encoded_limit // 38 + 4:
        raise _too_large_upload(settlement)
    text = "".join(content_base64.split())
    if len(text) > encoded_limit:
        raise _too_large_upload(settlement)
    try:
        content = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput.for_field("content_base64", INVALID_BASE64_MESSAGE, code="invalid_base64") from None
    if len(content) > settings.MCP_ATTACHMENT_MAX_BYTES:
        raise _too_large_upload(settlement)
    return content


@mcp_tool()
def add_settlement_attachment(
    *, actor, settlement: SettlementRef,
    filename: Annotated[str, Field(min_length=1, max_length=255,
                                   description="File name with extension, e.g. invoice-10.pdf.")],
    content_base64: Annotated[str, Field(description="The file's bytes, base64-encoded.")],
    category: Annotated[Category, Field(description="What the file is.")] = AttachmentCategory.OTHER.value,
    state: Annotated[State, Field(description="Draft, or signed by both sides.")] = AttachmentState.DRAFT.value,
) -> ToolResult:
    """Attach a file (base64) to a settlement, in any status. Allowed: pdf, doc(x), odt, xls(x), ods, csv,
    txt, md, rtf, png, jpg, webp, gif, zip, 7z; the content must match the extension. At most 10 files per
    settlement; through MCP at most MCP_ATTACHMENT_MAX_BYTES (20 MB by default) per file."""
    found = _writable(actor, settlement)
    content = _decoded(found, content_base64)
    try:
        uploaded = SimpleUploadedFile(filename, content)
    except SuspiciousFileOperation:
        raise InvalidInput.for_field("filename", INVALID_FILENAME_MESSAGE, code="invalid_filename") from None
    attachment = services.attachment_upload(actor=actor, settlement=found, uploaded=uploaded, category=category,
                                            state=state)
    data = serialize(AttachmentSerializer, attachment, actor=actor)
    return ToolResult(data, f"Attached {data['name']} ({data['size']} bytes, {data['category']}) to "
                            f"{found.display_number}.")


@mcp_tool(read_only=True)
def get_settlement_attachment(*, actor, settlement: SettlementRef, attachment_id: AttachmentId) -> ToolResult:
    """Download an attachment as base64, with its filename, mime type, size, category and state."""
    found = _readable(actor, settlement)
    attachment = _attachment(found, attachment_id)
    if attachment.size > settings.MCP_ATTACHMENT_MAX_BYTES:
        message = MCP_DOWNLOAD_TOO_LARGE_MESSAGE.format(limit=_megabytes(settings.MCP_ATTACHMENT_MAX_BYTES),
                                                        size=_megabytes(attachment.size), settlement=found.pk,
                                                        attachment=attachment.pk)
        raise ServiceError(message, code="file_too_large", status_code=413)
    try:
        content = b"".join(files.open_stream(attachment.file.name))
    except (OSError, BotoCoreError, ClientError) as exc:
        raise services.StorageUnavailable(services.STORAGE_UNAVAILABLE_MESSAGE) from exc
    data = {**serialize(AttachmentSerializer, attachment, actor=actor), "filename": attachment.original_name,
            "mime_type": attachment.content_type, "content_base64": base64.b64encode(content).decode("ascii")}
    return ToolResult(data, f"{attachment.original_name} ({attachment.content_type}, {attachment.size} bytes) "
                            f"from {found.display_number}; the bytes are in `content_base64` of the structured "
                            f"content.", structured_only=("content_base64",))


@mcp_tool(read_only=True)
def list_settlement_attachments(*, actor, settlement: SettlementRef) -> ToolResult:
    """The attachments of a settlement: id, name, content type, size, category, state, who uploaded
    it and when. No file content (use get_settlement_attachment)."""
    found = _readable(actor, settlement)
    rows = _attachments(actor, found)
    listed = "; ".join(f"#{row['id']} {row['name']} ({row['category']}, {row['state']})" for row in rows) or "none"
    return ToolResult({"settlement": found.display_number, "attachments": rows},
                      f"{found.display_number} has {len(rows)} attachment(s): {listed}.")


@mcp_tool(destructive=True)
def delete_settlement_attachment(*, actor, settlement: SettlementRef, attachment_id: AttachmentId) -> ToolResult:
    """Delete an attachment of a draft settlement. Needs settlements:delete in every project."""
    found = _readable(actor, settlement)
    attachment = _attachment(found, attachment_id)
    services.attachment_delete(actor=actor, attachment=attachment)
    return ToolResult({"settlement": found.display_number, "attachment": attachment_id, "deleted": True},
                      f"Deleted {attachment.original_name} from {found.display_number}.")
