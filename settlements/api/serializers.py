"""Serializers of settlements, their tickets and events."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from settlements.choices import AttachmentCategory, AttachmentState, SettlementStatus
from settlements.models import Settlement, SettlementEvent
from tickets.api.fields import ProjectReferenceField, TicketReferenceField


class TotalsSerializer(serializers.Serializer):
    minutes = serializers.IntegerField()
    hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    amounts = serializers.DictField(child=serializers.DecimalField(max_digits=14, decimal_places=2),
                                    help_text="Currency → amount.")


class ProjectKeysField(serializers.ListField):
    """Project keys in, the settlement's project keys out (from the prefetched relation)."""

    child = ProjectReferenceField()

    def to_representation(self, manager):
        return sorted(project.key for project in manager.all())


class SettlementSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="display_number", read_only=True, help_text="e.g. ROZ-12")
    projects = ProjectKeysField(allow_empty=False, help_text="Project keys; you need settlements:write in each.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ticket_count = serializers.IntegerField(read_only=True)
    attachment_count = serializers.IntegerField(read_only=True)
    totals = serializers.SerializerMethodField()

    class Meta:
        model = Settlement
        fields = ["id", "number", "name", "period_start", "period_end", "status", "sent_at", "paid_at", "notes",
                  "projects", "ticket_count", "attachment_count", "totals", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "status", "sent_at", "paid_at", "created_at", "updated_at"]

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, settlement) -> dict:
        totals = self.context.get("totals", {}).get(settlement.pk)
        return totals.total.as_dict() if totals else {"minutes": 0, "hours": "0.00", "amounts": {}}


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SettlementStatus.choices)


class LinkTicketSerializer(serializers.Serializer):
    ticket = TicketReferenceField(help_text="Ticket key (MNX-12) or id.")


class SettlementTicketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    priority = serializers.CharField()
    project = serializers.CharField(source="project.key")
    totals = serializers.SerializerMethodField()

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, ticket) -> dict:
        totals = self.context.get("ticket_totals", {}).get(ticket.pk)
        return totals.as_dict() if totals else {"minutes": 0, "hours": "0.00", "amounts": {}}


class TicketSearchResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    project = serializers.CharField(source="project.key")


class SettlementEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = SettlementEvent
        fields = ["id", "kind", "actor", "created_at", "before", "after"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_actor(self, event) -> str:
        return event.actor.get_username() if event.actor_id else event.actor_label


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(source="original_name", read_only=True)
    content_type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    category = serializers.ChoiceField(choices=AttachmentCategory.choices, required=False)
    state = serializers.ChoiceField(choices=AttachmentState.choices, required=False)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, default=None, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    previewable = serializers.SerializerMethodField()

    def get_previewable(self, attachment) -> bool:
        from settlements.files import FILE_TYPES, extension_of

        file_type = FILE_TYPES.get(extension_of(attachment.original_name))
        return bool(file_type and file_type.previewable)


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="At most 200 MB; pdf, doc(x), odt, xls(x), ods, csv, txt, md, rtf, "
                                           "png, jpg, webp, gif, zip, 7z.")
    category = serializers.ChoiceField(choices=AttachmentCategory.choices, default=AttachmentCategory.OTHER)
    state = serializers.ChoiceField(choices=AttachmentState.choices, default=AttachmentState.DRAFT)


class ShareLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    prefix = serializers.CharField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown only in this response.")
    url = serializers.CharField(read_only=True, help_text="The customer page's JSON endpoint.")


class PublicSettlementSerializer(serializers.Serializer):
    number = serializers.CharField()
    name = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    status = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    projects = serializers.ListField(child=serializers.CharField())
    tickets = serializers.ListField(child=serializers.DictField())
    totals = TotalsSerializer()
    attachments = serializers.ListField(child=serializers.DictField())
    acceptance = serializers.DictField(allow_null=True)


class AcceptanceSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Who accepts the settlement.")
