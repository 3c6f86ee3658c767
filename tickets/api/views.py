"""REST endpoints for projects (with members and roles), tickets, time entries and expenses.

Every queryset starts from `visible_to(user, ...)`; every write calls a service.
"""

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from core.api.schema import READ_ERRORS, WRITE_ERRORS
from rbac import services as rbac_services
from rbac.api.permissions import ProjectObjectPermission
from rbac.api.serializers import MembershipRoleSerializer, MembershipSerializer, RoleSerializer
from rbac.choices import ProjectPermission as P
from rbac.models import Membership, Role
from tickets import services
from tickets.extensions import annotate_tickets
from tickets.filtersets import ExpenseFilter, ProjectFilter, TicketFilter, TimeEntryFilter
from tickets.models import Project, Ticket

from .serializers import ExpenseSerializer, ProjectSerializer, TicketSerializer, TimeEntrySerializer


def _ok(serializer, errors):
    return {200: serializer, **errors}


def _created(serializer, errors):
    return {201: serializer, **errors}


class ServiceViewSet(viewsets.ModelViewSet):
    """A ModelViewSet whose writes go through service functions and whose objects are checked
    per project: `project_of(obj)` plus `write_permission` / `delete_permission`."""

    permission_classes = [ProjectObjectPermission]
    write_permission = P.TICKETS_WRITE
    delete_permission = P.TICKETS_DELETE

    @property
    def actor(self):
        return self.request.user


