"""REST endpoints of settlements: CRUD, transition, tickets (link/unlink/search), events."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from billing.selectors import settlement_totals
from core.api.schema import READ_ERRORS, WRITE_ERRORS, error
from core.uploads import content_length_too_large, upload_too_large
from rbac.choices import ProjectPermission as P
from settlements import selectors, services
from settlements.filtersets import SettlementFilter
from settlements.models import Settlement, SettlementAttachment, SettlementProject, SettlementShareLink
from tickets.models import Ticket

from .downloads import attachment_response, download_responses, served_over_asgi
from .serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    LinkTicketSerializer,
    SettlementEventSerializer,
    SettlementSerializer,
    SettlementTicketSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkSerializer,
    TicketSearchResultSerializer,
    TransitionSerializer,
)


class SettlementObjectPermission(permissions.IsAuthenticated):
    """Changing a settlement needs settlements:write (deleting: settlements:delete) in every one of
    its projects; answered before the body is parsed. The services check again under lock."""

    def has_object_permission(self, request, view, settlement) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        permission = P.SETTLEMENTS_DELETE if view.action == "destroy" else P.SETTLEMENTS_WRITE
        project_ids = SettlementProject.objects.filter(settlement=settlement).values_list("project_id", flat=True)
        services.require_in_every_project(request.user, project_ids, permission)
        return True


def _ok(serializer, errors):
    return {200: serializer, **errors}


def _created(serializer, errors):
    return {201: serializer, **errors}


CONFLICTS = "409: `settlement_not_draft`, `invalid_transition`, `overlapping_settlement`, ..."


ATTACHMENT_ID = OpenApiParameter("attachment_id", int, OpenApiParameter.PATH)
LINK_ID = OpenApiParameter("link_id", int, OpenApiParameter.PATH)
TOO_LARGE = {413: error("File larger than the limit (`file_too_large`).")}
STORAGE_DOWN = {503: error("File storage unreachable (`storage_unavailable`); nothing was saved.")}


class SettlementFilesMixin:
    """Attachments and share links of a settlement, as sub-routes of the settlement viewset."""

    def _attachment(self, settlement, attachment_id):
        return get_object_or_404(SettlementAttachment.objects.select_related("uploaded_by"),
                                 pk=attachment_id, settlement=settlement)

    @extend_schema(methods=["GET"], responses=_ok(AttachmentSerializer(many=True), READ_ERRORS))
    @extend_schema(methods=["POST"], request={"multipart/form-data": AttachmentUploadSerializer},
                   responses={**_created(AttachmentSerializer, WRITE_ERRORS), **TOO_LARGE, **STORAGE_DOWN},
                   description="Upload in any status. At most 10 files per settlement (409 "
                               "`too_many_attachments`); the content must match the extension.")
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser], pagination_class=None)
    def attachments(self, request, pk=None):
        settlement = self.get_object()
        if request.method == "GET":
            rows = settlement.attachments.select_related("uploaded_by").order_by("created_at", "id")
            return Response(AttachmentSerializer(rows, many=True).data)
        if content_length_too_large(request):
            raise _too_large()
        serializer = AttachmentUploadSerializer(data=request.data)
        valid = serializer.is_valid()
        if upload_too_large(request):
            raise _too_large()
        if not valid:
            raise ValidationError(serializer.errors)
        attachment = services.attachment_upload(actor=request.user, settlement=settlement,
                                                uploaded=serializer.validated_data["file"],
                                                category=serializer.validated_data["category"],
                                                state=serializer.validated_data["state"])
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["PATCH"], parameters=[ATTACHMENT_ID], request=AttachmentSerializer,
                   responses=_ok(AttachmentSerializer, WRITE_ERRORS), description="Change category or state.")
    @extend_schema(methods=["DELETE"], parameters=[ATTACHMENT_ID], responses={204: None, **WRITE_ERRORS},
                   description="Draft only; settlements:delete in every project.")
    @action(detail=True, methods=["patch", "delete"], url_path=r"attachments/(?P<attachment_id>\d+)")
    def attachment(self, request, pk=None, attachment_id=None):
        settlement = self.get_object()
        attachment = self._attachment(settlement, attachment_id)
        if request.method == "DELETE":
            services.attachment_delete(actor=request.user, attachment=attachment)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = AttachmentSerializer(attachment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        attachment = services.attachment_update(actor=request.user, attachment=attachment,
                                                changes=serializer.validated_data)
        return Response(AttachmentSerializer(attachment).data)

    @extend_schema(parameters=[ATTACHMENT_ID, OpenApiParameter("inline", bool, description="Preview PDFs and "
                                                               "images in the browser.")],
                   responses={**download_responses(), **READ_ERRORS, **STORAGE_DOWN})
    @action(detail=True, methods=["get"], url_path=r"attachments/(?P<attachment_id>\d+)/download")
    def download(self, request, pk=None, attachment_id=None):
        """Stream the file: inline preview for PDF and images with `?inline=1`, else a download."""
        attachment = self._attachment(self.get_object(), attachment_id)
        return attachment_response(attachment, inline=request.query_params.get("inline") in ("1", "true"),
                                   asgi=served_over_asgi(request))

    @extend_schema(methods=["GET"], responses=_ok(ShareLinkSerializer(many=True), READ_ERRORS))
    @extend_schema(methods=["POST"], request=ShareLinkSerializer,
                   responses=_created(ShareLinkCreatedSerializer, WRITE_ERRORS),
                   description="Sent or paid settlements only. The token is returned once.")
    @action(detail=True, methods=["get", "post"], url_path="share-links", pagination_class=None)
    def share_links(self, request, pk=None):
        settlement = self.get_object()
        if request.method == "GET":
            return Response(ShareLinkSerializer(settlement.share_links.select_related("created_by"), many=True).data)
        serializer = ShareLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link, token = services.share_link_create(actor=request.user, settlement=settlement,
                                                 expires_at=serializer.validated_data.get("expires_at"))
        link.token = token
        link.url = request.build_absolute_uri(reverse("public-settlement", kwargs={"token": token}))
        return Response(ShareLinkCreatedSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[LINK_ID], responses={204: None, **WRITE_ERRORS}, description="Revoke a share link.")
    @action(detail=True, methods=["delete"], url_path=r"share-links/(?P<link_id>\d+)")
    def share_link(self, request, pk=None, link_id=None):
        settlement = self.get_object()
        link = get_object_or_404(SettlementShareLink, pk=link_id, settlement=settlement)
        services.share_link_revoke(actor=request.user, link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _too_large():
    from core.errors import ServiceError

    limit = settings.SETTLEMENT_ATTACHMENT_MAX_BYTES // (1024 * 1024)
    return ServiceError(services.ATTACHMENT_TOO_LARGE_MESSAGE.format(limit=limit), code="file_too_large",
                        status_code=413)


@extend_schema_view(
    list=extend_schema(responses=_ok(SettlementSerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(responses=_ok(SettlementSerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(SettlementSerializer, WRITE_ERRORS)),
    update=extend_schema(responses=_ok(SettlementSerializer, WRITE_ERRORS), description="Draft only."),
    partial_update=extend_schema(responses=_ok(SettlementSerializer, WRITE_ERRORS), description="Draft only."),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS},
                          description="Soft delete; draft only; settlements:delete in every project."),
)
class SettlementViewSet(SettlementFilesMixin, viewsets.ModelViewSet):
    serializer_class = SettlementSerializer
    filterset_class = SettlementFilter
    permission_classes = [SettlementObjectPermission]

    # Actions that answer with the settlement itself; the others (its tickets, attachments, share
    # links, events, search, deletion) only need to find it, without the list's counts and projects.
    SERIALIZED_ACTIONS = frozenset({"list", "retrieve", "create", "update", "partial_update", "transition"})

    def get_queryset(self):
        if self.action not in self.SERIALIZED_ACTIONS:
            return Settlement.objects.visible_to(self.request.user, "read").order_by("-number")
        return selectors.settlements_for_list(self.request.user).order_by("-number")

    def filter_queryset(self, queryset):
        # List filters (e.g. `q`) must not hide the object of a detail route such as search-tickets?q=.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["totals"] = getattr(self, "_totals", {})
        return context

    def _remember_totals(self, settlements) -> None:
        # Only the tickets the caller may read count (a cross-project settlement's other projects stay hidden).
        self._totals = settlement_totals((settlement.pk for settlement in settlements),
                                         readable_by=self.request.user)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        self._remember_totals(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        settlement = self.get_object()
        self._remember_totals([settlement])
        return Response(self.get_serializer(settlement).data)

    def _respond(self, settlement, code=status.HTTP_200_OK) -> Response:
        settlement = self.get_queryset().get(pk=settlement.pk)
        self._remember_totals([settlement])
        return Response(self.get_serializer(settlement).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        settlement = services.settlement_create(actor=request.user, **serializer.validated_data)
        return self._respond(settlement, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        settlement = self.get_object()
        serializer = self.get_serializer(settlement, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        settlement = services.settlement_update(actor=request.user, settlement=settlement,
                                                changes=serializer.validated_data)
        return self._respond(settlement)

    def perform_destroy(self, instance):
        services.settlement_delete(actor=self.request.user, settlement=instance)

    @extend_schema(request=TransitionSerializer, responses=_ok(SettlementSerializer, WRITE_ERRORS),
                   description="draft→sent, sent→paid, sent→draft, paid→sent. Invalid: 409 `invalid_transition` "
                               "with `allowed`. Going back needs project admin in every project.")
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        settlement = self.get_object()
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        settlement = services.settlement_transition(actor=request.user, settlement=settlement,
                                                    status=serializer.validated_data["status"])
        return self._respond(settlement)

    @extend_schema(methods=["GET"], responses=_ok(SettlementTicketSerializer(many=True), READ_ERRORS),
                   description="Linked tickets you can read, with billable hours and amounts in the period.")
    @extend_schema(methods=["POST"], request=LinkTicketSerializer,
                   responses=_created(SettlementTicketSerializer, WRITE_ERRORS),
                   description="Link a ticket (draft only). " + CONFLICTS)
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def tickets(self, request, pk=None):
        settlement = self.get_object()
        if request.method == "POST":
            serializer = LinkTicketSerializer(data=request.data, context=self.get_serializer_context())
            serializer.is_valid(raise_exception=True)
            link = services.settlement_link_ticket(actor=request.user, settlement=settlement,
                                                   ticket=serializer.validated_data["ticket"])
            totals = settlement_totals([settlement.pk], readable_by=request.user)[settlement.pk].tickets
            return Response(SettlementTicketSerializer(link.ticket, context={"ticket_totals": totals}).data,
                            status=status.HTTP_201_CREATED)
        tickets = selectors.readable_linked_tickets(settlement=settlement, user=request.user)
        totals = settlement_totals([settlement.pk], readable_by=request.user)[settlement.pk].tickets
        return Response(SettlementTicketSerializer(tickets, many=True, context={"ticket_totals": totals}).data)

    @extend_schema(responses={204: None, **WRITE_ERRORS}, description="Unlink a ticket (draft only).",
                   parameters=[OpenApiParameter("ticket_ref", str, OpenApiParameter.PATH,
                                                description="Ticket key (MNX-12) or id.")])
    @action(detail=True, methods=["delete"], url_path=r"tickets/(?P<ticket_ref>[A-Za-z]{2,10}-\d+|\d+)")
    def unlink(self, request, pk=None, ticket_ref=None):
        settlement = self.get_object()
        ticket = get_object_or_404(Ticket.objects.visible_to(request.user, "read").by_reference(ticket_ref))
        services.settlement_unlink_ticket(actor=request.user, settlement=settlement, ticket=ticket)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Key (MNX-12), number (12) or title.")],
                   responses=_ok(TicketSearchResultSerializer(many=True), READ_ERRORS))
    @action(detail=True, methods=["get"], url_path="search-tickets", pagination_class=None)
    def search_tickets(self, request, pk=None):
        """Autocomplete: up to 20 readable, not yet linked tickets of the settlement's projects."""
        settlement = self.get_object()
        tickets = selectors.search_linkable_tickets(settlement=settlement, user=request.user,
                                                    query=request.query_params.get("q", ""))
        return Response(TicketSearchResultSerializer(tickets, many=True).data)

    @extend_schema(responses=_ok(SettlementEventSerializer(many=True), READ_ERRORS))
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        """The append-only audit trail, oldest first."""
        settlement = self.get_object()
        events = settlement.events.select_related("actor").order_by("created_at", "id")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(SettlementEventSerializer(page, many=True).data)

