"""REST endpoints of billing (SPEC §4, §5): clients, contracts, sales lines, billing items (with
void/restore), reconciliation runs and their unmatched sources, the billing log, recalculation on
demand, the billing settings, billing runs (build, post, delete, archive) and invoices (post,
refresh, remove a line, credit, debit, PDF/CSV/JSON).

Billing is global, not per project: reading needs `billing.view`, changing `billing.manage`,
posting, credit notes, debits and the settings `billing.admin` (each level includes the lower
ones). The permission class answers 403 `missing_permission` before any input is parsed; every
queryset starts from `visible_to`; every write calls a service, which checks the permission again."""

import importlib
import json
from collections.abc import Callable
from typing import NamedTuple

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q
from django.http import HttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from billing import invoicing, services
from billing.filtersets import (
    BillingItemFilter,
    BillingLogFilter,
    BillingRunFilter,
    ClientFilter,
    ContractFilter,
    InvoiceFilter,
    ReconciliationRunFilter,
    SalesLineFilter,
)
from billing.models import (
    BillingItem,
    BillingLog,
    BillingRun,
    BillingSettings,
    Client,
    Contract,
    Invoice,
    ReconciliationRun,
    SalesLine,
)
from billing.querysets import MISSING_BILLING_PERMISSION_MESSAGE, billing_allows, required_billing_permission
from billing.selectors import ITEM_ORDERING, ITEM_RELATED, invoices_for_list, invoices_with_lines
from core.api.schema import READ_ERRORS, WRITE_ERRORS, error
from core.errors import InvalidInput, NotFound

from .serializers import (
    EXPORT_FORMATS,
    BillingItemSerializer,
    BillingLogSerializer,
    BillingRunSerializer,
    BillingSettingsSerializer,
    BuildResultSerializer,
    ClientSerializer,
    ContractSerializer,
    CreditSerializer,
    DebitSerializer,
    ExportFormatSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
    RecalculateSerializer,
    RecalculationQueuedSerializer,
    ReconciliationRunSerializer,
    RemoveLineSerializer,
    RunBuildSerializer,
    RunPostedSerializer,
    SalesLineSerializer,
    UnmatchedSourceSerializer,
    VoidSerializer,
)

BILLING_READ_ERRORS = {**READ_ERRORS, 403: error("No billing permission (`missing_permission`).")}


