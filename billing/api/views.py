"""REST endpoints of billing (SPEC §4, §5): clients, contracts, sales lines, billing items (with
void/restore), reconciliation runs and their unmatched sources, the billing log, recalculation on
demand and the billing settings.

Billing is global, not per project: reading needs `billing.view`, changing `billing.manage`, the
settings `billing.admin` (each level includes the lower ones). The permission class answers 403
`missing_permission` before any input is parsed; every queryset starts from `visible_to`; every
write calls a service, which checks the permission again."""

from collections.abc import Callable
from typing import NamedTuple

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import services
from billing.filtersets import (
    BillingItemFilter,
    BillingLogFilter,
    ClientFilter,
    ContractFilter,
    ReconciliationRunFilter,
    SalesLineFilter,
)
from billing.models import (
    BillingItem,
    BillingLog,
    BillingSettings,
    Client,
    Contract,
    ReconciliationRun,
    SalesLine,
)
from billing.querysets import MISSING_BILLING_PERMISSION_MESSAGE, billing_allows, required_billing_permission
from core.api.schema import READ_ERRORS, WRITE_ERRORS, error

from .serializers import (
    BillingItemSerializer,
    BillingLogSerializer,
    BillingSettingsSerializer,
    ClientSerializer,
    ContractSerializer,
    RecalculateSerializer,
    RecalculationQueuedSerializer,
    ReconciliationRunSerializer,
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
    """Reads need `read`; any other method needs `write_level` (`manage` unless the view says).
    The queryset: `model` visible to the caller, with `related` joined, `prefetch`ed, in `ordering`."""

    permission_classes = [BillingAccessPermission]
    write_level = "manage"
    model: type
    related: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ("-id",)

    def get_queryset(self):
        queryset = self.model.objects.visible_to(self.actor, "read")
        return queryset.select_related(*self.related).prefetch_related(*self.prefetch).order_by(*self.ordering)

    def required_billing_level(self, request) -> str:
        return "read" if request.method in permissions.SAFE_METHODS else self.write_level

    @property
    def actor(self):
        return self.request.user

    def filter_queryset(self, queryset):
        # List filters must not hide the object of a detail route (e.g. ?status= on void/).
        return super().filter_queryset(queryset) if self.action == "list" else queryset

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


@extend_schema_view(**read_schema(BillingItemSerializer))
class BillingItemViewSet(BillingViewMixin, viewsets.ReadOnlyModelViewSet):
    """Billing items; reconciliation makes them, people only void and restore them."""

    serializer_class = BillingItemSerializer
    filterset_class = BillingItemFilter
    model = BillingItem
    related = ("project", "ticket__project", "superseded_by")
    ordering = ("client_id", "period_month", "source_type", "source_date", "id")

    @extend_schema(request=VoidSerializer, responses={200: BillingItemSerializer, **WRITE_ERRORS},
                   description="Do not bill a pending item (409 `item_not_pending`); `reason` is required.")
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        item = self.get_object()
        serializer = VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.item_void(actor=self.actor, item=item, reason=serializer.validated_data["reason"])
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
        serializer = RecalculateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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