@extend_schema_view(
    list=extend_schema(responses=_ok(ProjectSerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(responses=_ok(ProjectSerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(ProjectSerializer, WRITE_ERRORS),
                         description="Needs the global `tickets.add_project` permission; the creator becomes Owner."),
    update=extend_schema(responses=_ok(ProjectSerializer, WRITE_ERRORS)),
    partial_update=extend_schema(responses=_ok(ProjectSerializer, WRITE_ERRORS)),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS},
                          description="Only an empty project can be deleted (409 `project_not_empty`)."),
)
class ProjectViewSet(ServiceViewSet):
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    lookup_field = "key"
    lookup_value_regex = "[A-Za-z]{2,10}"
    write_permission = P.PROJECT_ADMIN
    delete_permission = P.PROJECT_ADMIN

    def get_queryset(self):
        return Project.objects.visible_to(self.actor, "read").order_by("key")

    def get_object(self):
        self.kwargs["key"] = self.kwargs["key"].upper()
        return super().get_object()

    def project_of(self, project):
        return project

    def perform_create(self, serializer):
        serializer.instance = services.project_create(actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.project_update(actor=self.actor, project=serializer.instance,
                                                      changes=serializer.validated_data)

    def perform_destroy(self, instance):
        services.project_delete(actor=self.actor, project=instance)


class ProjectChildMixin:
    """For routes under /api/projects/{project_key}/: the project must be visible (else 404)."""

    write_permission = P.PROJECT_ADMIN
    delete_permission = P.PROJECT_ADMIN
    permission_classes = [ProjectObjectPermission]

    def get_project(self) -> Project:
        if not hasattr(self, "_project"):
            queryset = Project.objects.visible_to(self.request.user, "read")
            self._project = get_object_or_404(queryset, key=self.kwargs["project_key"].upper())
        return self._project

    def project_of(self, obj):
        return self.get_project()


@extend_schema_view(
    list=extend_schema(responses=_ok(MembershipSerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(responses=_ok(MembershipSerializer, READ_ERRORS)),
    create=extend_schema(request=MembershipSerializer, responses=_created(MembershipSerializer, WRITE_ERRORS),
                         description="Add a member, or change the role of an existing one. Project admins only."),
    partial_update=extend_schema(request=MembershipRoleSerializer,
                                 responses=_ok(MembershipSerializer, WRITE_ERRORS)),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS},
                          description="A project keeps at least one Owner (409 `last_owner`)."),
)
class MembershipViewSet(ProjectChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin,
                        viewsets.GenericViewSet):
    """Members of a project and their roles."""

    serializer_class = MembershipSerializer
    lookup_field = "user__username"
    lookup_url_kwarg = "username"
    lookup_value_regex = r"[\w.@+-]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(project=self.get_project()).select_related("user", "role").order_by(
            "user__username")

    def create(self, request, *args, **kwargs):
        project = self.get_project()
        # Rights first: a non-admin learns nothing about which usernames exist.
        self.check_object_permissions(request, project)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        existed = Membership.objects.filter(project=project, user=user).exists()
        membership = rbac_services.membership_set(actor=request.user, project=project, user=user,
                                                  role_slug=serializer.validated_data["role"])
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(self.get_serializer(membership).data, status=code)

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = rbac_services.membership_set(actor=request.user, project=self.get_project(),
                                                  user=membership.user, role_slug=serializer.validated_data["role"])
        return Response(self.get_serializer(membership).data)

    def perform_destroy(self, instance):
        rbac_services.membership_remove(actor=self.request.user, project=self.get_project(), user=instance.user)


@extend_schema_view(
    list=extend_schema(responses=_ok(RoleSerializer(many=True), READ_ERRORS),
                       description="Built-in roles and the project's custom roles."),
    retrieve=extend_schema(responses=_ok(RoleSerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(RoleSerializer, WRITE_ERRORS)),
    partial_update=extend_schema(responses=_ok(RoleSerializer, WRITE_ERRORS)),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
)
class RoleViewSet(ProjectChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Roles usable in a project; project admins may define custom ones."""

    serializer_class = RoleSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Role.objects.none()
        project = self.get_project()
        return Role.objects.filter(Q(project__isnull=True) | Q(project=project)).select_related("project").order_by(
            "project_id", "slug")

    def get_object(self):
        # A custom role of the project shadows a built-in one of the same slug.
        role = self.get_queryset().filter(slug=self.kwargs["slug"]).order_by("-project_id").first()
        if role is None:
            raise Http404
        self.check_object_permissions(self.request, role)
        return role

    def perform_create(self, serializer):
        serializer.instance = rbac_services.role_create(actor=self.request.user, project=self.get_project(),
                                                        **serializer.validated_data)

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = rbac_services.role_update(actor=self.request.user, role=serializer.instance,
                                                        name=data.get("name"), permissions=data.get("permissions"))

    def perform_destroy(self, instance):
        rbac_services.role_delete(actor=self.request.user, role=instance)


TICKET_LOOKUP = OpenApiParameter("key", str, OpenApiParameter.PATH, description="Ticket key (MNX-12) or id.")


@extend_schema_view(
    list=extend_schema(responses=_ok(TicketSerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(parameters=[TICKET_LOOKUP], responses=_ok(TicketSerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(TicketSerializer, WRITE_ERRORS)),
    update=extend_schema(parameters=[TICKET_LOOKUP], responses=_ok(TicketSerializer, WRITE_ERRORS)),
    partial_update=extend_schema(
        parameters=[TICKET_LOOKUP], responses=_ok(TicketSerializer, WRITE_ERRORS),
        description="A body with only `status` is a status change, allowed even where edits are blocked.",
    ),
    destroy=extend_schema(parameters=[TICKET_LOOKUP], responses={204: None, **WRITE_ERRORS}),
)
class TicketViewSet(ServiceViewSet):
    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    lookup_field = "key"
    lookup_value_regex = r"[A-Za-z]{2,10}-\d+|\d+"

    def get_queryset(self):
        queryset = Ticket.objects.visible_to(self.actor, "read").with_list_columns().order_by("project__key", "number")
        return annotate_tickets(queryset, self.actor)

    def get_object(self):
        ticket = get_object_or_404(self.get_queryset().by_reference(self.kwargs["key"]))
        self.check_object_permissions(self.request, ticket)
        return ticket

    def project_of(self, ticket):
        return ticket.project

    def perform_create(self, serializer):
        ticket = services.ticket_create(actor=self.actor, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=ticket.pk)

    def perform_update(self, serializer):
        data = serializer.validated_data
        if set(data) == {"status"}:
            ticket = services.ticket_change_status(actor=self.actor, ticket=serializer.instance, status=data["status"])
        else:
            ticket = services.ticket_update(actor=self.actor, ticket=serializer.instance, changes=data)
        serializer.instance = self.get_queryset().get(pk=ticket.pk)

    def perform_destroy(self, instance):
        services.ticket_delete(actor=self.actor, ticket=instance)


class RecordViewSet(ServiceViewSet):
    """Time entries and expenses: writes need tickets:write; deleting one is a write too."""

    delete_permission = P.TICKETS_WRITE
    kind: str

    def get_queryset(self):
        model = services.RECORD_KINDS[self.kind].model
        return model.objects.visible_to(self.actor, "read").select_related("ticket__project", "user")

    def project_of(self, record):
        return record.ticket.project

    def perform_create(self, serializer):
        kind = services.RECORD_KINDS[self.kind]
        serializer.instance = services.record_create(kind, actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        kind = services.RECORD_KINDS[self.kind]
        services.record_update(kind, actor=self.actor, record=serializer.instance, changes=serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_destroy(self, instance):
        services.record_delete(services.RECORD_KINDS[self.kind], actor=self.actor, record=instance)


@extend_schema_view(
    list=extend_schema(responses=_ok(TimeEntrySerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(responses=_ok(TimeEntrySerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(TimeEntrySerializer, WRITE_ERRORS)),
    update=extend_schema(responses=_ok(TimeEntrySerializer, WRITE_ERRORS)),
    partial_update=extend_schema(responses=_ok(TimeEntrySerializer, WRITE_ERRORS)),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
)
class TimeEntryViewSet(RecordViewSet):
    serializer_class = TimeEntrySerializer
    filterset_class = TimeEntryFilter
    kind = "time_entry"

    def get_queryset(self):
        return super().get_queryset().order_by("-work_date", "-id")


@extend_schema_view(
    list=extend_schema(responses=_ok(ExpenseSerializer(many=True), READ_ERRORS)),
    retrieve=extend_schema(responses=_ok(ExpenseSerializer, READ_ERRORS)),
    create=extend_schema(responses=_created(ExpenseSerializer, WRITE_ERRORS)),
    update=extend_schema(responses=_ok(ExpenseSerializer, WRITE_ERRORS)),
    partial_update=extend_schema(responses=_ok(ExpenseSerializer, WRITE_ERRORS)),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
)
class ExpenseViewSet(RecordViewSet):
    serializer_class = ExpenseSerializer
    filterset_class = ExpenseFilter
    kind = "expense"

    def get_queryset(self):
        return super().get_queryset().order_by("-date", "-id")

