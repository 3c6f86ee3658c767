"""Baseline views for the API benchmark: the same first page of rows the product's list endpoints
give bench-member (same rows, same order, comparable fields), each from ONE `.values()` query
rendered with JsonResponse. No authentication, permissions, serializers or count query: what is
left is the floor a list endpoint of this stack can reach, which the product is compared to.
Per-row figures one statement can compute stay in (logged minutes, ticket and attachment counts,
project keys, as correlated sub-selects); what needs more is left out (settlement totals, the
ticket payload's settlement links).

Visibility is reproduced with a join on bench-member's memberships (the member holds the same
role in all of its projects) rather than with the permission tables, so the baseline needs no user
object and no second query."""

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.urls import path

from billing.models import BillingItem
from billing.selectors import ITEM_ORDERING
from settlements.models import Settlement, SettlementAttachment, SettlementProject, SettlementTicket
from tickets.models import Ticket, TimeEntry

from .operations import BENCH_MEMBER

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _page_size(request) -> int:
    try:
        return max(1, min(int(request.GET.get("page_size", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE


def _rows(queryset, request) -> JsonResponse:
    return JsonResponse({"results": list(queryset[:_page_size(request)])})


def tickets(request):
    logged = (TimeEntry.objects.filter(ticket=OuterRef("pk")).order_by().values("ticket")
              .annotate(total=Sum("minutes")).values("total"))
    rows = (Ticket.objects.filter(project__memberships__user__username=BENCH_MEMBER)
            .annotate(logged_minutes=Coalesce(Subquery(logged, output_field=IntegerField()), 0))
            .order_by("project__key", "number")
            .values("id", "project__key", "number", "title", "description", "priority", "status",
                    "assignee__username", "due_date", "created_by__username", "created_at", "updated_at",
                    "logged_minutes"))
    return _rows(rows, request)


def settlements(request):
    readable = SettlementProject.objects.filter(settlement=OuterRef("pk"),
                                                project__memberships__user__username=BENCH_MEMBER)
    ticket_count = (SettlementTicket.objects.filter(settlement=OuterRef("pk")).order_by().values("settlement")
                    .annotate(n=Count("pk")).values("n"))
    attachment_count = (SettlementAttachment.objects.filter(settlement=OuterRef("pk")).order_by()
                        .values("settlement").annotate(n=Count("pk")).values("n"))
    project_keys = (SettlementProject.objects.filter(settlement=OuterRef("pk")).order_by().values("settlement")
                    .annotate(keys=ArrayAgg("project__key", ordering="project__key")).values("keys"))
    rows = (Settlement.objects.filter(Exists(readable), is_active=True)
            .annotate(ticket_count=Coalesce(Subquery(ticket_count, output_field=IntegerField()), 0),
                      attachment_count=Coalesce(Subquery(attachment_count, output_field=IntegerField()), 0),
                      project_keys=Subquery(project_keys))
            .order_by("-number")
            .values("id", "prefix", "number", "name", "period_start", "period_end", "status", "sent_at", "paid_at",
                    "notes", "project_keys", "ticket_count", "attachment_count", "created_by__username",
                    "created_at", "updated_at"))
    return _rows(rows, request)


def billing_items(request):
    rows = (BillingItem.objects.order_by(*ITEM_ORDERING)
            .values("id", "source_key", "source_type", "source_id", "source_date", "client", "contract",
                    "project__key", "ticket__project__key", "ticket__number", "description", "qty", "unit_price",
                    "total", "currency", "vat_rate", "status", "invoice", "run", "reconciliation_run",
                    "period_month", "period_start", "period_end", "supersedes", "superseded_by__id",
                    "original_item", "void_reason", "created_at", "updated_at"))
    return _rows(rows, request)


urlpatterns = [
    path("tickets/", tickets),
    path("settlements/", settlements),
    path("billing/items/", billing_items),
]