class BillingAccessPermission(permissions.IsAuthenticated):
    """Anonymous: 401. Authenticated without the billing level the view asks for: 403."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        level = view.required_billing_level(request)
        if billing_allows(request.user, level):
            return True
        permission = required_billing_permission(level)
        raise exceptions.PermissionDenied(MISSING_BILLING_PERMISSION_MESSAGE.format(permission=permission),
                                          code="missing_permission")


class BillingViewMixin:
    """Reads need `read`; any other method needs `write_level` (`manage` unless the view says), or
    the level `action_levels` names for the action. The queryset: `model` visible to the caller,
    with `related` joined, `prefetch`ed, in `ordering`."""

    permission_classes = [BillingAccessPermission]
    write_level = "manage"
    action_levels: dict[str, str] = {}
    model: type
    related: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ("-id",)

    def get_queryset(self):
        queryset = self.model.objects.visible_to(self.actor, "read")
        return queryset.select_related(*self.related).prefetch_related(*self.prefetch).order_by(*self.ordering)

    def required_billing_level(self, request) -> str:
        if getattr(self, "action", None) in self.action_levels:
            return self.action_levels[self.action]
        return "read" if request.method in permissions.SAFE_METHODS else self.write_level

    @property
    def actor(self):
        return self.request.user

    def filter_queryset(self, queryset):
        # List filters must not hide the object of a detail route (e.g. ?status= on void/).
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def _input(self, serializer_class, data=None) -> dict:
        """The request body (or `data`) as `serializer_class` validates it; else a 400 with codes."""
        serializer = serializer_class(data=self.request.data if data is None else data,
                                      context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _respond(self, instance, code=status.HTTP_200_OK) -> Response:
        """The object as the list shows it (fresh, with its related rows)."""
        instance = self.get_queryset().get(pk=instance.pk)
        return Response(self.get_serializer(instance).data, status=code)


def read_schema(serializer):
    return {"list": extend_schema(responses={200: serializer(many=True), **BILLING_READ_ERRORS}),
            "retrieve": extend_schema(responses={200: serializer, **BILLING_READ_ERRORS})}


def crud_schema(serializer, *, write: str = "", delete: str = ""):
    return extend_schema_view(
        **read_schema(serializer),
        create=extend_schema(responses={201: serializer, **WRITE_ERRORS}, description=write),
        update=extend_schema(responses={200: serializer, **WRITE_ERRORS}, description=write),
        partial_update=extend_schema(responses={200: serializer, **WRITE_ERRORS}, description=write),
        destroy=extend_schema(responses={204: None, **WRITE_ERRORS}, description=delete),
    )


class Writes(NamedTuple):
    """The services behind a CRUD viewset: create(actor, **fields), update(actor, <object_arg>,
    changes) and delete(actor, <object_arg>)."""

    create: Callable
    update: Callable
    delete: Callable
    object_arg: str


class ServiceModelViewSet(BillingViewMixin, viewsets.ModelViewSet):
    """CRUD whose every write goes through the services named in `writes`."""

    writes: Writes

    def write_arguments(self, data: dict) -> tuple[dict, dict]:
        """(fields, extra keyword arguments) of a create or update."""
        return dict(data), {}

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields, extra = self.write_arguments(serializer.validated_data)
        instance = self.writes.create(actor=self.actor, **fields, **extra)
        return self._respond(instance, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        fields, extra = self.write_arguments(serializer.validated_data)
        instance = self.writes.update(actor=self.actor, changes=fields, **{self.writes.object_arg: instance}, **extra)
        return self._respond(instance)

    def perform_destroy(self, instance):
        self.writes.delete(actor=self.actor, **{self.writes.object_arg: instance})


@crud_schema(ClientSerializer, delete="Only a client without contracts, sales lines and items (409 `client_in_use`).")
class ClientViewSet(ServiceModelViewSet):
    serializer_class = ClientSerializer
    filterset_class = ClientFilter
    writes = Writes(services.client_create, services.client_update, services.client_delete, "client")
    model = Client
    ordering = ("name", "id")


@crud_schema(ContractSerializer,
             write="Contracts covering one project may not overlap in time (409 `contract_overlap`, naming the "
                   "other `contract` and the `project`). Omitting `projects` or `rates` in an update keeps them.",
             delete="Only a contract without items or sales lines (409 `contract_in_use`); else end its validity.")
class ContractViewSet(ServiceModelViewSet):
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    writes = Writes(services.contract_create, services.contract_update, services.contract_delete, "contract")
    model = Contract
    prefetch = ("projects", "rates")
    ordering = ("client__name", "valid_from", "id")

    def write_arguments(self, data):
        fields = dict(data)
        extra = {name: fields.pop(name) for name in ("projects", "rates") if name in fields}
        return fields, extra


@crud_schema(SalesLineSerializer,
             write="A line whose item is in a draft or posted invoice is locked (409 `locked_by_draft`, "
                   "`locked_by_invoice`).",
             delete="Locked lines as for updates.")
class SalesLineViewSet(ServiceModelViewSet):
    serializer_class = SalesLineSerializer
    filterset_class = SalesLineFilter
    writes = Writes(services.sales_line_create, services.sales_line_update, services.sales_line_delete, "line")
    model = SalesLine
    related = ("project", "created_by")
    ordering = ("-date", "-id")


def _item_response(item: BillingItem, code=status.HTTP_200_OK) -> Response:
    item = BillingItem.objects.select_related(*ITEM_RELATED).get(pk=item.pk)
    return Response(BillingItemSerializer(item).data, status=code)


@extend_schema_view(**read_schema(BillingItemSerializer))
class BillingItemViewSet(BillingViewMixin, viewsets.ReadOnlyModelViewSet):
    """Billing items; reconciliation makes them, people only void and restore them."""

    serializer_class = BillingItemSerializer
    filterset_class = BillingItemFilter
    model = BillingItem
    related = ITEM_RELATED
    ordering = ITEM_ORDERING

    @extend_schema(request=VoidSerializer, responses={200: BillingItemSerializer, **WRITE_ERRORS},
                   description="Do not bill a pending item (409 `item_not_pending`); `reason` is required.")
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        item = self.get_object()
        item = services.item_void(actor=self.actor, item=item, reason=self._input(VoidSerializer)["reason"])
        return self._respond(item)

    @extend_schema(request=None, responses={200: BillingItemSerializer, **WRITE_ERRORS},
                   description="Back to pending from void (409 `item_not_void`).")
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        item = services.item_restore(actor=self.actor, item=self.get_object())
        return self._respond(item)


@extend_schema_view(**read_schema(ReconciliationRunSerializer))
class ReconciliationRunViewSet(BillingViewMixin, viewsets.ReadOnlyModelViewSet):
    """Reconciliations (on save, manual, scheduled) with their counts and progress."""

    serializer_class = ReconciliationRunSerializer
    filterset_class = ReconciliationRunFilter
    model = ReconciliationRun
    related = ("actor",)

    @extend_schema(responses={200: UnmatchedSourceSerializer(many=True), **BILLING_READ_ERRORS}, filters=False)
    @action(detail=True, methods=["get"])
    def unmatched(self, request, pk=None):
        """The sources this run could not turn into items, and why (no contract, currency mismatch)."""
        run = self.get_object()
        rows = run.unmatched_sources.select_related("project").order_by("source_type", "source_id", "id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(UnmatchedSourceSerializer(page, many=True).data)


@extend_schema_view(**read_schema(BillingLogSerializer))
class BillingLogViewSet(BillingViewMixin, viewsets.ReadOnlyModelViewSet):
    """The append-only billing log: reconciliations, voids, restores, settings changes."""

    serializer_class = BillingLogSerializer
    filterset_class = BillingLogFilter
    model = BillingLog
    related = ("actor",)


TASK_ID = OpenApiParameter("task_id", str, OpenApiParameter.PATH, description="`task_id` from the POST.")


class RecalculateViewSet(BillingViewMixin, viewsets.GenericViewSet):
    """Recalculation on demand: POST queues a manual reconciliation, GET follows it by task id."""

    serializer_class = ReconciliationRunSerializer
    lookup_field = "task_id"
    lookup_value_regex = r"[-\w]{1,64}"
    filter_backends = []
    pagination_class = None
    model = ReconciliationRun
    related = ("actor",)

    @extend_schema(request=RecalculateSerializer,
                   responses={202: RecalculationQueuedSerializer, **WRITE_ERRORS},
                   description="Recalculate a client, a contract, a period (YYYY-MM) or, with an empty body, "
                               "everything. Unknown client or contract: 404. Switched off in the settings: 409 "
                               "`manual_recalculation_disabled`.")
    def create(self, request):
        data = self._input(RecalculateSerializer)
        scope = services.resolve_scope(client_id=data.get("client"), contract_id=data.get("contract"),
                                       period=data.get("period"))
        run = services.recalculation_request(actor=self.actor, scope=scope)
        url = reverse("billing-recalculate-detail", kwargs={"task_id": run.task_id})
        payload = {"task_id": run.task_id, "run": run.pk, "status": run.status,
                   "status_url": request.build_absolute_uri(url)}
        return Response(RecalculationQueuedSerializer(payload).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[TASK_ID], responses={200: ReconciliationRunSerializer, **BILLING_READ_ERRORS})
    def retrieve(self, request, task_id=None):
        """The run's status, progress and counts."""
        return Response(self.get_serializer(self.get_object()).data)


