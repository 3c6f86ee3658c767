"""MCP tools for billing staff: billing items, recalculation (and its progress), invoices. Reads
need billing.view, recalculation billing.manage, as in the REST API; the payloads are the API's."""

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from core.errors import NotFound
from core.mcp import (
    DEFAULT_PAGE_SIZE,
    Page,
    PageSize,
    ProjectKeys,
    ToolResult,
    choice_of,
    filtered,
    given,
    mcp_tool,
    paginated,
    serialize,
    validated,
)

from . import services
from .api.serializers import (
    BillingItemSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
    RecalculateSerializer,
    ReconciliationRunSerializer,
)
from .choices import ItemStatus, SourceType
from .filtersets import MAX_ID, BillingItemFilter, InvoiceFilter
from .models import BillingItem, Invoice, ReconciliationRun
from .selectors import invoices_for_list, invoices_with_lines, items_for_list

ClientId = Annotated[int | None, Field(ge=1, le=MAX_ID, description="Client id.")]
Period = Annotated[str | None, Field(description="Billing month, YYYY-MM.")]
InvoiceRef = Annotated[int | str, Field(description="Invoice id (12) or posted number (2026-0001).")]
NOT_FOUND_MESSAGE = "Not found."
UNKNOWN_TASK_MESSAGE = "No recalculation has the task id {task_id!r}."


def _money(amounts: dict) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in amounts.items()) or "nothing"


@mcp_tool(read_only=True)
def list_billing_items(
    *, actor,
    client: ClientId = None,
    contract: Annotated[int | None, Field(ge=1, le=MAX_ID, description="Contract id.")] = None,
    status: Annotated[list[choice_of(ItemStatus)] | None, Field(description="Only these statuses.")] = None,
    source_type: Annotated[list[choice_of(SourceType)] | None, Field(description="Only these sources.")] = None,
    period: Period = None,
    project: ProjectKeys = None,
    ticket: Annotated[str | None, Field(description="Ticket key (MNX-12) or id.")] = None,
    invoice: Annotated[int | None, Field(ge=1, le=MAX_ID, description="Invoice id.")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> ToolResult:
    """Billing items (what reconciliation made of time, expenses, fees, timebanks and manual lines):
    source, client, contract, qty × unit price = total, VAT, status (pending, reserved, invoiced,
    credited, void, superseded), billing month and invoice. Needs billing.view."""
    services.require_billing(actor, "read")
    queryset = filtered(BillingItemFilter, items_for_list(BillingItem.objects.visible_to(actor, "read")),
                        actor=actor, client=client, contract=contract, status=status, source_type=source_type,
                        period=period, project=",".join(project) if project else None, ticket=ticket,
                        invoice=invoice)
    rows, meta = paginated(queryset, page=page, page_size=page_size)
    results = serialize(BillingItemSerializer, rows, actor=actor, many=True)
    return ToolResult({**meta, "results": results},
                      f"{meta['count']} billing item(s), page {page} of {meta['pages']}{_page_total(results)}.")


def _page_total(rows: list[dict]) -> str:
    sums: dict[str, Decimal] = {}
    for row in rows:
        sums[row["currency"]] = sums.get(row["currency"], Decimal(0)) + Decimal(row["total"])
    return f"; this page totals {_money(sums)}" if rows else ""


@mcp_tool()
def recalculate_billing(
    *, actor,
    client: ClientId = None,
    contract: Annotated[int | None, Field(ge=1, le=MAX_ID, description="Contract id (of `client`, if given).")]
    = None,
    period: Period = None,
) -> ToolResult:
    """Reconcile billing items with their sources now: one client, one contract, one month, or with no
    arguments everything. Runs in the background; follow it with get_recalculation. Needs
    billing.manage."""
    services.require_billing(actor, "manage")
    data = validated(RecalculateSerializer, given(client=client, contract=contract, period=period), actor=actor)
    scope = services.resolve_scope(client_id=data.get("client"), contract_id=data.get("contract"),
                                   period=data.get("period"))
    run = services.recalculation_request(actor=actor, scope=scope)
    payload = {"task_id": run.task_id, "run": run.pk, "status": run.status,
               "status_url": f"/api/billing/recalculate/{run.task_id}/"}
    return ToolResult(payload, f"Recalculation run {run.pk} is {run.status}; task id {run.task_id}.")


@mcp_tool(read_only=True)
def get_recalculation(*, actor,
                      task_id: Annotated[str, Field(pattern=r"^[-\w]{1,64}$", description="task_id from "
                                                                                         "recalculate_billing.")]
                      ) -> ToolResult:
    """The status, progress and counts (created, superseded, unchanged, skipped) of a recalculation.
    Needs billing.view."""
    services.require_billing(actor, "read")
    run = ReconciliationRun.objects.visible_to(actor, "read").select_related("actor").filter(task_id=task_id).first()
    if run is None:
        raise NotFound(UNKNOWN_TASK_MESSAGE.format(task_id=task_id))
    data = serialize(ReconciliationRunSerializer, run, actor=actor)
    return ToolResult(data, f"Recalculation run {run.pk}: {run.status}.")


@mcp_tool(read_only=True)
def list_invoices(
    *, actor,
    client: ClientId = None,
    status: Annotated[list[choice_of(Invoice.Status)] | None, Field(description="Draft or posted.")] = None,
    kind: Annotated[list[choice_of(Invoice.Kind)] | None, Field(description="Invoice or credit note.")] = None,
    period: Period = None,
    number: Annotated[str | None, Field(description="Invoice number, e.g. 2026-0001.")] = None,
    run: Annotated[int | None, Field(ge=1, le=MAX_ID, description="Billing run id.")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> ToolResult:
    """Draft and posted invoices and credit notes, newest first: number, client, currency, month, line
    count, net, VAT and gross. Needs billing.view."""
    services.require_billing(actor, "read")
    queryset = invoices_for_list(Invoice.objects.visible_to(actor, "read")).order_by("-id")
    queryset = filtered(InvoiceFilter, queryset, actor=actor, client=client, status=status, kind=kind,
                        period=period, number=number, run=run)
    rows, meta = paginated(queryset, page=page, page_size=page_size)
    results = serialize(InvoiceSerializer, rows, actor=actor, many=True)
    listed = "; ".join(f"{_label(row)} {row['client_name']} {row['gross']} {row['currency']} ({row['status']})"
                       for row in results) or "none"
    return ToolResult({**meta, "results": results},
                      f"{meta['count']} invoice(s), page {page} of {meta['pages']}: {listed}.")


def _label(row: dict) -> str:
    kind = "Credit note" if row["kind"] == Invoice.Kind.CREDIT_NOTE else "Invoice"
    return f"{kind} {row['number']}" if row["number"] else f"{kind} draft #{row['id']}"


@mcp_tool(read_only=True)
def get_invoice(*, actor, invoice: InvoiceRef) -> ToolResult:
    """One invoice or credit note with its lines, totals and credit notes; for a draft also whether it
    is stale (its sources changed since it was built) and why. Needs billing.view."""
    services.require_billing(actor, "read")
    text = str(invoice).strip()
    queryset = invoices_with_lines(Invoice.objects.visible_to(actor, "read"))
    by_id = text.isascii() and text.isdigit()
    found = (queryset.filter(pk=int(text)) if by_id else queryset.filter(number__iexact=text)).first()
    if found is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    data = serialize(InvoiceDetailSerializer, found, actor=actor)
    return ToolResult(data, f"{_label(data)} to {data['client_name']}: {len(data['lines'])} line(s), net "
                            f"{data['net']}, VAT {data['vat']}, gross {data['gross']} {data['currency']}.")
