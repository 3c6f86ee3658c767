"""Related fields restricted to what the requesting user can see, so ids cannot be probed:
an invisible project or ticket is reported exactly like a missing one."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.models import Project, Ticket


def _request_user(field):
    request = field.context.get("request")
    return getattr(request, "user", None) or field.context.get("actor")


@extend_schema_field(OpenApiTypes.STR)
class ProjectReferenceField(serializers.RelatedField):
    default_error_messages = {"does_not_exist": "Unknown project {value!r}.", "invalid": "Give a project key."}

    def get_queryset(self):
        return Project.objects.visible_to(_request_user(self), "read")

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid")
        project = self.get_queryset().filter(key=data.strip().upper()).first()
        if project is None:
            self.fail("does_not_exist", value=data)
        return project

    def to_representation(self, value) -> str:
        return value.key


@extend_schema_field(OpenApiTypes.STR)
class TicketReferenceField(serializers.RelatedField):
    default_error_messages = {"does_not_exist": "Unknown ticket {value!r}.",
                              "invalid": "Give a ticket key such as MNX-12 or a ticket id."}

    def get_queryset(self):
        return Ticket.objects.visible_to(_request_user(self), "read")

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)) or (isinstance(data, str) and "\x00" in data):
            self.fail("invalid")
        ticket = self.get_queryset().by_reference(data).select_related("project").first()
        if ticket is None:
            self.fail("does_not_exist", value=str(data))
        return ticket

    def to_representation(self, value) -> str:
        return value.key