class BillingSettingsView(BillingViewMixin, generics.GenericAPIView):
    """The billing settings (one row). Reading needs billing.view, changing billing.admin."""

    serializer_class = BillingSettingsSerializer
    write_level = "admin"
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(responses={200: BillingSettingsSerializer, **BILLING_READ_ERRORS})
    def get(self, request):
        return Response(self.get_serializer(BillingSettings.load()).data)

    @extend_schema(responses={200: BillingSettingsSerializer, **WRITE_ERRORS})
    def patch(self, request):
        serializer = self.get_serializer(BillingSettings.load(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        current = services.settings_update(actor=self.actor, changes=serializer.validated_data)
        return Response(self.get_serializer(current).data)


# --- Runs and invoices -----------------------------------------------------------------------------

class DownloadNegotiation(DefaultContentNegotiation):
    """File downloads: the file is a plain HttpResponse of its own type, so `?format=` names the
    file format (not a renderer) and the Accept header cannot make a refusal unreadable: errors are
    always JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _exports():
    # Loaded on the first download, not with the API: the PDF library is heavy.
    return importlib.import_module("billing.exports")


def _download(content, *, kind: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=_exports().EXPORT_CONTENT_TYPES[kind])
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _file(media_type: str, schema=OpenApiTypes.BINARY, conflict: str = "A draft (`invoice_not_posted`).") -> dict:
    return {(200, media_type): schema, **BILLING_READ_ERRORS, 409: error(conflict)}


FORMAT = OpenApiParameter("format", str, enum=EXPORT_FORMATS, default="csv", description="File format.")
ITEM_ID = OpenApiParameter("item_id", int, OpenApiParameter.PATH, description="Id of the invoice line.")


@extend_schema_view(
    **read_schema(BillingRunSerializer),
    create=extend_schema(
        request=RunBuildSerializer, responses={201: BuildResultSerializer, 200: BuildResultSerializer, **WRITE_ERRORS},
        description="Build one draft invoice per client and currency for `period`, reserving the pending items (up "
                    "to the period's end with `include_prior_periods`, else that month only): 201 with the run, its "
                    "drafts and the clients another open run holds (`skipped`). `dry_run`: 200 with the `plan`, "
                    "nothing written. 409 `already_in_open_run` (every chosen client is held; `skipped` names "
                    "the runs) or `nothing_to_build`; an unknown client: 400 `does_not_exist`."),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS},
                          description="Delete an open run: every line back to pending, the drafts removed "
                                      "(409 `run_not_open`; `run_has_posted_invoices` when a draft of it was "
                                      "posted on its own)."),
)
class BillingRunViewSet(BillingViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                        viewsets.GenericViewSet):
    """Billing runs: a month's draft invoices for a set of clients, built and posted together."""

    serializer_class = BillingRunSerializer
    filterset_class = BillingRunFilter
    model = BillingRun
    related = ("created_by",)
    action_levels = {"post_run": "admin"}

    def get_queryset(self):
        return super().get_queryset().annotate(
            invoice_count=Count("invoices"),
            draft_count=Count("invoices", filter=Q(invoices__status=Invoice.Status.DRAFT)))

    def create(self, request):
        data = self._input(RunBuildSerializer)
        result = invoicing.run_build(actor=self.actor, period=data["period"], client_ids=data.get("clients") or None,
                                     include_prior_periods=data["include_prior_periods"], dry_run=data["dry_run"])
        run = self.get_queryset().get(pk=result.run.pk) if result.run else None
        drafts = invoices_for_list(Invoice.objects.filter(run=run)).order_by("client__name", "currency") if run else []
        payload = {"dry_run": result.dry_run, "run": run, "plan": result.invoices, "drafts": drafts,
                   "skipped": result.skipped}
        code = status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED
        return Response(BuildResultSerializer(payload).data, status=code)

    def perform_destroy(self, instance):
        invoicing.run_delete(actor=self.actor, run=instance)

    @extend_schema(request=None, responses={200: RunPostedSerializer, **WRITE_ERRORS},
                   description="Post every draft of an open run, all or nothing, numbering them gaplessly "
                               "(409 `run_not_open`, `nothing_to_post`). Needs billing.admin.")
    @action(detail=True, methods=["post"], url_path="post", url_name="post")
    def post_run(self, request, pk=None):
        posted = invoicing.run_post(actor=self.actor, run=self.get_object())
        posted_ids = [invoice.pk for invoice in posted]
        invoices = invoices_for_list(Invoice.objects.filter(pk__in=posted_ids)).order_by("number")
        payload = {"run": self.get_queryset().get(pk=pk), "invoices": invoices}
        return Response(RunPostedSerializer(payload).data)

    @extend_schema(responses=_file("application/zip", conflict="Nothing posted yet (`nothing_posted`)."),
                   description="The run's posted invoices and their credit notes, each as PDF, CSV and JSON, and a "
                               "summary CSV, in one zip archive.")
    @action(detail=True, methods=["get"], content_negotiation_class=DownloadNegotiation)
    def export(self, request, pk=None):
        run = self.get_object()
        archive = _exports().run_archive(run)
        return _download(archive, kind="zip", filename=f"run-{run.pk}-{run.period_month:%Y-%m}.zip")


@extend_schema_view(
    list=extend_schema(responses={200: InvoiceSerializer(many=True), **BILLING_READ_ERRORS},
                       description="Without lines and without the stale check, which needs a fresh calculation "
                                   "per draft: both are on the detail."),
    retrieve=extend_schema(responses={200: InvoiceDetailSerializer, **BILLING_READ_ERRORS},
                           description="With its lines, totals and, for a draft, whether it is `stale` and why."),
)
class InvoiceViewSet(BillingViewMixin, viewsets.ReadOnlyModelViewSet):
    """Draft and posted invoices and credit notes; changed only through the run/invoice services."""

    filterset_class = InvoiceFilter
    model = Invoice
    action_levels = {"post_invoice": "admin", "credit": "admin", "debit": "admin"}

    def get_serializer_class(self):
        return InvoiceSerializer if self.action == "list" else InvoiceDetailSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return invoices_for_list(queryset) if self.action == "list" else invoices_with_lines(queryset)

    def _line(self, invoice: Invoice, item_id) -> BillingItem:
        item = invoice.items.filter(pk=item_id).first()
        if item is None:
            raise NotFound(invoicing.NOT_ON_INVOICE_MESSAGE.format(item=item_id, invoice=invoice.label))
        return item

    @extend_schema(request=None, responses={200: InvoiceDetailSerializer, **WRITE_ERRORS},
                   description="Post a draft: a gapless number, its lines invoiced and locked for good "
                               "(409 `invoice_not_draft`). Needs billing.admin.")
    @action(detail=True, methods=["post"], url_path="post", url_name="post")
    def post_invoice(self, request, pk=None):
        return self._respond(invoicing.invoice_post(actor=self.actor, invoice=self.get_object()))

    @extend_schema(request=None, responses={200: InvoiceDetailSerializer, 204: None, **WRITE_ERRORS},
                   description="Rebuild a draft from its client's current pending items (409 `invoice_not_draft`). "
                               "204: nothing is left to bill, so the draft was removed.")
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        invoice = invoicing.invoice_refresh(actor=self.actor, invoice=self.get_object())
        return self._respond(invoice) if invoice else Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=CreditSerializer, responses={201: InvoiceDetailSerializer, **WRITE_ERRORS},
                   description="A posted credit note reversing the chosen lines (all when `items` is left out) of a "
                               "posted invoice; their sources unlock and are billed again after a recalculation. "
                               "400 `not_on_invoice`; 409 `invoice_not_posted`, `not_creditable` (already credited). "
                               "Needs billing.admin.")
    @action(detail=True, methods=["post"])
    def credit(self, request, pk=None):
        invoice = self.get_object()
        items = self._input(CreditSerializer).get("items")
        note = invoicing.invoice_credit(actor=self.actor, invoice=invoice, item_ids=items or None)
        return self._respond(note, status.HTTP_201_CREATED)

    @extend_schema(request=DebitSerializer, responses={201: BillingItemSerializer, **WRITE_ERRORS},
                   description="A positive adjustment linked to a line of a posted invoice, pending for the next run. "
                               "400 `not_on_invoice`; 409 `invoice_not_posted`. Needs billing.admin.")
    @action(detail=True, methods=["post"])
    def debit(self, request, pk=None):
        invoice = self.get_object()
        data = self._input(DebitSerializer)
        original = invoice.items.filter(pk=data["item"]).first()
        if original is None:
            message = invoicing.NOT_ON_INVOICE_MESSAGE.format(item=data["item"], invoice=invoice.label)
            raise InvalidInput.for_field("item", message, code="not_on_invoice")
        debit = invoicing.invoice_debit(actor=self.actor, invoice=invoice, item=original, qty=data["qty"],
                                        unit_price=data["unit_price"], description=data["description"])
        return _item_response(debit, status.HTTP_201_CREATED)

    @extend_schema(parameters=[ITEM_ID], request=RemoveLineSerializer,
                   responses={200: BillingItemSerializer, **WRITE_ERRORS},
                   description="Remove from run: the line goes back to pending (with `void_reason`: void) and its "
                               "source unlocks; a draft left empty is removed. A line not on the invoice: 404; "
                               "not a draft: 409 `invoice_not_draft`.")
    @action(detail=True, methods=["post"], url_path=r"lines/(?P<item_id>[0-9]+)/remove", url_name="remove-line")
    def remove_line(self, request, pk=None, item_id=None):
        invoice = self.get_object()
        item = self._line(invoice, item_id)
        reason = self._input(RemoveLineSerializer)["void_reason"]
        item = invoicing.invoice_remove_line(actor=self.actor, invoice=invoice, item=item, void_reason=reason)
        return _item_response(item)

    @extend_schema(responses=_file("application/pdf"), description="The posted invoice or credit note as a PDF.")
    @action(detail=True, methods=["get"], content_negotiation_class=DownloadNegotiation)
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        return _download(_exports().invoice_pdf(invoice), kind="pdf", filename=f"{invoice.number}.pdf")

    @extend_schema(parameters=[FORMAT],
                   responses={**_file("text/csv", OpenApiTypes.STR), (200, "application/json"): OpenApiTypes.OBJECT,
                              400: error("Unknown `format`.")},
                   description="The posted invoice or credit note for accounting: one row per line (CSV) or the "
                               "whole document (JSON). Another `format`: 400 `invalid_choice`.")
    @action(detail=True, methods=["get"], content_negotiation_class=DownloadNegotiation)
    def export(self, request, pk=None):
        invoice = self.get_object()
        kind = self._input(ExportFormatSerializer, request.query_params)["format"]
        if kind == "csv":
            content = _exports().invoice_csv(invoice)
        else:
            content = json.dumps(_exports().invoice_json(invoice), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        return _download(content, kind=kind, filename=f"{invoice.number}.{kind}")
